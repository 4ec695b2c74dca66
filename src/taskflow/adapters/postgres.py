"""A shared repository on PostgreSQL (psycopg 3 and its pool): many processes on many machines.

    repository = PostgresRepository("host=db dbname=app user=app", registry)   # or a pool

The data model is SQLite's (`taskflow.adapters.sqlite`) in PostgreSQL's own terms: one task row
holding the task as `jsonb` beside its query columns (times as `timestamptz`, ids and texts
compared by code point with `COLLATE "C"`), history entries and comments as rows of their own,
one row per assignee and per indexed value, per-company number counters taken with
`INSERT ... ON CONFLICT`, and the outbox. Every table lives in one PostgreSQL schema
(`schema=`, default `taskflow`), so the host's own tables are never in the way.

A `commit` is one READ COMMITTED transaction with one conditional `UPDATE ... WHERE pk AND
version` per saved task, after locking its row: a stale version raises `ConcurrencyConflict`
and writes nothing. Serialization failures and deadlocks become `ConcurrencyConflict` (the
service's retry handles them); a lost connection, a server that is down or a pool that has no
connection to give becomes `StorageError`, and a transaction the server did not see commit is
rolled back by it. Workers claim outbox messages with `FOR UPDATE SKIP LOCKED` and a lease, so
several processes deliver at once and never take the same message; `wait_for_messages` sleeps
until a commit queues one (LISTEN/NOTIFY).

The schema is created or upgraded on first use under an advisory lock, or beforehand from a
deploy step: `python -m taskflow.adapters.postgres upgrade DSN` (or `upgrade(dsn)`), with
`auto_upgrade=False` on the application's side. Docs: docs/storage.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import datetime
from typing import Any

from taskflow.adapters._common import check_arguments, check_entries, check_ids
from taskflow.adapters._sql import Dialect, SqlStore, describe_commit, select
from taskflow.domain.outbox import OutboxEntry, OutboxMessage
from taskflow.domain.query import (
    Between,
    IndexValue,
    TaskQuery,
    index_tag,
)
from taskflow.domain.registry import Registry
from taskflow.domain.task import Task, kept_of
from taskflow.domain.values import TaskId
from taskflow.errors import (
    ConcurrencyConflict,
    DeserializationError,
    InvalidPayload,
    StorageError,
    TaskflowError,
    TaskNotFound,
)
from taskflow.ports import Changeset
from taskflow.serialization import SCHEMA_VERSION, Serializer

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict
    from psycopg_pool import ConnectionPool
except ImportError as exc:  # pragma: no cover - the extra is installed wherever this is tested
    _MISSING = (
        "taskflow.adapters.postgres needs psycopg 3 and psycopg_pool: "
        "pip install 'taskflow[postgres]'"
    )
    raise ImportError(_MISSING) from exc

__all__ = ["STORAGE_VERSION", "PostgresRepository", "main", "stored_version", "upgrade"]

STORAGE_VERSION: int = 2
"""The version of the table layout this taskflow writes, and the newest it opens."""

_Conn = psycopg.Connection[tuple[Any, ...]]

# Every statement names its tables through `{s}`, the quoted schema (see `_Statements`).
_SCHEMA: tuple[str, ...] = (
    "CREATE TABLE {s}.schema_version (version integer NOT NULL)",
    """CREATE TABLE {s}.tasks (
        pk bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id text COLLATE "C" NOT NULL UNIQUE,
        kind text NOT NULL,
        state text NOT NULL,
        requester_company text NOT NULL,
        recipient_company text NOT NULL,
        ball_company text,
        is_open boolean NOT NULL,
        due_at timestamptz,
        created_at timestamptz NOT NULL,
        number text NOT NULL,
        version integer NOT NULL,
        schema integer NOT NULL,
        body jsonb NOT NULL,
        history_len integer NOT NULL,
        comments_len integer NOT NULL
    )""",
    # Results come by (created_at, id); the Teambox by ball; dashboards per side.
    "CREATE INDEX tasks_by_created ON {s}.tasks (created_at, id)",
    "CREATE INDEX tasks_by_ball ON {s}.tasks (ball_company, created_at, id)",
    "CREATE INDEX tasks_by_requester ON {s}.tasks (requester_company, kind, state, created_at)",
    "CREATE INDEX tasks_by_recipient ON {s}.tasks (recipient_company, kind, state, created_at)",
    # Partial indexes: open tasks in order, and the due dates of open tasks (SLA sweeps).
    "CREATE INDEX tasks_open_by_created ON {s}.tasks (created_at, id) WHERE is_open",
    "CREATE INDEX tasks_open_by_due ON {s}.tasks (due_at) WHERE is_open AND due_at IS NOT NULL",
    "CREATE INDEX tasks_closed_by_due ON {s}.tasks (due_at) "
    "WHERE NOT is_open AND due_at IS NOT NULL",
    """CREATE TABLE {s}.task_history (
        task_pk bigint NOT NULL,
        seq integer NOT NULL,
        body jsonb NOT NULL,
        PRIMARY KEY (task_pk, seq)
    )""",
    """CREATE TABLE {s}.task_comments (
        task_pk bigint NOT NULL,
        seq integer NOT NULL,
        body jsonb NOT NULL,
        PRIMARY KEY (task_pk, seq)
    )""",
    # The ball company is repeated here so an inbox reads only the user's tasks in court.
    """CREATE TABLE {s}.task_assignees (
        task_pk bigint NOT NULL,
        company text NOT NULL,
        user_id text NOT NULL,
        ball_company text,
        PRIMARY KEY (task_pk, company, user_id)
    )""",
    "CREATE INDEX task_assignees_by_user ON {s}.task_assignees (company, user_id, ball_company)",
    "CREATE TABLE {s}.task_numbers (company text PRIMARY KEY, last bigint NOT NULL)",
    # One row per (task, indexed field) with a value, in the column of its index type
    # (bools as 0/1 in int_value); `type` keeps values of different types apart.
    """CREATE TABLE {s}.task_fields (
        task_pk bigint NOT NULL,
        name text COLLATE "C" NOT NULL,
        type text NOT NULL,
        int_value bigint,
        text_value text COLLATE "C",
        time_value timestamptz,
        PRIMARY KEY (task_pk, name)
    )""",
    "CREATE INDEX task_fields_int ON {s}.task_fields (name, type, int_value, task_pk) "
    "WHERE int_value IS NOT NULL",
    "CREATE INDEX task_fields_text ON {s}.task_fields (name, text_value, task_pk) "
    "WHERE text_value IS NOT NULL",
    "CREATE INDEX task_fields_time ON {s}.task_fields (name, time_value, task_pk) "
    "WHERE time_value IS NOT NULL",
    """CREATE TABLE {s}.indexed_fields (
        kind text NOT NULL,
        name text NOT NULL,
        PRIMARY KEY (kind, name)
    )""",
    # The outbox: ids from an identity, never given twice; NULL not_before means "at once",
    # NULL lease_until "not leased".
    """CREATE TABLE {s}.outbox (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        topic text NOT NULL,
        key text NOT NULL,
        task_id text,
        task_version integer,
        not_before timestamptz,
        attempts integer NOT NULL DEFAULT 0,
        claimed_by text,
        lease_until timestamptz,
        last_error text,
        body jsonb NOT NULL
    )""",
    "CREATE INDEX outbox_ready ON {s}.outbox (id, not_before, lease_until)",
    # A dead letter's body is kept as the text it was, even when it is no JSON object.
    """CREATE TABLE {s}.dead_letters (
        id bigint PRIMARY KEY,
        topic text NOT NULL,
        key text NOT NULL,
        task_id text,
        task_version integer,
        attempts integer NOT NULL,
        reason text NOT NULL,
        buried_at timestamptz NOT NULL,
        body text NOT NULL
    )""",
)

# Once-only marks (layout 2): a rule's fired-marker, stored with the commit it guards.
_MARKS_SCHEMA: tuple[str, ...] = ('CREATE TABLE {s}.marks (key text COLLATE "C" PRIMARY KEY)',)

# _MIGRATIONS[n] turns a schema of layout n into layout n + 1, in the upgrading transaction.
# Steps are never edited once released.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    # 1 -> 2: once-only marks; task numbers are counted per company code (the default code,
    # the id in upper case), so the counters of ids that share a code merge into the code's.
    1: (
        *_MARKS_SCHEMA,
        "INSERT INTO {s}.task_numbers AS n (company, last) SELECT upper(company), max(last) "
        "FROM {s}.task_numbers WHERE company <> upper(company) GROUP BY upper(company) "
        "ON CONFLICT (company) DO UPDATE SET last = greatest(n.last, excluded.last)",
    ),
}

_TABLES = (
    "tasks",
    "task_history",
    "task_comments",
    "task_assignees",
    "task_numbers",
    "task_fields",
    "indexed_fields",
    "outbox",
    "dead_letters",
    "marks",
)

_COLUMNS = (
    "kind, state, requester_company, recipient_company, ball_company, is_open, due_at, "
    "created_at, number, version, schema, body, history_len, comments_len"
)
# A task with its rows in one statement; NULL rows when the version is the cached one.
_ROWS_OF = (
    "CASE WHEN t.version = %s THEN NULL ELSE ARRAY(SELECT r.body::text FROM {{s}}.{table} r "
    "WHERE r.task_pk = t.pk AND r.seq < t.{count} ORDER BY r.seq) END"
)
_GET = (
    "SELECT t.id, t.version, t.body::text, t.pk, t.history_len, t.comments_len, "
    + _ROWS_OF.format(table="task_history", count="history_len")
    + ", "
    + _ROWS_OF.format(table="task_comments", count="comments_len")
    + " FROM {s}.tasks t WHERE t.id = %s"
)
# Messages are inserted in the order given, so their ids rise in that order.
_INSERT_MESSAGES = (
    "INSERT INTO {s}.outbox (topic, key, task_id, task_version, not_before, body) "
    "SELECT topic, key, task_id, task_version, not_before, body::jsonb FROM unnest("
    "%s::text[], %s::text[], %s::text[], %s::integer[], %s::timestamptz[], %s::text[]) "
    "WITH ORDINALITY AS m (topic, key, task_id, task_version, not_before, body, n) "
    "ORDER BY n RETURNING id"
)
# The same, waking the workers that LISTEN on the channel (pg_notify runs once, at COMMIT).
_QUEUE_AND_NOTIFY = (
    f"WITH queued AS ({_INSERT_MESSAGES}) "
    "SELECT queued.id FROM queued, (SELECT pg_notify(%s, '')) AS woken"
)
_INSERT_ONE_MESSAGE = (
    "INSERT INTO {s}.outbox (topic, key, task_id, task_version, not_before, body) "
    "VALUES (%s, %s, %s, %s, %s, %s::jsonb) RETURNING id"
)
_QUEUE_ONE_AND_NOTIFY = (
    f"WITH queued AS ({_INSERT_ONE_MESSAGE}) "
    "SELECT queued.id FROM queued, (SELECT pg_notify(%s, '')) AS woken"
)
_COMPLETE = (
    "DELETE FROM {s}.outbox o USING unnest(%s::bigint[], %s::text[], %s::integer[]) "
    "AS d (id, worker, attempts) WHERE o.id = d.id "
    "AND o.claimed_by IS NOT DISTINCT FROM d.worker AND o.attempts = d.attempts"
)
_COLUMN_OF = {"bool": "int_value", "int": "int_value", "text": "text_value", "time": "time_value"}

# PostgreSQL's text and jsonb cannot hold the character U+0000. A stored body escapes it as
# U+E000 U+0001 (and a U+E000 of the data as U+E000 U+E000), walked only when one occurs.
_NUL = "\x00"
_ESCAPE = "\ue000"


def _escape_text(text: str) -> str:
    return text.replace(_ESCAPE, _ESCAPE + _ESCAPE).replace(_NUL, _ESCAPE + "\x01")


def _unescape_text(text: str) -> str:
    out: list[str] = []
    i = 0
    while True:
        j = text.find(_ESCAPE, i)
        if j < 0 or j + 1 >= len(text):
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:j])
        out.append(_NUL if text[j + 1] == "\x01" else text[j + 1])
        i = j + 2


def _walk(value: Any, change: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {change(k): _walk(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, change) for v in value]
    return value


def _to_json(data: Any) -> str:
    """Return `data` as JSON text that jsonb can hold (see `_escape_text`)."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    if "\\u0000" in text or _ESCAPE in text:
        text = json.dumps(_walk(data, _escape_text), separators=(",", ":"), ensure_ascii=False)
    return text


