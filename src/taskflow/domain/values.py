"""Value objects every task is made of: ids, parties, actors, files, comments, links."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any, NewType

import attrs

from taskflow.errors import InvalidPayload

__all__ = [
    "DEFAULT_CATEGORIES",
    "PDF",
    "Actor",
    "ActorType",
    "Comment",
    "CompanyId",
    "FileRef",
    "Link",
    "Priority",
    "Side",
    "TaskId",
    "UserId",
    "UserRef",
    "Visibility",
    "aware",
    "blank_to_none",
    "not_blank",
    "optional_text",
    "whole_number",
]

TaskId = NewType("TaskId", str)
CompanyId = NewType("CompanyId", str)
UserId = NewType("UserId", str)

PDF = "application/pdf"

# The default category list of seed 003; categories are an open set, these are only the defaults.
DEFAULT_CATEGORIES: tuple[str, ...] = (
    "Appointment",
    "Bug Fix",
    "Content Writing",
    "Development",
    "Email",
    "Feature Request",
    "General Inquiry",
    "Graphic Design",
    "Headshots",
    "Letter",
    "Maintenance",
    "Meeting (In Office)",
    "Meeting (Out of Office)",
    "New Work",
    "Phone Call",
    "Project",
    "Software Development",
    "Training",
    "Video",
)


def not_blank(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    """Attrs validator: refuse an empty or whitespace-only string with `InvalidPayload`."""
    if not isinstance(value, str) or not value.strip():
        msg = (
            f"{type(instance).__name__}.{attribute.name} must be a non-blank string, got {value!r}"
        )
        raise InvalidPayload(msg, field=attribute.name)


def aware(instance: Any, attribute: attrs.Attribute[Any], value: datetime | None) -> None:
    """Attrs validator: refuse a naive datetime with `InvalidPayload` (times cross time zones)."""
    if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
        msg = (
            f"{type(instance).__name__}.{attribute.name} must be a timezone-aware datetime, "
            f"got {value!r}"
        )
        raise InvalidPayload(msg, field=attribute.name)


def blank_to_none(value: Any) -> Any:
    """Attrs converter: an empty or blank string (a form's empty optional field) becomes None."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


def optional_text(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Attrs validator: accept a string or None, refuse anything else with `InvalidPayload`."""
    if value is not None and not isinstance(value, str):
        msg = f"{type(instance).__name__}.{attribute.name} must be text or None, got {value!r}"
        raise InvalidPayload(msg, field=attribute.name)


def whole_number(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Attrs validator: accept an int >= 0 (not a bool), refuse anything else with `InvalidPayload`."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        msg = (
            f"{type(instance).__name__}.{attribute.name} must be a whole number >= 0, got {value!r}"
        )
        raise InvalidPayload(msg, field=attribute.name)


class Side(enum.StrEnum):
    """Which party of a task: the company that asks, or the company that must act."""

    REQUESTER = "requester"
    RECIPIENT = "recipient"

    @property
    def other(self) -> Side:
        """Return the opposite side."""
        return Side.RECIPIENT if self is Side.REQUESTER else Side.REQUESTER


class Priority(enum.StrEnum):
    """How urgent a task is."""

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class Visibility(enum.StrEnum):
    """Who may read a comment: the business partner too, or only the writer's own company."""

    PUBLIC = "public"
    INTERNAL = "internal"


@attrs.frozen
class UserRef:
    """A user, named together with the company the user belongs to."""

    company: CompanyId = attrs.field(validator=not_blank)
    user: UserId = attrs.field(validator=not_blank)

    def __str__(self) -> str:
        return f"{self.user}@{self.company}"


def _roles(value: Any) -> frozenset[str]:
    return frozenset(value)


class ActorType(enum.StrEnum):
    """Who an actor is: a person using the host, or the host's own machinery (a rule, a job)."""

    USER = "user"
    SYSTEM = "system"


@attrs.frozen
class Actor:
    """Whoever performs an action: a user of a company, with that user's roles, or a system actor."""

    user: UserId = attrs.field(validator=not_blank)
    company: CompanyId = attrs.field(validator=not_blank)
    roles: frozenset[str] = attrs.field(default=frozenset(), converter=_roles)
    type: ActorType = attrs.field(default=ActorType.USER, converter=ActorType, kw_only=True)
    # Made once: every action names its actor's UserRef, and tasks keep many of them.
    _ref: UserRef = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_ref", UserRef(self.company, self.user))

    @classmethod
    def system(cls, name: str, company: CompanyId, roles: Iterable[str] = ()) -> Actor:
        """Return a system actor: a rule, a scheduler, an import acting for `company`."""
        return cls(UserId(name), company, frozenset(roles), type=ActorType.SYSTEM)

    @property
    def is_system(self) -> bool:
        """Tell whether the actor is the host's machinery rather than a person."""
        return self.type is ActorType.SYSTEM

    @property
    def ref(self) -> UserRef:
        """Return the actor as a `UserRef` (user and company)."""
        return self._ref

    def __str__(self) -> str:
        if self.type is ActorType.SYSTEM:
            return f"system:{self.user}@{self.company}"
        return f"{self.user}@{self.company}"


_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")


def _media_type(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not isinstance(value, str) or not _MEDIA_TYPE.match(value):
        msg = f"FileRef.media_type must look like 'type/subtype' in lower case, got {value!r}"
        raise InvalidPayload(msg, field=attribute.name)


def _size(instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        msg = f"FileRef.size must be a whole number of bytes >= 0, got {value!r}"
        raise InvalidPayload(msg, field=attribute.name)


@attrs.frozen
class FileRef:
    """A reference to a file the host stored: never the bytes themselves."""

    name: str = attrs.field(validator=not_blank)
    media_type: str = attrs.field(validator=_media_type)
    size: int = attrs.field(validator=_size)
    digest: str = attrs.field(validator=not_blank)
    storage_key: str = attrs.field(validator=not_blank)

    @property
    def is_pdf(self) -> bool:
        """Tell whether the file is a PDF."""
        return self.media_type == PDF


@attrs.frozen
class Comment:
    """A comment on a task, public to the business partner or internal to the writer's company."""

    author: UserRef
    at: datetime = attrs.field(validator=aware)
    text: str = attrs.field(validator=not_blank)
    visibility: Visibility = Visibility.PUBLIC

    def visible_to(self, company: CompanyId) -> bool:
        """Tell whether a user of `company` may read this comment."""
        return self.visibility is Visibility.PUBLIC or self.author.company == company


@attrs.frozen
class Link:
    """A typed link from one task to another (for example 'part-of' a questionnaire)."""

    relation: str = attrs.field(validator=not_blank)
    task_id: TaskId = attrs.field(validator=not_blank)
