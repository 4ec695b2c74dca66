"""SLA policies and the state of their targets, computed from a task's recorded history (pure).

A policy has up to three targets, each a span of business time in the policy's calendar:
first response (from opening to the business's first public answer), next response (from a
customer's public reply to the business's next public answer) and resolution (from opening to
the task's resolution; a reopened task's clock runs on). Every clock stops while the task is in
one of the policy's pausing states and once the task is resolved. Each target has a warning
threshold (a percentage of it, 80 % unless the policy says otherwise, per target) and a breach
(all of it). Reaching the warning threshold fires the warning (level `WARNING`) once per target
and cycle, whether or not the policy has a ladder; the policy's escalation ladder names levels
at percentages of a target (plus business time after it), each fired once per target and
cycle too. Both are fired by a system actor through the `sla_escalate` action, which history
records.

Everything is computed from `Task.history` up to an instant, so the state at a past instant is
recomputed exactly as it stood then.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import attrs

from taskflow.domain.task import HistoryEntry, Task
from taskflow.domain.values import Actor, Priority, UserRef, Visibility, not_blank
from taskflow.domain.workflow import BOTH_SIDES, OPEN_STATES, Operation, Transition
from taskflow.errors import InvalidPayload, InvalidWorkflow
from taskflow.sla.calendar import ALWAYS, BusinessCalendar

__all__ = [
    "ESCALATE",
    "SLA_ESCALATED",
    "SLA_NEXT_EVENT",
    "WARNING",
    "Escalate",
    "EscalationLevel",
    "SlaPolicies",
    "SlaPolicy",
    "SlaRule",
    "SlaState",
    "SlaSubject",
    "Target",
    "TargetState",
    "due_escalations",
    "escalation_action",
    "fired_escalations",
    "is_customer_reply",
    "is_response",
    "next_sla_event",
    "sla_state",
    "state_of",
    "task_account",
]

ESCALATE = "sla_escalate"
"""The action a system actor takes to fire one escalation level of one target."""
SLA_ESCALATED = "sla_escalated"
"""The event `sla_escalate` emits."""
SLA_NEXT_EVENT = "sla_next_event"
"""The indexed field that holds a task's next SLA event time (see `next_sla_event`)."""
WARNING = "warning"
"""The level name of a target's warning (`Escalate.level`); no ladder level may take it."""

_ZERO = timedelta(0)


class Target(enum.StrEnum):
    """An SLA target: the first answer, the next answer after a customer reply, the resolution."""

    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"


