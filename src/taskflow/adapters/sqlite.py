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
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any

from taskflow.adapters._common import check_arguments, check_entries, check_ids
from taskflow.adapters._sql import Dialect, SqlStore, counting, select
from taskflow.domain.outbox import OutboxEntry, OutboxMessage
from taskflow.domain.query import (
    Between,
    IndexValue,
    TaskQuery,
    index_tag,
)
from taskflow.domain.registry import Registry
from taskflow.domain.task import Task
from taskflow.domain.values import TaskId
from taskflow.errors import (
    DeserializationError,
    InvalidPayload,
    StorageError,
    TaskNotFound,
)
from taskflow.serialization import Serializer

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
_MEMORY = ":memory:"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

_COLUMNS = (
    "kind, state, requester_company, recipient_company, ball_company, is_open, "
    "due_at, created_at, number, version, body, history_len, comments_len"
)
_INSERT_MESSAGE = (
    "INSERT INTO outbox (topic, key, task_id, task_version, not_before, body) "
    "VALUES (?, ?, ?, ?, ?, ?) RETURNING id"
)
# Shared statements (adapters._sql) name tables as {s}.name and parameters as %s.
_TRANSLATED: dict[str, str] = {}


def _micros(at: datetime) -> int:
    """Return an aware time as whole microseconds since 1970-01-01 UTC: sortable as the instant."""
    return (at - _EPOCH) // _MICROSECOND


def _from_micros(micros: int) -> datetime:
    """Return the aware UTC time that `_micros` made `micros` from."""
    return _EPOCH + micros * _MICROSECOND


def _any_of(column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)


def _from_stored_time(micros: int | None) -> datetime | None:
    """Return the time a stored time column holds; 0 (or NULL) means none."""
    return None if not micros else _from_micros(micros)


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def _same(text: str) -> str:
    return text


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


def _field_value(task: Task, name: str, value: IndexValue) -> tuple[Any, ...]:
    return (_sql_value(value),)


def _sql_value(value: IndexValue) -> Any:
    """Return an index value as stored: bools as 0/1, times as UTC microseconds."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime):
        return _micros(value)
    return value


def _field_clause(name: str, condition: IndexValue | Between) -> tuple[str, list[Any]]:
    # The primary key (name, type, value, task_pk) serves equality and ranges alike.
    sql = "pk IN (SELECT task_pk FROM {s}.task_fields WHERE name = %s AND type = %s"
    if isinstance(condition, Between):
        params: list[Any] = [name, condition.tag]
        if condition.low is not None:
            sql += " AND value >= %s"
            params.append(_sql_value(condition.low))
        if condition.high is not None:
            sql += " AND value <= %s"
            params.append(_sql_value(condition.high))
        return sql + ")", params
    return sql + " AND value = %s)", [name, index_tag(condition), _sql_value(condition)]


def _open_due(is_open: bool | None, due_before: datetime | None) -> tuple[list[str], list[Any]]:
    if due_before is not None:
        # Naming both open flags lets the (is_open, due_at) index serve a due-before query alone.
        flags = (1, 0) if is_open is None else (int(is_open),)
        marks = ", ".join(["%s"] * len(flags))
        return [f"is_open IN ({marks}) AND due_at < %s"], [*flags, _micros(due_before)]
    if is_open is not None:
        # Half the table is open: never worth an index by itself (the unary + says so).
        return ["+is_open = %s"], [int(is_open)]
    return [], []


def _select(query: TaskQuery, limit: int | None) -> tuple[str, list[Any]] | None:
    """Return SQLite's SELECT of `query`'s task rows and its parameters, or None for no match."""
    found = select(query, limit, _DIALECT)
    return None if found is None else (_translate(found[0]), found[1])


def _translate(text: str) -> str:
    """Return a shared statement in SQLite's SQL: no schema, `?` parameters."""
    if "%s" not in text and "{s}" not in text:
        return text
    found = _TRANSLATED.get(text)
    if found is None:
        found = _TRANSLATED[text] = text.replace("{s}.", "").replace("%s", "?")
    return found


