"""Audits (SP3): mark done, or add PDF files that the requester closes or asks more of."""

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import settings

import taskflow as tf
from taskflow import (
    PDF,
    ActionNotAllowed,
    Actor,
    FileRef,
    InvalidPayload,
    NewTask,
    PermissionDenied,
    Registry,
    TaskNotFound,
    UserRef,
)
from taskflow.diagrams import to_mermaid
from taskflow.kinds.audit import AUDIT, AUDIT_WORKFLOW, AddFiles, Audit, RequestMore
from taskflow.serialization import Serializer
from taskflow.testing.stateful import workflow_machine

START = datetime(2026, 5, 4, 8, 30, tzinfo=UTC)
BUYER = Actor("bea", "acme")
QUALITY = Actor("quinn", "acme")
SUPPLIER = Actor("sam", "supco")
STRANGER = Actor("eve", "other")
REGISTRY = Registry([AUDIT])
AUDIT_DATA = Audit("Quality audit", date(2026, 6, 1), QUALITY.ref, "Plant 2, Lyon")


def _file(name="report.pdf", media_type=PDF, n=1):
    return FileRef(name, media_type, 1000 + n, f"sha256:{n:064x}", f"files/{n}")


REPORT = _file()
PLAN = _file("action-plan.pdf", n=2)


def _service():
    return tf.TaskService(
        registry=REGISTRY,
        repository=tf.InMemoryRepository(),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )


def _send(service, data=AUDIT_DATA):
    draft = NewTask("Quality audit 2026", "supco", data, assignees=[SUPPLIER.ref])
    return service.open(BUYER, "audit", draft).task.id


def _inboxes(service, task_id):
    return [a.user for a in (BUYER, SUPPLIER) if task_id in {t.id for t in service.inbox(a)}]


def _told(service):
    told = [(n.recipient.user, n.event) for n in service.notifier.sent]
    service.notifier.clear()
    return told


def _with_files(service):
    task_id = _send(service)
    service.act(SUPPLIER, task_id, "add_files", AddFiles((REPORT, PLAN)))
    return task_id


def test_audit_keeps_its_details_for_both_sides():
    service = _service()
    task_id = _send(service)
    for actor in (BUYER, SUPPLIER):
        data = service.get(actor, task_id).data
        assert (data.audit_type, data.audit_date, data.responsible, data.location) == (
            "Quality audit",
            date(2026, 6, 1),
            UserRef("acme", "quinn"),
            "Plant 2, Lyon",
        )


def test_supplier_marking_the_audit_done_ends_it():
    service = _service()
    task_id = _send(service)
    assert _inboxes(service, task_id) == ["sam"]
    assert service.allowed_actions(SUPPLIER, task_id)[:2] == ("mark_done", "add_files")
    task = service.act(SUPPLIER, task_id, "mark_done").task
    assert (task.state, task.is_open, task.resolved_at) == ("done", False, START)
    assert _inboxes(service, task_id) == []


def test_added_files_send_the_audit_back_to_the_requester_who_closes_it():
    service = _service()
    task_id = _send(service)
    task = service.act(SUPPLIER, task_id, "add_files", AddFiles((REPORT, PLAN))).task
    assert (task.state, task.files) == ("files_added", (REPORT, PLAN))
    assert _inboxes(service, task_id) == ["bea"]
    assert service.allowed_actions(BUYER, task_id)[:2] == ("close", "request_more")
    task = service.act(BUYER, task_id, "close").task
    assert (task.state, task.is_open) == ("closed", False)
    assert _inboxes(service, task_id) == []


def test_one_file_may_be_given_alone():
    assert AddFiles(REPORT).files == (REPORT,)


def test_requester_asking_for_more_returns_the_audit_to_the_supplier_for_more_files():
    service = _service()
    task_id = _with_files(service)
    task = service.act(
        BUYER, task_id, "request_more", RequestMore("The signed CAPA is missing")
    ).task
    assert (task.state, task.data.more_reason) == ("more_requested", "The signed CAPA is missing")
    assert _inboxes(service, task_id) == ["sam"]
    # Once files went to the requester, ending the cycle is the requester's call.
    assert service.allowed_actions(SUPPLIER, task_id)[0] == "add_files"
    capa = _file("capa-signed.pdf", n=3)
    task = service.act(SUPPLIER, task_id, "add_files", AddFiles((capa,))).task
    assert (task.state, task.files, task.data.more_reason) == (
        "files_added",
        (REPORT, PLAN, capa),
        None,
    )


