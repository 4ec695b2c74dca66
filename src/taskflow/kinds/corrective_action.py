"""Corrective actions (SP5): the supplier remedies a problem; the requester closes or reopens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from taskflow.domain.common import common_actions
from taskflow.domain.registry import TaskKind
from taskflow.domain.task import OPEN, NewTask, Task
from taskflow.domain.validators import typed_fields
from taskflow.domain.values import (
    Actor,
    Side,
    blank_to_none,
    not_blank,
    optional_text,
    whole_number,
)
from taskflow.domain.workflow import BOTH_SIDES, OPEN_STATES, Audience, State, Transition, Workflow
from taskflow.errors import InvalidPayload
from taskflow.kinds.payloads import AddFiles, Reopen
from taskflow.kinds.rules import record_reopen

__all__ = [
    "ADD_FILES",
    "CLOSE",
    "CORRECTIVE_ACTION",
    "CORRECTIVE_ACTION_WORKFLOW",
    "REOPEN",
    "RESOLVE",
    "AddFiles",
    "CorrectiveAction",
    "Reopen",
    "Resolve",
]

ADD_FILES = "add_files"
RESOLVE = "resolve"
CLOSE = "close"
REOPEN = "reopen"


@attrs.frozen(field_transformer=typed_fields)
class CorrectiveAction:
    """Data of a corrective action: the problem, where it comes from, and the supplier's answer.

    The deadline is the task's `due_at`, so overdue queries and edits work as for every task.
    `reopen_reason` is the open round's reason (a resolve answers and clears it; the history
    keeps every round); `reopen_count` counts the reopens.
    """

    problem: str = attrs.field(validator=not_blank)
    reference: str | None = attrs.field(
        default=None, converter=blank_to_none, validator=optional_text
    )
    root_cause: str | None = attrs.field(
        default=None, converter=blank_to_none, validator=optional_text
    )
    actions_taken: str | None = attrs.field(
        default=None, converter=blank_to_none, validator=optional_text
    )
    reopen_reason: str | None = attrs.field(
        default=None, converter=blank_to_none, validator=optional_text
    )
    reopen_count: int = attrs.field(default=0, validator=whole_number)


@attrs.frozen(field_transformer=typed_fields)
class Resolve:
    """Payload of `resolve`: what the supplier did about the problem, and its root cause."""

    actions_taken: str = attrs.field(validator=not_blank)
    root_cause: str | None = attrs.field(
        default=None, converter=blank_to_none, validator=optional_text
    )


def _nothing_answered_yet(draft: NewTask, actor: Actor, at: datetime) -> None:
    data = draft.data
    answered = [
        name
        for name in ("root_cause", "actions_taken", "reopen_reason")
        if getattr(data, name) is not None
    ]
    if data.reopen_count:
        answered.append("reopen_count")
    if answered:
        msg = (
            f"a new corrective action cannot carry {', '.join(answered)}: "
            "the supplier's answer and the reopen rounds are set by actions"
        )
        raise InvalidPayload(msg, field=f"data.{answered[0]}", action=OPEN)


def _check_new_files(task: Task, payload: AddFiles, actor: Actor, at: datetime) -> None:
    attached = {f.digest: f.name for f in task.files}
    again = [
        f"'{f.name}' (as '{attached[f.digest]}')" for f in payload.files if f.digest in attached
    ]
    if again:
        msg = (
            f"'{ADD_FILES}' on task {task.number}: already attached: {', '.join(again)}; "
            "add only files the task does not hold yet"
        )
        raise InvalidPayload(msg, field="files", action=ADD_FILES)


def _add_files(task: Task, payload: AddFiles, actor: Actor, at: datetime) -> dict[str, Any]:
    return {"files": (*task.files, *payload.files)}


def _resolve(task: Task, payload: Resolve, actor: Actor, at: datetime) -> dict[str, Any]:
    data = attrs.evolve(
        task.data,
        actions_taken=payload.actions_taken,
        root_cause=payload.root_cause,
        reopen_reason=None,
    )
    return {"data": data}


REQUESTER = Side.REQUESTER
RECIPIENT = Side.RECIPIENT

CORRECTIVE_ACTION_WORKFLOW = Workflow(
    name="corrective_action",
    description=(
        "The requester asks the supplier to remedy a problem; the supplier declares it resolved; "
        "the requester closes it for good or reopens it, as often as needed."
    ),
    initial="requested",
    open_check=_nothing_answered_yet,
    states=(
        State("requested", waiting_on=RECIPIENT, label="Requested"),
        State("resolved", waiting_on=REQUESTER, label="Resolved"),
        State("reopened", waiting_on=RECIPIENT, label="Reopened"),
        State("closed", final=True, label="Closed"),
    ),
    transitions=(
        Transition(
            ADD_FILES,
            OPEN_STATES,
            None,
            BOTH_SIDES,
            payload=AddFiles,
            check=_check_new_files,
            effect=_add_files,
            events=("files_added",),
            notify=Audience.OTHER_SIDE,
            description="Attach files, e.g. a statement of the actions taken",
        ),
        Transition(
            RESOLVE,
            {"requested", "reopened"},
            "resolved",
            RECIPIENT,
            payload=Resolve,
            effect=_resolve,
            events=("corrective_action_resolved",),
            notify=Audience.OTHER_SIDE,
            description="Declare the problem resolved, saying what was done",
        ),
        Transition(
            CLOSE,
            "resolved",
            "closed",
            REQUESTER,
            events=("corrective_action_closed",),
            notify=Audience.OTHER_SIDE,
            description="Close the corrective action for good",
        ),
        Transition(
            REOPEN,
            "resolved",
            "reopened",
            REQUESTER,
            payload=Reopen,
            effect=record_reopen,
            events=("corrective_action_reopened",),
            notify=Audience.OTHER_SIDE,
            description="Reopen it with a reason: back to the supplier",
        ),
        # A public comment hands the task to the partner and tells them (SP5).
        *common_actions(public_comment_passes_ball=True),
    ),
)

CORRECTIVE_ACTION = TaskKind(
    "corrective_action",
    CorrectiveAction,
    CORRECTIVE_ACTION_WORKFLOW,
    "Ask a supplier to remedy a problem; close it or reopen it until it is resolved (SP5)",
)
