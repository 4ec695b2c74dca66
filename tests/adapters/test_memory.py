import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest

from taskflow.adapters.memory import (
    FixedClock,
    InMemoryRepository,
    RecordingNotifier,
    SequentialIds,
)
from taskflow.domain.common import COMMENT, AddComment
from taskflow.domain.notifications import Notification
from taskflow.domain.values import TaskId
from taskflow.errors import ConcurrencyConflict, InvalidPayload
from taskflow.ports import Clock, IdFactory, Notifier, TaskRepository
from taskflow.testing.contracts import (
    ACME,
    BUYER,
    BUYER_COLLEAGUE,
    SUPPLIER,
    SUPPLIER_COLLEAGUE,
    ClockContract,
    IdFactoryContract,
    NotifierContract,
    RepositoryContract,
    act,
    make_task,
)


class TestInMemoryRepository(RepositoryContract):
    def make_repository(self) -> TaskRepository:
        return InMemoryRepository(registry=self.registry)


class TestRecordingNotifier(NotifierContract):
    def make_notifier(self) -> Notifier:
        return RecordingNotifier()


class TestFixedClock(ClockContract):
    def make_clock(self) -> Clock:
        return FixedClock()


class TestSequentialIds(IdFactoryContract):
    def make_ids(self) -> IdFactory:
        return SequentialIds()


@pytest.fixture
def fast_thread_switching():
    # Switch threads as often as possible, so load-apply-save cycles really interleave.
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def _run_together(count: int, work) -> None:
    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        start.wait()
        try:
            work(index)
        except BaseException as exc:  # re-raised below, in the test's own thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


# FixedClock


def test_fixed_clock_starts_at_the_given_time_and_stays_there():
    start = datetime(2027, 5, 1, 8, tzinfo=UTC)
    clock = FixedClock(start)
    assert clock.now() == start
    assert clock.now() == start


def test_fixed_clock_refuses_a_naive_start_time():
    with pytest.raises(InvalidPayload, match="timezone-aware"):
        FixedClock(datetime(2027, 5, 1, 8))


def test_fixed_clock_advance_moves_forward_and_returns_the_new_time():
    clock = FixedClock(datetime(2027, 5, 1, 8, tzinfo=UTC))
    assert clock.advance(timedelta(hours=2)) == datetime(2027, 5, 1, 10, tzinfo=UTC)
    assert clock.advance() == datetime(2027, 5, 1, 10, 1, tzinfo=UTC)
    assert clock.now() == datetime(2027, 5, 1, 10, 1, tzinfo=UTC)


def test_fixed_clock_advance_by_nothing_keeps_the_time():
    clock = FixedClock(datetime(2027, 5, 1, 8, tzinfo=UTC))
    assert clock.advance(timedelta(0)) == datetime(2027, 5, 1, 8, tzinfo=UTC)


def test_fixed_clock_refuses_to_advance_backwards_and_keeps_its_time():
    clock = FixedClock(datetime(2027, 5, 1, 8, tzinfo=UTC))
    with pytest.raises(InvalidPayload, match="only forward") as caught:
        clock.advance(timedelta(seconds=-1))
    assert caught.value.field == "delta"
    assert clock.now() == datetime(2027, 5, 1, 8, tzinfo=UTC)


def test_fixed_clock_set_moves_to_an_aware_time():
    clock = FixedClock(datetime(2027, 5, 1, 8, tzinfo=UTC))
    later = datetime(2027, 6, 1, 8, tzinfo=UTC)
    clock.set(later)
    assert clock.now() == later


def test_fixed_clock_refuses_to_be_set_to_a_naive_time_and_keeps_its_time():
    clock = FixedClock(datetime(2027, 5, 1, 8, tzinfo=UTC))
    with pytest.raises(InvalidPayload, match="timezone-aware") as caught:
        clock.set(datetime(2027, 6, 1, 8))
    assert caught.value.field == "when"
    assert clock.now() == datetime(2027, 5, 1, 8, tzinfo=UTC)


# RecordingNotifier


