"""Erasure of one person's personal data from a task and its history, keeping its shape. Pure.

Who did what when stays: every entry keeps its actor, time, action and states. What is
erased: the text of the person's comments, the kind data fields the kind declares personal
(`TaskKind.personal_fields`) when the person opened the task, and every occurrence of the
person's identifiers (email addresses, names, phone numbers) in any text of the task, its
payloads and its recorded facts. Erased values become `TOMBSTONE` (or the kind's declared
replacement), so replay and `task_at` still work. The erasure is itself an entry,
`erase_personal_data`, naming who asked, the person's user id and why.
"""

from __future__ import annotations

import copy
import enum
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from taskflow.domain.task import OPEN, Cause, DomainEvent, HistoryEntry, NewTask, Task
from taskflow.domain.validators import excerpt, frozenset_of, typed_fields
from taskflow.domain.values import Actor, Comment, Side, UserRef, not_blank
from taskflow.domain.workflow import ANY_STATE, Operation, Transition
from taskflow.errors import InvalidPayload

__all__ = [
    "ERASED_EMAIL",
    "ERASE_PERSONAL_DATA",
    "ERASURE_ROLES",
    "TOMBSTONE",
    "DataSubject",
    "ErasePersonalData",
    "erase_personal_data",
    "erasure_transition",
]

ERASE_PERSONAL_DATA = "erase_personal_data"
"""The action name of the history entry an erasure appends."""

TOMBSTONE = "[erased]"
"""What an erased text becomes."""

ERASED_EMAIL = "erased@erased.invalid"
"""What an erased email address becomes (a valid address in a reserved domain, RFC 2606)."""

ERASURE_ROLES: frozenset[str] = frozenset({"privacy"})
"""The roles that may erase personal data by default (the host passes its own to the service)."""

_EMAILISH = re.compile(r"^[^@\s]+@[^@\s]+$")


def _identifiers(value: Any) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        msg = (
            "DataSubject.identifiers must be a collection of texts (email addresses, names, "
            f"phone numbers), got {type(value).__name__}"
        )
        raise InvalidPayload(msg, field="identifiers")
    items = frozenset_of(str, value, "DataSubject.identifiers")
    bad = [i for i in items if len(i.strip()) < 3]
    if bad:
        msg = (
            f"DataSubject.identifiers must be texts of 3 or more characters, got {excerpt(bad[0])}"
        )
        raise InvalidPayload(msg, field="identifiers")
    return items


def _user(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, UserRef):
        msg = f"DataSubject.user must be a UserRef or None, got {type(value).__name__}"
        raise InvalidPayload(msg, field="user")


@attrs.frozen(field_transformer=typed_fields)
class DataSubject:
    """The person whose data is erased: their user (if they have one) and what they are known by.

    `identifiers` are the email addresses, names and phone numbers to be erased wherever they
    occur (case-insensitive); they are never stored.
    """

    user: UserRef | None = attrs.field(default=None, validator=_user)
    identifiers: frozenset[str] = attrs.field(default=frozenset(), converter=_identifiers)

    def __attrs_post_init__(self) -> None:
        if self.user is None and not self.identifiers:
            msg = "a DataSubject needs a user or at least one identifier"
            raise InvalidPayload(msg, field="user")


@attrs.frozen(field_transformer=typed_fields)
class ErasePersonalData:
    """Payload of the `erase_personal_data` entry: whose data (their user id, if any), why, how many values."""

    reason: str = attrs.field(validator=not_blank)
    subject: UserRef | None = None
    erased: int = 0


def erasure_transition(roles: Iterable[str] = ERASURE_ROLES) -> Transition:
    """Return the transition the authorizer is asked about before an erasure (both sides, `roles`)."""
    return Transition(
        ERASE_PERSONAL_DATA,
        ANY_STATE,
        None,
        {Side.REQUESTER, Side.RECIPIENT},
        roles=frozenset[str](roles),  # type: ignore[arg-type]  # attrs converter typed generically
        payload=ErasePersonalData,
        operation=Operation.MODIFY,
        description="Erase one person's personal data, keeping who did what when",
    )


def erase_personal_data(
    task: Task,
    person: DataSubject,
    actor: Actor,
    at: datetime,
    reason: str,
    *,
    personal_fields: Mapping[str, Any] | None = None,
    cause: Cause | None = None,
) -> tuple[Task, DomainEvent]:
    """Return `task` with `person`'s personal data erased from it and its history, and the event.

    `personal_fields` (the kind's) are replaced in the data when `person` is the requester.
    """
    if not isinstance(person, DataSubject):
        msg = f"erase_personal_data needs a DataSubject, got {type(person).__name__}"
        raise InvalidPayload(msg, field="person", action=ERASE_PERSONAL_DATA)
    scrub = _Scrubber(task, person, dict(personal_fields or {}))
    history = tuple(scrub.entry(e) for e in task.history)
    changes = {
        "subject": scrub.text(task.subject),
        "body": scrub.text(task.body),
        "data": scrub.data(task.data),
        "comments": scrub.comments(task.comments),
    }
    payload = ErasePersonalData(reason, person.user, scrub.count)
    entry = HistoryEntry(
        ERASE_PERSONAL_DATA, actor, at, task.state, task.state, payload, cause=cause
    )
    erased = attrs.evolve(
        task, **changes, history=(*history, entry), version=task.version + 1, view_of=None
    )
    event = DomainEvent(
        "personal_data_erased",
        task.id,
        task.number,
        task.kind,
        ERASE_PERSONAL_DATA,
        actor,
        at,
        task.state,
        task.state,
        erased.version,
        payload,
        cause,
    )
    return erased, event


