"""The engine: runs a workflow on a task. Pure: the caller passes the time, the ids and the actor."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from itertools import chain
from operator import attrgetter
from typing import Any

import attrs

from taskflow.domain._fast import copier, positional_builder
from taskflow.domain.authorization import DEFAULT_AUTHORIZER, Authorizer
from taskflow.domain.task import (
    APPENDABLE_FIELDS,
    OPEN,
    TASK_FIELDS,
    Cause,
    DomainEvent,
    HistoryEntry,
    NewTask,
    Task,
    append_entry,
    replace_fields,
    seed_private_authors,
)
from taskflow.domain.validators import excerpt
from taskflow.domain.values import Actor, TaskId
from taskflow.domain.workflow import Transition, Workflow
from taskflow.errors import ActionNotAllowed, InvalidPayload, InvalidWorkflow, PermissionDenied

__all__ = [
    "Change",
    "Outcome",
    "allowed_actions",
    "apply",
    "changes",
    "open_task",
    "replay",
    "task_at",
]

# Fields only the engine sets: identity never changes, and state, resolution, history and
# version follow from the transition itself. An effect returns the other fields it changes.
_ENGINE_OWNED = frozenset(
    {
        "id", "number", "kind", "requester", "recipient", "created_at",
        "state", "resolved_at", "history", "version", "workflow_version",
    }
)  # fmt: skip
_ORDER: dict[str, int] = {name: i for i, name in enumerate(TASK_FIELDS)}
# Every history entry names the fields it changed; the same few combinations recur, so entries
# share one tuple per combination (a bounded intern table, filled as actions run).
_CHANGED: dict[tuple[str, ...], tuple[str, ...]] = {}
_CHANGED_LIMIT = 4096
# The same for the names of appended fields, and for the facts of 'open' entries that hold no
# resolution time (a handful: one per side the initial state may wait on).
_APPENDED: dict[tuple[str, ...], tuple[str, ...]] = {}
_OPENED: dict[Any, tuple[Any, ...]] = {}
# How to read each combination's facts off a task (see `_plan`).
_PLANS: dict[tuple[str, ...], tuple[Callable[[Task], tuple[Any, ...]], tuple[int, ...]]] = {}
# The fields an effect may set, and each combination of them in declaration order.
# (`view_of` is no field of a task's data at all: only `visible_to` sets it.)
_EFFECT_FIELDS = frozenset(TASK_FIELDS) - _ENGINE_OWNED - {"view_of"}
_ORDERED: dict[tuple[str, ...], tuple[str, ...]] = {}
# The engine builds what it has checked itself without re-running attrs' validators.
_entry = positional_builder(HistoryEntry)
_event = positional_builder(DomainEvent)
_outcome_of: Callable[[Task, tuple[DomainEvent, ...]], Outcome]  # set below Outcome


@attrs.frozen
class Outcome:
    """What an accepted action produced: the new task and the events it caused."""

    task: Task
    events: tuple[DomainEvent, ...]


_outcome_of = positional_builder(Outcome)
_task = positional_builder(Task)
_copy_task = copier(Task)
_TASK = {a.name: a for a in attrs.fields(Task)}
# Each field's slot setter: how the engine sets the fields of a copy it has not shared yet.
_SET: dict[str, Callable[[Task, Any], None]] = {n: Task.__dict__[n].__set__ for n in _TASK}
_set_version = _SET["version"]
# The fields `open_task` takes from its caller rather than from a checked draft.
_OPEN_CHECKED = ("id", "number", "kind", "created_at", "workflow_version")


def _check_time(at: Any, action: str) -> None:
    """Refuse a time that is not a timezone-aware datetime (the entry and events record it)."""
    if not isinstance(at, datetime) or at.utcoffset() is None:
        msg = f"the time of '{action}' must be a timezone-aware datetime, got {excerpt(at)}"
        raise InvalidPayload(msg, field="at", action=action)


@attrs.frozen
class Change:
    """One field an action changed, with its value before and after."""

    field: str
    before: Any
    after: Any


def open_task(
    workflow: Workflow,
    kind: str,
    draft: NewTask,
    actor: Actor,
    at: datetime,
    task_id: TaskId,
    number: str,
    *,
    data_type: type | None = None,
    cause: Cause | None = None,
    authorizer: Authorizer = DEFAULT_AUTHORIZER,
) -> Outcome:
    """Open a task from `draft`: `actor` becomes the requester and the first assignee on its side.

    A system actor (a rule, a scheduler) is the requester but not an assignee: nobody works on
    the task as it.
    """
    _check_time(at, OPEN)
    if not isinstance(draft, NewTask):
        msg = f"opening a task needs a NewTask draft, got {type(draft).__name__}"
        raise InvalidPayload(msg, field="draft", action=OPEN)
    decision = authorizer.may_open(workflow, kind, actor)
    if not decision:
        msg = decision.reason
        raise PermissionDenied(msg, action=OPEN)
    if data_type is not None and not isinstance(draft.data, data_type):
        msg = (
            f"a task of kind '{kind}' needs data of type {data_type.__name__}, "
            f"got {type(draft.data).__name__}"
        )
        raise InvalidPayload(msg, field="data", action=OPEN)
    parties = {actor.company, draft.recipient}
    for field_name, refs in (("assignees", draft.assignees), ("watchers", draft.watchers)):
        strangers = [str(r) for r in refs if r.company not in parties]
        if strangers:
            msg = (
                f"{field_name} must belong to the requester ({actor.company}) or the recipient "
                f"({draft.recipient}); not: {', '.join(strangers)}"
            )
            raise InvalidPayload(msg, field=field_name, action=OPEN)
    if workflow.open_check is not None:
        workflow.open_check(draft, actor, at)
    state = workflow.state(workflow.initial)
    if state.final:
        facts: tuple[Any, ...] = (None, at)
    else:
        facts = _OPENED.get(state.waiting_on) or _OPENED.setdefault(
            state.waiting_on, (state.waiting_on, None)
        )
    assignees = draft.assignees if actor.is_system else _refs_with(actor, draft.assignees)
    # Built without attrs' validators: the draft's fields were checked when it was made, the
    # rest is the engine's own or checked here.
    entry: HistoryEntry = _entry(OPEN, actor, at, None, state.name, draft, (), cause, facts, ())
    task: Task = _task(
        task_id, number, kind, state.name, draft.subject, actor.ref, draft.recipient, at,
        draft.data, draft.body, draft.category, draft.priority, draft.tags, assignees,
        draft.watchers, draft.links, draft.due_at, facts[1], (), (), facts[0], (entry,), 1,
        workflow.version, None,
    )  # fmt: skip
    for name in _OPEN_CHECKED:
        field = _TASK[name]
        field.validator(task, field, getattr(task, name))  # type: ignore[misc]
    seed_private_authors(task)
    event: DomainEvent = _event(
        "opened", task_id, number, kind, OPEN, actor, at, None, state.name, 1, draft, cause
    )
    return _outcome_of(task, (event,))


def opened_as(outcome: Outcome, task_id: TaskId, number: str, cause: Cause | None) -> Outcome:
    """Return what `open_task` returns for the same call with `task_id`, `number` and `cause`.

    `outcome` must come from `open_task` (the service checks a draft with placeholders before
    it takes a number); only the id and the number are checked again.
    """
    task = outcome.task
    (entry,) = task.history
    (event,) = outcome.events
    entry = _entry(
        entry.action, entry.actor, entry.at, entry.from_state, entry.to_state, entry.payload,
        entry.changed, cause, entry.facts, entry.appended,
    )  # fmt: skip
    new: Task = _copy_task(task)
    object.__setattr__(new, "id", task_id)
    object.__setattr__(new, "number", number)
    object.__setattr__(new, "history", (entry,))
    for name in ("id", "number"):
        field = _TASK[name]
        field.validator(new, field, getattr(new, name))  # type: ignore[misc]
    seed_private_authors(new)
    event = _event(
        event.name, task_id, number, event.kind, event.action, event.actor, event.at,
        event.from_state, event.to_state, event.version, event.payload, cause,
    )  # fmt: skip
    return _outcome_of(new, (event,))


def _refs_with(actor: Actor, refs: tuple[Any, ...]) -> tuple[Any, ...]:
    """Return the opener's ref followed by `refs`, each user once (as `Task` keeps them)."""
    me = actor.ref
    if me in refs:
        return tuple(dict.fromkeys((me, *refs)))
    return (me, *refs)


