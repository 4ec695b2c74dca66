"""The ports the host application plugs adapters into: storage and outbox, notification, time, ids."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

import attrs

from taskflow.domain.notifications import Notification
from taskflow.domain.outbox import DeadLetter, OutboxEntry, OutboxMessage
from taskflow.domain.query import TaskQuery
from taskflow.domain.task import Task
from taskflow.domain.validators import excerpt, tuple_of, typed_fields
from taskflow.domain.values import CompanyId, TaskId
from taskflow.errors import InvalidPayload

__all__ = [
    "Changeset",
    "Clock",
    "IdFactory",
    "IndexProblem",
    "Notifier",
    "Outbox",
    "TaskRepository",
]


def _tasks(value: Iterable[Task]) -> tuple[Task, ...]:
    return tuple_of(Task, value, "Changeset.added")


def _saves(value: Iterable[tuple[Task, int]]) -> tuple[tuple[Task, int], ...]:
    pairs = tuple_of(tuple, value, "Changeset.saved")
    for i, pair in enumerate(pairs):
        if len(pair) != 2 or not isinstance(pair[0], Task):
            msg = (
                f"Changeset.saved[{i}] must be a (Task, expected version) pair, got {excerpt(pair)}"
            )
            raise InvalidPayload(msg, field=f"saved[{i}]")
    return pairs


def _marks(value: Iterable[str]) -> tuple[str, ...]:
    return tuple_of(str, value, "Changeset.marks")


def _messages(value: Iterable[OutboxMessage]) -> tuple[OutboxMessage, ...]:
    return tuple_of(OutboxMessage, value, "Changeset.messages")


@attrs.frozen(field_transformer=typed_fields)
class Changeset:
    """What one unit of work writes at once: new tasks, changed tasks, and outbox messages.

    `saved` pairs each changed task with the version it was loaded at (compare-and-set).
    `marks` are once-only keys (a rule's fired-marker): stored for good with the commit, and a
    commit naming a mark already stored raises `MarkTaken` and writes nothing.
    """

    added: tuple[Task, ...] = attrs.field(default=(), converter=_tasks)
    saved: tuple[tuple[Task, int], ...] = attrs.field(default=(), converter=_saves)
    messages: tuple[OutboxMessage, ...] = attrs.field(default=(), converter=_messages)
    marks: tuple[str, ...] = attrs.field(default=(), converter=_marks, kw_only=True)

    @property
    def empty(self) -> bool:
        """Tell whether there is nothing to write."""
        return not (self.added or self.saved or self.messages or self.marks)


@attrs.frozen
class IndexProblem:
    """One stored task whose index entries disagree with its stored data, or whose row does not load."""

    task_id: TaskId
    index: str  # the column or index that disagrees, or "row" for a row that does not load
    problem: str  # what is stored and what the task's data says

    def __str__(self) -> str:
        return f"task '{self.task_id}': {self.index}: {self.problem}"


@runtime_checkable
class Outbox(Protocol):
    """Keeps outbox messages until a worker delivers them; part of every repository."""

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
        """Take up to `limit` ready messages (not before `now`, no live lease), oldest first.

        Each returned entry is leased to `worker` until `now + lease` and its `attempts` is one
        higher; no other claim returns it before the lease ends. `topics` and `ids` narrow the
        choice. A stored message that cannot be read is moved to the dead letters, not returned.
        """
        ...

    def complete(self, entries: Iterable[OutboxEntry]) -> None:
        """Remove delivered messages; an entry whose claim was since taken over is left alone."""
        ...

    def retry(self, entry: OutboxEntry, *, not_before: datetime, error: str) -> None:
        """Give a claimed message back, to be claimed again from `not_before`; record the error."""
        ...

    def bury(self, entry: OutboxEntry, *, reason: str, at: datetime) -> None:
        """Move a message to the dead letters with `reason`; it is never claimed again."""
        ...

    def pending(self, limit: int | None = None) -> list[OutboxEntry]:
        """Return up to `limit` messages not yet delivered nor buried, oldest first, leased or not."""
        ...

    def dead_letters(self, limit: int | None = None) -> list[DeadLetter]:
        """Return up to `limit` dead letters, oldest first."""
        ...

    def revive(self, ids: Iterable[int], *, now: datetime) -> int:
        """Put dead letters back in the outbox as new messages ready at `now`; return how many."""
        ...

    def drop_dead_letters(self, ids: Iterable[int]) -> int:
        """Delete dead letters for good (the host has dealt with them); return how many there were."""
        ...


@runtime_checkable
class TaskRepository(Outbox, Protocol):
    """Stores tasks and their outbox; every write is all-or-nothing, every save a compare-and-set."""

    def get(self, task_id: TaskId) -> Task:
        """Return the stored task, or raise `TaskNotFound`."""
        ...

    def commit(self, changes: Changeset) -> tuple[int, ...]:
        """Write every task and message of `changes` in one atomic step; return the messages' ids.

        Each saved task replaces the stored one only if the stored version is still the
        expected one; a stale version raises `ConcurrencyConflict`, an added id that is taken
        raises `ConcurrencyConflict`, a saved task never added raises `TaskNotFound`, a saved
        task whose version is not above the expected one raises `InvalidPayload`, a mark
        already stored raises `MarkTaken`. Any refusal writes nothing at all.
        """
        ...

    def marked(self, mark: str) -> bool:
        """Tell whether a commit stored `mark` (see `Changeset.marks`)."""
        ...

    def marks(
        self, prefix: str = "", *, after: str | None = None, limit: int | None = None
    ) -> list[str]:
        """Return the stored marks that start with `prefix`, in code-point order, after `after`, at most `limit`.

        Pages like a keyset: pass the last mark of a page as `after` for the next one.
        """
        ...

    def drop_marks(self, marks: Iterable[str]) -> int:
        """Delete stored marks for good (a later commit may store them again); return how many there were."""
        ...

    def add(self, task: Task) -> None:
        """Store one new task (a commit of just that task)."""
        ...

    def save(self, task: Task, expected_version: int) -> None:
        """Replace one stored task if its version is still `expected_version` (a commit of just that)."""
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

    def check(self) -> list[IndexProblem]:
        """Read every stored task and report each index entry that disagrees with it, and each row that does not load.

        A health check for the host (a tampered or damaged store): it changes nothing; an empty
        list means every query answers from indexes that agree with the tasks.
        """
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
