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
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

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
_INSERT_TASK = (
    f"INSERT INTO {{s}}.tasks (id, {_COLUMNS}) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s) "
    "ON CONFLICT (id) DO NOTHING RETURNING pk"
)
_INSERT_MARK = "INSERT INTO {s}.marks (key) VALUES (%s) ON CONFLICT (key) DO NOTHING RETURNING key"
# The row is locked first, so the conditional UPDATE below never waits and never misses.
_LOCK_TASK = (
    "SELECT pk, version, history_len, comments_len, schema FROM {s}.tasks WHERE id = %s FOR UPDATE"
)
_UPDATE_TASK = (
    "UPDATE {s}.tasks SET kind = %s, state = %s, requester_company = %s, "
    "recipient_company = %s, ball_company = %s, is_open = %s, due_at = %s, created_at = %s, "
    "number = %s, version = %s, schema = %s, body = %s::jsonb, history_len = %s, "
    "comments_len = %s WHERE pk = %s AND version = %s"
)
_VERSION_OF = "SELECT version FROM {s}.tasks WHERE id = %s"
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
# What every read selects of a task row, in the order `_load_rows` takes it.
_HEAD = "id, version, body::text, pk, history_len, comments_len"
_INSERT_ENTRY = "INSERT INTO {s}.task_history (task_pk, seq, body) VALUES (%s, %s, %s::jsonb)"
_INSERT_COMMENT = "INSERT INTO {s}.task_comments (task_pk, seq, body) VALUES (%s, %s, %s::jsonb)"
_INSERT_ASSIGNEE = (
    "INSERT INTO {s}.task_assignees (task_pk, company, user_id, ball_company) "
    "VALUES (%s, %s, %s, %s)"
)
_INSERT_FIELD = (
    "INSERT INTO {s}.task_fields (task_pk, name, type, int_value, text_value, time_value) "
    "VALUES (%s, %s, %s, %s, %s, %s)"
)
# Messages are inserted in the order given, so their ids rise in that order.
_INSERT_MESSAGES = (
    "INSERT INTO {s}.outbox (topic, key, task_id, task_version, not_before, body) "
    "SELECT topic, key, task_id, task_version, not_before, body::jsonb FROM unnest("
    "%s::text[], %s::text[], %s::text[], %s::integer[], %s::timestamptz[], %s::text[]) "
    "WITH ORDINALITY AS m (topic, key, task_id, task_version, not_before, body, n) "
    "ORDER BY n RETURNING id"
)
_NEXT_NUMBER = (
    "INSERT INTO {s}.task_numbers AS n (company, last) VALUES (%s, 1) "
    "ON CONFLICT (company) DO UPDATE SET last = n.last + 1 RETURNING last"
)
_OUTBOX_ROW = "id, topic, key, task_id, task_version, not_before, attempts, last_error, body::text"
_BURY = (
    "INSERT INTO {s}.dead_letters (id, topic, key, task_id, task_version, attempts, reason, "
    "buried_at, body) SELECT id, topic, key, task_id, task_version, attempts, %s, %s, "
    "body::text FROM {s}.outbox WHERE id = %s"
)
_HELD = "id = %s AND claimed_by IS NOT DISTINCT FROM %s AND attempts = %s"
_COMPLETE = (
    "DELETE FROM {s}.outbox o USING unnest(%s::bigint[], %s::text[], %s::integer[]) "
    "AS d (id, worker, attempts) WHERE o.id = d.id "
    "AND o.claimed_by IS NOT DISTINCT FROM d.worker AND o.attempts = d.attempts"
)
# Rows of many tasks are read in batches of this many task keys.
_ROW_BATCH = 1000
_UNKNOWN = object()  # a replaced version that is not in the cache
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


def _describe_commit(changes: Changeset) -> str:
    tasks = [t.number for t in changes.added] + [t.number for t, _ in changes.saved]
    shown = ", ".join(tasks[:3]) + (f" and {len(tasks) - 3} more" if len(tasks) > 3 else "")
    return f"commit {shown or 'outbox messages'}"