def _stored_json(text: str) -> str:
    """Return JSON text (an outbox body) in the form `_to_json` stores."""
    if "\\u0000" in text or _ESCAPE in text:
        return _to_json(json.loads(text))
    return text


def _from_json(text: str) -> Any:
    """Return the data `_to_json` stored as `text`."""
    data = json.loads(text)
    return _walk(data, _unescape_text) if _ESCAPE in text else data


def _original_json(text: str) -> str:
    """Return the JSON text (an outbox body) that `_stored_json` was given."""
    if _ESCAPE not in text:
        return text
    return json.dumps(_from_json(text), separators=(",", ":"), ensure_ascii=False)


def _columns(task: Task, body: str) -> tuple[Any, ...]:
    return (
        task.kind,
        task.state,
        task.requester.company,
        task.recipient,
        task.ball_company,
        task.is_open,
        task.due_at,
        task.created_at,
        task.number,
        task.version,
        SCHEMA_VERSION,
        body,
        len(task.history),
        len(task.comments),
    )


def _field_params(value: IndexValue) -> tuple[Any, Any, Any]:
    """Return (int_value, text_value, time_value) of an index value: one set, two None."""
    if isinstance(value, bool):
        return int(value), None, None
    if isinstance(value, int):
        return value, None, None
    if isinstance(value, str):
        return None, value, None
    return None, None, value


