"""CrmTasks: account defaults (assignees, start, CS5 due date) and "save to tracker" through the outbox."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import taskflow as tf
from taskflow.application.crm import (
    TRACKER_TOPIC,
    Account,
    AccountLookup,
    CrmTasks,
    InMemoryAccounts,
    Tracker,
    TrackerRequest,
)
from taskflow.kinds.crm_task import CRM_TASK, CrmTask, Regarding
from taskflow.sla import BusinessCalendar

BERLIN = ZoneInfo("Europe/Berlin")
FRIDAY_4PM = datetime(2026, 12, 4, 16, tzinfo=BERLIN)
HOLIDAY = date(2026, 12, 7)  # the Monday after
CALENDAR = BusinessCalendar.weekdays("Europe/Berlin", holidays=[HOLIDAY])
ANN, BOB = tf.UserRef("desk", "ann"), tf.UserRef("desk", "bob")
ACME = Account("acme", (ANN, BOB), timedelta(hours=8), CALENDAR)
CUSTOMER = tf.Actor("cora", "acme")


class FlakyTracker:
    """A tracker that is down for its first `down` calls, then opens items."""

    def __init__(self, down=0):
        self.down = down
        self.calls = []

    def open_item(self, request):
        self.calls.append(request)
        if len(self.calls) <= self.down:
            raise ConnectionError("tracker is down")
        return f"https://tracker.example/items/{request.number}"


def _service(retry=None):
    registry = tf.Registry([CRM_TASK])
    return tf.TaskService(
        registry=registry,
        repository=tf.InMemoryRepository(registry=registry),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(FRIDAY_4PM),
        ids=tf.SequentialIds(),
        retry=retry,
    )


def _draft(**data):
    return tf.NewTask("Printer jams", "desk", CrmTask(regarding=Regarding.account("acme"), **data))


def test_the_ports_are_protocols_the_host_implements():
    assert isinstance(InMemoryAccounts(), AccountLookup)
    assert isinstance(FlakyTracker(), Tracker)


def test_account_defaults_assignees_start_today_and_due_after_its_sla_hours_in_business_time():
    service = _service()
    crm = CrmTasks(service, accounts=InMemoryAccounts([ACME]))
    task = crm.open(CUSTOMER, _draft()).task
    assert task.assignees_of("desk") == (ANN, BOB)
    assert task.data.start == date(2026, 12, 4)
    # Friday 16-17 is 1 h, Monday is a holiday, Tuesday 9-16 the other 7 h.
    assert task.due_at == datetime(2026, 12, 8, 16, tzinfo=BERLIN)


def test_given_values_win_and_a_later_start_counts_from_that_day():
    service = _service()
    crm = CrmTasks(service, accounts=InMemoryAccounts([ACME]))
    given = datetime(2026, 12, 31, 12, tzinfo=BERLIN)
    draft = _draft(start=date(2026, 12, 10))
    task = crm.open(CUSTOMER, tf.NewTask(draft.subject, "desk", draft.data, assignees=[BOB])).task
    assert task.assignees_of("desk") == (BOB,)
    assert task.due_at == datetime(2026, 12, 10, 17, tzinfo=BERLIN)  # Thursday 9-17
    fixed = crm.open(CUSTOMER, tf.NewTask("Other", "desk", draft.data, due_at=given)).task
    assert fixed.due_at == given


def test_an_unknown_account_or_no_lookup_leaves_the_draft_as_given_but_the_start():
    service = _service()
    task = CrmTasks(service, accounts=InMemoryAccounts()).open(CUSTOMER, _draft()).task
    assert (task.assignees_of("desk"), task.due_at, task.data.start) == (
        (),
        None,
        date(2026, 12, 4),
    )
    plain = CrmTasks(service).open(CUSTOMER, _draft()).task
    assert plain.due_at is None


def test_save_to_tracker_with_a_failing_then_recovering_tracker_stores_the_link_once():
    service = _service()
    tracker = FlakyTracker(down=2)
    crm = CrmTasks(service, tracker=tracker)
    task = crm.open(CUSTOMER, _draft(save_to_tracker=True)).task
    assert service.repository.get(task.id).data.tracker_link is None  # the task is kept
    assert len(crm.pending_requests()) == 1
    for _ in range(3):
        service.clock.advance(timedelta(minutes=5))
        service.deliver()
    stored = service.repository.get(task.id)
    assert stored.data.tracker_link == f"https://tracker.example/items/{task.number}"
    entry = stored.history[-1]
    assert (entry.action, entry.actor) == ("link_tracker", tf.Actor.system("tracker", "desk"))
    assert len(tracker.calls) == 3
    assert crm.pending_requests() == []
    service.clock.advance(timedelta(hours=1))
    service.deliver()
    assert len(tracker.calls) == 3


def test_a_tracker_down_for_good_leaves_a_dead_letter_that_a_retry_delivers():
    service = _service(retry=tf.RetryPolicy(attempts=3))
    tracker = FlakyTracker(down=3)
    crm = CrmTasks(service, tracker=tracker)
    task = crm.open(CUSTOMER, _draft(save_to_tracker=True)).task
    for _ in range(4):
        service.clock.advance(timedelta(minutes=5))
        service.deliver()
    (dead,) = service.dead_letters()
    assert dead.topic == TRACKER_TOPIC
    assert service.repository.get(task.id).data.tracker_link is None
    service.retry_dead_letters([dead.id])
    service.deliver()
    assert service.repository.get(task.id).data.tracker_link is not None


def test_redelivery_after_the_link_is_stored_asks_the_tracker_nothing():
    service = _service()
    tracker = FlakyTracker()
    crm = CrmTasks(service, tracker=tracker)
    task = crm.open(CUSTOMER, _draft(save_to_tracker=True)).task
    request = TrackerRequest.of(tracker.calls[0].payload())
    assert request.task_id == task.id
    entry = tf.OutboxEntry(1, tf.OutboxMessage(TRACKER_TOPIC, "k", request.payload()))
    crm._send(entry)
    assert len(tracker.calls) == 1


def test_save_to_tracker_without_a_tracker_is_refused_and_opens_nothing():
    service = _service()
    with pytest.raises(tf.InvalidPayload, match="needs a tracker"):
        CrmTasks(service).open(CUSTOMER, _draft(save_to_tracker=True))
    assert service.repository.query(tf.TaskQuery()) == []
    with pytest.raises(tf.InvalidPayload, match="not registered"):
        CrmTasks(service, kind="nope")
