"""The task entity, the draft a task is opened from, its history entries and its domain events."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

import attrs

from taskflow.domain._fast import copier
from taskflow.domain.validators import (
    excerpt,
    frozenset_of,
    identifier,
    one_of,
    text,
    tuple_of,
    typed_fields,
)
from taskflow.domain.values import (
    Actor,
    Comment,
    CompanyId,
    FileRef,
    Link,
    Priority,
    Side,
    TaskId,
    UserRef,
    Visibility,
    aware,
    not_blank,
    whole_number,
)
from taskflow.errors import InvalidPayload

__all__ = [
    "APPENDABLE_FIELDS",
    "EDITABLE_FIELDS",
    "FACT_FIELDS",
    "OPEN",
    "OPEN_FACTS",
    "TASK_FIELDS",
    "Cause",
    "DomainEvent",
    "HistoryEntry",
    "NewTask",
    "Task",
    "append_entry",
    "kept_of",
    "replace_fields",
    "seed_private_authors",
]

# The name of the history entry that every task's history starts with.
OPEN = "open"

# The fields the engine sets when it opens a task that the draft does not hold: the 'open'
# entry records their values (`HistoryEntry.facts`), in this order.
OPEN_FACTS: tuple[str, ...] = ("ball", "resolved_at")

# The tuple fields whose growth a history entry records as the appended items alone, so a
# task with many comments or files does not hold a copy of all earlier ones per entry.
APPENDABLE_FIELDS: frozenset[str] = frozenset(
    {"assignees", "watchers", "links", "comments", "files"}
)

# The fields the common `edit` action may change (C10); the rest change only through actions.
EDITABLE_FIELDS: frozenset[str] = frozenset(
    {"subject", "body", "category", "priority", "tags", "due_at", "watchers"}
)


_SIDES: dict[tuple[bool, bool], frozenset[Side]] = {
    (False, False): frozenset(),
    (True, False): frozenset({Side.REQUESTER}),
    (False, True): frozenset({Side.RECIPIENT}),
    (True, True): frozenset({Side.REQUESTER, Side.RECIPIENT}),
}


def _tags(value: Any) -> frozenset[str]:
    return frozenset_of(str, value, "Task.tags")


def _assignees(value: Any) -> tuple[UserRef, ...]:
    # Keep the first occurrence of each user, in the order given.
    return tuple_of(UserRef, value, "Task.assignees", unique=True)


def _watchers(value: Any) -> tuple[UserRef, ...]:
    return tuple_of(UserRef, value, "Task.watchers", unique=True)


def _draft_tags(value: Any) -> frozenset[str]:
    return frozenset_of(str, value, "NewTask.tags")


def _draft_assignees(value: Any) -> tuple[UserRef, ...]:
    return tuple_of(UserRef, value, "NewTask.assignees", unique=True)


def _draft_watchers(value: Any) -> tuple[UserRef, ...]:
    return tuple_of(UserRef, value, "NewTask.watchers", unique=True)


def _draft_links(value: Any) -> tuple[Link, ...]:
    return tuple_of(Link, value, "NewTask.links")


def _draft_priority(value: Any) -> Priority:
    return one_of(Priority, value, "NewTask.priority")


def _history(value: Any) -> tuple[Any, ...]:
    if type(value) is tuple:
        return value
    if not isinstance(value, list):
        msg = f"Task.history must be a tuple of HistoryEntry, got {type(value).__name__}"
        raise InvalidPayload(msg, field="history")
    return tuple(value)


def _version(instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        msg = f"Task.{attribute.name} must be a whole number >= 1, got {excerpt(value)}"
        raise InvalidPayload(msg, field=attribute.name)


def _facts(instance: HistoryEntry, attribute: attrs.Attribute[Any], value: Any) -> None:
    # Runs on the last field, so `facts` and `changed` are set already; on every action, so
    # it reads the fields directly.
    fields = OPEN_FACTS if instance.action == OPEN else instance.changed
    if type(instance.facts) is not tuple or len(instance.facts) != len(fields):
        msg = (
            f"HistoryEntry.facts of {excerpt(instance.action)} must be a tuple of one value for each "
            f"of {fields}, got {_count(instance.facts)}"
        )
        raise InvalidPayload(msg, field="facts")
    if not isinstance(value, tuple) or (
        value and not set(value) <= APPENDABLE_FIELDS & set(fields)
    ):
        msg = (
            f"HistoryEntry.appended of {excerpt(instance.action)} may name only recorded tuple fields "
            f"({sorted(APPENDABLE_FIELDS & set(fields))}), got {excerpt(value)}"
        )
        raise InvalidPayload(msg, field="appended")


def _count(values: Any) -> str:
    if not isinstance(values, tuple):
        return f"a {type(values).__name__}"
    return f"{len(values)} value{'' if len(values) == 1 else 's'}"


@attrs.frozen(weakref_slot=False, field_transformer=typed_fields)
class Cause:
    """Why a change was made: the request it belongs to, and the event whose handler made it."""

    # Shared by every change one outside request led to.
    correlation_id: str = attrs.field(validator=identifier)
    # The `DomainEvent.id` whose handler made this change; None for a request from outside.
    event_id: str | None = None
    # 0 for a request from outside, one more per handler hop.
    depth: int = attrs.field(default=0, validator=whole_number)


@attrs.frozen(weakref_slot=False, field_transformer=typed_fields)
class HistoryEntry:
    """One accepted action: who took it, when, with what payload, and the values it set.

    `facts` holds one value per name of `fact_fields`: for an action, the new value of each
    field it changed (`changed`, engine-owned state, ball and resolved_at included); for a
    field of `appended`, only the items added to the end of the old tuple. The 'open' entry
    holds the draft as payload and records the `OPEN_FACTS`. Replay applies the facts without
    running any rule, so a task still replays after its workflow has changed.
    """

    action: str
    actor: Actor
    at: datetime = attrs.field(validator=aware)
    from_state: str | None
    to_state: str
    payload: Any = None
    changed: tuple[str, ...] = ()
    cause: Cause | None = None
    facts: tuple[Any, ...] = ()
    appended: tuple[str, ...] = attrs.field(default=(), validator=_facts)

    @property
    def fact_fields(self) -> tuple[str, ...]:
        """Return the names of the fields `facts` holds values for, in the same order."""
        return OPEN_FACTS if self.action == OPEN else self.changed


@attrs.frozen(weakref_slot=False)
class DomainEvent:
    """Something that happened to a task, for notifications and for the host's own reactions."""

    name: str
    task_id: TaskId
    task_number: str
    kind: str
    action: str
    actor: Actor
    at: datetime = attrs.field(validator=aware)
    from_state: str | None
    to_state: str
    version: int
    payload: Any = None
    cause: Cause | None = None

    @property
    def id(self) -> str:
        """Return the event's id, `task_id@version/name`: unique, since versions are compare-and-set."""
        return f"{self.task_id}@{self.version}/{self.name}"