def _opened(
    entry: HistoryEntry, task_id: TaskId, number: str, kind: str, workflow_version: int
) -> dict[str, Any]:
    """Return the fields of a task as its 'open' entry made it, for replay and changes."""
    draft: NewTask = entry.payload
    actor = entry.actor
    ball, resolved_at = entry.facts
    return {
        "id": task_id,
        "number": number,
        "kind": kind,
        "state": entry.to_state,
        "subject": draft.subject,
        "requester": actor.ref,
        "recipient": draft.recipient,
        "created_at": entry.at,
        "data": draft.data,
        "body": draft.body,
        "category": draft.category,
        "priority": draft.priority,
        "tags": draft.tags,
        # A system actor (a rule, an import) is nobody who works on the task; an opener the
        # draft names again is kept once, as Task keeps it (changes() reads this unconverted).
        "assignees": (
            draft.assignees
            if actor.is_system
            else tuple(dict.fromkeys((actor.ref, *draft.assignees)))
        ),
        "watchers": draft.watchers,
        "links": draft.links,
        "due_at": draft.due_at,
        "resolved_at": resolved_at,
        "comments": (),
        "files": (),
        "ball": ball,
        "workflow_version": workflow_version,
    }


def allowed_actions(
    workflow: Workflow,
    task: Task,
    actor: Actor,
    *,
    authorizer: Authorizer = DEFAULT_AUTHORIZER,
    at: datetime | None = None,
) -> tuple[str, ...]:
    """Return the actions `actor` may take on `task` now, in declaration order.

    With `at` (the time `apply` would be given), an action whose time guard refuses it then
    (an offer past its expiry) is left out; without it, time guards are not asked.
    """
    if not authorizer.may_see(task, actor):
        return ()
    return tuple(
        t.name
        for t in workflow.transitions_from(task.state)
        if _permitted(authorizer, workflow, t, task, actor) is None
        and (t.guard is None or t.guard(task, actor) is None)
        and (at is None or _in_time(t, task, actor, at))
    )