# The query columns `check()` compares with the stored task: the first ones `_columns` writes.
_CHECKED_COLUMNS = (
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


def _where(query: TaskQuery) -> tuple[str, list[Any]] | None:
    """Return the WHERE clause and parameters that mean `query.matches`, or None for no match."""
    clauses: list[str] = []
    params: list[Any] = []
    if query.kind is not None:
        clauses.append("kind = %s")
        params.append(query.kind)
    if query.states is not None:
        if not query.states:
            return None
        clauses.append("state = ANY(%s)")
        params.append(sorted(query.states))
    if query.company is not None:
        if query.side is None:
            clauses.append("(requester_company = %s OR recipient_company = %s)")
            params += [query.company, query.company]
        elif query.side == Side.REQUESTER:
            clauses.append("requester_company = %s")
            params.append(query.company)
        else:
            clauses.append("recipient_company = %s")
            params.append(query.company)
    for column, company in (
        ("requester_company", query.requester_company),
        ("recipient_company", query.recipient_company),
    ):
        if company is not None:
            clauses.append(f"{column} = %s")
            params.append(company)
    if query.assignee is not None:
        sub = "SELECT task_pk FROM {s}.task_assignees WHERE company = %s AND user_id = %s"
        params += [query.assignee.company, query.assignee.user]
        if query.ball_company is not None:
            sub += " AND ball_company = %s"
            params.append(query.ball_company)
        clauses.append(f"pk IN ({sub})")
    if query.ball_company is not None:
        clauses.append("ball_company = %s")
        params.append(query.ball_company)
    if query.open is not None:
        clauses.append("is_open" if query.open else "NOT is_open")
    if query.due_before is not None:
        clauses.append("due_at < %s")
        params.append(query.due_before)
    if query.created_from is not None:
        clauses.append("created_at >= %s")
        params.append(query.created_from)
    if query.created_until is not None:
        clauses.append("created_at <= %s")
        params.append(query.created_until)
    if query.after is not None:
        clauses.append("(created_at, id) > (%s, %s)")
        params += [query.after.created_at, query.after.task_id]
    for name, condition in query.where.items():
        clause, values = _field_clause(name, condition)
        clauses.append(clause)
        params += values
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params


def _select(query: TaskQuery, limit: int | None) -> tuple[str, list[Any]] | None:
    found = _where(query)
    if found is None:
        return None
    where, params = found
    text = f"SELECT {_HEAD} FROM {{s}}.tasks{where} ORDER BY created_at, id"
    if limit is not None:
        text += " LIMIT %s"
        params.append(limit)
    return text, params


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


def _outbox_entry(
    row: Sequence[Any], worker: str | None, lease_until: datetime | None
) -> tuple[OutboxEntry | None, str]:
    """Return the entry a stored outbox row holds, or None and why it cannot be read."""
    entry_id, topic, key, task_id, version, not_before, attempts, last_error, body = row
    try:
        payload = _from_json(body)
        if not isinstance(payload, dict):
            msg = f"the body is JSON but not an object: {body[:60]!r}"
            raise ValueError(msg)
        message = OutboxMessage(
            topic, key, payload, not_before=not_before, task_id=task_id, task_version=version
        )
    except (ValueError, TypeError, TaskflowError) as exc:
        return None, f"outbox message {entry_id} cannot be read: {exc}"
    return OutboxEntry(entry_id, message, attempts, worker, lease_until, last_error), ""


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


class PostgresRepository:
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
        self._q = _Statements(_check_schema_name(schema))
        if not isinstance(pool_size, int) or isinstance(pool_size, bool) or pool_size < 1:
            msg = f"PostgresRepository: pool_size must be a whole number >= 1, got {pool_size!r}"
            raise InvalidPayload(msg, field="pool_size")
        self._registry = registry
        self._serializer = serializer if serializer is not None else Serializer(registry)
        self._cache: dict[tuple[str, int], Task] = {}
        self._newest: dict[str, int] = {}  # the newest cached version of each id
        self._cache_size = max(cache_size, 0)
        self._cache_lock = threading.Lock()
        self._on_broken_row = on_broken_row if on_broken_row is not None else _log_broken_row
        self._notify = notify
        self._channel = sql.Identifier(f"taskflow_outbox_{schema}"[:63]).as_string(None)
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
                _prepare_schema(conn, self._q, self._where, create=auto_upgrade)
            self._sync_fields()
        except BaseException:
            self.close()
            raise

    @property
    def schema(self) -> str:
        """Return the PostgreSQL schema that holds the tables."""
        return self._q.schema

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
            found_id, version, body, _, history_len, comments_len, entries, comments = row
            if entries is None or comments is None:
                hit = self._cache.get((found_id, version))
                if hit is not None:
                    return hit
                # Evicted since: read the rows the usual way.
                found, broken = self._load_rows(conn, [row[:6]], cached=False)
                if broken:
                    raise broken[0]
                return found[0]
        for what, expected, got in (
            ("history entries", history_len, entries),
            ("comments", comments_len, comments),
        ):
            if len(got) != expected:
                msg = (
                    f"cannot load task '{found_id}': the row counts {expected} {what} "
                    f"but {len(got)} are stored"
                )
                raise DeserializationError(msg, task_id=found_id)
        return self._load(found_id, version, body, entries, comments)

    def commit(self, changes: Changeset) -> tuple[int, ...]:
        """Write every task and message of `changes` in one transaction; return the messages' ids.

        Each saved task's row is locked, its version compared, then one conditional UPDATE;
        any refusal rolls the whole transaction back, so nothing is written.
        """
        check_changeset(changes)
        added = [(task, self._dump(task)) for task in changes.added]
        saved = [(task, expected, self._dump(task)) for task, expected in changes.saved]
        messages = [(m, _stored_json(m.body)) for m in changes.messages]
        what = _describe_commit(changes)
        q = self._q
        with self._transaction(what, conflict=self._conflict(changes), pipeline=True) as conn:
            for mark in changes.marks:
                if conn.execute(q(_INSERT_MARK), (mark,)).fetchone() is None:
                    raise MarkTaken(mark)
            for task, body in added:
                inserted = conn.execute(
                    q(_INSERT_TASK), (task.id, *_columns(task, body))
                ).fetchone()
                if inserted is None:
                    stored = conn.execute(q(_VERSION_OF), (task.id,)).fetchone()
                    raise ConcurrencyConflict(
                        task.number, 0, None if stored is None else stored[0], exists=True
                    )
                pk = inserted[0]
                self._put_assignees(conn, pk, task, None)
                self._put_fields(conn, pk, task, None)
                self._put_rows(conn, pk, task, 0, 0)
            for task, expected, body in saved:
                found = conn.execute(q(_LOCK_TASK), (task.id,)).fetchone()
                if found is None:
                    raise TaskNotFound(task.id)
                pk, version, history_len, comments_len, schema = found
                if version != expected:
                    raise ConcurrencyConflict(task.number, expected, version)
                # The row is locked and its version checked: this UPDATE changes it.
                conn.execute(q(_UPDATE_TASK), (*_columns(task, body), pk, expected))
                before = self._cache.get((task.id, expected), _UNKNOWN)
                self._put_assignees(conn, pk, task, before)
                self._put_fields(conn, pk, task, before)
                kept = kept_of(task, before) if isinstance(before, Task) else None
                if schema != SCHEMA_VERSION or kept != (history_len, comments_len):
                    history_len = comments_len = -1
                self._put_rows(conn, pk, task, history_len, comments_len)
            queued = self._queue(conn, messages)
        ids = () if queued is None else tuple(sorted(int(row[0]) for row in queued.fetchall()))
        for task, _ in added:
            self._remember(task)
        for task, _, _ in saved:
            self._remember(task)
        return ids

    def marked(self, mark: str) -> bool:
        """Tell whether a commit stored `mark`."""
        check_arguments("marked", mark=mark)
        with self._connection("read a mark") as conn:
            row = conn.execute(self._q("SELECT 1 FROM {s}.marks WHERE key = %s"), (mark,))
            return row.fetchone() is not None

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
        broken: list[DeserializationError] = []
        skipped = 0
        while True:
            limit = None if query.limit is None else query.limit + skipped
            select = _select(query, limit)
            if select is None:
                return []
            with self._reading("query tasks") as conn:
                rows = conn.execute(self._q(select[0]), select[1]).fetchall()
                found, broken = self._load_rows(conn, rows)
            if limit is None or len(found) >= limit - skipped or len(rows) < limit:
                break
            skipped = len(broken)
        for error in broken:
            self._on_broken_row(error)
        return found if query.limit is None else found[: query.limit]

    def count(self, query: TaskQuery) -> dict[tuple[str, str], int]:
        """Return how many matching tasks there are per (kind, state), from the columns alone."""
        check_arguments("count", query=query)
        check_indexed(query, self._registry, repr(self))
        found = _where(query)
        if found is None:
            return {}
        text = f"SELECT kind, state, COUNT(*) FROM {{s}}.tasks{found[0]} GROUP BY kind, state"
        with self._connection("count tasks") as conn:
            rows = conn.execute(self._q(text), found[1]).fetchall()
        return {(kind, state): int(n) for kind, state, n in sorted(rows)}

    def next_number(self, company: CompanyId) -> int:
        """Return the next task number of `company`; one atomic statement, so no two writers share one."""
        check_arguments("next_number", company=company)
        with self._connection(f"take a task number of {company}") as conn:
            row = conn.execute(self._q(_NEXT_NUMBER), (company,)).fetchone()
        assert row is not None
        return int(row[0])

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
        """Lease up to `limit` ready messages to `worker`, oldest first.

        `FOR UPDATE SKIP LOCKED`: workers in other processes claiming at the same moment take
        other messages instead of waiting, and none takes one whose lease lasts. A message
        whose body cannot be read is moved to the dead letters with the reason, not returned.
        """
        check_claim(worker, now, lease, limit)
        clauses = [
            "(not_before IS NULL OR not_before <= %s)",
            "(lease_until IS NULL OR lease_until <= %s)",
        ]
        params: list[Any] = [now, now]
        if topics is not None:
            wanted = sorted(set(topics))
            if not wanted:
                return []
            clauses.append("topic = ANY(%s)")
            params.append(wanted)
        if ids is not None:
            chosen = sorted(set(ids))
            if not chosen:
                return []
            clauses.append("id = ANY(%s)")
            params.append(chosen)
        text = (
            "UPDATE {s}.outbox SET attempts = attempts + 1, claimed_by = %s, lease_until = %s "
            f"WHERE id IN (SELECT id FROM {{s}}.outbox WHERE {' AND '.join(clauses)} "
            f"ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING {_OUTBOX_ROW}"
        )
        until = now + lease
        with self._connection("claim outbox messages") as conn:
            rows = conn.execute(self._q(text), (worker, until, *params, limit)).fetchall()
        taken: list[OutboxEntry] = []
        for row in sorted(rows):
            entry, problem = _outbox_entry(row, worker, until)
            if entry is not None:
                taken.append(entry)
                continue
            # Claimed (so leased to this worker), then buried: no other worker sees it meanwhile.
            with self._transaction("move an unreadable outbox message aside") as conn:
                conn.execute(self._q(_BURY), (problem, now, row[0]))
                conn.execute(self._q("DELETE FROM {s}.outbox WHERE id = %s"), (row[0],))
            _log().warning(
                "%s: moved outbox message %d to the dead letters: %s", self._where, row[0], problem
            )
        return taken

    def complete(self, entries: Iterable[OutboxEntry]) -> None:
        """Remove delivered messages whose claim is still the one given (same worker and attempt)."""
        entries = check_entries("complete", entries)
        done = [(e.id, e.claimed_by, e.attempts) for e in entries]
        if not done:
            return
        ids, workers, attempts = (list(column) for column in zip(*done, strict=True))
        with self._connection("complete outbox messages") as conn:
            conn.execute(self._q(_COMPLETE), (ids, workers, attempts))

    def retry(self, entry: OutboxEntry, *, not_before: datetime, error: str) -> None:
        """Give a claimed message back, ready again from `not_before`, with the error recorded."""
        check_arguments("retry", entry=entry, not_before=not_before, error=error)
        with self._connection("retry an outbox message") as conn:
            conn.execute(
                self._q(
                    "UPDATE {s}.outbox SET claimed_by = NULL, lease_until = NULL, "
                    f"not_before = %s, last_error = %s WHERE {_HELD}"
                ),
                (
                    not_before,
                    error.replace(_NUL, "\ufffd"),
                    entry.id,
                    entry.claimed_by,
                    entry.attempts,
                ),
            )

    def bury(self, entry: OutboxEntry, *, reason: str, at: datetime) -> None:
        """Move a claimed message to the dead letters with `reason`."""
        check_arguments("bury", entry=entry, reason=reason, at=at)
        with self._transaction("bury an outbox message") as conn:
            held = conn.execute(
                self._q(f"SELECT 1 FROM {{s}}.outbox WHERE {_HELD} FOR UPDATE"),
                (entry.id, entry.claimed_by, entry.attempts),
            ).fetchone()
            if held is None:
                return
            conn.execute(self._q(_BURY), (reason.replace(_NUL, "\ufffd"), at, entry.id))
            conn.execute(self._q("DELETE FROM {s}.outbox WHERE id = %s"), (entry.id,))

    def pending(self, limit: int | None = None) -> list[OutboxEntry]:
        """Return up to `limit` messages not delivered nor buried, oldest first, leased or not."""
        check_arguments("pending", limit=limit)
        text = f"SELECT {_OUTBOX_ROW}, claimed_by, lease_until FROM {{s}}.outbox ORDER BY id"
        params: tuple[Any, ...] = ()
        if limit is not None:
            text += " LIMIT %s"
            params = (max(limit, 0),)
        with self._connection("read the outbox") as conn:
            rows = conn.execute(self._q(text), params).fetchall()
        found: list[OutboxEntry] = []
        for row in rows:
            entry, _ = _outbox_entry(row[:9], row[9], row[10])
            if entry is not None:
                found.append(entry)
        return found

    def dead_letters(self, limit: int | None = None) -> list[DeadLetter]:
        """Return up to `limit` dead letters, oldest first."""
        check_arguments("dead_letters", limit=limit)
        text = (
            "SELECT id, topic, key, body, reason, attempts, buried_at, task_id, task_version "
            "FROM {s}.dead_letters ORDER BY id"
        )
        params: tuple[Any, ...] = ()
        if limit is not None:
            text += " LIMIT %s"
            params = (max(limit, 0),)
        with self._connection("read the dead letters") as conn:
            rows = conn.execute(self._q(text), params).fetchall()
        return [
            DeadLetter(i, topic, key, _original_json(body), reason, attempts, at, task_id, version)
            for i, topic, key, body, reason, attempts, at, task_id, version in rows
        ]

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

    def drop_dead_letters(self, ids: Iterable[int]) -> int:
        """Delete dead letters for good; return how many there were."""
        ids = check_ids("drop_dead_letters", ids)
        chosen = sorted(set(ids))
        if not chosen:
            return 0
        with self._transaction("drop dead letters") as conn:
            dropped = conn.execute(
                self._q("DELETE FROM {s}.dead_letters WHERE id = ANY(%s)"), (chosen,)
            )
            return int(dropped.rowcount)

    def check(self) -> list[IndexProblem]:
        """Report every task row whose query columns or assignee rows disagree with its JSON, and every row that does not load."""
        problems: list[IndexProblem] = []
        with self._reading("check every task's index columns") as conn:
            heads = conn.execute(
                self._q(
                    f"SELECT {_HEAD}, {', '.join(_CHECKED_COLUMNS)} "
                    "FROM {s}.tasks ORDER BY created_at, id"
                )
            ).fetchall()
            assignees: dict[int, set[tuple[Any, ...]]] = {}
            for pk, *row in conn.execute(
                self._q("SELECT task_pk, company, user_id, ball_company FROM {s}.task_assignees")
            ):
                assignees.setdefault(pk, set()).add(tuple(row))
            for start in range(0, len(heads), _ROW_BATCH):
                batch = heads[start : start + _ROW_BATCH]
                tasks, broken = self._load_rows(conn, [h[:6] for h in batch], cached=False)
                problems += [IndexProblem(TaskId(e.task_id), "row", str(e)) for e in broken]
                loaded = {task.id: task for task in tasks}
                for head in batch:
                    task = loaded.get(head[0])
                    if task is None:
                        continue
                    expected = _columns(task, "")[: len(_CHECKED_COLUMNS)]
                    for name, stored, want in zip(
                        _CHECKED_COLUMNS, head[6:], expected, strict=True
                    ):
                        if stored != want:
                            problems.append(
                                IndexProblem(
                                    task.id, name, f"column holds {stored!r}, the task {want!r}"
                                )
                            )
                    rows = {(r.company, r.user, task.ball_company) for r in task.assignees}
                    if assignees.get(head[3], set()) != rows:
                        problems.append(
                            IndexProblem(
                                task.id, "task_assignees", "assignee rows disagree with the task"
                            )
                        )
        return problems

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

    def broken_rows(self) -> list[DeserializationError]:
        """Read every stored task and return the error of each row that no longer loads."""
        with self._reading("check every task") as conn:
            heads = conn.execute(
                self._q(f"SELECT {_HEAD} FROM {{s}}.tasks ORDER BY created_at, id")
            ).fetchall()
            broken: list[DeserializationError] = []
            for start in range(0, len(heads), _ROW_BATCH):
                broken += self._load_rows(conn, heads[start : start + _ROW_BATCH], cached=False)[1]
        return broken

    def reindex(self, kinds: Iterable[str] | None = None) -> int:
        """Compute the indexed fields of every stored task of `kinds` (default: all) again; return how many."""
        with self._transaction("index the tasks' fields again") as conn:
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

    def query_plan(self, query: TaskQuery) -> list[str]:
        """Return PostgreSQL's plan (EXPLAIN) for `query`, one line per item."""
        select = _select(query, query.limit)
        if select is None:
            return []
        with self._connection("explain a query") as conn:
            rows = conn.execute(self._q(f"EXPLAIN {select[0]}"), select[1]).fetchall()
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

    def __enter__(self) -> PostgresRepository:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresRepository({self._where}, schema={self._q.schema!r})"

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
        self, conn: _Conn, messages: list[tuple[OutboxMessage, str]]
    ) -> psycopg.Cursor[tuple[Any, ...]] | None:
        """Insert outbox messages in order (one statement) and wake the listening workers.

        Return the cursor whose rows are the new ids, to read once the transaction is over
        (in a pipeline the results arrive with the COMMIT), or None for no message.
        """
        if not messages:
            return None
        columns: list[list[Any]] = [[], [], [], [], [], []]
        for m, body in messages:
            for column, value in zip(
                columns,
                (m.topic, m.key, m.task_id, m.task_version, m.not_before, body),
                strict=True,
            ):
                column.append(value)
        cursor = conn.execute(self._q(_INSERT_MESSAGES), columns)
        if self._notify:
            conn.execute(f"NOTIFY {self._channel}")
        return cursor

    def _declared(self) -> set[tuple[str, str]]:
        return {(kind.name, name) for kind in self._registry for name in kind.indexed}

    def _lock_fields(self, conn: _Conn) -> None:
        conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"taskflow fields {self._q.schema}",)
        )

    def _sync_fields(self) -> None:
        """Index again the tasks of kinds whose indexed fields differ from those stored with them."""
        declared = self._declared()
        select = self._q("SELECT kind, name FROM {s}.indexed_fields")
        with self._transaction("read the indexed fields") as conn:
            stored = {(kind, name) for kind, name in conn.execute(select).fetchall()}
        if stored == declared:
            return
        with self._transaction("index the tasks' fields again") as conn:
            self._lock_fields(conn)
            stored = {(kind, name) for kind, name in conn.execute(select).fetchall()}
            broken = self._reindex(conn, {kind for kind, _ in stored ^ declared})[1]
        for error in broken:
            self._on_broken_row(error)

    def _reindex(self, conn: _Conn, kinds: set[str]) -> tuple[int, list[DeserializationError]]:
        """Rewrite the index rows of every task of `kinds` and record their declarations."""
        names = sorted(kinds)
        if not names:
            return 0, []
        q = self._q
        conn.execute(
            q(
                "DELETE FROM {s}.task_fields WHERE task_pk IN "
                "(SELECT pk FROM {s}.tasks WHERE kind = ANY(%s))"
            ),
            (names,),
        )
        conn.execute(q("DELETE FROM {s}.indexed_fields WHERE kind = ANY(%s)"), (names,))
        pairs = sorted(pair for pair in self._declared() if pair[0] in kinds)
        with conn.cursor() as cur:
            cur.executemany(q("INSERT INTO {s}.indexed_fields (kind, name) VALUES (%s, %s)"), pairs)
        known = [name for name in names if name in self._registry and self._registry[name].indexed]
        if not known:
            return 0, []
        heads = conn.execute(
            q(f"SELECT {_HEAD} FROM {{s}}.tasks WHERE kind = ANY(%s)"), (known,)
        ).fetchall()
        done = 0
        broken: list[DeserializationError] = []
        for start in range(0, len(heads), _ROW_BATCH):
            batch = heads[start : start + _ROW_BATCH]
            tasks, failed = self._load_rows(conn, batch, cached=False)
            broken += failed
            pks = {row[0]: row[3] for row in batch}
            inserts = [
                (pks[task.id], name, tag, *values)
                for task in tasks
                for name, tag, values in self._field_rows(task)
            ]
            with conn.cursor() as cur:
                cur.executemany(q(_INSERT_FIELD), inserts)
            done += len(tasks)
        return done, broken

    def _field_rows(self, task: Task) -> list[tuple[str, str | None, tuple[Any, Any, Any]]]:
        """Return the (name, type, column values) of `task`'s index values; raise `InvalidPayload` for a bad one."""
        if task.kind not in self._registry:
            return []
        values = index_values(self._registry[task.kind], task)
        rows = []
        for name, value in values.items():
            if isinstance(value, str) and _NUL in value:
                msg = (
                    f"task {task.number}: indexed field {name!r} of kind {task.kind!r} is text "
                    f"with the character U+0000, which PostgreSQL cannot store, got {value!r}"
                )
                raise InvalidPayload(msg, field=name)
            rows.append((name, index_tag(value), _field_params(value)))
        return rows

    def _dump(self, task: Task) -> str:
        """Return the task row's JSON: the task with its history and comments left for their rows."""
        head = replace_fields(task, {"history": (), "comments": ()})
        return _to_json(self._serializer.dump_task(head))

    def _put_rows(
        self, conn: _Conn, pk: int, task: Task, history_kept: int, comments_kept: int
    ) -> None:
        """Append the history entries and comments after the kept ones (-1: rewrite all)."""
        for table, insert, items, kept, dump in (
            ("task_history", _INSERT_ENTRY, task.history, history_kept, self._dump_entry(task)),
            ("task_comments", _INSERT_COMMENT, task.comments, comments_kept, self._dump_comment),
        ):
            if kept < 0:
                conn.execute(self._q(f"DELETE FROM {{s}}.{table} WHERE task_pk = %s"), (pk,))
                kept = 0
            if len(items) == kept + 1:
                conn.execute(self._q(insert), (pk, kept, dump(items[kept])))
            elif len(items) > kept:
                with conn.cursor() as cur:
                    cur.executemany(
                        self._q(insert),
                        [(pk, seq, dump(items[seq])) for seq in range(kept, len(items))],
                    )

    def _dump_entry(self, task: Task) -> Callable[[Any], str]:
        kind = task.kind
        dump_entry = self._serializer.dump_entry

        def dump(entry: Any) -> str:
            data = dump_entry(kind, entry)
            del data["schema"]  # the task row's schema covers its rows
            return _to_json(data)

        return dump

    def _dump_comment(self, comment: Any) -> str:
        return _to_json(self._serializer.converter.unstructure(comment, Comment))

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
        try:
            data = _from_json(body)
            if not isinstance(data, dict):
                msg = "the task row holds JSON that is not an object"
                raise ValueError(msg)
            for key, rows in (("history", entries), ("comments", comments)):
                if rows:
                    if data.get(key):
                        msg = f"{key} is both in the task row and in rows of its own"
                        raise ValueError(msg)
                    data[key] = [_from_json(row) for row in rows]
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

    def _read_rows(
        self, conn: _Conn, table: str, wanted: list[tuple[int, int]]
    ) -> dict[int, list[str]]:
        """Return the first n row bodies of each (task pk, n), in order, one query per batch."""
        found: dict[int, list[str]] = {}
        counts = {pk: n for pk, n in wanted if n > 0}
        keys = sorted(counts)
        text = self._q(
            f"SELECT task_pk, seq, body::text FROM {{s}}.{table} WHERE task_pk = ANY(%s) "
            "ORDER BY task_pk, seq"
        )
        for start in range(0, len(keys), _ROW_BATCH):
            for pk, seq, body in conn.execute(text, (keys[start : start + _ROW_BATCH],)):
                if seq < counts[pk]:
                    found.setdefault(pk, []).append(body)
        return found

    def _load_rows(
        self, conn: _Conn, rows: Iterable[Sequence[Any]], *, cached: bool = True
    ) -> tuple[list[Task], list[DeserializationError]]:
        """Load task rows (see `_HEAD`), reading the history and comment rows of those not cached."""
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
        self, conn: _Conn, pk: int, task: Task, before: Task | object | None
    ) -> None:
        """Write the assignee rows of `task`; `before` is the replaced version, if known."""
        q = self._q
        if isinstance(before, Task) and before.assignees == task.assignees:
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
            with conn.cursor() as cur:
                cur.executemany(
                    q(_INSERT_ASSIGNEE),
                    [(pk, ref.company, ref.user, ball) for ref in task.assignees],
                )

    def _put_fields(self, conn: _Conn, pk: int, task: Task, before: Task | object | None) -> None:
        """Write the index rows of `task`'s indexed fields; `before` is the replaced version, if known."""
        q = self._q
        rows = self._field_rows(task)
        if not isinstance(before, Task):
            if before is not None:
                conn.execute(q("DELETE FROM {s}.task_fields WHERE task_pk = %s"), (pk,))
            if rows:
                with conn.cursor() as cur:
                    cur.executemany(
                        q(_INSERT_FIELD), [(pk, name, tag, *values) for name, tag, values in rows]
                    )
            return
        old = {name: (tag, values) for name, tag, values in self._field_rows(before)}
        new = {name: (tag, values) for name, tag, values in rows}
        gone = [name for name, stored in old.items() if new.get(name) != stored]
        if gone:
            conn.execute(
                q("DELETE FROM {s}.task_fields WHERE task_pk = %s AND name = ANY(%s)"), (pk, gone)
            )
        added = [
            (pk, name, tag, *values)
            for name, (tag, values) in new.items()
            if old.get(name) != (tag, values)
        ]
        if added:
            with conn.cursor() as cur:
                cur.executemany(q(_INSERT_FIELD), added)


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