@attrs.frozen(field_transformer=typed_fields)
class NewTask:
    """What a requester fills in to open a task; the opener becomes the requester."""

    subject: str = attrs.field(validator=not_blank)
    recipient: CompanyId = attrs.field(validator=identifier)
    data: Any
    body: str = attrs.field(default="", validator=text)
    category: str = attrs.field(default="General Inquiry", validator=not_blank)
    priority: Priority = attrs.field(default=Priority.NORMAL, converter=_draft_priority)
    tags: frozenset[str] = attrs.field(default=frozenset(), converter=_draft_tags)
    assignees: tuple[UserRef, ...] = attrs.field(default=(), converter=_draft_assignees)
    watchers: tuple[UserRef, ...] = attrs.field(default=(), converter=_draft_watchers)
    links: tuple[Link, ...] = attrs.field(default=(), converter=_draft_links)
    due_at: datetime | None = attrs.field(default=None, validator=aware)


@attrs.frozen(weakref_slot=False, field_transformer=typed_fields)
class Task:
    """A task: immutable; every change is an action that returns a new `Task`."""

    id: TaskId = attrs.field(validator=not_blank)
    number: str = attrs.field(validator=not_blank)
    kind: str = attrs.field(validator=not_blank)
    state: str = attrs.field(validator=not_blank)
    subject: str = attrs.field(validator=not_blank)
    requester: UserRef
    recipient: CompanyId = attrs.field(validator=not_blank)
    created_at: datetime = attrs.field(validator=aware)
    data: Any
    body: str = ""
    category: str = attrs.field(default="General Inquiry", validator=not_blank)
    priority: Priority = Priority.NORMAL
    tags: frozenset[str] = attrs.field(default=frozenset(), converter=_tags)
    assignees: tuple[UserRef, ...] = attrs.field(default=(), converter=_assignees)
    watchers: tuple[UserRef, ...] = attrs.field(default=(), converter=_watchers)
    links: tuple[Link, ...] = ()
    due_at: datetime | None = attrs.field(default=None, validator=aware)
    resolved_at: datetime | None = attrs.field(default=None, validator=aware)
    comments: tuple[Comment, ...] = ()
    files: tuple[FileRef, ...] = ()
    ball: Side | None = Side.RECIPIENT
    # A tuple, checked by its type only: entries check themselves, and the loader of schema-1
    # rows passes its own entries through a Task while it upgrades them.
    history: tuple[HistoryEntry, ...] = attrs.field(default=(), converter=_history)
    version: int = attrs.field(default=1, validator=_version)
    workflow_version: int = attrs.field(default=1, validator=_version)
    # Set on a copy `visible_to` filtered for a company: a view, which no repository saves
    # (it lacks the other company's internal notes). Never stored, never compared.
    view_of: CompanyId | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def is_view(self) -> bool:
        """Tell whether this is a filtered view of a task (`visible_to`), which cannot be saved."""
        return self.view_of is not None

    @property
    def is_open(self) -> bool:
        """Tell whether the task still waits for someone (it is not in a final state)."""
        return self.resolved_at is None

    def company_of(self, side: Side) -> CompanyId:
        """Return the company on `side` of this task."""
        return self.requester.company if side is Side.REQUESTER else self.recipient

    def sides_of(self, company: CompanyId) -> frozenset[Side]:
        """Return the sides `company` is on (both for a task inside one company, none if a stranger)."""
        return _SIDES[company == self.requester.company, company == self.recipient]

    def is_party(self, company: CompanyId) -> bool:
        """Tell whether `company` is the requester or the recipient of this task."""
        return company in (self.requester.company, self.recipient)

    @property
    def ball_company(self) -> CompanyId | None:
        """Return the company whose court the ball is in, or None once the task is final."""
        return None if self.ball is None else self.company_of(self.ball)

    def assignees_of(self, company: CompanyId) -> tuple[UserRef, ...]:
        """Return the assignees who belong to `company`."""
        return tuple(ref for ref in self.assignees if ref.company == company)

    def is_overdue(self, now: datetime) -> bool:
        """Tell whether the task is open and its due time has passed at `now`."""
        return self.is_open and self.due_at is not None and self.due_at < now

    @functools.cached_property
    def private_authors(self) -> frozenset[CompanyId]:
        """Return the companies that wrote something on this task another party may not read."""
        return _private_authors(self, self.comments, self.history)

    @functools.cached_property
    def _lineage(self) -> tuple[int, int] | None:
        # Set by `replace_fields` when this task's history and comments extend those of the task
        # it was made from: their lengths then. None: not known (a task built another way).
        return None

    def visible_to(self, company: CompanyId) -> Task:
        """Return the task as a user of `company` may see it: other companies' internal notes removed."""
        if not self.private_authors - {company}:
            return self  # nothing here is hidden from `company`: no copy, no scan
        comments = tuple(c for c in self.comments if c.visible_to(company))
        history: list[HistoryEntry] = []
        same = len(comments) == len(self.comments)
        for entry in self.history:
            if not _entry_visible(entry, company):
                same = False
                continue
            # The comments an entry recorded may include the other company's internal notes.
            if "comments" in entry.changed:
                view = _comments_visible(entry, company)
                same = same and view is entry
                entry = view
            history.append(entry)
        if same:
            return self
        return attrs.evolve(self, comments=comments, history=tuple(history), view_of=company)


