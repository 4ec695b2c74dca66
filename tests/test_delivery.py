"""The service's units of work, outbox delivery, handlers and retry, with either repository."""

import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import taskflow as tf
from taskflow import Actor, ConcurrencyConflict, InvalidPayload, NewTask
from taskflow.adapters.memory import InMemoryRepository
from taskflow.adapters.sqlite import SqliteRepository
from taskflow.application.service import retry_on_conflict
from taskflow.errors import ActionNotAllowed, InvalidWorkflow, TaskNotFound
from taskflow.kinds import default_registry
from taskflow.kinds.document import DOCUMENT_REQUEST, Decline, DocumentRequest, UploadDocument
from taskflow.ports import TaskRepository
from taskflow.serialization import Serializer

REGISTRY = default_registry()
SERIALIZER = Serializer(REGISTRY)
START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SAM = Actor("sam", "supco")
SUE = Actor("sue", "supco")
BEA = Actor("bea", "acme")


class FlakyNotifier:
    """Records what it delivers; raises for the calls whose numbers are in `failing`."""

    def __init__(self, failing=(), refuse=None) -> None:
        self.failing = set(failing)
        self.refuse = refuse  # a user whose notifications always fail
        self.calls = 0
        self.sent: list[tf.Notification] = []

    def notify(self, notification: tf.Notification) -> None:
        self.calls += 1
        if self.calls in self.failing or notification.recipient == self.refuse:
            msg = "mail server down"
            raise ConnectionError(msg)
        self.sent.append(notification)


@pytest.fixture(params=["memory", "sqlite"])
def make_service(request, tmp_path: Path):
    opened: list[SqliteRepository] = []

    def make(notifier=None, repository: TaskRepository | None = None, **options) -> tf.TaskService:
        if repository is None:
            if request.param == "memory":
                repository = InMemoryRepository()
            else:
                repository = SqliteRepository(
                    tmp_path / f"svc-{len(opened)}.db", REGISTRY, serializer=SERIALIZER
                )
                opened.append(repository)
        return tf.TaskService(
            registry=REGISTRY,
            repository=repository,
            notifier=notifier if notifier is not None else FlakyNotifier(),
            clock=options.pop("clock", tf.FixedClock(START)),
            ids=options.pop("ids", tf.SequentialIds()),
            **options,
        )

    yield make
    for repository in opened:
        repository.close()


def _open_task(service: tf.TaskService, subject: str = "Cert") -> tf.Task:
    draft = NewTask(subject, "supco", DocumentRequest("ISO"), assignees=[SAM.ref])
    return service.open(BEA, "document_request", draft).task


def _pdf() -> UploadDocument:
    return UploadDocument(tf.FileRef("c.pdf", tf.PDF, 10, "sha256:1", "files/1"))


# --- units of work ----------------------------------------------------------------------------


def test_a_unit_of_work_commits_every_task_it_opened_and_changed_at_once(make_service) -> None:
    service = make_service()
    existing = _open_task(service)
    with service.unit_of_work() as uow:
        first = uow.open(BEA, "document_request", NewTask("A", "supco", DocumentRequest("A")))
        uow.act(BEA, first.task.id, "comment", tf.AddComment("one"))
        uow.act(SAM, existing.id, "comment", tf.AddComment("two"))
        # Inside the unit of work, its own changes are what it reads.
        assert uow.get(BEA, first.task.id).version == 2
        assert service.repository.get(existing.id).version == 1
    assert service.get(BEA, first.task.id).version == 2
    assert service.get(BEA, existing.id).version == 2
    correlation = {
        entry.cause.correlation_id
        for task_id in (first.task.id, existing.id)
        for entry in service.get(BEA, task_id).history[-1:]
    }
    assert len(correlation) == 1  # one request, one correlation id


