from datetime import UTC, date, datetime, timedelta

import pytest

import taskflow as tf
from taskflow import (
    PDF,
    ActionNotAllowed,
    Actor,
    FileRef,
    InvalidPayload,
    NewTask,
    PermissionDenied,
)
from taskflow.kinds.document import (
    Decline,
    DocumentRequest,
    ProductDocumentRequest,
    Reject,
    UploadDocument,
)

START = datetime(2026, 5, 4, 8, 30, tzinfo=UTC)
BUYER = Actor("bea", "acme", {"buyer"})
SUPPLIER = Actor("sam", "supco")
COLLEAGUE = Actor("sue", "supco")


def _file(name="cert.pdf", media_type=PDF, n=1):
    return FileRef(name, media_type, 1000 + n, f"sha256:{n:064x}", f"files/{n}")


def _service():
    return tf.TaskService(
        registry=tf.default_registry(),
        repository=tf.InMemoryRepository(),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )


def _request(service, data=None, kind="document_request"):
    data = data if data is not None else DocumentRequest("ISO 9001", requires_expiry=True)
    draft = NewTask("ISO 9001 certificate", "supco", data, assignees=[SUPPLIER.ref])
    return service.open(BUYER, kind, draft).task.id


def _inboxes(service, task_id):
    return [a.user for a in (BUYER, SUPPLIER) if task_id in {t.id for t in service.inbox(a)}]


NEXT_YEAR = date(2027, 5, 4)


def test_upload_then_accept_ends_the_request():
    service = _service()
    task_id = _request(service)
    assert _inboxes(service, task_id) == ["sam"]
    task = service.act(SUPPLIER, task_id, "upload", UploadDocument(_file(), NEXT_YEAR)).task
    assert (task.state, task.data.document, task.data.expires_on) == (
        "uploaded",
        _file(),
        NEXT_YEAR,
    )
    assert task.files == (_file(),)
    assert _inboxes(service, task_id) == ["bea"]
    task = service.act(BUYER, task_id, "accept").task
    assert (task.state, task.is_open, task.resolved_at) == ("accepted", False, START)
    assert _inboxes(service, task_id) == []


def test_rejected_upload_returns_task_to_supplier_inbox_with_the_reason():
    service = _service()
    task_id = _request(service)
    service.act(SUPPLIER, task_id, "upload", UploadDocument(_file(), NEXT_YEAR))
    task = service.act(BUYER, task_id, "reject", Reject("Certificate is for 2019")).task
    assert (task.state, task.data.reject_reason) == ("rejected", "Certificate is for 2019")
    assert _inboxes(service, task_id) == ["sam"]
    assert service.allowed_actions(SUPPLIER, task_id)[:2] == ("upload", "decline")
    task = service.act(SUPPLIER, task_id, "upload", UploadDocument(_file(n=2), NEXT_YEAR)).task
    assert task.files == (_file(), _file(n=2))
    assert task.data.document == _file(n=2)


def test_decline_then_acknowledge_ends_the_request():
    service = _service()
    task_id = _request(service)
    task = service.act(SUPPLIER, task_id, "decline", Decline("We are not certified")).task
    assert (task.state, task.data.decline_reason) == ("declined", "We are not certified")
    assert _inboxes(service, task_id) == ["bea"]
    task = service.act(BUYER, task_id, "acknowledge").task
    assert (task.state, task.is_open) == ("acknowledged", False)


def test_decline_then_request_again_returns_task_to_supplier():
    service = _service()
    task_id = _request(service)
    service.act(SUPPLIER, task_id, "decline", Decline("Not yet"))
    task = service.act(BUYER, task_id, "request_again").task
    assert task.state == "requested"
    assert _inboxes(service, task_id) == ["sam"]
    task = service.act(SUPPLIER, task_id, "upload", UploadDocument(_file(), NEXT_YEAR)).task
    assert (task.state, task.data.decline_reason) == ("uploaded", None)


def test_decline_is_possible_after_a_rejection():
    service = _service()
    task_id = _request(service)
    service.act(SUPPLIER, task_id, "upload", UploadDocument(_file(), NEXT_YEAR))
    service.act(BUYER, task_id, "reject", Reject("wrong"))
    assert service.act(SUPPLIER, task_id, "decline", Decline("none")).task.state == "declined"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            UploadDocument(_file("cert.png", "image/png"), NEXT_YEAR),
            r"accepts only PDF \(application/pdf\); 'cert.png' is image/png",
        ),
        (UploadDocument(_file()), "needs an expiry date after 2026-05-04"),
        (
            UploadDocument(_file(), date(2026, 5, 4)),
            "expiry date 2026-05-04 is not in the future; it must be after 2026-05-04",
        ),
        (UploadDocument(_file(), date(2020, 1, 1)), "expiry date 2020-01-01 is not in the future"),
        (None, "needs a UploadDocument payload, got nothing"),
        (Decline("x"), "needs a UploadDocument payload, got Decline"),
    ],
)
def test_bad_upload_is_refused_and_changes_nothing(payload, message):
    service = _service()
    task_id = _request(service)
    before = service.repository.get(task_id)
    with pytest.raises(InvalidPayload, match=message):
        service.act(SUPPLIER, task_id, "upload", payload)
    assert service.repository.get(task_id) is before


