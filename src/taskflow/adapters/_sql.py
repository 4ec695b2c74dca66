"""The store logic the SQL repositories share (SQLite, PostgreSQL), parameterised by a `Dialect`.

`SqlStore` holds what does not depend on the engine: loading task rows with their history and
comment rows, the cache, writing a changeset (the checked commit), the assignee, index and row
upkeep, queries with broken rows skipped, `check()`, `broken_rows()`, reindexing and the
outbox's reads. Each adapter subclasses it and keeps its own connection handling (how a read,
a write and a single statement get a connection, and how the engine's errors are translated)
and its dialect: placeholders, column types, how a stored row is locked, how values and JSON
are stored. Shared statements are written with `{s}.` before table names and `%s` for
parameters; an adapter's `_q` turns them into its own SQL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

import attrs

from taskflow.adapters._common import (
    check_arguments,
    check_changeset,
    check_claim,
    check_ids,
    check_marks_query,
    check_text,
    dropped_marks,
    marks_select,
)
from taskflow.domain.outbox import DeadLetter, OutboxEntry, OutboxMessage
from taskflow.domain.query import (
    Between,
    IndexValue,
    TaskQuery,
    check_indexed,
    index_tag,
    index_values,
)
from taskflow.domain.registry import Registry
from taskflow.domain.task import Task, kept_of, replace_fields
from taskflow.domain.values import Comment, CompanyId, Side, TaskId
from taskflow.errors import (
    ConcurrencyConflict,
    DeserializationError,
    InvalidPayload,
    MarkTaken,
    TaskflowError,
    TaskNotFound,
)
from taskflow.ports import Changeset, IndexProblem
from taskflow.serialization import SCHEMA_VERSION, Serializer

__all__ = ["Dialect", "SqlStore", "counting", "describe_commit", "outbox_entry", "select", "where"]

UNKNOWN = object()  # a replaced version that is not in the cache

# What an outbox read selects, in the order `outbox_entry` takes it (before the lease columns).
OUTBOX_COLUMNS = "id, topic, key, task_id, task_version, not_before, attempts, last_error"

# The query columns `check()` compares with the task: the first ones `_columns` gives.
CHECKED_COLUMNS = (
    "kind",
    "state",
    "requester_company",
    "recipient_company",
    "ball_company",
    "is_open",
    "due_at",
    "created_at",
    "number",
)


@attrs.frozen
class Dialect:
    """What differs between the SQL engines in the shared logic: statements, types, JSON."""

    loads: Callable[[str], Any]  # stored JSON text -> data
    dumps: Callable[[Any], str]  # data -> JSON text as stored
    to_time: Callable[[datetime], Any]  # an aware time as stored
    from_time: Callable[[Any], datetime | None]  # a stored time (or "none") -> an aware time
    stored_text: Callable[[str], str]  # free text (an error, a reason) as it can be stored
    message_body: Callable[[str], str]  # an outbox message's JSON body as stored
    original_body: Callable[[str], str]  # a stored dead letter body -> the body it was given
    any_of: Callable[[str, Sequence[Any]], tuple[str, list[Any]]]  # "column in values"
    row_batch: int  # task keys per statement when reading rows of many tasks
    body: str  # a JSON column read as text
    head: str  # what every read selects of a task row, in the order `_load_rows` takes it
    insert_task: str  # (id, *_columns) -> the new pk, or no row when the id is taken
    stored: str  # (id,) -> pk, version, history_len, comments_len, schema, workflow_version
    update_task: str  # (*_columns, pk, expected version)
    insert_entry: str  # (task_pk, seq, body)
    insert_comment: str  # (task_pk, seq, body)
    insert_field: str  # (task_pk, name, type, *values)
    held: str  # the claim condition (id, claimed_by, attempts)
    unleased: str  # the stored value of "no lease"
    lock: str  # what a SELECT adds to lock the rows it reads, if the engine locks rows
    skip_locked: str  # what a claim's SELECT adds to pass over rows other claims lock
    ready: str  # the claim condition "not waiting, not leased" at a time (two parameters)
    field_clause: Callable[[str, IndexValue | Between], tuple[str, list[Any]]]  # indexed field
    open_due: Callable[[bool | None, datetime | None], tuple[list[str], list[Any]]]
    unindexed: str  # put before a column the planner should not pick an index for
    columns: Callable[[Task, str], tuple[Any, ...]]  # a task row's columns after its id
    field_value: Callable[[Task, str, IndexValue], tuple[Any, ...]]  # an index value as stored
    field_rows: str  # every index row: task_pk, name, type, then the stored values


def describe_commit(changes: Changeset) -> str:
    """Return what a commit writes, for error messages: 'commit ACME-TASK-1, ACME-TASK-2'."""
    tasks = [t.number for t in changes.added] + [t.number for t, _ in changes.saved]
    shown = ", ".join(tasks[:3]) + (f" and {len(tasks) - 3} more" if len(tasks) > 3 else "")
    return f"commit {shown or 'outbox messages'}"


def outbox_entry(
    row: Sequence[Any],
    worker: str | None,
    lease_until: datetime | None,
    dialect: Dialect,
) -> tuple[OutboxEntry | None, str]:
    """Return the entry a stored outbox row holds (`OUTBOX_COLUMNS`, body), or None and why it cannot be read."""
    entry_id, topic, key, task_id, version, not_before, attempts, last_error, body = row
    try:
        payload = dialect.loads(body)
        if not isinstance(payload, dict):
            msg = f"the body is JSON but not an object: {body[:60]!r}"
            raise ValueError(msg)
        message = OutboxMessage(
            topic,
            key,
            payload,
            not_before=dialect.from_time(not_before),
            task_id=task_id,
            task_version=version,
        )
    except (ValueError, TypeError, TaskflowError) as exc:
        return None, f"outbox message {entry_id} cannot be read: {exc}"
    return OutboxEntry(entry_id, message, attempts, worker, lease_until, last_error), ""


def where(query: TaskQuery, d: Dialect) -> tuple[str, list[Any]] | None:
    """Return the WHERE clause and parameters that mean `query.matches`, or None for no match."""
    clauses: list[str] = []
    params: list[Any] = []
    if query.kind is not None:
        clauses.append("kind = %s")
        params.append(query.kind)
    if query.states is not None:
        if not query.states:
            return None
        clause, values = d.any_of("state", sorted(query.states))
        clauses.append(clause)
        params += values
    if query.company is not None:
        if query.side is None:
            clauses.append("(requester_company = %s OR recipient_company = %s)")
            params += [query.company, query.company]
        else:
            side = "requester" if query.side == Side.REQUESTER else "recipient"
            clauses.append(f"{side}_company = %s")
            params.append(query.company)
    for column, company in (
        ("requester_company", query.requester_company),
        ("recipient_company", query.recipient_company),
    ):
        if company is not None:
            clauses.append(f"{column} = %s")
            params.append(company)
    if query.assignee is not None:
        # The assignee table drives the lookup; with a ball company it narrows it too (inbox).
        sub = "SELECT task_pk FROM {s}.task_assignees WHERE company = %s AND user_id = %s"
        params += [query.assignee.company, query.assignee.user]
        if query.ball_company is not None:
            sub += " AND ball_company = %s"
            params.append(query.ball_company)
        clauses.append(f"pk IN ({sub})")
    if query.ball_company is not None:
        # With an assignee, the subquery above already narrows by ball: the planner must not
        # scan the whole Teambox instead of the user's few tasks.
        hint = d.unindexed if query.assignee is not None else ""
        clauses.append(f"{hint}ball_company = %s")
        params.append(query.ball_company)
    opened, values = d.open_due(query.open, query.due_before)
    clauses += opened
    params += values
    if query.created_from is not None:
        clauses.append("created_at >= %s")
        params.append(d.to_time(query.created_from))
    if query.created_until is not None:
        clauses.append("created_at <= %s")
        params.append(d.to_time(query.created_until))
    if query.after is not None:
        # A row value: the (created_at, id) indexes serve it and the ORDER BY alike.
        clauses.append("(created_at, id) > (%s, %s)")
        params += [d.to_time(query.after.created_at), query.after.task_id]
    for name, condition in query.where.items():
        clause, values = d.field_clause(name, condition)
        clauses.append(clause)
        params += values
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params


def select(query: TaskQuery, limit: int | None, d: Dialect) -> tuple[str, list[Any]] | None:
    """Return the SELECT of `query`'s task rows (`Dialect.head`) in order, or None for no match."""
    found = where(query, d)
    if found is None:
        return None
    clause, params = found
    text = f"SELECT {d.head} FROM {{s}}.tasks{clause} ORDER BY created_at, id"
    if limit is not None:
        text += " LIMIT %s"
        params.append(limit)
    return text, params


