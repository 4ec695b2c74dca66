"""Checks every repository applies the same way before it writes or claims anything."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from taskflow.domain.outbox import DeadLetter, OutboxEntry, OutboxMessage
from taskflow.domain.query import TaskQuery
from taskflow.domain.task import Task
from taskflow.domain.validators import check_aware, check_id, check_instance, check_limit, excerpt
from taskflow.errors import InvalidPayload, ViewNotSaveable
from taskflow.ports import Changeset

__all__ = [
    "check_arguments",
    "check_changeset",
    "check_claim",
    "check_entries",
    "check_ids",
    "check_marks_query",
    "check_text",
    "dropped_marks",
    "marks_select",
    "prefix_end",
    "revived_message",
]


def _version(call: str, field: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        msg = f"{call}: {field} must be a whole number, got {excerpt(value)}"
        raise InvalidPayload(msg, field=field)


def _text(call: str, field: str, value: Any) -> None:
    check_instance(call, field, value, str)


# How each argument of a repository call is checked, by its name: one table for every adapter.
_CHECKS = {
    "task_id": lambda call, field, value: check_instance(call, field, value, str),
    "task": lambda call, field, value: check_instance(call, field, value, Task),
    "expected_version": lambda call, field, value: _version(call, field, value),
    "query": lambda call, field, value: check_instance(call, field, value, TaskQuery),
    "mark": _text,
    "company": lambda call, field, value: check_id(call, field, value),
    "entry": lambda call, field, value: check_instance(call, field, value, OutboxEntry),
    "limit": lambda call, field, value: check_limit(call, value, field=field),
    "now": check_aware,
    "at": check_aware,
    "not_before": check_aware,
    "error": _text,
    "reason": _text,
}


def check_arguments(call: str, **arguments: Any) -> None:
    """Refuse a repository call's argument of the wrong type with `InvalidPayload` naming it.

    Every adapter calls it at the entry of its public methods, so each refuses the same
    arguments the same way (`check_arguments("get", task_id=task_id)`).
    """
    for field, value in arguments.items():
        _CHECKS[field](call, field, value)


def check_entries(call: str, entries: Any) -> tuple[OutboxEntry, ...]:
    """Return `entries` as a tuple of `OutboxEntry`; refuse anything else, naming `entries`."""
    if isinstance(entries, str | bytes) or not isinstance(entries, Iterable):
        msg = f"{call}: entries must be a collection of OutboxEntry, got {excerpt(entries)}"
        raise InvalidPayload(msg, field="entries")
    chosen = tuple(entries)
    for each in chosen:
        check_instance(call, "entries", each, OutboxEntry)
    return chosen


def check_ids(call: str, ids: Any) -> tuple[int, ...]:
    """Return `ids` (dead letter or message ids) as a tuple of ints; refuse anything else, naming `ids`."""
    if isinstance(ids, str | bytes) or not isinstance(ids, Iterable):
        msg = f"{call}: ids must be a collection of whole numbers, got {excerpt(ids)}"
        raise InvalidPayload(msg, field="ids")
    chosen = tuple(ids)
    for each in chosen:
        if not isinstance(each, int) or isinstance(each, bool):
            msg = f"{call}: ids must be whole numbers, got {excerpt(each)}"
            raise InvalidPayload(msg, field="ids")
    return chosen


def check_changeset(changes: Changeset) -> None:
    """Refuse a changeset that no repository may write: a view, a task twice, a version not moving up."""
    if not isinstance(changes, Changeset):
        msg = f"commit needs a Changeset, got {type(changes).__name__}"
        raise InvalidPayload(msg, field="changes")
    seen: set[str] = set()
    for task in (*changes.added, *(task for task, _ in changes.saved)):
        if task.view_of is not None:
            # Storing a view would delete the notes it leaves out (another company's).
            raise ViewNotSaveable(task.number, task.view_of)
        if task.id in seen:
            msg = f"a commit names task {task.number} ({task.id}) twice; write each task once"
            raise InvalidPayload(msg, field="changes")
        seen.add(task.id)
    marks = changes.marks
    if any(not isinstance(m, str) or not m.strip() for m in marks) or len(set(marks)) < len(marks):
        msg = f"a commit's marks must be distinct non-blank strings, got {marks!r:.120}"
        raise InvalidPayload(msg, field="marks")
    for task, expected in changes.saved:
        if not isinstance(expected, int) or isinstance(expected, bool):
            msg = (
                f"saving task {task.number} needs a whole-number expected version, got {expected!r}"
            )
            raise InvalidPayload(msg, field="version")
        if task.version <= expected:
            msg = f"saving task {task.number} needs a version above {expected}, got {task.version}"
            raise InvalidPayload(msg, field="version")


def check_claim(worker: str, now: datetime, lease: timedelta, limit: int) -> None:
    """Refuse a claim with a malformed worker name, a naive time, a lease that is not positive, a bad limit."""
    if not isinstance(worker, str) or not worker.strip():
        msg = f"claim needs a non-blank worker name, got {excerpt(worker)}"
        raise InvalidPayload(msg, field="worker")
    check_id("claim", "worker", worker)  # trimmed, short, no control characters
    if not isinstance(now, datetime) or now.utcoffset() is None:
        msg = f"claim needs a timezone-aware `now`, got {excerpt(now)}"
        raise InvalidPayload(msg, field="now")
    if not isinstance(lease, timedelta) or lease <= timedelta(0):
        msg = f"claim needs a positive lease (a timedelta), got {excerpt(lease)}"
        raise InvalidPayload(msg, field="lease")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        msg = f"claim needs a limit that is a whole number >= 0, got {excerpt(limit)}"
        raise InvalidPayload(msg, field="limit")


def revived_message(dead: DeadLetter, now: datetime) -> OutboxMessage:
    """Return the message a dead letter held, ready at `now`; a body that is no JSON object is kept as text."""
    try:
        payload = json.loads(dead.body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        payload = {"unreadable": dead.body}
    return OutboxMessage(
        dead.topic,
        dead.key,
        payload,
        not_before=now,
        task_id=dead.task_id,
        task_version=dead.task_version,
    )


def check_text(*texts: str) -> None:
    """Raise ValueError for text that is not valid Unicode (undecodable bytes kept as surrogates)."""
    for text in texts:
        if not text.isascii():
            text.encode("utf-8")  # UnicodeEncodeError (a ValueError) on a lone surrogate


def check_marks_query(prefix: object, after: object, limit: object) -> None:
    """Refuse a `marks` listing with a prefix that is not a str, an `after` that is not a str, or a bad limit."""
    if not isinstance(prefix, str):
        msg = f'marks(prefix=...) must be a str ("" for every mark), got {type(prefix).__name__}'
        raise InvalidPayload(msg, field="prefix")
    if after is not None and not isinstance(after, str):
        msg = f"marks(after=...) must be a mark (a str) or None, got {type(after).__name__}"
        raise InvalidPayload(msg, field="after")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        msg = f"marks(limit=...) must be a whole number of 0 or more, or None, got {excerpt(limit)}"
        raise InvalidPayload(msg, field="limit")


def dropped_marks(marks: Iterable[str]) -> list[str]:
    """Return the distinct marks to drop, sorted; refuse a str (one mark is `[mark]`) or a non-str member."""
    if isinstance(marks, str):
        msg = f"drop_marks needs a collection of marks, got the str {marks!r:.60}; pass [mark]"
        raise InvalidPayload(msg, field="marks")
    if not isinstance(marks, Iterable):
        msg = f"drop_marks needs a collection of marks (str), got {excerpt(marks)}"
        raise InvalidPayload(msg, field="marks")
    chosen = list(marks)
    for mark in chosen:
        if not isinstance(mark, str):
            msg = f"drop_marks: every mark is a str, got {type(mark).__name__}"
            raise InvalidPayload(msg, field="marks")
    return sorted(set(chosen))


def prefix_end(prefix: str) -> str | None:
    """Return the least string above every string that starts with `prefix` (None: no bound)."""
    chars = list(prefix)
    while chars:
        code = ord(chars[-1]) + 1
        if code <= 0x10FFFF:
            chars[-1] = chr(0xE000 if 0xD800 <= code <= 0xDFFF else code)
            return "".join(chars)
        chars.pop()
    return None


def marks_select(
    table: str, mark: str, prefix: str, after: str | None, limit: int | None
) -> tuple[str, list[Any]]:
    """Return the SELECT of a `marks` listing and its parameters, `mark` being the placeholder (? or %s)."""
    sql, params = f"SELECT key FROM {table} WHERE key >= {mark}", list[Any]([prefix])
    end = prefix_end(prefix)
    if end is not None and prefix:
        sql, params = f"{sql} AND key < {mark}", [*params, end]
    if after is not None:
        sql, params = f"{sql} AND key > {mark}", [*params, after]
    sql += " ORDER BY key"
    if limit is not None:
        sql, params = f"{sql} LIMIT {mark}", [*params, limit]
    return sql, params