def _percent(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1000:
        msg = f"{type(instance).__name__}.{attribute.name} must be a whole percentage from 1 to 1000, got {value!r}"
        raise InvalidPayload(msg, field=attribute.name)


def _span(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None and attribute.name != "after":
        return
    if (
        not isinstance(value, timedelta)
        or value < _ZERO
        or (attribute.name != "after" and not value)
    ):
        what = ">= 0" if attribute.name == "after" else "> 0, or None for no such target"
        msg = (
            f"{type(instance).__name__}.{attribute.name} must be a timedelta {what}, got {value!r}"
        )
        raise InvalidPayload(msg, field=attribute.name)


def _refs(value: Iterable[UserRef]) -> tuple[UserRef, ...]:
    return tuple(dict.fromkeys(value))


@attrs.frozen
class EscalationLevel:
    """One rung of an escalation ladder: reached at `percent` of a target plus `after` business time.

    Firing it notifies the business's assignees on the task (`notify_assignees`) and the users in `notify`.
    """

    name: str = attrs.field(validator=not_blank)
    percent: int = attrs.field(default=100, validator=_percent)
    after: timedelta = attrs.field(default=_ZERO, validator=_span)
    notify_assignees: bool = True
    notify: tuple[UserRef, ...] = attrs.field(default=(), converter=_refs)

    def threshold(self, limit: timedelta) -> timedelta:
        """Return the business time used at which the level is reached, for a target of `limit`."""
        return limit * self.percent / 100 + self.after


def is_response(task: Task, entry: HistoryEntry) -> bool:
    """Tell whether `entry` answers the customer: a public comment by a person of the business."""
    actor = entry.actor
    return (
        entry.action == "comment"
        and not actor.is_system
        and actor.company == task.recipient
        and actor.ref != task.requester
        and getattr(entry.payload, "visibility", None) is Visibility.PUBLIC
    )


def is_customer_reply(task: Task, entry: HistoryEntry) -> bool:
    """Tell whether `entry` is the customer writing back: a public comment by the requester's company."""
    actor = entry.actor
    return (
        entry.action == "comment"
        and not actor.is_system
        and actor.company == task.requester.company
        and actor.company != task.recipient
        and getattr(entry.payload, "visibility", None) is Visibility.PUBLIC
    )


EntryTest = Callable[[Task, HistoryEntry], bool]
"""Tell whether a history entry of a task counts as something (a response, a customer reply)."""


def _ladder(instance: SlaPolicy, attribute: attrs.Attribute[Any], value: Any) -> None:
    names = [level.name for level in instance.ladder]
    doubles = sorted({n for n in names if names.count(n) > 1})
    if doubles:
        msg = f"SLA policy '{instance.name}': escalation levels {doubles} are named twice"
        raise InvalidWorkflow(msg)
    if WARNING in names:
        msg = (
            f"SLA policy '{instance.name}': no escalation level may be named '{WARNING}', the "
            "name of each target's warning; set warning_percent or warnings instead"
        )
        raise InvalidWorkflow(msg)
    if not instance.limits:
        msg = (
            f"SLA policy '{instance.name}' has no target; give first_response, next_response "
            "or resolution"
        )
        raise InvalidWorkflow(msg)


def _warning_pairs(value: Any) -> list[tuple[Any, Any]] | None:
    # A mapping, or the tuple of pairs the field holds (attrs.evolve passes it back in).
    if hasattr(value, "items"):
        return list(value.items())
    if isinstance(value, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in value):
        return list(value)
    return None


def _warnings(value: Any) -> tuple[tuple[Target, int], ...]:
    pairs = _warning_pairs(value)
    if pairs is None:
        msg = f"SlaPolicy.warnings must map targets to whole percentages, got {value!r:.80}"
        raise InvalidPayload(msg, field="warnings")
    out: dict[Target, int] = {}
    for target, percent in pairs:
        try:
            key = Target(target)
        except ValueError:
            msg = (
                f"SlaPolicy.warnings: {target!r:.40} is not a target; targets: "
                f"{', '.join(t.value for t in Target)}"
            )
            raise InvalidPayload(msg, field="warnings") from None
        if not isinstance(percent, int) or isinstance(percent, bool) or not 1 <= percent <= 100:
            msg = (
                f"SlaPolicy.warnings[{key.value!r}] must be a whole percentage from 1 to 100, "
                f"got {percent!r:.40}"
            )
            raise InvalidPayload(msg, field="warnings")
        out[key] = percent
    return tuple(sorted(out.items(), key=lambda kv: list(Target).index(kv[0])))


@attrs.frozen
class SlaPolicy:
    """Targets in business time of `calendar`, pausing states, the warning thresholds and a ladder.

    Each target warns at `warning_percent` of it, or at its own percentage in `warnings`
    (`{Target.RESOLUTION: 75}`); with `warning_events` (the default) reaching it fires the
    target's warning (`WARNING`) once per target and cycle, telling the business's assignees.
    """

    name: str = attrs.field(validator=not_blank)
    calendar: BusinessCalendar = ALWAYS
    first_response: timedelta | None = attrs.field(default=None, validator=_span)
    next_response: timedelta | None = attrs.field(default=None, validator=_span)
    resolution: timedelta | None = attrs.field(default=None, validator=_span)
    warning_percent: int = attrs.field(default=80, validator=_percent)
    warnings: tuple[tuple[Target, int], ...] = attrs.field(
        default=(), converter=_warnings, kw_only=True
    )
    warning_events: bool = attrs.field(default=True, kw_only=True)
    pausing: frozenset[str] = attrs.field(
        default=frozenset({"waiting_on_customer"}), converter=frozenset
    )
    ladder: tuple[EscalationLevel, ...] = attrs.field(default=(), converter=tuple)
    responds: EntryTest = attrs.field(default=is_response, kw_only=True, eq=False)
    replies: EntryTest = attrs.field(default=is_customer_reply, kw_only=True, eq=False)
    _check: None = attrs.field(default=None, init=False, validator=_ladder)

    @property
    def limits(self) -> dict[Target, timedelta]:
        """Return the policy's targets and their spans of business time, in `Target` order."""
        spans = (self.first_response, self.next_response, self.resolution)
        return {t: s for t, s in zip(Target, spans, strict=True) if s is not None}

    def warning_threshold(self, target: Target) -> int:
        """Return the percentage of `target` at which it warns."""
        return dict(self.warnings).get(Target(target), self.warning_percent)

    def warning_level(self) -> EscalationLevel:
        """Return the warning as a level of its own (`WARNING`): it tells the business's assignees."""
        return EscalationLevel(WARNING, self.warning_percent)

    def threshold(self, target: Target, name: str) -> timedelta:
        """Return the business time used at which level `name` (or `WARNING`) of `target` is reached."""
        limit = self.limits[target]
        if name == WARNING:
            return limit * self.warning_threshold(target) / 100
        return self.level(name).threshold(limit)

    def level(self, name: str) -> EscalationLevel:
        """Return the escalation level called `name` (`WARNING`: the warning, when it fires events)."""
        if name == WARNING and self.warning_events:
            return self.warning_level()
        for level in self.ladder:
            if level.name == name:
                return level
        msg = (
            f"SLA policy '{self.name}' has no escalation level {name!r}; "
            f"levels: {[lv.name for lv in self.ladder] or 'none'}"
        )
        raise InvalidPayload(msg, field="level")


@attrs.frozen
class SlaSubject:
    """What SLA rules look at: the account, the kind, the priority and the category of a task."""

    account: str | None
    kind: str
    priority: Priority
    category: str


def _names(value: Iterable[str] | None) -> frozenset[str] | None:
    return None if value is None else frozenset([value] if isinstance(value, str) else value)


@attrs.frozen
class SlaRule:
    """Choose `policy` for tasks that match every condition given (None: any value)."""

    policy: str = attrs.field(validator=not_blank)
    accounts: frozenset[str] | None = attrs.field(default=None, converter=_names)
    kinds: frozenset[str] | None = attrs.field(default=None, converter=_names)
    priorities: frozenset[str] | None = attrs.field(default=None, converter=_names)
    categories: frozenset[str] | None = attrs.field(default=None, converter=_names)

    def matches(self, subject: SlaSubject) -> bool:
        """Tell whether `subject` meets every condition of the rule."""
        return (
            (self.accounts is None or subject.account in self.accounts)
            and (self.kinds is None or subject.kind in self.kinds)
            and (self.priorities is None or subject.priority.value in self.priorities)
            and (self.categories is None or subject.category in self.categories)
        )


def task_account(task: Task) -> str | None:
    """Return the account a task is about: its data's `account` when it names one, else the requester's company.

    A CRM task names the account it is regarding (`CrmTask.account`), so a task an agent logs
    for a customer's account is that account's, whoever typed it in.
    """
    account = getattr(task.data, "account", None)
    return account if isinstance(account, str) else task.requester.company


def _rules(instance: SlaPolicies, attribute: attrs.Attribute[Any], value: Any) -> None:
    known = {p.name for p in instance.policies}
    names = [p.name for p in instance.policies]
    problems = [f"policy '{n}' is declared twice" for n in sorted(set(names)) if names.count(n) > 1]
    problems += [
        f"rule {i} names unknown policy '{r.policy}'"
        for i, r in enumerate(value)
        if r.policy not in known
    ]
    if instance.default is not None and instance.default not in known:
        problems.append(f"default policy '{instance.default}' is not declared")
    if problems:
        msg = f"SLA policies are invalid: {'; '.join(problems)}; policies: {sorted(known)}"
        raise InvalidWorkflow(msg)


@attrs.frozen
class SlaPolicies:
    """The host's SLA policies and the rules choosing one per task (the first rule that matches).

    `account_of` names a task's account for the rules (default `task_account`: the account the
    task's data names, as a CRM task's regarding account, else the requester's company).
    """

    policies: tuple[SlaPolicy, ...] = attrs.field(converter=tuple)
    rules: tuple[SlaRule, ...] = attrs.field(default=(), converter=tuple, validator=_rules)
    default: str | None = None
    account_of: Callable[[Task], str | None] = attrs.field(
        default=task_account, kw_only=True, eq=False
    )

    def policy(self, name: str) -> SlaPolicy:
        """Return the policy called `name`."""
        for policy in self.policies:
            if policy.name == name:
                return policy
        msg = f"no SLA policy '{name}'; policies: {[p.name for p in self.policies]}"
        raise InvalidPayload(msg, field="policy")

    def select(self, subject: SlaSubject) -> SlaPolicy | None:
        """Return the policy of the first rule `subject` matches, else the default (or None)."""
        for rule in self.rules:
            if rule.matches(subject):
                return self.policy(rule.policy)
        return None if self.default is None else self.policy(self.default)

    def subject_of(self, task: Task) -> SlaSubject:
        """Return what the rules look at of `task`."""
        return SlaSubject(self.account_of(task), task.kind, task.priority, task.category)

    def for_task(self, task: Task) -> SlaPolicy | None:
        """Return the policy that applies to `task` now (None: no SLA)."""
        return self.select(self.subject_of(task))


@attrs.frozen
class Escalate:
    """Payload of `sla_escalate`: one level of one target (and cycle) fired, and who hears of it.

    `level` is a ladder level's name, or `WARNING` for the target's warning.
    """

    target: Target = attrs.field(converter=Target)
    level: str = attrs.field(validator=not_blank)
    cycle: int = 1
    notify: tuple[UserRef, ...] = attrs.field(default=(), converter=_refs)
    breach: bool = False
    """Whether the level lies at or past the target's breach (`On.SLA_BREACH`), else before it (`On.SLA_WARNING`)."""

    @property
    def warning(self) -> bool:
        """Tell whether this is the target's warning (not a ladder level)."""
        return self.level == WARNING

    @property
    def key(self) -> tuple[Target, int, str]:
        """Return what may be fired only once per task: the target, its cycle and the level."""
        return (self.target, self.cycle, self.level)


@attrs.frozen
class TargetState:
    """Where one target stands at an instant.

    `cycle` counts the target's clocks (next response starts one per customer reply; 0: none
    yet); `used` is the business time used in the current cycle; `due` is when the time runs
    out (past once breached; None while paused, met or not started); `level` is the highest
    ladder level the used time has reached, `fired` the levels fired in this cycle.
    """

    target: Target
    limit: timedelta
    cycle: int
    started_at: datetime | None
    used: timedelta
    running: bool
    paused: bool
    met_at: datetime | None
    due: datetime | None
    warning: bool
    breached: bool
    warned_at: datetime | None
    breached_at: datetime | None
    level: str | None
    fired: tuple[str, ...]

    @property
    def remaining(self) -> timedelta:
        """Return the business time left before the breach (negative once breached)."""
        return self.limit - self.used


@attrs.frozen
class SlaState:
    """The state of every target of a policy on a task at an instant (`sla_state`)."""

    policy: str
    at: datetime
    paused: bool
    targets: tuple[TargetState, ...]

    def __getitem__(self, target: Target | str) -> TargetState:
        for state in self.targets:
            if state.target == target:
                return state
        msg = f"SLA policy '{self.policy}' has no target {target!r}; targets: {[t.target.value for t in self.targets]}"
        raise InvalidPayload(msg, field="target")


class _Clock:
    """One target's clock while history is walked: its cycle, used time and crossings."""

    __slots__ = ("crossed", "cycle", "fired", "met_at", "started_at", "thresholds", "used")

    def __init__(self, thresholds: dict[str, timedelta]) -> None:
        self.thresholds = thresholds
        self.cycle = 0
        self.started_at: datetime | None = None
        self.met_at: datetime | None = None
        self.used = _ZERO
        self.crossed: dict[str, datetime] = {}
        self.fired: list[str] = []

    def start(self, at: datetime) -> None:
        self.cycle += 1
        self.started_at, self.met_at, self.used = at, None, _ZERO
        self.crossed, self.fired = {}, []

    @property
    def pending(self) -> bool:
        return self.started_at is not None and self.met_at is None


# Names of the thresholds a clock tracks besides the ladder's levels.
_WARNING, _BREACH = "\x00warning", "\x00breach"


class _Walk:
    """The clocks of a policy over a task's history up to an instant."""

    def __init__(self, task: Task, policy: SlaPolicy, at: datetime) -> None:
        self.policy = policy
        self.clocks: dict[Target, _Clock] = {}
        for target, limit in policy.limits.items():
            warning = limit * policy.warning_threshold(target) / 100
            thresholds = {_WARNING: warning, _BREACH: limit}
            thresholds |= {lv.name: lv.threshold(limit) for lv in policy.ladder}
            self.clocks[target] = _Clock(thresholds)
        self.paused = False
        self.resolved = False
        self.last: datetime | None = None
        self.end = at
        for entry in task.history:
            if entry.at > at:
                break
            if self.last is not None:
                self._advance(self.last, entry.at)
            self._apply(task, entry)
            self.last = entry.at
        if self.last is not None and at > self.last:
            self._advance(self.last, at)

    def running(self, target: Target) -> bool:
        clock = self.clocks[target]
        return clock.pending and not self.paused and not self.resolved

    def _advance(self, start: datetime, end: datetime) -> None:
        moving = [c for t, c in self.clocks.items() if self.running(t)]
        if not moving or end <= start:
            return
        calendar = self.policy.calendar
        gained = calendar.business_time_between(start, end)
        if not gained:
            return
        for clock in moving:
            before, after = clock.used, clock.used + gained
            for name, threshold in clock.thresholds.items():
                if name not in clock.crossed and before < threshold <= after:
                    clock.crossed[name] = calendar.add_business_time(start, threshold - before)
            clock.used = after

    def _apply(self, task: Task, entry: HistoryEntry) -> None:
        clocks = self.clocks
        clock: _Clock | None
        if entry.from_state is None:  # the 'open' entry
            for target in (Target.FIRST_RESPONSE, Target.RESOLUTION):
                if target in clocks:
                    clocks[target].start(entry.at)
        self.paused = entry.to_state in self.policy.pausing
        if "resolved_at" in entry.fact_fields:
            resolved_at = entry.facts[entry.fact_fields.index("resolved_at")]
            if resolved_at is not None and not self.resolved:
                for running in clocks.values():
                    if running.pending:
                        running.met_at = entry.at
            elif resolved_at is None and self.resolved and Target.RESOLUTION in clocks:
                clocks[Target.RESOLUTION].met_at = None  # reopened: its clock runs on
            self.resolved = resolved_at is not None
        if entry.action == ESCALATE and isinstance(entry.payload, Escalate):
            clock = clocks.get(entry.payload.target)
            if clock is not None and clock.cycle == entry.payload.cycle:
                clock.fired.append(entry.payload.level)
            return
        if self.policy.responds(task, entry):
            for target in (Target.FIRST_RESPONSE, Target.NEXT_RESPONSE):
                clock = clocks.get(target)
                if clock is not None and clock.pending:
                    clock.met_at = entry.at
        elif self.policy.replies(task, entry):
            clock = clocks.get(Target.NEXT_RESPONSE)
            if clock is not None and not clock.pending and not self.resolved:
                clock.start(entry.at)

    def state(self, target: Target, at: datetime) -> TargetState:
        clock = self.clocks[target]
        limit = clock.thresholds[_BREACH]
        running = self.running(target)
        due = clock.crossed.get(_BREACH)
        if due is None and running:
            due = self.policy.calendar.add_business_time(at, limit - clock.used)
        reached = [lv.name for lv in self.policy.ladder if lv.name in clock.crossed]
        top = max(reached, key=lambda n: clock.thresholds[n], default=None)
        return TargetState(
            target=target,
            limit=limit,
            cycle=clock.cycle,
            started_at=clock.started_at,
            used=clock.used,
            running=running,
            paused=clock.pending and self.paused and not self.resolved,
            met_at=clock.met_at,
            due=due,
            warning=_WARNING in clock.crossed,
            breached=_BREACH in clock.crossed,
            warned_at=clock.crossed.get(_WARNING),
            breached_at=clock.crossed.get(_BREACH),
            level=top,
            fired=tuple(clock.fired),
        )


def _check_at(at: Any) -> None:
    if not isinstance(at, datetime) or at.utcoffset() is None:
        msg = f"at must be a timezone-aware datetime, got {at!r}"
        raise InvalidPayload(msg, field="at")


def sla_state(task: Task, policy: SlaPolicy, at: datetime) -> SlaState:
    """Return, for each target of `policy`, where it stands on `task` at `at` (from its history)."""
    _check_at(at)
    walk = _Walk(task, policy, at)
    states = tuple(walk.state(target, at) for target in walk.clocks)
    return SlaState(policy.name, at, walk.paused and not walk.resolved, states)


def fired_escalations(task: Task) -> frozenset[tuple[Target, int, str]]:
    """Return every (target, cycle, level) fired on `task`, from its history."""
    return frozenset(
        e.payload.key
        for e in task.history
        if e.action == ESCALATE and isinstance(e.payload, Escalate)
    )


def _fired_levels(policy: SlaPolicy) -> list[tuple[str, str]]:
    # (level name, threshold name) of everything that fires: the warning, then the ladder.
    levels = [(WARNING, _WARNING)] if policy.warning_events else []
    return levels + [(level.name, level.name) for level in policy.ladder]


def _pending(walk: _Walk, policy: SlaPolicy) -> list[tuple[datetime, Target, int, str]]:
    # Levels reached (with the instant) or still to come, of every target not met yet.
    out: list[tuple[datetime, Target, int, str]] = []
    for target, clock in walk.clocks.items():
        if not clock.pending:
            continue
        for name, threshold in _fired_levels(policy):
            if name in clock.fired:
                continue
            crossed = clock.crossed.get(threshold)
            if crossed is None and walk.running(target):
                left = clock.thresholds[threshold] - clock.used
                crossed = policy.calendar.add_business_time(walk.end, left)
            if crossed is not None:
                out.append((crossed, target, clock.cycle, name))
    return out


def next_sla_event(task: Task, policy: SlaPolicy | None) -> datetime | None:
    """Return when the next warning or escalation level of `task` is reached, as its history stands (None: none).

    The clocks do not change between history entries, so this is known from the task alone:
    a level already reached but not fired is due at the instant it was reached.
    """
    if policy is None or not _fired_levels(policy) or not task.history:
        return None
    if task.resolved_at is not None:
        return None
    walk = _Walk(task, policy, task.history[-1].at)
    pending = _pending(walk, policy)
    return min((p[0] for p in pending), default=None)


def due_escalations(task: Task, policy: SlaPolicy, at: datetime) -> tuple[Escalate, ...]:
    """Return the escalations reached on `task` by `at` and not fired yet, in the order they were reached.

    Each names the users to notify: the business's assignees where the level says so, then the level's own.
    """
    _check_at(at)
    if task.resolved_at is not None:
        return ()
    walk = _Walk(task, policy, at)
    reached = sorted(p for p in _pending(walk, policy) if p[0] <= at)
    out: list[Escalate] = []
    for _, target, cycle, name in reached:
        level = policy.level(name)
        staff = task.assignees_of(task.recipient) if level.notify_assignees else ()
        notify = (*staff, *level.notify)
        breach = policy.threshold(target, name) >= policy.limits[target]
        out.append(Escalate(target, name, cycle, notify, breach))
    return tuple(out)


def _check_escalation(policies: SlaPolicies) -> Callable[[Task, Escalate, Actor, datetime], None]:
    def check(task: Task, payload: Escalate, actor: Actor, at: datetime) -> None:
        policy = policies.for_task(task)
        if policy is None:
            msg = f"task {task.number} has no SLA policy, so no escalation level can be fired"
            raise InvalidPayload(msg, field="level", action=ESCALATE)
        policy.level(payload.level)
        if payload.key in fired_escalations(task):
            msg = (
                f"escalation level '{payload.level}' of {payload.target.value} (cycle "
                f"{payload.cycle}) was fired on task {task.number} already; each fires once"
            )
            raise InvalidPayload(msg, field="level", action=ESCALATE)
        reached = {e.key: e for e in due_escalations(task, policy, at)}
        due = set(reached)
        if payload.key in reached and payload.breach != reached[payload.key].breach:
            stage = "at or past" if reached[payload.key].breach else "before"
            msg = (
                f"escalation level '{payload.level}' of {payload.target.value} lies {stage} the "
                f"breach, so Escalate.breach must be {reached[payload.key].breach}"
            )
            raise InvalidPayload(msg, field="breach", action=ESCALATE)
        if payload.key not in due:
            msg = (
                f"escalation level '{payload.level}' of {payload.target.value} (cycle "
                f"{payload.cycle}) is not reached on task {task.number} at {at.isoformat()}; "
                f"reached now: {sorted(f'{t.value}/{c}/{n}' for t, c, n in due) or 'none'}"
            )
            raise InvalidPayload(msg, field="level", action=ESCALATE)

    return check


def escalation_action(policies: SlaPolicies, sides: Iterable[Any] | None = None) -> Transition:
    """Return the system-only `sla_escalate` action for a workflow whose tasks follow `policies`."""
    return Transition(
        ESCALATE,
        OPEN_STATES,
        None,
        BOTH_SIDES if sides is None else frozenset(sides),
        payload=Escalate,
        check=_check_escalation(policies),
        events=(SLA_ESCALATED,),
        description="Fire an SLA escalation level (system only): recorded, and its users notified",
        operation=Operation.MODIFY,
        system_only=True,
    )


def state_of(policies: SlaPolicies, task: Task, at: datetime) -> SlaState | None:
    """Return the SLA state of `task` at `at` under the policy that applies to it (None: no SLA)."""
    policy = policies.for_task(task)
    return None if policy is None else sla_state(task, policy, at)
