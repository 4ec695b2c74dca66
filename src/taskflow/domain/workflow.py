"""Declarative workflow definitions: states, transitions, who may take them; checked when built."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

import attrs

from taskflow.domain.task import EDITABLE_FIELDS, OPEN, NewTask, Task
from taskflow.domain.values import Actor, Side
from taskflow.errors import InvalidWorkflow

__all__ = [
    "ANY_STATE",
    "BOTH_SIDES",
    "OPEN_STATES",
    "Audience",
    "Check",
    "Effect",
    "Guard",
    "OpenCheck",
    "Operation",
    "State",
    "TimeGuard",
    "Transition",
    "Workflow",
]

# A transition whose sources are ANY_STATE may be taken in every state, final ones included;
# one whose sources are OPEN_STATES in every state that is not final.
ANY_STATE: frozenset[str] = frozenset({"*"})
OPEN_STATES: frozenset[str] = frozenset({"+"})
BOTH_SIDES: frozenset[Side] = frozenset(Side)

Guard = Callable[[Task, Actor], str | None]
"""Tell why `actor` may not take a transition on `task` now (a sentence), or None if it may."""

Check = Callable[[Task, Any, Actor, datetime], None]
"""Raise `InvalidPayload` if the payload is not acceptable for this task at this time."""

Effect = Callable[[Task, Any, Actor, datetime], Mapping[str, Any]]
"""Return the task fields an accepted action changes (state, version and history excepted)."""

TimeGuard = Callable[[Task, Actor, datetime], None]
"""Raise an `ActionNotAllowed` (naming why) if a transition may not be taken on `task` at this time.

It sees no payload, so `allowed_actions(..., at=...)` asks it too: what is offered at a time is
what `apply` permits then (an offer past its expiry is not offered `accept`).
"""

OpenCheck = Callable[[NewTask, Actor, datetime], None]
"""Raise `InvalidPayload` if a draft may not open a task of this kind."""


class Operation(enum.StrEnum):
    """What an actor asks to do with tasks of a kind: the columns of a role matrix (seed 000)."""

    CREATE = "create"  # open a task
    SEE = "see"  # read it: get, lists, past states, the actions it offers
    MODIFY = "modify"  # take an action that does not resolve it (comment, edit, ...)
    RESOLVE = "resolve"  # take an action into a final state


class Audience(enum.StrEnum):
    """Who the default notification policy tells about a transition's events."""

    NOBODY = "nobody"
    OTHER_SIDE = "other_side"
    OWN_SIDE = "own_side"
    EVERYONE = "everyone"
    NEW_ASSIGNEES = "new_assignees"


def _sides(value: Side | Iterable[Side]) -> frozenset[Side]:
    if isinstance(value, Side):
        return frozenset({value})
    return frozenset(Side(v) for v in value)


def _states(value: Iterable[State]) -> tuple[State, ...]:
    return tuple(value)


