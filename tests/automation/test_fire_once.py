"""A notifying rule fires once per trigger across processes: a fired-marker inside its unit of work."""

import threading
from datetime import UTC, datetime, timedelta

import attrs
import pytest

import taskflow as tf
from taskflow.adapters.sqlite import SqliteRepository
from taskflow.application.service import retry_on_conflict
from taskflow.application.unit_of_work import UnitOfWork
from taskflow.automation import Automation, Notify, On, Rule, Trigger
from taskflow.domain.outbox import EVENT_TOPIC
from taskflow.domain.task import Cause

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ANN = tf.Actor("ann", "acme")
LEA = tf.UserRef("acme", "lea")


@attrs.frozen
class Chore:
    """Data of a host's own kind."""

    area: str = "office"


CHORE = tf.TaskKind(
    "chore",
    Chore,
    tf.Workflow(
        name="chore",
        initial="todo",
        states=(tf.State("todo", waiting_on=tf.Side.RECIPIENT), tf.State("done", final=True)),
        transitions=(tf.Transition("finish", "todo", "done", tf.Side.RECIPIENT),),
    ),
)
REGISTRY = tf.Registry([CHORE])
RULES = [Rule("tell", Trigger(On.OPENED), (Notify("$number opened", to={"watchers"}),))]


class CrashAfterHandling(SqliteRepository):
    """A process that dies after its handler's commit, before the outbox hears it was done."""

    def complete(self, entries):
        if any(e.topic == EVENT_TOPIC for e in entries):
            raise RuntimeError("the process died before completing its claim")
        super().complete(entries)


def _service(repository, clock):
    service = tf.TaskService(
        registry=REGISTRY,
        repository=repository,
        notifier=tf.RecordingNotifier(),
        clock=clock,
        ids=tf.SequentialIds(),
        deliver_after_commit=False,
    )
    return service, Automation(service, RULES, company="acme")


def _rule_notes(*services):
    for service in services:
        service.deliver()
    return [n for s in services for n in s.notifier.sent if n.event == "rule:tell"]


def _open(service):
    draft = tf.NewTask("Plants", "acme", Chore(), watchers=[LEA])
    return service.open(ANN, "chore", draft)


def _race(services, event):
    """Each service's automation evaluates `event` in its own thread; all commit together."""
    start = threading.Barrier(len(services))
    depth = 0 if event.cause is None else event.cause.depth
    cause = Cause(event.cause.correlation_id, event.id, depth + 1)
    errors = []

    def work(service, automation):
        first = [True]

        def run():
            with UnitOfWork(service, cause=cause) as uow:
                automation.handle(event, uow)
                if first[0]:
                    first[0] = False
                    start.wait(timeout=30)  # everyone has evaluated before anyone commits

        try:
            retry_on_conflict(run, attempts=3)
        except Exception as exc:  # pragma: no cover - shown by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=pair) for pair in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_two_processes_on_one_sqlite_file_racing_on_one_trigger_notify_once(tmp_path):
    clock = tf.FixedClock(START)
    db = tmp_path / "desk.db"
    with SqliteRepository(db, REGISTRY) as one, SqliteRepository(db, REGISTRY) as two:
        first, second = _service(one, clock), _service(two, clock)
        event = _open(first[0]).events[0]
        _race([first, second], event)
        notes = _rule_notes(first[0], second[0])  # the queued handler message runs a third time
        assert [(n.recipient, n.message) for n in notes] == [(LEA, "ACME-TASK-1 opened")]


def test_a_redelivered_trigger_after_a_crash_notifies_once_from_the_second_process(tmp_path):
    clock = tf.FixedClock(START)
    db = tmp_path / "desk.db"
    with CrashAfterHandling(db, REGISTRY) as dying, SqliteRepository(db, REGISTRY) as alive:
        crashed, _ = _service(dying, clock)
        survivor, _ = _service(alive, clock)
        _open(crashed)
        with pytest.raises(RuntimeError, match="died"):
            crashed.deliver()  # the handler committed the rule's notification, then the crash
        clock.advance(timedelta(hours=1))  # the lease ran out: the survivor claims it again
        assert survivor.deliver().delivered >= 1
        survivor.deliver()  # what the handler queued
        told = [n for s in (crashed, survivor) for n in s.notifier.sent if n.event == "rule:tell"]
        assert [n.recipient for n in told] == [LEA]
        assert not [m for m in alive.pending() if m.message.payload.get("event") == "rule:tell"]


@pytest.mark.parametrize("threads", [2, 4])
def test_threads_on_postgresql_racing_on_one_trigger_notify_once(
    pg_pool, pg_schema, pg_reset, threads
):
    from taskflow.adapters.postgres import PostgresRepository

    pg_reset()
    clock = tf.FixedClock(START)
    repos = [PostgresRepository(pg_pool, REGISTRY, schema=pg_schema) for _ in range(threads)]
    services = [_service(repo, clock) for repo in repos]
    event = _open(services[0][0]).events[0]
    _race(services, event)
    notes = _rule_notes(*(s for s, _ in services))
    assert [(n.recipient, n.message) for n in notes] == [(LEA, "ACME-TASK-1 opened")]
    for repo in repos:
        repo.close()
