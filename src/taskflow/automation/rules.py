"""Automation rules as data (C15): a trigger, conditions, actions; pure matching and planning.

A rule is frozen attrs data a host stores and edits (`dump_rules` / `load_rules` write it as
JSON-ready data with taskflow's converter). Nothing here reads a clock or a repository:
`RuleBook.matching` says which rules an event fires, `plan` says which workflow actions a
rule's actions become on a task; `taskflow.automation.service.Automation` applies them.

    Rule(
        "auto-assign",
        Trigger(On.OPENED),
        actions=(AssignTo(("ann", "bob"), rotate=True),),
        condition=Condition.eq("task.kind", "support_ticket"),
    )

The SLA engine's recorded escalations fire the SLA rules: each `sla_escalate` entry (taken by
the SLA scheduler's system actor, `taskflow.application.sla.SlaService`) fires the rules whose
trigger is `On.SLA_WARNING` when its level lies before the target's breach, and
`On.SLA_BREACH` when it lies at or past it (`Escalate.breach`).
"""

from __future__ import annotations

import enum
import functools
import re
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

import attrs

from taskflow.domain.common import ASSIGN, COMMENT, EDIT, AddComment, Assign, Edit
from taskflow.domain.notifications import Recipient
from taskflow.domain.task import OPEN, DomainEvent, Task
from taskflow.domain.values import CompanyId, Priority, UserId, UserRef, Visibility, not_blank
from taskflow.errors import InvalidWorkflow
from taskflow.sla.policy import ESCALATE, Escalate

__all__ = [
    "ACTION_TYPES",
    "OPERATORS",
    "SLA_BREACH",
    "SLA_WARNING",
    "TEMPLATE_NAMES",
    "AddTag",
    "AddWatcher",
    "AssignTo",
    "Condition",
    "Notify",
    "On",
    "PlannedStep",
    "PostComment",
    "RemoveTag",
    "Rule",
    "RuleAction",
    "RuleBook",
    "SetField",
    "TakeAction",
    "Trigger",
    "plan",
    "render",
    "resolve_path",
]

SLA_WARNING = "sla_warning"
"""The trigger name of an SLA escalation before its target's breach (`On.SLA_WARNING`)."""

SLA_BREACH = "sla_breach"
"""The trigger name of an SLA escalation at or past its target's breach (`On.SLA_BREACH`)."""


class On(enum.StrEnum):
    """What starts a rule: something that happened to a task, or a time condition."""

    OPENED = "opened"  # a task was opened
    ACTION = "action"  # a named workflow action was taken (Trigger.name)
    COMMENTED = "commented"  # a comment was added
    STATE_ENTERED = "state_entered"  # the task entered a state (Trigger.name, or any state)
    FIELD_CHANGED = "field_changed"  # an action changed a field (Trigger.name)
    SLA_WARNING = "sla_warning"  # the SLA engine fired a level before a target's breach
    SLA_BREACH = "sla_breach"  # the SLA engine fired a level at or past a target's breach
    TIME = "time"  # the due-time port reports the task due (Automation.run_due)
    ANY = "any"  # every event


_NEEDS_NAME = frozenset({On.ACTION, On.FIELD_CHANGED})
_TAKES_NAME = frozenset({On.ACTION, On.FIELD_CHANGED, On.STATE_ENTERED})


def _on(value: Any) -> Any:
    try:
        return On(value)
    except ValueError:
        allowed = ", ".join(repr(o.value) for o in On)
        msg = f"Trigger.on must be one of {allowed}, got {value!r}"
        raise InvalidWorkflow(msg) from None


