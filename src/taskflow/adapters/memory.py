"""In-memory adapters, the embedded default: an indexed repository, notifier, clocks and ids."""

from __future__ import annotations

import bisect
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from taskflow.domain.notifications import Notification
from taskflow.domain.query import TaskQuery, sort_key
from taskflow.domain.task import Task
from taskflow.domain.values import CompanyId, TaskId, UserRef
from taskflow.errors import ConcurrencyConflict, InvalidPayload, TaskNotFound
from taskflow.outbox import OutboxEntry

__all__ = [
    "FixedClock",
    "InMemoryRepository",
    "RecordingNotifier",
    "SequentialIds",
]


class InMemoryRepository:
    """Keeps tasks in a dict, with indexes so inbox, Teambox and due-date queries scan no others.

    Safe to share between threads: every write holds one lock. It is an `OutboxRepository`:
    notifications given to `add` and `save` are queued under the same lock as the write.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: dict[TaskId, Task] = {}
        self._by_company: defaultdict[CompanyId, set[TaskId]] = defaultdict(set)
        self._by_ball: defaultdict[CompanyId, set[TaskId]] = defaultdict(set)
        self._by_assignee: defaultdict[UserRef, set[TaskId]] = defaultdict(set)
        # Tasks with a due time, sorted by it: open ones and closed ones apart, so the
        # overdue query (open, due before now) reads no closed task.
        self._due: dict[bool, list[tuple[datetime, TaskId]]] = {True: [], False: []}
        self._numbers: Counter[CompanyId] = Counter()
        # The outbox: pending notifications by their id, in the order they were queued.
        self._outbox: dict[int, OutboxEntry] = {}
        self._outbox_last = 0

    def get(self, task_id: TaskId) -> Task:
        """Return the stored task, or raise `TaskNotFound`."""
        try:
            return self._tasks[task_id]
        except KeyError:
            raise TaskNotFound(task_id) from None

    def add(self, task: Task, *, notifications: Sequence[Notification] = ()) -> None:
        """Store a new task and queue its notifications; raise `ConcurrencyConflict` if its id is taken."""
        with self._lock:
            stored = self._tasks.get(task.id)
            if stored is not None:
                raise ConcurrencyConflict(task.number, 0, stored.version, exists=True)
            self._tasks[task.id] = task
            self._index(task)
            self._queue(task, notifications)

    def save(
        self, task: Task, expected_version: int, *, notifications: Sequence[Notification] = ()
    ) -> None:
        """Replace the stored task if its version is still `expected_version`, else raise; queue its notifications."""
        if task.version <= expected_version:
            msg = (
                f"saving task {task.number} needs a version above {expected_version}, "
                f"got {task.version}"
            )
            raise InvalidPayload(msg, field="version")
        with self._lock:
            stored = self._tasks.get(task.id)
            if stored is None:
                raise TaskNotFound(task.id)
            if stored.version != expected_version:
                raise ConcurrencyConflict(task.number, expected_version, stored.version)
            self._unindex(stored)
            self._tasks[task.id] = task
            self._index(task)
            self._queue(task, notifications)

    def pending_notifications(self, limit: int | None = None) -> list[OutboxEntry]:
        """Return up to `limit` undelivered notifications, oldest first."""
        with self._lock:
            entries = iter(self._outbox.values())
            if limit is None:
                return list(entries)
            return [entry for entry, _ in zip(entries, range(limit), strict=False)]

    def mark_delivered(self, ids: Iterable[int]) -> None:
        """Remove delivered notifications from the outbox; ids not pending are ignored."""
        with self._lock:
            for entry_id in ids:
                self._outbox.pop(entry_id, None)

    def _queue(self, task: Task, notifications: Sequence[Notification]) -> None:
        for notification in notifications:
            self._outbox_last += 1
            entry = OutboxEntry(self._outbox_last, task.id, task.version, notification)
            self._outbox[entry.id] = entry

    def query(self, query: TaskQuery) -> list[Task]:
        """Return the tasks that match, ordered by creation time then id."""
        found = sorted(
            (t for t in self._candidates(query) if query.matches(t)),
            key=sort_key,
        )
        return found if query.limit is None else found[: query.limit]

    def count(self, query: TaskQuery) -> dict[tuple[str, str], int]:
        """Return how many matching tasks there are per (kind, state); the limit is ignored."""
        counts = Counter((t.kind, t.state) for t in self._candidates(query) if query.matches(t))
        return dict(sorted(counts.items()))

    def next_number(self, company: CompanyId) -> int:
        """Return the next task number of `company`: 1, 2, 3, ... never the same twice."""
        with self._lock:
            self._numbers[company] += 1
            return self._numbers[company]

    def __len__(self) -> int:
        return len(self._tasks)

    def _candidates(self, query: TaskQuery) -> Iterable[Task]:
        # Take the smallest index that the query's filters allow; `matches` does the rest.
        with self._lock:
            sets: list[set[TaskId]] = []
            if query.ball_company is not None:
                sets.append(self._by_ball.get(query.ball_company, set()))
            if query.assignee is not None:
                sets.append(self._by_assignee.get(query.assignee, set()))
            if query.company is not None:
                sets.append(self._by_company.get(query.company, set()))
            smallest = min(sets, key=len) if sets else None
            if query.due_before is not None:
                # Counting the due-date range costs a binary search; read it only if smallest.
                wanted = (True, False) if query.open is None else (query.open,)
                key = (query.due_before,)
                ends = [(self._due[o], bisect.bisect_left(self._due[o], key)) for o in wanted]
                if smallest is None or sum(end for _, end in ends) < len(smallest):
                    return [self._tasks[i] for due, end in ends for _, i in due[:end]]
            if smallest is None:
                return list(self._tasks.values())
            return [self._tasks[task_id] for task_id in smallest]

    def _index(self, task: Task) -> None:
        self._by_company[task.requester.company].add(task.id)
        self._by_company[task.recipient].add(task.id)
        if task.ball_company is not None:
            self._by_ball[task.ball_company].add(task.id)
        for ref in task.assignees:
            self._by_assignee[ref].add(task.id)
        if task.due_at is not None:
            bisect.insort(self._due[task.is_open], (task.due_at, task.id))

    def _unindex(self, task: Task) -> None:
        # Companies never change, so the company index keeps its entries.
        if task.ball_company is not None:
            self._by_ball[task.ball_company].discard(task.id)
        for ref in task.assignees:
            self._by_assignee[ref].discard(task.id)
        if task.due_at is not None:
            due = self._due[task.is_open]
            del due[bisect.bisect_left(due, (task.due_at, task.id))]


class RecordingNotifier:
    """Keeps every notification it is given, in order; for tests and for hosts that poll."""

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def notify(self, notification: Notification) -> None:
        """Record one notification."""
        self.sent.append(notification)

    def for_user(self, user: UserRef) -> list[Notification]:
        """Return the notifications sent to `user`, in order."""
        return [n for n in self.sent if n.recipient == user]

    def clear(self) -> None:
        """Forget every recorded notification."""
        self.sent.clear()


class FixedClock:
    """A clock that says the same time until told to move: set it or advance it."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start if start is not None else datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
        if start.utcoffset() is None:
            msg = f"FixedClock needs a timezone-aware start time, got {start!r}"
            raise InvalidPayload(msg, field="start")
        self._now = start

    def now(self) -> datetime:
        """Return the clock's current time."""
        return self._now

    def advance(self, delta: timedelta = timedelta(minutes=1)) -> datetime:
        """Move the clock forward by `delta` and return the new time."""
        if delta < timedelta(0):
            msg = f"FixedClock moves only forward; got {delta}"
            raise InvalidPayload(msg, field="delta")
        self._now += delta
        return self._now

    def set(self, when: datetime) -> None:
        """Move the clock to `when` (timezone-aware, not before the current time)."""
        if when.utcoffset() is None:
            msg = f"FixedClock needs a timezone-aware time, got {when!r}"
            raise InvalidPayload(msg, field="when")
        if when < self._now:
            msg = f"FixedClock moves only forward; it is {self._now.isoformat()}, not {when.isoformat()}"
            raise InvalidPayload(msg, field="when")
        self._now = when


class SequentialIds:
    """Makes ids `<prefix>-1`, `<prefix>-2`, ... in order; safe to share between threads."""

    def __init__(self, prefix: str = "task") -> None:
        self._prefix = prefix
        self._lock = threading.Lock()
        self._last = 0

    def new_task_id(self) -> TaskId:
        """Return the next id."""
        with self._lock:
            self._last += 1
            return TaskId(f"{self._prefix}-{self._last}")
