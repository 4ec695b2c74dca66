"""Agreements (SP2): accept or upload a signed PDF as the agreement type says; revise; notify."""

import json
from datetime import UTC, datetime, timedelta

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
)
from taskflow.diagrams import to_mermaid
from taskflow.kinds.agreement import (
    AGREEMENT,
    AGREEMENT_WORKFLOW,
    Agreement,
    RejectSigned,
    ReplaceDocument,
    UploadSigned,
)
from taskflow.serialization import Serializer
from taskflow.testing.stateful import workflow_machine

START = datetime(2026, 5, 4, 8, 30, tzinfo=UTC)
BUYER = Actor("bea", "acme")
SUPPLIER = Actor("sam", "supco")
STRANGER = Actor("eve", "other")
REGISTRY = Registry([AGREEMENT])
COMMON = ("comment", "assign", "claim", "edit")


def _file(name="agreement.pdf", media_type=PDF, n=1):
    return FileRef(name, media_type, 1000 + n, f"sha256:{n:064x}", f"files/{n}")


NDA = Agreement("NDA", _file())
FRAMEWORK = Agreement("Framework agreement", _file(), requires_signed_copy=True)
SIGNED = _file("signed.pdf", n=2)


def _service():
    return tf.TaskService(
        registry=REGISTRY,
        repository=tf.InMemoryRepository(),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )


def _send(service, data=NDA):
    draft = NewTask("Please confirm our agreement", "supco", data, assignees=[SUPPLIER.ref])
    return service.open(BUYER, "agreement", draft).task.id


def _inboxes(service, task_id):
    return [a.user for a in (BUYER, SUPPLIER) if task_id in {t.id for t in service.inbox(a)}]


def _told(service):
    told = [(n.recipient.user, n.event) for n in service.notifier.sent]
    service.notifier.clear()
    return told


def _signed_and_uploaded(service):
    task_id = _send(service, FRAMEWORK)
    service.act(SUPPLIER, task_id, "upload_signed", UploadSigned(SIGNED))
    return task_id


# --- confirming by accepting ---------------------------------------------------------------


def test_agreement_of_an_accepting_type_is_ended_by_the_supplier_accepting_it():
    service = _service()
    task_id = _send(service)
    assert _inboxes(service, task_id) == ["sam"]
    assert service.allowed_actions(SUPPLIER, task_id) == ("accept", *COMMON[:2], "edit")
    task = service.act(SUPPLIER, task_id, "accept").task
    assert (task.state, task.is_open, task.resolved_at) == ("accepted", False, START)
    assert _inboxes(service, task_id) == []


def test_supplier_of_an_accepting_type_is_not_offered_an_upload_and_is_told_why():
    service = _service()
    task_id = _send(service)
    assert "upload_signed" not in service.allowed_actions(SUPPLIER, task_id)
    with pytest.raises(
        ActionNotAllowed,
        match=(
            r"'sent'; agreement type 'NDA' is confirmed by accepting it with 'accept'; "
            r"it takes no signed copy; allowed now: 'accept'"
        ),
    ):
        service.act(SUPPLIER, task_id, "upload_signed", UploadSigned(SIGNED))


# --- confirming with a signed copy ---------------------------------------------------------


def test_agreement_requiring_a_signature_is_confirmed_by_a_signed_pdf_the_requester_accepts():
    service = _service()
    task_id = _send(service, FRAMEWORK)
    assert service.allowed_actions(SUPPLIER, task_id)[0] == "upload_signed"
    task = service.act(SUPPLIER, task_id, "upload_signed", UploadSigned(SIGNED)).task
    assert (task.state, task.data.signed_copy, task.files) == ("signed", SIGNED, (SIGNED,))
    assert _inboxes(service, task_id) == ["bea"]
    assert service.allowed_actions(BUYER, task_id)[:3] == (
        "accept_signed",
        "reject_signed",
        "replace_document",
    )
    task = service.act(BUYER, task_id, "accept_signed").task
    assert (task.state, task.is_open) == ("accepted", False)
    assert _inboxes(service, task_id) == []


def test_accept_is_refused_where_the_agreement_type_requires_a_signed_copy():
    service = _service()
    task_id = _send(service, FRAMEWORK)
    assert "accept" not in service.allowed_actions(SUPPLIER, task_id)
    with pytest.raises(
        ActionNotAllowed,
        match=(
            r"agreement type 'Framework agreement' requires a signed copy \(PDF\) with "
            r"'upload_signed'; 'accept' is not enough; allowed now: 'upload_signed'"
        ),
    ):
        service.act(SUPPLIER, task_id, "accept")