def _note(user, event: str) -> Notification:
    return Notification(user, TaskId("t-1"), "ACME-TASK-1", event, f"ACME-TASK-1: {event}")


def test_recording_notifier_keeps_notifications_in_order_and_by_user():
    notifier = RecordingNotifier()
    notes = [
        _note(SUPPLIER.ref, "opened"),
        _note(BUYER.ref, "document_uploaded"),
        _note(SUPPLIER.ref, "document_rejected"),
    ]
    for note in notes:
        notifier.notify(note)
    assert notifier.sent == notes
    assert notifier.for_user(SUPPLIER.ref) == [notes[0], notes[2]]
    assert notifier.for_user(BUYER.ref) == [notes[1]]
    assert notifier.for_user(BUYER_COLLEAGUE.ref) == []


def test_recording_notifier_clear_forgets_everything_and_records_again():
    notifier = RecordingNotifier()
    notifier.notify(_note(SUPPLIER.ref, "opened"))
    notifier.clear()
    assert notifier.sent == []
    assert notifier.for_user(SUPPLIER.ref) == []
    again = _note(SUPPLIER.ref, "commented")
    notifier.notify(again)
    assert notifier.for_user(SUPPLIER.ref) == [again]


# SequentialIds


def test_sequential_ids_count_up_from_one_with_the_prefix():
    ids = SequentialIds("job")
    assert [ids.new_task_id() for _ in range(3)] == ["job-1", "job-2", "job-3"]


def test_sequential_ids_taken_by_many_threads_at_once_are_all_distinct(fast_thread_switching):
    ids = SequentialIds()
    threads, per_thread = 8, 500
    taken: list[list[str]] = [[] for _ in range(threads)]

    def take(index: int) -> None:
        taken[index].extend(ids.new_task_id() for _ in range(per_thread))

    _run_together(threads, take)
    every = [task_id for batch in taken for task_id in batch]
    assert sorted(every) == sorted(f"task-{n}" for n in range(1, threads * per_thread + 1))


# InMemoryRepository under threads


def test_next_number_taken_by_many_threads_at_once_never_repeats(fast_thread_switching):
    repo = InMemoryRepository()
    threads, per_thread = 8, 250
    taken: list[list[int]] = [[] for _ in range(threads)]

    def take(index: int) -> None:
        taken[index].extend(repo.next_number(ACME) for _ in range(per_thread))

    _run_together(threads, take)
    every = sorted(n for batch in taken for n in batch)
    assert every == list(range(1, threads * per_thread + 1))


def test_concurrent_load_apply_save_with_retry_loses_no_update(fast_thread_switching):
    repo = InMemoryRepository()
    task = make_task("t-1", assignees=[SUPPLIER.ref])
    repo.add(task)
    actors = [BUYER, BUYER_COLLEAGUE, SUPPLIER, SUPPLIER_COLLEAGUE]
    threads, per_thread = 8, 25
    conflicts = [0] * threads

    def comment_repeatedly(index: int) -> None:
        actor = actors[index % len(actors)]
        for n in range(per_thread):
            while True:
                loaded = repo.get(task.id)
                text = f"comment {n} of thread {index}"
                changed = act(loaded, actor, COMMENT, AddComment(text))
                try:
                    repo.save(changed, loaded.version)
                except ConcurrencyConflict:
                    conflicts[index] += 1
                    continue
                break

    _run_together(threads, comment_repeatedly)
    final = repo.get(task.id)
    accepted = threads * per_thread
    assert final.version == 1 + accepted
    assert len(final.history) == 1 + accepted
    assert sorted(c.text for c in final.comments) == sorted(
        f"comment {n} of thread {i}" for i in range(threads) for n in range(per_thread)
    )


def test_fixed_clock_set_refuses_to_go_back():
    from datetime import UTC, datetime

    from taskflow import FixedClock, InvalidPayload

    clock = FixedClock(datetime(2026, 6, 1, tzinfo=UTC))
    with pytest.raises(InvalidPayload, match="moves only forward"):
        clock.set(datetime(2026, 5, 1, tzinfo=UTC))
    assert clock.now() == datetime(2026, 6, 1, tzinfo=UTC)