def test_a_unit_of_work_that_raises_writes_nothing(make_service) -> None:
    service = make_service()
    existing = _open_task(service)
    opened: list[tf.Outcome] = []

    def work() -> None:
        with service.unit_of_work() as uow:
            opened.append(
                uow.open(BEA, "document_request", NewTask("A", "supco", DocumentRequest("A")))
            )
            uow.act(SAM, existing.id, "comment", tf.AddComment("lost"))
            uow.act(BEA, existing.id, "accept")  # not allowed: nothing of this unit is written

    with pytest.raises(ActionNotAllowed):
        work()
    with pytest.raises(TaskNotFound):
        service.get(BEA, opened[0].task.id)
    assert service.get(BEA, existing.id).version == 1
    assert service.repository.pending() == []


def test_a_stale_task_in_a_unit_of_work_refuses_the_whole_commit(make_service) -> None:
    service = make_service()
    one, two = _open_task(service, "one"), _open_task(service, "two")
    uow = service.unit_of_work()
    uow.act(SAM, one.id, "comment", tf.AddComment("mine"))
    uow.act(SAM, two.id, "comment", tf.AddComment("mine too"))
    service.comment(SUE, two.id, "first")  # someone else saves task two meanwhile
    with pytest.raises(ConcurrencyConflict):
        uow.commit()
    assert service.get(SAM, one.id).version == 1
    assert [c.text for c in service.get(SAM, two.id).comments] == ["first"]
    with pytest.raises(InvalidPayload, match="unit of work"):
        uow.act(SAM, one.id, "comment", tf.AddComment("again"))


def test_a_stranger_cannot_read_through_a_unit_of_work(make_service) -> None:
    service = make_service()
    task = _open_task(service)
    with pytest.raises(TaskNotFound), service.unit_of_work() as uow:
        uow.get(Actor("eve", "initech"), task.id)


# --- delivery: after the commit, never failing or undoing the action ---------------------------


def test_failing_notifier_keeps_the_task_saved_and_retries_later(make_service, caplog) -> None:
    notifier = FlakyNotifier(failing=range(1, 100))
    clock = tf.FixedClock(START)
    service = make_service(notifier, clock=clock)
    with caplog.at_level(logging.WARNING, logger="taskflow.service"):
        task = _open_task(service)
        outcome = service.comment(SAM, task.id, "on it")
    assert outcome.task.version == 2
    assert service.get(BEA, task.id).version == 2
    pending = service.repository.pending()
    assert [(e.message.payload["event"], e.attempts) for e in pending] == [
        ("opened", 1),
        ("commented", 1),
    ]
    assert all("mail server down" in (e.last_error or "") for e in pending)
    assert "mail server down" in caplog.text
    notifier.failing.clear()
    assert service.deliver() == tf.DeliveryReport()  # not yet: each waits its back-off
    clock.advance(service.retry.delay(1))
    report = service.deliver()
    assert report == tf.DeliveryReport(delivered=2)
    assert report.ok
    assert [n.event for n in notifier.sent] == ["opened", "commented"]
    assert service.repository.pending() == []


def test_a_message_that_keeps_failing_goes_to_the_dead_letters_and_blocks_none(
    make_service, caplog
) -> None:
    notifier = FlakyNotifier(refuse=BEA.ref)
    clock = tf.FixedClock(START)
    retry = tf.RetryPolicy(first=timedelta(seconds=1), attempts=3)
    service = make_service(notifier, clock=clock, retry=retry)
    task = _open_task(service)
    service.act(SAM, task.id, "decline", Decline("none here"))  # tells bea: fails
    service.comment(BEA, task.id, "please look again")  # tells sam: delivered
    assert [n.event for n in notifier.sent] == ["opened", "commented"]
    with caplog.at_level(logging.ERROR, logger="taskflow.service"):
        for _ in range(3):
            clock.advance(timedelta(hours=1))
            service.deliver()
    (dead,) = service.repository.dead_letters()
    assert "failed 3 times" in dead.reason
    assert "mail server down" in dead.reason
    assert dead.topic == tf.NOTIFICATION_TOPIC
    assert service.repository.pending() == []
    assert "dead letters" in caplog.text