@attrs.frozen
class Trigger:
    """When a rule is considered: `on` what, and for actions, states and fields `name` which."""

    on: On = attrs.field(converter=_on)
    name: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.on in _NEEDS_NAME and not (isinstance(self.name, str) and self.name.strip()):
            msg = f"Trigger(on='{self.on}') needs the name of the {self._what()} it waits for"
            raise InvalidWorkflow(msg)
        if self.name is not None and self.on not in _TAKES_NAME:
            msg = (
                f"Trigger(on='{self.on}') takes no name (got {self.name!r}); only "
                f"{', '.join(sorted(_TAKES_NAME))} do"
            )
            raise InvalidWorkflow(msg)

    def _what(self) -> str:
        return "action" if self.on is On.ACTION else "field"

    def index_keys(self) -> tuple[tuple[str, str | None], ...]:
        """Return the index keys this trigger is filed under in a `RuleBook`."""
        return ((self.on.value, self.name),)


# --- conditions --------------------------------------------------------------------------------

OPERATORS: tuple[str, ...] = (
    "eq", "ne", "in", "not_in", "contains", "not_contains", "gt", "ge", "lt", "le",
    "exists", "matches", "changed",
)  # fmt: skip
"""The comparisons a `Condition` may make; `all`, `any` and `not` combine conditions."""

_COMBINERS = ("all", "any", "not")
_TASK_PATHS = frozenset(
    {
        "id", "number", "kind", "state", "subject", "body", "category", "priority", "tags",
        "requester", "recipient", "assignees", "watchers", "due_at", "resolved_at",
        "created_at", "ball", "version", "is_open", "comments", "files", "links",
    }
)  # fmt: skip
_EVENT_PATHS = frozenset(
    {
        "name", "action", "actor", "from_state", "to_state", "version", "at", "depth",
        "changed", "correlation_id", "payload",
    }
)  # fmt: skip
_NESTED = {
    ("task", "requester"),
    ("task", "data"),
    ("event", "actor"),
    ("event", "payload"),
}


def _check_path(path: Any) -> None:
    if not isinstance(path, str) or not path:
        msg = f"Condition.field must be a path such as 'task.priority', got {path!r}"
        raise InvalidWorkflow(msg)
    parts = path.split(".")
    root, rest = parts[0], parts[1:]
    known = {"task": _TASK_PATHS | {"data"}, "event": _EVENT_PATHS}.get(root)
    if known is None or not rest or rest[0] not in known or not all(p.isidentifier() for p in rest):
        msg = (
            f"Condition.field {path!r} is not a path this rule can read: 'task.<field>' "
            f"({', '.join(sorted(_TASK_PATHS))}, data.<name>) or 'event.<field>' "
            f"({', '.join(sorted(_EVENT_PATHS))}, payload.<name>, actor.company)"
        )
        raise InvalidWorkflow(msg)
    if len(rest) > 1 and (root, rest[0]) not in _NESTED:
        msg = f"Condition.field {path!r}: '{root}.{rest[0]}' has no parts to name"
        raise InvalidWorkflow(msg)


def _conditions(value: Iterable[Condition]) -> tuple[Condition, ...]:
    return tuple(value)


_SCALAR = (str, int, float, bool, type(None))


def _json_value(value: Any) -> bool:
    if isinstance(value, _SCALAR):
        return True
    return isinstance(value, list | tuple) and all(isinstance(v, _SCALAR) for v in value)


