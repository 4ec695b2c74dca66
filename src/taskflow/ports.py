"""The ports the host application plugs adapters into: storage, notification, time and ids."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from taskflow.domain.notifications import Notification
from taskflow.domain.query import TaskQuery
from taskflow.domain.task import Task
from taskflow.domain.values import CompanyId, TaskId
from taskflow.outbox import OutboxEntry

__all__ = ["Clock", "IdFactory", "Notifier", "OutboxRepository", "TaskRepository"]


@runtime_checkable
class TaskRepository(Protocol):
    """Stores tasks; every save is a compare-and-set on the task's version."""

    def get(self, task_id: TaskId) -> Task:
        """Return the stored task, or raise `TaskNotFound`."""
        ...

    def add(self, task: Task) -> None:
        """Store a new task; raise `ConcurrencyConflict` if its id is taken (the stored one stays)."""
        ...

    def save(self, task: Task, expected_version: int) -> None:
        """Replace the stored task if its version is still `expected_version` (compare-and-set).

        Raises `ConcurrencyConflict` for a stale version, `TaskNotFound` for a task never
        added, `InvalidPayload` when `task.version` is not above `expected_version`; a refused
        save writes nothing.
        """
        ...

    def query(self, query: TaskQuery) -> list[Task]:
        """Return the tasks that match, ordered by creation time then id.

        Matching is `TaskQuery.matches` with the task's `index_values`; a query on an indexed
        field the repository cannot answer raises `InvalidPayload` (see `check_indexed`).
        """
        ...

    def count(self, query: TaskQuery) -> dict[tuple[str, str], int]:
        """Return how many matching tasks there are per (kind, state); the limit is ignored."""
        ...

    def next_number(self, company: CompanyId) -> int:
        """Return the next task number of `company`: 1, 2, 3, ... never the same twice."""
        ...


@runtime_checkable
class OutboxRepository(TaskRepository, Protocol):
    """A repository that keeps a write's notifications in the same transaction as the write.

    `TaskService` records notifications here when its repository has these methods, and
    notifies directly after the write when it has not.
    """

    def add(self, task: Task, *, notifications: Sequence[Notification] = ()) -> None:
        """Store a new task and queue `notifications` with it, all or nothing (see `TaskRepository.add`)."""
        ...

    def save(
        self, task: Task, expected_version: int, *, notifications: Sequence[Notification] = ()
    ) -> None:
        """Save like `TaskRepository.save` and queue `notifications` with it; a refused save queues none."""
        ...

    def pending_notifications(self, limit: int | None = None) -> list[OutboxEntry]:
        """Return up to `limit` undelivered notifications, oldest first (the order they were queued)."""
        ...

    def mark_delivered(self, ids: Iterable[int]) -> None:
        """Remove delivered notifications from the outbox; ids not pending are ignored."""
        ...


@runtime_checkable
class Notifier(Protocol):
    """Delivers notifications (e-mail, push, a message queue: the host decides)."""

    def notify(self, notification: Notification) -> None:
        """Deliver one notification."""
        ...


@runtime_checkable
class Clock(Protocol):
    """Tells the time; the core never reads a clock itself."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware."""
        ...


@runtime_checkable
class IdFactory(Protocol):
    """Makes task ids; the core never invents one itself."""

    def new_task_id(self) -> TaskId:
        """Return an id no task has had before."""
        ...
