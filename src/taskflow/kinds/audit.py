"""Audits (SP3): the supplier marks the audit done, or adds PDF files for the requester to close."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import attrs

from taskflow.domain.common import common_actions
from taskflow.domain.registry import TaskKind
from taskflow.domain.task import OPEN, NewTask, Task
from taskflow.domain.validators import typed_fields
from taskflow.domain.values import Actor, Side, UserRef, not_blank
from taskflow.domain.workflow import State, Transition, Workflow
from taskflow.errors import InvalidPayload
from taskflow.kinds.payloads import AddFiles
from taskflow.kinds.rules import require_pdf

__all__ = [
    "ADD_FILES",
    "AUDIT",
    "AUDIT_WORKFLOW",
    "CLOSE",
    "MARK_DONE",
    "REQUEST_MORE",
    "AddFiles",
    "Audit",
    "RequestMore",
]

MARK_DONE = "mark_done"
ADD_FILES = "add_files"
CLOSE = "close"
REQUEST_MORE = "request_more"


@attrs.frozen(field_transformer=typed_fields)
class Audit:
    """Data of an audit: its type and date, where, who is responsible at the requester."""

    audit_type: str = attrs.field(validator=not_blank)
    audit_date: date | None = None
    responsible: UserRef | None = None
    location: str = ""
    more_reason: str | None = None


@attrs.frozen(field_transformer=typed_fields)
class RequestMore:
    """Payload of `request_more`: what is still missing."""

    reason: str = attrs.field(validator=not_blank)


def _check_new_audit(draft: NewTask, actor: Actor, at: datetime) -> None:
    responsible = draft.data.responsible
    if responsible is not None and responsible.company != actor.company:
        msg = (
            f"an audit's responsible user must belong to the requester {actor.company}; "
            f"{responsible} does not"
        )
        raise InvalidPayload(msg, field="data.responsible", action=OPEN)


def _check_add_files(task: Task, payload: AddFiles, actor: Actor, at: datetime) -> None:
    require_pdf(task, ADD_FILES, payload.files, field="files")


def _add_files(task: Task, payload: AddFiles, actor: Actor, at: datetime) -> dict[str, Any]:
    return {
        "data": attrs.evolve(task.data, more_reason=None),
        "files": (*task.files, *payload.files),
    }


def _request_more(task: Task, payload: RequestMore, actor: Actor, at: datetime) -> dict[str, Any]:
    return {"data": attrs.evolve(task.data, more_reason=payload.reason)}


REQUESTER = Side.REQUESTER
RECIPIENT = Side.RECIPIENT

AUDIT_WORKFLOW = Workflow(
    name="audit",
    description=(
        "The requester sends an audit; the supplier marks it done, or adds PDF files that the "
        "requester closes or answers by asking for more."
    ),
    initial="requested",
    open_check=_check_new_audit,
    states=(
        State("requested", waiting_on=RECIPIENT, label="Requested"),
        State("files_added", waiting_on=REQUESTER, label="Files received"),
        State("more_requested", waiting_on=RECIPIENT, label="More files requested"),
        State("done", final=True, label="Done"),
        State("closed", final=True, label="Closed"),
    ),
    transitions=(
        Transition(
            MARK_DONE,
            "requested",
            "done",
            RECIPIENT,
            events=("audit_done",),
            description="Mark the audit as done",
        ),
        Transition(
            ADD_FILES,
            {"requested", "more_requested"},
            "files_added",
            RECIPIENT,
            payload=AddFiles,
            check=_check_add_files,
            effect=_add_files,
            events=("audit_files_added",),
            description="Send one or more PDF files to the requester",
        ),
        Transition(
            CLOSE,
            {"files_added", "more_requested"},
            "closed",
            REQUESTER,
            events=("audit_closed",),
            description="Close the audit for good",
        ),
        Transition(
            REQUEST_MORE,
            "files_added",
            "more_requested",
            REQUESTER,
            payload=RequestMore,
            effect=_request_more,
            events=("audit_files_requested",),
            description="Ask the supplier for more files, saying what is missing",
        ),
        *common_actions(),
    ),
)

AUDIT = TaskKind(
    "audit",
    Audit,
    AUDIT_WORKFLOW,
    "Send a supplier an audit to mark done or answer with PDF files (SP3)",
)