_FIELDS: dict[str, attrs.Attribute[Any]] = {a.name: a for a in attrs.fields(Task)}
TASK_FIELDS: tuple[str, ...] = tuple(_FIELDS)
"""The names of `Task`'s fields, in declaration order."""
FACT_FIELDS: frozenset[str] = frozenset(TASK_FIELDS) - {
    "id", "number", "kind", "requester", "recipient", "created_at",
    "history", "version", "workflow_version", "view_of",
}  # fmt: skip
"""The fields a history entry may record a value for: those an action can change."""
_copy_task = copier(Task)


def replace_fields(task: Task, changes: dict[str, Any]) -> Task:
    """Return a copy of `task` with `changes` applied, converting and validating only those fields.

    The unchanged fields were converted and validated when they were first set; re-running
    `Task.__init__` for all of them on every action doubled the engine's cost.
    """
    new: Task = _copy_task(task)
    _carry_derived(task, new, changes)
    for name, value in changes.items():
        field = _FIELDS.get(name)
        if field is None:
            msg = f"Task has no field {excerpt(name)}"
            raise TypeError(msg)
        if field.converter is not None:
            value = field.converter(value)  # type: ignore[operator]
        if field.validator is not None:
            field.validator(new, field, value)
        _SETTERS[name](new, value)
    return new


