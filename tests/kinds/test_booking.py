"""Booking tasks (BK1-BK5, seed 000): actions, resolving rules, parking, queries, roles, no notifications."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import taskflow as tf
from taskflow import (
    ActionNotAllowed,
    Actor,
    Between,
    Edit,
    InvalidPayload,
    Operation,
    PermissionDenied,
    TaskNotFound,
    TaskQuery,
)
from taskflow.kinds.booking import (
    BOOKING_MADE,
    BOOKING_ROLES,
    BOOKING_TASK,
    BookingAction,
    BookingMade,
    BookingTask,
    ChangeAction,
    MarkResolved,
    Resolution,
    booking_role_matrix,
    booking_task_draft,
)
from taskflow.testing.stateful import workflow_machine

START = datetime(2026, 5, 4, 8, 30, tzinfo=UTC)
DUE = START + timedelta(days=2)
REGISTRY = tf.default_registry()
ADA = Actor("ada", "tours", {"admin"})
BO = Actor("bo", "tours", {"backoffice_user"})
AGNES = Actor("agnes", "tours", {"agent"})
GUS = Actor("gus", "tours", {"guide"})
ROBOT = Actor.system("bookings", "tours")


def _service(authorizer=tf.DEFAULT_AUTHORIZER):
    return tf.TaskService(
        registry=REGISTRY,
        repository=tf.InMemoryRepository(registry=REGISTRY),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
        authorizer=authorizer,
    )


def _open(service, action=BookingAction.UPDATE_BOOKING, actor=ADA, **more):
    if not {"booking_ref", "customer_id", "customer_name"} & set(more):
        more["booking_ref"] = "BK-1042"
    draft = booking_task_draft("tours", action, DUE, **more)
    return service.open(actor, "booking_task", draft).task


# --- opening (BK1, BK2) ----------------------------------------------------------------------


def test_a_task_tied_to_a_booking_takes_the_booking_reference_as_its_subject():
    task = _open(_service(), booking_ref="BK-1042", body="Change the date to Friday")
    assert (task.subject, task.data.booking_ref, task.data.standalone) == (
        "BK-1042",
        "BK-1042",
        False,
    )
    assert task.due_at == DUE
    assert task.state == "open"


def test_a_standalone_task_names_an_existing_customer_or_a_new_customers_name():
    service = _service()
    existing = _open(service, BookingAction.QUESTION, customer_id="C-7", subject="Pets on board?")
    new = service.open(
        ADA,
        "booking_task",
        booking_task_draft("tours", "task", DUE, customer_name="Jo Doe", subject="Call back"),
    ).task
    assert (existing.data.customer_id, existing.data.standalone) == ("C-7", True)
    assert (new.data.customer_name, new.data.action) == ("Jo Doe", BookingAction.TASK)


def test_a_standalone_task_needs_a_subject():
    with pytest.raises(InvalidPayload, match="a standalone booking task needs a subject") as caught:
        booking_task_draft("tours", "question", DUE, customer_id="C-7")
    assert caught.value.field == "subject"


def test_a_booking_task_needs_a_due_date():
    draft = tf.NewTask("BK-1", "tours", BookingTask(action="task", booking_ref="BK-1"))
    with pytest.raises(InvalidPayload, match="a booking task needs due_at") as caught:
        _service().open(ADA, "booking_task", draft)
    assert caught.value.field == "due_at"


@pytest.mark.parametrize("action", ["update_booking", "cancel_booking", "refund"])
def test_update_cancel_and_refund_must_be_tied_to_a_booking(action):
    draft = booking_task_draft("tours", action, DUE, customer_id="C-7", subject="Do it")
    with pytest.raises(InvalidPayload, match=f"a '{action}' booking task must name the booking"):
        _service().open(ADA, "booking_task", draft)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (BookingTask(action="task"), "data.customer_id"),
        (BookingTask(action="task", customer_id="C-1", customer_name="Jo"), "data.customer_name"),
        (BookingTask(action="task", customer_id="C-1", answer="yes"), "data.answer"),
        (BookingTask(action="task", customer_id="C-1", resolution="by_hand"), "data.resolution"),
    ],
)
def test_a_booking_task_is_refused_when_its_customer_or_resolution_fields_are_wrong(data, field):
    draft = tf.NewTask("Something", "tours", data, due_at=DUE)
    with pytest.raises(InvalidPayload) as caught:
        _service().open(ADA, "booking_task", draft)
    assert caught.value.field == field


def test_an_unknown_action_is_refused_naming_the_seven_actions():
    with pytest.raises(InvalidPayload, match=r"BookingTask\.action must be one of 'new_booking'"):
        BookingTask(action="rebook", booking_ref="BK-1")


# --- changing the action (C10, BK4) ----------------------------------------------------------


def test_the_action_changes_while_unresolved_and_not_after():
    service = _service()
    task = _open(service)
    changed = service.act(ADA, task.id, "change_action", ChangeAction("refund")).task
    assert changed.data.action is BookingAction.REFUND
    service.edit(ADA, task.id, Edit(body="Refund 50 %", due_at=DUE + timedelta(days=1)))
    service.act(ADA, task.id, "mark_resolved", MarkResolved())
    with pytest.raises(ActionNotAllowed, match="'change_action' needs 'open'"):
        service.act(ADA, task.id, "change_action", ChangeAction("task"))
    with pytest.raises(ActionNotAllowed, match="'edit' needs"):
        service.edit(ADA, task.id, Edit(body="too late"))


def test_changing_to_the_same_action_is_refused():
    service = _service()
    task = _open(service)
    with pytest.raises(InvalidPayload, match="its action is 'update_booking' already"):
        service.act(ADA, task.id, "change_action", ChangeAction("update_booking"))


def test_a_standalone_task_changed_to_a_tied_action_names_its_booking():
    service = _service()
    task = _open(service, BookingAction.QUESTION, customer_id="C-7", subject="Pets?")
    with pytest.raises(InvalidPayload, match="needs a booking: the task is standalone"):
        service.act(ADA, task.id, "change_action", ChangeAction("cancel_booking"))
    tied = service.act(ADA, task.id, "change_action", ChangeAction("cancel_booking", "BK-9")).task
    assert (tied.data.action, tied.data.booking_ref) == (BookingAction.CANCEL_BOOKING, "BK-9")


# --- resolving (BK3) -------------------------------------------------------------------------


def test_a_question_is_resolved_once_answered_and_its_answer_recorded():
    service = _service()
    task = _open(service, BookingAction.QUESTION, customer_id="C-7", subject="Pets?")
    with pytest.raises(InvalidPayload, match="needs the answer given to the customer") as caught:
        service.act(ADA, task.id, "mark_resolved", MarkResolved())
    assert caught.value.field == "answer"
    done = service.act(ADA, task.id, "mark_resolved", MarkResolved(answer="Small dogs only")).task
    assert (done.state, done.data.answer, done.data.resolution) == (
        "resolved",
        "Small dogs only",
        Resolution.ANSWERED,
    )
    assert done.resolved_at == START


def test_only_a_question_records_an_answer():
    service = _service()
    task = _open(service, BookingAction.TASK, customer_id="C-7", subject="Print vouchers")
    with pytest.raises(InvalidPayload, match="only a question task records an answer"):
        service.act(ADA, task.id, "mark_resolved", MarkResolved(answer="done"))
    done = service.act(ADA, task.id, "mark_resolved", MarkResolved()).task
    assert done.data.resolution is Resolution.BY_HAND


def test_a_new_booking_task_resolves_itself_when_the_booking_is_made_and_is_linked_to_it():
    service = _service()
    task = _open(service, BookingAction.NEW_BOOKING, customer_name="Jo Doe", subject="Book a tour")
    assert BOOKING_MADE not in service.allowed_actions(ADA, task.id)
    done = service.act(ROBOT, task.id, BOOKING_MADE, BookingMade("BK-2001")).task
    assert (done.state, done.data.booking_ref, done.data.resolution) == (
        "resolved",
        "BK-2001",
        Resolution.BOOKING_MADE,
    )
    assert done.history[-1].actor == ROBOT
    found = service.find(ADA, TaskQuery(kind="booking_task", where={"booking_ref": "BK-2001"}))
    assert [t.id for t in found] == [task.id]


def test_a_user_cannot_report_a_booking_made_only_the_host_flow_can():
    service = _service()
    task = _open(service, BookingAction.NEW_BOOKING, customer_name="Jo Doe", subject="Book")
    with pytest.raises(PermissionDenied, match="system"):
        service.act(ADA, task.id, BOOKING_MADE, BookingMade("BK-2001"))


def test_only_a_new_booking_task_resolves_itself_on_a_booking_made():
    service = _service()
    task = _open(service)
    with pytest.raises(ActionNotAllowed, match="only a 'new_booking' task resolves itself"):
        service.act(ROBOT, task.id, BOOKING_MADE, BookingMade("BK-2001"))


def test_a_new_booking_made_outside_the_flow_is_marked_resolved_by_hand_naming_the_booking():
    service = _service()
    task = _open(service, BookingAction.NEW_BOOKING, customer_name="Jo Doe", subject="Book")
    done = service.act(ADA, task.id, "mark_resolved", MarkResolved(booking_ref="BK-77")).task
    assert (done.data.booking_ref, done.data.resolution) == ("BK-77", Resolution.BY_HAND)
    other = _open(service)
    with pytest.raises(InvalidPayload, match="only a new-booking task is linked"):
        service.act(ADA, other.id, "mark_resolved", MarkResolved(booking_ref="BK-78"))


def _active(service, actor=ADA):
    query = TaskQuery(kind="booking_task", open=True, where={"parked": False})
    return [t.id for t in service.find(actor, query)]


def test_an_ignored_task_is_parked_out_of_the_active_list_until_its_action_changes():
    service = _service()
    task = _open(service)
    assert _active(service) == [task.id]
    parked = service.act(ADA, task.id, "change_action", ChangeAction("ignore")).task
    assert parked.is_open
    assert _active(service) == []
    assert [t.id for t in service.find(ADA, TaskQuery(where={"parked": True}))] == [task.id]
    service.act(ADA, task.id, "change_action", ChangeAction("update_booking"))
    assert _active(service) == [task.id]


def test_an_ignored_task_is_resolved_without_action():
    service = _service()
    task = _open(service)
    service.act(ADA, task.id, "change_action", ChangeAction("ignore"))
    done = service.act(ADA, task.id, "mark_resolved", MarkResolved()).task
    assert (done.state, done.data.resolution) == ("resolved", Resolution.WITHOUT_ACTION)
    assert service.find(ADA, TaskQuery(where={"parked": True})) == []


# --- the tasks page and the booking's detail (BK4) -------------------------------------------


def test_the_tasks_page_and_the_bookings_detail_are_indexed_queries():
    service = _service()
    first = _open(service, booking_ref="BK-1")
    second = _open(service, BookingAction.REFUND, booking_ref="BK-1")
    service.clock.advance(timedelta(hours=1))
    other = service.open(
        ADA,
        "booking_task",
        booking_task_draft("tours", "task", DUE + timedelta(days=5), booking_ref="BK-2"),
    ).task
    service.act(ADA, second.id, "mark_resolved", MarkResolved())

    def ids(**where):
        return [t.id for t in service.find(ADA, TaskQuery(kind="booking_task", where=where))]

    assert ids(booking_ref="BK-1") == [first.id, second.id]
    assert ids(booking_action="refund") == [second.id]
    assert ids(resolve_by=Between(None, DUE)) == [first.id, second.id]
    assert ids(resolve_by=Between(DUE + timedelta(days=1), None)) == [other.id]
    unresolved = service.find(ADA, TaskQuery(kind="booking_task", open=True))
    assert [t.id for t in unresolved] == [first.id, other.id]


# --- notifications (C12, seed 000) -----------------------------------------------------------


def test_creating_updating_and_resolving_a_booking_task_notifies_nobody():
    service = _service()
    draft = booking_task_draft(
        "tours",
        "update_booking",
        DUE,
        booking_ref="BK-1",
        assignees=[BO.ref, AGNES.ref],
        watchers=[GUS.ref],
    )
    task = service.open(ADA, "booking_task", draft).task
    service.act(BO, task.id, "change_action", ChangeAction("refund"))
    service.edit(ADA, task.id, Edit(body="Refund all"))
    service.comment(AGNES, task.id, "Customer called again")
    service.act(BO, task.id, "mark_resolved", MarkResolved())
    assert service.notifier.sent == []
    assert service.repository.pending() == []
    assert BOOKING_TASK.policy is not None


# --- the role matrix (BK5, C11) --------------------------------------------------------------

ROLES = ("backoffice_user", "admin", "agent", "guide")


def _may(matrix_rows, roles, operation):
    return any(operation in matrix_rows.get(role, ()) for role in roles)


def _try(service, actor, operation):
    """Do `operation` as `actor` on a fresh task opened by a full-rights system actor; True if allowed."""
    if operation is Operation.CREATE:
        try:
            _open(service, actor=actor)
        except PermissionDenied:
            return False
        return True
    task = _open(service, actor=ROBOT_ALL)
    try:
        if operation is Operation.SEE:
            service.get(actor, task.id)
        elif operation is Operation.MODIFY:
            service.act(actor, task.id, "change_action", ChangeAction("refund"))
        else:
            service.act(actor, task.id, "mark_resolved", MarkResolved())
    except (PermissionDenied, TaskNotFound):
        return False
    return True


ROBOT_ALL = Actor.system("desk", "tours")  # a system actor without matrix roles: base rules only


def _check_matrix(rows, roles, operation):
    service = _service(booking_role_matrix(rows, kinds=REGISTRY.names))
    actor = Actor("user", "tours", roles)
    allowed = _may(rows, roles, operation)
    if operation in (Operation.MODIFY, Operation.RESOLVE):
        allowed = allowed and _may(rows, roles, Operation.SEE)  # not seeing is not finding
    assert _try(service, actor, operation) is allowed


@settings(max_examples=60)
@given(st.frozensets(st.sampled_from(ROLES)), st.sampled_from(Operation))
def test_the_default_matrix_decides_every_role_and_operation(roles, operation):
    _check_matrix(BOOKING_ROLES, roles, operation)


@settings(max_examples=60)
@given(
    st.dictionaries(st.sampled_from(ROLES), st.frozensets(st.sampled_from(Operation)), min_size=1),
    st.frozensets(st.sampled_from(ROLES)),
    st.sampled_from(Operation),
)
def test_a_matrix_the_host_gives_replaces_the_default_for_every_role_and_operation(
    rows, roles, operation
):
    _check_matrix(rows, roles, operation)


@pytest.mark.parametrize(
    ("actor", "operations"),
    [
        (BO, {"create", "see", "modify", "resolve"}),
        (ADA, {"create", "see", "modify", "resolve"}),
        (AGNES, {"create", "see", "modify"}),
        (GUS, set()),
    ],
)
def test_the_default_matrix_rows_are_the_documented_ones(actor, operations):
    matrix = booking_role_matrix()
    assert {str(o) for o in matrix.operations("booking_task", actor)} == operations


# --- random walks ----------------------------------------------------------------------------

TestBookingTaskWorkflow = workflow_machine(REGISTRY, "booking_task").TestCase
TestBookingTaskWorkflow.settings = settings(
    TestBookingTaskWorkflow.settings, stateful_step_count=20, deadline=None
)

TestBookingTaskUnderTheMatrix = workflow_machine(
    REGISTRY, "booking_task", authorizer=booking_role_matrix(), roles=set(BOOKING_ROLES)
).TestCase
TestBookingTaskUnderTheMatrix.settings = settings(
    TestBookingTaskUnderTheMatrix.settings, stateful_step_count=20, deadline=None
)
