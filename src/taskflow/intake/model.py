"""The one intake model for the five channels (C14): a normalized message and what became of it."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import attrs

from taskflow.domain._frozen import FrozenMap
from taskflow.domain.values import Actor, CompanyId, FileRef, TaskId, UserId, aware, not_blank
from taskflow.errors import InvalidPayload

__all__ = [
    "Channel",
    "Contacts",
    "Disposition",
    "FollowUp",
    "InMemoryContacts",
    "IntakeResult",
    "Message",
    "Sender",
]


class Channel(enum.StrEnum):
    """How a message reached the help desk (seed 004's five channels)."""

    EMAIL = "email"
    CHAT = "chat"
    IMPORT = "import"
    MANUAL = "manual"
    WEB_FORM = "web_form"


@attrs.frozen
class Sender:
    """Who wrote a message: an address (email, chat handle) and a display name."""

    address: str = ""
    name: str = ""


def _texts(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in value if v))


def _files(value: Iterable[FileRef]) -> tuple[FileRef, ...]:
    files = tuple(value)
    for i, file in enumerate(files):
        if not isinstance(file, FileRef):
            msg = f"Message.attachments[{i}] must be a FileRef, got {type(file).__name__}"
            raise InvalidPayload(msg, field=f"attachments[{i}]")
    return files


def _fields(value: Mapping[str, Any]) -> FrozenMap[str, Any]:
    return FrozenMap(value)


def _message_id(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    not_blank(instance, attribute, value)
    if len(value) > 998 or any(ch in value for ch in "\r\n"):
        msg = f"Message.message_id must be one line of at most 998 characters, got {value!r:.80}"
        raise InvalidPayload(msg, field="message_id")


def _channel(value: Any) -> Channel:
    try:
        return Channel(value)
    except ValueError:
        allowed = ", ".join(repr(c.value) for c in Channel)
        msg = f"Message.channel must be one of {allowed}, got {value!r}"
        raise InvalidPayload(msg, field="channel") from None


@attrs.frozen
class Message:
    """A message from any channel, normalized: it opens a ticket or task, or joins one.

    `references` are the ids of earlier messages it answers (closest first); `fields` the
    structured values a form or a CSV row carried; `notes` what intake left out (an
    attachment over the size limit, an external body).
    """

    channel: Channel = attrs.field(converter=_channel)
    message_id: str = attrs.field(validator=_message_id)
    sender: Sender
    subject: str = ""
    body: str = ""
    attachments: tuple[FileRef, ...] = attrs.field(default=(), converter=_files)
    references: tuple[str, ...] = attrs.field(default=(), converter=_texts)
    fields: Mapping[str, Any] = attrs.field(factory=FrozenMap, converter=_fields)
    sent_at: datetime | None = attrs.field(default=None, validator=aware)
    notes: tuple[str, ...] = attrs.field(default=(), converter=_texts)

    @property
    def key(self) -> str:
        """Return the message's key across channels: `<channel>:<message id>`."""
        return f"{self.channel.value}:{self.message_id}"


class Disposition(enum.StrEnum):
    """What intake did with a message."""

    OPENED = "opened"  # a new ticket or task (or a follow-up of a closed one: see `reason`)
    APPENDED = "appended"  # joined an existing one (a reply, a follow-up)
    REOPENED = "reopened"  # a customer's reply reopened the resolved task it answers
    DUPLICATE = "duplicate"  # seen before: nothing was created
    IGNORED = "ignored"  # an auto-reply, a bounce, an unknown sender: nothing was created


class FollowUp(enum.StrEnum):
    """What a customer's reply to a resolved (closed) ticket or task does."""

    REOPEN = "reopen"  # reopen it and add the reply; a follow-up where it cannot be reopened
    NEW_TASK = (
        "new_task"  # open a follow-up linked to it (`follow_up_of`); the old one stays closed
    )
    APPEND = "append"  # add the reply as a comment; the task stays closed


@attrs.frozen
class IntakeResult:
    """What became of one message: the disposition, the task it concerns, and why."""

    disposition: Disposition
    message_id: str
    task_id: TaskId | None = None
    task_number: str | None = None
    reason: str = ""

    @property
    def created(self) -> bool:
        """Tell whether the message opened or changed a task."""
        return self.disposition in (Disposition.OPENED, Disposition.APPENDED, Disposition.REOPENED)


@runtime_checkable
class Contacts(Protocol):
    """Tells who a sender is: the user (of a customer company) intake acts for."""

    def actor_for(self, sender: Sender) -> Actor | None:
        """Return the user who wrote as `sender`, or None for a sender intake must not act for."""
        ...


class InMemoryContacts:
    """Known senders by address; unknown ones become users of `default_company` (or are refused)."""

    def __init__(
        self,
        known: Mapping[str, Actor] | None = None,
        *,
        default_company: CompanyId | None = None,
    ) -> None:
        self._known = {address.strip().lower(): actor for address, actor in (known or {}).items()}
        self.default_company = default_company

    def add(self, address: str, actor: Actor) -> None:
        """Make messages from `address` come from `actor`."""
        self._known[address.strip().lower()] = actor

    def actor_for(self, sender: Sender) -> Actor | None:
        """Return the known user for the address, else a user of the default company named by it."""
        address = sender.address.strip().lower()
        if not address:
            return None
        known = self._known.get(address)
        if known is not None:
            return known
        if self.default_company is None:
            return None
        return Actor(UserId(address), self.default_company)