def test_requester_may_close_while_waiting_for_more_files():
    service = _service()
    task_id = _with_files(service)
    service.act(BUYER, task_id, "request_more", RequestMore("More please"))
    assert service.act(BUYER, task_id, "close").task.state == "closed"


def test_supplier_cannot_mark_done_after_more_files_were_requested():
    service = _service()
    task_id = _with_files(service)
    service.act(BUYER, task_id, "request_more", RequestMore("More please"))
    with pytest.raises(
        ActionNotAllowed,
        match=r"'more_requested'; 'mark_done' needs 'requested'; allowed now: 'add_files'",
    ):
        service.act(SUPPLIER, task_id, "mark_done")


@pytest.mark.parametrize(
    ("payload", "message", "field"),
    [
        (
            AddFiles((REPORT, _file("photo.png", "image/png", n=4))),
            r"'add_files' on task ACME-TASK-1 accepts only PDF \(application/pdf\); "
            r"'photo.png' is image/png$",
            "files[1].media_type",
        ),
        (
            AddFiles((_file("a.zip", "application/zip", n=5), _file("b.txt", "text/plain", n=6))),
            r"accepts only PDF \(application/pdf\); 'a.zip' is application/zip, "
            r"'b.txt' is text/plain$",
            "files[0].media_type",
        ),
        (None, "'add_files' on task ACME-TASK-1 needs a AddFiles payload, got nothing", ""),
        (RequestMore("x"), "needs a AddFiles payload, got RequestMore", ""),
    ],
)
def test_bad_files_are_refused_naming_each_offending_file(payload, message, field):
    service = _service()
    task_id = _send(service)
    before = service.repository.get(task_id)
    with pytest.raises(InvalidPayload, match=message) as caught:
        service.act(SUPPLIER, task_id, "add_files", payload)
    assert caught.value.field == field
    assert service.repository.get(task_id) is before


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: AddFiles(()), "AddFiles.files must name at least one file"),
        (
            lambda: AddFiles((REPORT, REPORT)),
            r"AddFiles.files names 'report.pdf' twice \(at 0 and 1\)",
        ),
        (lambda: AddFiles(("report.pdf",)), r"AddFiles.files\[0\] must be a FileRef, got str"),
        (lambda: AddFiles("report.pdf"), "AddFiles.files must be FileRefs, got the string"),
        (lambda: AddFiles(7), "AddFiles.files must be a tuple of FileRefs, got int"),
        (lambda: RequestMore(" "), r"RequestMore\.reason must be a non-blank string"),
        (lambda: Audit(""), r"Audit\.audit_type must be a non-blank string"),
    ],
)
def test_malformed_payload_or_data_is_invalid_payload(build, message):
    with pytest.raises(InvalidPayload, match=message):
        build()


def test_responsible_user_must_belong_to_the_requester():
    service = _service()
    data = Audit("Quality audit", responsible=SUPPLIER.ref)
    with pytest.raises(
        InvalidPayload,
        match="an audit's responsible user must belong to the requester acme; sam@supco does not",
    ):
        _send(service, data)
    assert len(service.repository) == 0


def test_audit_needs_no_date_or_responsible_user():
    service = _service()
    task = service.get(BUYER, _send(service, Audit("Social audit")))
    assert (task.data.audit_date, task.data.responsible, task.state) == (None, None, "requested")


