"""Concurrent writers with retries lose no update: threads on every repository, processes on a
SQLite file and on PostgreSQL (each process with its own pool, as separate app servers would).

At the end every accepted action is in its task's history exactly once, at the version it
returned; versions have no gaps; task numbers are unique; every queued notification was
delivered and none is pending. Counts are small and every wait is bounded.
"""

import inspect
import multiprocessing
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

import taskflow as tf
from taskflow import Actor, ConcurrencyConflict
from taskflow.adapters.memory import InMemoryRepository
from taskflow.adapters.postgres import PostgresRepository
from taskflow.adapters.sqlite import SqliteRepository
from taskflow.errors import ActionNotAllowed
from taskflow.kinds import default_registry
from taskflow.kinds.document import DocumentRequest, Reject, UploadDocument
from taskflow.serialization import Serializer

REGISTRY = default_registry()
START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
BUYERS = (Actor("bea", "acme"), Actor("bob", "acme"))
SUPPLIERS = (Actor("sam", "supco"), Actor("sue", "supco"))
PDF_FILE = tf.FileRef("c.pdf", tf.PDF, 10, "sha256:1", "files/1")

# (task id, version the action made) -> (user, action, comment text or "")
Accepted = dict[tuple[str, int], tuple[str, str, str]]


def _counting(base: type) -> type:
    """A repository that sleeps a little after each load, so load-act-save cycles overlap,
    and counts the notifications it queued and the conflicts it refused."""

    class Counting(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.counts_lock = threading.Lock()
            self.queued = 0
            self.conflicts = 0

        def get(self, task_id):
            task = super().get(task_id)
            time.sleep(0.0005)
            return task

        def commit(self, changes):
            try:
                ids = super().commit(changes)
            except ConcurrencyConflict:
                with self.counts_lock:
                    self.conflicts += 1
                raise
            with self.counts_lock:
                self.queued += len(changes.messages)
            return ids

    return Counting


def _work(
    service: tf.TaskService, actor: Actor, tag: str, shared: list[str], rounds: int
) -> tuple[Accepted, list[str]]:
    """Comment on the shared tasks, sometimes upload or reject, sometimes open a new task."""
    accepted: Accepted = {}
    numbers: list[str] = []
    supplier = actor.company == "supco"
    for n in range(rounds):
        task_id = shared[n % len(shared)]
        text = f"{tag}-{n}"
        outcome = service.act_with_retry(
            actor, task_id, "comment", tf.AddComment(text), attempts=100
        )
        accepted[(task_id, outcome.task.version)] = (actor.user, "comment", text)
        if n % 3 == 2:
            action, payload = ("upload", UploadDocument(PDF_FILE, date(2030, 1, 1)))
            if not supplier:
                action, payload = ("reject", Reject(f"no, says {tag}"))
            try:
                outcome = service.act_with_retry(actor, task_id, action, payload, attempts=100)
            except ActionNotAllowed:
                pass  # the other side has not answered yet: not accepted, not in the history
            else:
                accepted[(task_id, outcome.task.version)] = (actor.user, action, "")
        if n % 4 == 3:
            recipient = "acme" if supplier else "supco"
            draft = tf.NewTask(f"New from {tag}", recipient, DocumentRequest("ISO"))
            numbers.append(service.open(actor, "document_request", draft).task.number)
    return accepted, numbers


def _check(tasks: list[tf.Task], accepted: Accepted, numbers: list[str]) -> None:
    assert len({t.number for t in tasks}) == len(tasks)
    assert {t.number for t in tasks} >= set(numbers)
    in_history = 0
    for task in tasks:
        assert task.version == len(task.history)  # one entry per version: no gap
        for version, entry in enumerate(task.history[1:], start=2):
            user, action, text = accepted[(task.id, version)]
            assert (entry.actor.user, entry.action) == (user, action)
            if action == "comment":
                assert entry.payload.text == text
            in_history += 1
    assert in_history == len(accepted)  # nothing accepted is missing, nothing is there twice


def _service(repository, notifier, clock: tf.Clock, ids: tf.IdFactory) -> tf.TaskService:
    return tf.TaskService(
        registry=REGISTRY, repository=repository, notifier=notifier, clock=clock, ids=ids
    )


def _open_shared(service: tf.TaskService, count: int) -> list[str]:
    draft = tf.NewTask("Shared", "supco", DocumentRequest("ISO"), assignees=[SUPPLIERS[0].ref])
    return [service.open(BUYERS[0], "document_request", draft).task.id for _ in range(count)]


@pytest.fixture
def fast_thread_switching():
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(before)


def _memory(tmp_path: Path):
    return _counting(InMemoryRepository)()


def _sqlite_file(tmp_path: Path):
    return _counting(SqliteRepository)(tmp_path / "threads.db", REGISTRY)


def _postgres(tmp_path: Path, request: pytest.FixtureRequest):
    request.getfixturevalue("pg_reset")()
    pool, schema = request.getfixturevalue("pg_pool"), request.getfixturevalue("pg_schema")
    return _counting(PostgresRepository)(pool, REGISTRY, schema=schema)


@pytest.mark.parametrize(
    "make", [_memory, _sqlite_file, _postgres], ids=["memory", "sqlite-file", "postgres"]
)
def test_threads_acting_on_the_same_tasks_with_retries_lose_no_update(
    make: Callable[..., Any], tmp_path: Path, fast_thread_switching, request
) -> None:
    repository = make(tmp_path, request) if make is _postgres else make(tmp_path)
    notifier = tf.RecordingNotifier()
    service = _service(repository, notifier, tf.FixedClock(START), tf.SequentialIds())
    shared = _open_shared(service, 2)
    workers = [*BUYERS, *SUPPLIERS]
    results: list[tuple[Accepted, list[str]]] = [({}, [])] * len(workers)
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(workers))

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = _work(service, workers[index], f"w{index}", shared, rounds=9)
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    if errors:
        raise errors[0]
    accepted = {key: value for result, _ in results for key, value in result.items()}
    numbers = [number for _, opened in results for number in opened]
    _check(repository.query(tf.TaskQuery()), accepted, numbers)
    assert repository.conflicts > 0  # the cycles did overlap: retries were needed
    assert len(notifier.sent) == repository.queued  # each delivered exactly once
    assert repository.pending() == []
    if isinstance(repository, SqliteRepository | PostgresRepository):
        repository.close()


