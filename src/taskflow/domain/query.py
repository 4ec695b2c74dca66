"""What a repository can be asked for, and the rule every repository applies to answer it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from taskflow.domain.task import Task
from taskflow.domain.values import CompanyId, Side, UserRef, aware
from taskflow.errors import InvalidPayload

__all__ = ["TaskQuery", "check_time_range", "sort_key"]


def _optional_names(value: Any) -> frozenset[str] | None:
    if isinstance(value, str):
        return frozenset({value})
    return None if value is None else frozenset(value)


def _limit(instance: Any, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        msg = f"TaskQuery.limit must be None or a whole number >= 0, got {value!r}"
        raise InvalidPayload(msg, field="limit")


@attrs.frozen
class TaskQuery:
    """A filter over stored tasks; every field left None matches everything.

    Results are ordered by creation time, then task id, and cut to `limit`.
    """

    kind: str | None = None
    states: frozenset[str] | None = attrs.field(default=None, converter=_optional_names)
    company: CompanyId | None = None
    side: Side | None = None
    assignee: UserRef | None = None
    ball_company: CompanyId | None = None
    open: bool | None = None
    due_before: datetime | None = attrs.field(default=None, validator=aware)
    limit: int | None = attrs.field(default=None, validator=_limit)

    def __attrs_post_init__(self) -> None:
        if self.side is not None and self.company is None:
            msg = "TaskQuery.side needs TaskQuery.company: it says on which side that company is"
            raise InvalidPayload(msg, field="side")

    def matches(self, task: Task) -> bool:
        """Tell whether `task` passes every filter of this query (the limit aside)."""
        if self.kind is not None and task.kind != self.kind:
            return False
        if self.states is not None and task.state not in self.states:
            return False
        if self.company is not None:
            sides = task.sides_of(self.company)
            if not sides or (self.side is not None and self.side not in sides):
                return False
        if self.assignee is not None and self.assignee not in task.assignees:
            return False
        if self.ball_company is not None and task.ball_company != self.ball_company:
            return False
        if self.open is not None and task.is_open != self.open:
            return False
        return not (
            self.due_before is not None
            and (task.due_at is None or not task.due_at < self.due_before)
        )


def sort_key(task: Task) -> tuple[datetime, str]:
    """Return the key every repository orders query results by: creation time, then id."""
    return (task.created_at, task.id)


def check_time_range(
    names: tuple[str, str], start: datetime | None, end: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """Refuse a range bound that is not an aware datetime, or a start after the end; return both.

    `names` are the caller's parameter names, so the error says which one was wrong.
    """
    for name, value in zip(names, (start, end), strict=True):
        if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
            msg = f"{name} must be a timezone-aware datetime, got {value!r}"
            raise InvalidPayload(msg, field=name)
    if start is not None and end is not None and start > end:
        msg = f"{names[0]} {start.isoformat()} is after {names[1]} {end.isoformat()}"
        raise InvalidPayload(msg, field=names[1])
    return start, end
