"""Booking tasks (BK1-BK5, seed 000): a tour operator's back-office tasks about bookings.

A booking task lives inside one company (the operator's staff on both sides). Its action (BK1)
is chosen when it is opened and may change while it is unresolved; each action has its own
way of being resolved (BK3). A task is tied to a booking (its subject defaults to the booking
reference) or standalone, for an existing customer or a new customer's name (BK2). A due date
is required. Creating or updating a booking task notifies nobody (seed 000).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from taskflow.domain.authorization import DEFAULT_AUTHORIZER, Authorizer, RoleMatrix
from taskflow.domain.common import common_actions
from taskflow.domain.notifications import Notification
from taskflow.domain.registry import TaskKind
from taskflow.domain.task import OPEN, DomainEvent, NewTask, Task
from taskflow.domain.validators import excerpt, member_or_value, typed_fields
from taskflow.domain.values import (
    Actor,
    CompanyId,
    Side,
    UserRef,
    blank_to_none,
    not_blank,
    optional_text,
)
from taskflow.domain.workflow import BOTH_SIDES, Audience, Operation, State, Transition, Workflow
from taskflow.errors import InvalidPayload

__all__ = [
    "BOOKING_MADE",
    "BOOKING_ROLES",
    "BOOKING_TASK",
    "BOOKING_TASK_WORKFLOW",
    "CHANGE_ACTION",
    "MARK_RESOLVED",
    "TIED_ACTIONS",
    "BookingAction",
    "BookingMade",
    "BookingTask",
    "ChangeAction",
    "MarkResolved",
    "Resolution",
    "booking_role_matrix",
    "booking_task_draft",
    "notify_nobody",
]

CHANGE_ACTION = "change_action"
MARK_RESOLVED = "mark_resolved"
BOOKING_MADE = "booking_made"


class BookingAction(enum.StrEnum):
    """What a booking task asks the back office to do (BK1)."""

    NEW_BOOKING = "new_booking"
    UPDATE_BOOKING = "update_booking"
    CANCEL_BOOKING = "cancel_booking"
    REFUND = "refund"
    QUESTION = "question"
    TASK = "task"
    IGNORE = "ignore"


class Resolution(enum.StrEnum):
    """How a booking task was resolved (BK3)."""

    BOOKING_MADE = "booking_made"  # the host's booking flow made the booking: resolved by itself
    BY_HAND = "by_hand"  # marked resolved after the work was done (outside the flow, too)
    ANSWERED = "answered"  # a question, with its answer recorded
    WITHOUT_ACTION = "without_action"  # an ignored task closed without further action


TIED_ACTIONS: frozenset[BookingAction] = frozenset(
    {BookingAction.UPDATE_BOOKING, BookingAction.CANCEL_BOOKING, BookingAction.REFUND}
)
"""The actions that need a booking: update, cancel and refund change an existing booking."""

# The role matrix a tour operator expects (BK5, C11); seed 000's table lost its marks. Agents
# take the customer's request and may not close the work; back-office users and admins may.
BOOKING_ROLES: Mapping[str, frozenset[Operation]] = {
    "backoffice_user": frozenset(Operation),
    "admin": frozenset(Operation),
    "agent": frozenset({Operation.CREATE, Operation.SEE, Operation.MODIFY}),
}


def _action(value: Any) -> Any:
    # Refused by `_is_action` below with a message naming the field and the actions.
    return member_or_value(BookingAction, value)


def _is_action(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, BookingAction):
        allowed = ", ".join(repr(a.value) for a in BookingAction)
        msg = f"{type(instance).__name__}.{attribute.name} must be one of {allowed}, got {excerpt(value)}"
        raise InvalidPayload(msg, field=attribute.name)


def _optional_resolution(value: Any) -> Any:
    return member_or_value(Resolution, value)


def _is_resolution(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, Resolution):
        allowed = ", ".join(repr(r.value) for r in Resolution)
        msg = f"BookingTask.resolution must be None or one of {allowed}, got {excerpt(value)}"
        raise InvalidPayload(msg, field=attribute.name)


def _text(value: Any) -> Any:
    value = blank_to_none(value)
    return value.strip() if isinstance(value, str) else value


@attrs.frozen(kw_only=True, field_transformer=typed_fields)
class BookingTask:
    """Data of a booking task: its action, the booking or customer it is about, how it ended.

    `booking_ref` ties the task to a booking (BK2); a standalone task names an existing
    customer (`customer_id`) or a new customer (`customer_name`). `answer` and `resolution`
    are set when the task is resolved, never at opening.
    """

    action: BookingAction = attrs.field(converter=_action, validator=_is_action)
    booking_ref: str | None = attrs.field(default=None, converter=_text, validator=optional_text)
    customer_id: str | None = attrs.field(default=None, converter=_text, validator=optional_text)
    customer_name: str | None = attrs.field(default=None, converter=_text, validator=optional_text)
    answer: str | None = attrs.field(default=None, converter=_text, validator=optional_text)
    resolution: Resolution | None = attrs.field(
        default=None, converter=_optional_resolution, validator=_is_resolution
    )

    @property
    def standalone(self) -> bool:
        """Tell whether the task is tied to no booking (BK2)."""
        return self.booking_ref is None


@attrs.frozen(field_transformer=typed_fields)
class ChangeAction:
    """Payload of `change_action`: the new action, and the booking to tie the task to, if any."""

    action: BookingAction = attrs.field(converter=_action, validator=_is_action)
    booking_ref: str | None = attrs.field(default=None, converter=_text, validator=optional_text)


@attrs.frozen(field_transformer=typed_fields)
class MarkResolved:
    """Payload of `mark_resolved`: the answer (required for a question) and the booking made, if any.

    `booking_ref` names the booking a new-booking task's booking was made as, outside the flow.
    An ignored task resolved so is closed without action.
    """

    answer: str | None = attrs.field(default=None, converter=_text, validator=optional_text)
    booking_ref: str | None = attrs.field(default=None, converter=_text, validator=optional_text)


@attrs.frozen(field_transformer=typed_fields)
class BookingMade:
    """Payload of `booking_made`: the booking the host's booking flow made for a new-booking task."""

    booking_ref: str = attrs.field(converter=_text, validator=not_blank)


