"""Support and complaint tickets (CS1-CS3): a customer's portal form, answered and resolved."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, TypeVar

import attrs

from taskflow.domain.common import common_actions
from taskflow.domain.erasure import ERASED_EMAIL, TOMBSTONE
from taskflow.domain.intake import INTAKE_INDEXED
from taskflow.domain.registry import TaskKind
from taskflow.domain.task import OPEN, NewTask, Task
from taskflow.domain.validators import excerpt, member_or_value, typed_fields
from taskflow.domain.values import (
    Actor,
    Side,
    blank_to_none,
    not_blank,
    optional_text,
    whole_number,
)
from taskflow.domain.workflow import Audience, State, Transition, Workflow
from taskflow.errors import InvalidPayload
from taskflow.kinds.contact import is_email_address, is_phone_number
from taskflow.kinds.payloads import Reopen
from taskflow.kinds.rules import record_reopen
from taskflow.sla.governed import sla_governed
from taskflow.sla.policy import SlaPolicies

__all__ = [
    "COMPLAINT_TICKET",
    "REOPEN",
    "RESOLVE",
    "SUPPORT_TICKET",
    "TICKET_EDITABLE",
    "TICKET_PERSONAL_FIELDS",
    "TICKET_WORKFLOW",
    "ComplaintTicket",
    "Reopen",
    "Severity",
    "SupportTicket",
    "ticket_kind",
]

RESOLVE = "resolve"
REOPEN = "reopen"

# The customer's submission stays as it was sent (C10, seed 003): the customer may only add
# colleagues as watchers; the business triages (category, priority, due date, tags, watchers).
TICKET_EDITABLE: Mapping[Side, frozenset[str]] = {
    Side.REQUESTER: frozenset({"watchers"}),
    Side.RECIPIENT: frozenset({"category", "priority", "due_at", "tags", "watchers"}),
}


_T = TypeVar("_T")


class Severity(enum.StrEnum):
    """How serious the customer says a complaint is."""

    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


def _to_severity(value: Any) -> Any:
    # Refused by `_severity` below, so that fields are checked in form order.
    return member_or_value(Severity, value)


def _severity(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Severity):
        allowed = ", ".join(repr(s.value) for s in Severity)
        msg = f"ComplaintTicket.severity must be one of {allowed}, got {excerpt(value)}"
        raise InvalidPayload(msg, field=attribute.name)


def _email(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not is_email_address(value):
        msg = (
            f"{type(instance).__name__}.email must look like an email address "
            f"(name@example.com), got {excerpt(value)}"
        )
        raise InvalidPayload(msg, field=attribute.name)


def _optional_phone(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not is_phone_number(value)):
        msg = (
            f"{type(instance).__name__}.phone must be a phone number (digits with spaces, "
            f"+ ( ) . / -) or left empty, got {excerpt(value)}"
        )
        raise InvalidPayload(msg, field=attribute.name)


def _stripped(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _optional_stripped(value: Any) -> Any:
    return _stripped(blank_to_none(value))


def _from_form(cls: type[_T], fields: tuple[str, ...], form: Mapping[str, Any]) -> _T:
    unknown = sorted(set(form) - set(fields))
    if unknown:
        msg = (
            f"the {cls.__name__} form has no field {unknown[0]!r}; "
            f"its fields are {', '.join(fields)}"
        )
        raise InvalidPayload(msg, field=unknown[0])
    return cls(**form)


@attrs.frozen(kw_only=True, field_transformer=typed_fields)
class SupportTicket:
    """Data of a support ticket: the customer's portal form, and its reopen rounds.

    Required: name, email, description. An empty optional field ("") means not given; a bad
    or missing field raises `InvalidPayload` naming it. `reopen_reason` is the open round's
    reason (resolving clears it); `reopen_count` counts the customer's reopens.
    """

    # The form's fields, in the order they are checked (the first bad one is reported).
    FORM_FIELDS: ClassVar[tuple[str, ...]] = (
        "name",
        "email",
        "description",
        "phone",
        "product",
        "order_reference",
    )

    name: str = attrs.field(default="", converter=_stripped, validator=not_blank)
    email: str = attrs.field(default="", converter=_stripped, validator=_email)
    description: str = attrs.field(default="", validator=not_blank)
    phone: str | None = attrs.field(
        default=None, converter=_optional_stripped, validator=_optional_phone
    )
    product: str | None = attrs.field(
        default=None, converter=_optional_stripped, validator=optional_text
    )
    order_reference: str | None = attrs.field(
        default=None, converter=_optional_stripped, validator=optional_text
    )
    reopen_reason: str | None = attrs.field(
        default=None, converter=blank_to_none, validator=optional_text
    )
    reopen_count: int = attrs.field(default=0, validator=whole_number)

    @classmethod
    def from_form(cls, form: Mapping[str, Any]) -> SupportTicket:
        """Return the ticket data a portal form holds; an unknown or bad field is refused."""
        return _from_form(cls, cls.FORM_FIELDS, form)


@attrs.frozen(kw_only=True, field_transformer=typed_fields)
class ComplaintTicket:
    """Data of a complaint ticket: the portal form, naming what it is about and how serious.

    Required: name, email, description, product (or service) and severity. An empty optional
    field ("") means not given; a bad or missing field raises `InvalidPayload` naming it.
    `reopen_reason` and `reopen_count` are as for `SupportTicket`.
    """

    # The form's fields, in the order they are checked (the first bad one is reported).
    FORM_FIELDS: ClassVar[tuple[str, ...]] = (
        "name",
        "email",
        "description",
        "product",
        "severity",
        "phone",
        "order_reference",
    )

    name: str = attrs.field(default="", converter=_stripped, validator=not_blank)
    email: str = attrs.field(default="", converter=_stripped, validator=_email)
    description: str = attrs.field(default="", validator=not_blank)
    product: str = attrs.field(default="", converter=_stripped, validator=not_blank)
    # No default severity: the customer says how serious it is (None is refused, naming it).
    severity: Severity = attrs.field(default=None, converter=_to_severity, validator=_severity)
    phone: str | None = attrs.field(
        default=None, converter=_optional_stripped, validator=_optional_phone
    )
    order_reference: str | None = attrs.field(
        default=None, converter=_optional_stripped, validator=optional_text
    )
    reopen_reason: str | None = attrs.field(
        default=None, converter=blank_to_none, validator=optional_text
    )
    reopen_count: int = attrs.field(default=0, validator=whole_number)

    @classmethod
    def from_form(cls, form: Mapping[str, Any]) -> ComplaintTicket:
        """Return the complaint data a portal form holds; an unknown or bad field is refused."""
        return _from_form(cls, cls.FORM_FIELDS, form)


def _not_reopened_yet(draft: NewTask, actor: Actor, at: datetime) -> None:
    data = draft.data
    if data.reopen_reason is not None or data.reopen_count:
        field = "reopen_reason" if data.reopen_reason is not None else "reopen_count"
        msg = (
            f"a new ticket cannot carry {field}: the customer's reopen rounds are set by '{REOPEN}'"
        )
        raise InvalidPayload(msg, field=f"data.{field}", action=OPEN)


def _resolve(task: Task, payload: None, actor: Actor, at: datetime) -> dict[str, Any]:
    return {"data": attrs.evolve(task.data, reopen_reason=None)}


# The customer's contact details on the form: erased when the customer asks (GDPR art. 17).
TICKET_PERSONAL_FIELDS: Mapping[str, Any] = {
    "name": TOMBSTONE,
    "email": ERASED_EMAIL,
    "phone": None,
}

CUSTOMER = Side.REQUESTER
BUSINESS = Side.RECIPIENT

TICKET_WORKFLOW = Workflow(
    name="ticket",
    description=(
        "A customer submits a ticket through the portal; the business answers with public "
        "comments and marks it resolved; the customer may reopen it."
    ),
    initial="submitted",
    open_check=_not_reopened_yet,
    states=(
        State("submitted", waiting_on=BUSINESS, label="Submitted"),
        State("reopened", waiting_on=BUSINESS, label="Reopened"),
        State("resolved", final=True, label="Resolved"),
    ),
    transitions=(
        Transition(
            RESOLVE,
            {"submitted", "reopened"},
            "resolved",
            BUSINESS,
            effect=_resolve,
            events=("ticket_resolved",),
            notify=Audience.OTHER_SIDE,
            description="Mark as resolved; an answer, if any, goes in a public comment",
        ),
        Transition(
            REOPEN,
            "resolved",
            "reopened",
            CUSTOMER,
            payload=Reopen,
            effect=record_reopen,
            events=("ticket_reopened",),
            notify=Audience.OTHER_SIDE,
            description="Reopen with a reason: back to the business",
        ),
        # A public comment reaches the customer and hands the ticket over, both ways (CS2).
        *common_actions(editable=TICKET_EDITABLE, public_comment_passes_ball=True),
    ),
)

SUPPORT_TICKET = TaskKind(
    "support_ticket",
    SupportTicket,
    TICKET_WORKFLOW,
    "A customer's support request from the portal form (CS1-CS3)",
    indexed=INTAKE_INDEXED,
    personal_fields=TICKET_PERSONAL_FIELDS,
)
COMPLAINT_TICKET = TaskKind(
    "complaint_ticket",
    ComplaintTicket,
    TICKET_WORKFLOW,
    "A customer's complaint about a product or service, from the portal form (CS1-CS3)",
    indexed=INTAKE_INDEXED,
    personal_fields=TICKET_PERSONAL_FIELDS,
)


def ticket_kind(sla: SlaPolicies | None = None, *, base: TaskKind = SUPPORT_TICKET) -> TaskKind:
    """Return a ticket kind (support by default) governed by `sla`, as CRM tasks are (None: no SLA).

    The kind gains the system-only `sla_escalate` action and the `sla_next_event` index, so
    `SlaService` finds its tasks whose next SLA event is due and fires their levels.
    """
    return base if sla is None else sla_governed(base, sla, sides={BUSINESS})
