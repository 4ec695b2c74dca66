"""Value objects every task is made of: ids, parties, actors, files, comments, links."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any, NewType

import attrs

from taskflow.domain.validators import (
    aware,
    blank_to_none,
    excerpt,
    frozenset_of,
    identifier,
    instance_of,
    not_blank,
    one_of,
    optional_text,
    typed_fields,
    whole_number,
)
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


@attrs.frozen(field_transformer=typed_fields)
class UserRef:
    """A user, named together with the company the user belongs to."""

    company: CompanyId = attrs.field(validator=identifier)
    user: UserId = attrs.field(validator=identifier)

    def __str__(self) -> str:
        return f"{self.user}@{self.company}"


class ActorType(enum.StrEnum):
    """Who an actor is: a person using the host, or the host's own machinery (a rule, a job)."""

    USER = "user"
    SYSTEM = "system"


def _roles(value: Any) -> frozenset[str]:
    return frozenset_of(str, value, "Actor.roles")


def _actor_type(value: Any) -> ActorType:
    return one_of(ActorType, value, "Actor.type")


@attrs.frozen(field_transformer=typed_fields)
class Actor:
    """Whoever performs an action: a user of a company, with that user's roles, or a system actor."""

    user: UserId = attrs.field(validator=identifier)
    company: CompanyId = attrs.field(validator=identifier)
    roles: frozenset[str] = attrs.field(default=frozenset(), converter=_roles)
    type: ActorType = attrs.field(default=ActorType.USER, converter=_actor_type, kw_only=True)
    # Made once: every action names its actor's UserRef, and tasks keep many of them.
    _ref: UserRef = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_ref", UserRef(self.company, self.user))

    @classmethod
    def system(cls, name: str, company: CompanyId, roles: Iterable[str] = ()) -> Actor:
        """Return a system actor: a rule, a scheduler, an import acting for `company`."""
        return cls(UserId(name), company, roles, type=ActorType.SYSTEM)

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
        msg = (
            f"FileRef.media_type must look like 'type/subtype' in lower case, got {excerpt(value)}"
        )
        raise InvalidPayload(msg, field=attribute.name)


def _size(instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        msg = f"FileRef.size must be a whole number of bytes >= 0, got {excerpt(value)}"
        raise InvalidPayload(msg, field=attribute.name)


@attrs.frozen(field_transformer=typed_fields)
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


def _visibility(value: Any) -> Visibility:
    return one_of(Visibility, value, "Comment.visibility")


@attrs.frozen(field_transformer=typed_fields)
class Comment:
    """A comment on a task, public to the business partner or internal to the writer's company."""

    author: UserRef = attrs.field(validator=instance_of(UserRef))
    at: datetime = attrs.field(validator=aware)
    text: str = attrs.field(validator=not_blank)
    visibility: Visibility = attrs.field(default=Visibility.PUBLIC, converter=_visibility)

    def visible_to(self, company: CompanyId) -> bool:
        """Tell whether a user of `company` may read this comment."""
        return self.visibility is Visibility.PUBLIC or self.author.company == company


@attrs.frozen(field_transformer=typed_fields)
class Link:
    """A typed link from one task to another (for example 'part-of' a questionnaire)."""

    relation: str = attrs.field(validator=not_blank)
    task_id: TaskId = attrs.field(validator=not_blank)
