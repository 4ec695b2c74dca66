"""The due-time port: which tasks a time condition (or the SLA engine) says are due at an instant.

The core reads no clock: the host's scheduler calls `Automation.run_due(at)`, which asks a
`DueTasks` for the tasks due at `at`. The SLA engine answers the same question for its
warnings and breaches; until a host has one, `OverdueTasks` answers it from the tasks' due
dates and `InMemoryDueTasks` from times set by hand (tests, stand-ins).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from taskflow.domain.query import TaskQuery
from taskflow.domain.task import Task
from taskflow.domain.values import TaskId
from taskflow.errors import InvalidPayload

__all__ = ["DueTasks", "InMemoryDueTasks", "OverdueTasks", "TaskSource"]


def _check_at(at: object, where: str) -> datetime:
    if not isinstance(at, datetime) or at.utcoffset() is None:
        msg = f"{where}: the instant must be a timezone-aware datetime, got {at!r:.80}"
        raise InvalidPayload(msg, field="at")
    return at


@runtime_checkable
class DueTasks(Protocol):
    """Answers "which tasks are due at instant T" for time triggers (an SLA engine, a host)."""

    def due(self, at: datetime) -> Sequence[TaskId]:
        """Return the ids of the tasks due at `at` (their time is at or before it), oldest first."""
        ...


class InMemoryDueTasks:
    """Due times set by hand, for tests and for stand-ins of an SLA engine."""

    def __init__(self) -> None:
        self._when: dict[TaskId, datetime] = {}
        self._order: list[tuple[datetime, TaskId]] = []

    def schedule(self, task_id: TaskId, when: datetime) -> None:
        """Make `task_id` due from `when` on (replacing an earlier time)."""
        _check_at(when, "InMemoryDueTasks.schedule")
        self.cancel(task_id)
        self._when[task_id] = when
        bisect.insort(self._order, (when, task_id))

    def cancel(self, task_id: TaskId) -> None:
        """Forget the due time of `task_id` (nothing happens when it has none)."""
        when = self._when.pop(task_id, None)
        if when is not None:
            self._order.remove((when, task_id))

    def due(self, at: datetime) -> Sequence[TaskId]:
        """Return the ids due at or before `at`, by due time then id."""
        _check_at(at, "InMemoryDueTasks.due")
        end = bisect.bisect_right(self._order, (at, TaskId("\U0010ffff")))
        return [task_id for _, task_id in self._order[:end]]


class TaskSource(Protocol):
    """The part of a repository `OverdueTasks` reads."""

    def query(self, query: TaskQuery) -> list[Task]:
        """Return the tasks that match `query`."""
        ...


class OverdueTasks:
    """Tasks whose due date has passed at the instant asked (open ones, one kind or all)."""

    def __init__(self, repository: TaskSource, *, kind: str | None = None) -> None:
        self._repository = repository
        self._kind = kind

    def due(self, at: datetime) -> Sequence[TaskId]:
        """Return the ids of open tasks due strictly before `at`, in creation order."""
        _check_at(at, "OverdueTasks.due")
        query = TaskQuery(kind=self._kind, open=True, due_before=at)
        return [task.id for task in self._repository.query(query)]