def _field_value(task: Task, name: str, value: IndexValue) -> tuple[Any, ...]:
    """Return (int_value, text_value, time_value) of an index value; refuse text with U+0000."""
    if isinstance(value, str) and _NUL in value:
        msg = (
            f"task {task.number}: indexed field {name!r} of kind {task.kind!r} is text "
            f"with the character U+0000, which PostgreSQL cannot store, got {value!r}"
        )
        raise InvalidPayload(msg, field=name)
    return _field_params(value)


def _sql_value(value: IndexValue) -> Any:
    return int(value) if isinstance(value, bool) else value


def _field_clause(name: str, condition: IndexValue | Between) -> tuple[str, list[Any]]:
    tag = condition.tag if isinstance(condition, Between) else index_tag(condition)
    column = _COLUMN_OF.get(tag or "", "text_value")
    sub = f"SELECT task_pk FROM {{s}}.task_fields WHERE name = %s AND type = %s AND {column}"
    params: list[Any] = [name, tag]
    if isinstance(condition, Between):
        parts = [f"{column} IS NOT NULL"]
        if condition.low is not None:
            parts.append(f"{column} >= %s")
            params.append(_sql_value(condition.low))
        if condition.high is not None:
            parts.append(f"{column} <= %s")
            params.append(_sql_value(condition.high))
        return f"pk IN ({sub} IS NOT NULL AND {' AND '.join(parts)})", params
    params.append(_sql_value(condition))
    return f"pk IN ({sub} = %s)", params


def _open_due(is_open: bool | None, due_before: datetime | None) -> tuple[list[str], list[Any]]:
    clauses = [] if is_open is None else ["is_open" if is_open else "NOT is_open"]
    return (clauses, []) if due_before is None else ([*clauses, "due_at < %s"], [due_before])