def _transitions(value: Iterable[Transition]) -> tuple[Transition, ...]:
    return tuple(value)


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _names(value: str | Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset({value})
    return frozenset(value)


def _editable(
    value: Mapping[Any, Iterable[str]] | None,
) -> Mapping[Side, frozenset[str]] | None:
    if value is None:
        return None
    rights: dict[Side, frozenset[str]] = {}
    for side, fields in value.items():
        if side not in Side.__members__.values():
            msg = f"editable fields are given for {side!r}, which is not a side; sides: {[s.value for s in Side]}"
            raise InvalidWorkflow(msg)
        rights[Side(side)] = frozenset(fields)
    return MappingProxyType(rights)


def _operation(value: Operation | str | None) -> Operation | str | None:
    # A name that is no operation stays as given, for the workflow check to name with its action.
    if isinstance(value, str) and value in Operation.__members__.values():
        return Operation(value)
    return value


@attrs.frozen
class State:
    """A named state of a workflow; a non-final state says whose court the ball is in."""

    name: str
    waiting_on: Side | None = None
    final: bool = False
    label: str = ""

    @property
    def title(self) -> str:
        """Return the human label, or the name when no label was given."""
        return self.label or self.name.replace("_", " ").capitalize()


@attrs.frozen
class Transition:
    """A named action: from which states, to which state, who may take it, and what it does.

    `operation` says what a role matrix counts it as (default: `resolve` into a final state,
    `modify` otherwise); `system_only` lets only system actors take it; `editable` makes it an
    edit action and says which fields each side may change with it; `time_guard` refuses it
    at the times it may not be taken (a deadline), for `apply` and `allowed_actions` alike.
    """

    name: str
    sources: frozenset[str] = attrs.field(converter=_names)
    target: str | None
    by: frozenset[Side] = attrs.field(converter=_sides)
    roles: frozenset[str] = attrs.field(default=frozenset(), converter=frozenset)
    payload: type | None = None
    guard: Guard | None = None
    check: Check | None = None
    effect: Effect | None = None
    events: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    notify: Audience = Audience.OTHER_SIDE
    description: str = ""
    # For an edit action: the fields each side may change with it (read by the authorizer).
    editable: Mapping[Side, frozenset[str]] | None = attrs.field(
        default=None, converter=_editable, hash=False
    )
    operation: Operation | None = attrs.field(default=None, converter=_operation)
    system_only: bool = False
    # The effect this action had when histories were stored without facts (schema 1), if it
    # changed since: loading such a history runs the old rules to derive its facts.
    schema_1_effect: Effect | None = attrs.field(default=None, kw_only=True)
    time_guard: TimeGuard | None = attrs.field(default=None, kw_only=True)

    @property
    def stays(self) -> bool:
        """Tell whether the transition keeps the task in the state it was in."""
        return self.target is None

    @property
    def everywhere(self) -> bool:
        """Tell whether the transition is declared for every state (or every open state)."""
        return self.sources in (ANY_STATE, OPEN_STATES)

    def starts_from(self, state: State) -> bool:
        """Tell whether the transition may be taken in `state`."""
        if self.sources == ANY_STATE:
            return True
        if self.sources == OPEN_STATES:
            return not state.final
        return state.name in self.sources

    @property
    def event_names(self) -> tuple[str, ...]:
        """Return the events the transition emits (its own name when none were declared)."""
        return self.events or (self.name,)


def _workflow_indexes(
    states: tuple[State, ...], transitions: tuple[Transition, ...]
) -> tuple[dict[str, State], dict[str, Transition], dict[str, tuple[Transition, ...]]]:
    by_state: dict[str, list[Transition]] = {s.name: [] for s in states}
    for t in transitions:
        for s in states:
            if t.starts_from(s):
                by_state[s.name].append(t)
    return (
        {s.name: s for s in states},
        {t.name: t for t in transitions},
        {name: tuple(ts) for name, ts in by_state.items()},
    )


@attrs.frozen(eq=False)
class Workflow:
    """A task kind's state machine as data: list it, check it, draw it, run it with the engine."""

    name: str
    states: tuple[State, ...] = attrs.field(converter=_states)
    transitions: tuple[Transition, ...] = attrs.field(converter=_transitions)
    initial: str
    open_roles: frozenset[str] = attrs.field(default=frozenset(), converter=frozenset)
    open_check: OpenCheck | None = None
    description: str = ""
    # Raised by the host when stored tasks need an upgrade to fit (see `TaskKind.upgrades`).
    version: int = 1
    # Whoever answers for a company that has no assignee on the task becomes its assignee, so
    # the task comes back to their inbox (the engine applies it to every transition).
    assign_answerer: bool = True
    _states_by_name: dict[str, State] = attrs.field(init=False, repr=False)
    _by_name: dict[str, Transition] = attrs.field(init=False, repr=False)
    _from_state: dict[str, tuple[Transition, ...]] = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        _validate(self)
        states, by_name, from_state = _workflow_indexes(self.states, self.transitions)
        object.__setattr__(self, "_states_by_name", states)
        object.__setattr__(self, "_by_name", by_name)
        object.__setattr__(self, "_from_state", from_state)

    @property
    def state_names(self) -> tuple[str, ...]:
        """Return the names of all states, in declaration order."""
        return tuple(s.name for s in self.states)

    @property
    def action_names(self) -> tuple[str, ...]:
        """Return the names of all actions, in declaration order."""
        return tuple(t.name for t in self.transitions)

    @property
    def final_states(self) -> frozenset[str]:
        """Return the names of the final states."""
        return frozenset(s.name for s in self.states if s.final)

    def state(self, name: str) -> State:
        """Return the state called `name`."""
        try:
            return self._states_by_name[name]
        except KeyError:
            msg = f"workflow '{self.name}' has no state '{name}'; states: {self.state_names}"
            raise InvalidWorkflow(msg) from None

    def transition(self, name: str) -> Transition | None:
        """Return the transition called `name`, or None if the workflow has none of that name."""
        return self._by_name.get(name)

    def transitions_from(self, state: str) -> tuple[Transition, ...]:
        """Return the transitions that may be taken in `state`, in declaration order."""
        return self._from_state.get(state, ())

    def with_transitions(self, *extra: Transition) -> Workflow:
        """Return a copy with more transitions (checked like any workflow)."""
        return attrs.evolve(self, transitions=(*self.transitions, *extra))


def _validate(wf: Workflow) -> None:
    problems: list[str] = []
    if not isinstance(wf.version, int) or isinstance(wf.version, bool) or wf.version < 1:
        problems.append(f"version must be a whole number >= 1, got {wf.version!r}")
    names = [s.name for s in wf.states]
    problems += [f"state '{n}' is declared twice" for n in _twice(names)]
    actions = [t.name for t in wf.transitions]
    problems += [f"action '{n}' is declared twice" for n in _twice(actions)]
    if OPEN in actions:
        problems.append(f"'{OPEN}' is reserved for the first history entry; rename that action")
    problems += [
        f"state name {n!r} must be a Python identifier (letters, digits, _)"
        for n in names
        if not n.isidentifier()
    ]
    problems += [
        f"action name {n!r} must be a Python identifier (letters, digits, _)"
        for n in actions
        if not n.isidentifier()
    ]
    known = set(names)
    if wf.initial not in known:
        problems.append(f"initial state '{wf.initial}' is not one of the states {tuple(names)}")
    for s in wf.states:
        if s.final and s.waiting_on is not None:
            problems.append(f"final state '{s.name}' cannot wait on a side")
        if not s.final and s.waiting_on is None:
            problems.append(f"state '{s.name}' is not final, so it must say whose court it is in")
    for t in wf.transitions:
        if not t.sources:
            problems.append(f"action '{t.name}' has no source state")
        if not t.everywhere:
            problems += [
                f"action '{t.name}' starts from unknown state '{src}'"
                for src in sorted(t.sources - known)
            ]
        if t.target is not None and t.target not in known:
            problems.append(f"action '{t.name}' leads to unknown state '{t.target}'")
        if not t.by:
            problems.append(f"action '{t.name}' names no side that may take it")
        if t.payload is not None and not attrs.has(t.payload):
            problems.append(f"action '{t.name}' payload {t.payload!r} is not an attrs class")
        problems += _authorization_problems(t)
    if not problems:
        problems += _reachability(wf, names)
    if problems:
        msg = f"workflow '{wf.name}' is invalid: " + "; ".join(problems)
        raise InvalidWorkflow(msg)


def _authorization_problems(t: Transition) -> list[str]:
    problems: list[str] = []
    if t.operation is not None and t.operation not in (Operation.MODIFY, Operation.RESOLVE):
        problems.append(
            f"action '{t.name}' declares operation '{t.operation}'; an action is "
            f"'{Operation.MODIFY}' or '{Operation.RESOLVE}' (opening a task is "
            f"'{Operation.CREATE}', reading it '{Operation.SEE}')"
        )
    if t.editable is not None:
        # A kind's own edit payload may name the fields it can change (`EDITABLE_FIELDS`).
        editable = frozenset(getattr(t.payload, "EDITABLE_FIELDS", EDITABLE_FIELDS))
        for side, fields in t.editable.items():
            unknown = sorted(fields - editable)
            if unknown:
                problems.append(
                    f"action '{t.name}' lets the {side.value} edit {unknown}, which are not "
                    f"editable; choose from {sorted(editable)}"
                )
        if not callable(getattr(t.payload, "fields", None)):
            problems.append(
                f"action '{t.name}' has editable fields, so its payload needs a fields() method "
                f"naming the fields it changes (as Edit has), got {t.payload!r}"
            )
    return problems


def _twice(items: list[str]) -> list[str]:
    seen: set[str] = set()
    doubles: list[str] = []
    for item in items:
        if item in seen and item not in doubles:
            doubles.append(item)
        seen.add(item)
    return doubles


def _reachability(wf: Workflow, names: list[str]) -> list[str]:
    moves: dict[str, set[str]] = {n: set() for n in names}
    for t in wf.transitions:
        if t.target is None:
            continue
        for src in (s.name for s in wf.states if t.starts_from(s)):
            if src != t.target:
                moves[src].add(t.target)
    reached = {wf.initial}
    frontier = [wf.initial]
    while frontier:
        for nxt in moves[frontier.pop()]:
            if nxt not in reached:
                reached.add(nxt)
                frontier.append(nxt)
    problems = [
        f"state '{n}' cannot be reached from '{wf.initial}'" for n in names if n not in reached
    ]
    finals = {s.name for s in wf.states if s.final}
    problems += [
        f"state '{n}' is not final but has no action that leaves it"
        for n in names
        if n not in finals and not moves[n]
    ]
    return problems