def test_rejected_signed_copy_returns_to_the_supplier_who_uploads_again():
    service = _service()
    task_id = _signed_and_uploaded(service)
    task = service.act(BUYER, task_id, "reject_signed", RejectSigned("Page 3 is not signed")).task
    assert (task.state, task.data.reject_reason) == ("rejected", "Page 3 is not signed")
    assert _inboxes(service, task_id) == ["sam"]
    assert service.allowed_actions(SUPPLIER, task_id)[0] == "upload_signed"
    again = _file("signed-2.pdf", n=3)
    task = service.act(SUPPLIER, task_id, "upload_signed", UploadSigned(again)).task
    assert (task.state, task.data.signed_copy, task.data.reject_reason) == ("signed", again, None)
    assert task.files == (SIGNED, again)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            UploadSigned(_file("signed.docx", "application/msword")),
            r"'upload_signed' on task ACME-TASK-1 accepts only PDF \(application/pdf\); "
            r"'signed.docx' is application/msword",
        ),
        (None, "'upload_signed' on task ACME-TASK-1 needs a UploadSigned payload, got nothing"),
        (RejectSigned("x"), "needs a UploadSigned payload, got RejectSigned"),
    ],
)
def test_bad_signed_copy_is_refused_and_changes_nothing(payload, message):
    service = _service()
    task_id = _send(service, FRAMEWORK)
    before = service.repository.get(task_id)
    with pytest.raises(InvalidPayload, match=message):
        service.act(SUPPLIER, task_id, "upload_signed", payload)
    assert service.repository.get(task_id) is before
    assert _told(service) == [("sam", "opened")]


# --- the agreement document: reviewed at any time, revised by the requester -----------------


def test_both_sides_can_review_the_agreement_document_at_any_time_even_after_acceptance():
    service = _service()
    task_id = _send(service)
    service.act(SUPPLIER, task_id, "accept")
    for actor in (BUYER, SUPPLIER):
        task = service.get(actor, task_id)
        assert (task.data.document, task.data.agreement_type) == (_file(), "NDA")
    # Reading is not an action: the history holds only what changed the task.
    assert [e.action for e in service.get(BUYER, task_id).history] == ["open", "accept"]


def test_revised_agreement_replaces_the_document_and_waits_for_the_supplier_again():
    service = _service()
    task_id = _signed_and_uploaded(service)
    revised = _file("agreement-v2.pdf", n=4)
    task = service.act(
        BUYER, task_id, "replace_document", ReplaceDocument(revised, "clause 7 changed")
    ).task
    assert (task.state, task.data.document, task.data.signed_copy) == ("sent", revised, None)
    # The signed copy of the first version stays on file; the new one must be signed afresh.
    assert task.files == (SIGNED,)
    assert _inboxes(service, task_id) == ["sam"]


def test_requester_may_revise_an_agreement_the_supplier_has_not_answered_yet():
    service = _service()
    task_id = _send(service)
    revised = _file("agreement-v2.pdf", n=4)
    task = service.act(BUYER, task_id, "replace_document", ReplaceDocument(revised)).task
    assert (task.state, task.data.document, task.ball) == ("sent", revised, tf.Side.RECIPIENT)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            ReplaceDocument(_file("v2.odt", "application/vnd.oasis.opendocument.text")),
            r"'replace_document' on task ACME-TASK-1 accepts only PDF \(application/pdf\); "
            r"'v2.odt' is application/vnd.oasis.opendocument.text",
        ),
        (
            ReplaceDocument(_file()),
            "'agreement.pdf' is already the agreement document; send the revised file",
        ),
    ],
)
def test_bad_revision_is_refused(payload, message):
    service = _service()
    task_id = _send(service)
    with pytest.raises(InvalidPayload, match=message):
        service.act(BUYER, task_id, "replace_document", payload)


def test_accepted_agreement_cannot_be_revised():
    service = _service()
    task_id = _send(service)
    service.act(SUPPLIER, task_id, "accept")
    with pytest.raises(
        ActionNotAllowed,
        match=(
            r"'accepted'; 'replace_document' needs 'rejected' or 'sent' or 'signed'; "
            r"allowed now: 'comment'"
        ),
    ):
        service.act(BUYER, task_id, "replace_document", ReplaceDocument(_file(n=9)))


def test_agreement_document_must_be_a_pdf_and_a_refused_draft_stores_nothing():
    service = _service()
    data = Agreement("NDA", _file("nda.docx", "application/msword"))
    with pytest.raises(
        InvalidPayload,
        match=r"an agreement's document must be a PDF \(application/pdf\); 'nda.docx' is application/msword",
    ):
        _send(service, data)
    assert len(service.repository) == 0
    assert service.notifier.sent == []


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Agreement(" ", _file()), r"Agreement\.agreement_type must be a non-blank string"),
        (lambda: RejectSigned(""), r"RejectSigned\.reason must be a non-blank string"),
    ],
)
def test_blank_type_or_reason_is_invalid_payload(build, message):
    with pytest.raises(InvalidPayload, match=message):
        build()


