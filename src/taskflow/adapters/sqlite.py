"""A durable repository on Python's standard `sqlite3`: each task as JSON plus its query columns.

    repository = SqliteRepository("tasks.db", registry)      # or ":memory:"

Every task is stored as the JSON of `Serializer.dump_task`, beside the columns the queries
need (kind, state, companies, ball, open, due and creation times as UTC microseconds, number,
version) and one row per assignee; indexes serve the inbox, the Teambox, due-before queries
and the dashboard. A file database runs in WAL mode, so readers in other connections and
processes are not blocked by the writer.

One repository object holds one connection, guarded by a lock: it may be shared by threads,
which then take turns. Processes each open their own repository on the same file; SQLite's
file locks (with `timeout`) order their writes. Docs: docs/storage.md.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import attrs

from taskflow.adapters._common import (
    check_arguments,
    check_changeset,
    check_claim,
    check_entries,
    check_ids,
    check_text,
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
    StorageError,
    TaskflowError,
    TaskNotFound,
)
from taskflow.ports import Changeset, IndexProblem
from taskflow.serialization import SCHEMA_VERSION, Serializer

__all__ = ["STORAGE_VERSION", "SqliteRepository"]

STORAGE_VERSION: int = 3
"""The version of the table layout this taskflow writes, and the newest it opens."""

# Version 2: the index values of kinds' indexed fields, and indexes for the company, creation
# time and paging filters. `task_fields` holds one row per (task, field) with a value: `type`
# is the value's index type ('bool', 'int', 'text', 'time'), so values of different types never
# meet; `value` has no declared type (no affinity), so text stays text; bools are 0/1, times
# UTC microseconds. `indexed_fields` records which (kind, field) pairs the rows were computed
# for: on open, kinds whose declarations differ are indexed again (`_sync_fields`), which is
# also how a version-1 database gets its rows.
_QUERY_TABLES_V2: tuple[str, ...] = (
    "CREATE INDEX tasks_by_created ON tasks (created_at, id)",
    "CREATE INDEX tasks_by_requester_created ON tasks (requester_company, created_at, id)",
    "CREATE INDEX tasks_by_recipient_created ON tasks (recipient_company, created_at, id)",
    """CREATE TABLE task_fields (
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        value NOT NULL,
        task_pk INTEGER NOT NULL,
        PRIMARY KEY (name, type, value, task_pk)
    ) WITHOUT ROWID""",
    "CREATE INDEX task_fields_by_task ON task_fields (task_pk)",
    """CREATE TABLE indexed_fields (
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        PRIMARY KEY (kind, name)
    ) WITHOUT ROWID""",
)

# Each step turns a database of layout n into layout n + 1, inside the opening transaction:
# The general outbox (storage version 2). AUTOINCREMENT: a delivered (deleted) message's id
# is never given to a new one. Times are UTC microseconds; `not_before` 0 means "at once".
_OUTBOX_SCHEMA: tuple[str, ...] = (
    """CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        topic TEXT NOT NULL,
        key TEXT NOT NULL,
        task_id TEXT,
        task_version INTEGER,
        not_before INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        claimed_by TEXT,
        lease_until INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        body TEXT NOT NULL
    )""",
    # A claim reads the ready messages in id order: those whose wait and lease are over.
    "CREATE INDEX outbox_ready ON outbox (not_before, lease_until, id)",
    """CREATE TABLE dead_letters (
        id INTEGER PRIMARY KEY,
        topic TEXT NOT NULL,
        key TEXT NOT NULL,
        task_id TEXT,
        task_version INTEGER,
        attempts INTEGER NOT NULL,
        reason TEXT NOT NULL,
        buried_at INTEGER NOT NULL,
        body TEXT NOT NULL
    )""",
)

# Once-only marks (storage version 3): a rule's fired-marker, stored with the commit it guards.
_MARKS_SCHEMA: tuple[str, ...] = ("CREATE TABLE marks (key TEXT PRIMARY KEY) WITHOUT ROWID",)

# History entries and comments as rows of their own (storage version 2): a save appends the
# new ones and never writes the whole history again. `body` is the entry or comment as it
# appears inside the task's JSON; the task row's body holds empty lists in their place.
_ROWS_SCHEMA: tuple[str, ...] = (
    """CREATE TABLE task_history (
        task_pk INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (task_pk, seq)
    ) WITHOUT ROWID""",
    """CREATE TABLE task_comments (
        task_pk INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (task_pk, seq)
    ) WITHOUT ROWID""",
)

# A version-1 row whose body is valid JSON with list-valued history and comments is split;
# any other row (already broken) is left as it was, and still reported by `broken_rows`.
_SPLITTABLE = (
    "json_valid(body) AND json_type(body, '$.history') = 'array' "
    "AND json_type(body, '$.comments') = 'array'"
)

# _MIGRATIONS[n] is a tuple of SQL statements. Steps are never edited once released. Values
# only Python can compute (index values) are filled in after the steps, by `_sync_fields`.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    # 1 -> 2: the notification outbox becomes the general outbox; pending notifications keep
    # their ids and order, with the topic `notification` and a key made from their id.
    1: (
        "ALTER TABLE outbox RENAME TO outbox_v1",
        *_OUTBOX_SCHEMA,
        "INSERT INTO outbox (id, topic, key, task_id, task_version, not_before, body) "
        "SELECT id, 'notification', 'notification/v1/' || id, task_id, task_version, 0, body "
        "FROM outbox_v1 ORDER BY id",
        # Keep the id sequence, so an id delivered under version 1 is never given again.
        "DELETE FROM sqlite_sequence WHERE name = 'outbox'",
        "UPDATE sqlite_sequence SET name = 'outbox' WHERE name = 'outbox_v1'",
        "DROP TABLE outbox_v1",
        # 1 -> 2: history entries and comments move out of the task's JSON into rows.
        "ALTER TABLE tasks ADD COLUMN history_len INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE tasks ADD COLUMN comments_len INTEGER NOT NULL DEFAULT 0",
        *_ROWS_SCHEMA,
        "INSERT INTO task_history (task_pk, seq, body) SELECT t.pk, CAST(j.key AS INTEGER), "
        f"j.value FROM tasks t, json_each(t.body, '$.history') j WHERE {_SPLITTABLE}",
        "INSERT INTO task_comments (task_pk, seq, body) SELECT t.pk, CAST(j.key AS INTEGER), "
        f"j.value FROM tasks t, json_each(t.body, '$.comments') j WHERE {_SPLITTABLE}",
        "UPDATE tasks SET history_len = json_array_length(body, '$.history'), "
        "comments_len = json_array_length(body, '$.comments'), "
        "body = json_set(body, '$.history', json('[]'), '$.comments', json('[]')) "
        f"WHERE {_SPLITTABLE}",
        # 1 -> 2: indexed kind fields and the creation-time indexes of open queries.
        *_QUERY_TABLES_V2,
    ),
    # 2 -> 3: once-only marks; task numbers are counted per company code (the default code,
    # the id in upper case), so the counters of ids that share a code merge into the code's.
    2: (
        *_MARKS_SCHEMA,
        "INSERT INTO task_numbers (company, last) SELECT upper(company), max(last) "
        "FROM task_numbers WHERE company <> upper(company) GROUP BY upper(company) "
        "ON CONFLICT (company) DO UPDATE SET last = max(last, excluded.last)",
    ),
}

_SCHEMA: tuple[str, ...] = (
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    """CREATE TABLE tasks (
        pk INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        requester_company TEXT NOT NULL,
        recipient_company TEXT NOT NULL,
        ball_company TEXT,
        is_open INTEGER NOT NULL,
        due_at INTEGER,
        created_at INTEGER NOT NULL,
        number TEXT NOT NULL,
        version INTEGER NOT NULL,
        body TEXT NOT NULL,
        history_len INTEGER NOT NULL DEFAULT 0,
        comments_len INTEGER NOT NULL DEFAULT 0
    )""",
    # Teambox (ball) and its ordering; dashboard and side queries; due-before per open flag.
    "CREATE INDEX tasks_by_ball ON tasks (ball_company, created_at, id)",
    "CREATE INDEX tasks_by_requester ON tasks (requester_company, kind, state)",
    "CREATE INDEX tasks_by_recipient ON tasks (recipient_company, kind, state, requester_company)",
    "CREATE INDEX tasks_by_due ON tasks (is_open, due_at)",
    # The ball company is repeated here so an inbox reads only the user's open tasks in court.
    """CREATE TABLE task_assignees (
        task_pk INTEGER NOT NULL,
        company TEXT NOT NULL,
        user_id TEXT NOT NULL,
        ball_company TEXT,
        PRIMARY KEY (task_pk, company, user_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX task_assignees_by_user ON task_assignees (company, user_id, ball_company)",
    "CREATE TABLE task_numbers (company TEXT PRIMARY KEY, last INTEGER NOT NULL) WITHOUT ROWID",
    *_ROWS_SCHEMA,
    *_OUTBOX_SCHEMA,
    *_QUERY_TABLES_V2,
    *_MARKS_SCHEMA,
)

_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
_UNKNOWN = object()  # a replaced version that is not in the cache
_MEMORY = ":memory:"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

_COLUMNS = (
    "kind, state, requester_company, recipient_company, ball_company, is_open, "
    "due_at, created_at, number, version, body, history_len, comments_len"
)
_INSERT_TASK = (
    f"INSERT INTO tasks (id, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO NOTHING RETURNING pk"
)
_UPDATE_TASK = (
    "UPDATE tasks SET kind = ?, state = ?, requester_company = ?, recipient_company = ?, "
    "ball_company = ?, is_open = ?, due_at = ?, created_at = ?, number = ?, version = ?, "
    "body = ?, history_len = ?, comments_len = ? WHERE pk = ? AND version = ?"
)
# What a save needs to know of the stored row: whether it may append to its rows.
_STORED = (
    "SELECT pk, version, history_len, comments_len, json_extract(body, '$.schema'), "
    "json_extract(body, '$.workflow_version') FROM tasks WHERE id = ?"
)
_INSERT_MARK = "INSERT INTO marks (key) VALUES (?) ON CONFLICT (key) DO NOTHING RETURNING key"
_INSERT_ENTRY = "INSERT INTO task_history (task_pk, seq, body) VALUES (?, ?, ?)"
_INSERT_COMMENT = "INSERT INTO task_comments (task_pk, seq, body) VALUES (?, ?, ?)"
# Rows of many tasks are read in batches of this many task keys (SQLite limits parameters).
_ROW_BATCH = 500
# What every read selects of a task row, in the order `_load_rows` takes it.
_HEAD = "id, version, body, pk, history_len, comments_len"
# The query columns `check` compares with the task's JSON, in the order `_columns` gives them.
_CHECKED_COLUMNS = (
    "kind, state, requester_company, recipient_company, ball_company, is_open, due_at, "
    "created_at, number"
)
_INSERT_ASSIGNEE = (
    "INSERT INTO task_assignees (task_pk, company, user_id, ball_company) VALUES (?, ?, ?, ?)"
)
_INSERT_MESSAGE = (
    "INSERT INTO outbox (topic, key, task_id, task_version, not_before, body) "
    "VALUES (?, ?, ?, ?, ?, ?) RETURNING id"
)
_BURY = (
    "INSERT INTO dead_letters (id, topic, key, task_id, task_version, attempts, reason, "
    "buried_at, body) SELECT id, topic, key, task_id, task_version, attempts, ?, ?, body "
    "FROM outbox WHERE id = ?"
)
_INSERT_FIELD = "INSERT INTO task_fields (name, type, value, task_pk) VALUES (?, ?, ?, ?)"
_NEXT_NUMBER = (
    "INSERT INTO task_numbers (company, last) VALUES (?, 1) "
    "ON CONFLICT (company) DO UPDATE SET last = last + 1 RETURNING last"
)


def _micros(at: datetime) -> int:
    """Return an aware time as whole microseconds since 1970-01-01 UTC: sortable as the instant."""
    return (at - _EPOCH) // _MICROSECOND


def _from_micros(micros: int) -> datetime:
    """Return the aware UTC time that `_micros` made `micros` from."""
    return _EPOCH + micros * _MICROSECOND


def _describe_commit(changes: Changeset) -> str:
    tasks = [t.number for t in changes.added] + [t.number for t, _ in changes.saved]
    shown = ", ".join(tasks[:3]) + (f" and {len(tasks) - 3} more" if len(tasks) > 3 else "")
    return f"commit {shown or 'outbox messages'}"


def _outbox_entry(
    row: tuple[Any, ...], worker: str | None, lease_until: datetime | None
) -> tuple[OutboxEntry | None, str]:
    """Return the entry a stored outbox row holds, or None and why it cannot be read."""
    entry_id, topic, key, task_id, version, not_before, attempts, last_error, body = row
    try:
        payload = json.loads(body)
        if not isinstance(payload, dict):
            msg = f"the body is JSON but not an object: {body[:60]!r}"
            raise ValueError(msg)
        message = OutboxMessage(
            topic,
            key,
            payload,
            not_before=None if not not_before else _from_micros(not_before),
            task_id=task_id,
            task_version=version,
        )
    except (ValueError, TypeError, TaskflowError) as exc:
        return None, f"outbox message {entry_id} cannot be read: {exc}"
    return OutboxEntry(entry_id, message, attempts, worker, lease_until, last_error), ""


def _log_unreadable_message(path: str, entry_id: int, problem: str) -> None:
    logging.getLogger("taskflow.adapters.sqlite").warning(
        "SQLite database %s: moved outbox message %d to the dead letters: %s",
        path,
        entry_id,
        problem,
    )


def _read_rows(
    conn: sqlite3.Connection, table: str, wanted: list[tuple[int, int]]
) -> dict[int, list[str]]:
    """Return the first n row bodies of each (task pk, n), in order, one query per batch."""
    found: dict[int, list[str]] = {}
    counts = {pk: n for pk, n in wanted if n > 0}
    keys = sorted(counts)
    for start in range(0, len(keys), _ROW_BATCH):
        batch = keys[start : start + _ROW_BATCH]
        marks = ", ".join("?" * len(batch))
        rows = conn.execute(
            f"SELECT task_pk, seq, body FROM {table} WHERE task_pk IN ({marks}) "
            "ORDER BY task_pk, seq",
            batch,
        )
        for pk, seq, body in rows:
            if seq < counts[pk]:
                found.setdefault(pk, []).append(body)
    return found


def _columns(task: Task, body: str) -> tuple[Any, ...]:
    due = None if task.due_at is None else _micros(task.due_at)
    lengths = (len(task.history), len(task.comments))
    return (
        task.kind,
        task.state,
        task.requester.company,
        task.recipient,
        task.ball_company,
        int(task.is_open),
        due,
        _micros(task.created_at),
        task.number,
        task.version,
        body,
        *lengths,
    )


def _sql_value(value: IndexValue) -> Any:
    """Return an index value as stored: bools as 0/1, times as UTC microseconds."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime):
        return _micros(value)
    return value


def _field_clause(name: str, condition: IndexValue | Between) -> tuple[str, list[Any]]:
    # The primary key (name, type, value, task_pk) serves equality and ranges alike.
    sql = "pk IN (SELECT task_pk FROM task_fields WHERE name = ? AND type = ?"
    if isinstance(condition, Between):
        params: list[Any] = [name, condition.tag]
        if condition.low is not None:
            sql += " AND value >= ?"
            params.append(_sql_value(condition.low))
        if condition.high is not None:
            sql += " AND value <= ?"
            params.append(_sql_value(condition.high))
        return sql + ")", params
    return sql + " AND value = ?)", [name, index_tag(condition), _sql_value(condition)]


def _where(query: TaskQuery) -> tuple[str, list[Any]] | None:
    """Return the WHERE clause and parameters that mean `query.matches`, or None for no match."""
    clauses: list[str] = []
    params: list[Any] = []
    if query.kind is not None:
        clauses.append("kind = ?")
        params.append(query.kind)
    if query.states is not None:
        if not query.states:
            return None
        states = sorted(query.states)
        clauses.append(f"state IN ({', '.join('?' * len(states))})")
        params += states
    if query.company is not None:
        if query.side is None:
            clauses.append("(requester_company = ? OR recipient_company = ?)")
            params += [query.company, query.company]
        elif query.side == Side.REQUESTER:
            clauses.append("requester_company = ?")
            params.append(query.company)
        else:
            clauses.append("recipient_company = ?")
            params.append(query.company)
    for column, company in (
        ("requester_company", query.requester_company),
        ("recipient_company", query.recipient_company),
    ):
        if company is not None:
            clauses.append(f"{column} = ?")
            params.append(company)
    if query.assignee is not None:
        # The assignee table drives the lookup; with a ball company it narrows it too (inbox).
        sub = "SELECT task_pk FROM task_assignees WHERE company = ? AND user_id = ?"
        params += [query.assignee.company, query.assignee.user]
        if query.ball_company is not None:
            sub += " AND ball_company = ?"
            params.append(query.ball_company)
        clauses.append(f"pk IN ({sub})")
    if query.ball_company is not None:
        # With an assignee, the subquery above already narrows by ball: the unary + keeps the
        # planner from scanning the whole Teambox instead of the user's few tasks.
        clauses.append("+ball_company = ?" if query.assignee is not None else "ball_company = ?")
        params.append(query.ball_company)
    if query.due_before is not None:
        # Naming both open flags lets the (is_open, due_at) index serve a due-before query alone.
        flags = (1, 0) if query.open is None else (int(query.open),)
        clauses.append(f"is_open IN ({', '.join('?' * len(flags))}) AND due_at < ?")
        params += [*flags, _micros(query.due_before)]
    elif query.open is not None:
        # Half the table is open: never worth an index by itself (the unary + says so).
        clauses.append("+is_open = ?")
        params.append(int(query.open))
    if query.created_from is not None:
        clauses.append("created_at >= ?")
        params.append(_micros(query.created_from))
    if query.created_until is not None:
        clauses.append("created_at <= ?")
        params.append(_micros(query.created_until))
    if query.after is not None:
        # A row value: the (created_at, id) indexes serve it and the ORDER BY alike.
        clauses.append("(created_at, id) > (?, ?)")
        params += [_micros(query.after.created_at), query.after.task_id]
    for name, condition in query.where.items():
        clause, values = _field_clause(name, condition)
        clauses.append(clause)
        params += values
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return where, params


def _select(query: TaskQuery, limit: int | None) -> tuple[str, list[Any]] | None:
    found = _where(query)
    if found is None:
        return None
    where, params = found
    sql = f"SELECT {_HEAD} FROM tasks{where} ORDER BY created_at, id"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return sql, params


def _counting(query: TaskQuery) -> tuple[str, list[Any]] | None:
    if query.company is not None and query.side is None:
        # Either side, as two searches that each read only an index (the dashboard): tasks
        # the company requested, plus those it received from another company.
        requested = _where(attrs.evolve(query, side=Side.REQUESTER))
        received = _where(attrs.evolve(query, side=Side.RECIPIENT))
        if requested is None or received is None:
            return None
        sql = (
            f"SELECT kind, state, COUNT(*) FROM (SELECT kind, state FROM tasks{requested[0]} "
            f"UNION ALL SELECT kind, state FROM tasks{received[0]} AND requester_company <> ?) "
            "GROUP BY kind, state ORDER BY kind, state"
        )
        return sql, [*requested[1], *received[1], query.company]
    found = _where(query)
    if found is None:
        return None
    where, params = found
    sql = (
        f"SELECT kind, state, COUNT(*) FROM tasks{where} GROUP BY kind, state ORDER BY kind, state"
    )
    return sql, params


def _log_broken_row(error: DeserializationError) -> None:
    # Looked up when needed: importing taskflow configures and creates nothing.
    logging.getLogger("taskflow.adapters.sqlite").warning(
        "skipped a stored task that does not load: %s", error
    )


class SqliteRepository:
    """Stores tasks and their outbox in a SQLite database file (or ":memory:").

    `timeout` is how long a write waits for another connection's write lock (seconds);
    `synchronous` is SQLite's durability setting (NORMAL: a committed write survives a crash
    of the process; FULL: also a power cut). A row that no longer loads is skipped by `query`
    and passed to `on_broken_row` (default: a logged warning); `get` of it raises
    `DeserializationError`, and `broken_rows` lists them all. Up to `cache_size` loaded tasks
    are kept by id and version, so rereading an unchanged task costs no deserialization;
    pass one `serializer` (of the same registry) to share its generated code between
    repositories.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        registry: Registry,
        *,
        timeout: float = 30.0,
        synchronous: str = "NORMAL",
        on_broken_row: Callable[[DeserializationError], None] | None = None,
        cache_size: int = 4096,
        serializer: Serializer | None = None,
    ) -> None:
        self._path = os.fspath(path)
        if synchronous.upper() not in _SYNCHRONOUS:
            msg = (
                f"SqliteRepository: synchronous must be one of {', '.join(_SYNCHRONOUS)}, "
                f"got {synchronous!r}"
            )
            raise InvalidPayload(msg, field="synchronous")
        self._registry = registry
        self._serializer = serializer if serializer is not None else Serializer(registry)
        # Loaded tasks by (id, version): a stored row of one id and version never changes, so
        # a hit skips the JSON parse and the cattrs structuring (most of a read's cost).
        self._cache: dict[tuple[str, int], Task] = {}
        self._cache_size = max(cache_size, 0)
        self._cache_lock = threading.Lock()
        self._on_broken_row = on_broken_row if on_broken_row is not None else _log_broken_row
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._conn: sqlite3.Connection | None = None
        if self._path not in (_MEMORY, ""):
            _create_private(self._path)
        try:
            conn = sqlite3.connect(
                self._path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._error("open the database", exc) from exc
        # Invalid UTF-8 in a row must break that row only (DeserializationError), not the query:
        # undecodable bytes are kept as surrogates, which `check_text` refuses when loading.
        conn.text_factory = _decode
        self._conn = conn
        try:
            if self._path not in (_MEMORY, ""):
                conn.execute("PRAGMA journal_mode = WAL").fetchall()
            conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            # Deleted and overwritten content is zeroed, so an erased history leaves no copy
            # in free pages of the file (the WAL keeps old frames until a checkpoint).
            conn.execute("PRAGMA secure_delete = ON")
            self._prepare_schema(conn)
            self._sync_fields(conn)
        except BaseException as exc:
            conn.close()
            self._conn = None
            if isinstance(exc, sqlite3.Error):
                raise self._error("open the database", exc) from exc
            raise

    @property
    def path(self) -> str:
        """Return the path the repository was opened on (or ":memory:")."""
        return self._path

    # --- the TaskRepository port -----------------------------------------------------------

    def get(self, task_id: TaskId) -> Task:
        """Return the stored task, or raise `TaskNotFound`; a row that does not load raises `DeserializationError`."""
        check_arguments("get", task_id=task_id)
        with self._reading(f"read task '{task_id}'") as conn:
            row = conn.execute(f"SELECT {_HEAD} FROM tasks WHERE id = ?", (task_id,)).fetchone()
            if row is None:
                raise TaskNotFound(task_id)
            found, broken = self._load_rows(conn, [row])
        if broken:
            raise broken[0]
        return found[0]

    def commit(self, changes: Changeset) -> tuple[int, ...]:
        """Write every task and message of `changes` in one transaction; return the messages' ids.

        One conditional UPDATE per saved task; a refusal (`ConcurrencyConflict`, `TaskNotFound`,
        `InvalidPayload`) rolls the whole transaction back, so nothing is written.
        """
        check_changeset(changes)
        added = [(task, self._dump(task)) for task in changes.added]
        saved = [(task, expected, self._dump(task)) for task, expected in changes.saved]
        messages = [(m, m.body) for m in changes.messages]
        what = _describe_commit(changes)
        with self._writing(what) as conn:
            for mark in changes.marks:
                if not conn.execute(_INSERT_MARK, (mark,)).fetchall():
                    raise MarkTaken(mark)
            for task, body in added:
                inserted = conn.execute(_INSERT_TASK, (task.id, *_columns(task, body))).fetchall()
                if not inserted:
                    (stored,) = conn.execute(
                        "SELECT version FROM tasks WHERE id = ?", (task.id,)
                    ).fetchone()
                    raise ConcurrencyConflict(task.number, 0, stored, exists=True)
                pk = inserted[0][0]
                self._put_assignees(conn, pk, task, None)
                self._put_fields(conn, pk, task, None)
                self._put_rows(conn, pk, task, 0, 0)
            for task, expected, body in saved:
                found = conn.execute(_STORED, (task.id,)).fetchone()
                if found is None:
                    raise TaskNotFound(task.id)
                pk, version, history_len, comments_len, schema, workflow_version = found
                if version != expected:
                    raise ConcurrencyConflict(task.number, expected, version)
                conn.execute(_UPDATE_TASK, (*_columns(task, body), pk, expected))
                # The cached entry of the expected version is what the row held before this UPDATE.
                before = self._cache.get((task.id, expected), _UNKNOWN)
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
            ids = tuple(
                conn.execute(
                    _INSERT_MESSAGE,
                    (
                        m.topic,
                        m.key,
                        m.task_id,
                        m.task_version,
                        0 if m.not_before is None else _micros(m.not_before),
                        body,
                    ),
                ).fetchone()[0]
                for m, body in messages
            )
        for task, _ in added:
            self._remember(task)
        for task, _, _ in saved:
            self._remember(task)
        return ids

    def marked(self, mark: str) -> bool:
        """Tell whether a commit stored `mark`."""
        check_arguments("marked", mark=mark)
        with self._reading("read a mark") as conn:
            return conn.execute("SELECT 1 FROM marks WHERE key = ?", (mark,)).fetchone() is not None

    def add(self, task: Task) -> None:
        """Store one new task; raise `ConcurrencyConflict` if its id is taken (the stored task stays)."""
        check_arguments("add", task=task)
        self.commit(Changeset(added=(task,)))

    def save(self, task: Task, expected_version: int) -> None:
        """Replace the stored task if its version is still `expected_version` (one conditional UPDATE)."""
        check_arguments("save", task=task, expected_version=expected_version)
        self.commit(Changeset(saved=((task, expected_version),)))

    def query(self, query: TaskQuery) -> list[Task]:
        """Return the tasks that match, ordered by creation time then id; rows that do not load are skipped."""
        check_arguments("query", query=query)
        check_indexed(query, self._registry, repr(self))
        found: list[Task] = []
        skipped = 0
        while True:
            # A broken row in the window is skipped; read a wider window so `limit` good ones come.
            limit = None if query.limit is None else query.limit + skipped
            select = _select(query, limit)
            if select is None:
                return []
            with self._reading("query tasks") as conn:
                rows = conn.execute(*select).fetchall()
                found, broken = self._load_rows(conn, rows)
            if limit is None or len(found) >= limit - skipped or len(rows) < limit:
                break
            skipped = len(broken)  # more than before, since the full window fell short
        for error in broken:
            self._on_broken_row(error)
        return found if query.limit is None else found[: query.limit]

    def count(self, query: TaskQuery) -> dict[tuple[str, str], int]:
        """Return how many matching tasks there are per (kind, state), from the columns alone."""
        check_arguments("count", query=query)
        check_indexed(query, self._registry, repr(self))
        select = _counting(query)
        if select is None:
            return {}
        with self._statements("count tasks") as conn:
            rows = conn.execute(*select).fetchall()
        return {(kind, state): n for kind, state, n in rows}

    def next_number(self, company: CompanyId) -> int:
        """Return the next task number of `company`; one atomic statement, so no two writers share one."""
        check_arguments("next_number", company=company)
        with self._statements(f"take a task number of {company}") as conn:
            (number,) = conn.execute(_NEXT_NUMBER, (company,)).fetchone()
        return int(number)

    # --- the outbox ------------------------------------------------------------------------

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
        """Lease up to `limit` ready messages to `worker`, oldest first, in one write transaction.

        The transaction holds SQLite's write lock, so two workers (threads or processes) never
        claim the same message while its lease lasts. A message whose body does not parse is
        moved to the dead letters with the reason, not returned.
        """
        check_claim(worker, now, lease, limit)
        at = _micros(now)
        clauses = ["not_before <= ?", "lease_until <= ?"]
        params: list[Any] = [at, at]
        if topics is not None:
            wanted = sorted(set(topics))
            if not wanted:
                return []
            clauses.append(f"topic IN ({', '.join('?' * len(wanted))})")
            params += wanted
        if ids is not None:
            chosen = sorted(set(ids))
            if not chosen:
                return []
            clauses.append(f"id IN ({', '.join('?' * len(chosen))})")
            params += chosen
        sql = (
            "UPDATE outbox SET attempts = attempts + 1, claimed_by = ?, lease_until = ? "
            f"WHERE id IN (SELECT id FROM outbox WHERE {' AND '.join(clauses)} ORDER BY id LIMIT ?) "
            "RETURNING id, topic, key, task_id, task_version, not_before, attempts, last_error, body"
        )
        until = _micros(now + lease)
        with self._writing("claim outbox messages") as conn:
            rows = conn.execute(sql, (worker, until, *params, limit)).fetchall()
            taken: list[OutboxEntry] = []
            for row in sorted(rows):
                entry, problem = _outbox_entry(row, worker, now + lease)
                if entry is not None:
                    taken.append(entry)
                    continue
                conn.execute(_BURY, (problem, at, row[0]))
                conn.execute("DELETE FROM outbox WHERE id = ?", (row[0],))
                _log_unreadable_message(self._path, row[0], problem)
        return taken

    def complete(self, entries: Iterable[OutboxEntry]) -> None:
        """Remove delivered messages whose claim is still the one given (same worker and attempt)."""
        entries = check_entries("complete", entries)
        done = [(e.id, e.claimed_by, e.attempts) for e in entries]
        if not done:
            return
        with self._writing("complete outbox messages") as conn:
            conn.executemany(
                "DELETE FROM outbox WHERE id = ? AND claimed_by IS ? AND attempts = ?", done
            )

    def retry(self, entry: OutboxEntry, *, not_before: datetime, error: str) -> None:
        """Give a claimed message back, ready again from `not_before`, with the error recorded."""
        check_arguments("retry", entry=entry, not_before=not_before, error=error)
        with self._writing("retry an outbox message") as conn:
            conn.execute(
                "UPDATE outbox SET claimed_by = NULL, lease_until = 0, not_before = ?, "
                "last_error = ? WHERE id = ? AND claimed_by IS ? AND attempts = ?",
                (_micros(not_before), error, entry.id, entry.claimed_by, entry.attempts),
            )

    def bury(self, entry: OutboxEntry, *, reason: str, at: datetime) -> None:
        """Move a claimed message to the dead letters with `reason`."""
        check_arguments("bury", entry=entry, reason=reason, at=at)
        with self._writing("bury an outbox message") as conn:
            held = conn.execute(
                "SELECT 1 FROM outbox WHERE id = ? AND claimed_by IS ? AND attempts = ?",
                (entry.id, entry.claimed_by, entry.attempts),
            ).fetchone()
            if held is None:
                return
            conn.execute(_BURY, (reason, _micros(at), entry.id))
            conn.execute("DELETE FROM outbox WHERE id = ?", (entry.id,))

    def pending(self, limit: int | None = None) -> list[OutboxEntry]:
        """Return up to `limit` messages not delivered nor buried, oldest first, leased or not."""
        check_arguments("pending", limit=limit)
        sql = (
            "SELECT id, topic, key, task_id, task_version, not_before, attempts, last_error, "
            "body, claimed_by, lease_until FROM outbox ORDER BY id"
        )
        params: tuple[Any, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            params = (max(limit, 0),)
        with self._statements("read the outbox") as conn:
            rows = conn.execute(sql, params).fetchall()
        found: list[OutboxEntry] = []
        for row in rows:
            lease = None if not row[10] else _from_micros(row[10])
            entry, _ = _outbox_entry(row[:9], row[9], lease)
            if entry is not None:
                found.append(entry)
        return found

    def dead_letters(self, limit: int | None = None) -> list[DeadLetter]:
        """Return up to `limit` dead letters, oldest first."""
        check_arguments("dead_letters", limit=limit)
        sql = (
            "SELECT id, topic, key, body, reason, attempts, buried_at, task_id, task_version "
            "FROM dead_letters ORDER BY id"
        )
        params: tuple[Any, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            params = (max(limit, 0),)
        with self._statements("read the dead letters") as conn:
            rows = conn.execute(sql, params).fetchall()
        return [
            DeadLetter(i, topic, key, body, reason, attempts, _from_micros(at), task_id, version)
            for i, topic, key, body, reason, attempts, at, task_id, version in rows
        ]

    def revive(self, ids: Iterable[int], *, now: datetime) -> int:
        """Put dead letters back in the outbox as new messages ready at `now`; return how many."""
        ids = check_ids("revive", ids)
        check_arguments("revive", now=now)
        chosen = sorted(set(ids))
        if not chosen:
            return 0
        marks = ", ".join("?" * len(chosen))
        with self._writing("revive dead letters") as conn:
            revived = conn.execute(
                "INSERT INTO outbox (topic, key, task_id, task_version, not_before, body) "
                f"SELECT topic, key, task_id, task_version, ?, body FROM dead_letters "
                f"WHERE id IN ({marks}) ORDER BY id",
                (_micros(now), *chosen),
            ).rowcount
            conn.execute(f"DELETE FROM dead_letters WHERE id IN ({marks})", chosen)
        return int(revived)

    def drop_dead_letters(self, ids: Iterable[int]) -> int:
        """Delete dead letters for good; return how many there were."""
        ids = check_ids("drop_dead_letters", ids)
        chosen = sorted(set(ids))
        if not chosen:
            return 0
        marks = ", ".join("?" * len(chosen))
        with self._writing("drop dead letters") as conn:
            dropped = conn.execute(f"DELETE FROM dead_letters WHERE id IN ({marks})", chosen)
            return int(dropped.rowcount)

    # --- beyond the port ---------------------------------------------------------------------

    def broken_rows(self) -> list[DeserializationError]:
        """Read every stored task and return the error of each row that no longer loads."""
        with self._reading("check every task") as conn:
            heads = conn.execute(f"SELECT {_HEAD} FROM tasks ORDER BY created_at, id").fetchall()
            broken: list[DeserializationError] = []
            for start in range(0, len(heads), _ROW_BATCH):
                batch = heads[start : start + _ROW_BATCH]
                broken += self._load_rows(conn, batch, cached=False)[1]
        return broken

    def check(self) -> list[IndexProblem]:
        """Report every task row whose query columns, assignee or field rows disagree with its JSON, and every row that does not load."""
        problems: list[IndexProblem] = []
        with self._reading("check every task's index columns") as conn:
            heads = conn.execute(
                f"SELECT {_HEAD}, {_CHECKED_COLUMNS} FROM tasks ORDER BY created_at, id"
            ).fetchall()
            assignees: dict[int, set[tuple[Any, ...]]] = {}
            for pk, *row in conn.execute(
                "SELECT task_pk, company, user_id, ball_company FROM task_assignees"
            ):
                assignees.setdefault(pk, set()).add(tuple(row))
            fields: dict[int, set[tuple[Any, ...]]] = {}
            for pk, *row in conn.execute("SELECT task_pk, name, type, value FROM task_fields"):
                fields.setdefault(pk, set()).add(tuple(row))
            for start in range(0, len(heads), _ROW_BATCH):
                batch = heads[start : start + _ROW_BATCH]
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
        head: tuple[Any, ...],
        assignees: dict[int, set[tuple[Any, ...]]],
        fields: dict[int, set[tuple[Any, ...]]],
    ) -> list[IndexProblem]:
        """Return how a loaded task's stored columns and rows differ from what its data gives."""
        pk = head[3]
        stored = dict(zip(_CHECKED_COLUMNS.split(", "), head[6:], strict=True))
        wanted = dict(zip(_CHECKED_COLUMNS.split(", "), _columns(task, "")[:9], strict=True))
        problems = [
            IndexProblem(
                task.id, column, f"the column holds {stored[column]!r}, the task {value!r}"
            )
            for column, value in wanted.items()
            if stored[column] != value
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
            values = set(self._field_rows(task))
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

    def reindex(self, kinds: Iterable[str] | None = None) -> int:
        """Compute the indexed fields of every stored task of `kinds` (default: all) again; return how many.

        Run it after changing how an indexed field is computed under the same name; added,
        removed or renamed fields are indexed again on open by themselves.
        """
        with self._writing("index the tasks' fields again") as conn:
            if kinds is None:
                stored = conn.execute("SELECT DISTINCT kind FROM tasks").fetchall()
                wanted = {kind for (kind,) in stored} | set(self._registry.names)
            else:
                wanted = set(kinds)
            done, broken = self._reindex(conn, wanted)
        for error in broken:
            self._on_broken_row(error)
        return done

    def query_plan(self, query: TaskQuery, *, count: bool = False) -> list[str]:
        """Return SQLite's plan (EXPLAIN QUERY PLAN) for `query`, or for its `count`."""
        select = _counting(query) if count else _select(query, query.limit)
        if select is None:
            return []
        sql, params = select
        with self._statements("explain a query") as conn:
            rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
        return [str(row[-1]) for row in rows]

    def close(self) -> None:
        """Close the connection; the repository cannot be used afterwards. Closing twice is fine."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    def __enter__(self) -> SqliteRepository:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqliteRepository({self._path!r})"

    # --- internals ---------------------------------------------------------------------------

    def _error(self, what: str, exc: BaseException) -> StorageError:
        msg = f"SQLite database {self._path}: could not {what}: {exc}"
        return StorageError(msg, database=self._path)

    def _connection(self, what: str) -> sqlite3.Connection:
        if self._conn is None:
            msg = f"SQLite database {self._path}: cannot {what}: the repository was closed"
            raise StorageError(msg, database=self._path)
        if os.getpid() != self._pid:
            msg = (
                f"SQLite database {self._path}: cannot {what} in process {os.getpid()}: the "
                f"repository was opened in process {self._pid}; open one in each process"
            )
            raise StorageError(msg, database=self._path)
        return self._conn

    @contextmanager
    def _statements(self, what: str) -> Iterator[sqlite3.Connection]:
        """Hold the lock for statements that are each their own transaction."""
        with self._lock:
            conn = self._connection(what)
            try:
                yield conn
            except (UnicodeEncodeError, OverflowError) as exc:
                raise self._unstorable(what, exc) from exc
            except sqlite3.Error as exc:
                raise self._error(what, exc) from exc

    @contextmanager
    def _reading(self, what: str) -> Iterator[sqlite3.Connection]:
        """Hold the lock and one read transaction, so a task row and its rows are one snapshot."""
        with self._statements(what) as conn:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    with suppress(sqlite3.Error):
                        conn.execute("COMMIT")

    @contextmanager
    def _writing(self, what: str) -> Iterator[sqlite3.Connection]:
        """Hold the lock and one write transaction: committed at the end, rolled back on any error."""
        with self._lock:
            conn = self._connection(what)
            try:
                # IMMEDIATE takes the write lock now (waiting up to `timeout`), never halfway.
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    # If even the rollback fails, SQLite has ended the transaction itself.
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if isinstance(exc, UnicodeEncodeError | OverflowError):
                    raise self._unstorable(what, exc) from exc
                if isinstance(exc, sqlite3.Error):
                    raise self._error(what, exc) from exc
                raise

    def _unstorable(self, what: str, exc: BaseException) -> InvalidPayload:
        msg = (
            f"SQLite database {self._path}: cannot {what}: a value cannot be stored "
            f"({exc}); text must be valid Unicode and whole numbers fit in 64 bits"
        )
        return InvalidPayload(msg)

    def _prepare_schema(self, conn: sqlite3.Connection) -> None:
        found = self._stored_version(conn)
        if found == STORAGE_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            found = self._stored_version(conn)  # another process may have created it meanwhile
            if found is None:
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (STORAGE_VERSION,))
                # Nothing is stored yet, so every declared field is indexed (for no task).
                conn.executemany(
                    "INSERT INTO indexed_fields (kind, name) VALUES (?, ?)",
                    sorted(self._declared()),
                )
            elif found > STORAGE_VERSION:
                msg = (
                    f"SQLite database {self._path} has storage schema version {found}, newer "
                    f"than the newest this taskflow opens ({STORAGE_VERSION}); upgrade taskflow"
                )
                raise StorageError(msg, database=self._path)
            else:
                for version in range(found, STORAGE_VERSION):
                    for statement in _MIGRATIONS[version]:
                        conn.execute(statement)
                conn.execute("UPDATE schema_version SET version = ?", (STORAGE_VERSION,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _stored_version(self, conn: sqlite3.Connection) -> int | None:
        table = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        if table is None:
            return None
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        if row is None or not isinstance(row[0], int):
            msg = (
                f"SQLite database {self._path} has a schema_version table without a version; "
                "it was not written by taskflow or was damaged"
            )
            raise StorageError(msg, database=self._path)
        return row[0]

    def _declared(self) -> set[tuple[str, str]]:
        return {(kind.name, name) for kind in self._registry for name in kind.indexed}

    def _sync_fields(self, conn: sqlite3.Connection) -> None:
        """Index again the tasks of kinds whose indexed fields differ from those stored with them.

        This back-fills a database migrated from storage version 1, and follows a host that
        adds, removes or renames an indexed field; one transaction, so other processes wait.
        """
        declared = self._declared()
        if set(conn.execute("SELECT kind, name FROM indexed_fields").fetchall()) == declared:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have done it meanwhile.
            stored = set(conn.execute("SELECT kind, name FROM indexed_fields").fetchall())
            broken = self._reindex(conn, {kind for kind, _ in stored ^ declared})[1]
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        for error in broken:
            self._on_broken_row(error)

    def _reindex(
        self, conn: sqlite3.Connection, kinds: set[str]
    ) -> tuple[int, list[DeserializationError]]:
        """Rewrite the index rows of every task of `kinds` and record their declarations."""
        names = sorted(kinds)
        if not names:
            return 0, []
        marks = ", ".join("?" * len(names))
        conn.execute(
            "DELETE FROM task_fields WHERE task_pk IN "
            f"(SELECT pk FROM tasks WHERE kind IN ({marks}))",
            names,
        )
        conn.execute(f"DELETE FROM indexed_fields WHERE kind IN ({marks})", names)
        conn.executemany(
            "INSERT INTO indexed_fields (kind, name) VALUES (?, ?)",
            sorted(pair for pair in self._declared() if pair[0] in kinds),
        )
        known = [name for name in names if name in self._registry and self._registry[name].indexed]
        if not known:
            return 0, []
        marks = ", ".join("?" * len(known))
        heads = conn.execute(f"SELECT {_HEAD} FROM tasks WHERE kind IN ({marks})", known).fetchall()
        done = 0
        broken: list[DeserializationError] = []
        for start in range(0, len(heads), _ROW_BATCH):
            tasks, failed = self._load_rows(conn, heads[start : start + _ROW_BATCH], cached=False)
            broken += failed  # skipped by queries until they load again
            pks = {task_id: pk for task_id, _, _, pk, _, _ in heads[start : start + _ROW_BATCH]}
            inserts = [(*row, pks[task.id]) for task in tasks for row in self._field_rows(task)]
            conn.executemany(_INSERT_FIELD, inserts)
            done += len(tasks)
        return done, broken

    def _field_rows(self, task: Task) -> list[tuple[str, str | None, Any]]:
        """Return the (name, type, value) rows of `task`'s index values; raise `InvalidPayload` for a bad one."""
        if task.kind not in self._registry:
            return []
        values = index_values(self._registry[task.kind], task)
        return [(name, index_tag(value), _sql_value(value)) for name, value in values.items()]

    def _dump(self, task: Task) -> str:
        """Return the task row's JSON: the task with its history and comments left for their rows."""
        head = replace_fields(task, {"history": (), "comments": ()})
        return json.dumps(self._serializer.dump_task(head), separators=(",", ":"))

    def _put_rows(
        self, conn: sqlite3.Connection, pk: int, task: Task, history_kept: int, comments_kept: int
    ) -> None:
        """Append the history entries and comments after the kept ones (-1: rewrite all)."""
        for table, insert, items, kept, dump in (
            ("task_history", _INSERT_ENTRY, task.history, history_kept, self._dump_entry(task)),
            ("task_comments", _INSERT_COMMENT, task.comments, comments_kept, self._dump_comment),
        ):
            if kept < 0:
                conn.execute(f"DELETE FROM {table} WHERE task_pk = ?", (pk,))
                kept = 0
            if len(items) > kept:
                conn.executemany(
                    insert, [(pk, seq, dump(items[seq])) for seq in range(kept, len(items))]
                )

    def _dump_entry(self, task: Task) -> Callable[[Any], str]:
        kind = task.kind
        dump_entry = self._serializer.dump_entry

        def dump(entry: Any) -> str:
            data = dump_entry(kind, entry)
            del data["schema"]  # the task row's schema covers its rows
            return json.dumps(data, separators=(",", ":"))

        return dump

    def _dump_comment(self, comment: Any) -> str:
        data = self._serializer.converter.unstructure(comment, Comment)
        return json.dumps(data, separators=(",", ":"))

    def _remember(self, task: Task) -> None:
        if not self._cache_size:
            return
        with self._cache_lock:
            self._cache[(task.id, task.version)] = task
            while len(self._cache) > self._cache_size:
                del self._cache[next(iter(self._cache))]

    def _load(
        self, task_id: str, version: int, body: str, entries: list[str], comments: list[str]
    ) -> Task:
        try:
            data = json.loads(body)
            if not isinstance(data, dict):
                msg = "the task row holds JSON that is not an object"
                raise ValueError(msg)
            for key, rows in (("history", entries), ("comments", comments)):
                if rows:
                    if data.get(key):
                        msg = f"{key} is both in the task row and in rows of its own"
                        raise ValueError(msg)
                    data[key] = [json.loads(row) for row in rows]
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

    def _load_rows(
        self,
        conn: sqlite3.Connection,
        rows: Iterable[tuple[str, int, str, int, int, int]],
        *,
        cached: bool = True,
    ) -> tuple[list[Task], list[DeserializationError]]:
        """Load task rows (see `_HEAD`), reading the history and comment rows of those not cached."""
        heads = list(rows)
        hits: dict[int, Task] = {}
        if cached:
            for task_id, version, _, pk, _, _ in heads:
                hit = self._cache.get((task_id, version))
                if hit is not None:
                    hits[pk] = hit
        missing = [
            (pk, history_len, comments_len)
            for _, _, _, pk, history_len, comments_len in heads
            if pk not in hits
        ]
        entries = _read_rows(conn, "task_history", [(pk, n) for pk, n, _ in missing])
        comments = _read_rows(conn, "task_comments", [(pk, n) for pk, _, n in missing])
        found: list[Task] = []
        broken: list[DeserializationError] = []
        for task_id, version, body, pk, history_len, comments_len in heads:
            hit = hits.get(pk)
            if hit is not None:
                found.append(hit)
                continue
            try:
                for what, expected, got in (
                    ("history entries", history_len, entries.get(pk, [])),
                    ("comments", comments_len, comments.get(pk, [])),
                ):
                    if len(got) != expected:
                        msg = (
                            f"cannot load task '{task_id}': the row counts {expected} {what} "
                            f"but {len(got)} are stored"
                        )
                        raise DeserializationError(msg, task_id=task_id)
                found.append(
                    self._load(task_id, version, body, entries.get(pk, []), comments.get(pk, []))
                )
            except DeserializationError as error:
                broken.append(error)
        return found, broken

    def _put_assignees(
        self, conn: sqlite3.Connection, pk: int, task: Task, before: Task | object | None
    ) -> None:
        """Write the assignee rows of `task`; `before` is the replaced version, if known."""
        if isinstance(before, Task) and before.assignees == task.assignees:
            # Most actions keep the assignees; only the ball may have moved.
            if before.ball_company != task.ball_company:
                conn.execute(
                    "UPDATE task_assignees SET ball_company = ? WHERE task_pk = ?",
                    (task.ball_company, pk),
                )
            return
        if before is not None:
            conn.execute("DELETE FROM task_assignees WHERE task_pk = ?", (pk,))
        if task.assignees:
            ball = task.ball_company
            conn.executemany(
                _INSERT_ASSIGNEE, [(pk, ref.company, ref.user, ball) for ref in task.assignees]
            )

    def _put_fields(
        self, conn: sqlite3.Connection, pk: int, task: Task, before: Task | object | None
    ) -> None:
        """Write the index rows of `task`'s indexed fields; `before` is the replaced version, if known.

        A value of the wrong type raises `InvalidPayload` here, inside the write's transaction,
        which then writes nothing.
        """
        rows = self._field_rows(task)
        if not isinstance(before, Task):
            if before is not None:  # replaced, but its old values are not known: rewrite all
                conn.execute("DELETE FROM task_fields WHERE task_pk = ?", (pk,))
            if rows:
                conn.executemany(_INSERT_FIELD, [(*row, pk) for row in rows])
            return
        # Most actions change no indexed value: write only the fields that did change.
        old = {name: (tag, value) for name, tag, value in self._field_rows(before)}
        new = {name: (tag, value) for name, tag, value in rows}
        gone = [(pk, name) for name, stored in old.items() if new.get(name) != stored]
        if gone:
            conn.executemany("DELETE FROM task_fields WHERE task_pk = ? AND name = ?", gone)
        added = [(name, *now, pk) for name, now in new.items() if old.get(name) != now]
        if added:
            conn.executemany(_INSERT_FIELD, added)


def _create_private(path: str) -> None:
    """Create the database file readable and writable by its owner only (0600), if it is new.

    Created here with `O_EXCL` and mode 0600 rather than by SQLite (which uses 0644 less the
    umask), so no other user can open it between its creation and a chmod. SQLite gives the
    -wal and -shm files it creates later the mode of the database file. An existing file is
    left as its owner set it.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError:
        return  # a directory that does not exist, say: sqlite3.connect reports it
    os.close(fd)


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")
