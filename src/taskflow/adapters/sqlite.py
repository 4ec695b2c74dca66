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
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import attrs

from taskflow.domain.notifications import Notification
from taskflow.domain.query import (
    Between,
    IndexValue,
    TaskQuery,
    check_indexed,
    index_tag,
    index_values,
)
from taskflow.domain.registry import Registry
from taskflow.domain.task import Task
from taskflow.domain.values import CompanyId, Side, TaskId
from taskflow.errors import (
    ConcurrencyConflict,
    DeserializationError,
    InvalidPayload,
    StorageError,
    TaskNotFound,
)
from taskflow.outbox import OutboxEntry
from taskflow.serialization import Serializer

__all__ = ["STORAGE_VERSION", "SqliteRepository"]

STORAGE_VERSION: int = 2
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
# _MIGRATIONS[n] is a tuple of SQL statements. Steps are never edited once released. Values
# only Python can compute (index values) are filled in after the steps, by `_sync_fields`.
_MIGRATIONS: dict[int, tuple[str, ...]] = {1: _QUERY_TABLES_V2}

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
        body TEXT NOT NULL
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
    # AUTOINCREMENT: a delivered (deleted) entry's id is never given to a new one.
    """CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        task_id TEXT NOT NULL,
        task_version INTEGER NOT NULL,
        body TEXT NOT NULL
    )""",
    *_QUERY_TABLES_V2,
)

_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
_UNKNOWN = object()  # a replaced version that is not in the cache
_MEMORY = ":memory:"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

_COLUMNS = (
    "kind, state, requester_company, recipient_company, ball_company, is_open, "
    "due_at, created_at, number, version, body"
)
_INSERT_TASK = (
    f"INSERT INTO tasks (id, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO NOTHING RETURNING pk"
)
_UPDATE_TASK = (
    "UPDATE tasks SET kind = ?, state = ?, requester_company = ?, recipient_company = ?, "
    "ball_company = ?, is_open = ?, due_at = ?, created_at = ?, number = ?, version = ?, "
    "body = ? WHERE id = ? AND version = ? RETURNING pk"
)
_INSERT_ASSIGNEE = (
    "INSERT INTO task_assignees (task_pk, company, user_id, ball_company) VALUES (?, ?, ?, ?)"
)
_INSERT_FIELD = "INSERT INTO task_fields (name, type, value, task_pk) VALUES (?, ?, ?, ?)"
_NEXT_NUMBER = (
    "INSERT INTO task_numbers (company, last) VALUES (?, 1) "
    "ON CONFLICT (company) DO UPDATE SET last = last + 1 RETURNING last"
)


def _micros(at: datetime) -> int:
    """Return an aware time as whole microseconds since 1970-01-01 UTC: sortable as the instant."""
    return (at - _EPOCH) // _MICROSECOND