_SETTERS: dict[str, Any] = {name: Task.__dict__[name].__set__ for name in _FIELDS}


# The slot in which `Task.private_authors` is cached once computed (attrs makes it a slot).
_PRIVATE = Task.__dict__["private_authors"]
_LINEAGE = Task.__dict__["_lineage"]


def _private_authors(
    task: Task, comments: tuple[Comment, ...], history: tuple[HistoryEntry, ...]
) -> frozenset[CompanyId]:
    parties = (task.requester.company, task.recipient)
    authors = {c.author.company for c in comments if c.visibility is not Visibility.PUBLIC}
    for entry in history:
        author = entry.actor.company
        if author not in authors and not all(_entry_visible(entry, p) for p in parties):
            authors.add(author)
    return frozenset(authors)


def _carry_derived(task: Task, new: Task, changes: dict[str, Any]) -> None:
    """Record on `new` what it keeps of `task`'s history and comments, and carry its private authors.

    The one place the kept items are compared: cheap when the engine appended, since the kept
    items are then the very same objects.
    """
    added: dict[str, tuple[Any, ...]] = {}
    if "comments" in changes or "history" in changes:
        for name in ("comments", "history"):
            if name in changes:
                old, value = getattr(task, name), changes[name]
                if not isinstance(value, tuple) or value[: len(old)] != old:
                    return  # not an extension: `new` works out what it needs when asked
                added[name] = value[len(old) :]
    lineage = (len(task.history), len(task.comments))
    if lineage[0] < _SHARED_LINEAGE and lineage[1] < _SHARED_LINEAGE:
        # Every task keeps its lineage: the short ones are shared, not one tuple per task.
        lineage = _LINEAGES.setdefault(lineage, lineage)
    _LINEAGE.__set__(new, lineage)
    try:
        known: frozenset[CompanyId] = _PRIVATE.__get__(task)
    except AttributeError:
        return  # never computed for `task`: `new` computes its own when asked
    if added:
        more = _private_authors(task, added.get("comments", ()), added.get("history", ()))
        known = known | more if more else known
    _PRIVATE.__set__(new, known)


_SHARED_LINEAGE = 64  # lineages of fewer entries and comments each are interned (at most 4096)
_LINEAGES: dict[tuple[int, int], tuple[int, int]] = {}


def seed_private_authors(task: Task) -> None:
    """Record that a task just opened hides nothing from anyone (its 'open' entry is public)."""
    _PRIVATE.__set__(task, _NOBODY)


_NOBODY: frozenset[CompanyId] = frozenset()


def append_entry(task: Task, new: Task, entry: HistoryEntry) -> None:
    """Give `new` (a copy of `task` not yet shared) `task`'s history plus `entry`, for the engine."""
    object.__setattr__(new, "history", (*task.history, entry))
    try:
        known: frozenset[CompanyId] = _PRIVATE.__get__(new)
    except AttributeError:
        return
    author = entry.actor.company
    if author in known or getattr(entry.payload, "visible_to_company", None) is None:
        return  # an entry every party sees, or one whose author is known to hide something
    if not all(_entry_visible(entry, p) for p in (task.requester.company, task.recipient)):
        _PRIVATE.__set__(new, known | {author})


def kept_of(after: Task, before: Task) -> tuple[int, int] | None:
    """Return how many history entries and comments `after` keeps unchanged from `before`, if all.

    None when `after` does not extend `before` (a rewritten history or comment). Cheap when
    `after` was made from `before` by the engine; a full comparison otherwise.
    """
    lineage = after._lineage
    h, c = len(before.history), len(before.comments)
    if (
        lineage == (h, c)
        and (h == 0 or after.history[h - 1] is before.history[h - 1])
        and (c == 0 or after.comments[c - 1] is before.comments[c - 1])
    ):
        return lineage
    if after.history[:h] == before.history and after.comments[:c] == before.comments:
        return h, c
    return None


def _comments_visible(entry: HistoryEntry, company: CompanyId) -> HistoryEntry:
    at = entry.changed.index("comments")
    recorded: tuple[Comment, ...] = entry.facts[at]
    kept = tuple(c for c in recorded if c.visible_to(company))
    if len(kept) == len(recorded):
        return entry
    return attrs.evolve(entry, facts=(*entry.facts[:at], kept, *entry.facts[at + 1 :]))


def _entry_visible(entry: HistoryEntry, company: CompanyId) -> bool:
    visible_to = getattr(entry.payload, "visible_to_company", None)
    if visible_to is None:
        return True
    return bool(visible_to(entry.actor.company, company))