class _Scrubber:
    """Replaces one person's personal data in the values of one task; counts what it replaced."""

    def __init__(self, task: Task, person: DataSubject, personal: dict[str, Any]) -> None:
        self.person = person
        self.count = 0
        self.owner = person.user is not None and person.user == task.requester
        self.personal = personal if self.owner else {}
        known = set(person.identifiers)
        if self.owner:
            # What the requester's own form says about them is erased wherever it was copied.
            for data in _datas(task):
                for name in personal:
                    value = getattr(data, name, None)
                    if isinstance(value, str) and len(value.strip()) >= 3:
                        known.add(value.strip())
        ordered = sorted(known, key=len, reverse=True)  # longest first: a name inside an address
        self.whole = {k.casefold() for k in ordered}
        self.pattern = (
            re.compile("|".join(re.escape(k) for k in ordered), re.IGNORECASE) if ordered else None
        )

    def text(self, value: str) -> str:
        if self.pattern is None or not value:
            return value
        if value.strip().casefold() in self.whole:
            self.count += 1
            return ERASED_EMAIL if _EMAILISH.match(value.strip()) else TOMBSTONE
        new, n = self.pattern.subn(TOMBSTONE, value)
        if not n:
            return value
        self.count += n
        return new

    def value(self, value: Any) -> Any:
        if isinstance(value, enum.Enum):
            return value  # a state, a side, a priority: never personal
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Comment):
            return self.comment(value)
        if isinstance(value, tuple):
            return tuple(self.value(v) for v in value)
        if isinstance(value, frozenset):
            return frozenset(self.value(v) for v in value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if attrs.has(type(value)) and not isinstance(value, UserRef | Actor):
            return self.attrs_value(value)
        return value

    def attrs_value(self, value: Any, personal: Mapping[str, Any] | None = None) -> Any:
        changes: dict[str, Any] = {}
        for field in attrs.fields(type(value)):
            if not field.init:
                continue
            old = getattr(value, field.name)
            if personal is not None and field.name in personal:
                new = personal[field.name]
                if new != old:
                    self.count += 1
            else:
                new = self.value(old)
                if new is not old and new != old:
                    new = _valid_for(value, field, new)
            if new is not old and new != old:
                changes[field.name] = new
        if not changes:
            return value
        # Set without the class's converters and validators: a tombstone is a valid value
        # for its field by construction (TOMBSTONE is non-blank, ERASED_EMAIL an address).
        new_value = copy.copy(value)
        for name, new in changes.items():
            object.__setattr__(new_value, name, new)
        return new_value

    def data(self, value: Any) -> Any:
        if attrs.has(type(value)):
            return self.attrs_value(value, self.personal)
        return self.value(value)

    def comment(self, comment: Comment) -> Comment:
        if self.person.user is not None and comment.author == self.person.user:
            if comment.text == TOMBSTONE:
                return comment
            self.count += 1
            return attrs.evolve(comment, text=TOMBSTONE)
        text = self.text(comment.text)
        return comment if text == comment.text else attrs.evolve(comment, text=text)

    def comments(self, comments: tuple[Comment, ...]) -> tuple[Comment, ...]:
        return tuple(self.comment(c) for c in comments)

    def entry(self, entry: HistoryEntry) -> HistoryEntry:
        payload = entry.payload
        if entry.action == OPEN and isinstance(payload, NewTask):
            payload = attrs.evolve(
                payload,
                subject=self.text(payload.subject),
                body=self.text(payload.body),
                data=self.data(payload.data),
            )
        elif self._is_own_comment(entry):
            payload = attrs.evolve(payload, text=TOMBSTONE)
        else:
            payload = self.value(payload)
        facts = tuple(
            self.data(v) if name == "data" else self.value(v)
            for name, v in zip(entry.fact_fields, entry.facts, strict=True)
        )
        if payload is entry.payload and facts == entry.facts:
            return entry
        return attrs.evolve(entry, payload=payload, facts=facts)

    def _is_own_comment(self, entry: HistoryEntry) -> bool:
        user = self.person.user
        return (
            user is not None
            and entry.actor.ref == user
            and isinstance(getattr(entry.payload, "text", None), str)
            and hasattr(entry.payload, "visibility")
        )


def _valid_for(instance: Any, field: attrs.Attribute[Any], value: Any) -> Any:
    """Return `value` if the field's validator takes it, else None if that is taken (an optional phone)."""
    validator = field.validator
    if validator is None:
        return value
    for candidate in (value, None):
        try:
            validator(instance, field, candidate)
        except (InvalidPayload, TypeError, ValueError):
            continue
        return candidate
    return value  # neither: the tombstone stands (a host's field with a format of its own)


def _datas(task: Task) -> list[Any]:
    found = [task.data]
    for entry in task.history:
        if entry.action == OPEN and isinstance(entry.payload, NewTask):
            found.append(entry.payload.data)
        for name, value in zip(entry.fact_fields, entry.facts, strict=True):
            if name == "data":
                found.append(value)
    return found