def _in_time(t: Transition, task: Task, actor: Actor, at: datetime) -> bool:
    """Tell whether `t`'s time guard (if any) lets it be taken on `task` at `at`."""
    if t.time_guard is None:
        return True
    try:
        t.time_guard(task, actor, at)
    except ActionNotAllowed:
        return False
    return True


def _not_allowed(
    workflow: Workflow,
    task: Task,
    actor: Actor,
    action: str,
    authorizer: Authorizer,
    at: datetime | None = None,
    **why: Any,
) -> ActionNotAllowed:
    allowed = allowed_actions(workflow, task, actor, authorizer=authorizer, at=at)
    final = workflow.state(task.state).final
    return ActionNotAllowed(task.number, task.state, action, allowed, final=final, **why)


def _permitted(
    authorizer: Authorizer, workflow: Workflow, t: Transition, task: Task, actor: Actor
) -> str | None:
    """Return why `actor` may not take `t` on `task` (the authorizer's reason), or None."""
    decision = authorizer.may_take(workflow, task, t, actor)
    if not decision:
        return decision.reason
    # An edit that could change no field is not offered, so it is refused the same way.
    if t.editable is not None and not authorizer.editable_fields(workflow, task, t, actor):
        return f"{actor} may edit no field of task {task.number} with '{t.name}'"
    return None


def apply(
    workflow: Workflow,
    task: Task,
    action: str,
    actor: Actor,
    at: datetime,
    payload: Any = None,
    *,
    cause: Cause | None = None,
    authorizer: Authorizer = DEFAULT_AUTHORIZER,
) -> Outcome:
    """Take `action` on `task` as `actor` at `at`; return the new task and events, or raise."""
    _check_time(at, action)
    # A stranger learns nothing about the task, not even which actions it has.
    seen = authorizer.may_see(task, actor)
    if not seen:
        msg = seen.reason
        raise PermissionDenied(msg, task=task.number, action=action)
    was_final = task.resolved_at is not None
    known = _MOVES.get((id(workflow), action, task.state, was_final))
    if known is not None and known[0] is workflow:
        transition, step = known[1], known[2]
    else:
        transition, step = _move(workflow, task, action, actor, authorizer, at, was_final)
    _check_permission(authorizer, workflow, transition, task, actor, payload)
    if transition.guard is not None:
        refused = transition.guard(task, actor)
        if refused is not None:
            raise _not_allowed(workflow, task, actor, action, authorizer, at, reason=refused)
    if transition.time_guard is not None:
        try:
            transition.time_guard(task, actor, at)
        except ActionNotAllowed as refused:  # its own error (a deadline): say what is allowed
            raise refused.allowing(
                allowed_actions(workflow, task, actor, authorizer=authorizer, at=at)
            ) from None
    wanted = transition.payload
    if not (payload is None if wanted is None else type(payload) is wanted):
        _check_payload(transition, task, payload)  # a subclass, or refused naming what it needs
    if transition.check is not None:
        transition.check(task, payload, actor, at)
    changes: dict[str, Any] = {}
    if transition.effect is not None:
        changes.update(transition.effect(task, payload, actor, at))
    return _advance(workflow, task, transition, actor, at, payload, changes, cause, step)