# --- sides and states ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "actor", "action", "payload", "error", "message"),
    [
        (
            NDA,
            BUYER,
            "accept",
            None,
            PermissionDenied,
            r"'accept' on task ACME-TASK-1 is for the recipient \(supco\); bea@acme is the requester",
        ),
        (
            FRAMEWORK,
            BUYER,
            "upload_signed",
            UploadSigned(SIGNED),
            PermissionDenied,
            r"'upload_signed' on task ACME-TASK-1 is for the recipient \(supco\)",
        ),
        (
            NDA,
            SUPPLIER,
            "replace_document",
            ReplaceDocument(_file(n=5)),
            PermissionDenied,
            r"'replace_document' on task ACME-TASK-1 is for the requester \(acme\); "
            r"sam@supco is the recipient",
        ),
        (
            FRAMEWORK,
            BUYER,
            "accept_signed",
            None,
            ActionNotAllowed,
            r"'sent'; 'accept_signed' needs 'signed'",
        ),
        (
            FRAMEWORK,
            BUYER,
            "reject_signed",
            RejectSigned("x"),
            ActionNotAllowed,
            r"'reject_signed' needs 'signed'",
        ),
        (NDA, SUPPLIER, "sign", None, ActionNotAllowed, r"'sign' is not an action of workflow"),
    ],
)
def test_wrong_side_or_state_is_refused_with_a_typed_error(
    data, actor, action, payload, error, message
):
    service = _service()
    task_id = _send(service, data)
    with pytest.raises(error, match=message):
        service.act(actor, task_id, action, payload)


def test_supplier_cannot_accept_its_own_signed_copy():
    service = _service()
    task_id = _signed_and_uploaded(service)
    with pytest.raises(
        PermissionDenied, match=r"'accept_signed' on task ACME-TASK-1 is for the requester"
    ):
        service.act(SUPPLIER, task_id, "accept_signed")


def test_stranger_cannot_see_or_answer_an_agreement():
    service = _service()
    task_id = _send(service)
    with pytest.raises(TaskNotFound):
        service.act(STRANGER, task_id, "accept")
    with pytest.raises(TaskNotFound):
        service.get(STRANGER, task_id)


# --- notifications -------------------------------------------------------------------------


def test_each_step_notifies_the_other_side():
    service = _service()
    task_id = _send(service, FRAMEWORK)
    assert _told(service) == [("sam", "opened")]
    service.act(SUPPLIER, task_id, "upload_signed", UploadSigned(SIGNED))
    assert _told(service) == [("bea", "signed_copy_uploaded")]
    service.act(BUYER, task_id, "reject_signed", RejectSigned("unsigned"))
    assert _told(service) == [("sam", "signed_copy_rejected")]
    service.act(BUYER, task_id, "replace_document", ReplaceDocument(_file(n=6)))
    assert _told(service) == [("sam", "agreement_revised")]
    service.act(SUPPLIER, task_id, "upload_signed", UploadSigned(_file(n=7)))
    assert _told(service) == [("bea", "signed_copy_uploaded")]
    service.act(BUYER, task_id, "accept_signed")
    assert _told(service) == [("sam", "agreement_accepted")]


def test_accepting_notifies_the_requester():
    service = _service()
    task_id = _send(service)
    _told(service)
    service.act(SUPPLIER, task_id, "accept")
    assert _told(service) == [("bea", "agreement_accepted")]


# --- history, serialization, diagram, stateful -----------------------------------------------


def test_history_records_every_round():
    service = _service()
    task_id = _send(service, FRAMEWORK)
    steps = [
        (SUPPLIER, "upload_signed", UploadSigned(SIGNED)),
        (BUYER, "reject_signed", RejectSigned("unsigned")),
        (SUPPLIER, "upload_signed", UploadSigned(_file(n=3))),
        (BUYER, "accept_signed", None),
    ]
    for actor, action, payload in steps:
        service.clock.advance(timedelta(hours=1))
        service.act(actor, task_id, action, payload)
    task = service.repository.get(task_id)
    assert [(e.action, e.from_state, e.to_state) for e in task.history] == [
        ("open", None, "sent"),
        ("upload_signed", "sent", "signed"),
        ("reject_signed", "signed", "rejected"),
        ("upload_signed", "rejected", "signed"),
        ("accept_signed", "signed", "accepted"),
    ]
    assert service.task_at(BUYER, task_id, START + timedelta(hours=2)).state == "rejected"


def test_agreement_with_every_payload_round_trips_through_json():
    service = _service()
    task_id = _signed_and_uploaded(service)
    service.act(BUYER, task_id, "reject_signed", RejectSigned("unsigned"))
    service.act(BUYER, task_id, "replace_document", ReplaceDocument(_file(n=8), "v2"))
    task = service.repository.get(task_id)
    serializer = Serializer(REGISTRY)
    assert serializer.load_task(json.loads(json.dumps(serializer.dump_task(task)))) == task
    assert {type(e.payload).__name__ for e in task.history} == {
        "NewTask",
        "UploadSigned",
        "RejectSigned",
        "ReplaceDocument",
    }


def test_agreement_workflow_draws_as_mermaid():
    text = to_mermaid(AGREEMENT_WORKFLOW)
    assert "signed --> accepted : accept_signed (requester)" in text
    assert "sent --> accepted : accept (recipient)" in text


TestAgreementWorkflow = workflow_machine(REGISTRY, "agreement").TestCase
TestAgreementWorkflow.settings = settings(
    TestAgreementWorkflow.settings, stateful_step_count=25, deadline=None
)