def booking_task_draft(
    company: CompanyId,
    action: BookingAction | str,
    due_at: datetime,
    *,
    booking_ref: str | None = None,
    customer_id: str | None = None,
    customer_name: str | None = None,
    subject: str | None = None,
    body: str = "",
    assignees: Sequence[UserRef] = (),
    watchers: Sequence[UserRef] = (),
) -> NewTask:
    """Return the draft of a booking task of `company`; the subject defaults to the booking reference (BK2)."""
    data = BookingTask(
        action=action,
        booking_ref=booking_ref,
        customer_id=customer_id,
        customer_name=customer_name,
    )
    title = subject if subject is not None else data.booking_ref
    if title is None:
        msg = (
            "a standalone booking task needs a subject (a brief description); only a task "
            "tied to a booking takes the booking reference as its subject"
        )
        raise InvalidPayload(msg, field="subject", action=OPEN)
    return NewTask(
        subject=title,
        recipient=company,
        data=data,
        body=body,
        category="Booking",
        assignees=tuple(assignees),
        watchers=tuple(watchers),
        due_at=due_at,
    )


# --- rules -----------------------------------------------------------------------------------


def _check_open(draft: NewTask, actor: Actor, at: datetime) -> None:
    data: BookingTask = draft.data
    if draft.due_at is None:
        msg = "a booking task needs due_at, the date by which it must be resolved (seed 000)"
        raise InvalidPayload(msg, field="due_at", action=OPEN)
    if data.answer is not None or data.resolution is not None:
        field = "answer" if data.answer is not None else "resolution"
        msg = f"a new booking task cannot carry {field}: it is set when the task is resolved"
        raise InvalidPayload(msg, field=f"data.{field}", action=OPEN)
    if data.action in TIED_ACTIONS and data.booking_ref is None:
        msg = (
            f"a '{data.action}' booking task must name the booking it changes (booking_ref); "
            f"standalone tasks are for {_untied()}"
        )
        raise InvalidPayload(msg, field="data.booking_ref", action=OPEN)
    if data.booking_ref is None and data.customer_id is None and data.customer_name is None:
        msg = (
            "a standalone booking task must name its customer: customer_id for an existing "
            "customer or customer_name for a new one (or tie it to a booking with booking_ref)"
        )
        raise InvalidPayload(msg, field="data.customer_id", action=OPEN)
    if data.customer_id is not None and data.customer_name is not None:
        msg = (
            "a booking task names an existing customer (customer_id) or a new customer's name "
            "(customer_name), not both"
        )
        raise InvalidPayload(msg, field="data.customer_name", action=OPEN)


