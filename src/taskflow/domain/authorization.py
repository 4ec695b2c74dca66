"""Who may do what with a task: the one seam the engine and the service ask (C10, C11). Pure.

An `Authorizer` answers four questions with a `Decision`: may this actor open a task of a
kind (`Operation.CREATE`), see a task or a kind at all (`SEE`), take a transition on a task
(`MODIFY`, or `RESOLVE` for a transition into a final state), and which fields it may edit.
`DefaultAuthorizer` states the rules of the workflows themselves (parties, sides, roles, the
workflow's open roles, edit rights per side); `RoleMatrix` adds a host's role matrix on top.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Protocol

import attrs

from taskflow.domain.task import Task
from taskflow.domain.validators import excerpt
from taskflow.domain.values import Actor
from taskflow.domain.workflow import Operation, Transition, Workflow
from taskflow.errors import InvalidPayload, InvalidWorkflow

__all__ = [
    "ALLOW",
    "ANY_KIND",
    "DEFAULT_AUTHORIZER",
    "Authorizer",
    "Decision",
    "DefaultAuthorizer",
    "Operation",
    "RoleMatrix",
    "is_system_actor",
    "operation_of",
]

# The kind name a role matrix uses for "every kind".
ANY_KIND = "*"


_ALL_OPERATIONS: frozenset[Operation] = frozenset(Operation)
_OPERATION_NAMES: frozenset[str] = frozenset(o.value for o in Operation)


def operation_of(workflow: Workflow, transition: Transition) -> Operation:
    """Return what taking `transition` is: its declared operation, else RESOLVE into a final state, else MODIFY."""
    if transition.operation is not None:
        return transition.operation
    if transition.target is not None and workflow.state(transition.target).final:
        return Operation.RESOLVE
    return Operation.MODIFY


def is_system_actor(actor: Actor) -> bool:
    """Tell whether `actor` is a system (a rule, a scheduler) rather than a person."""
    return actor.is_system


def _reason(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not isinstance(value, str) or (not instance.allowed and not value.strip()):
        msg = f"a refusing Decision must say why in a non-blank sentence, got {excerpt(value)}"
        raise InvalidPayload(msg, field="reason")


@attrs.frozen
class Decision:
    """An authorizer's answer: allowed, or refused with a sentence naming who, what and what is allowed.

    A `Decision` is true exactly when it allows, so `if authorizer.may_see(...)` reads right.
    """

    allowed: bool
    reason: str = attrs.field(default="", validator=_reason)

    def __bool__(self) -> bool:
        return self.allowed

    @classmethod
    def deny(cls, reason: str) -> Decision:
        """Return a refusal that gives `reason`."""
        return cls(False, reason)


ALLOW = Decision(True)
"""The one allowing `Decision`."""


class Authorizer(Protocol):
    """Decides who may open, see, act on and edit tasks; the engine and the service ask only this."""

    def may_open(self, workflow: Workflow, kind: str, actor: Actor) -> Decision:
        """Tell whether `actor` may open a task of `kind` (CREATE)."""
        ...

    def may_see(self, task: Task, actor: Actor) -> Decision:
        """Tell whether `actor` may see `task` (SEE); a refused task is not found for the actor."""
        ...

    def may_see_kind(self, kind: str, actor: Actor) -> Decision:
        """Tell whether `actor` may see tasks of `kind` at all (SEE), for counts over many tasks."""
        ...

    def may_take(
        self, workflow: Workflow, task: Task, transition: Transition, actor: Actor
    ) -> Decision:
        """Tell whether `actor` may take `transition` on `task` (MODIFY or RESOLVE), state and guard aside."""
        ...

    def editable_fields(
        self, workflow: Workflow, task: Task, transition: Transition, actor: Actor
    ) -> frozenset[str]:
        """Return the fields `actor` may change on `task` with the edit `transition` (none: not offered)."""
        ...


def _roles(actor: Actor) -> str:
    return str(sorted(actor.roles)) if actor.roles else "none"


@attrs.frozen
class DefaultAuthorizer:
    """The rules the workflows state: parties, sides and roles per transition, open roles, edit rights.

    A company that is neither the requester nor the recipient of a task sees nothing of it and
    may do nothing with it. A system actor (`is_system_actor`) is held to the same rules as a
    user of its company; only it may take a transition declared `system_only`.
    """

    def may_open(self, workflow: Workflow, kind: str, actor: Actor) -> Decision:
        """Allow opening unless the workflow names open roles and `actor` has none of them."""
        if workflow.open_roles and not actor.roles & workflow.open_roles:
            return Decision.deny(
                f"opening a task of kind '{kind}' needs one of the roles "
                f"{sorted(workflow.open_roles)}; {actor} has {_roles(actor)}"
            )
        return ALLOW

    def may_see(self, task: Task, actor: Actor) -> Decision:
        """Allow the users of the requester's and the recipient's company to see `task`."""
        if task.is_party(actor.company):
            return ALLOW
        return Decision.deny(
            f"{actor} is not a party to task {task.number}; only its requester and recipient are"
        )

    def may_see_kind(self, kind: str, actor: Actor) -> Decision:
        """Allow every kind: what a company sees is decided task by task, by party."""
        return ALLOW

    def may_take(
        self, workflow: Workflow, task: Task, transition: Transition, actor: Actor
    ) -> Decision:
        """Allow `transition` to a system actor if it is system-only, then to its sides and roles."""
        t = transition
        if t.system_only and not is_system_actor(actor):
            return Decision.deny(
                f"'{t.name}' on task {task.number} is taken by the system only; {actor} is a user"
            )
        sides = task.sides_of(actor.company)
        if t.by.isdisjoint(sides):
            wanted = " or ".join(f"the {s.value} ({task.company_of(s)})" for s in sorted(t.by))
            have = " and ".join(s.value for s in sorted(sides))
            who = f"is the {have}" if have else "is not a party to it"
            return Decision.deny(f"'{t.name}' on task {task.number} is for {wanted}; {actor} {who}")
        if t.roles and not t.roles & actor.roles:
            return Decision.deny(
                f"'{t.name}' on task {task.number} needs one of the roles {sorted(t.roles)}; "
                f"{actor} has {_roles(actor)}"
            )
        return ALLOW

    def editable_fields(
        self, workflow: Workflow, task: Task, transition: Transition, actor: Actor
    ) -> frozenset[str]:
        """Return the fields the transition's `editable` gives the sides `actor`'s company is on."""
        editable = transition.editable
        if editable is None:
            return frozenset()
        return frozenset().union(
            *(editable.get(side, frozenset()) for side in task.sides_of(actor.company))
        )


DEFAULT_AUTHORIZER: Authorizer = DefaultAuthorizer()
"""The authorizer the engine and the service use unless given another."""


def _operation_names(where: str, value: Any, problems: list[str]) -> frozenset[Operation] | None:
    given = (value,) if isinstance(value, str) else value
    if not isinstance(given, Iterable):
        problems.append(f"{where}: operations must be a set of names, got {excerpt(value)}")
        return None
    names = tuple(given)
    unknown = [n for n in names if not (isinstance(n, str) and n in _OPERATION_NAMES)]
    if unknown:
        known = ", ".join(o.value for o in Operation)
        problems.append(f"{where}: unknown operations {unknown}; operations are {known}")
        return None
    return frozenset(Operation(n) for n in names)


def _entries(value: Any) -> Mapping[str, Mapping[str, frozenset[Operation]]]:
    if not isinstance(value, Mapping):
        msg = f"a role matrix maps kind names to {{role: operations}}, got {type(value).__name__}"
        raise InvalidWorkflow(msg)
    problems: list[str] = []
    entries: dict[str, Mapping[str, frozenset[Operation]]] = {}
    for kind, row in value.items():
        if not isinstance(kind, str) or not kind.strip():
            problems.append(f"kind name {excerpt(kind)} must be non-blank text (or '{ANY_KIND}')")
            continue
        if not isinstance(row, Mapping) or not row:
            problems.append(
                f"'{kind}' must map at least one role name to its operations, got {excerpt(row)}"
            )
            continue
        rights: dict[str, frozenset[Operation]] = {}
        for role, operations in row.items():
            if not isinstance(role, str) or not role.strip():
                problems.append(f"'{kind}': role name {excerpt(role)} must be non-blank text")
                continue
            granted = _operation_names(f"'{kind}' -> '{role}'", operations, problems)
            if granted is not None:
                rights[role] = granted
        entries[kind] = MappingProxyType(rights)
    if problems:
        msg = "role matrix is invalid: " + "; ".join(problems)
        raise InvalidWorkflow(msg)
    return MappingProxyType(entries)


def _optional_names(value: Iterable[str] | None) -> frozenset[str] | None:
    return None if value is None else frozenset(value)


def _merged_rows(
    entries: Mapping[str, Mapping[str, frozenset[Operation]]],
) -> dict[str, Mapping[str, frozenset[Operation]]]:
    every = entries.get(ANY_KIND, {})
    rows: dict[str, Mapping[str, frozenset[Operation]]] = {ANY_KIND: every}
    for kind, own in entries.items():
        roles = {*every, *own}
        rows[kind] = {r: every.get(r, frozenset()) | own.get(r, frozenset()) for r in roles}
    return rows


@attrs.frozen(eq=False)
class RoleMatrix:
    """A host's role matrix as data: per kind (`"*"` for every kind), the operations each role may do.

    Both this matrix and `base` (the default rules) must allow: a matrix never lets a stranger
    company in. A role listed under `"*"` holds its operations on every kind, in addition to
    what the kind's own entry gives it. For a kind the matrix names roles for, a user with none
    of them may do nothing, not even see its tasks; a kind it names no roles for is left to
    `base` alone. A system actor is held to the matrix only if it has a role the matrix names
    for the kind. With `kinds` (say `registry.names`), an entry for any other kind is refused.
    """

    entries: Mapping[str, Mapping[str, frozenset[Operation]]] = attrs.field(converter=_entries)
    base: Authorizer = attrs.field(default=DEFAULT_AUTHORIZER, kw_only=True)
    kinds: frozenset[str] | None = attrs.field(
        default=None, converter=_optional_names, kw_only=True
    )
    _rows: dict[str, Mapping[str, frozenset[Operation]]] = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.kinds is not None:
            unknown = sorted(set(self.entries) - self.kinds - {ANY_KIND})
            if unknown:
                msg = (
                    f"role matrix is invalid: it names kinds {unknown} that are not registered; "
                    f"kinds: {sorted(self.kinds)}"
                )
                raise InvalidWorkflow(msg)
        object.__setattr__(self, "_rows", _merged_rows(self.entries))

    def operations(self, kind: str, actor: Actor) -> frozenset[Operation]:
        """Return what the matrix lets `actor` do with tasks of `kind` (all, where it does not apply)."""
        row = self._rows.get(kind, self._rows[ANY_KIND])
        held = actor.roles & row.keys()
        if not row or (not held and is_system_actor(actor)):
            return _ALL_OPERATIONS
        return frozenset().union(*(row[r] for r in held))

    def _check(self, kind: str, actor: Actor, operation: Operation, asked: str) -> Decision:
        may = self.operations(kind, actor)
        if operation in may:
            return ALLOW
        row = self._rows.get(kind, self._rows[ANY_KIND])
        granting = sorted(r for r, ops in row.items() if operation in ops)
        which = f"which the roles {granting} have" if granting else "which no role has"
        rights = ", ".join(o.value for o in Operation if o in may) or "nothing"
        return Decision.deny(
            f"{asked} needs the '{operation}' right on '{kind}' tasks, {which}; "
            f"{actor} has {_roles(actor)} (may: {rights})"
        )

    def may_open(self, workflow: Workflow, kind: str, actor: Actor) -> Decision:
        """Allow opening if `base` does and the matrix gives `actor` CREATE on `kind`."""
        decision = self.base.may_open(workflow, kind, actor)
        if not decision:
            return decision
        return self._check(kind, actor, Operation.CREATE, "opening a task")

    def may_see(self, task: Task, actor: Actor) -> Decision:
        """Allow seeing `task` if `base` does and the matrix gives `actor` SEE on its kind."""
        decision = self.base.may_see(task, actor)
        if not decision:
            return decision
        return self._check(task.kind, actor, Operation.SEE, f"seeing task {task.number}")

    def may_see_kind(self, kind: str, actor: Actor) -> Decision:
        """Allow seeing tasks of `kind` if `base` does and the matrix gives `actor` SEE on it."""
        decision = self.base.may_see_kind(kind, actor)
        if not decision:
            return decision
        return self._check(kind, actor, Operation.SEE, "seeing tasks")

    def may_take(
        self, workflow: Workflow, task: Task, transition: Transition, actor: Actor
    ) -> Decision:
        """Allow `transition` if `base` does and the matrix gives `actor` its operation (`operation_of`)."""
        decision = self.base.may_take(workflow, task, transition, actor)
        if not decision:
            return decision
        operation = operation_of(workflow, transition)
        asked = f"'{transition.name}' on task {task.number}"
        return self._check(task.kind, actor, operation, asked)

    def editable_fields(
        self, workflow: Workflow, task: Task, transition: Transition, actor: Actor
    ) -> frozenset[str]:
        """Return `base`'s editable fields if the matrix lets `actor` take the edit, else none."""
        if operation_of(workflow, transition) not in self.operations(task.kind, actor):
            return frozenset()
        return self.base.editable_fields(workflow, task, transition, actor)