def counting(query: TaskQuery, d: Dialect) -> tuple[str, list[Any]] | None:
    """Return the SELECT of how many tasks match per (kind, state), or None for no match."""
    if query.company is not None and query.side is None:
        # Either side, as two searches that each read only an index (the dashboard): tasks
        # the company requested, plus those it received from another company.
        requested = where(attrs.evolve(query, side=Side.REQUESTER), d)
        received = where(attrs.evolve(query, side=Side.RECIPIENT), d)
        if requested is None or received is None:
            return None
        text = (
            f"SELECT kind, state, COUNT(*) FROM (SELECT kind, state FROM {{s}}.tasks{requested[0]} "
            f"UNION ALL SELECT kind, state FROM {{s}}.tasks{received[0]} "
            "AND requester_company <> %s) AS found GROUP BY kind, state ORDER BY kind, state"
        )
        return text, [*requested[1], *received[1], query.company]
    found = where(query, d)
    if found is None:
        return None
    clause, params = found
    text = f"SELECT kind, state, COUNT(*) FROM {{s}}.tasks{clause} GROUP BY kind, state ORDER BY kind, state"
    return text, params


class SqlStore:
    """The logic of a repository on SQL tables (see the module docstring); subclassed per engine."""

    _dialect: Dialect
    _registry: Registry
    _serializer: Serializer

    def _init_store(
        self,
        registry: Registry,
        serializer: Serializer | None,
        cache_size: int,
        on_broken_row: Callable[[DeserializationError], None],
    ) -> None:
        self._registry = registry
        self._serializer = serializer if serializer is not None else Serializer(registry)
        # Loaded tasks by (id, version): a stored row of one id and version never changes, so
        # a hit skips the JSON parse and the cattrs structuring (most of a read's cost).
        self._cache: dict[tuple[str, int], Task] = {}
        self._newest: dict[str, int] = {}  # the newest cached version of each id
        self._pks: dict[str, int] = {}  # the row key of each id seen (never changes)
        self._cache_size = max(cache_size, 0)
        self._cache_lock = threading.Lock()
        self._on_broken_row = on_broken_row

    # --- what each engine provides ---------------------------------------------------------

    def _q(self, text: str) -> str:
        """Return a shared statement in this engine's SQL."""
        raise NotImplementedError  # pragma: no cover - every adapter defines it

    def _reading(self, what: str) -> AbstractContextManager[Any]:
        """Return a context holding a connection in one read snapshot."""
        raise NotImplementedError  # pragma: no cover

    def _writing(self, what: str) -> AbstractContextManager[Any]:
        """Return a context holding a connection in one write transaction."""
        raise NotImplementedError  # pragma: no cover

    def _single(self, what: str) -> AbstractContextManager[Any]:
        """Return a context holding a connection for statements that are each a transaction."""
        raise NotImplementedError  # pragma: no cover

    def _committing(self, changes: Changeset, what: str) -> AbstractContextManager[Any]:
        """Return the write transaction of a commit (an engine may report conflicts its way)."""
        return self._writing(what)

    def _many(self, conn: Any, text: str, rows: list[tuple[Any, ...]]) -> None:
        """Run one statement for each of `rows`."""
        raise NotImplementedError  # pragma: no cover

    def _queue(
        self, conn: Any, messages: list[tuple[OutboxMessage, str]]
    ) -> Callable[[], tuple[int, ...]]:
        """Insert outbox messages in order; return how to read their ids once committed."""
        raise NotImplementedError  # pragma: no cover

    def _columns(self, task: Task, body: str) -> tuple[Any, ...]:
        """Return the task row's columns after its id (`CHECKED_COLUMNS` first)."""
        return self._dialect.columns(task, body)

    def _field_values(self, task: Task) -> list[tuple[Any, ...]]:
        """Return the (name, type, *stored values) rows of `task`'s index values; raise `InvalidPayload` for a bad one."""
        if task.kind not in self._registry:
            return []
        values = index_values(self._registry[task.kind], task)
        stored = self._dialect.field_value
        return [(name, index_tag(v), *stored(task, name, v)) for name, v in values.items()]

    def _lock_fields(self, conn: Any) -> None:
        """Keep other writers out of the index rows until the transaction ends (if needed)."""

    # --- the port's small calls -------------------------------------------------------------

    def marked(self, mark: str) -> bool:
        """Tell whether a commit stored `mark`."""
        check_arguments("marked", mark=mark)
        with self._single("read a mark") as conn:
            found = conn.execute(self._q("SELECT 1 FROM {s}.marks WHERE key = %s"), (mark,))
            return found.fetchone() is not None

    def marks(
        self, prefix: str = "", *, after: str | None = None, limit: int | None = None
    ) -> list[str]:
        """Return the stored marks that start with `prefix`, in order, after `after`, at most `limit`."""
        check_marks_query(prefix, after, limit)
        sql, params = marks_select("{s}.marks", "%s", prefix, after, limit)
        with self._single("list marks") as conn:
            return [str(row[0]) for row in conn.execute(self._q(sql), params).fetchall()]

    def drop_marks(self, marks: Iterable[str]) -> int:
        """Delete stored marks for good; return how many there were."""
        chosen = dropped_marks(marks)
        if not chosen:
            return 0
        gone, step = 0, self._dialect.row_batch
        with self._writing("drop marks") as conn:
            for start in range(0, len(chosen), step):
                clause, params = self._dialect.any_of("key", chosen[start : start + step])
                done = conn.execute(self._q(f"DELETE FROM {{s}}.marks WHERE {clause}"), params)
                gone += int(done.rowcount)
        return gone

    def add(self, task: Task) -> None:
        """Store one new task; raise `ConcurrencyConflict` if its id is taken (the stored task stays)."""
        check_arguments("add", task=task)
        self.commit(Changeset(added=(task,)))

    def save(self, task: Task, expected_version: int) -> None:
        """Replace the stored task if its version is still `expected_version` (one conditional UPDATE)."""
        check_arguments("save", task=task, expected_version=expected_version)
        self.commit(Changeset(saved=((task, expected_version),)))

    def count(self, query: TaskQuery) -> dict[tuple[str, str], int]:
        """Return how many matching tasks there are per (kind, state), from the columns alone."""
        check_arguments("count", query=query)
        check_indexed(query, self._registry, repr(self))
        found = counting(query, self._dialect)
        if found is None:
            return {}
        with self._single("count tasks") as conn:
            rows = conn.execute(self._q(found[0]), found[1]).fetchall()
        return {(kind, state): int(n) for kind, state, n in rows}

    def next_number(self, company: CompanyId) -> int:
        """Return the next task number of `company`; one atomic statement, so no two writers share one."""
        check_arguments("next_number", company=company)
        text = (
            "INSERT INTO {s}.task_numbers AS n (company, last) VALUES (%s, 1) "
            "ON CONFLICT (company) DO UPDATE SET last = n.last + 1 RETURNING last"
        )
        with self._single(f"take a task number of {company}") as conn:
            row = conn.execute(self._q(text), (company,)).fetchone()
        assert row is not None
        return int(row[0])

    def claim(
        self,
        worker: str,
        now: datetime,
        *,
        lease: timedelta,
        limit: int = 100,
        topics: Iterable[str] | None = None,
        ids: Iterable[int] | None = None,
    ) -> list[OutboxEntry]:
        """Lease up to `limit` ready messages to `worker`, oldest first, in one statement.

        Two workers (threads or processes) never claim the same message while its lease
        lasts: SQLite's write lock orders them, PostgreSQL's `FOR UPDATE SKIP LOCKED` lets
        each pass over the rows another is claiming. A message whose body does not parse is
        moved to the dead letters with the reason, not returned.
        """
        check_claim(worker, now, lease, limit)
        d = self._dialect
        clauses = [d.ready]
        params: list[Any] = [d.to_time(now), d.to_time(now)]
        wanted: list[tuple[str, list[Any] | None]] = [
            ("topic", None if topics is None else sorted(set(topics))),
            ("id", None if ids is None else sorted(set(ids))),
        ]
        for column, values in wanted:
            if values is not None:
                if not values:
                    return []
                clause, more = d.any_of(column, values)
                clauses.append(clause)
                params += more
        text = (
            "UPDATE {s}.outbox SET attempts = attempts + 1, claimed_by = %s, lease_until = %s "
            f"WHERE id IN (SELECT id FROM {{s}}.outbox WHERE {' AND '.join(clauses)} "
            f"ORDER BY id LIMIT %s{d.skip_locked}) RETURNING {OUTBOX_COLUMNS}, {d.body}"
        )
        until = now + lease
        with self._single("claim outbox messages") as conn:
            rows = conn.execute(self._q(text), (worker, d.to_time(until), *params, limit))
            rows = rows.fetchall()
        taken: list[OutboxEntry] = []
        for row in sorted(rows):
            entry, problem = outbox_entry(row, worker, until, d)
            if entry is not None:
                taken.append(entry)
                continue
            # Claimed (so leased to this worker), then buried: no other worker sees it meanwhile.
            with self._writing("move an unreadable outbox message aside") as conn:
                self._move_to_dead_letters(conn, row[0], d.stored_text(problem), now)
            self._unreadable_message(row[0], problem)
        return taken

    def _unreadable_message(self, entry_id: int, problem: str) -> None:
        """Report an outbox message moved to the dead letters because it cannot be read."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the repository's connections; it cannot be used afterwards."""
        raise NotImplementedError  # pragma: no cover

    # --- writing ---------------------------------------------------------------------------

    def commit(self, changes: Changeset) -> tuple[int, ...]:
        """Write every task and message of `changes` in one transaction; return the messages' ids.

        One conditional UPDATE per saved task, after reading (and, where the engine locks
        rows, locking) its row; a refusal (`ConcurrencyConflict`, `MarkTaken`, `TaskNotFound`,
        `InvalidPayload`) rolls the whole transaction back, so nothing is written.
        """
        check_changeset(changes)
        added = [(task, self._dump(task)) for task in changes.added]
        saved = [(task, expected, self._dump(task)) for task, expected in changes.saved]
        ids = self._write(changes, added, saved)
        for task, _ in added:
            self._remember(task)
        for task, _, _ in saved:
            self._remember(task)
        return ids

    def _write(
        self,
        changes: Changeset,
        added: list[tuple[Task, str]],
        saved: list[tuple[Task, int, str]],
    ) -> tuple[int, ...]:
        """Write a checked changeset in one transaction, every refusal found by reading first."""
        d, q = self._dialect, self._q
        messages = [(m, d.message_body(m.body)) for m in changes.messages]
        with self._committing(changes, describe_commit(changes)) as conn:
            for mark in changes.marks:
                insert = "INSERT INTO {s}.marks (key) VALUES (%s) ON CONFLICT (key) DO NOTHING"
                if not conn.execute(q(f"{insert} RETURNING key"), (mark,)).fetchall():
                    raise MarkTaken(mark)
            for task, body in added:
                self._know(task.id, self._insert_new(conn, task, body))
            for task, expected, body in saved:
                found = conn.execute(q(d.stored), (task.id,)).fetchone()
                if found is None:
                    raise TaskNotFound(task.id)
                pk, version, history_len, comments_len, schema, workflow_version = found
                self._know(task.id, pk)
                if version != expected:
                    raise ConcurrencyConflict(task.number, expected, version)
                conn.execute(q(d.update_task), (*self._columns(task, body), pk, expected))
                # The cached entry of the expected version is what the row held before this UPDATE.
                before = self._cache.get((task.id, expected), UNKNOWN)
                self._put_assignees(conn, pk, task, before)
                self._put_fields(conn, pk, task, before)
                kept = kept_of(task, before) if isinstance(before, Task) else None
                if (
                    schema != SCHEMA_VERSION
                    or workflow_version != task.workflow_version
                    or kept != (history_len, comments_len)
                ):
                    # Rows of another schema or workflow version (an upgrade may have changed
                    # their facts), or not a prefix of the new task's: write all anew.
                    history_len = comments_len = -1
                self._put_rows(conn, pk, task, history_len, comments_len)
            ids = self._queue(conn, messages)
        return ids()

    def _insert_new(self, conn: Any, task: Task, body: str) -> int:
        """Insert one new task's row and its other rows; return its key (a stored id is a conflict)."""
        q = self._q
        inserted = conn.execute(q(self._dialect.insert_task), (task.id, *self._columns(task, body)))
        rows = inserted.fetchall()
        if not rows:
            version_of = q("SELECT version FROM {s}.tasks WHERE id = %s")
            stored = conn.execute(version_of, (task.id,)).fetchone()
            found = None if stored is None else stored[0]
            raise ConcurrencyConflict(task.number, 0, found, exists=True)
        pk: int = rows[0][0]
        self._put_assignees(conn, pk, task, None)
        self._put_fields(conn, pk, task, None)
        self._put_rows(conn, pk, task, 0, 0)
        return pk

    def add_all(self, tasks: Iterable[Task], *, chunk: int = 2_000) -> int:
        """Store many new tasks in one transaction (a bulk load); return how many were stored.

        Each task is written as `add` writes it (its row, history and comment rows, assignees
        and indexed fields), `chunk` tasks checked and serialized at a time, so `tasks` may be
        a generator of more tasks than fit in memory. All or nothing: a refused task (an id
        already stored, a view, a value the store cannot hold) rolls the whole load back. The
        tasks are not put in the read cache. For an initial import or a benchmark's store.
        """
        if isinstance(tasks, str | bytes) or not isinstance(tasks, Iterable):
            msg = f"add_all needs an iterable of tasks, got {type(tasks).__name__}"
            raise InvalidPayload(msg, field="tasks")
        if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1:
            msg = f"add_all: chunk must be a whole number >= 1, got {chunk!r:.40}"
            raise InvalidPayload(msg, field="chunk")
        stored = 0
        with self._writing("bulk-add tasks") as conn:
            part: list[Task] = []
            for task in _ended(tasks):
                if task is not None:
                    if not isinstance(task, Task):
                        msg = f"add_all: item {stored + len(part)} is a {type(task).__name__}, not a Task"
                        raise InvalidPayload(msg, field="tasks")
                    part.append(task)
                if part and (task is None or len(part) == chunk):
                    check_changeset(Changeset(added=tuple(part)))
                    for one in part:
                        self._insert_new(conn, one, self._dump(one))
                    stored += len(part)
                    part = []
        return stored

    def _dump(self, task: Task) -> str:
        """Return the task row's JSON: the task with its history and comments left for their rows."""
        head = replace_fields(task, {"history": (), "comments": ()})
        return self._dialect.dumps(self._serializer.dump_task(head))

    def _dump_entry(self, task: Task) -> Callable[[Any], str]:
        kind = task.kind
        dump_entry = self._serializer.dump_entry
        dumps = self._dialect.dumps

        def dump(entry: Any) -> str:
            data = dump_entry(kind, entry)
            del data["schema"]  # the task row's schema covers its rows
            return dumps(data)

        return dump

    def _dump_comment(self, comment: Any) -> str:
        return self._dialect.dumps(self._serializer.converter.unstructure(comment, Comment))

    def _put_rows(
        self, conn: Any, pk: int, task: Task, history_kept: int, comments_kept: int
    ) -> None:
        """Append the history entries and comments after the kept ones (-1: rewrite all)."""
        d = self._dialect
        for table, insert, items, kept, dump in (
            ("task_history", d.insert_entry, task.history, history_kept, self._dump_entry(task)),
            ("task_comments", d.insert_comment, task.comments, comments_kept, self._dump_comment),
        ):
            if kept < 0:
                conn.execute(self._q(f"DELETE FROM {{s}}.{table} WHERE task_pk = %s"), (pk,))
                kept = 0
            if len(items) == kept + 1:
                conn.execute(self._q(insert), (pk, kept, dump(items[kept])))
            elif len(items) > kept:
                rows = [(pk, seq, dump(items[seq])) for seq in range(kept, len(items))]
                self._many(conn, self._q(insert), rows)

    def _put_assignees(self, conn: Any, pk: int, task: Task, before: Task | object | None) -> None:
        """Write the assignee rows of `task`; `before` is the replaced version, if known."""
        q = self._q
        if isinstance(before, Task) and before.assignees == task.assignees:
            # Most actions keep the assignees; only the ball may have moved.
            if before.ball_company != task.ball_company:
                conn.execute(
                    q("UPDATE {s}.task_assignees SET ball_company = %s WHERE task_pk = %s"),
                    (task.ball_company, pk),
                )
            return
        if before is not None:
            conn.execute(q("DELETE FROM {s}.task_assignees WHERE task_pk = %s"), (pk,))
        if task.assignees:
            ball = task.ball_company
            insert = (
                "INSERT INTO {s}.task_assignees (task_pk, company, user_id, ball_company) "
                "VALUES (%s, %s, %s, %s)"
            )
            self._many(conn, q(insert), [(pk, r.company, r.user, ball) for r in task.assignees])

    def _put_fields(self, conn: Any, pk: int, task: Task, before: Task | object | None) -> None:
        """Write the index rows of `task`'s indexed fields; `before` is the replaced version, if known.

        A value of the wrong type raises `InvalidPayload` here, inside the write's transaction,
        which then writes nothing.
        """
        q, insert = self._q, self._q(self._dialect.insert_field)
        rows = self._field_values(task)
        if not isinstance(before, Task):
            if before is not None:  # replaced, but its old values are not known: rewrite all
                conn.execute(q("DELETE FROM {s}.task_fields WHERE task_pk = %s"), (pk,))
            if rows:
                self._many(conn, insert, [(pk, *row) for row in rows])
            return
        # Most actions change no indexed value: write only the fields that did change.
        old = {row[0]: row[1:] for row in self._field_values(before)}
        new = {row[0]: row[1:] for row in rows}
        gone = [(pk, name) for name, stored in old.items() if new.get(name) != stored]
        if gone:
            delete = "DELETE FROM {s}.task_fields WHERE task_pk = %s AND name = %s"
            self._many(conn, q(delete), gone)
        added = [(pk, name, *now) for name, now in new.items() if old.get(name) != now]
        if added:
            self._many(conn, insert, added)

    # --- reading ---------------------------------------------------------------------------

    def query(self, query: TaskQuery) -> list[Task]:
        """Return the tasks that match, ordered by creation time then id; rows that do not load are skipped."""
        check_arguments("query", query=query)
        check_indexed(query, self._registry, repr(self))
        found: list[Task] = []
        broken: list[DeserializationError] = []
        skipped = 0
        while True:
            # A broken row in the window is skipped; read a wider window so `limit` good ones come.
            limit = None if query.limit is None else query.limit + skipped
            found_sql = select(query, limit, self._dialect)
            if found_sql is None:
                return []
            with self._reading("query tasks") as conn:
                rows = conn.execute(self._q(found_sql[0]), found_sql[1]).fetchall()
                found, broken = self._load_rows(conn, rows)
            if limit is None or len(found) >= limit - skipped or len(rows) < limit:
                break
            skipped = len(broken)  # more than before, since the full window fell short
        for error in broken:
            self._on_broken_row(error)
        return found if query.limit is None else found[: query.limit]

    def _know(self, task_id: str, pk: int) -> None:
        """Remember the row key of `task_id` (a row's key never changes; ids are never reused)."""
        if len(self._pks) > 4 * self._cache_size + 1024:
            self._pks.clear()
        self._pks[task_id] = pk

    def _remember(self, task: Task) -> None:
        if not self._cache_size:
            return
        with self._cache_lock:
            self._cache[(task.id, task.version)] = task
            if self._newest.get(task.id, 0) < task.version:
                self._newest[task.id] = task.version
            while len(self._cache) > self._cache_size:
                task_id, version = next(iter(self._cache))
                del self._cache[(task_id, version)]
                if self._newest.get(task_id) == version:
                    del self._newest[task_id]

    def _load(
        self, task_id: str, version: int, body: str, entries: list[str], comments: list[str]
    ) -> Task:
        loads = self._dialect.loads
        try:
            data = loads(body)
            if not isinstance(data, dict):
                msg = "the task row holds JSON that is not an object"
                raise ValueError(msg)
            for key, rows in (("history", entries), ("comments", comments)):
                if rows:
                    if data.get(key):
                        msg = f"{key} is both in the task row and in rows of its own"
                        raise ValueError(msg)
                    data[key] = [loads(row) for row in rows]
            check_text(body, *entries, *comments)
        except (TypeError, ValueError, RecursionError) as exc:
            # RecursionError: a body nested too deep to parse is one broken row, not a crash.
            msg = f"cannot load task '{task_id}': its stored JSON does not parse: {exc}"
            raise DeserializationError(msg, task_id=task_id) from exc
        try:
            task = self._serializer.load_task(data)
        except RecursionError as exc:
            msg = f"cannot load task '{task_id}': its stored JSON is nested too deep"
            raise DeserializationError(msg, task_id=task_id) from exc
        for field, stored, column in (("id", task.id, task_id), ("version", task.version, version)):
            if stored != column:
                msg = (
                    f"cannot load task '{task_id}': {field}: the stored JSON says {stored!r} "
                    f"but the row says {column!r}"
                )
                raise DeserializationError(msg, path=field, task_id=task_id)
        self._remember(task)
        return task

    def _load_counted(
        self,
        task_id: str,
        version: int,
        body: str,
        counts: tuple[int, int],
        entries: list[str],
        comments: list[str],
    ) -> Task:
        """Load a task whose row counts `counts` history entries and comments, given their rows."""
        for what, expected, got in (
            ("history entries", counts[0], entries),
            ("comments", counts[1], comments),
        ):
            if len(got) != expected:
                msg = (
                    f"cannot load task '{task_id}': the row counts {expected} {what} "
                    f"but {len(got)} are stored"
                )
                raise DeserializationError(msg, task_id=task_id)
        return self._load(task_id, version, body, entries, comments)

    def _read_rows(
        self, conn: Any, table: str, wanted: list[tuple[int, int]]
    ) -> dict[int, list[str]]:
        """Return the first n row bodies of each (task pk, n), in order, one query per batch."""
        d = self._dialect
        found: dict[int, list[str]] = {}
        counts = {pk: n for pk, n in wanted if n > 0}
        keys = sorted(counts)
        for start in range(0, len(keys), d.row_batch):
            clause, params = d.any_of("task_pk", keys[start : start + d.row_batch])
            text = (
                f"SELECT task_pk, seq, {d.body} FROM {{s}}.{table} WHERE {clause} "
                "ORDER BY task_pk, seq"
            )
            for pk, seq, body in conn.execute(self._q(text), params):
                if seq < counts[pk]:
                    found.setdefault(pk, []).append(body)
        return found

    def _load_rows(
        self, conn: Any, rows: Iterable[Sequence[Any]], *, cached: bool = True
    ) -> tuple[list[Task], list[DeserializationError]]:
        """Load task rows (see `Dialect.head`), reading the history and comment rows of those not cached."""
        heads = list(rows)
        hits: dict[int, Task] = {}
        if cached:
            for task_id, version, _, pk, _, _ in heads:
                hit = self._cache.get((task_id, version))
                if hit is not None:
                    hits[pk] = hit
        missing = [(pk, h, c) for _, _, _, pk, h, c in heads if pk not in hits]
        entries = self._read_rows(conn, "task_history", [(pk, n) for pk, n, _ in missing])
        comments = self._read_rows(conn, "task_comments", [(pk, n) for pk, _, n in missing])
        found: list[Task] = []
        broken: list[DeserializationError] = []
        for task_id, version, body, pk, history_len, comments_len in heads:
            self._know(task_id, pk)
            hit = hits.get(pk)
            if hit is not None:
                found.append(hit)
                continue
            try:
                counts = (history_len, comments_len)
                found.append(
                    self._load_counted(
                        task_id, version, body, counts, entries.get(pk, []), comments.get(pk, [])
                    )
                )
            except DeserializationError as error:
                broken.append(error)
        return found, broken

    def _batches(self, heads: list[Any]) -> Iterator[list[Any]]:
        size = self._dialect.row_batch
        for start in range(0, len(heads), size):
            yield heads[start : start + size]

    def broken_rows(self) -> list[DeserializationError]:
        """Read every stored task and return the error of each row that no longer loads."""
        text = f"SELECT {self._dialect.head} FROM {{s}}.tasks ORDER BY created_at, id"
        with self._reading("check every task") as conn:
            heads = conn.execute(self._q(text)).fetchall()
            broken: list[DeserializationError] = []
            for batch in self._batches(heads):
                broken += self._load_rows(conn, batch, cached=False)[1]
        return broken

    def check(self) -> list[IndexProblem]:
        """Report every task row whose query columns, assignee or field rows disagree with its JSON, and every row that does not load."""
        q = self._q
        problems: list[IndexProblem] = []
        with self._reading("check every task's index columns") as conn:
            heads = conn.execute(
                q(
                    f"SELECT {self._dialect.head}, {', '.join(CHECKED_COLUMNS)} "
                    "FROM {s}.tasks ORDER BY created_at, id"
                )
            ).fetchall()
            assignees: dict[int, set[tuple[Any, ...]]] = {}
            for pk, *row in conn.execute(
                q("SELECT task_pk, company, user_id, ball_company FROM {s}.task_assignees")
            ):
                assignees.setdefault(pk, set()).add(tuple(row))
            fields: dict[int, set[tuple[Any, ...]]] = {}
            for pk, *row in conn.execute(q(self._dialect.field_rows)):
                fields.setdefault(pk, set()).add(tuple(row))
            for batch in self._batches(heads):
                tasks, broken = self._load_rows(conn, [h[:6] for h in batch], cached=False)
                problems += [IndexProblem(TaskId(e.task_id), "row", str(e)) for e in broken]
                loaded = {task.id: task for task in tasks}
                for head in batch:
                    task = loaded.get(head[0])
                    if task is not None:
                        problems += self._disagreements(task, head, assignees, fields)
        return problems

    def _disagreements(
        self,
        task: Task,
        head: Sequence[Any],
        assignees: dict[int, set[tuple[Any, ...]]],
        fields: dict[int, set[tuple[Any, ...]]],
    ) -> list[IndexProblem]:
        """Return how a loaded task's stored columns and rows differ from what its data gives."""
        pk = head[3]
        wanted = self._columns(task, "")[: len(CHECKED_COLUMNS)]
        problems = [
            IndexProblem(task.id, column, f"the column holds {stored!r}, the task {value!r}")
            for column, stored, value in zip(CHECKED_COLUMNS, head[6:], wanted, strict=True)
            if stored != value
        ]
        rows = {(ref.company, ref.user, task.ball_company) for ref in task.assignees}
        if assignees.get(pk, set()) != rows:
            found = sorted(assignees.get(pk, set()), key=repr)
            problems.append(
                IndexProblem(
                    task.id,
                    "task_assignees",
                    f"the rows hold {found!r}, the task {sorted(rows, key=repr)!r}",
                )
            )
        try:
            values = set(self._field_values(task))
        except TaskflowError as exc:
            problems.append(IndexProblem(task.id, "task_fields", str(exc)))
            return problems
        if fields.get(pk, set()) != values:
            found = sorted(fields.get(pk, set()), key=repr)
            problems.append(
                IndexProblem(
                    task.id,
                    "task_fields",
                    f"the rows hold {found!r}, the task {sorted(values, key=repr)!r}",
                )
            )
        return problems

    # --- indexed fields --------------------------------------------------------------------

    def _declared(self) -> set[tuple[str, str]]:
        return {(kind.name, name) for kind in self._registry for name in kind.indexed}

    def _sync_fields(self) -> None:
        """Index again the tasks of kinds whose indexed fields differ from those stored with them.

        This back-fills a store migrated from a layout without index rows, and follows a host
        that adds, removes or renames an indexed field; one transaction, so others wait.
        """
        declared = self._declared()
        select = self._q("SELECT kind, name FROM {s}.indexed_fields")
        with self._reading("read the indexed fields") as conn:
            stored = {(kind, name) for kind, name in conn.execute(select).fetchall()}
        if stored == declared:
            return
        with self._writing("index the tasks' fields again") as conn:
            self._lock_fields(conn)
            # Another process may have done it meanwhile.
            stored = {(kind, name) for kind, name in conn.execute(select).fetchall()}
            broken = self._reindex(conn, {kind for kind, _ in stored ^ declared})[1]
        for error in broken:
            self._on_broken_row(error)

    def reindex(self, kinds: Iterable[str] | None = None) -> int:
        """Compute the indexed fields of every stored task of `kinds` (default: all) again; return how many.

        Run it after changing how an indexed field is computed under the same name; added,
        removed or renamed fields are indexed again on open by themselves.
        """
        with self._writing("index the tasks' fields again") as conn:
            self._lock_fields(conn)
            if kinds is None:
                stored = conn.execute(self._q("SELECT DISTINCT kind FROM {s}.tasks")).fetchall()
                wanted = {kind for (kind,) in stored} | set(self._registry.names)
            else:
                wanted = set(kinds)
            done, broken = self._reindex(conn, wanted)
        for error in broken:
            self._on_broken_row(error)
        return done

    def _reindex(self, conn: Any, kinds: set[str]) -> tuple[int, list[DeserializationError]]:
        """Rewrite the index rows of every task of `kinds` and record their declarations."""
        names = sorted(kinds)
        if not names:
            return 0, []
        d, q = self._dialect, self._q
        clause, params = d.any_of("kind", names)
        conn.execute(
            q(
                f"DELETE FROM {{s}}.task_fields WHERE task_pk IN (SELECT pk FROM {{s}}.tasks WHERE {clause})"
            ),
            params,
        )
        conn.execute(q(f"DELETE FROM {{s}}.indexed_fields WHERE {clause}"), params)
        pairs = sorted(pair for pair in self._declared() if pair[0] in kinds)
        self._many(conn, q("INSERT INTO {s}.indexed_fields (kind, name) VALUES (%s, %s)"), pairs)
        known = [name for name in names if name in self._registry and self._registry[name].indexed]
        if not known:
            return 0, []
        clause, params = d.any_of("kind", known)
        heads = conn.execute(
            q(f"SELECT {d.head} FROM {{s}}.tasks WHERE {clause}"), params
        ).fetchall()
        done = 0
        broken: list[DeserializationError] = []
        for batch in self._batches(heads):
            tasks, failed = self._load_rows(conn, batch, cached=False)
            broken += failed  # skipped by queries until they load again
            pks = {row[0]: row[3] for row in batch}
            inserts = [(pks[task.id], *row) for task in tasks for row in self._field_values(task)]
            self._many(conn, q(d.insert_field), inserts)
            done += len(tasks)
        return done, broken

    # --- the outbox's reads and upkeep -----------------------------------------------------

    def retry(self, entry: OutboxEntry, *, not_before: datetime, error: str) -> None:
        """Give a claimed message back, ready again from `not_before`, with the error recorded."""
        check_arguments("retry", entry=entry, not_before=not_before, error=error)
        d = self._dialect
        text = (
            f"UPDATE {{s}}.outbox SET claimed_by = NULL, lease_until = {d.unleased}, "
            f"not_before = %s, last_error = %s WHERE {d.held}"
        )
        params = (d.to_time(not_before), d.stored_text(error), entry.id, entry.claimed_by)
        with self._single("retry an outbox message") as conn:
            conn.execute(self._q(text), (*params, entry.attempts))

    def bury(self, entry: OutboxEntry, *, reason: str, at: datetime) -> None:
        """Move a claimed message to the dead letters with `reason`."""
        check_arguments("bury", entry=entry, reason=reason, at=at)
        d, q = self._dialect, self._q
        with self._writing("bury an outbox message") as conn:
            held = conn.execute(
                q(f"SELECT 1 FROM {{s}}.outbox WHERE {d.held}{d.lock}"),
                (entry.id, entry.claimed_by, entry.attempts),
            ).fetchone()
            if held is None:
                return
            self._move_to_dead_letters(conn, entry.id, d.stored_text(reason), at)

    def _move_to_dead_letters(self, conn: Any, entry_id: int, reason: str, at: datetime) -> None:
        d, q = self._dialect, self._q
        conn.execute(
            q(
                "INSERT INTO {s}.dead_letters (id, topic, key, task_id, task_version, attempts, "
                "reason, buried_at, body) SELECT id, topic, key, task_id, task_version, "
                f"attempts, %s, %s, {d.body} FROM {{s}}.outbox WHERE id = %s"
            ),
            (reason, d.to_time(at), entry_id),
        )
        conn.execute(q("DELETE FROM {s}.outbox WHERE id = %s"), (entry_id,))

    def pending(self, limit: int | None = None) -> list[OutboxEntry]:
        """Return up to `limit` messages not delivered nor buried, oldest first, leased or not."""
        check_arguments("pending", limit=limit)
        d = self._dialect
        text = (
            f"SELECT {OUTBOX_COLUMNS}, {d.body}, claimed_by, lease_until FROM {{s}}.outbox "
            "ORDER BY id"
        )
        params: tuple[Any, ...] = ()
        if limit is not None:
            text += " LIMIT %s"
            params = (max(limit, 0),)
        with self._single("read the outbox") as conn:
            rows = conn.execute(self._q(text), params).fetchall()
        found: list[OutboxEntry] = []
        for row in rows:
            entry, _ = outbox_entry(row[:9], row[9], d.from_time(row[10]), d)
            if entry is not None:
                found.append(entry)
        return found

    def dead_letters(self, limit: int | None = None) -> list[DeadLetter]:
        """Return up to `limit` dead letters, oldest first."""
        check_arguments("dead_letters", limit=limit)
        d = self._dialect
        text = (
            "SELECT id, topic, key, body, reason, attempts, buried_at, task_id, task_version "
            "FROM {s}.dead_letters ORDER BY id"
        )
        params: tuple[Any, ...] = ()
        if limit is not None:
            text += " LIMIT %s"
            params = (max(limit, 0),)
        with self._single("read the dead letters") as conn:
            rows = conn.execute(self._q(text), params).fetchall()
        letters = []
        for i, topic, key, body, reason, attempts, at, task_id, version in rows:
            buried = d.from_time(at)
            assert buried is not None  # buried_at is NOT NULL
            letters.append(
                DeadLetter(
                    i, topic, key, d.original_body(body), reason, attempts, buried, task_id, version
                )
            )
        return letters

    def drop_dead_letters(self, ids: Iterable[int]) -> int:
        """Delete dead letters for good; return how many there were."""
        ids = check_ids("drop_dead_letters", ids)
        chosen = sorted(set(ids))
        if not chosen:
            return 0
        clause, params = self._dialect.any_of("id", chosen)
        with self._writing("drop dead letters") as conn:
            dropped = conn.execute(
                self._q(f"DELETE FROM {{s}}.dead_letters WHERE {clause}"), params
            )
            return int(dropped.rowcount)


def _ended(items: Iterable[Task]) -> Iterator[Task | None]:
    """Yield `items`, then None to mark their end."""
    yield from items
    yield None