# What an action does from one state, worked out once per (workflow, action, state, whether
# the task was final): the transition and its `_step`. Only actions the state allows are kept;
# keyed by id and holding the workflow, so a reused id never finds another's.
_MOVES: dict[tuple[int, str, str, bool], tuple[Workflow, Transition, _Step | None]] = {}


def _move(
    workflow: Workflow,
    task: Task,
    action: str,
    actor: Actor,
    authorizer: Authorizer,
    at: datetime,
    was_final: bool,
) -> tuple[Transition, _Step | None]:
    """Return the transition `action` takes from the task's state and its step, or refuse it."""
    transition = workflow.transition(action)
    if transition is None:
        reason = (
            f"{excerpt(action)} is not an action of workflow '{workflow.name}' "
            f"(its actions: {', '.join(workflow.action_names)})"
        )
        raise _not_allowed(workflow, task, actor, action, authorizer, at, reason=reason)
    if not transition.starts_from(workflow.state(task.state)):
        if transition.everywhere:
            reason = f"'{action}' needs an open state"
            raise _not_allowed(workflow, task, actor, action, authorizer, at, reason=reason)
        needs = sorted(transition.sources)
        raise _not_allowed(workflow, task, actor, action, authorizer, at, needs=needs)
    step = _step(workflow, transition, task.state, was_final)
    if len(_MOVES) < _CHANGED_LIMIT:
        _MOVES[(id(workflow), action, task.state, was_final)] = (workflow, transition, step)
    return transition, step


def _check_permission(
    authorizer: Authorizer,
    workflow: Workflow,
    t: Transition,
    task: Task,
    actor: Actor,
    payload: Any,
) -> None:
    refused = _permitted(authorizer, workflow, t, task, actor)
    if refused is not None:
        msg = refused
        raise PermissionDenied(msg, task=task.number, action=t.name)
    # The fields an edit names are a question of permission, answered before its payload check.
    fits = t.payload is not None and isinstance(payload, t.payload)
    if t.editable is None or not fits:
        return
    allowed = authorizer.editable_fields(workflow, task, t, actor)
    wanted: Iterable[str] = payload.fields()
    denied = sorted(name for name in wanted if name not in allowed)
    if denied:
        msg = (
            f"{actor} may not edit {denied} on task {task.number}; "
            f"may edit: {sorted(allowed) or 'nothing'}"
        )
        raise PermissionDenied(msg, task=task.number, action=t.name)


def _check_payload(t: Transition, task: Task, payload: Any) -> None:
    if t.payload is None:
        if payload is not None:
            msg = f"'{t.name}' on task {task.number} takes no payload, got {type(payload).__name__}"
            raise InvalidPayload(msg, action=t.name)
        return
    if not isinstance(payload, t.payload):
        got = "nothing" if payload is None else type(payload).__name__
        msg = f"'{t.name}' on task {task.number} needs a {t.payload.__name__} payload, got {got}"
        if payload is None and t.description:
            # The description says how to take the action (e.g. which service call builds it).
            msg += f" ({t.name}: {t.description})"
        raise InvalidPayload(msg, action=t.name)


