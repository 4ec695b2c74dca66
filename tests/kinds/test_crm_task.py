"""CRM tasks (seeds 003, 004): statuses, task complete, effort and billing, portal rights, notes, notifications."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import attrs
import pytest

import taskflow as tf
from taskflow.domain.common import AddComment
from taskflow.kinds.crm_task import (
    ADD_DOCUMENT,
    BILL,
    COMPLETE,
    CRM_EDIT_FIELDS,
    CRM_TASK,
    REOPEN,
    AddDocument,
    CrmConfig,
    CrmEdit,
    CrmStatus,
    CrmTask,
    Document,
    Regarding,
    StatusCategory,
    WorkType,
    crm_task_kind,
    status_action,
)
from taskflow.serialization import Serializer
from taskflow.testing.stateful import workflow_machine

T0 = datetime(2026, 12, 4, 16, tzinfo=UTC)
CUSTOMER = tf.Actor("cora", "acme")  # a portal user of the customer account
AGENT = tf.Actor("ann", "desk")
OTHER_AGENT = tf.Actor("bob", "desk")
WATCHER = tf.UserRef("acme", "wendy")
FILE = tf.FileRef("spec.pdf", "application/pdf", 10, "sha256:00", "files/spec")


def make_service(kind=CRM_TASK):
    registry = tf.default_registry() if kind is CRM_TASK else tf.Registry([kind])
    notifier = tf.RecordingNotifier()
    service = tf.TaskService(
        registry=registry,
        repository=tf.InMemoryRepository(registry=registry),
        notifier=notifier,
        clock=tf.FixedClock(T0),
        ids=tf.SequentialIds(),
    )
    return service, notifier


def data(**fields):
    return CrmTask(regarding=Regarding.account("acme"), **fields)


def open_task(service, actor=CUSTOMER, **fields):
    draft = tf.NewTask(
        "Printer jams",
        "desk",
        data(**fields.pop("data", {})),
        assignees=fields.pop("assignees", [AGENT.ref, OTHER_AGENT.ref]),
        watchers=fields.pop("watchers", [WATCHER]),
        **fields,
    )
    return service.open(actor, "crm_task", draft).task


def test_a_portal_task_opens_not_started_in_the_business_inbox():
    service, _ = make_service()
    task = open_task(service)
    assert task.state == "not_started"
    assert task.ball_company == "desk"
    assert task.data.start_of(task) == T0.date()
    assert task.data.percent_complete == 0
    assert [t.number for t in service.inbox(AGENT)] == [task.number]
    assert service.allowed_actions(AGENT, task.id) == (
        "set_in_progress", "set_waiting_on_customer", COMPLETE, "set_cancelled",
        "comment", "assign", "claim", "edit", ADD_DOCUMENT, BILL,
    )  # fmt: skip


def test_task_complete_is_one_action_status_completed_time_100_percent():
    service, notifier = make_service()
    task = open_task(service, data={"notice_on_complete": True})
    service.act(AGENT, task.id, "set_in_progress")
    notifier.clear()
    service.clock.advance(timedelta(hours=2))
    done = service.act(AGENT, task.id, COMPLETE).task
    assert done.state == "complete"
    assert not done.is_open
    assert done.data.completed_at == T0 + timedelta(hours=2)
    assert done.data.percent_complete == 100
    told = {(n.recipient, n.event) for n in notifier.sent}
    assert told == {
        (OTHER_AGENT.ref, "task_completed"),
        (CUSTOMER.ref, "task_completed"),
        (WATCHER, "task_completed"),
    }


def test_reopening_clears_the_completion_and_goes_back_in_progress():
    service, _ = make_service()
    task = open_task(service)
    service.act(AGENT, task.id, COMPLETE)
    back = service.act(AGENT, task.id, REOPEN).task
    assert back.state == "in_progress"
    assert back.data.completed_at is None
    assert back.data.percent_complete == 99


def test_billed_only_on_a_billable_task_and_100_percent_only_when_complete():
    service, _ = make_service()
    task = open_task(service)
    with pytest.raises(
        tf.InvalidPayload, match="billed can be set only on a billable task"
    ) as caught:
        service.edit(AGENT, task.id, CrmEdit(billed=True))
    assert caught.value.field == "billed"
    with pytest.raises(
        tf.InvalidPayload, match="percent_complete is 100 only when the task is complete"
    ):
        service.edit(AGENT, task.id, CrmEdit(percent_complete=100))
    edited = service.edit(
        AGENT, task.id, CrmEdit(billable=True, billed=True, actual_hours=Decimal("1.5"))
    ).task
    assert edited.data.billed
    assert edited.data.actual_hours == Decimal("1.5")
    with pytest.raises(
        tf.InvalidPayload, match="percent_complete must be a whole number from 0 to 100"
    ):
        CrmEdit(percent_complete=101)
    with pytest.raises(tf.InvalidPayload, match=r"price must be a Decimal >= 0"):
        data(price=1.5)


def test_a_portal_user_edits_only_the_configured_fields_and_the_business_all():
    service, _ = make_service()
    task = open_task(service)
    assert "edit" in service.allowed_actions(CUSTOMER, task.id)
    service.edit(CUSTOMER, task.id, CrmEdit(entered_by_phone="+1 555 0100", notice_on_change=True))
    with pytest.raises(tf.PermissionDenied, match=r"may not edit \['body', 'subject'\]") as caught:
        service.edit(
            CUSTOMER, task.id, CrmEdit(subject="Changed", body="x", notice_on_change=False)
        )
    assert "entered_by_phone" in str(caught.value)
    everything = dict(
        CrmEdit(subject="New", price=Decimal(3), mileage=Decimal(12)).fields().items()
    )
    assert service.edit(AGENT, task.id, CrmEdit(**everything)).task.data.mileage == Decimal(12)


def test_a_host_that_gives_portal_users_no_field_is_not_offered_edit():
    kind = crm_task_kind(CrmConfig(portal_editable=frozenset()))
    service, _ = make_service(kind)
    task = open_task(service)
    assert "edit" not in service.allowed_actions(CUSTOMER, task.id)
    with pytest.raises(tf.PermissionDenied, match="may edit no field"):
        service.edit(CUSTOMER, task.id, CrmEdit(notice_on_change=True))


def test_internal_work_notes_are_for_the_business_only():
    service, notifier = make_service()
    task = open_task(service)
    notifier.clear()
    service.comment(AGENT, task.id, "customer is difficult", tf.Visibility.INTERNAL)
    service.comment(AGENT, task.id, "we are on it")
    seen = service.get(CUSTOMER, task.id)
    assert [c.text for c in seen.comments] == ["we are on it"]
    assert [c.text for c in service.get(OTHER_AGENT, task.id).comments] == [
        "customer is difficult",
        "we are on it",
    ]
    internal = [
        n.recipient
        for n in notifier.sent
        if "difficult" not in n.message and n.event == "commented"
    ]
    assert CUSTOMER.ref in internal  # the public note reached the customer
    assert {n.recipient for n in notifier.sent[:1]} == {OTHER_AGENT.ref}  # the internal one did not


def test_documents_are_references_with_their_metadata():
    service, _ = make_service()
    task = open_task(service)
    doc = Document(
        FILE,
        "Contracts",
        description="Signed",
        document_date=date(2026, 12, 1),
        valid_from=date(2026, 12, 1),
        valid_until=date(2027, 12, 1),
    )
    task = service.act(CUSTOMER, task.id, ADD_DOCUMENT, AddDocument(doc)).task
    assert task.data.documents == (doc,)
    with pytest.raises(tf.InvalidPayload, match=r"valid_until .* must not be before valid_from"):
        Document(FILE, valid_from=date(2026, 12, 2), valid_until=date(2026, 12, 1))


def test_only_tasks_carry_a_planned_schedule():
    start = T0 + timedelta(days=3)
    planned = data(
        work_type=WorkType.TASK, planned_start=start, planned_end=start + timedelta(days=1)
    )
    assert planned.planned_end > planned.planned_start
    with pytest.raises(tf.InvalidPayload, match="planned_start is only for tasks") as caught:
        data(work_type=WorkType.TICKET, planned_start=start)
    assert caught.value.field == "planned_start"
    with pytest.raises(tf.InvalidPayload, match=r"planned_end .* must not be before planned_start"):
        data(planned_start=start, planned_end=start - timedelta(hours=1))
    service, _ = make_service()
    ticket = open_task(service, data={"work_type": "ticket"})
    with pytest.raises(tf.InvalidPayload, match="a ticket has no planned schedule"):
        service.edit(AGENT, ticket.id, CrmEdit(planned_start=start))


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"category": "Astrology"}, "category 'Astrology' is not one of the CRM task categories"),
        ({"data": {"billable": True, "billed": True}}, "cannot carry billed"),
        ({"data": {"tracker_link": "BUG-1"}}, "cannot carry tracker_link"),
    ],
)
def test_a_bad_draft_is_refused_naming_the_field(fields, words):
    service, _ = make_service()
    with pytest.raises(tf.InvalidPayload, match=words):
        open_task(service, **fields)


# --- notifications (C12): one test per rule -----------------------------------------------


def test_every_save_notifies_the_assignees_but_not_the_actor():
    service, notifier = make_service()
    task = open_task(service)
    assert {n.recipient for n in notifier.sent} == {AGENT.ref, OTHER_AGENT.ref}
    notifier.clear()
    service.edit(AGENT, task.id, CrmEdit(actual_hours=Decimal(2)))
    assert {n.recipient for n in notifier.sent} == {OTHER_AGENT.ref, CUSTOMER.ref}


def test_changes_notify_the_notify_list_only_when_notice_on_change_is_set():
    service, notifier = make_service()
    quiet = open_task(service)
    notifier.clear()
    service.edit(AGENT, quiet.id, CrmEdit(actual_hours=Decimal(2)))
    assert WATCHER not in {n.recipient for n in notifier.sent}
    loud = open_task(service, data={"notice_on_change": True})
    assert WATCHER in {n.recipient for n in notifier.sent}
    notifier.clear()
    service.edit(AGENT, loud.id, CrmEdit(actual_hours=Decimal(2)))
    assert WATCHER in {n.recipient for n in notifier.sent}


def test_completion_notifies_the_notify_list_only_when_notice_on_complete_is_set():
    service, notifier = make_service()
    on_change_only = open_task(service, data={"notice_on_change": True})
    notifier.clear()
    service.act(AGENT, on_change_only.id, COMPLETE)
    assert WATCHER not in {n.recipient for n in notifier.sent}
    on_complete = open_task(service, data={"notice_on_complete": True})
    notifier.clear()
    service.act(AGENT, on_complete.id, COMPLETE)
    assert WATCHER in {n.recipient for n in notifier.sent}


# --- configured statuses ------------------------------------------------------------------

HOST_STATUSES = (
    CrmStatus("new", StatusCategory.NOT_STARTED, "New"),
    CrmStatus("triage", StatusCategory.IN_PROGRESS, "Triage"),
    CrmStatus("working", StatusCategory.IN_PROGRESS, "Working"),
    CrmStatus("on_hold_customer", StatusCategory.WAITING_ON_CUSTOMER, "Waiting for you"),
    CrmStatus("done", StatusCategory.COMPLETE, "Done"),
    CrmStatus("solved_by_customer", StatusCategory.COMPLETE, "Solved by customer"),
    CrmStatus("dropped", StatusCategory.CANCELLED, "Dropped"),
)
HOST_KIND = crm_task_kind(
    CrmConfig(HOST_STATUSES, categories=("Bug Fix", "General Inquiry", "Billing"))
)


def test_a_host_status_set_builds_its_own_checked_workflow():
    workflow = HOST_KIND.workflow
    assert workflow.initial == "new"
    assert workflow.final_states == {
        "done",
        "solved_by_customer",
        "dropped",
    }
    assert workflow.state("on_hold_customer").waiting_on is tf.Side.REQUESTER
    config = CrmConfig(HOST_STATUSES)
    assert [status_action(config, s) for s in HOST_STATUSES] == [
        "set_new", "set_triage", "set_working", "set_on_hold_customer",
        COMPLETE, "complete_as_solved_by_customer", "set_dropped",
    ]  # fmt: skip
    service, _ = make_service(HOST_KIND)
    task = open_task(service)
    service.act(AGENT, task.id, "set_triage")
    solved = service.act(AGENT, task.id, "complete_as_solved_by_customer").task
    assert solved.state == "solved_by_customer"
    assert solved.data.percent_complete == 100
    assert service.act(AGENT, task.id, REOPEN).task.state == "triage"


@pytest.mark.parametrize(
    ("config", "words"),
    [
        (lambda: CrmConfig(HOST_STATUSES[1:]), "no status is in category 'not_started'"),
        (lambda: CrmConfig((*HOST_STATUSES, HOST_STATUSES[0])), "status 'new' is declared twice"),
        (
            lambda: CrmConfig(portal_editable={"tracker_link"}),
            "portal_editable names \\['tracker_link'\\]",
        ),
        (lambda: CrmConfig(categories=()), "categories must be a non-empty list"),
        (lambda: CrmStatus("not a name", "complete"), "must be a Python identifier"),
    ],
)
def test_a_bad_configuration_is_refused_with_the_reason(config, words):
    with pytest.raises(tf.InvalidWorkflow, match=words):
        config()


def test_a_crm_task_round_trips_through_json_with_its_decimals_and_dates():
    service, _ = make_service()
    task = open_task(
        service,
        data={
            "price": Decimal("19.99"),
            "start": date(2026, 12, 7),
            "estimated_hours": Decimal("2.25"),
        },
    )
    task = service.edit(AGENT, task.id, CrmEdit(mileage=Decimal("12.5"))).task
    serializer = Serializer(service.registry)
    loaded = serializer.load_task(serializer.dump_task(task))
    assert loaded == task
    assert loaded.data.price == Decimal("19.99")


def test_every_editable_field_is_a_task_or_crm_field():
    task_fields = {a.name for a in attrs.fields(tf.Task)}
    data_fields = {a.name for a in attrs.fields(CrmTask)}
    assert task_fields | data_fields >= CRM_EDIT_FIELDS
    assert AddComment("x").visibility is tf.Visibility.PUBLIC


TestCrmTasks = workflow_machine(tf.default_registry(), "crm_task").TestCase
TestHostConfiguredCrmTasks = workflow_machine(tf.Registry([HOST_KIND]), "crm_task").TestCase