@attrs.frozen
class Condition:
    """A test over task and event fields, or a combination of tests (`all`, `any`, `not`).

    `field` is a path: `task.priority`, `task.data.severity`, `event.action`,
    `event.payload.visibility`, `event.actor.company`; `value` a JSON scalar or a list of them.
    Enum fields compare by value, users as `user@company`, sets as sorted lists; a time field
    compares with an ISO 8601 text value.
    """

    op: str
    field: str = ""
    value: Any = None
    terms: tuple[Condition, ...] = attrs.field(default=(), converter=_conditions)

    def __attrs_post_init__(self) -> None:
        if self.op in _COMBINERS:
            if self.field or self.value is not None:
                msg = f"Condition '{self.op}' combines terms; it takes no field or value"
                raise InvalidWorkflow(msg)
            if not self.terms or (self.op == "not" and len(self.terms) != 1):
                need = "exactly one term" if self.op == "not" else "at least one term"
                msg = f"Condition '{self.op}' needs {need}, got {len(self.terms)}"
                raise InvalidWorkflow(msg)
            return
        if self.op not in OPERATORS:
            msg = (
                f"Condition.op {self.op!r} is unknown; use one of "
                f"{', '.join(OPERATORS + _COMBINERS)}"
            )
            raise InvalidWorkflow(msg)
        if self.terms:
            msg = f"Condition '{self.op}' compares a field; only all, any and not take terms"
            raise InvalidWorkflow(msg)
        if self.op == "changed":
            if self.field and not (self.field.startswith("task.") and self.field.count(".") == 1):
                msg = f"Condition 'changed' names a task field such as 'task.priority', got {self.field!r}"
                raise InvalidWorkflow(msg)
            if not self.field:
                msg = "Condition 'changed' needs the task field, e.g. field='task.priority'"
                raise InvalidWorkflow(msg)
        else:
            _check_path(self.field)
        if not _json_value(self.value):
            msg = (
                f"Condition.value of {self.field!r} must be text, a number, true/false, null "
                f"or a list of them, got {self.value!r:.80}"
            )
            raise InvalidWorkflow(msg)
        if self.op in ("in", "not_in") and not isinstance(self.value, list | tuple):
            msg = f"Condition '{self.op}' on {self.field!r} needs a list value, got {self.value!r:.80}"
            raise InvalidWorkflow(msg)
        if self.op == "matches":
            if not isinstance(self.value, str):
                msg = f"Condition 'matches' on {self.field!r} needs a regular expression text"
                raise InvalidWorkflow(msg)
            try:
                re.compile(self.value)
            except re.error as exc:
                msg = f"Condition 'matches' on {self.field!r}: {self.value!r} is no regular expression: {exc}"
                raise InvalidWorkflow(msg) from None
        if self.op in ("gt", "ge", "lt", "le") and not isinstance(self.value, str | int | float):
            msg = f"Condition '{self.op}' on {self.field!r} needs a number or a text value"
            raise InvalidWorkflow(msg)

    # Small constructors, so rules read like sentences.
    @classmethod
    def eq(cls, field: str, value: Any) -> Condition:
        """Return a test that `field` equals `value`."""
        return cls("eq", field, _plain(value))

    @classmethod
    def ne(cls, field: str, value: Any) -> Condition:
        """Return a test that `field` does not equal `value`."""
        return cls("ne", field, _plain(value))

    @classmethod
    def one_of(cls, field: str, values: Iterable[Any]) -> Condition:
        """Return a test that `field` is one of `values`."""
        return cls("in", field, [_plain(v) for v in values])

    @classmethod
    def contains(cls, field: str, value: Any) -> Condition:
        """Return a test that `field` (text, tags, users) contains `value`."""
        return cls("contains", field, _plain(value))

    @classmethod
    def changed(cls, field: str) -> Condition:
        """Return a test that the triggering action changed the task field `field`."""
        return cls("changed", field)

    @classmethod
    def all_of(cls, *terms: Condition) -> Condition:
        """Return a condition that holds when every term does."""
        return cls("all", terms=terms)

    @classmethod
    def any_of(cls, *terms: Condition) -> Condition:
        """Return a condition that holds when at least one term does."""
        return cls("any", terms=terms)

    @classmethod
    def negate(cls, term: Condition) -> Condition:
        """Return a condition that holds when `term` does not."""
        return cls("not", terms=(term,))


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, UserRef):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


@attrs.define
class _Context:
    task: Task
    event: DomainEvent | None
    changed: tuple[str, ...]
    # Each path's value, read once per evaluation however many rules test it.
    seen: dict[str, Any] = attrs.Factory(dict)


def _normalize(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, UserRef):
        return str(value)
    if isinstance(value, frozenset | set):
        return sorted(_normalize(v) for v in value)
    if isinstance(value, tuple | list):
        return [_normalize(v) for v in value]
    return value