def _advance(
    workflow: Workflow,
    task: Task,
    t: Transition,
    actor: Actor,
    at: datetime,
    payload: Any,
    changes: dict[str, Any],
    cause: Cause | None,
    step: _Step | None,
) -> Outcome:
    if not changes.keys() <= _EFFECT_FIELDS:
        bad = [name for name in changes if name not in _EFFECT_FIELDS]
        msg = (
            f"workflow '{workflow.name}': the effect of '{t.name}' may not set {sorted(bad)}; "
            f"the engine sets {sorted(_ENGINE_OWNED)}"
        )
        raise InvalidWorkflow(msg)
    from_state = task.state
    engine: dict[str, Any] = {}
    if step is not None:
        state, ball, resolves = step
        engine["state"] = state
        if "ball" not in changes:
            engine["ball"] = ball
        if resolves is _RESOLVE:
            engine["resolved_at"] = at
        elif resolves is _REOPEN:
            engine["resolved_at"] = None
    if workflow.assign_answerer:
        _assign_answerer(task, actor, changes, engine)
    try:
        # The engine's own values (a workflow's state name and side, the checked `at`) need no
        # validator; only what the effect returned is converted and validated.
        new = replace_fields(task, changes)
    except (TypeError, ValueError) as exc:
        msg = f"'{t.name}' on task {task.number} would leave it invalid: {exc}"
        raise InvalidPayload(msg, action=t.name) from exc
    if engine:
        for name, value in engine.items():
            _SET[name](new, value)
        changes.update(engine)
    # Compared as converted, so the entry names exactly the fields whose value moved.
    key = tuple(changes)
    ordered = _ORDERED.get(key)
    if ordered is None:
        ordered = tuple(sorted(key, key=_ORDER.__getitem__))
        if len(_ORDERED) < _CHANGED_LIMIT:
            _ORDERED[key] = ordered
    moved = [
        n
        for n in ordered
        if (value := getattr(new, n)) is not (old := getattr(task, n)) and value != old
    ]
    changed = tuple(moved)
    if len(_CHANGED) < _CHANGED_LIMIT:
        changed = _CHANGED.setdefault(changed, changed)
    facts, appended = _facts(task, new, changed)
    to_state: str = changes.get("state", from_state)
    version = task.version + 1
    # `at` was checked by the caller, the facts are the engine's own: built without validators.
    entry: HistoryEntry = _entry(
        t.name, actor, at, from_state, to_state, payload, changed, cause, facts, appended
    )
    # `new` is not shared yet; its entry needed its converted values, so these come last.
    append_entry(task, new, entry)
    _set_version(new, version)
    task_id, number, kind, name = task.id, task.number, task.kind, t.name
    events = tuple(
        [
            _event(
                event, task_id, number, kind, name, actor, at, from_state, to_state, version,
                payload, cause,
            )
            for event in t.event_names
        ]
    )  # fmt: skip
    return _outcome_of(new, events)


def _assign_answerer(
    task: Task, actor: Actor, changes: dict[str, Any], engine: dict[str, Any]
) -> None:
    """Make `actor` its company's assignee if it answers for a company that has none on `task`.

    An answer is an action by the side whose court the ball is in that hands the ball on (to
    the other side, or out of play in a final state). Seed 001: a rejected response comes back
    to the inbox of whoever gave it. System actors are nobody's assignee.
    """
    ball = task.ball
    if ball is None or actor.is_system:
        return
    new_ball = changes["ball"] if "ball" in changes else engine.get("ball", ball)
    if new_ball == ball:
        return
    company = actor.company
    if task.company_of(ball) != company:
        return
    assignees: tuple[Any, ...] = changes.get("assignees", task.assignees)
    for ref in assignees:
        if ref.company == company:
            return
    changes["assignees"] = (*assignees, actor.ref)


# What a transition does to the engine-owned fields from one state, worked out once per
# (workflow, action, state, whether the task was final): the target state's name, its ball,
# and whether the resolution time is set, cleared or kept. None: the state does not change.
_RESOLVE, _REOPEN, _KEEP = "resolve", "reopen", "keep"
_Step = tuple[str, Any, str]
_STEPS: dict[tuple[int, str, str, bool], tuple[Workflow, _Step | None]] = {}


def _step(workflow: Workflow, t: Transition, from_state: str, was_final: bool) -> _Step | None:
    key = (id(workflow), t.name, from_state, was_final)
    known = _STEPS.get(key)
    if known is not None and known[0] is workflow:
        return known[1]
    step: _Step | None = None
    if t.target is not None and t.target != from_state:
        target = workflow.state(t.target)
        resolves = _KEEP
        if target.final and not was_final:
            resolves = _RESOLVE
        elif not target.final and was_final:
            resolves = _REOPEN
        step = (target.name, target.waiting_on, resolves)
    if len(_STEPS) < _CHANGED_LIMIT:
        # Keyed by id and holding the workflow, so a reused id never finds another's step.
        _STEPS[key] = (workflow, step)
    return step


def _plan(changed: tuple[str, ...]) -> tuple[Callable[[Task], tuple[Any, ...]], tuple[int, ...]]:
    """Return how to read the facts of `changed` off a task, and which of them may have grown."""
    grows = tuple(i for i, name in enumerate(changed) if name in APPENDABLE_FIELDS)
    if len(changed) == 1:
        (name,) = changed
        return (lambda task: (getattr(task, name),)), grows
    if not changed:
        return (lambda task: ()), grows
    return attrgetter(*changed), grows


