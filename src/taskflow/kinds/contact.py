"""Contact requests (SP6): the supplier names a contact, or a hotline where no person can be named."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import attrs

from taskflow.domain.common import common_actions
from taskflow.domain.registry import TaskKind
from taskflow.domain.task import OPEN, NewTask, Task
from taskflow.domain.validators import excerpt, typed_fields
from taskflow.domain.values import Actor, Side, not_blank
from taskflow.domain.workflow import Audience, State, Transition, Workflow
from taskflow.errors import InvalidPayload
from taskflow.kinds.payloads import AskAgain

__all__ = [
    "ACCEPT",
    "ASK_AGAIN",
    "CONTACT",
    "CONTACT_WORKFLOW",
    "NOT_APPLICABLE",
    "SEND_CONTACT",
    "AskAgain",
    "Contact",
    "ContactRequest",
    "is_email_address",
    "is_phone_number",
]

SEND_CONTACT = "send_contact"
ACCEPT = "accept"
ASK_AGAIN = "ask_again"

NOT_APPLICABLE = "-"
"""What a contact field holds where it does not apply (no person can be named: a hotline)."""

# Loose on purpose: one '@', no spaces, a dot in the domain. Delivery is the real test.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# Digits with the usual separators, an optional leading '+': "+49 (0)30 1234-567".
_PHONE = re.compile(r"\+?[0-9 ()./-]+")
_MIN_PHONE_DIGITS = 3
_MAX_PHONE_DIGITS = 20
# Checked before the patterns, so a huge text is refused at once (RFC 5321 caps an address
# at 254 characters; 20 digits with separators fit in 40).
_MAX_EMAIL_LENGTH = 254
_MAX_PHONE_LENGTH = 40


def is_email_address(text: str) -> bool:
    """Tell whether `text` looks like an email address (name@example.com), loosely."""
    return len(text) <= _MAX_EMAIL_LENGTH and _EMAIL.fullmatch(text) is not None


def is_phone_number(text: str) -> bool:
    """Tell whether `text` looks like a phone number: digits, spaces, + ( ) . / - only."""
    if len(text) > _MAX_PHONE_LENGTH or _PHONE.fullmatch(text) is None:
        return False
    return _MIN_PHONE_DIGITS <= sum(ch.isdigit() for ch in text) <= _MAX_PHONE_DIGITS


def _stripped(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _filled(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value:
        msg = (
            f"Contact.{attribute.name} must not be blank, got {excerpt(value)}; "
            f"write '{NOT_APPLICABLE}' where it does not apply"
        )
        raise InvalidPayload(msg, field=attribute.name)


def _email(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    _filled(instance, attribute, value)
    if value != NOT_APPLICABLE and not is_email_address(value):
        msg = (
            f"Contact.email must look like an email address (name@example.com) "
            f"or be '{NOT_APPLICABLE}', got {excerpt(value)}"
        )
        raise InvalidPayload(msg, field=attribute.name)


def _phone(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    _filled(instance, attribute, value)
    if value != NOT_APPLICABLE and not is_phone_number(value):
        msg = (
            f"Contact.phone must be a phone number ({_MIN_PHONE_DIGITS} to {_MAX_PHONE_DIGITS} "
            f"digits with spaces, + ( ) . / -) or be '{NOT_APPLICABLE}', got {excerpt(value)}"
        )
        raise InvalidPayload(msg, field=attribute.name)


@attrs.frozen(field_transformer=typed_fields)
class Contact:
    """Payload of `send_contact`: a person, or '-' in both names for a hotline or a desk.

    A named person needs a position and an email or a phone; without a person the position
    may be '-' too, but an email or a phone is still needed. Surrounding spaces are dropped.
    """

    first_name: str = attrs.field(converter=_stripped, validator=_filled)
    last_name: str = attrs.field(converter=_stripped, validator=_filled)
    position: str = attrs.field(converter=_stripped, validator=_filled)
    email: str = attrs.field(default=NOT_APPLICABLE, converter=_stripped, validator=_email)
    phone: str = attrs.field(default=NOT_APPLICABLE, converter=_stripped, validator=_phone)

    def __attrs_post_init__(self) -> None:
        first, last = self.first_name, self.last_name
        if (first == NOT_APPLICABLE) != (last == NOT_APPLICABLE):
            dash, other = ("first_name", last) if first == NOT_APPLICABLE else ("last_name", first)
            msg = (
                f"Contact.{dash} is '{NOT_APPLICABLE}' but the other name is {excerpt(other)}: "
                f"name a person with first and last name, or write '{NOT_APPLICABLE}' in both "
                "where no person can be named (a hotline)"
            )
            raise InvalidPayload(msg, field=dash)
        if self.is_person and self.position == NOT_APPLICABLE:
            msg = (
                f"Contact.position must say what {first} {last} does; "
                f"'{NOT_APPLICABLE}' is accepted only where no person can be named"
            )
            raise InvalidPayload(msg, field="position")
        if self.email == NOT_APPLICABLE and self.phone == NOT_APPLICABLE:
            msg = f"Contact needs an email or a phone to be reached; both are '{NOT_APPLICABLE}'"
            raise InvalidPayload(msg, field="email")

    @property
    def is_person(self) -> bool:
        """Tell whether the contact names a person (not '-' for a hotline or a desk)."""
        return self.first_name != NOT_APPLICABLE


@attrs.frozen(field_transformer=typed_fields)
class ContactRequest:
    """Data of a contact request: what the contact is for, and the answer given so far.

    `ask_again_reason` is the open request's reason; sending a contact answers and clears it.
    """

    purpose: str = attrs.field(validator=not_blank)
    contact: Contact | None = None
    ask_again_reason: str | None = None


def _nothing_answered_yet(draft: NewTask, actor: Actor, at: datetime) -> None:
    data = draft.data
    answered = [name for name in ("contact", "ask_again_reason") if getattr(data, name) is not None]
    if answered:
        msg = (
            f"a new contact request cannot carry {', '.join(answered)}: "
            "the answer and the reason for asking again are set by actions"
        )
        raise InvalidPayload(msg, field=f"data.{answered[0]}", action=OPEN)


def _send_contact(task: Task, payload: Contact, actor: Actor, at: datetime) -> dict[str, Any]:
    return {"data": attrs.evolve(task.data, contact=payload, ask_again_reason=None)}


def _ask_again(task: Task, payload: AskAgain, actor: Actor, at: datetime) -> dict[str, Any]:
    return {"data": attrs.evolve(task.data, ask_again_reason=payload.reason)}


REQUESTER = Side.REQUESTER
RECIPIENT = Side.RECIPIENT

CONTACT_WORKFLOW = Workflow(
    name="contact",
    description=(
        "The requester asks for a contact; the supplier sends one (a person, or '-' for a "
        "hotline); the requester accepts it or asks again with a reason."
    ),
    initial="requested",
    open_check=_nothing_answered_yet,
    states=(
        State("requested", waiting_on=RECIPIENT, label="Requested"),
        State("sent", waiting_on=REQUESTER, label="Contact sent"),
        State("asked_again", waiting_on=RECIPIENT, label="Asked again"),
        State("accepted", final=True, label="Accepted"),
    ),
    transitions=(
        Transition(
            SEND_CONTACT,
            {"requested", "asked_again"},
            "sent",
            RECIPIENT,
            payload=Contact,
            effect=_send_contact,
            events=("contact_sent",),
            notify=Audience.OTHER_SIDE,
            description="Send the contact: a person, or '-' where none can be named",
        ),
        Transition(
            ACCEPT,
            "sent",
            "accepted",
            REQUESTER,
            events=("contact_accepted",),
            notify=Audience.OTHER_SIDE,
            description="Accept the contact",
        ),
        Transition(
            ASK_AGAIN,
            "sent",
            "asked_again",
            REQUESTER,
            payload=AskAgain,
            effect=_ask_again,
            events=("contact_asked_again",),
            notify=Audience.OTHER_SIDE,
            description="Ask for another contact, with a reason",
        ),
        *common_actions(),
    ),
)

CONTACT = TaskKind(
    "contact",
    ContactRequest,
    CONTACT_WORKFLOW,
    "Ask a supplier whom to contact: a person, or a hotline (SP6)",
)