def test_upload_without_expiry_is_fine_when_the_type_needs_none():
    service = _service()
    task_id = _request(service, DocumentRequest("Price list"))
    task = service.act(SUPPLIER, task_id, "upload", UploadDocument(_file())).task
    assert (task.state, task.data.expires_on) == ("uploaded", None)


def test_expiry_is_compared_with_the_date_at_upload_time():
    service = _service()
    task_id = _request(service)
    service.clock.set(datetime(2027, 5, 4, 9, tzinfo=UTC))
    with pytest.raises(InvalidPayload, match="expiry date 2027-05-04 is not in the future"):
        service.act(SUPPLIER, task_id, "upload", UploadDocument(_file(), NEXT_YEAR))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Decline(""), r"Decline\.explanation must be a non-blank string"),
        (lambda: Reject("   "), r"Reject\.reason must be a non-blank string"),
        (lambda: DocumentRequest(""), r"DocumentRequest\.document_type must be a non-blank"),
        (lambda: ProductDocumentRequest("ISO", " "), r"ProductDocumentRequest\.product must be"),
        (lambda: FileRef("a.pdf", "PDF", 1, "d", "k"), "media_type must look like 'type/subtype'"),
        (lambda: FileRef("a.pdf", PDF, -1, "d", "k"), r"FileRef\.size must be a whole number"),
    ],
)
def test_missing_reason_or_bad_value_is_invalid_payload(build, message):
    with pytest.raises(InvalidPayload, match=message):
        build()


@pytest.mark.parametrize(
    ("actor", "action", "payload", "error", "message"),
    [
        (
            BUYER,
            "upload",
            UploadDocument(_file(), NEXT_YEAR),
            PermissionDenied,
            "for the recipient",
        ),
        (SUPPLIER, "accept", None, ActionNotAllowed, "'accept' needs 'uploaded'"),
        (BUYER, "accept", None, ActionNotAllowed, "'accept' needs 'uploaded'"),
        (SUPPLIER, "reject", Reject("x"), ActionNotAllowed, "'reject' needs 'uploaded'"),
        (BUYER, "acknowledge", None, ActionNotAllowed, "'acknowledge' needs 'declined'"),
        (BUYER, "request_again", None, ActionNotAllowed, "'request_again' needs 'declined'"),
    ],
)
def test_wrong_side_or_state_is_refused_with_a_typed_error(actor, action, payload, error, message):
    service = _service()
    task_id = _request(service)
    with pytest.raises(error, match=message):
        service.act(actor, task_id, action, payload)


def test_supplier_cannot_accept_its_own_upload():
    service = _service()
    task_id = _request(service)
    service.act(SUPPLIER, task_id, "upload", UploadDocument(_file(), NEXT_YEAR))
    with pytest.raises(PermissionDenied, match="'accept' on task ACME-TASK-1 is for the requester"):
        service.act(COLLEAGUE, task_id, "accept")


def test_accepted_request_refuses_further_answers_listing_what_is_left():
    service = _service()
    task_id = _request(service)
    service.act(SUPPLIER, task_id, "upload", UploadDocument(_file(), NEXT_YEAR))
    service.act(BUYER, task_id, "accept")
    with pytest.raises(
        ActionNotAllowed, match="'accepted'; 'reject' needs 'uploaded'; allowed now: 'comment'"
    ):
        service.act(BUYER, task_id, "reject", Reject("late"))


def test_product_document_request_carries_the_product():
    service = _service()
    data = ProductDocumentRequest("Safety data sheet", "Solvent X-200")
    task_id = _request(service, data, kind="product_document_request")
    task = service.act(SUPPLIER, task_id, "upload", UploadDocument(_file())).task
    assert (task.kind, task.data.product, task.state) == (
        "product_document_request",
        "Solvent X-200",
        "uploaded",
    )


def test_document_request_refuses_product_document_data_and_vice_versa():
    service = _service()
    with pytest.raises(InvalidPayload, match="needs data of type DocumentRequest"):
        _request(service, ProductDocumentRequest("SDS", "X"))
    with pytest.raises(InvalidPayload, match="needs data of type ProductDocumentRequest"):
        _request(service, DocumentRequest("SDS"), kind="product_document_request")


def test_history_records_every_step_of_the_story():
    service = _service()
    task_id = _request(service)
    steps = [
        (SUPPLIER, "upload", UploadDocument(_file(), NEXT_YEAR)),
        (BUYER, "reject", Reject("wrong")),
        (SUPPLIER, "upload", UploadDocument(_file(n=2), NEXT_YEAR)),
        (BUYER, "accept", None),
    ]
    for actor, action, payload in steps:
        service.clock.advance(timedelta(hours=1))
        service.act(actor, task_id, action, payload)
    task = service.repository.get(task_id)
    assert [(e.action, e.from_state, e.to_state) for e in task.history] == [
        ("open", None, "requested"),
        ("upload", "requested", "uploaded"),
        ("reject", "uploaded", "rejected"),
        ("upload", "rejected", "uploaded"),
        ("accept", "uploaded", "accepted"),
    ]
    assert task.version == 5
    assert (
        service.task_at(BUYER, task_id, START + timedelta(hours=2, minutes=1)).state == "rejected"
    )