def _untied() -> str:
    return ", ".join(f"'{a}'" for a in BookingAction if a not in TIED_ACTIONS)


def _check_change(task: Task, payload: ChangeAction, actor: Actor, at: datetime) -> None:
    data: BookingTask = task.data
    booking = payload.booking_ref if payload.booking_ref is not None else data.booking_ref
    if payload.action == data.action and booking == data.booking_ref:
        msg = (
            f"'{CHANGE_ACTION}' on task {task.number}: its action is '{data.action}' already; "
            f"choose another of {', '.join(a.value for a in BookingAction)}"
        )
        raise InvalidPayload(msg, field="action", action=CHANGE_ACTION)
    if payload.action in TIED_ACTIONS and booking is None:
        msg = (
            f"'{CHANGE_ACTION}' to '{payload.action}' on task {task.number} needs a booking: "
            "the task is standalone, so name the booking (booking_ref)"
        )
        raise InvalidPayload(msg, field="booking_ref", action=CHANGE_ACTION)


def _change(task: Task, payload: ChangeAction, actor: Actor, at: datetime) -> dict[str, Any]:
    data: BookingTask = task.data
    booking = payload.booking_ref if payload.booking_ref is not None else data.booking_ref
    return {"data": attrs.evolve(data, action=payload.action, booking_ref=booking)}


def _check_resolve(task: Task, payload: MarkResolved, actor: Actor, at: datetime) -> None:
    data: BookingTask = task.data
    if data.action is BookingAction.QUESTION and payload.answer is None:
        msg = (
            f"'{MARK_RESOLVED}' on question task {task.number} needs the answer given to the "
            "customer (answer): a question is resolved once answered"
        )
        raise InvalidPayload(msg, field="answer", action=MARK_RESOLVED)
    if data.action is not BookingAction.QUESTION and payload.answer is not None:
        msg = (
            f"'{MARK_RESOLVED}' on task {task.number}: only a question task records an answer; "
            f"this task's action is '{data.action}'"
        )
        raise InvalidPayload(msg, field="answer", action=MARK_RESOLVED)
    if payload.booking_ref is not None and data.action is not BookingAction.NEW_BOOKING:
        msg = (
            f"'{MARK_RESOLVED}' on task {task.number}: only a new-booking task is linked to the "
            f"booking that was made; this task's action is '{data.action}'"
        )
        raise InvalidPayload(msg, field="booking_ref", action=MARK_RESOLVED)


_HOW: Mapping[BookingAction, Resolution] = {
    BookingAction.QUESTION: Resolution.ANSWERED,
    BookingAction.IGNORE: Resolution.WITHOUT_ACTION,
}


def _resolve(task: Task, payload: MarkResolved, actor: Actor, at: datetime) -> dict[str, Any]:
    data: BookingTask = task.data
    booking = payload.booking_ref if payload.booking_ref is not None else data.booking_ref
    how = _HOW.get(data.action, Resolution.BY_HAND)
    return {"data": attrs.evolve(data, answer=payload.answer, booking_ref=booking, resolution=how)}


