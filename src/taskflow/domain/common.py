"""The actions every task kind shares: comment, assign, claim from the Teambox, edit (C4, C7, C10)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from taskflow.domain.task import EDITABLE_FIELDS, Task
from taskflow.domain.validators import frozenset_of, one_of, optional_text, tuple_of, typed_fields
from taskflow.domain.values import (
    Actor,
    Comment,
    CompanyId,
    Priority,
    Side,
    UserRef,
    Visibility,
    aware,
    not_blank,
)
from taskflow.domain.workflow import ANY_STATE, BOTH_SIDES, OPEN_STATES, Audience, Transition
from taskflow.errors import InvalidPayload, InvalidWorkflow

__all__ = [
    "ASSIGN",
    "CLAIM",
    "COMMENT",
    "DEFAULT_EDITABLE",
    "EDIT",
    "AddComment",
    "Assign",
    "Edit",
    "common_actions",
]

COMMENT = "comment"
ASSIGN = "assign"
CLAIM = "claim"
EDIT = "edit"

# Who may edit which fields while a task is open (C10): the requester wrote the task and may
# change all of it; the recipient keeps the original submission intact and may only tag it.
DEFAULT_EDITABLE: Mapping[Side, frozenset[str]] = {
    Side.REQUESTER: EDITABLE_FIELDS,
    Side.RECIPIENT: frozenset({"tags"}),
}


def _visibility(value: Any) -> Visibility:
    return one_of(Visibility, value, "AddComment.visibility")


@attrs.frozen(field_transformer=typed_fields)
class AddComment:
    """Payload of `comment`: the text, and whether the business partner may read it."""

    text: str = attrs.field(validator=not_blank)
    visibility: Visibility = attrs.field(default=Visibility.PUBLIC, converter=_visibility)

    def visible_to_company(self, author_company: CompanyId, viewer_company: CompanyId) -> bool:
        """Tell whether a user of `viewer_company` may read this comment by `author_company`."""
        return self.visibility is Visibility.PUBLIC or author_company == viewer_company


def _non_empty_refs(value: Any) -> tuple[UserRef, ...]:
    refs = tuple_of(UserRef, value, "Assign.users", unique=True)
    if not refs:
        msg = "Assign.users must name at least one user"
        raise InvalidPayload(msg, field="users")
    return refs


@attrs.frozen(field_transformer=typed_fields)
class Assign:
    """Payload of `assign`: the users of the actor's company who now work on the task."""

    users: tuple[UserRef, ...] = attrs.field(converter=_non_empty_refs)


