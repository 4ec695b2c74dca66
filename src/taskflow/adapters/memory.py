"""In-memory adapters, the embedded default: an indexed repository, notifier, clocks and ids."""

from __future__ import annotations

import bisect
import functools
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from taskflow.adapters._common import (
    check_arguments,
    check_changeset,
    check_claim,
    check_entries,
    check_ids,
    check_marks_query,
    dropped_marks,
    revived_message,
)
from taskflow.domain.notifications import Notification
from taskflow.domain.outbox import DeadLetter, OutboxEntry, OutboxMessage
from taskflow.domain.query import (
    Between,
    IndexValue,
    TaskQuery,
    check_indexed,
    index_tag,
    index_values,
    sort_key,
)
from taskflow.domain.registry import Registry
from taskflow.domain.task import Task
from taskflow.domain.values import CompanyId, TaskId, UserRef
from taskflow.errors import (
    ConcurrencyConflict,
    InvalidPayload,
    MarkTaken,
    TaskflowError,
    TaskNotFound,
)
from taskflow.ports import Changeset, IndexProblem

__all__ = [
    "FixedClock",
    "InMemoryRepository",
    "RecordingNotifier",
    "SequentialIds",
]


class InMemoryRepository:
    """Keeps tasks in a dict, with indexes so that no query reads tasks it could have skipped.

    Safe to share between threads: every write holds one lock, so a `commit` is all or
    nothing. The outbox lives under the same lock: messages are queued with their tasks.
    With `registry`, it computes and indexes the indexed fields its kinds declare
    (`TaskKind.indexed`), so `TaskQuery.where` can filter on them; without one it knows no
    kind's declarations, and a query on an indexed field raises `InvalidPayload`.
    """

    def __init__(self, *, registry: Registry | None = None) -> None:
        self._lock = threading.Lock()
        self._registry = registry
        self._tasks: dict[TaskId, Task] = {}
        self._by_company: defaultdict[CompanyId, set[TaskId]] = defaultdict(set)
        self._by_ball: defaultdict[CompanyId, set[TaskId]] = defaultdict(set)
        self._by_assignee: defaultdict[UserRef, set[TaskId]] = defaultdict(set)
        # Tasks with a due time, sorted by it: open ones and closed ones apart, so the
        # overdue query (open, due before now) reads no closed task.
        self._due: dict[bool, list[tuple[datetime, TaskId]]] = {True: [], False: []}
        # Every task by creation time, then id: the order of results, walked from a cursor.
        self._created: list[tuple[datetime, TaskId]] = []
        # Each task's index values, and per (field, index type) (value, id) pairs sorted.
        self._values: dict[TaskId, dict[str, IndexValue]] = {}
        self._fields: defaultdict[tuple[str, str], list[tuple[Any, TaskId]]] = defaultdict(list)
        self._numbers: Counter[CompanyId] = Counter()
        # The outbox: messages by id in the order they were queued, and the dead letters.
        self._outbox: dict[int, _Row] = {}
        self._dead: dict[int, DeadLetter] = {}
        self._outbox_last = 0
        self._marks: set[str] = set()
        self._mark_order: list[str] = []  # the marks sorted, for `marks` by prefix

    def get(self, task_id: TaskId) -> Task:
        """Return the stored task, or raise `TaskNotFound`."""
        check_arguments("get", task_id=task_id)
        try:
            return self._tasks[task_id]
        except KeyError:
            raise TaskNotFound(task_id) from None

    def commit(self, changes: Changeset) -> tuple[int, ...]:
        """Write every task and message of `changes` under one lock, all or nothing; return the message ids."""
        check_changeset(changes)
        # Computed before the lock: a wrong index value refuses the commit with nothing written.
        values = {
            t.id: self._index_values(t) for t in (*changes.added, *(t for t, _ in changes.saved))
        }
        with self._lock:
            for mark in changes.marks:
                if mark in self._marks:
                    raise MarkTaken(mark)
            for task in changes.added:
                stored = self._tasks.get(task.id)
                if stored is not None:
                    raise ConcurrencyConflict(task.number, 0, stored.version, exists=True)
            for task, expected in changes.saved:
                stored = self._tasks.get(task.id)
                if stored is None:
                    raise TaskNotFound(task.id)
                if stored.version != expected:
                    raise ConcurrencyConflict(task.number, expected, stored.version)
            for task in changes.added:
                self._tasks[task.id] = task
                self._index(task, values[task.id], new=True)
            for task, _ in changes.saved:
                self._move(self._tasks[task.id], task, values[task.id])
                self._tasks[task.id] = task
            self._marks.update(changes.marks)
            for mark in changes.marks:
                bisect.insort(self._mark_order, mark)
            ids: list[int] = []
            # A message's JSON body is made when something reads it (a dead letter); every
            # message was checked JSON-ready when it was built.
            for message in changes.messages:
                self._outbox_last += 1
                self._outbox[self._outbox_last] = _Row(self._outbox_last, message)
                ids.append(self._outbox_last)
            return tuple(ids)

    def marked(self, mark: str) -> bool:
        """Tell whether a commit stored `mark`."""
        check_arguments("marked", mark=mark)
        with self._lock:
            return mark in self._marks

    def marks(
        self, prefix: str = "", *, after: str | None = None, limit: int | None = None
    ) -> list[str]:
        """Return the stored marks that start with `prefix`, in order, after `after`, at most `limit`."""
        check_marks_query(prefix, after, limit)
        with self._lock:
            order = self._mark_order
            i = bisect.bisect_left(order, prefix)
            if after is not None:
                i = max(i, bisect.bisect_right(order, after))
            found: list[str] = []
            while i < len(order) and order[i].startswith(prefix):
                if limit is not None and len(found) >= limit:
                    break
                found.append(order[i])
                i += 1
            return found

    def drop_marks(self, marks: Iterable[str]) -> int:
        """Delete stored marks for good; return how many there were."""
        chosen = dropped_marks(marks)
        with self._lock:
            gone = [mark for mark in chosen if mark in self._marks]
            self._marks.difference_update(gone)
            for mark in gone:
                del self._mark_order[bisect.bisect_left(self._mark_order, mark)]
            return len(gone)

    def add(self, task: Task) -> None:
        """Store one new task; raise `ConcurrencyConflict` if its id is taken."""
        check_arguments("add", task=task)
        self.commit(Changeset(added=(task,)))

    def save(self, task: Task, expected_version: int) -> None:
        """Replace the stored task if its version is still `expected_version`, else raise."""
        check_arguments("save", task=task, expected_version=expected_version)
        self.commit(Changeset(saved=((task, expected_version),)))

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
        """Lease up to `limit` ready messages to `worker`, oldest first."""
        check_claim(worker, now, lease, limit)
        wanted = None if topics is None else frozenset(topics)
        with self._lock:
            rows = (
                self._outbox.values()
                if ids is None
                else [self._outbox[i] for i in sorted(set(ids)) if i in self._outbox]
            )
            taken: list[OutboxEntry] = []
            for row in rows:
                if len(taken) >= limit:
                    break
                if wanted is not None and row.message.topic not in wanted:
                    continue
                if not row.ready(now):
                    continue
                row.attempts += 1
                row.claimed_by = worker
                row.lease_until = now + lease
                taken.append(row.entry())
            return taken

    def complete(self, entries: Iterable[OutboxEntry]) -> None:
        """Remove delivered messages whose claim is still the one given."""
        entries = check_entries("complete", entries)
        with self._lock:
            for entry in entries:
                row = self._outbox.get(entry.id)
                if row is not None and row.holds(entry):
                    del self._outbox[entry.id]

    def retry(self, entry: OutboxEntry, *, not_before: datetime, error: str) -> None:
        """Give a claimed message back, ready again from `not_before`."""
        check_arguments("retry", entry=entry, not_before=not_before, error=error)
        with self._lock:
            row = self._outbox.get(entry.id)
            if row is not None and row.holds(entry):
                row.claimed_by = None
                row.lease_until = None
                row.not_before = not_before
                row.last_error = error

    def bury(self, entry: OutboxEntry, *, reason: str, at: datetime) -> None:
        """Move a message to the dead letters with `reason`."""
        check_arguments("bury", entry=entry, reason=reason, at=at)
        with self._lock:
            row = self._outbox.get(entry.id)
            if row is None or not row.holds(entry):
                return
            del self._outbox[entry.id]
            message = row.message
            self._dead[entry.id] = DeadLetter(
                entry.id,
                message.topic,
                message.key,
                row.body,
                reason,
                row.attempts,
                at,
                message.task_id,
                message.task_version,
            )

    def pending(self, limit: int | None = None) -> list[OutboxEntry]:
        """Return up to `limit` messages not delivered nor buried, oldest first."""
        check_arguments("pending", limit=limit)
        with self._lock:
            rows = list(self._outbox.values())
        return [row.entry() for row in (rows if limit is None else rows[: max(limit, 0)])]

    def dead_letters(self, limit: int | None = None) -> list[DeadLetter]:
        """Return up to `limit` dead letters, oldest first."""
        check_arguments("dead_letters", limit=limit)
        with self._lock:
            dead = list(self._dead.values())
        return dead if limit is None else dead[: max(limit, 0)]

    def revive(self, ids: Iterable[int], *, now: datetime) -> int:
        """Queue dead letters again as new messages ready at `now`; return how many."""
        ids = check_ids("revive", ids)
        check_arguments("revive", now=now)
        with self._lock:
            revived = 0
            for dead_id in sorted(set(ids)):
                dead = self._dead.pop(dead_id, None)
                if dead is None:
                    continue
                message = revived_message(dead, now)
                self._outbox_last += 1
                self._outbox[self._outbox_last] = _Row(self._outbox_last, message, dead.body)
                revived += 1
            return revived

    def drop_dead_letters(self, ids: Iterable[int]) -> int:
        """Delete dead letters for good; return how many there were."""
        ids = check_ids("drop_dead_letters", ids)
        with self._lock:
            return sum(self._dead.pop(i, None) is not None for i in set(ids))

    def query(self, query: TaskQuery) -> list[Task]:
        """Return the tasks that match, ordered by creation time then id."""
        check_arguments("query", query=query)
        check_indexed(query, self._registry, "InMemoryRepository")
        with self._lock:
            return self._matching(query, query.limit)

    def count(self, query: TaskQuery) -> dict[tuple[str, str], int]:
        """Return how many matching tasks there are per (kind, state); the limit is ignored."""
        check_arguments("count", query=query)
        check_indexed(query, self._registry, "InMemoryRepository")
        with self._lock:
            counts = Counter((t.kind, t.state) for t in self._matching(query, None))
        return dict(sorted(counts.items()))

    def next_number(self, company: CompanyId) -> int:
        """Return the next task number of `company`: 1, 2, 3, ... never the same twice."""
        check_arguments("next_number", company=company)
        with self._lock:
            self._numbers[company] += 1
            return self._numbers[company]

    def check(self) -> list[IndexProblem]:
        """Report every index entry that disagrees with the stored tasks (nothing is changed)."""
        with self._lock:
            tasks = dict(self._tasks)
            actual = self._index_sets()
            values = {task_id: dict(v) for task_id, v in self._values.items()}
        expected = InMemoryRepository(registry=self._registry)
        problems: list[IndexProblem] = []
        for task in tasks.values():
            try:
                computed = expected._index_values(task)
            except TaskflowError as exc:
                problems.append(IndexProblem(task.id, "indexed fields", str(exc)))
                computed = {}
            expected._tasks[task.id] = task
            expected._index(task, computed, new=True)
            if values.get(task.id, {}) != computed:
                problems.append(
                    IndexProblem(
                        task.id,
                        "indexed fields",
                        f"indexed as {values.get(task.id, {})!r}, the task gives {computed!r}",
                    )
                )
        wanted = expected._index_sets()
        for index in sorted(wanted.keys() | actual.keys()):
            found, should = actual.get(index, {}), wanted.get(index, {})
            for key in sorted(found.keys() | should.keys(), key=repr):
                extra = found.get(key, set()) - should.get(key, set())
                missing = should.get(key, set()) - found.get(key, set())
                for task_id in sorted(extra):
                    why = f"lists the task under {key!r}, which its stored data does not say"
                    problems.append(IndexProblem(task_id, index, why))
                for task_id in sorted(missing):
                    why = f"does not list the task under {key!r}, which its stored data says"
                    problems.append(IndexProblem(task_id, index, why))
        return problems

    def _index_sets(self) -> dict[str, dict[Any, set[TaskId]]]:
        """Return every index as (index name -> key -> task ids), to compare two repositories'."""
        sets: dict[str, dict[Any, set[TaskId]]] = {
            "company": {k: set(v) for k, v in self._by_company.items() if v},
            "ball_company": {k: set(v) for k, v in self._by_ball.items() if v},
            "assignee": {k: set(v) for k, v in self._by_assignee.items() if v},
            "created_at": {},
            "due_at": {},
            "indexed field": {},
        }
        for (name, tag), entries in self._fields.items():
            for value, task_id in entries:
                sets["indexed field"].setdefault((name, tag, value), set()).add(task_id)
        for at, task_id in self._created:
            sets["created_at"].setdefault(at, set()).add(task_id)
        for flag, due in self._due.items():
            for at, task_id in due:
                sets["due_at"].setdefault((flag, at), set()).add(task_id)
        return sets

    def __len__(self) -> int:
        return len(self._tasks)

    def _matching(self, query: TaskQuery, limit: int | None) -> list[Task]:
        # Read the smallest index the query's filters allow (`matches` does the rest); when
        # the creation-time span is no larger, walk it in order and stop at the limit.
        created = self._created
        start = (
            0
            if query.created_from is None
            else bisect.bisect_left(created, query.created_from, key=_first)
        )
        if query.after is not None:
            start = max(start, bisect.bisect_right(created, query.after.key()))
        end = len(created)
        if query.created_until is not None:
            end = bisect.bisect_right(created, query.created_until, key=_first)
        if end <= start or limit == 0:
            return []
        smallest = min(self._sources(query), key=_first, default=None)
        values = self._values
        if smallest is None or smallest[0] >= end - start:
            found: list[Task] = []
            for index in range(start, end):
                task = self._tasks[created[index][1]]
                if query.matches(task, values[task.id]):
                    found.append(task)
                    if len(found) == limit:
                        break
            return found
        tasks = (self._tasks[task_id] for task_id in smallest[1]())
        found = sorted((t for t in tasks if query.matches(t, values[t.id])), key=sort_key)
        return found if limit is None else found[:limit]

    def _sources(self, query: TaskQuery) -> Iterator[tuple[int, Callable[[], Iterable[TaskId]]]]:
        """Yield (size, ids) for each index that holds every task the query may match."""
        keyed: list[set[TaskId]] = []
        if query.ball_company is not None:
            keyed.append(self._by_ball.get(query.ball_company, set()))
        if query.assignee is not None:
            keyed.append(self._by_assignee.get(query.assignee, set()))
        companies = (query.company, query.requester_company, query.recipient_company)
        keyed += [self._by_company.get(c, set()) for c in companies if c is not None]
        for ids in keyed:
            yield len(ids), functools.partial(_same, ids)
        if query.due_before is not None:
            # Counting the due-date range costs a binary search per open flag.
            wanted = (True, False) if query.open is None else (query.open,)
            key = (query.due_before,)
            ends = [(self._due[flag], bisect.bisect_left(self._due[flag], key)) for flag in wanted]
            yield sum(end for _, end in ends), functools.partial(_due_ids, ends)
        for name, condition in query.where.items():
            if isinstance(condition, Between):
                low, high, tag = condition.low, condition.high, condition.tag
            else:
                low, high, tag = condition, condition, index_tag(condition)
            entries = self._fields.get((name, str(tag)), [])
            lo = 0 if low is None else bisect.bisect_left(entries, low, key=_first)
            hi = len(entries) if high is None else bisect.bisect_right(entries, high, key=_first)
            yield hi - lo, functools.partial(_ids, entries, lo, hi)

    def _index_values(self, task: Task) -> dict[str, IndexValue]:
        """Compute `task`'s index values (raises `InvalidPayload`); call it before writing anything."""
        if self._registry is None or task.kind not in self._registry:
            return {}
        return index_values(self._registry[task.kind], task)

    def _index(self, task: Task, values: dict[str, IndexValue], *, new: bool = False) -> None:
        """Index a stored task with its `_index_values`; `new` for a task not stored before."""
        if new:
            self._by_company[task.requester.company].add(task.id)
            self._by_company[task.recipient].add(task.id)
            bisect.insort(self._created, (task.created_at, task.id))
        if task.ball_company is not None:
            self._by_ball[task.ball_company].add(task.id)
        for ref in task.assignees:
            self._by_assignee[ref].add(task.id)
        if task.due_at is not None:
            bisect.insort(self._due[task.is_open], (task.due_at, task.id))
        self._values[task.id] = values
        for name, value in values.items():
            bisect.insort(self._fields[(name, str(index_tag(value)))], (value, task.id))

    def _move(self, old: Task, new: Task, values: dict[str, IndexValue]) -> None:
        """Re-index a saved task, touching only the index keys whose value changed."""
        task_id = new.id
        old_ball, new_ball = old.ball_company, new.ball_company
        if old_ball != new_ball:
            if old_ball is not None:
                self._by_ball[old_ball].discard(task_id)
            if new_ball is not None:
                self._by_ball[new_ball].add(task_id)
        if old.assignees is not new.assignees and old.assignees != new.assignees:
            for ref in old.assignees:
                self._by_assignee[ref].discard(task_id)
            for ref in new.assignees:
                self._by_assignee[ref].add(task_id)
        if old.due_at != new.due_at or old.is_open != new.is_open:
            if old.due_at is not None:
                due = self._due[old.is_open]
                del due[bisect.bisect_left(due, (old.due_at, task_id))]
            if new.due_at is not None:
                bisect.insort(self._due[new.is_open], (new.due_at, task_id))
        before = self._values.get(task_id, _NO_VALUES)
        for name, value in before.items():
            if not _same_key(values.get(name, _MISSING), value):
                entries = self._fields[(name, str(index_tag(value)))]
                del entries[bisect.bisect_left(entries, (value, task_id))]
        for name, value in values.items():
            if not _same_key(before.get(name, _MISSING), value):
                bisect.insort(self._fields[(name, str(index_tag(value)))], (value, task_id))
        self._values[task_id] = values