# --- processes -------------------------------------------------------------------------------

# Run in each spawned process with `exec`, so the child needs no import path to this file.
_PROCESS_WORKER = """
import sys, threading, time
from datetime import UTC, date, datetime
sys.path[:0] = paths
import taskflow as tf
from taskflow import Actor
from taskflow.errors import ActionNotAllowed
from taskflow.kinds import default_registry
from taskflow.kinds.document import DocumentRequest, Reject, UploadDocument

if store[0] == "sqlite":
    from taskflow.adapters.sqlite import SqliteRepository as Base
    options = {}
else:  # PostgreSQL: a pool of its own in each process
    from taskflow.adapters.postgres import PostgresRepository as Base
    options = {"schema": store[2], "pool_size": 2}

Accepted = dict
PDF_FILE = tf.FileRef("c.pdf", tf.PDF, 10, "sha256:1", "files/1")
exec(work_source)

class WallClock:
    def now(self):
        return datetime.now(UTC)

class Slow(Base):
    queued = 0
    conflicts = 0
    def get(self, task_id):
        task = super().get(task_id)
        time.sleep(0.001)
        return task
    def commit(self, changes):
        try:
            ids = super().commit(changes)
        except tf.ConcurrencyConflict:
            self.conflicts += 1
            raise
        self.queued += len(changes.messages)
        return ids

try:
    registry = default_registry()
    repository = Slow(store[1], registry, **options)
    notifier = tf.RecordingNotifier()
    service = tf.TaskService(registry=registry, repository=repository, notifier=notifier,
                             clock=WallClock(), ids=tf.SequentialIds(f"p{index}"))
    barrier.wait(timeout=60)
    accepted, numbers = _work(service, actor, f"p{index}", shared, rounds)
    repository.close()
    sent = len(notifier.sent)
    results.put((index, accepted, numbers, repository.queued, sent, repository.conflicts, None))
except BaseException as exc:
    results.put((index, {}, [], 0, 0, 0, repr(exc)))
"""


def _store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, ...]:
    if kind == "sqlite":
        return ("sqlite", str(tmp_path / "processes.db"))
    request.getfixturevalue("pg_reset")()
    return ("postgres", request.getfixturevalue("pg_dsn"), request.getfixturevalue("pg_schema"))


def _open_store(store: tuple[str, ...], serializer: Serializer) -> Any:
    if store[0] == "sqlite":
        return SqliteRepository(store[1], REGISTRY, serializer=serializer)
    return PostgresRepository(store[1], REGISTRY, schema=store[2], serializer=serializer)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_processes_acting_on_one_store_with_retries_lose_no_update(
    kind: str, tmp_path: Path, request
) -> None:
    store = _store(kind, tmp_path, request)
    serializer = Serializer(REGISTRY)
    with _open_store(store, serializer) as repository:
        setup = _service(
            repository, tf.RecordingNotifier(), tf.FixedClock(START), tf.SequentialIds()
        )
        shared = _open_shared(setup, 2)
        setup.deliver()
    context = multiprocessing.get_context("spawn")
    actors = (BUYERS[0], SUPPLIERS[0], SUPPLIERS[1])
    barrier = context.Barrier(len(actors))
    results = context.Queue()
    processes = [
        context.Process(
            target=exec,
            args=(
                _PROCESS_WORKER,
                {
                    "__name__": "taskflow_test_worker",
                    "paths": [p for p in sys.path if p],
                    "store": store,
                    "index": index,
                    "actor": actor,
                    "shared": shared,
                    "rounds": 6,
                    "barrier": barrier,
                    "results": results,
                    "work_source": inspect.getsource(_work),
                },
            ),
        )
        for index, actor in enumerate(actors)
    ]
    for process in processes:
        process.start()
    try:
        reports = [results.get(timeout=120) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    problems = [error for *_, error in reports if error is not None]
    assert not problems, problems
    accepted = {key: value for _, done, *_ in reports for key, value in done.items()}
    numbers = [number for _, _, opened, *_ in reports for number in opened]
    with _open_store(store, serializer) as repository:
        _check(repository.query(tf.TaskQuery()), accepted, numbers)
        assert repository.pending() == []
    queued = sum(report[3] for report in reports)
    sent = sum(report[4] for report in reports)
    # Processes deliver each other's notifications too: at least once each, never lost.
    assert sent >= queued
    assert sum(report[5] for report in reports) > 0  # the processes did get in each other's way
