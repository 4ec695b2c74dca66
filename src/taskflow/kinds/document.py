"""Document and product-document requests (SP1): the supplier uploads a PDF or declines."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import attrs

from taskflow.domain._fast import evolver
from taskflow.domain.common import common_actions
from taskflow.domain.registry import TaskKind
from taskflow.domain.task import Task
from taskflow.domain.validators import typed_fields
from taskflow.domain.values import Actor, FileRef, Side, not_blank
from taskflow.domain.workflow import State, Transition, Workflow
from taskflow.errors import InvalidPayload
from taskflow.kinds.rules import require_pdf

__all__ = [
    "ACCEPT",
    "ACKNOWLEDGE",
    "DECLINE",
    "DOCUMENT_REQUEST",
    "DOCUMENT_WORKFLOW",
    "PRODUCT_DOCUMENT_REQUEST",
    "REJECT",
    "REQUEST_AGAIN",
    "UPLOAD",
    "Decline",
    "DocumentRequest",
    "ProductDocumentRequest",
    "Reject",
    "UploadDocument",
]

UPLOAD = "upload"
DECLINE = "decline"
ACCEPT = "accept"
REJECT = "reject"
ACKNOWLEDGE = "acknowledge"
REQUEST_AGAIN = "request_again"


@attrs.frozen(field_transformer=typed_fields)
class DocumentRequest:
    """Data of a document request: which document, and the answer given so far."""

    document_type: str = attrs.field(validator=not_blank)
    requires_expiry: bool = False
    document: FileRef | None = None
    expires_on: date | None = None
    decline_reason: str | None = None
    reject_reason: str | None = None


@attrs.frozen(field_transformer=typed_fields)
class ProductDocumentRequest:
    """Data of a product-document request: a document request about one product."""

    document_type: str = attrs.field(validator=not_blank)
    product: str = attrs.field(validator=not_blank)
    requires_expiry: bool = False
    document: FileRef | None = None
    expires_on: date | None = None
    decline_reason: str | None = None
    reject_reason: str | None = None


# The effects copy the data validating only the fields they set (its other fields were valid
# already), for both data types; another type (a host's subclass) takes attrs' own path.
_EVOLVERS: dict[type, Callable[..., Any]] = {
    DocumentRequest: evolver(DocumentRequest),
    ProductDocumentRequest: evolver(ProductDocumentRequest),
}


def _evolve(data: Any, **changes: Any) -> Any:
    fast = _EVOLVERS.get(type(data))
    return attrs.evolve(data, **changes) if fast is None else fast(data, **changes)


@attrs.frozen(field_transformer=typed_fields)
class UploadDocument:
    """Payload of `upload`: the PDF, and its expiry date where the document type needs one."""

    file: FileRef
    expires_on: date | None = None


@attrs.frozen(field_transformer=typed_fields)
class Decline:
    """Payload of `decline` ("I don't have this document"): the explanation for the requester."""

    explanation: str = attrs.field(validator=not_blank)


@attrs.frozen(field_transformer=typed_fields)
class Reject:
    """Payload of `reject`: why the uploaded document is not acceptable."""

    reason: str = attrs.field(validator=not_blank)


def _check_upload(task: Task, payload: UploadDocument, actor: Actor, at: datetime) -> None:
    require_pdf(task, UPLOAD, payload.file)
    today = at.date()
    if payload.expires_on is None:
        if task.data.requires_expiry:
            msg = (
                f"'{UPLOAD}' on task {task.number}: document type "
                f"'{task.data.document_type}' needs an expiry date after {today.isoformat()}"
            )
            raise InvalidPayload(msg, field="expires_on", action=UPLOAD)
    elif payload.expires_on <= today:
        msg = (
            f"'{UPLOAD}' on task {task.number}: expiry date {payload.expires_on.isoformat()} "
            f"is not in the future; it must be after {today.isoformat()}"
        )
        raise InvalidPayload(msg, field="expires_on", action=UPLOAD)


def _upload(task: Task, payload: UploadDocument, actor: Actor, at: datetime) -> dict[str, Any]:
    # A new answer: the reasons given for the last one (a decline, a rejection) are done with.
    data = _evolve(
        task.data,
        document=payload.file,
        expires_on=payload.expires_on,
        decline_reason=None,
        reject_reason=None,
    )
    return {"data": data, "files": (*task.files, payload.file)}


def _decline(task: Task, payload: Decline, actor: Actor, at: datetime) -> dict[str, Any]:
    # Declining answers "no document": a rejected upload is no longer the answer (it stays in
    # `files` and in the history), nor is the reason it was rejected.
    data = attrs.evolve(
        task.data,
        document=None,
        expires_on=None,
        decline_reason=payload.explanation,
        reject_reason=None,
    )
    return {"data": data}


def _reject(task: Task, payload: Reject, actor: Actor, at: datetime) -> dict[str, Any]:
    return {"data": _evolve(task.data, reject_reason=payload.reason)}


def _upload_schema_1(
    task: Task, payload: UploadDocument, actor: Actor, at: datetime
) -> dict[str, Any]:
    # Before issue 9 an upload kept `reject_reason`: histories stored without facts were made so.
    data = attrs.evolve(
        task.data, document=payload.file, expires_on=payload.expires_on, decline_reason=None
    )
    return {"data": data, "files": (*task.files, payload.file)}


def _decline_schema_1(task: Task, payload: Decline, actor: Actor, at: datetime) -> dict[str, Any]:
    # Before issue 9 a decline kept the rejected document and its reason.
    return {"data": attrs.evolve(task.data, decline_reason=payload.explanation)}


REQUESTER = Side.REQUESTER
RECIPIENT = Side.RECIPIENT

DOCUMENT_WORKFLOW = Workflow(
    name="document_request",
    description="The requester asks for a document; the supplier uploads a PDF or declines.",
    initial="requested",
    states=(
        State("requested", waiting_on=RECIPIENT, label="Requested"),
        State("uploaded", waiting_on=REQUESTER, label="Uploaded"),
        State("rejected", waiting_on=RECIPIENT, label="Rejected"),
        State("declined", waiting_on=REQUESTER, label="Not available"),
        State("accepted", final=True, label="Accepted"),
        State("acknowledged", final=True, label="Acknowledged"),
    ),
    transitions=(
        Transition(
            UPLOAD,
            {"requested", "rejected"},
            "uploaded",
            RECIPIENT,
            payload=UploadDocument,
            check=_check_upload,
            effect=_upload,
            schema_1_effect=_upload_schema_1,
            events=("document_uploaded",),
            description="Upload the document as a PDF",
        ),
        Transition(
            DECLINE,
            {"requested", "rejected"},
            "declined",
            RECIPIENT,
            payload=Decline,
            effect=_decline,
            schema_1_effect=_decline_schema_1,
            events=("document_declined",),
            description="I don't have this document",
        ),
        Transition(
            ACCEPT,
            "uploaded",
            "accepted",
            REQUESTER,
            events=("document_accepted",),
            description="Accept the uploaded document",
        ),
        Transition(
            REJECT,
            "uploaded",
            "rejected",
            REQUESTER,
            payload=Reject,
            effect=_reject,
            events=("document_rejected",),
            description="Reject the document with a reason",
        ),
        Transition(
            ACKNOWLEDGE,
            "declined",
            "acknowledged",
            REQUESTER,
            events=("decline_acknowledged",),
            description="Accept that there is no document",
        ),
        Transition(
            REQUEST_AGAIN,
            "declined",
            "requested",
            REQUESTER,
            events=("document_requested_again",),
            description="Ask for the document again",
        ),
        *common_actions(),
    ),
)

DOCUMENT_REQUEST = TaskKind(
    "document_request",
    DocumentRequest,
    DOCUMENT_WORKFLOW,
    "Ask a business partner for a document (SP1)",
)
PRODUCT_DOCUMENT_REQUEST = TaskKind(
    "product_document_request",
    ProductDocumentRequest,
    DOCUMENT_WORKFLOW,
    "Ask a supplier for a document about one of its products (SP1)",
)