def resolve_path(path: str, task: Task, event: DomainEvent | None = None) -> Any:
    """Return the value a condition's `field` path names on `task` and `event` (None if absent)."""
    changed: tuple[str, ...] = ()
    if event is not None and 0 < event.version <= len(task.history):
        changed = task.history[event.version - 1].changed
    return _getter(path)(_Context(task, event, changed))


@functools.cache
def _getter(path: str) -> Callable[[_Context], Any]:
    root, name, *rest = path.split(".")
    if root == "task":
        if name == "comments":
            return lambda c: len(c.task.comments)
        if name in ("files", "links"):
            return lambda c: len(getattr(c.task, name))
        if name == "data":
            return lambda c: _walk(c.task.data, rest)
        if name == "requester" and rest:
            return lambda c: _walk(c.task.requester, rest)
        return lambda c: _normalize(getattr(c.task, name))
    if name == "changed":
        return lambda c: list(c.changed)
    if name in ("depth", "correlation_id"):

        def cause(c: _Context) -> Any:
            if c.event is None or c.event.cause is None:
                return 0 if name == "depth" else None
            return getattr(c.event.cause, name)

        return cause
    if name == "actor" and rest:
        if rest == ["system"]:
            return lambda c: None if c.event is None else c.event.actor.is_system
        return lambda c: None if c.event is None else _walk(c.event.actor, rest)
    if name == "payload":
        return lambda c: None if c.event is None else _walk(c.event.payload, rest)
    return lambda c: None if c.event is None else _normalize(getattr(c.event, name))


def _walk(value: Any, parts: Sequence[str]) -> Any:
    for part in parts:
        if value is None:
            return None
        value = value.get(part) if isinstance(value, Mapping) else getattr(value, part, None)
    return _normalize(value)


@functools.cache
def _as_time(text: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.utcoffset() is not None else None


def _comparable(actual: Any, wanted: Any) -> tuple[Any, Any] | None:
    if isinstance(actual, datetime) and isinstance(wanted, str):
        when = _as_time(wanted)
        return None if when is None else (actual, when)
    if isinstance(actual, bool) or isinstance(wanted, bool):
        return (actual, wanted) if type(actual) is type(wanted) else None
    if isinstance(actual, int | float) and isinstance(wanted, int | float):
        return actual, wanted
    if isinstance(actual, str) and isinstance(wanted, str):
        return actual, wanted
    return None


def _equal(actual: Any, wanted: Any) -> bool:
    if type(actual) is str and type(wanted) is str:
        return actual == wanted
    pair = _comparable(actual, wanted)
    if pair is not None:
        return bool(pair[0] == pair[1])
    if isinstance(actual, list) and isinstance(wanted, list | tuple):
        return actual == list(wanted)
    return bool(actual is None and wanted is None)


def _contains(actual: Any, wanted: Any) -> bool:
    if isinstance(actual, str) and isinstance(wanted, str):
        return wanted in actual
    if isinstance(actual, list):
        if type(wanted) is str:  # the common case: a tag, a user among text items
            return wanted in actual
        return any(_equal(item, wanted) for item in actual)
    return False


def _ordered(op: str) -> Callable[[Any, Any], bool]:
    def compare(actual: Any, wanted: Any) -> bool:
        pair = _comparable(actual, wanted)
        if pair is None or isinstance(pair[0], bool):
            return False
        a, w = pair
        if op == "gt":
            return bool(a > w)
        if op == "ge":
            return bool(a >= w)
        if op == "lt":
            return bool(a < w)
        return bool(a <= w)

    return compare


def _exists(actual: Any, wanted: Any) -> bool:
    present = actual is not None and actual != [] and actual != ""
    return present if wanted is None or wanted is True else not present


_TESTS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": _equal,
    "ne": lambda a, w: not _equal(a, w),
    "in": lambda a, w: any(_equal(a, v) for v in w),
    "not_in": lambda a, w: not any(_equal(a, v) for v in w),
    "contains": _contains,
    "not_contains": lambda a, w: not _contains(a, w),
    "gt": _ordered("gt"),
    "ge": _ordered("ge"),
    "lt": _ordered("lt"),
    "le": _ordered("le"),
    "exists": _exists,
    "matches": lambda a, w: isinstance(a, str) and re.search(w, a) is not None,
}

