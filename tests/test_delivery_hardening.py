"""Outbox and notifier hardening (issue 9): dead letters, escaping exceptions, notification ids."""

import asyncio
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import taskflow as tf
from taskflow import Actor, NewTask
from taskflow.adapters.memory import InMemoryRepository
from taskflow.adapters.sqlite import SqliteRepository
from taskflow.domain.outbox import NOTIFICATION_TOPIC, OutboxMessage
from taskflow.kinds import default_registry
from taskflow.kinds.document import DocumentRequest
from taskflow.serialization import Serializer

REGISTRY = default_registry()
SERIALIZER = Serializer(REGISTRY)
START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
BEA = Actor("bea", "acme")
SAM = Actor("sam", "supco")


class Notifier:
    """Records what it delivers; raises `error` for the calls it is told to."""

    def __init__(self) -> None:
        self.sent: list[tf.Notification] = []
        self.error: BaseException | None = None
        self.refuse: tf.UserRef | None = None

    def notify(self, notification: tf.Notification) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        if notification.recipient == self.refuse:
            msg = "mailbox does not exist"
            raise ConnectionError(msg)
        self.sent.append(notification)


@pytest.fixture(params=["memory", "sqlite"])
def make_service(request, tmp_path: Path):
    opened: list[SqliteRepository] = []

    def make(**options) -> tf.TaskService:
        if request.param == "memory":
            repository = InMemoryRepository()
        else:
            repository = SqliteRepository(
                tmp_path / f"t{len(opened)}.db", REGISTRY, serializer=SERIALIZER
            )
            opened.append(repository)
        return tf.TaskService(
            registry=REGISTRY,
            repository=repository,
            notifier=options.pop("notifier", Notifier()),
            clock=options.pop("clock", tf.FixedClock(START)),
            ids=tf.SequentialIds(),
            **options,
        )

    yield make
    for repository in opened:
        repository.close()


def _open(service: tf.TaskService) -> tf.Task:
    draft = NewTask("Cert", "supco", DocumentRequest("ISO"), assignees=[SAM.ref])
    return service.open(BEA, "document_request", draft).task


def _poison(service: tf.TaskService) -> int:
    """Queue one notification message that cannot be read; return its outbox id."""
    repository = service.repository
    if isinstance(repository, SqliteRepository):
        (poisoned,) = repository.commit(
            tf.Changeset(messages=[OutboxMessage(NOTIFICATION_TOPIC, "poison", {"x": 1})])
        )
        with closing(sqlite3.connect(repository.path, isolation_level=None)) as raw:
            raw.execute("UPDATE outbox SET body = '{not json' WHERE id = ?", (poisoned,))
        return poisoned
    # In memory a message is always JSON: one no notification can be read from.
    (poisoned,) = repository.commit(
        tf.Changeset(messages=[OutboxMessage(NOTIFICATION_TOPIC, "poison", {"x": 1})])
    )
    return poisoned


# --- dead letters -----------------------------------------------------------------------------


def test_a_poisoned_message_is_moved_aside_and_every_later_one_is_delivered(make_service) -> None:
    notifier = Notifier()
    service = make_service(notifier=notifier, deliver_after_commit=False)
    task = _open(service)
    poisoned = _poison(service)
    for i in range(21):
        service.comment(BEA, task.id, f"note {i}")
    report = service.deliver()
    assert report.delivered == 22  # 'opened' and the 21 comments
    # (SQLite moves a row it cannot read aside while claiming; the service one it cannot use.)
    assert report.buried in ((), (poisoned,))
    assert [n.message.split(": ")[-1] for n in notifier.sent].count("commented by bea@acme") == 21
    (dead,) = service.dead_letters()
    assert dead.id == poisoned
    assert "cannot be read" in dead.reason
    assert service.repository.pending() == []