def _asks_for_a_booking(task: Task, actor: Actor) -> str | None:
    data: BookingTask = task.data
    if data.action is not BookingAction.NEW_BOOKING:
        return (
            f"only a '{BookingAction.NEW_BOOKING}' task resolves itself when a booking is made; "
            f"task {task.number} is '{data.action}'"
        )
    return None


def _booking_made(task: Task, payload: BookingMade, actor: Actor, at: datetime) -> dict[str, Any]:
    data = attrs.evolve(
        task.data, booking_ref=payload.booking_ref, resolution=Resolution.BOOKING_MADE
    )
    return {"data": data}


OFFICE = BOTH_SIDES  # the operator's own staff are on both sides of a booking task

BOOKING_TASK_WORKFLOW = Workflow(
    name="booking_task",
    description=(
        "A back-office task about a booking or a customer: its action says what to do and how "
        "it is resolved; editable until resolved; it notifies nobody."
    ),
    initial="open",
    open_check=_check_open,
    states=(
        State("open", waiting_on=Side.RECIPIENT, label="Unresolved"),
        State("resolved", final=True, label="Resolved"),
    ),
    transitions=(
        Transition(
            CHANGE_ACTION,
            "open",
            None,
            OFFICE,
            payload=ChangeAction,
            check=_check_change,
            effect=_change,
            events=("booking_task_action_changed",),
            notify=Audience.NOBODY,
            description="Change the action (C10); 'ignore' parks the task unresolved",
        ),
        Transition(
            MARK_RESOLVED,
            "open",
            "resolved",
            OFFICE,
            payload=MarkResolved,
            check=_check_resolve,
            effect=_resolve,
            events=("booking_task_resolved",),
            notify=Audience.NOBODY,
            description="Mark as resolved by hand (a question with its answer)",
        ),
        Transition(
            BOOKING_MADE,
            "open",
            "resolved",
            OFFICE,
            payload=BookingMade,
            guard=_asks_for_a_booking,
            effect=_booking_made,
            events=("booking_task_resolved",),
            notify=Audience.NOBODY,
            system_only=True,
            description="The host's booking flow made the booking: resolved and linked to it",
        ),
        *common_actions(),
    ),
)


def notify_nobody(
    workflow: Workflow, before: Task | None, after: Task, events: Sequence[DomainEvent]
) -> tuple[Notification, ...]:
    """Notification policy of booking tasks: creating or updating one notifies nobody (seed 000)."""
    return ()


def _booking_ref(task: Task) -> str | None:
    ref: str | None = task.data.booking_ref
    return ref


def _action_of(task: Task) -> str:
    return str(task.data.action)


def _parked(task: Task) -> bool:
    # Ignored but unresolved: out of the active lists until its action changes (BK3).
    return task.is_open and task.data.action is BookingAction.IGNORE


def _customer(task: Task) -> str | None:
    data: BookingTask = task.data
    return data.customer_id


def _resolve_by(task: Task) -> datetime | None:
    return task.due_at


BOOKING_TASK = TaskKind(
    "booking_task",
    BookingTask,
    BOOKING_TASK_WORKFLOW,
    "A tour operator's back-office task about a booking or a customer (BK1-BK5)",
    policy=notify_nobody,
    indexed={
        "booking_ref": _booking_ref,
        "booking_action": _action_of,
        "parked": _parked,
        "customer_id": _customer,
        "resolve_by": _resolve_by,
    },
)


def booking_role_matrix(
    roles: Mapping[str, Any] | None = None,
    *,
    base: Authorizer = DEFAULT_AUTHORIZER,
    kinds: Sequence[str] | None = None,
) -> RoleMatrix:
    """Return the role matrix for booking tasks: `BOOKING_ROLES` unless the host gives its own rows.

    `roles` maps each role to the operations it may do on booking tasks (create, see, modify,
    resolve); pass `kinds=registry.names` to refuse a misspelt kind elsewhere in the matrix.
    """
    rows = BOOKING_ROLES if roles is None else roles
    return RoleMatrix(
        {BOOKING_TASK.name: rows}, base=base, kinds=None if kinds is None else frozenset(kinds)
    )
