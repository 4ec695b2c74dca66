"""Agreements (SP2): the supplier accepts, or uploads a signed PDF where the agreement type needs one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from taskflow.domain.common import common_actions
from taskflow.domain.registry import TaskKind
from taskflow.domain.task import OPEN, NewTask, Task
from taskflow.domain.validators import typed_fields
from taskflow.domain.values import PDF, Actor, FileRef, Side, not_blank
from taskflow.domain.workflow import State, Transition, Workflow
from taskflow.errors import InvalidPayload
from taskflow.kinds.rules import require_pdf

__all__ = [
    "ACCEPT",
    "ACCEPT_SIGNED",
    "AGREEMENT",
    "AGREEMENT_WORKFLOW",
    "REJECT_SIGNED",
    "REPLACE_DOCUMENT",
    "UPLOAD_SIGNED",
    "Agreement",
    "RejectSigned",
    "ReplaceDocument",
    "UploadSigned",
]

ACCEPT = "accept"
UPLOAD_SIGNED = "upload_signed"
ACCEPT_SIGNED = "accept_signed"
REJECT_SIGNED = "reject_signed"
REPLACE_DOCUMENT = "replace_document"


@attrs.frozen(field_transformer=typed_fields)
class Agreement:
    """Data of an agreement: its type, the agreement document, and how the supplier confirms it.

    `requires_signed_copy` is what the agreement type asks for: False, the supplier accepts;
    True, the supplier uploads a signed copy (PDF) that the requester then accepts or rejects.
    """

    agreement_type: str = attrs.field(validator=not_blank)
    document: FileRef
    requires_signed_copy: bool = False
    signed_copy: FileRef | None = None
    reject_reason: str | None = None


@attrs.frozen(field_transformer=typed_fields)
class UploadSigned:
    """Payload of `upload_signed`: the signed copy of the agreement, as a PDF."""

    file: FileRef


@attrs.frozen(field_transformer=typed_fields)
class RejectSigned:
    """Payload of `reject_signed`: why the signed copy is not acceptable."""

    reason: str = attrs.field(validator=not_blank)


@attrs.frozen(field_transformer=typed_fields)
class ReplaceDocument:
    """Payload of `replace_document`: the revised agreement (PDF), and an optional note on it."""

    document: FileRef
    note: str = ""


def _how_confirmed(data: Agreement) -> str:
    if data.requires_signed_copy:
        return f"a signed copy (PDF) with '{UPLOAD_SIGNED}'"
    return f"accepting it with '{ACCEPT}'"


def _confirmed_by_accepting(task: Task, actor: Actor) -> str | None:
    data: Agreement = task.data
    if data.requires_signed_copy:
        return (
            f"agreement type '{data.agreement_type}' requires {_how_confirmed(data)}; "
            f"'{ACCEPT}' is not enough"
        )
    return None


def _confirmed_by_signed_copy(task: Task, actor: Actor) -> str | None:
    data: Agreement = task.data
    if not data.requires_signed_copy:
        return (
            f"agreement type '{data.agreement_type}' is confirmed by {_how_confirmed(data)}; "
            f"it takes no signed copy"
        )
    return None


def _check_new_agreement(draft: NewTask, actor: Actor, at: datetime) -> None:
    document = draft.data.document
    if document.media_type != PDF:
        msg = (
            f"an agreement's document must be a PDF ({PDF}); "
            f"'{document.name}' is {document.media_type}"
        )
        raise InvalidPayload(msg, field="data.document", action=OPEN)


def _check_upload_signed(task: Task, payload: UploadSigned, actor: Actor, at: datetime) -> None:
    require_pdf(task, UPLOAD_SIGNED, payload.file)


def _upload_signed(task: Task, payload: UploadSigned, actor: Actor, at: datetime) -> dict[str, Any]:
    data = attrs.evolve(task.data, signed_copy=payload.file, reject_reason=None)
    return {"data": data, "files": (*task.files, payload.file)}


def _reject_signed(task: Task, payload: RejectSigned, actor: Actor, at: datetime) -> dict[str, Any]:
    return {"data": attrs.evolve(task.data, reject_reason=payload.reason)}


def _check_replace(task: Task, payload: ReplaceDocument, actor: Actor, at: datetime) -> None:
    require_pdf(task, REPLACE_DOCUMENT, payload.document, field="document")
    if payload.document == task.data.document:
        msg = (
            f"'{REPLACE_DOCUMENT}' on task {task.number}: '{payload.document.name}' is already "
            "the agreement document; send the revised file"
        )
        raise InvalidPayload(msg, field="document", action=REPLACE_DOCUMENT)


def _replace(task: Task, payload: ReplaceDocument, actor: Actor, at: datetime) -> dict[str, Any]:
    # A revised agreement must be confirmed afresh: a signed copy of the old one no longer counts.
    data = attrs.evolve(task.data, document=payload.document, signed_copy=None, reject_reason=None)
    return {"data": data}


REQUESTER = Side.REQUESTER
RECIPIENT = Side.RECIPIENT

AGREEMENT_WORKFLOW = Workflow(
    name="agreement",
    description=(
        "The requester sends an agreement; the supplier accepts it, or uploads a signed copy "
        "where the agreement type requires one."
    ),
    initial="sent",
    open_check=_check_new_agreement,
    states=(
        State("sent", waiting_on=RECIPIENT, label="Awaiting confirmation"),
        State("signed", waiting_on=REQUESTER, label="Signed copy received"),
        State("rejected", waiting_on=RECIPIENT, label="Signed copy rejected"),
        State("accepted", final=True, label="Accepted"),
    ),
    transitions=(
        Transition(
            ACCEPT,
            "sent",
            "accepted",
            RECIPIENT,
            guard=_confirmed_by_accepting,
            events=("agreement_accepted",),
            description="Accept the agreement (types that need no signed copy)",
        ),
        Transition(
            UPLOAD_SIGNED,
            {"sent", "rejected"},
            "signed",
            RECIPIENT,
            payload=UploadSigned,
            guard=_confirmed_by_signed_copy,
            check=_check_upload_signed,
            effect=_upload_signed,
            events=("signed_copy_uploaded",),
            description="Upload the signed agreement as a PDF (types that require it)",
        ),
        Transition(
            ACCEPT_SIGNED,
            "signed",
            "accepted",
            REQUESTER,
            events=("agreement_accepted",),
            description="Accept the signed copy",
        ),
        Transition(
            REJECT_SIGNED,
            "signed",
            "rejected",
            REQUESTER,
            payload=RejectSigned,
            effect=_reject_signed,
            events=("signed_copy_rejected",),
            description="Reject the signed copy with a reason",
        ),
        Transition(
            REPLACE_DOCUMENT,
            {"sent", "signed", "rejected"},
            "sent",
            REQUESTER,
            payload=ReplaceDocument,
            check=_check_replace,
            effect=_replace,
            events=("agreement_revised",),
            description="Send a revised agreement; the supplier confirms it afresh",
        ),
        *common_actions(),
    ),
)

AGREEMENT = TaskKind(
    "agreement",
    Agreement,
    AGREEMENT_WORKFLOW,
    "Send a business partner an agreement to accept or to sign (SP2)",
)