@pytest.mark.parametrize(
    ("steps", "actor", "action", "payload", "error", "message"),
    [
        (
            0,
            BUYER,
            "mark_done",
            None,
            PermissionDenied,
            r"'mark_done' on task ACME-TASK-1 is for the recipient \(supco\); bea@acme is the requester",
        ),
        (0, BUYER, "add_files", AddFiles((REPORT,)), PermissionDenied, "is for the recipient"),
        (
            1,
            SUPPLIER,
            "close",
            None,
            PermissionDenied,
            r"'close' on task ACME-TASK-1 is for the requester \(acme\); sam@supco is the recipient",
        ),
        (1, SUPPLIER, "request_more", RequestMore("x"), PermissionDenied, "is for the requester"),
        (
            0,
            BUYER,
            "close",
            None,
            ActionNotAllowed,
            r"'requested'; 'close' needs 'files_added' or 'more_requested'",
        ),
        (
            0,
            BUYER,
            "request_more",
            RequestMore("x"),
            ActionNotAllowed,
            r"'request_more' needs 'files_added'",
        ),
        (
            1,
            SUPPLIER,
            "add_files",
            AddFiles((REPORT,)),
            ActionNotAllowed,
            r"'files_added'; 'add_files' needs 'more_requested' or 'requested'",
        ),
        (1, SUPPLIER, "mark_done", None, ActionNotAllowed, r"'mark_done' needs 'requested'"),
    ],
)
def test_wrong_side_or_state_is_refused_with_a_typed_error(
    steps, actor, action, payload, error, message
):
    service = _service()
    task_id = _with_files(service) if steps else _send(service)
    with pytest.raises(error, match=message):
        service.act(actor, task_id, action, payload)


def test_closed_audit_takes_only_comments():
    service = _service()
    task_id = _with_files(service)
    service.act(BUYER, task_id, "close")
    with pytest.raises(ActionNotAllowed, match=r"'closed'; .*allowed now: 'comment'$"):
        service.act(BUYER, task_id, "request_more", RequestMore("late"))
    assert service.allowed_actions(SUPPLIER, task_id) == ("comment",)


def test_stranger_cannot_see_or_answer_an_audit():
    service = _service()
    task_id = _send(service)
    with pytest.raises(TaskNotFound):
        service.act(STRANGER, task_id, "mark_done")


def test_each_step_notifies_the_other_side():
    service = _service()
    task_id = _send(service)
    assert _told(service) == [("sam", "opened")]
    service.act(SUPPLIER, task_id, "add_files", AddFiles((REPORT,)))
    assert _told(service) == [("bea", "audit_files_added")]
    service.act(BUYER, task_id, "request_more", RequestMore("More"))
    assert _told(service) == [("sam", "audit_files_requested")]
    service.act(SUPPLIER, task_id, "add_files", AddFiles((PLAN,)))
    assert _told(service) == [("bea", "audit_files_added")]
    service.act(BUYER, task_id, "close")
    assert _told(service) == [("sam", "audit_closed")]


def test_marking_done_notifies_the_requester():
    service = _service()
    task_id = _send(service)
    _told(service)
    service.act(SUPPLIER, task_id, "mark_done")
    assert _told(service) == [("bea", "audit_done")]


def test_history_records_every_round():
    service = _service()
    task_id = _send(service)
    steps = [
        (SUPPLIER, "add_files", AddFiles((REPORT,))),
        (BUYER, "request_more", RequestMore("More")),
        (SUPPLIER, "add_files", AddFiles((PLAN,))),
        (BUYER, "close", None),
    ]
    for actor, action, payload in steps:
        service.clock.advance(timedelta(hours=1))
        service.act(actor, task_id, action, payload)
    task = service.repository.get(task_id)
    assert [(e.action, e.from_state, e.to_state) for e in task.history] == [
        ("open", None, "requested"),
        ("add_files", "requested", "files_added"),
        ("request_more", "files_added", "more_requested"),
        ("add_files", "more_requested", "files_added"),
        ("close", "files_added", "closed"),
    ]
    assert service.task_at(SUPPLIER, task_id, START + timedelta(hours=1)).files == (REPORT,)


def test_audit_with_every_payload_round_trips_through_json():
    service = _service()
    task_id = _with_files(service)
    service.act(BUYER, task_id, "request_more", RequestMore("More"))
    task = service.repository.get(task_id)
    serializer = Serializer(REGISTRY)
    assert serializer.load_task(json.loads(json.dumps(serializer.dump_task(task)))) == task
    assert [type(e.payload).__name__ for e in task.history] == [
        "NewTask",
        "AddFiles",
        "RequestMore",
    ]


def test_audit_workflow_draws_as_mermaid():
    text = to_mermaid(AUDIT_WORKFLOW)
    assert "requested --> done : mark_done (recipient)" in text
    assert "files_added --> more_requested : request_more (requester)" in text


TestAuditWorkflow = workflow_machine(REGISTRY, "audit").TestCase
TestAuditWorkflow.settings = settings(
    TestAuditWorkflow.settings, stateful_step_count=25, deadline=None
)