_MISSING = object()
_NO_VALUES: dict[str, IndexValue] = {}


def _same_key(a: object, b: object) -> bool:
    """Tell whether two index values are one key: equal and of one type (1, 1.0 and True differ)."""
    return type(a) is type(b) and a == b


def _first(pair: tuple[Any, Any]) -> Any:
    return pair[0]


def _same(ids: set[TaskId]) -> set[TaskId]:
    return ids


def _due_ids(ends: list[tuple[list[tuple[datetime, TaskId]], int]]) -> list[TaskId]:
    return [task_id for due, end in ends for _, task_id in due[:end]]


def _ids(entries: list[tuple[Any, TaskId]], lo: int, hi: int) -> list[TaskId]:
    return [task_id for _, task_id in entries[lo:hi]]


@attrs.define
class _Row:
    """One queued message with its delivery state (mutable, guarded by the repository's lock)."""

    id: int
    message: OutboxMessage
    # The body kept as it was (a revived dead letter's); None: the message's own.
    _body: str | None = None
    attempts: int = 0
    claimed_by: str | None = None
    lease_until: datetime | None = None
    not_before: datetime | None = None
    last_error: str | None = None

    def __attrs_post_init__(self) -> None:
        self.not_before = self.message.not_before

    @property
    def body(self) -> str:
        return self.message.body if self._body is None else self._body

    def ready(self, now: datetime) -> bool:
        if self.not_before is not None and self.not_before > now:
            return False
        return self.lease_until is None or self.lease_until <= now

    def holds(self, entry: OutboxEntry) -> bool:
        return self.claimed_by == entry.claimed_by and self.attempts == entry.attempts

    def entry(self) -> OutboxEntry:
        return OutboxEntry(
            self.id,
            self.message,
            self.attempts,
            self.claimed_by,
            self.lease_until,
            self.last_error,
        )


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
    """A test helper: a clock that says the same time until told to move (set it or advance it).

    Production hosts use `taskflow.adapters.system.SystemClock`.
    """

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
    """A test helper: makes ids `<prefix>-1`, `<prefix>-2`, ... in order; safe to share between threads.

    The count starts again in every process, so two processes (or one after a restart) on one
    database collide: production hosts use `taskflow.adapters.system.UuidIds`.
    """

    def __init__(self, prefix: str = "task") -> None:
        self._prefix = prefix
        self._lock = threading.Lock()
        self._last = 0

    def new_task_id(self) -> TaskId:
        """Return the next id."""
        with self._lock:
            self._last += 1
            return TaskId(f"{self._prefix}-{self._last}")
