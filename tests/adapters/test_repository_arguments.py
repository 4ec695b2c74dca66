"""Every public repository call refuses an argument of the wrong type with a typed error naming it.

The memory and SQLite adapters (and PostgreSQL, through the same `adapters._common` checker)
check their arguments at the entry of each method; nothing is read or written first.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

import taskflow as tf
from taskflow import InvalidPayload
from taskflow.adapters.sqlite import SqliteRepository
from taskflow.ports import TaskRepository

NOW = datetime(2026, 5, 4, 8, 30, tzinfo=UTC)
WRONG: tuple[Any, ...] = (None, 7, True, 1.5, b"x", ["x"], {"a": 1}, object(), "x" * 10_000_000)


@pytest.fixture(params=["memory", "sqlite"])
def repository(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "memory":
        yield tf.InMemoryRepository()
        return
    repo = SqliteRepository(":memory:", tf.default_registry())
    yield repo
    repo.close()


Call = Callable[[Any, Any], Any]


def _not_marks(value: Any) -> bool:
    if isinstance(value, str) or not isinstance(value, Iterable):
        return True
    return not all(isinstance(m, str) for m in value)


def _limit(value: Any) -> bool:
    return value is None or (type(value) is int and value >= 0)


# Each public call of the port, with the argument made malformed (its name as errors give it)
# and the values that are malformed for it (of the WRONG ones, those not of its type).
CALLS: dict[str, list[tuple[str, Call, Callable[[Any], bool]]]] = {
    "get": [("task_id", lambda r, v: r.get(v), lambda v: not isinstance(v, str))],
    "commit": [("changes", lambda r, v: r.commit(v), lambda v: True)],
    "marked": [("mark", lambda r, v: r.marked(v), lambda v: not isinstance(v, str))],
    "add": [("task", lambda r, v: r.add(v), lambda v: True)],
    "save": [("task", lambda r, v: r.save(v, 1), lambda v: True)],
    "query": [("query", lambda r, v: r.query(v), lambda v: True)],
    "count": [("query", lambda r, v: r.count(v), lambda v: True)],
    "next_number": [
        ("company", lambda r, v: r.next_number(v), lambda v: not isinstance(v, str) or len(v) > 200)
    ],
    "check": [],  # takes no argument
    "claim": [
        ("worker", lambda r, v: r.claim(v, NOW, lease=timedelta(minutes=1)), lambda v: True),
        ("now", lambda r, v: r.claim("w", v, lease=timedelta(minutes=1)), lambda v: True),
        ("lease", lambda r, v: r.claim("w", NOW, lease=v), lambda v: True),
    ],
    "complete": [("entries", lambda r, v: r.complete(v), lambda v: True)],
    "retry": [("entry", lambda r, v: r.retry(v, not_before=NOW, error="e"), lambda v: True)],
    "bury": [("entry", lambda r, v: r.bury(v, reason="r", at=NOW), lambda v: True)],
    "pending": [("limit", lambda r, v: r.pending(v), lambda v: not _limit(v))],
    "dead_letters": [("limit", lambda r, v: r.dead_letters(v), lambda v: not _limit(v))],
    "revive": [
        ("ids", lambda r, v: r.revive(v, now=NOW), lambda v: True),
        ("now", lambda r, v: r.revive((), now=v), lambda v: True),
    ],
    "drop_dead_letters": [("ids", lambda r, v: r.drop_dead_letters(v), lambda v: True)],
    "marks": [
        ("prefix", lambda r, v: r.marks(v), lambda v: not isinstance(v, str)),
        (
            "after",
            lambda r, v: r.marks("", after=v),
            lambda v: v is not None and not isinstance(v, str),
        ),
        ("limit", lambda r, v: r.marks("", limit=v), lambda v: not _limit(v)),
    ],
    "drop_marks": [
        ("marks", lambda r, v: r.drop_marks(v), _not_marks),
    ],
}


def test_every_port_call_is_covered() -> None:
    """A new method of the repository port fails here until its arguments are checked too."""
    names = {n for n, m in inspect.getmembers(TaskRepository) if not n.startswith("_")}
    assert names - CALLS.keys() == set()


def _cases() -> list[tuple[str, str, Call, Any]]:
    return [
        (method, field, call, value)
        for method, checks in CALLS.items()
        for field, call, wrong in checks
        for value in (*WRONG, date(2030, 1, 1), datetime(2030, 1, 1))
        if wrong(value)
    ]


@pytest.mark.parametrize(
    ("method", "field", "call", "value"),
    _cases(),
    ids=lambda v: v if isinstance(v, str) and len(v) < 30 else type(v).__name__,
)
def test_wrong_argument_type_is_invalid_payload_naming_it(
    repository: Any, method: str, field: str, call: Call, value: Any
) -> None:
    with pytest.raises(InvalidPayload) as caught:
        call(repository, value)
    assert caught.value.field == field, str(caught.value)[:200]
    assert len(str(caught.value)) < 1_000
    assert repository.pending() == []
    assert repository.next_number(tf.CompanyId("ACME")) == 1