_Test = Callable[[_Context], bool]


def _compile(condition: Condition) -> _Test:
    op = condition.op
    if op == "all":
        parts = tuple(_compile(t) for t in condition.terms)
        return lambda c: all(p(c) for p in parts)
    if op == "any":
        parts = tuple(_compile(t) for t in condition.terms)
        return lambda c: any(p(c) for p in parts)
    if op == "not":
        (part,) = (_compile(t) for t in condition.terms)
        return lambda c: not part(c)
    if op == "changed":
        name = condition.field.split(".", 1)[1]
        return lambda c: name in c.changed
    path = condition.field
    get = _getter(path)
    test = _TESTS[op]
    wanted = condition.value

    def run(c: _Context) -> bool:
        seen = c.seen
        if path in seen:
            return test(seen[path], wanted)
        value = seen[path] = get(c)
        return test(value, wanted)

    return run


# --- actions -----------------------------------------------------------------------------------

TEMPLATE_NAMES: tuple[str, ...] = (
    "number", "subject", "state", "kind", "priority", "category", "requester", "recipient",
    "rule", "event", "actor",
)  # fmt: skip
"""The `$names` a comment or notification template may use."""


def _template(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    not_blank(instance, attribute, value)
    template = string.Template(value)
    if not template.is_valid():
        msg = f"{type(instance).__name__}.{attribute.name} {value!r:.80} is not a valid template (write $$ for a dollar sign)"
        raise InvalidWorkflow(msg)
    unknown = sorted(set(template.get_identifiers()) - set(TEMPLATE_NAMES))
    if unknown:
        msg = (
            f"{type(instance).__name__}.{attribute.name} names ${unknown[0]}, which no template "
            f"knows; use {', '.join('$' + n for n in TEMPLATE_NAMES)}"
        )
        raise InvalidWorkflow(msg)


def render(template: str, task: Task, event: DomainEvent | None, rule: str) -> str:
    """Return `template` with `$number`, `$subject`, ... filled in from the task and the event."""
    values = {
        "number": task.number,
        "subject": task.subject,
        "state": task.state,
        "kind": task.kind,
        "priority": task.priority.value,
        "category": task.category,
        "requester": str(task.requester),
        "recipient": task.recipient,
        "rule": rule,
        "event": "" if event is None else event.name,
        "actor": "" if event is None else str(event.actor),
    }
    return string.Template(template).safe_substitute(values)


_SETTABLE = ("subject", "body", "category", "priority", "due_at")


def _settable(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in _SETTABLE:
        msg = (
            f"SetField.field {value!r} cannot be set by a rule; use one of {', '.join(_SETTABLE)} "
            "(tags and watchers have actions of their own)"
        )
        raise InvalidWorkflow(msg)


@attrs.frozen
class SetField:
    """Set one editable field (subject, body, category, priority, due_at as ISO text)."""

    type: ClassVar[str] = "set_field"
    field: str = attrs.field(validator=_settable)
    value: str = attrs.field(validator=not_blank)

    def __attrs_post_init__(self) -> None:
        if self.field == "priority" and self.value not in {p.value for p in Priority}:
            msg = f"SetField priority must be one of {[p.value for p in Priority]}, got {self.value!r}"
            raise InvalidWorkflow(msg)
        if self.field == "due_at" and _as_time(self.value) is None:
            msg = f"SetField due_at must be an ISO 8601 time with a UTC offset, got {self.value!r}"
            raise InvalidWorkflow(msg)


@attrs.frozen
class AddTag:
    """Add a tag to the task."""

    type: ClassVar[str] = "add_tag"
    tag: str = attrs.field(validator=not_blank)


@attrs.frozen
class RemoveTag:
    """Remove a tag from the task."""

    type: ClassVar[str] = "remove_tag"
    tag: str = attrs.field(validator=not_blank)


@attrs.frozen
class AddWatcher:
    """Add a user (of either party) to the task's watchers."""

    type: ClassVar[str] = "add_watcher"
    user: UserRef


def _user_names(value: Iterable[str]) -> tuple[str, ...]:
    names = tuple(value)
    if not names or not all(isinstance(n, str) and n.strip() for n in names):
        msg = f"AssignTo.users must name at least one user of the rule's company, got {names!r}"
        raise InvalidWorkflow(msg)
    return names


@attrs.frozen
class AssignTo:
    """Make users of the rule's company the assignees; `rotate` picks one by the task number."""

    type: ClassVar[str] = "assign"
    users: tuple[str, ...] = attrs.field(converter=_user_names)
    rotate: bool = False


def _visibility(value: Any) -> Any:
    try:
        return Visibility(value)
    except ValueError:
        msg = f"PostComment.visibility must be 'public' or 'internal', got {value!r}"
        raise InvalidWorkflow(msg) from None


@attrs.frozen
class PostComment:
    """Add a public or internal comment made from a template (`$number`, `$subject`, ...)."""

    type: ClassVar[str] = "comment"
    template: str = attrs.field(validator=_template)
    visibility: Visibility = attrs.field(default=Visibility.INTERNAL, converter=_visibility)


def _payload(value: Any) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        msg = f"TakeAction.payload must be a mapping of the payload's fields, got {value!r:.80}"
        raise InvalidWorkflow(msg)
    return dict(value)


@attrs.frozen
class TakeAction:
    """Take a workflow action; `payload` holds its payload's fields as JSON-ready data."""

    type: ClassVar[str] = "action"
    action: str = attrs.field(validator=not_blank)
    payload: Mapping[str, Any] | None = attrs.field(
        default=None, converter=_payload, eq=False, hash=False
    )


def _recipients(value: Iterable[Any]) -> frozenset[Recipient]:
    try:
        return frozenset(Recipient(v) for v in value)
    except ValueError:
        allowed = ", ".join(repr(r.value) for r in Recipient)
        msg = f"Notify.to must name recipients among {allowed}, got {value!r}"
        raise InvalidWorkflow(msg) from None


def _refs(value: Iterable[UserRef]) -> tuple[UserRef, ...]:
    return tuple(value)


@attrs.frozen
class Notify:
    """Tell people of the task (by role: requester, assignees, ...; or named users) a templated text."""

    type: ClassVar[str] = "notify"
    template: str = attrs.field(validator=_template)
    to: frozenset[Recipient] = attrs.field(default=frozenset(), converter=_recipients)
    users: tuple[UserRef, ...] = attrs.field(default=(), converter=_refs)

    def __attrs_post_init__(self) -> None:
        if not self.to and not self.users:
            msg = "Notify needs recipients: `to` (requester, assignees, ...) or named `users`"
            raise InvalidWorkflow(msg)


RuleAction = (
    SetField | AddTag | RemoveTag | AddWatcher | AssignTo | PostComment | TakeAction | Notify
)
"""One thing a rule does when it fires."""

ACTION_TYPES: dict[str, type] = {
    cls.type: cls
    for cls in (SetField, AddTag, RemoveTag, AddWatcher, AssignTo, PostComment, TakeAction, Notify)
}
"""Each rule action class by the `type` name it is stored under."""


def _actions(value: Iterable[Any]) -> tuple[Any, ...]:
    actions = tuple(value)
    wrong = [a for a in actions if type(a) not in ACTION_TYPES.values()]
    if not actions or wrong:
        msg = (
            f"Rule.actions must be one or more of {', '.join(c.__name__ for c in ACTION_TYPES.values())}, "
            f"got {wrong[0] if wrong else 'none'!r:.80}"
        )
        raise InvalidWorkflow(msg)
    return actions


def _rule_name(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", value):
        msg = (
            f"Rule.name must be 1-100 letters, digits, '_', '.' or '-' (it names the rule's "
            f"actor in history), got {value!r:.80}"
        )
        raise InvalidWorkflow(msg)


def _trigger(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Trigger):
        msg = f"Rule.trigger must be a Trigger, got {value!r:.80}"
        raise InvalidWorkflow(msg)


def _condition(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, Condition):
        msg = f"Rule.condition must be a Condition or None, got {value!r:.80}"
        raise InvalidWorkflow(msg)


def _order(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        msg = f"Rule.order must be a whole number, got {value!r}"
        raise InvalidWorkflow(msg)


@attrs.frozen
class Rule:
    """One automation rule: when `trigger` happens and `condition` holds, do `actions` in order.

    Rules run in (`order`, `name`) order; a rule acts as the system actor `rule:<name>` of the
    automation's company, so its changes land in history as done by it.
    """

    name: str = attrs.field(validator=_rule_name)
    trigger: Trigger = attrs.field(validator=_trigger)
    actions: tuple[RuleAction, ...] = attrs.field(converter=_actions)
    condition: Condition | None = attrs.field(default=None, validator=_condition)
    order: int = attrs.field(default=0, validator=_order)
    enabled: bool = True
    description: str = ""


def _event_keys(event: DomainEvent, changed: tuple[str, ...]) -> list[tuple[str, str | None]]:
    keys: list[tuple[str, str | None]] = [(On.ANY.value, None), (On.ACTION.value, event.action)]
    if event.action == OPEN:
        keys.append((On.OPENED.value, None))
    elif event.action == COMMENT:
        keys.append((On.COMMENTED.value, None))
    elif event.action == ESCALATE and isinstance(event.payload, Escalate):
        keys.append((On.SLA_BREACH.value if event.payload.breach else On.SLA_WARNING.value, None))
    if event.to_state != event.from_state:
        keys.append((On.STATE_ENTERED.value, None))
        keys.append((On.STATE_ENTERED.value, event.to_state))
    keys.extend((On.FIELD_CHANGED.value, name) for name in changed)
    return keys


class RuleBook:
    """A checked, ordered set of rules, indexed by trigger, with compiled conditions."""

    __slots__ = ("_index", "_rules", "_tests", "_timed")

    def __init__(self, rules: Iterable[Rule]) -> None:
        listed = list(rules)
        wrong = [r for r in listed if not isinstance(r, Rule)]
        if wrong:
            msg = f"a RuleBook holds Rules, got {wrong[0]!r:.80}"
            raise InvalidWorkflow(msg)
        names = [r.name for r in listed]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            msg = f"rule names must be unique (they name the rules' actors); twice: {twice}"
            raise InvalidWorkflow(msg)
        self._rules = tuple(sorted(listed, key=lambda r: (r.order, r.name)))
        self._tests: dict[str, _Test | None] = {
            r.name: None if r.condition is None else _compile(r.condition) for r in self._rules
        }
        self._index: dict[tuple[str, str | None], list[int]] = {}
        timed: list[Rule] = []
        for position, rule in enumerate(self._rules):
            if not rule.enabled:
                continue
            if rule.trigger.on is On.TIME:
                timed.append(rule)
                continue
            for key in rule.trigger.index_keys():
                self._index.setdefault(key, []).append(position)
        self._timed = tuple(timed)

    @property
    def rules(self) -> tuple[Rule, ...]:
        """Return every rule, in the order they run."""
        return self._rules

    @property
    def timed(self) -> tuple[Rule, ...]:
        """Return the enabled time-triggered rules, in the order they run."""
        return self._timed

    def __getitem__(self, name: str) -> Rule:
        for rule in self._rules:
            if rule.name == name:
                return rule
        msg = f"no rule named {name!r}; rules: {[r.name for r in self._rules]}"
        raise InvalidWorkflow(msg)

    def holds(self, rule: Rule, task: Task, event: DomainEvent | None) -> bool:
        """Tell whether `rule`'s condition holds for `task` and `event` (no condition: it does)."""
        if rule.condition is None:
            return True
        known = rule.name in self._tests and self[rule.name] is rule
        test = self._tests[rule.name] if known else _compile(rule.condition)
        if test is None:  # pragma: no cover - a rule with a condition has a compiled test
            return True
        changed: tuple[str, ...] = ()
        if event is not None and 0 < event.version <= len(task.history):
            changed = task.history[event.version - 1].changed
        return test(_Context(task, event, changed))

    def matching(
        self, event: DomainEvent, task: Task, changed: tuple[str, ...] | None = None
    ) -> tuple[Rule, ...]:
        """Return the enabled rules `event` on `task` fires, in run order.

        `changed` is the fields the event's action changed (default: read from the task's
        history entry of the event's version).
        """
        if changed is None:
            changed = ()
            if 0 < event.version <= len(task.history):
                changed = task.history[event.version - 1].changed
        index = self._index
        positions: set[int] = set()
        for key in _event_keys(event, changed):
            found = index.get(key)
            if found:
                positions.update(found)
        if not positions:
            return ()
        context = _Context(task, event, changed)
        out: list[Rule] = []
        for position in sorted(positions):
            rule = self._rules[position]
            test = self._tests[rule.name]
            if test is None or test(context):
                out.append(rule)
        return tuple(out)


# --- planning: what a rule's actions become on a task ------------------------------------------


@attrs.frozen
class PlannedStep:
    """One workflow action a rule action becomes: its name and payload (a notify has neither)."""

    rule: str
    kind: str  # the RuleAction's type
    action: str | None
    payload: Any = None


def _rotated(users: tuple[str, ...], task: Task) -> str:
    digits = re.search(r"(\d+)$", task.number)
    position = int(digits.group(1)) if digits else sum(task.number.encode())
    return users[(position - 1) % len(users)]


def plan(
    rule: Rule, action: RuleAction, task: Task, event: DomainEvent | None, company: CompanyId
) -> PlannedStep | None:
    """Return the workflow action `action` of `rule` becomes on `task` now; None when it changes nothing.

    `TakeAction` and `Notify` are returned as steps whose payload the automation service
    finishes (it knows the workflow's payload types and the recipients).
    """
    name = rule.name
    if isinstance(action, SetField):
        value: Any = action.value
        if action.field == "priority":
            value = Priority(value)
        elif action.field == "due_at":
            value = _as_time(value)
        if getattr(task, action.field) == value:
            return None
        return PlannedStep(name, action.type, EDIT, Edit(**{action.field: value}))
    if isinstance(action, AddTag):
        if action.tag in task.tags:
            return None
        return PlannedStep(name, action.type, EDIT, Edit(tags=task.tags | {action.tag}))
    if isinstance(action, RemoveTag):
        if action.tag not in task.tags:
            return None
        return PlannedStep(name, action.type, EDIT, Edit(tags=task.tags - {action.tag}))
    if isinstance(action, AddWatcher):
        if action.user in task.watchers:
            return None
        return PlannedStep(name, action.type, EDIT, Edit(watchers=(*task.watchers, action.user)))
    if isinstance(action, AssignTo):
        chosen = (_rotated(action.users, task),) if action.rotate else action.users
        refs = tuple(UserRef(company, UserId(u)) for u in chosen)
        if task.assignees_of(company) == refs:
            return None
        return PlannedStep(name, action.type, ASSIGN, Assign(refs))
    if isinstance(action, PostComment):
        text = render(action.template, task, event, name)
        return PlannedStep(name, action.type, COMMENT, AddComment(text, action.visibility))
    if isinstance(action, TakeAction):
        return PlannedStep(name, action.type, action.action, action.payload)
    return PlannedStep(name, action.type, None, render(action.template, task, event, name))