def test_a_long_backlog_is_delivered_in_steps_up_to_the_limit(make_service) -> None:
    notifier = FlakyNotifier()
    service = make_service(notifier, deliver_after_commit=False)
    task = _open_task(service)
    for n in range(124):
        service.comment(SAM, task.id, f"note {n}")
    assert notifier.sent == []  # nothing is delivered inside the actions
    assert service.deliver(limit=100) == tf.DeliveryReport(delivered=100)
    assert service.deliver() == tf.DeliveryReport(delivered=25)
    assert [n.message.split(": ")[-1] for n in notifier.sent[:2]] == [
        "opened by bea@acme",
        "commented by sam@supco",
    ]
    assert service.repository.pending() == []


def test_deliver_refuses_a_negative_limit(make_service) -> None:
    service = make_service()
    with pytest.raises(InvalidPayload, match="limit") as caught:
        service.deliver(limit=-1)
    assert caught.value.field == "limit"


class BlockingNotifier:
    """Blocks every notification to `slow` until released; records the others at once."""

    def __init__(self, slow: tf.UserRef) -> None:
        self.slow = slow
        self.entered = threading.Event()
        self.release = threading.Event()
        self.sent: list[tf.Notification] = []

    def notify(self, notification: tf.Notification) -> None:
        if notification.recipient == self.slow:
            self.entered.set()
            assert self.release.wait(30)
        self.sent.append(notification)


def test_a_slow_notifier_delays_no_other_caller(make_service) -> None:
    """While one caller's notification hangs, another caller's action on another task completes."""
    notifier = BlockingNotifier(slow=BEA.ref)
    service = make_service(notifier)
    first, second = _open_task(service, "one"), _open_task(service, "two")
    stuck = threading.Thread(target=service.act, args=(SAM, first.id, "decline", Decline("n")))
    stuck.start()
    try:
        assert notifier.entered.wait(30)  # the decline is committed; its notice hangs
        assert service.get(BEA, first.id).state == "declined"
        service.comment(BEA, second.id, "not waiting for the other one")
        assert service.get(SAM, second.id).version == 2
        assert notifier.sent[-1].event == "commented"
    finally:
        notifier.release.set()
        stuck.join(30)
    assert not stuck.is_alive()