_DIALECT = Dialect(
    loads=json.loads,
    dumps=_dumps,
    to_time=_micros,
    from_time=_from_stored_time,
    stored_text=_same,
    message_body=_same,
    original_body=_same,
    any_of=_any_of,
    # SQLite limits a statement's parameters.
    row_batch=500,
    body="body",
    head="id, version, body, pk, history_len, comments_len",
    insert_task=(
        f"INSERT INTO tasks (id, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO NOTHING RETURNING pk"
    ),
    # What a save needs to know of the stored row: whether it may append to its rows.
    stored=(
        "SELECT pk, version, history_len, comments_len, json_extract(body, '$.schema'), "
        "json_extract(body, '$.workflow_version') FROM tasks WHERE id = ?"
    ),
    update_task=(
        "UPDATE tasks SET kind = ?, state = ?, requester_company = ?, recipient_company = ?, "
        "ball_company = ?, is_open = ?, due_at = ?, created_at = ?, number = ?, version = ?, "
        "body = ?, history_len = ?, comments_len = ? WHERE pk = ? AND version = ?"
    ),
    insert_entry="INSERT INTO task_history (task_pk, seq, body) VALUES (?, ?, ?)",
    insert_comment="INSERT INTO task_comments (task_pk, seq, body) VALUES (?, ?, ?)",
    insert_field="INSERT INTO task_fields (task_pk, name, type, value) VALUES (?, ?, ?, ?)",
    held="id = ? AND claimed_by IS ? AND attempts = ?",
    unleased="0",
    lock="",  # a write transaction holds the whole database
    skip_locked="",
    ready="not_before <= %s AND lease_until <= %s",
    field_clause=_field_clause,
    open_due=_open_due,
    unindexed="+",
    columns=_columns,
    field_value=_field_value,
    field_rows="SELECT task_pk, name, type, value FROM task_fields",
)


def _log_broken_row(error: DeserializationError) -> None:
    # Looked up when needed: importing taskflow configures and creates nothing.
    logging.getLogger("taskflow.adapters.sqlite").warning(
        "skipped a stored task that does not load: %s", error
    )


class SqliteRepository(SqlStore):
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
        self._dialect = _DIALECT
        self._init_store(
            registry,
            serializer,
            cache_size,
            on_broken_row if on_broken_row is not None else _log_broken_row,
        )
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
            self._sync_fields()
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
            head = self._dialect.head
            row = conn.execute(f"SELECT {head} FROM tasks WHERE id = ?", (task_id,)).fetchone()
            if row is None:
                raise TaskNotFound(task_id)
            found, broken = self._load_rows(conn, [row])
        if broken:
            raise broken[0]
        return found[0]

    # --- the outbox ------------------------------------------------------------------------

    def complete(self, entries: Iterable[OutboxEntry]) -> None:
        """Remove delivered messages whose claim is still the one given (same worker and attempt)."""
        entries = check_entries("complete", entries)
        done = [(e.id, e.claimed_by, e.attempts) for e in entries]
        if not done:
            return
        with self._writing("complete outbox messages") as conn:
            conn.executemany(f"DELETE FROM outbox WHERE {_DIALECT.held}", done)

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

    def query_plan(self, query: TaskQuery, *, count: bool = False) -> list[str]:
        """Return SQLite's plan (EXPLAIN QUERY PLAN) for `query`, or for its `count`."""
        found = counting(query, _DIALECT) if count else select(query, query.limit, _DIALECT)
        if found is None:
            return []
        sql, params = found
        with self._statements("explain a query") as conn:
            rows = conn.execute(f"EXPLAIN QUERY PLAN {_translate(sql)}", params).fetchall()
        return [str(row[-1]) for row in rows]

    def close(self) -> None:
        """Close the connection; the repository cannot be used afterwards. Closing twice is fine."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

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

    # --- the dialect's part of the shared logic (adapters._sql) --------------------------------

    def _q(self, text: str) -> str:
        """Return a shared statement in SQLite's SQL: no schema, `?` parameters."""
        return _translate(text)

    def _unreadable_message(self, entry_id: int, problem: str) -> None:
        logging.getLogger("taskflow.adapters.sqlite").warning(
            "SQLite database %s: moved outbox message %d to the dead letters: %s",
            self._path,
            entry_id,
            problem,
        )

    def _single(self, what: str) -> AbstractContextManager[sqlite3.Connection]:
        return self._statements(what)

    def _many(self, conn: Any, text: str, rows: list[tuple[Any, ...]]) -> None:
        conn.executemany(text, rows)

    def _queue(
        self, conn: Any, messages: list[tuple[OutboxMessage, str]]
    ) -> Callable[[], tuple[int, ...]]:
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
        return lambda: ids


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