def _columns(task: Task, body: str) -> tuple[Any, ...]:
    due = None if task.due_at is None else _micros(task.due_at)
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
    sql = f"SELECT id, version, body FROM tasks{where} ORDER BY created_at, id"
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
    """Stores tasks in a SQLite database file (or ":memory:"); an `OutboxRepository`.

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
        try:
            conn = sqlite3.connect(
                self._path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._error("open the database", exc) from exc
        self._conn = conn
        try:
            if self._path not in (_MEMORY, ""):
                conn.execute("PRAGMA journal_mode = WAL").fetchall()
            conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
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
        with self._statements(f"read task '{task_id}'") as conn:
            row = conn.execute(
                "SELECT version, body FROM tasks WHERE id = ?", (task_id,)
            ).fetchone()
        if row is None:
            raise TaskNotFound(task_id)
        return self._load(task_id, row[0], row[1])

    def add(self, task: Task, *, notifications: Sequence[Notification] = ()) -> None:
        """Store a new task and queue its notifications, in one transaction.

        Raises `ConcurrencyConflict` if the id is taken (the stored task stays, nothing is queued).
        """
        body = self._dump(task)
        with self._writing(f"add task {task.number}") as conn:
            inserted = conn.execute(_INSERT_TASK, (task.id, *_columns(task, body))).fetchall()
            if not inserted:
                (stored,) = conn.execute(
                    "SELECT version FROM tasks WHERE id = ?", (task.id,)
                ).fetchone()
                raise ConcurrencyConflict(task.number, 0, stored, exists=True)
            self._put_assignees(conn, inserted[0][0], task, None)
            self._put_fields(conn, inserted[0][0], task, None)
            self._queue(conn, task, notifications)
        self._remember(task)

    def save(
        self, task: Task, expected_version: int, *, notifications: Sequence[Notification] = ()
    ) -> None:
        """Replace the stored task if its version is still `expected_version` (one conditional UPDATE).

        A refused save (`ConcurrencyConflict`, `TaskNotFound`, `InvalidPayload`) writes nothing
        and queues nothing.
        """
        if task.version <= expected_version:
            msg = (
                f"saving task {task.number} needs a version above {expected_version}, "
                f"got {task.version}"
            )
            raise InvalidPayload(msg, field="version")
        body = self._dump(task)
        with self._writing(f"save task {task.number}") as conn:
            params = (*_columns(task, body), task.id, expected_version)
            updated = conn.execute(_UPDATE_TASK, params).fetchall()
            if not updated:
                stored = conn.execute(
                    "SELECT version FROM tasks WHERE id = ?", (task.id,)
                ).fetchone()
                if stored is None:
                    raise TaskNotFound(task.id)
                raise ConcurrencyConflict(task.number, expected_version, stored[0])
            # The cached entry of the expected version is what the row held before this UPDATE.
            before = self._cache.get((task.id, expected_version), _UNKNOWN)
            self._put_assignees(conn, updated[0][0], task, before)
            self._put_fields(conn, updated[0][0], task, before)
            self._queue(conn, task, notifications)
        self._remember(task)

    def query(self, query: TaskQuery) -> list[Task]:
        """Return the tasks that match, ordered by creation time then id; rows that do not load are skipped."""
        check_indexed(query, self._registry, repr(self))
        found: list[Task] = []
        skipped = 0
        while True:
            # A broken row in the window is skipped; read a wider window so `limit` good ones come.
            limit = None if query.limit is None else query.limit + skipped
            select = _select(query, limit)
            if select is None:
                return []
            with self._statements("query tasks") as conn:
                rows = conn.execute(*select).fetchall()
            found, broken = self._load_rows(rows)
            if limit is None or len(found) >= limit - skipped or len(rows) < limit:
                break
            skipped = len(broken)  # more than before, since the full window fell short
        for error in broken:
            self._on_broken_row(error)
        return found if query.limit is None else found[: query.limit]

    def count(self, query: TaskQuery) -> dict[tuple[str, str], int]:
        """Return how many matching tasks there are per (kind, state), from the columns alone."""
        check_indexed(query, self._registry, repr(self))
        select = _counting(query)
        if select is None:
            return {}
        with self._statements("count tasks") as conn:
            rows = conn.execute(*select).fetchall()
        return {(kind, state): n for kind, state, n in rows}

    def next_number(self, company: CompanyId) -> int:
        """Return the next task number of `company`; one atomic statement, so no two writers share one."""
        with self._statements(f"take a task number of {company}") as conn:
            (number,) = conn.execute(_NEXT_NUMBER, (company,)).fetchone()
        return int(number)

    # --- the outbox ------------------------------------------------------------------------

    def pending_notifications(self, limit: int | None = None) -> list[OutboxEntry]:
        """Return up to `limit` undelivered notifications, oldest first."""
        sql = "SELECT id, task_id, task_version, body FROM outbox ORDER BY id"
        params: tuple[Any, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            params = (max(limit, 0),)
        with self._statements("read the outbox") as conn:
            rows = conn.execute(sql, params).fetchall()
        return [self._entry(*row) for row in rows]

    def mark_delivered(self, ids: Iterable[int]) -> None:
        """Remove delivered notifications from the outbox; ids not pending are ignored."""
        delivered = [(entry_id,) for entry_id in ids]
        if not delivered:
            return
        with self._writing("mark notifications delivered") as conn:
            conn.executemany("DELETE FROM outbox WHERE id = ?", delivered)

    # --- beyond the port ---------------------------------------------------------------------

    def broken_rows(self) -> list[DeserializationError]:
        """Read every stored task and return the error of each row that no longer loads."""
        with self._statements("check every task") as conn:
            rows = conn.execute("SELECT id, version, body FROM tasks ORDER BY created_at, id")
            broken: list[DeserializationError] = []
            while batch := rows.fetchmany(1000):
                broken += self._load_rows(batch, cached=False)[1]
        return broken

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
        rows = conn.execute(
            f"SELECT pk, id, version, body FROM tasks WHERE kind IN ({marks})", known
        )
        done = 0
        broken: list[DeserializationError] = []
        while batch := rows.fetchmany(500):
            inserts: list[tuple[Any, ...]] = []
            for pk, task_id, version, body in batch:
                try:
                    task = self._load(task_id, version, body, cached=False)
                except DeserializationError as error:
                    broken.append(error)  # it is skipped by queries until it loads again
                    continue
                inserts += [(*row, pk) for row in self._field_rows(task)]
                done += 1
            conn.executemany(_INSERT_FIELD, inserts)
        return done, broken

    def _field_rows(self, task: Task) -> list[tuple[str, str | None, Any]]:
        """Return the (name, type, value) rows of `task`'s index values; raise `InvalidPayload` for a bad one."""
        if task.kind not in self._registry:
            return []
        values = index_values(self._registry[task.kind], task)
        return [(name, index_tag(value), _sql_value(value)) for name, value in values.items()]

    def _dump(self, task: Task) -> str:
        return json.dumps(self._serializer.dump_task(task), separators=(",", ":"))

    def _remember(self, task: Task) -> None:
        if not self._cache_size:
            return
        with self._cache_lock:
            self._cache[(task.id, task.version)] = task
            while len(self._cache) > self._cache_size:
                del self._cache[next(iter(self._cache))]

    def _load(self, task_id: str, version: int, body: str, *, cached: bool = True) -> Task:
        hit = self._cache.get((task_id, version)) if cached else None
        if hit is not None:
            return hit
        try:
            data = json.loads(body)
        except (TypeError, ValueError) as exc:
            msg = f"cannot load task '{task_id}': its stored JSON does not parse: {exc}"
            raise DeserializationError(msg, task_id=task_id) from exc
        task = self._serializer.load_task(data)
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
        self, rows: Iterable[tuple[str, int, str]], *, cached: bool = True
    ) -> tuple[list[Task], list[DeserializationError]]:
        found: list[Task] = []
        broken: list[DeserializationError] = []
        for task_id, version, body in rows:
            try:
                found.append(self._load(task_id, version, body, cached=cached))
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

    def _queue(
        self, conn: sqlite3.Connection, task: Task, notifications: Sequence[Notification]
    ) -> None:
        if not notifications:
            return
        unstructure = self._serializer.converter.unstructure
        conn.executemany(
            "INSERT INTO outbox (task_id, task_version, body) VALUES (?, ?, ?)",
            [
                (task.id, task.version, json.dumps(unstructure(n), separators=(",", ":")))
                for n in notifications
            ],
        )

    def _entry(self, entry_id: int, task_id: str, version: int, body: str) -> OutboxEntry:
        try:
            notification = self._serializer.converter.structure(json.loads(body), Notification)
        except Exception as exc:
            msg = (
                f"cannot load outbox entry {entry_id} of task '{task_id}' (version {version}): "
                f"{exc}"
            )
            raise DeserializationError(msg, task_id=task_id) from exc
        return OutboxEntry(entry_id, TaskId(task_id), version, notification)