def _any_of(column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    if len(values) == 1:  # the common case (a claim of one commit's message): no array to dump
        return f"{column} = %s", [values[0]]
    return f"{column} = ANY(%s)", [list(values)]


def _same(value: Any) -> Any:
    return value


def _no_nul(text: str) -> str:
    return text.replace(_NUL, "\ufffd")


_UPDATE_SET = (
    "UPDATE {s}.tasks SET kind = %s, state = %s, requester_company = %s, "
    "recipient_company = %s, ball_company = %s, is_open = %s, due_at = %s, created_at = %s, "
    "number = %s, version = %s, schema = %s, body = %s::jsonb, history_len = %s, "
    "comments_len = %s"
)

# A save the cache knows: the row must hold what the cache says, or 1 / 0 fails the transaction.
_SAVE_CACHED = (
    "WITH saved AS ("
    + _UPDATE_SET
    + " WHERE pk = %s AND id = %s AND version = %s AND schema = %s AND history_len = %s "
    "AND comments_len = %s AND (body ->> 'workflow_version')::integer = %s RETURNING 1) "
    "SELECT 1 / count(*) FROM saved"
)


_DIALECT = Dialect(
    loads=_from_json,
    dumps=_to_json,
    to_time=_same,
    from_time=_same,
    stored_text=_no_nul,
    message_body=_stored_json,
    original_body=_original_json,
    any_of=_any_of,
    row_batch=1000,
    body="body::text",
    head="id, version, body::text, pk, history_len, comments_len",
    insert_task=(
        f"INSERT INTO {{s}}.tasks (id, {_COLUMNS}) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s) "
        "ON CONFLICT (id) DO NOTHING RETURNING pk"
    ),
    # The row is locked first, so the conditional UPDATE below never waits and never misses.
    stored=(
        "SELECT pk, version, history_len, comments_len, schema, "
        "(body ->> 'workflow_version')::integer FROM {s}.tasks WHERE id = %s FOR UPDATE"
    ),
    update_task=_UPDATE_SET + " WHERE pk = %s AND version = %s",
    insert_entry="INSERT INTO {s}.task_history (task_pk, seq, body) VALUES (%s, %s, %s::jsonb)",
    insert_comment=(
        "INSERT INTO {s}.task_comments (task_pk, seq, body) VALUES (%s, %s, %s::jsonb)"
    ),
    insert_field=(
        "INSERT INTO {s}.task_fields (task_pk, name, type, int_value, text_value, time_value) "
        "VALUES (%s, %s, %s, %s, %s, %s)"
    ),
    held="id = %s AND claimed_by IS NOT DISTINCT FROM %s AND attempts = %s",
    unleased="NULL",
    lock=" FOR UPDATE",
    skip_locked=" FOR UPDATE SKIP LOCKED",
    ready="(not_before IS NULL OR not_before <= %s) AND (lease_until IS NULL OR lease_until <= %s)",
    field_clause=_field_clause,
    open_due=_open_due,
    unindexed="",
    columns=_columns,
    field_value=_field_value,
    field_rows=(
        "SELECT task_pk, name, type, int_value, text_value, time_value FROM {s}.task_fields"
    ),
)


def _log() -> logging.Logger:
    # Looked up when needed: importing taskflow configures and creates nothing.
    return logging.getLogger("taskflow.adapters.postgres")


def _log_broken_row(error: DeserializationError) -> None:
    _log().warning("skipped a stored task that does not load: %s", error)


def _describe(conninfo: str) -> str:
    """Return where a connection string points, without its password: 'dbname on host'."""
    try:
        parts = conninfo_to_dict(conninfo)
    except psycopg.Error:
        return "PostgreSQL database"
    host = parts.get("host") or "localhost"
    port = parts.get("port")
    where = f"{host}:{port}" if port else str(host)
    return f"PostgreSQL database {parts.get('dbname') or parts.get('user') or '?'} on {where}"


def _check_schema_name(schema: object) -> str:
    if not isinstance(schema, str) or not schema.strip() or len(schema) > 63 or _NUL in schema:
        msg = (
            "PostgresRepository: schema must be the name of a PostgreSQL schema "
            f"(1 to 63 characters), got {schema!r}"
        )
        raise InvalidPayload(msg, field="schema")
    return schema


class _Statements:
    """Every statement of one schema, its name quoted once."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.quoted = sql.Identifier(schema).as_string(None)
        self._cache: dict[str, str] = {}

    def __call__(self, template: str) -> str:
        text = self._cache.get(template)
        if text is None:
            text = template.replace("{s}", self.quoted)
            self._cache[template] = text
        return text


def _prepare_schema(conn: _Conn, q: _Statements, where: str, *, create: bool) -> tuple[int, int]:
    """Create or upgrade the schema (if `create`), under an advisory lock; return (found, now).

    Run inside a transaction: the lock is held until it ends, so two processes starting at
    once create the tables once.
    """
    found = stored_version_in(conn, q)
    if found == STORAGE_VERSION:
        return found, found
    if found is not None and found > STORAGE_VERSION:
        msg = (
            f"{where}: schema {q.schema} has storage schema version {found}, newer than the "
            f"newest this taskflow opens ({STORAGE_VERSION}); upgrade taskflow"
        )
        raise StorageError(msg, database=where)
    if not create:
        state = "has no taskflow tables" if found is None else f"is at storage version {found}"
        msg = (
            f"{where}: schema {q.schema} {state}, and this repository was opened with "
            f"auto_upgrade=False; run `python -m taskflow.adapters.postgres upgrade DSN "
            f"--schema {q.schema}` (or taskflow.adapters.postgres.upgrade) from the deploy step"
        )
        raise StorageError(msg, database=where)
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"taskflow schema {q.schema}",))
    found = stored_version_in(conn, q)  # another process may have done it meanwhile
    if found is None:
        conn.execute(q("CREATE SCHEMA IF NOT EXISTS {s}"))
        for statement in (*_SCHEMA, *_MARKS_SCHEMA):
            conn.execute(q(statement))
        conn.execute(q("INSERT INTO {s}.schema_version (version) VALUES (%s)"), (STORAGE_VERSION,))
        return 0, STORAGE_VERSION
    if found > STORAGE_VERSION:  # pragma: no cover - a newer taskflow won the race
        msg = f"{where}: schema {q.schema} was upgraded to {found} meanwhile by a newer taskflow"
        raise StorageError(msg, database=where)
    for version in range(found, STORAGE_VERSION):
        for statement in _MIGRATIONS[version]:
            conn.execute(q(statement))
    conn.execute(q("UPDATE {s}.schema_version SET version = %s"), (STORAGE_VERSION,))
    return found, STORAGE_VERSION


def stored_version_in(conn: _Conn, q: _Statements) -> int | None:
    """Return the storage version of `q`'s schema through `conn`, or None if it has no tables."""
    exists = conn.execute(
        "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = %s AND tablename = 'schema_version'",
        (q.schema,),
    ).fetchone()
    if exists is None:
        return None
    row = conn.execute(q("SELECT MAX(version) FROM {s}.schema_version")).fetchone()
    if row is None or not isinstance(row[0], int):
        msg = (
            f"schema {q.schema} has a schema_version table without a version; it was not "
            "written by taskflow or was damaged"
        )
        raise StorageError(msg)
    return int(row[0])


def upgrade(conninfo: str, *, schema: str = "taskflow") -> tuple[int, int]:
    """Create or upgrade taskflow's tables in `schema`; return (version found, version now).

    For a deploy step before the application starts (which then opens its repositories with
    `auto_upgrade=False`); a schema already current is left alone ((1, 1), say), and a fresh
    one is created ((0, 1)). A schema newer than this taskflow raises `StorageError`.
    """
    q = _Statements(_check_schema_name(schema))
    where = _describe(conninfo)
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn, conn.transaction():
            return _prepare_schema(conn, q, where, create=True)
    except psycopg.Error as exc:
        msg = f"{where}: could not upgrade schema {schema}: {exc}"
        raise StorageError(msg, database=where) from exc


def stored_version(conninfo: str, *, schema: str = "taskflow") -> int | None:
    """Return the storage version of taskflow's tables in `schema`, or None if there are none."""
    q = _Statements(_check_schema_name(schema))
    where = _describe(conninfo)
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            return stored_version_in(conn, q)
    except psycopg.Error as exc:
        msg = f"{where}: could not read the storage version of schema {schema}: {exc}"
        raise StorageError(msg, database=where) from exc


class PostgresRepository(SqlStore):
    """Stores tasks and their outbox in PostgreSQL; share the database between processes and machines.

    Pass a connection string (the repository then opens its own pool of up to `pool_size`
    connections, waiting up to `timeout` seconds for one; with `check_connections` each is
    tested before use, one round trip, so a server restart costs no failed call) or a
    `psycopg_pool.ConnectionPool` of the host's (left open by `close`; autocommit
    connections save a BEGIN and COMMIT around single statements). Tables live in `schema`. With `auto_upgrade` (the default) the
    first repository creates or upgrades them; without it a missing or older schema raises
    `StorageError` naming the upgrade command. `notify` makes every commit that queues
    messages wake the workers waiting in `wait_for_messages`. A stored row that no longer
    loads is skipped by `query` and passed to `on_broken_row`; up to `cache_size` loaded
    tasks are kept by id and version; one `serializer` may be shared between repositories.
    """

    def __init__(
        self,
        conninfo: str | ConnectionPool[Any],
        registry: Registry,
        *,
        schema: str = "taskflow",
        pool_size: int = 4,
        timeout: float = 30.0,
        check_connections: bool = False,
        auto_upgrade: bool = True,
        notify: bool = True,
        on_broken_row: Callable[[DeserializationError], None] | None = None,
        cache_size: int = 4096,
        serializer: Serializer | None = None,
    ) -> None:
        self._stmts = _Statements(_check_schema_name(schema))
        self._dialect = _DIALECT
        if not isinstance(pool_size, int) or isinstance(pool_size, bool) or pool_size < 1:
            msg = f"PostgresRepository: pool_size must be a whole number >= 1, got {pool_size!r}"
            raise InvalidPayload(msg, field="pool_size")
        self._init_store(
            registry,
            serializer,
            cache_size,
            on_broken_row if on_broken_row is not None else _log_broken_row,
        )
        self._notify = notify
        self._channel_name = f"taskflow_outbox_{schema}"[:63]
        self._channel = sql.Identifier(self._channel_name).as_string(None)
        self._listener: _Conn | None = None
        self._listener_lock = threading.Lock()
        self._pid = os.getpid()
        self._closed = False
        if isinstance(conninfo, ConnectionPool):
            self._pool: ConnectionPool[Any] = conninfo
            self._owns_pool = False
            # A pool may compute its connection string; then LISTEN has none to connect with.
            self._conninfo = conninfo.conninfo if isinstance(conninfo.conninfo, str) else ""
        elif isinstance(conninfo, str):
            self._conninfo = conninfo
            self._owns_pool = True
            self._pool = ConnectionPool(
                conninfo,
                min_size=1,
                max_size=pool_size,
                kwargs={"autocommit": True},
                check=ConnectionPool.check_connection if check_connections else None,
                timeout=timeout,
                open=False,
                name=f"taskflow-{schema}",
            )
        else:
            msg = (
                "PostgresRepository needs a connection string or a psycopg_pool.ConnectionPool, "
                f"got {type(conninfo).__name__}"
            )
            raise InvalidPayload(msg, field="conninfo")
        self._where = _describe(self._conninfo)
        try:
            if self._owns_pool:
                try:
                    self._pool.open(wait=True, timeout=timeout)
                except psycopg.Error as exc:
                    raise self._error("connect", exc) from exc
            with self._transaction("open the repository") as conn:
                _prepare_schema(conn, self._stmts, self._where, create=auto_upgrade)
            self._sync_fields()
        except BaseException:
            self.close()
            raise

    @property
    def schema(self) -> str:
        """Return the PostgreSQL schema that holds the tables."""
        return self._stmts.schema

    @property
    def pool(self) -> ConnectionPool[Any]:
        """Return the connection pool the repository takes its connections from."""
        return self._pool

    # --- the TaskRepository port -----------------------------------------------------------

    def get(self, task_id: TaskId) -> Task:
        """Return the stored task, or raise `TaskNotFound`; a row that does not load raises `DeserializationError`.

        One statement (one snapshot, one round trip): the history and comment rows come along
        unless the stored version is the one already in the cache.
        """
        check_arguments("get", task_id=task_id)
        cached = self._newest.get(task_id, 0)
        with self._connection(f"read task '{task_id}'") as conn:
            row = conn.execute(self._q(_GET), (cached, cached, task_id)).fetchone()
            if row is None:
                raise TaskNotFound(task_id)
            found_id, version, body, pk, history_len, comments_len, entries, comments = row
            self._know(found_id, pk)
            if entries is None or comments is None:
                hit = self._cache.get((found_id, version))
                if hit is not None:
                    return hit
                # Evicted since: read the rows the usual way.
                found, broken = self._load_rows(conn, [row[:6]], cached=False)
                if broken:
                    raise broken[0]
                return found[0]
        return self._load_counted(
            found_id, version, body, (history_len, comments_len), entries, comments
        )

    # --- the outbox ------------------------------------------------------------------------

    def complete(self, entries: Iterable[OutboxEntry]) -> None:
        """Remove delivered messages whose claim is still the one given (same worker and attempt)."""
        entries = check_entries("complete", entries)
        done = [(e.id, e.claimed_by, e.attempts) for e in entries]
        if not done:
            return
        with self._connection("complete outbox messages") as conn:
            if len(done) == 1:  # one message (one commit's): no arrays to dump
                conn.execute(self._q(f"DELETE FROM {{s}}.outbox WHERE {_DIALECT.held}"), done[0])
                return
            ids, workers, attempts = (list(column) for column in zip(*done, strict=True))
            conn.execute(self._q(_COMPLETE), (ids, workers, attempts))

    def revive(self, ids: Iterable[int], *, now: datetime) -> int:
        """Put dead letters back in the outbox as new messages ready at `now`; return how many."""
        ids = check_ids("revive", ids)
        check_arguments("revive", now=now)
        chosen = sorted(set(ids))
        if not chosen:
            return 0
        with self._transaction("revive dead letters") as conn:
            rows = conn.execute(
                self._q(
                    "DELETE FROM {s}.dead_letters WHERE id = ANY(%s) "
                    "RETURNING id, topic, key, task_id, task_version, body"
                ),
                (chosen,),
            ).fetchall()
            messages: list[tuple[OutboxMessage, str]] = []
            for _, topic, key, task_id, version, body in sorted(rows):
                try:
                    payload = _from_json(body)
                except ValueError:
                    payload = None
                if not isinstance(payload, dict):
                    payload = {"unreadable": body}
                message = OutboxMessage(
                    topic, key, payload, not_before=now, task_id=task_id, task_version=version
                )
                messages.append((message, _stored_json(message.body)))
            self._queue(conn, messages)
        return len(messages)

    # --- beyond the port ---------------------------------------------------------------------

    def wait_for_messages(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for a commit that queues outbox messages; return whether one came.

        For an idle delivery worker: `service.deliver()`, and when it found nothing, wait here
        instead of polling. Uses one extra connection (LISTEN), opened on the first call. A
        message that becomes due later (`not_before`) sends no wake-up: keep `timeout` to the
        longest delay you accept. Needs `notify` on the repositories that commit.
        """
        with self._listener_lock:
            listener = self._listen()
            try:
                for _ in listener.notifies(timeout=max(timeout, 0.0), stop_after=1):
                    return True
            except psycopg.Error as exc:
                self._listener = None
                with suppress(psycopg.Error):
                    listener.close()
                raise self._error("wait for outbox messages", exc) from exc
        return False

    def query_plan(self, query: TaskQuery) -> list[str]:
        """Return PostgreSQL's plan (EXPLAIN) for `query`, one line per item."""
        found = select(query, query.limit, _DIALECT)
        if found is None:
            return []
        with self._connection("explain a query") as conn:
            rows = conn.execute(self._q(f"EXPLAIN {found[0]}"), found[1]).fetchall()
        return [str(row[0]) for row in rows]

    def close(self) -> None:
        """Close the pool (if the repository opened it) and the listening connection; closing twice is fine."""
        self._closed = True
        with self._listener_lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            with suppress(psycopg.Error):
                listener.close()
        if self._owns_pool and os.getpid() == self._pid:
            self._pool.close()

    def __repr__(self) -> str:
        return f"PostgresRepository({self._where}, schema={self._stmts.schema!r})"

    # --- internals ---------------------------------------------------------------------------

    def _error(self, what: str, exc: BaseException) -> StorageError:
        code = getattr(exc, "sqlstate", None)
        detail = f" (SQLSTATE {code})" if code else ""
        msg = f"{self._where}: could not {what}{detail}: {exc}".rstrip(": ")
        return StorageError(msg, database=self._where)

    def _unstorable(self, what: str, exc: BaseException) -> InvalidPayload:
        msg = (
            f"{self._where}: cannot {what}: a value cannot be stored ({exc}); text must be "
            "valid Unicode, names, ids and keys without the character U+0000, and whole "
            "numbers fit in 64 bits"
        )
        return InvalidPayload(msg)

    def _conflict(self, changes: Changeset) -> Callable[[psycopg.Error], ConcurrencyConflict]:
        """Return how a serialization failure or deadlock of committing `changes` is reported."""
        if changes.saved:
            number, expected = changes.saved[0][0].number, changes.saved[0][1]
        elif changes.added:
            number, expected = changes.added[0].number, 0
        else:
            number, expected = "(outbox messages only)", 0

        def conflict(exc: psycopg.Error) -> ConcurrencyConflict:
            reason = "a serialization failure" if exc.sqlstate == "40001" else "a deadlock"
            because = f"PostgreSQL ended the transaction with {reason} ({exc.diag.message_primary})"
            return ConcurrencyConflict(number, expected, None, because=because)

        return conflict

    @contextmanager
    def _connection(
        self,
        what: str,
        *,
        conflict: Callable[[psycopg.Error], ConcurrencyConflict] | None = None,
    ) -> Iterator[_Conn]:
        """Yield a pooled connection (each statement its own transaction); translate psycopg's errors."""
        if self._closed:
            msg = f"{self._where}: cannot {what}: the repository was closed"
            raise StorageError(msg, database=self._where)
        if os.getpid() != self._pid:
            msg = (
                f"{self._where}: cannot {what} in process {os.getpid()}: the repository was "
                f"opened in process {self._pid}; open one in each process"
            )
            raise StorageError(msg, database=self._where)
        try:
            with self._pool.connection() as conn:
                yield conn
        except (pg_errors.SerializationFailure, pg_errors.DeadlockDetected) as exc:
            if conflict is not None:  # a commit: the retry helper loads again and retries
                raise conflict(exc) from exc
            raise self._error(what, exc) from exc
        except (UnicodeEncodeError, OverflowError, psycopg.DataError) as exc:
            raise self._unstorable(what, exc) from exc
        except psycopg.Error as exc:
            raise self._error(what, exc) from exc

    @contextmanager
    def _transaction(
        self,
        what: str,
        *,
        conflict: Callable[[psycopg.Error], ConcurrencyConflict] | None = None,
        pipeline: bool = False,
    ) -> Iterator[_Conn]:
        """Yield a pooled connection inside one transaction: committed at the end, rolled back on any error.

        With `pipeline`, statements are sent without waiting for their results until one is
        read (or the COMMIT): a commit costs two round trips to the server, not one per row.
        """
        with self._connection(what, conflict=conflict) as conn:
            if pipeline:
                with conn.pipeline(), conn.transaction():
                    yield conn
            else:
                with conn.transaction():
                    yield conn

    @contextmanager
    def _reading(self, what: str) -> Iterator[_Conn]:
        """Yield a connection in one REPEATABLE READ transaction: a task row and its rows are one snapshot."""
        with self._transaction(what, pipeline=True) as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield conn

    def _listen(self) -> _Conn:
        if self._listener is None:
            if not self._conninfo:
                msg = (
                    f"{self._where}: cannot wait for outbox messages: the pool computes its "
                    "connection string, so there is none to open the listening connection with"
                )
                raise StorageError(msg, database=self._where)
            try:
                listener = psycopg.connect(self._conninfo, autocommit=True)
                listener.execute(f"LISTEN {self._channel}")
            except psycopg.Error as exc:
                raise self._error("listen for outbox messages", exc) from exc
            self._listener = listener
        return self._listener

    def _queue(
        self, conn: Any, messages: list[tuple[OutboxMessage, str]]
    ) -> Callable[[], tuple[int, ...]]:
        """Insert outbox messages in order (one statement) and wake the listening workers.

        Return how to read the new ids once the transaction is over (in a pipeline the
        results arrive with the COMMIT).
        """
        if not messages:
            return tuple
        if len(messages) == 1:  # one message: plain parameters, no arrays to dump
            m, body = messages[0]
            row = (m.topic, m.key, m.task_id, m.task_version, m.not_before, body)
            if self._notify:
                one = conn.execute(self._q(_QUEUE_ONE_AND_NOTIFY), (*row, self._channel_name))
            else:
                one = conn.execute(self._q(_INSERT_ONE_MESSAGE), row)
            return lambda: tuple(int(r[0]) for r in one.fetchall())
        columns: list[list[Any]] = [[], [], [], [], [], []]
        for m, body in messages:
            for column, value in zip(
                columns,
                (m.topic, m.key, m.task_id, m.task_version, m.not_before, body),
                strict=True,
            ):
                column.append(value)
        if self._notify:  # one statement: the NOTIFY rides along with the INSERT
            cursor = conn.execute(self._q(_QUEUE_AND_NOTIFY), (*columns, self._channel_name))
        else:
            cursor = conn.execute(self._q(_INSERT_MESSAGES), columns)
        return lambda: tuple(sorted(int(row[0]) for row in cursor.fetchall()))

    def _lock_fields(self, conn: _Conn) -> None:
        conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"taskflow fields {self._stmts.schema}",)
        )

    # --- the commit in one round trip --------------------------------------------------------

    def _write(
        self,
        changes: Changeset,
        added: list[tuple[Task, str]],
        saved: list[tuple[Task, int, str]],
    ) -> tuple[int, ...]:
        """Write a checked changeset: in one round trip when the cache knows every saved row.

        A save of a task whose row key and expected version are cached is sent without reading
        the row first: each UPDATE names what the row must hold (version, schema, workflow
        version, row counts) and fails the transaction when it holds anything else, as a taken
        mark does. Then the checked commit runs (`SqlStore._write`), which reads each row and
        raises the refusal, or writes what the cache could not know.
        """
        plan = None if added or not saved else self._fast_plan(saved)
        if plan is not None:
            ids = self._write_fast(changes, plan)
            if ids is not None:
                return ids
        return super()._write(changes, added, saved)

    def _fast_plan(
        self, saved: list[tuple[Task, int, str]]
    ) -> list[tuple[Task, int, str, int, Task]] | None:
        """Return each save with its row key and the cached version it replaces, or None if one is unknown."""
        plan = []
        for task, expected, body in saved:
            pk = self._pks.get(task.id)
            before = self._cache.get((task.id, expected))
            if pk is None or before is None:
                return None
            if kept_of(task, before) != (len(before.history), len(before.comments)):
                return None  # a rewritten history: the checked path rewrites its rows
            plan.append((task, expected, body, pk, before))
        return plan

    def _write_fast(
        self, changes: Changeset, plan: list[tuple[Task, int, str, int, Task]]
    ) -> tuple[int, ...] | None:
        """Send the whole commit in one pipeline; return the message ids, or None if a row or mark differs."""
        messages = [(m, _stored_json(m.body)) for m in changes.messages]
        q = self._q
        what = describe_commit(changes)
        with self._connection(what, conflict=self._conflict(changes)) as conn:
            try:
                with conn.pipeline(), conn.transaction():
                    for mark in changes.marks:
                        conn.execute(q("INSERT INTO {s}.marks (key) VALUES (%s)"), (mark,))
                    for task, expected, body, pk, before in plan:
                        counts = (len(before.history), len(before.comments))
                        conn.execute(
                            q(_SAVE_CACHED),
                            (
                                *_columns(task, body),
                                pk,
                                task.id,
                                expected,
                                SCHEMA_VERSION,
                                *counts,
                                task.workflow_version,
                            ),
                        )
                        self._put_assignees(conn, pk, task, before)
                        self._put_fields(conn, pk, task, before)
                        self._put_rows(conn, pk, task, *counts)
                    ids = self._queue(conn, messages)
            except (
                pg_errors.DivisionByZero,
                pg_errors.UniqueViolation,
                pg_errors.PipelineAborted,
            ):
                return None  # nothing was written: the checked commit finds out why
        return ids()

    # --- the dialect's part of the shared logic (adapters._sql) --------------------------------

    def _q(self, text: str) -> str:
        """Return a shared statement with this repository's schema."""
        return self._stmts(text)

    def _writing(self, what: str) -> AbstractContextManager[_Conn]:
        return self._transaction(what)

    def _single(self, what: str) -> AbstractContextManager[_Conn]:
        return self._connection(what)

    def _committing(self, changes: Changeset, what: str) -> AbstractContextManager[_Conn]:
        return self._transaction(what, conflict=self._conflict(changes), pipeline=True)

    def _many(self, conn: Any, text: str, rows: list[tuple[Any, ...]]) -> None:
        with conn.cursor() as cur:
            cur.executemany(text, rows)

    def _unreadable_message(self, entry_id: int, problem: str) -> None:
        _log().warning(
            "%s: moved outbox message %d to the dead letters: %s", self._where, entry_id, problem
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line: `upgrade DSN [--schema NAME]` or `version DSN [--schema NAME]`."""
    parser = argparse.ArgumentParser(
        prog="python -m taskflow.adapters.postgres",
        description="Create or upgrade taskflow's tables in PostgreSQL (a deploy step).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("upgrade", "create or upgrade the tables to this taskflow's storage version"),
        ("version", "print the stored storage version (0: no tables yet)"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("dsn", help="a libpq connection string or URI")
        command.add_argument("--schema", default="taskflow", help="the PostgreSQL schema")
    args = parser.parse_args(argv)
    try:
        if args.command == "upgrade":
            found, now = upgrade(args.dsn, schema=args.schema)
            state = "already current" if found == now else f"upgraded from {found}"
            print(f"schema {args.schema}: storage version {now} ({state})")
        else:
            print(stored_version(args.dsn, schema=args.schema) or 0)
    except TaskflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover - run as `python -m taskflow.adapters.postgres`
    raise SystemExit(main())