def test_two_workers_share_one_outbox_and_send_each_message_once(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    notifiers = [FlakyNotifier(), FlakyNotifier()]
    services = [
        tf.TaskService(
            registry=REGISTRY,
            repository=SqliteRepository(path, REGISTRY, serializer=SERIALIZER),
            notifier=notifier,
            clock=tf.FixedClock(START),
            ids=tf.SequentialIds(f"w{n}"),
            deliver_after_commit=False,
            worker=f"worker-{n}",
        )
        for n, notifier in enumerate(notifiers)
    ]
    task = _open_task(services[0])
    for n in range(40):
        services[n % 2].comment(SAM if n % 2 else BEA, task.id, f"n{n}")
    threads = [threading.Thread(target=s.deliver) for s in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # 41 notifications were queued (one per action); together the workers sent each once.
    assert sum(len(notifier.sent) for notifier in notifiers) == 41
    assert services[0].repository.pending() == []
    for service in services:
        service.repository.close()


# --- handlers -----------------------------------------------------------------------------------


def test_a_handler_runs_after_the_commit_and_its_follow_up_is_a_new_unit_of_work(
    make_service,
) -> None:
    service = make_service()
    seen: list[tf.DomainEvent] = []
    robot = Actor.system("robot", "acme")

    def thank_for_uploads(event: tf.DomainEvent, uow: tf.UnitOfWork) -> None:
        seen.append(event)
        stored = service.repository.get(event.task_id)
        assert stored.version == event.version  # the triggering commit is already stored
        uow.act(robot, event.task_id, "comment", tf.AddComment("Thanks, we will review it"))

    service.subscribe(thank_for_uploads, kinds="document_request", events="document_uploaded")
    task = _open_task(service)
    service.act(SAM, task.id, "upload", _pdf())
    stored = service.get(BEA, task.id)
    assert [e.name for e in seen] == ["document_uploaded"]
    upload_entry, thanks = stored.history[-2:]
    assert thanks.actor == robot
    assert thanks.action == "comment"
    assert thanks.cause.correlation_id == upload_entry.cause.correlation_id
    assert (upload_entry.cause.depth, thanks.cause.depth) == (0, 1)
    assert thanks.cause.event_id == seen[0].id
    assert service.repository.pending() == []


def test_a_failing_handler_never_undoes_the_commit_and_is_redelivered(make_service, caplog) -> None:
    clock = tf.FixedClock(START)
    service = make_service(clock=clock)
    calls: list[str] = []

    def flaky(event: tf.DomainEvent, uow: tf.UnitOfWork) -> None:
        calls.append(event.id)
        if len(calls) == 1:
            msg = "handler bug"
            raise RuntimeError(msg)

    service.subscribe(flaky, name="flaky", events="opened")
    with caplog.at_level(logging.WARNING, logger="taskflow.service"):
        task = _open_task(service)
    assert service.get(BEA, task.id).version == 1
    assert "handler 'flaky'" in caplog.text
    assert "handler bug" in caplog.text
    (waiting,) = [e for e in service.repository.pending() if e.topic == tf.EVENT_TOPIC]
    assert waiting.message.payload["handler"] == "flaky"
    clock.advance(service.retry.delay(1))
    assert service.deliver().delivered == 1
    assert calls == [f"{task.id}@1/opened"] * 2  # at least once: the same event again


def test_a_handler_loop_stops_at_the_depth_limit_with_a_dead_letter(make_service, caplog) -> None:
    service = make_service(depth_limit=3)
    robot = Actor.system("echo", "acme")

    def echo(event: tf.DomainEvent, uow: tf.UnitOfWork) -> None:
        uow.act(robot, event.task_id, "comment", tf.AddComment(f"echo {event.version}"))

    service.subscribe(echo, name="echo", events="commented")
    task = _open_task(service)
    with caplog.at_level(logging.WARNING, logger="taskflow.service"):
        service.comment(BEA, task.id, "start")
    stored = service.get(BEA, task.id)
    depths = [e.cause.depth for e in stored.history[1:]]
    assert depths == [0, 1, 2, 3]
    (dead,) = service.repository.dead_letters()
    assert "depth limit of 3" in dead.reason
    assert "echo" in dead.reason
    assert "depth limit" in caplog.text


def test_an_event_is_redelivered_by_a_worker_of_another_service_on_the_same_store(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.db"
    seen: list[tuple[str, str]] = []

    def record(event: tf.DomainEvent, uow: tf.UnitOfWork) -> None:
        seen.append((event.name, event.payload.file.name))

    def make(deliver: bool) -> tf.TaskService:
        service = tf.TaskService(
            registry=REGISTRY,
            repository=SqliteRepository(path, REGISTRY, serializer=SERIALIZER),
            notifier=FlakyNotifier(),
            clock=tf.FixedClock(START),
            ids=tf.SequentialIds("web" if deliver else "wrk"),
            deliver_after_commit=deliver,
        )
        service.subscribe(record, name="record", events="document_uploaded")
        return service

    web, worker = make(False), make(True)
    task = _open_task(web)
    web.act(SAM, task.id, "upload", _pdf())
    assert seen == []
    assert worker.deliver().delivered == 3  # two notifications and the event, read back
    assert seen == [("document_uploaded", "c.pdf")]
    web.repository.close()
    worker.repository.close()


def test_handler_names_are_unique_and_senders_cannot_take_taskflow_topics(make_service) -> None:
    service = make_service()

    def one(event, uow):
        return None

    def two(event, uow):
        return None

    service.subscribe(one, name="h")
    service.subscribe(one, name="h")  # the same registration twice is kept once
    with pytest.raises(InvalidWorkflow, match="already registered"):
        service.subscribe(two, name="h")
    with pytest.raises(InvalidWorkflow, match="taskflow's own"):
        service.add_sender(tf.NOTIFICATION_TOPIC, lambda entry: None)
    assert [s.name for s in service.subscriptions] == ["h"]


def test_a_host_topic_is_delivered_by_its_sender_and_waits_where_none_is_known(
    make_service,
) -> None:
    delivered: list[dict] = []
    service = make_service(
        senders={"tracker": lambda entry: delivered.append(entry.message.payload)}
    )
    task = _open_task(service)
    with service.unit_of_work() as uow:
        uow.act(BEA, task.id, "comment", tf.AddComment("filed"))
        uow.enqueue(tf.OutboxMessage("tracker", f"{task.id}/item", {"title": "Cert"}))
        uow.enqueue(tf.OutboxMessage("webhook", f"{task.id}/hook", {"url": "x"}))
    assert delivered == [{"title": "Cert"}]
    assert [e.topic for e in service.repository.pending()] == ["webhook"]


# --- retry on conflict ------------------------------------------------------------------------


class RacingRepository:
    """Wraps a repository; before each of the first `races` commits, a colleague comments first."""

    def __init__(self, inner: TaskRepository, races: int) -> None:
        self.inner = inner
        self.races = races
        self.commits = 0

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def commit(self, changes: tf.Changeset) -> tuple[int, ...]:
        if changes.saved:
            self.commits += 1
            if self.races:
                self.races -= 1
                stored = self.inner.get(changes.saved[0][0].id)
                other = tf.apply(
                    REGISTRY[stored.kind].workflow,
                    stored,
                    "comment",
                    Actor("sue", "supco"),
                    START,
                    tf.AddComment(f"first, {self.races}"),
                ).task
                self.inner.save(other, stored.version)
        return self.inner.commit(changes)


@pytest.fixture(params=["memory", "sqlite"])
def inner_repository(request, tmp_path: Path):
    if request.param == "memory":
        yield InMemoryRepository()
    else:
        with SqliteRepository(tmp_path / "race.db", REGISTRY, serializer=SERIALIZER) as repository:
            yield repository


def test_act_with_retry_reloads_and_applies_again_after_conflicts(inner_repository) -> None:
    racing = RacingRepository(inner_repository, races=2)
    service = tf.TaskService(
        registry=REGISTRY,
        repository=racing,
        notifier=FlakyNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )
    task = _open_task(service)
    outcome = service.act_with_retry(SAM, task.id, "upload", _pdf(), attempts=3)
    assert outcome.task.version == 4
    assert [e.action for e in outcome.task.history] == ["open", "comment", "comment", "upload"]
    assert racing.commits == 3


def test_act_with_retry_raises_the_last_conflict_when_attempts_run_out(inner_repository) -> None:
    racing = RacingRepository(inner_repository, races=5)
    service = tf.TaskService(
        registry=REGISTRY,
        repository=racing,
        notifier=FlakyNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )
    task = _open_task(service)
    with pytest.raises(ConcurrencyConflict) as caught:
        service.act_with_retry(SAM, task.id, "upload", _pdf(), attempts=2)
    assert (caught.value.expected, caught.value.actual) == (2, 3)
    assert racing.commits == 2
    assert [e.action for e in service.get(SAM, task.id).history] == ["open", "comment", "comment"]


def test_act_with_retry_does_not_retry_a_refused_action(make_service) -> None:
    service = make_service()
    task = _open_task(service)
    calls = 0

    def accept_too_early() -> tf.Outcome:
        nonlocal calls
        calls += 1
        return service.act(BEA, task.id, "accept")

    with pytest.raises(ActionNotAllowed):
        retry_on_conflict(accept_too_early, attempts=5)
    assert calls == 1


def test_retry_on_conflict_calls_again_until_success_and_needs_one_attempt() -> None:
    outcomes = iter([ConcurrencyConflict("T-1", 1, 2), ConcurrencyConflict("T-1", 2, 3), "done"])

    def flaky() -> str:
        result = next(outcomes)
        if isinstance(result, Exception):
            raise result
        return result

    assert retry_on_conflict(flaky, attempts=3) == "done"
    for bad in (0, -1, True, 1.5):
        with pytest.raises(InvalidPayload, match="attempts") as caught:
            retry_on_conflict(lambda: "x", attempts=bad)
        assert caught.value.field == "attempts"


def test_retry_policy_doubles_its_wait_up_to_the_longest() -> None:
    policy = tf.RetryPolicy(first=timedelta(seconds=10), longest=timedelta(minutes=1), attempts=4)
    assert [policy.delay(n).total_seconds() for n in (1, 2, 3, 4, 60)] == [10, 20, 40, 60, 60]
    assert [policy.gives_up(n) for n in (3, 4)] == [False, True]
    with pytest.raises(InvalidPayload, match="attempts"):
        tf.RetryPolicy(attempts=0)


def test_a_kind_may_choose_its_own_notification_policy() -> None:
    def silent(workflow, before, after, events):
        return ()

    registry = tf.Registry(
        [
            tf.TaskKind(
                "quiet_request",
                DocumentRequest,
                DOCUMENT_REQUEST.workflow,
                policy=silent,
            ),
            DOCUMENT_REQUEST,
        ]
    )
    notifier = FlakyNotifier()
    service = tf.TaskService(
        registry=registry,
        repository=InMemoryRepository(),
        notifier=notifier,
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )
    draft = NewTask("Cert", "supco", DocumentRequest("ISO"), assignees=[SAM.ref])
    service.open(BEA, "quiet_request", draft)
    assert notifier.sent == []
    service.open(BEA, "document_request", draft)  # the service's policy for the others
    assert [n.event for n in notifier.sent] == ["opened"]


def test_a_unit_of_work_hands_out_tasks_as_the_actor_may_see_them(make_service) -> None:
    service = make_service()
    task = _open_task(service)
    service.comment(SAM, task.id, "between us", tf.Visibility.INTERNAL)
    with service.unit_of_work() as uow:
        assert [c.text for c in uow.get(BEA, task.id).comments] == []
        outcome = uow.act(BEA, task.id, "comment", tf.AddComment("hello"))
        assert [c.text for c in outcome.task.comments] == ["hello"]
        assert [c.text for c in uow.get(SAM, task.id).comments] == ["between us", "hello"]
    stored = service.repository.get(task.id)
    assert [c.text for c in stored.comments] == ["between us", "hello"]  # nothing lost


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"retry": 5}, "retry"),
        ({"lease": timedelta(0)}, "lease"),
        ({"worker": " "}, "worker"),
        ({"depth_limit": -1}, "depth_limit"),
    ],
)
def test_bad_delivery_options_are_refused_naming_the_option(options, field) -> None:
    with pytest.raises(InvalidPayload) as refused:
        tf.TaskService(
            registry=REGISTRY,
            repository=InMemoryRepository(),
            notifier=FlakyNotifier(),
            clock=tf.FixedClock(START),
            ids=tf.SequentialIds(),
            **options,
        )
    assert refused.value.field == field


def test_a_sender_needs_a_topic_name() -> None:
    service = tf.TaskService(
        registry=REGISTRY,
        repository=InMemoryRepository(),
        notifier=FlakyNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )
    for topic in (3, " ", tf.EVENT_TOPIC):
        with pytest.raises(InvalidWorkflow):
            service.add_sender(topic, lambda entry: None)