def test_the_host_lists_retries_and_drops_dead_letters(make_service) -> None:
    notifier = Notifier()
    notifier.refuse = SAM.ref
    clock = tf.FixedClock(START)
    retry = tf.RetryPolicy(first=timedelta(seconds=1), attempts=2)
    service = make_service(notifier=notifier, clock=clock, retry=retry)
    first, second = _open(service), _open(service)
    clock.advance(timedelta(hours=1))
    service.deliver()
    dead = service.dead_letters()
    assert [d.task_id for d in dead] == [first.id, second.id]
    assert all("failed 2 times" in d.reason and "mailbox" in d.reason for d in dead)
    assert service.dead_letters(limit=1) == dead[:1]
    notifier.refuse = None
    assert service.retry_dead_letters([dead[0].id]) == 1
    assert service.deliver().delivered == 1
    assert [n.task_id for n in notifier.sent] == [first.id]
    assert service.drop_dead_letters([dead[1].id, 999]) == 1
    assert service.dead_letters() == []
    assert service.repository.pending() == []
    with pytest.raises(tf.InvalidPayload, match="ids must be a collection"):
        service.drop_dead_letters(7)  # type: ignore[arg-type]
    with pytest.raises(tf.InvalidPayload, match="whole numbers"):
        service.retry_dead_letters(["1"])


# --- nothing escapes `act` after its commit ---------------------------------------------------


def test_a_cancelled_notifier_never_undoes_nor_repeats_the_committed_comment(
    make_service,
) -> None:
    notifier = Notifier()
    clock = tf.FixedClock(START)
    service = make_service(notifier=notifier, clock=clock)
    task = _open(service)
    notifier.error = asyncio.CancelledError()
    outcome = service.comment(BEA, task.id, "Please hurry")
    assert outcome.task.version == 2
    stored = service.repository.get(task.id)
    assert [c.text for c in stored.comments] == ["Please hurry"]
    assert notifier.sent[-1].event == "opened"
    # The notification waits for its lease to end, then goes out.
    clock.advance(service.lease)
    assert service.deliver().delivered == 1
    assert notifier.sent[-1].event == "commented"
    assert [c.text for c in service.repository.get(task.id).comments] == ["Please hurry"]


def test_a_handler_that_raises_a_base_exception_never_fails_the_committed_action(
    make_service,
) -> None:
    service = make_service()

    def cancelled(event, uow):
        raise asyncio.CancelledError

    service.subscribe(cancelled, name="cancelled", events="commented")
    task = _open(service)
    outcome = service.comment(BEA, task.id, "Please hurry")
    assert outcome.task.version == 2
    assert service.repository.get(task.id).version == 2


@pytest.mark.parametrize("error", [KeyboardInterrupt(), SystemExit(3)], ids=["ctrl-c", "exit"])
def test_a_stopping_process_stops_but_is_told_the_action_was_committed(make_service, error) -> None:
    notifier = Notifier()
    service = make_service(notifier=notifier)
    task = _open(service)
    notifier.error = error
    with pytest.raises(type(error)) as caught:
        service.comment(BEA, task.id, "Please hurry")
    assert any("was committed" in note for note in caught.value.__notes__)
    assert any("ACME-TASK-1 (version 2)" in note for note in caught.value.__notes__)
    assert service.repository.get(task.id).version == 2


# --- stable notification ids ------------------------------------------------------------------


class LateFailingNotifier(Notifier):
    """Sends, then fails to say so the first time: the message is delivered again later."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_after = 1

    def notify(self, notification: tf.Notification) -> None:
        self.sent.append(notification)
        if notification.event == "commented" and self.fail_after:
            self.fail_after -= 1
            msg = "timeout waiting for the mail server's answer"
            raise TimeoutError(msg)


def test_a_notification_delivered_twice_has_the_same_stable_id(make_service) -> None:
    notifier = LateFailingNotifier()
    clock = tf.FixedClock(START)
    service = make_service(notifier=notifier, clock=clock)
    task = _open(service)
    service.comment(BEA, task.id, "one")
    service.comment(BEA, task.id, "two")
    clock.advance(timedelta(hours=1))
    assert service.deliver().delivered == 1  # the first comment's, again
    events = [(n.event, n.id) for n in notifier.sent]
    first = f"{task.id}@2/commented/{SAM.ref}"
    second = f"{task.id}@3/commented/{SAM.ref}"
    assert events == [
        ("opened", f"{task.id}@1/opened/{SAM.ref}"),
        ("commented", first),
        ("commented", second),
        ("commented", first),
    ]
    # A host drops the duplicate by its id.
    assert len({n.id for n in notifier.sent}) == 3
