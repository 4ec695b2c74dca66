"""General tasks (SP7): the supplier answers with a PDF; the requester accepts it or asks again."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from taskflow.domain.common import common_actions
from taskflow.domain.registry import TaskKind
from taskflow.domain.task import Task
from taskflow.domain.validators import typed_fields
from taskflow.domain.values import Actor, FileRef, Side
from taskflow.domain.workflow import State, Transition, Workflow
from taskflow.kinds.payloads import AskAgain
from taskflow.kinds.rules import require_pdf

__all__ = [
    "ACCEPT",
    "ASK_AGAIN",
    "GENERAL",
    "GENERAL_WORKFLOW",
    "UPLOAD",
    "AskAgain",
    "GeneralRequest",
    "UploadAnswer",
]

UPLOAD = "upload"
ACCEPT = "accept"
ASK_AGAIN = "ask_again"


@attrs.frozen(field_transformer=typed_fields)
class GeneralRequest:
    """Data of a general task: the answer so far, and why the requester asked again if it did.

    What is asked is the task's subject and body; a general task needs nothing more.
    """

    answer: FileRef | None = None
    ask_again_reason: str | None = None


@attrs.frozen(field_transformer=typed_fields)
class UploadAnswer:
    """Payload of `upload`: the answer, as a PDF."""

    file: FileRef


def _check_upload(task: Task, payload: UploadAnswer, actor: Actor, at: datetime) -> None:
    require_pdf(task, UPLOAD, payload.file)


def _upload(task: Task, payload: UploadAnswer, actor: Actor, at: datetime) -> dict[str, Any]:
    data = attrs.evolve(task.data, answer=payload.file, ask_again_reason=None)
    return {"data": data, "files": (*task.files, payload.file)}


def _ask_again(task: Task, payload: AskAgain, actor: Actor, at: datetime) -> dict[str, Any]:
    return {"data": attrs.evolve(task.data, ask_again_reason=payload.reason)}


REQUESTER = Side.REQUESTER
RECIPIENT = Side.RECIPIENT

GENERAL_WORKFLOW = Workflow(
    name="general",
    description="The requester asks for something; the supplier answers with a PDF.",
    initial="requested",
    states=(
        State("requested", waiting_on=RECIPIENT, label="Requested"),
        State("answered", waiting_on=REQUESTER, label="Answered"),
        State("asked_again", waiting_on=RECIPIENT, label="Asked again"),
        State("accepted", final=True, label="Accepted"),
    ),
    transitions=(
        Transition(
            UPLOAD,
            {"requested", "asked_again"},
            "answered",
            RECIPIENT,
            payload=UploadAnswer,
            check=_check_upload,
            effect=_upload,
            events=("answer_uploaded",),
            description="Answer with a PDF file",
        ),
        Transition(
            ACCEPT,
            "answered",
            "accepted",
            REQUESTER,
            events=("answer_accepted",),
            description="Accept the answer",
        ),
        Transition(
            ASK_AGAIN,
            "answered",
            "asked_again",
            REQUESTER,
            payload=AskAgain,
            effect=_ask_again,
            events=("asked_again",),
            description="Ask again, saying why the answer does not do",
        ),
        *common_actions(),
    ),
)

GENERAL = TaskKind(
    "general",
    GeneralRequest,
    GENERAL_WORKFLOW,
    "Ask a supplier for anything, answered with a PDF (SP7)",
)