def _optional_not_blank(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        not_blank(instance, attribute, value)


def _optional_frozenset(value: Any) -> frozenset[str] | None:
    return None if value is None else frozenset_of(str, value, "Edit.tags")


def _optional_refs(value: Any) -> tuple[UserRef, ...] | None:
    return None if value is None else tuple_of(UserRef, value, "Edit.watchers", unique=True)


def _optional_priority(value: Any) -> Priority | None:
    return None if value is None else one_of(Priority, value, "Edit.priority")


@attrs.frozen(field_transformer=typed_fields)
class Edit:
    """Payload of `edit`: the fields to change; a field left None stays as it is."""

    subject: str | None = attrs.field(default=None, validator=_optional_not_blank)
    body: str | None = attrs.field(default=None, validator=optional_text)
    category: str | None = attrs.field(default=None, validator=_optional_not_blank)
    priority: Priority | None = attrs.field(default=None, converter=_optional_priority)
    tags: frozenset[str] | None = attrs.field(default=None, converter=_optional_frozenset)
    due_at: datetime | None = attrs.field(default=None, validator=aware)
    watchers: tuple[UserRef, ...] | None = attrs.field(default=None, converter=_optional_refs)

    def fields(self) -> dict[str, Any]:
        """Return the fields this edit sets, by name."""
        return {
            a.name: getattr(self, a.name)
            for a in attrs.fields(Edit)
            if getattr(self, a.name) is not None
        }


def _add_comment(task: Task, payload: AddComment, actor: Actor, at: datetime) -> dict[str, Any]:
    comment = Comment(actor.ref, at, payload.text, payload.visibility)
    return {"comments": (*task.comments, comment)}


def _add_comment_passing_ball(
    task: Task, payload: AddComment, actor: Actor, at: datetime
) -> dict[str, Any]:
    changes = _add_comment(task, payload, actor, at)
    sides = task.sides_of(actor.company)
    # A public comment hands an open task to the partner (SP5); inside one company it cannot.
    if task.is_open and payload.visibility is Visibility.PUBLIC and len(sides) == 1:
        (side,) = sides
        changes["ball"] = side.other
    return changes


def _own_company_only(task: Task, payload: Assign, actor: Actor, at: datetime) -> None:
    strangers = [str(r) for r in payload.users if r.company != actor.company]
    if strangers:
        msg = (
            f"'{ASSIGN}' on task {task.number} may name only users of {actor.company}; "
            f"not: {', '.join(strangers)}"
        )
        raise InvalidPayload(msg, field="users", action=ASSIGN)


def _replace_own_assignees(
    task: Task, company: CompanyId, refs: tuple[UserRef, ...]
) -> tuple[UserRef, ...]:
    return (*(r for r in task.assignees if r.company != company), *refs)


def _assign(task: Task, payload: Assign, actor: Actor, at: datetime) -> dict[str, Any]:
    return {"assignees": _replace_own_assignees(task, actor.company, payload.users)}


def _not_already_sole_assignee(task: Task, actor: Actor) -> str | None:
    if task.assignees_of(actor.company) == (actor.ref,):
        return f"{actor} is already the only assignee of {actor.company} on task {task.number}"
    return None


def _claim(task: Task, payload: None, actor: Actor, at: datetime) -> dict[str, Any]:
    return {"assignees": _replace_own_assignees(task, actor.company, (actor.ref,))}


def _check_edit(task: Task, payload: Edit, actor: Actor, at: datetime) -> None:
    # Which fields the actor may change is the authorizer's call, made before this check.
    wanted = payload.fields()
    if not wanted:
        msg = f"'{EDIT}' on task {task.number} names no field to change"
        raise InvalidPayload(msg, action=EDIT)
    parties = (task.requester.company, task.recipient)
    strangers = [str(r) for r in wanted.get("watchers", ()) if r.company not in parties]
    if strangers:
        msg = f"watchers of task {task.number} must belong to {parties}; not: {strangers}"
        raise InvalidPayload(msg, field="watchers", action=EDIT)


def _edit(task: Task, payload: Edit, actor: Actor, at: datetime) -> dict[str, Any]:
    return payload.fields()


def common_actions(
    *,
    editable: Mapping[Side, frozenset[str]] = DEFAULT_EDITABLE,
    public_comment_passes_ball: bool = False,
) -> tuple[Transition, ...]:
    """Return the shared actions to put in a workflow: comment, assign, claim and edit.

    `editable` says which fields each side may change with `edit`; it is kept on the edit
    transition (`Transition.editable`), where the authorizer reads it.
    """
    unknown = set().union(*editable.values()) - EDITABLE_FIELDS
    if unknown:
        msg = f"editable fields {sorted(unknown)} are not editable; choose from {sorted(EDITABLE_FIELDS)}"
        raise InvalidWorkflow(msg)
    comment_effect = _add_comment_passing_ball if public_comment_passes_ball else _add_comment
    return (
        Transition(
            COMMENT,
            ANY_STATE,
            None,
            BOTH_SIDES,
            payload=AddComment,
            effect=comment_effect,
            events=("commented",),
            notify=Audience.OTHER_SIDE,
            description="Comment, public to the partner or internal to the own company",
        ),
        Transition(
            ASSIGN,
            OPEN_STATES,
            None,
            BOTH_SIDES,
            payload=Assign,
            check=_own_company_only,
            effect=_assign,
            events=("assigned",),
            notify=Audience.NEW_ASSIGNEES,
            description="Set who of the own company works on the task",
        ),
        Transition(
            CLAIM,
            OPEN_STATES,
            None,
            BOTH_SIDES,
            guard=_not_already_sole_assignee,
            effect=_claim,
            events=("claimed",),
            notify=Audience.OWN_SIDE,
            description="Take the task from a colleague (Teambox)",
        ),
        Transition(
            EDIT,
            OPEN_STATES,
            None,
            BOTH_SIDES,
            payload=Edit,
            check=_check_edit,
            effect=_edit,
            events=("edited",),
            notify=Audience.OTHER_SIDE,
            description="Change subject, body, category, priority, tags, due date or watchers",
            editable=editable,
        ),
    )
