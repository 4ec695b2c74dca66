"""Automation: rules run as after-commit handlers, as system actors, with loop protection (C15).

    automation = Automation(service, rules, company="acme", roles={"agent"})

`Automation` subscribes one handler (named `automation` unless told otherwise) to every
event. For each committed event it finds the rules the event fires (`RuleBook.matching`, in
(`order`, `name`) order) and takes their actions in one new unit of work, each rule as the
system actor `rule:<name>` of the automation's company: the same authorizer, workflow,
guard and payload checks as a person's, and history names the rule and carries the
correlation id of what triggered it.

Loop protection: a rule fires at most once per task per triggering unit of work (read from
the task's history, so it holds across processes and on every repository; a rule that
notifies also stores a fired-marker with its unit of work, `UnitOfWork.mark`, because a
notification leaves no history: two processes running it for one trigger notify once), and a chain of
rule-caused changes stops at the service's depth limit (10): the service moves the event
aside as a dead letter naming the handler and logs a warning (`stopped_chains` lists them).

The fired-markers of a task that has been closed for a while guard nothing any more: the
host's scheduler drops them with `prune_marks` (by default those of tasks closed more than
30 days ago), so the marks table grows with the open tasks, not with every task ever.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from taskflow.application.service import TaskService
from taskflow.application.unit_of_work import UnitOfWork, notification_message
from taskflow.automation.due import DueTasks
from taskflow.automation.rules import Notify, PlannedStep, Rule, RuleBook, TakeAction, plan
from taskflow.domain import engine
from taskflow.domain.engine import Change
from taskflow.domain.matrix import NotificationMatrix
from taskflow.domain.notifications import Notification, TeamLookup, recipients_of
from taskflow.domain.outbox import DeadLetter
from taskflow.domain.task import OPEN, Cause, DomainEvent, Task
from taskflow.domain.values import Actor, CompanyId, TaskId, UserRef
from taskflow.errors import InvalidPayload, InvalidWorkflow, TaskflowError, TaskNotFound

if TYPE_CHECKING:
    import cattrs

__all__ = ["MARK_HORIZON", "Automation", "AutomationWarning", "Firing", "FiringStep", "rule_actor"]

# Firings of rules that leave no history (notify only) remembered per process, at most this many.
_MEMO_LIMIT = 10_000

MARK_HORIZON = timedelta(days=30)
"""How long `Automation.prune_marks` keeps the fired-markers of a closed task by default."""


def rule_actor(rule: Rule | str, company: CompanyId, roles: Iterable[str] = ()) -> Actor:
    """Return the system actor a rule acts as: `system:rule:<name>@<company>`."""
    name = rule if isinstance(rule, str) else rule.name
    return Actor.system(f"rule:{name}", company, roles)


@attrs.frozen
class FiringStep:
    """One thing a firing rule did (or, in a dry run, would do): the action and what it changed."""

    action: str
    changes: tuple[Change, ...] = ()
    notified: tuple[UserRef, ...] = ()


@attrs.frozen
class Firing:
    """A rule that fired on a task: its steps, and the refusal that stopped it, if any."""

    rule: str
    task_id: TaskId
    task_number: str
    steps: tuple[FiringStep, ...]
    refused: str | None = None


@attrs.frozen
class AutomationWarning:
    """A rule action the workflow or the authorizer refused (the rule's later actions were skipped)."""

    rule: str
    task_number: str
    action: str
    reason: str
    at: datetime


class Automation:
    """Runs a company's rules on every kind's tasks after each commit; see the module docs."""

    def __init__(
        self,
        service: TaskService,
        rules: Iterable[Rule] | RuleBook,
        *,
        company: CompanyId,
        roles: Iterable[str] = (),
        name: str = "automation",
        due: DueTasks | None = None,
        team: TeamLookup | None = None,
        subscribe: bool = True,
    ) -> None:
        if not isinstance(service, TaskService):
            msg = f"Automation needs a TaskService, got {type(service).__name__}"
            raise InvalidWorkflow(msg)
        self.service = service
        self.book = rules if isinstance(rules, RuleBook) else RuleBook(rules)
        if not isinstance(company, str) or not company.strip():
            msg = f"Automation.company must name the company whose rules these are, got {company!r}"
            raise InvalidPayload(msg, field="company")
        self.company = CompanyId(company)
        self.roles = frozenset(roles)
        self.name = name
        self.due = due
        if team is not None and not callable(team):
            msg = f"Automation.team must be a function of the task returning its team's users, got {team!r:.60}"
            raise InvalidPayload(msg, field="team")
        self._team = team
        self.warnings: list[AutomationWarning] = []
        self._memo: OrderedDict[tuple[str, TaskId, Cause | str], None] = OrderedDict()
        self._converter: cattrs.Converter | None = None
        self._probe = Actor.system("automation", self.company, self.roles)
        if not isinstance(subscribe, bool):
            msg = f"Automation.subscribe must be True (run the rules) or False (dry runs only), got {subscribe!r:.60}"
            raise InvalidPayload(msg, field="subscribe")
        self.subscribed = subscribe
        if subscribe:
            service.subscribe(self.handle, name=name)

    @property
    def rules(self) -> tuple[Rule, ...]:
        """Return the rules, in the order they run."""
        return self.book.rules

    @property
    def team(self) -> TeamLookup | None:
        """Return the team lookup `Notify(to={"team"})` asks: the one given, else the service matrix's."""
        if self._team is not None:
            return self._team
        policy = self.service.policy
        return policy.team if isinstance(policy, NotificationMatrix) else None

    def actor(self, rule: Rule | str) -> Actor:
        """Return the system actor `rule` acts as."""
        return rule_actor(rule, self.company, self.roles)

    # --- the handler ---------------------------------------------------------------------------

    def handle(self, event: DomainEvent, uow: UnitOfWork) -> None:
        """Fire the rules `event` triggers, in order, in `uow` (the subscribed handler)."""
        self._run(event, uow, record=False)

    def dry_run(self, event: DomainEvent) -> tuple[Firing, ...]:
        """Return which rules `event` would fire and what they would change; nothing is saved.

        `event` is a committed event (`Outcome.events`). A rule that already fired for its unit
        of work would not fire again and is left out. To preview a rule set before making it
        live, build it with `Automation(..., subscribe=False)`: it runs on no event.
        """
        depth = 0 if event.cause is None else event.cause.depth
        correlation = event.id if event.cause is None else event.cause.correlation_id
        uow = UnitOfWork(self.service, cause=Cause(correlation, event.id, depth + 1))
        return self._run(event, uow, record=True, remember=False)

    def run_due(self, at: datetime | None = None) -> tuple[Firing, ...]:
        """Fire the time-triggered rules on every task the due-time port reports due at `at`.

        Each task is one unit of work with the correlation id `time:<at>`; a rule fires at most
        once per task for one `at`, so a scheduler that calls twice for the same instant changes
        nothing the second time. `at` defaults to the service clock's now.
        """
        if self.due is None:
            msg = "Automation.run_due needs a due-time port: pass due=... (a DueTasks)"
            raise InvalidPayload(msg, field="due")
        when = self.service.clock.now() if at is None else at
        fired: list[Firing] = []
        if not self.book.timed:
            return ()
        correlation = f"time:{when.isoformat()}"
        for task_id in self.due.due(when):
            with self.service.unit_of_work(correlation_id=correlation) as uow:
                fired.extend(self._run_timed(task_id, uow, correlation))
        return tuple(fired)

    def prune_marks(self, closed_before: datetime | None = None, *, batch: int = 500) -> int:
        """Drop this automation's fired-markers of tasks closed before `closed_before`; return how many.

        `closed_before` defaults to the service clock's now less `MARK_HORIZON` (30 days). A
        mark of an open task, or of one closed later, stays; one naming no stored task goes.
        Pick a horizon longer than any event's retries can last: a mark dropped while its
        trigger's event could still be delivered again would let the rule notify twice. The
        marks are read in pages of `batch`; other automations' marks and intake's are not
        touched. Run it from the host's scheduler (daily, say); running it again drops nothing.
        """
        if closed_before is None:
            closed_before = self.service.clock.now() - MARK_HORIZON
        elif not isinstance(closed_before, datetime) or closed_before.utcoffset() is None:
            msg = f"prune_marks(closed_before=...) must be a timezone-aware datetime, got {closed_before!r:.60}"
            raise InvalidPayload(msg, field="closed_before")
        if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
            msg = f"prune_marks(batch=...) must be a whole number of 1 or more, got {batch!r:.60}"
            raise InvalidPayload(msg, field="batch")
        repository = self.service.repository
        prefix = f"rule:{self.name}/"
        tasks: dict[str, Task | None] = {}

        def task_of(rest: str) -> Task | None:
            # `<task id>/<trigger>`: a task id may hold '/', so each cut is tried, shortest first.
            for cut in (i for i, ch in enumerate(rest) if ch == "/"):
                candidate = rest[:cut]
                if candidate not in tasks:
                    try:
                        tasks[candidate] = repository.get(TaskId(candidate))
                    except TaskNotFound:
                        tasks[candidate] = None
                found = tasks[candidate]
                if found is not None:
                    return found
            return None

        dropped = 0
        after: str | None = None
        while True:
            page = repository.marks(prefix, after=after, limit=batch)
            if not page:
                return dropped
            gone = []
            for mark in page:
                _, _, rest = mark[len(prefix) :].partition("/")  # after the rule's name
                task = task_of(rest)
                if task is None or (
                    not task.is_open
                    and task.resolved_at is not None
                    and task.resolved_at < closed_before
                ):
                    gone.append(mark)
            if gone:
                dropped += repository.drop_marks(gone)
            after = page[-1]

    def stopped_chains(self) -> list[DeadLetter]:
        """Return the dead letters of events this automation was not run for: chains at the depth limit."""
        suffix = f">{self.name}"
        return [
            d
            for d in self.service.repository.dead_letters()
            if d.key.endswith(suffix) and "depth limit" in d.reason
        ]

    # --- internals -----------------------------------------------------------------------------

    def _run(
        self, event: DomainEvent, uow: UnitOfWork, *, record: bool, remember: bool = True
    ) -> tuple[Firing, ...]:
        if event.kind not in self.service.registry:
            return ()
        try:
            stored = self.service.repository.get(event.task_id)
            task = uow.get(self._probe, event.task_id)
        except TaskNotFound:
            return ()
        group = _same_unit_of_work(self.service, stored, event)
        if not record and (not group or group[0].id != event.id):
            return ()  # the unit of work's first event on this task stands for all of them
        chosen: dict[str, tuple[int, Rule, DomainEvent]] = {}
        order = {rule.name: i for i, rule in enumerate(self.book.rules)}
        for member in group or (event,):
            visible = getattr(member.payload, "visible_to_company", None)
            if visible is not None and not visible(member.actor.company, self.company):
                continue  # another company's internal note: not for this company's rules
            changed: tuple[str, ...] = ()
            if 0 < member.version <= len(stored.history):
                changed = stored.history[member.version - 1].changed
            for rule in self.book.matching(member, task, changed):
                chosen.setdefault(rule.name, (order[rule.name], rule, member))
        fired: list[Firing] = []
        for _, rule, member in sorted(chosen.values(), key=lambda c: c[0]):
            actor = self.actor(rule)
            key = (rule.name, task.id, member.cause if member.cause is not None else member.id)
            if key in self._memo or _fired(stored, actor, member):
                continue
            mark = self._mark(rule, task.id, member.id if member.cause is None else member.cause)
            if mark is not None and uow.marked(mark):
                continue  # a notifying rule fired for this trigger already, maybe elsewhere
            current = uow.get(self._probe, event.task_id)
            if current is not task and not self.book.holds(rule, current, member):
                continue
            firing = self._fire(rule, actor, event.task_id, member, uow, record=record)
            if mark is not None and not record:
                uow.mark(mark)
            if remember:
                self._remember(key)
            fired.append(firing)
        return tuple(fired)

    def _run_timed(self, task_id: TaskId, uow: UnitOfWork, correlation: str) -> list[Firing]:
        try:
            task = uow.get(self._probe, task_id)
        except TaskNotFound:
            return []
        fired: list[Firing] = []
        for rule in self.book.timed:
            actor = self.actor(rule)
            current = uow.get(self._probe, task_id)
            done = any(
                e.actor == actor and e.cause is not None and e.cause.correlation_id == correlation
                for e in current.history
            )
            key = (rule.name, task.id, correlation)
            if done or key in self._memo or not self.book.holds(rule, current, None):
                continue
            mark = self._mark(rule, task.id, correlation)
            if mark is not None and uow.marked(mark):
                continue
            fired.append(self._fire(rule, actor, task_id, None, uow, record=False))
            if mark is not None:
                uow.mark(mark)
            self._remember(key)
        return fired

    def _mark(self, rule: Rule, task_id: TaskId, trigger: Cause | str) -> str | None:
        """Return the fired-marker of a rule that notifies (its firing may leave no history)."""
        if not any(isinstance(action, Notify) for action in rule.actions):
            return None
        if isinstance(trigger, Cause):
            trigger = f"{trigger.correlation_id}|{trigger.event_id or ''}|{trigger.depth}"
        return f"rule:{self.name}/{rule.name}/{task_id}/{trigger}"

    def _remember(self, key: tuple[str, TaskId, Cause | str]) -> None:
        self._memo[key] = None
        if len(self._memo) > _MEMO_LIMIT:
            self._memo.popitem(last=False)

    def _fire(
        self,
        rule: Rule,
        actor: Actor,
        task_id: TaskId,
        event: DomainEvent | None,
        uow: UnitOfWork,
        *,
        record: bool,
    ) -> Firing:
        steps: list[FiringStep] = []
        number = ""
        for action in rule.actions:
            current = uow.get(actor, task_id)
            number = current.number
            step = plan(rule, action, current, event, self.company)
            if step is None:
                continue
            try:
                if isinstance(action, Notify):
                    notified = self._notify(action, step, current, event, uow)
                    steps.append(FiringStep("notify", notified=notified))
                    continue
                payload = step.payload
                if isinstance(action, TakeAction):
                    payload = self._payload(current, action)
                if step.action is None:  # pragma: no cover - only a notify names no action
                    continue
                outcome = uow.act(actor, task_id, step.action, payload)
            except TaskflowError as exc:
                reason = str(exc)
                warning = AutomationWarning(
                    rule.name, current.number, step.action or "notify", reason, self._now()
                )
                if not record:
                    self.warnings.append(warning)
                    _log().warning(
                        "rule '%s' stopped on task %s: '%s' was refused: %s",
                        rule.name,
                        current.number,
                        warning.action,
                        reason,
                    )
                return Firing(rule.name, task_id, number, tuple(steps), reason)
            changes = _last_changes(self.service, outcome.task) if record else ()
            steps.append(FiringStep(step.action, changes))
        return Firing(rule.name, task_id, number, tuple(steps))

    def _notify(
        self,
        action: Notify,
        step: PlannedStep,
        task: Task,
        event: DomainEvent | None,
        uow: UnitOfWork,
    ) -> tuple[UserRef, ...]:
        own = self.company
        team = self.team
        users: dict[UserRef, None] = {}
        for recipient in sorted(action.to):
            for user in recipients_of(task, recipient, own, team):
                users[user] = None
        for user in action.users:
            users[user] = None
        told = tuple(u for u in users if task.is_party(u.company))
        label = f"rule:{step.rule}"
        notes = [Notification(u, task.id, task.number, label, str(step.payload)) for u in told]
        matrix = self.service.policy
        if isinstance(matrix, NotificationMatrix):
            # The host's opt-outs and digests hold for a rule's notifications too.
            at = event.at if event is not None else self._now()
            notes = matrix.preferred(task.kind, at, notes)
        for note in notes:
            uow.enqueue(notification_message(note, task.version))
        return tuple(note.recipient for note in notes)

    def _payload(self, task: Task, action: TakeAction) -> Any:
        workflow = self.service.registry[task.kind].workflow
        transition = workflow.transition(action.action)
        if transition is None or transition.payload is None:
            return None if action.payload is None else dict(action.payload)
        if action.payload is None:
            msg = (
                f"'{action.action}' on task {task.number} needs a "
                f"{transition.payload.__name__} payload; the rule gives none"
            )
            raise InvalidPayload(msg, action=action.action)
        try:
            return self._structure(dict(action.payload), transition.payload)
        except TaskflowError:
            raise
        except Exception as exc:
            msg = (
                f"the rule's payload for '{action.action}' on task {task.number} does not make a "
                f"{transition.payload.__name__}: {exc}"
            )
            raise InvalidPayload(msg, action=action.action) from None

    def _structure(self, data: dict[str, Any], cl: type) -> Any:
        if self._converter is None:
            from taskflow.serialization import Serializer

            self._converter = Serializer(self.service.registry).converter
        return self._converter.structure(data, cl)

    def _now(self) -> datetime:
        return self.service.clock.now()


def _fired(stored: Task, actor: Actor, event: DomainEvent) -> bool:
    """Tell whether `actor` (a rule) already acted on `stored` for the unit of work behind `event`."""
    cause = event.cause
    if cause is None:
        same = {f"{stored.id}@{event.version}"}
    else:
        same = {f"{stored.id}@{i + 1}" for i, e in enumerate(stored.history) if e.cause == cause}
    for entry in stored.history:
        if entry.actor != actor or entry.cause is None or entry.cause.event_id is None:
            continue
        if entry.cause.event_id.split("/", 1)[0] in same:
            return True
    return False


def _same_unit_of_work(service: TaskService, stored: Task, event: DomainEvent) -> list[DomainEvent]:
    """Return the events the unit of work behind `event` caused on `stored`, in order."""
    if event.cause is None:
        return [event]
    workflow = service.registry[stored.kind].workflow
    out: list[DomainEvent] = []
    for index, entry in enumerate(stored.history):
        if entry.cause != event.cause:
            continue
        if entry.action == OPEN:
            names: tuple[str, ...] = ("opened",)
        else:
            transition = workflow.transition(entry.action)
            names = (entry.action,) if transition is None else transition.event_names
        out.extend(
            DomainEvent(
                name, stored.id, stored.number, stored.kind, entry.action, entry.actor,
                entry.at, entry.from_state, entry.to_state, index + 1, entry.payload,
                entry.cause,
            )
            for name in names
        )  # fmt: skip
    return out


def _last_changes(service: TaskService, task: Task) -> tuple[Change, ...]:
    workflow = service.registry[task.kind].workflow
    return engine.changes(workflow, task, len(task.history) - 1)


def _log() -> logging.Logger:
    return logging.getLogger("taskflow.automation")