def _facts(
    task: Task, new: Task, changed: tuple[str, ...]
) -> tuple[tuple[Any, ...], tuple[str, ...]]:
    """Return the values an action set, and which of them are only appended items."""
    plan = _PLANS.get(changed)
    if plan is None:
        plan = _plan(changed)
        if len(_PLANS) < _CHANGED_LIMIT:
            _PLANS[changed] = plan
    read, grows = plan
    facts = read(new)
    if not grows:
        return facts, ()
    appended: tuple[str, ...] = ()
    for i in grows:
        name = changed[i]
        value, old = facts[i], getattr(task, name)
        size = len(old)
        # A tuple that grew at its end (a comment, a file) records the new items alone.
        if len(value) > size and value[:size] == old:
            facts = (*facts[:i], value[size:], *facts[i + 1 :])
            appended += (name,)
    if len(_APPENDED) < _CHANGED_LIMIT:
        appended = _APPENDED.setdefault(appended, appended)
    return facts, appended


def _first_entry(task: Task) -> HistoryEntry:
    entries = task.history
    if not entries or entries[0].action != OPEN:
        msg = f"task {task.number} has no '{OPEN}' entry to replay from"
        raise InvalidPayload(msg, field="history")
    return entries[0]


def replay(workflow: Workflow | None, task: Task, *, until: datetime | None = None) -> Task | None:
    """Rebuild `task` from the facts its history records, up to `until`; None if not opened then.

    No guard, check, permission or effect runs, so a task replays under any later version of
    its workflow; `workflow` is not used and may be None (kept for callers that pass it).
    """
    first = _first_entry(task)
    if until is not None and first.at > until:
        return None
    entries = task.history
    count = len(entries)
    if until is not None:
        count = next((i for i, e in enumerate(entries) if e.at > until), count)
    fields = _opened(first, task.id, task.number, task.kind, task.workflow_version)
    # Items appended to a tuple field are gathered in a list, so many appends cost linear time.
    grown: dict[str, list[Any]] = {}
    for entry in entries[1:count]:
        appended = entry.appended
        for name, value in zip(entry.changed, entry.facts, strict=True):
            if appended and name in appended:
                items = grown.get(name)
                if items is None:
                    items = grown[name] = list(fields[name])
                items.extend(value)
            else:
                fields[name] = value
                grown.pop(name, None)
    for name, items in grown.items():
        fields[name] = tuple(items)
    history = entries if count == len(entries) else entries[:count]
    return Task(**fields, history=history, version=count)


def task_at(workflow: Workflow | None, task: Task, at: datetime) -> Task | None:
    """Return the task as it stood at `at` (None if it did not exist yet), rebuilt from history."""
    return replay(workflow, task, until=at)


def changes(workflow: Workflow | None, task: Task, index: int) -> tuple[Change, ...]:
    """Return what history entry `index` changed, each field with its value before and after.

    Read from the recorded facts, without replay: it walks back from the entry until it has
    found the earlier value of every field the entry changed, so the cost is the number of
    entries since the oldest of those fields was last set (at most `index`); `workflow` is
    not used.
    """
    entries = task.history
    index = range(len(entries))[index]  # a negative index counts from the end, as in a tuple
    entry = entries[index]
    if index == 0:
        return ()
    before = _values_before(task, index, entry.changed)
    appended = entry.appended
    return tuple(
        Change(name, before[name], (*before[name], *fact) if name in appended else fact)
        for name, fact in zip(entry.changed, entry.facts, strict=True)
    )


def _values_before(task: Task, index: int, names: tuple[str, ...]) -> dict[str, Any]:
    """Return the values `names` had just before history entry `index`, from recorded facts."""
    entries = task.history
    missing = set(names)
    found: dict[str, Any] = {}
    tails: dict[str, list[tuple[Any, ...]]] = {}
    for at in range(index - 1, 0, -1):
        if not missing:
            break
        earlier = entries[at]
        for name, value in zip(earlier.changed, earlier.facts, strict=True):
            if name not in missing:
                continue
            if name in earlier.appended:
                tails.setdefault(name, []).append(value)
            else:
                found[name] = value
                missing.discard(name)
    if missing:
        first = _first_entry(task)
        opened = _opened(first, task.id, task.number, task.kind, task.workflow_version)
        found.update((name, opened[name]) for name in missing)
    for name, parts in tails.items():
        # Found walking backwards: the oldest appended items come last.
        found[name] = tuple(chain(found[name], *reversed(parts)))
    return found
