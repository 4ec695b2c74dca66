"""The application service a host app calls: units of work, commit, outbox delivery, handlers.

`TaskService` knows no task kind: kind families with calls of their own (questionnaires,
evaluations, bookings) are application services built on it, in modules beside this one.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from taskflow.application.unit_of_work import (
    Carried,
    Committed,
    Handler,
    Subscription,
    UnitOfWork,
    notification_of,
)
from taskflow.domain import engine
from taskflow.domain.authorization import DEFAULT_AUTHORIZER, Authorizer
from taskflow.domain.common import ASSIGN, CLAIM, COMMENT, EDIT, AddComment, Assign, Edit
from taskflow.domain.engine import Outcome
from taskflow.domain.erasure import (
    ERASE_PERSONAL_DATA,
    ERASURE_ROLES,
    DataSubject,
    erase_personal_data,
    erasure_transition,
)
from taskflow.domain.limits import DEFAULT_LIMITS, Limits
from taskflow.domain.matrix import NotificationMatrix
from taskflow.domain.notifications import Notification, NotificationPolicy, default_policy
from taskflow.domain.outbox import (
    EVENT_TOPIC,
    NOTIFICATION_TOPIC,
    DeadLetter,
    DeliveryReport,
    OutboxEntry,
    OutboxMessage,
    RetryPolicy,
)
from taskflow.domain.query import TaskQuery
from taskflow.domain.registry import Registry, TaskKind
from taskflow.domain.task import Cause, DomainEvent, NewTask, Task
from taskflow.domain.validators import (
    check_actor,
    check_aware,
    check_id,
    check_instance,
    check_limit,
    excerpt,
)
from taskflow.domain.values import Actor, CompanyId, TaskId, UserRef, Visibility
from taskflow.errors import (
    ConcurrencyConflict,
    DeserializationError,
    InvalidPayload,
    InvalidWorkflow,
    PermissionDenied,
    TaskflowError,
    TaskNotFound,
)
from taskflow.ports import Clock, IdFactory, Notifier, TaskRepository

if TYPE_CHECKING:
    from taskflow.serialization import Serializer

__all__ = [
    "DEPTH_LIMIT",
    "Dashboard",
    "Sender",
    "TaskService",
    "default_company_code",
    "retry_on_conflict",
]

_T = TypeVar("_T")

DEPTH_LIMIT = 10
"""How many handler hops one request may cause before the chain is stopped."""

Sender = Callable[[OutboxEntry], None]
"""Delivers one outbox message of a host topic (a tracker item, a webhook); raise to retry it."""

# Messages claimed per round while delivering: a long backlog is read in steps, never whole.
_DELIVERY_BATCH = 100
# A handler whose commit meets a conflict runs again at once, on fresh reads, this many times.
_HANDLER_ATTEMPTS = 3


def default_company_code(company: CompanyId) -> str:
    """Return the code task numbers of `company` start with: its id in upper case."""
    return str(company).upper()


@attrs.frozen
class Dashboard:
    """How many of a company's tasks are in each state, per kind (C13)."""

    company: CompanyId
    counts: dict[tuple[str, str], int]

    def total(self, kind: str | None = None) -> int:
        """Return the number of tasks, of one kind or of all."""
        return sum(n for (k, _), n in self.counts.items() if kind is None or k == kind)


class TaskService:
    """Runs tasks for a host app; the host passes every adapter in (one composition point).

    Every call that changes tasks is one unit of work, committed in one atomic write with its
    outbox messages. After the commit the service delivers those messages (notifications, and
    the events registered handlers wait for) unless `deliver_after_commit` is False, in which
    case a worker calls `deliver()`. A failing or slow receiver never fails or undoes an action.
    """

    def __init__(
        self,
        *,
        registry: Registry,
        repository: TaskRepository,
        notifier: Notifier,
        clock: Clock,
        ids: IdFactory,
        policy: NotificationPolicy = default_policy,
        authorizer: Authorizer = DEFAULT_AUTHORIZER,
        company_code: Callable[[CompanyId], str] = default_company_code,
        handlers: Iterable[Subscription] = (),
        senders: Mapping[str, Sender] | None = None,
        deliver_after_commit: bool = True,
        retry: RetryPolicy | None = None,
        lease: timedelta = timedelta(minutes=5),
        worker: str = "taskflow",
        depth_limit: int = DEPTH_LIMIT,
        limits: Limits = DEFAULT_LIMITS,
        erasure_roles: Iterable[str] = ERASURE_ROLES,
    ) -> None:
        self.registry = registry
        self.repository = repository
        self.notifier = notifier
        self.clock = clock
        self.ids = ids
        self.policy = policy
        self.authorizer = authorizer
        self.company_code = company_code
        self.deliver_after_commit = deliver_after_commit
        if retry is not None and not isinstance(retry, RetryPolicy):
            msg = f"TaskService: retry must be a RetryPolicy, got {type(retry).__name__}"
            raise InvalidPayload(msg, field="retry")
        self.retry = retry if retry is not None else RetryPolicy()
        if not isinstance(lease, timedelta) or lease <= timedelta(0):
            msg = f"TaskService: lease must be a positive timedelta, got {excerpt(lease)}"
            raise InvalidPayload(msg, field="lease")
        self.lease = lease
        if not isinstance(worker, str) or not worker.strip():
            msg = f"TaskService: worker must be a non-blank name, got {excerpt(worker)}"
            raise InvalidPayload(msg, field="worker")
        self.worker = worker
        if not isinstance(depth_limit, int) or isinstance(depth_limit, bool) or depth_limit < 0:
            msg = (
                f"TaskService: depth_limit must be a whole number >= 0, got {excerpt(depth_limit)}"
            )
            raise InvalidPayload(msg, field="depth_limit")
        self.depth_limit = depth_limit
        if not isinstance(limits, Limits):
            msg = f"TaskService: limits must be a Limits, got {type(limits).__name__}"
            raise InvalidPayload(msg, field="limits")
        self.limits = limits
        if isinstance(erasure_roles, str):
            msg = f"TaskService: erasure_roles must be a collection of role names, got {excerpt(erasure_roles)}"
            raise InvalidPayload(msg, field="erasure_roles")
        self.erasure = erasure_transition(erasure_roles)
        self._subscriptions: dict[str, Subscription] = {}
        self._senders: dict[str, Sender] = {}
        self._serializer: Serializer | None = None
        self._checked_open: tuple[Any, ...] | None = None
        for subscription in handlers:
            self.add_subscription(subscription)
        for topic, sender in (senders or {}).items():
            self.add_sender(topic, sender)

    # --- changing tasks: each call one unit of work ---------------------------------------

    def unit_of_work(self, *, correlation_id: str | None = None) -> UnitOfWork:
        """Start a unit of work; use it as a context manager, which commits on a clean exit."""
        if correlation_id is None:
            return UnitOfWork(self)
        return UnitOfWork(self, cause=Cause(correlation_id))

    def open(self, actor: Actor, kind: str, draft: NewTask) -> Outcome:
        """Open a task of `kind` from `draft`; `actor` becomes its requester."""
        with self.unit_of_work() as uow:  # it checks the arguments before anything is read
            outcome = uow.open(actor, kind, draft)
        return outcome  # as the actor may see it: the unit of work hands out views

    def act(
        self,
        actor: Actor,
        task_id: TaskId,
        action: str,
        payload: Any = None,
        *,
        expected_version: int | None = None,
    ) -> Outcome:
        """Take `action` on a task; with `expected_version`, only if nobody changed it since."""
        with self.unit_of_work() as uow:  # it checks the arguments before anything is read
            outcome = uow.act(actor, task_id, action, payload, expected_version=expected_version)
        return outcome  # as the actor may see it: the unit of work hands out views

    def comment(
        self,
        actor: Actor,
        task_id: TaskId,
        text: str,
        visibility: Visibility = Visibility.PUBLIC,
    ) -> Outcome:
        """Comment on a task, public to the partner or internal to the actor's company."""
        return self.act(actor, task_id, COMMENT, AddComment(text, visibility))

    def assign(self, actor: Actor, task_id: TaskId, users: Iterable[UserRef]) -> Outcome:
        """Make `users` (of the actor's company) the company's assignees on a task."""
        return self.act(actor, task_id, ASSIGN, Assign(users))

    def claim(self, actor: Actor, task_id: TaskId) -> Outcome:
        """Take a task from the Teambox: the actor becomes the company's only assignee."""
        return self.act(actor, task_id, CLAIM)

    def edit(self, actor: Actor, task_id: TaskId, edit: Edit) -> Outcome:
        """Change editable fields of an open task, as far as the actor's side may."""
        return self.act(actor, task_id, EDIT, edit)

    def erase_personal_data(
        self, actor: Actor, task_ids: Iterable[TaskId], person: DataSubject, reason: str
    ) -> list[Outcome]:
        """Erase one person's personal data from tasks and their histories, in one unit of work.

        Comment texts the person wrote, the kind data fields the kind declares personal (when
        the person opened the task) and every occurrence of the person's identifiers become
        tombstones; who did what when stays, and each task records an `erase_personal_data`
        entry by `actor` with `reason`. The actor needs one of the service's `erasure_roles`
        (through the authorizer); a task the actor may not see is not found.
        """
        if isinstance(task_ids, str) or not isinstance(task_ids, Iterable):
            msg = f"erase_personal_data: task_ids must be a collection of task ids, got {excerpt(task_ids)}"
            raise InvalidPayload(msg, field="task_ids", action=ERASE_PERSONAL_DATA)
        with self.unit_of_work() as uow:
            outcomes = [uow.erase(actor, task_id, person, reason) for task_id in task_ids]
        return outcomes

    def act_with_retry(
        self,
        actor: Actor,
        task_id: TaskId,
        action: str,
        payload: Any = None,
        *,
        attempts: int = 3,
    ) -> Outcome:
        """Take `action`, reloading the task and applying it again after a `ConcurrencyConflict`.

        At most `attempts` tries; when all of them meet a conflict, the last one is raised.
        Any other refusal (the action is no longer allowed on the reloaded task) is raised at once.
        """
        return retry_on_conflict(
            lambda: self.act(actor, task_id, action, payload), attempts=attempts
        )

    # --- reading ---------------------------------------------------------------------------

    def get(self, actor: Actor, task_id: TaskId) -> Task:
        """Return a task as the actor may see it; a stranger's task is not found."""
        _check_call("get", actor, task_id)
        return self._load(actor, task_id).visible_to(actor.company)

    def _load(self, actor: Actor, task_id: TaskId) -> Task:
        """Return the stored task, unfiltered, if the actor may see it; strangers get `TaskNotFound`."""
        task = self.repository.get(task_id)
        if not task.is_party(actor.company) or not self.may_see(actor, task):
            raise TaskNotFound(task_id)
        return task

    def allowed_actions(self, actor: Actor, task_id: TaskId) -> tuple[str, ...]:
        """Return the actions the actor may take on a task now (the service clock's now: deadlines count)."""
        _check_call("allowed_actions", actor, task_id)
        task = self._load(actor, task_id)
        workflow = self.registry[task.kind].workflow
        return engine.allowed_actions(
            workflow, task, actor, authorizer=self.authorizer, at=self.clock.now()
        )

    def task_at(self, actor: Actor, task_id: TaskId, at: datetime) -> Task | None:
        """Return a task as it stood at `at`, rebuilt from its history (None if not yet opened)."""
        _check_call("task_at", actor, task_id)
        check_aware("task_at", "at", at)
        task = self._load(actor, task_id)
        past = engine.task_at(self.registry[task.kind].workflow, task, at)
        return None if past is None else past.visible_to(actor.company)

    def inbox(self, actor: Actor) -> list[Task]:
        """Return the open tasks waiting on the actor's company that the actor is assigned to."""
        check_actor("inbox", actor)
        return self._found(actor, TaskQuery(ball_company=actor.company, assignee=actor.ref))

    def teambox(self, actor: Actor) -> list[Task]:
        """Return all open tasks waiting on the actor's company, whoever is assigned (C4)."""
        check_actor("teambox", actor)
        return self._found(actor, TaskQuery(ball_company=actor.company))

    def dashboard(self, actor: Actor) -> Dashboard:
        """Count the tasks the actor's company is a party to, per kind and state (C13).

        Only kinds the actor may see at all are counted (`Authorizer.may_see_kind`), and of
        them only tasks the actor may see: each is loaded and its parties checked, so a
        tampered index column never puts a stranger's task in the counts.
        """
        check_actor("dashboard", actor)
        counts: Counter[tuple[str, str]] = Counter()
        kinds: dict[str, bool] = {}
        for task in self.repository.query(TaskQuery(company=actor.company)):
            seen = kinds.get(task.kind)
            if seen is None:
                seen = kinds[task.kind] = bool(self.authorizer.may_see_kind(task.kind, actor))
            if seen and self.may_see(actor, task):
                counts[task.kind, task.state] += 1
        return Dashboard(actor.company, dict(sorted(counts.items())))

    def find(self, actor: Actor, query: TaskQuery) -> list[Task]:
        """Return the tasks that match `query` among those the actor's company is a party to."""
        check_actor("find", actor)
        check_instance("find", "query", query, TaskQuery)
        if query.company is not None and query.company != actor.company:
            return []
        return self._found(actor, attrs.evolve(query, company=actor.company))

    def may_see(self, actor: Actor, task: Task) -> bool:
        """Tell whether `actor` may read `task`: its company is a party and the authorizer agrees.

        Asked of every task a read returns, whatever the repository's indexes said (defence in
        depth: a tampered index column never shows a stranger's task).
        """
        check_actor("may_see", actor)
        check_instance("may_see", "task", task, Task)
        return task.is_party(actor.company) and bool(self.authorizer.may_see(task, actor))

    # --- handlers and outbox delivery ------------------------------------------------------

    def subscribe(
        self,
        handler: Handler,
        *,
        name: str | None = None,
        kinds: Iterable[str] | None = None,
        events: Iterable[str] | None = None,
    ) -> Subscription:
        """Run `handler` after every commit with an event it wants; handlers must be idempotent.

        `name` (default: the handler's qualified name) must be unique: a queued event names its
        handler, so a worker in another process finds the same one.
        """
        label = name if name is not None else getattr(handler, "__qualname__", "")
        return self.add_subscription(Subscription(label, handler, kinds, events))

    def add_subscription(self, subscription: Subscription) -> Subscription:
        """Register a `Subscription`; the same one twice is kept once, another of its name refused."""
        if not isinstance(subscription, Subscription):
            msg = f"handlers must be Subscriptions, got {type(subscription).__name__}"
            raise InvalidWorkflow(msg)
        _check_name("subscribe", "name", subscription.name)  # pass name=...
        if not callable(subscription.handler):
            msg = f"a handler must be callable (event, unit of work), got {excerpt(subscription.handler)}"
            raise InvalidWorkflow(msg)
        known = self._subscriptions.get(subscription.name)
        if known is not None:
            if known.handler is subscription.handler and known == subscription:
                return known
            msg = f"a handler named '{subscription.name}' is already registered"
            raise InvalidWorkflow(msg)
        self._subscriptions[subscription.name] = subscription
        return subscription

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        """Return the registered handlers, in registration order."""
        return tuple(self._subscriptions.values())

    def add_sender(self, topic: str, sender: Sender) -> None:
        """Deliver outbox messages of `topic` with `sender` (a host's tracker, webhook, ...)."""
        _check_name("add_sender", "topic", topic)
        if topic in (NOTIFICATION_TOPIC, EVENT_TOPIC):
            msg = (
                f"cannot register a sender for topic {excerpt(topic)}: '{NOTIFICATION_TOPIC}' and "
                f"'{EVENT_TOPIC}' are taskflow's own; choose another non-blank name"
            )
            raise InvalidWorkflow(msg)
        if not callable(sender):
            msg = f"the sender for topic '{topic}' must be callable (it takes an OutboxEntry), got {excerpt(sender)}"
            raise InvalidWorkflow(msg)
        self._senders[topic] = sender

    @property
    def topics(self) -> tuple[str, ...]:
        """Return the outbox topics this service delivers."""
        return (NOTIFICATION_TOPIC, EVENT_TOPIC, *self._senders)

    def deliver(self, *, limit: int | None = None) -> DeliveryReport:
        """Deliver ready outbox messages of this service's topics, oldest first; return what happened.

        Call it from a worker (a timer, a separate process) when `deliver_after_commit` is off,
        and to retry messages that failed. A failing message is retried later with back-off,
        moved to the dead letters after `retry.attempts` tries, and never blocks the others.
        """
        check_limit("deliver", limit)
        report = DeliveryReport()
        while limit is None or report.delivered < limit:
            size = (
                _DELIVERY_BATCH if limit is None else min(_DELIVERY_BATCH, limit - report.delivered)
            )
            entries = self.repository.claim(
                self.worker, self.clock.now(), lease=self.lease, limit=size, topics=self.topics
            )
            report += self._deliver(entries, {})
            if len(entries) < size:
                break
        return report

    def after_commit(self, committed: Committed, carried: Mapping[int, Carried]) -> None:
        """Deliver the messages a commit wrote, when the service delivers after commits."""
        if not self.deliver_after_commit or not committed.message_ids:
            return
        try:
            entries = self.repository.claim(
                self.worker,
                self.clock.now(),
                lease=self.lease,
                limit=len(committed.message_ids),
                ids=committed.message_ids,
            )
            for entry in entries:  # each one's report is not needed here
                self._deliver_one(entry, carried.get(entry.id))
        except (KeyboardInterrupt, SystemExit) as exc:
            # The process is being stopped: let it stop, but say that the work is saved.
            exc.add_note(_committed_note(committed))
            raise
        except BaseException as exc:  # the commit stands, whatever the receiver raised
            # asyncio.CancelledError included: the caller gets its committed outcome, never a
            # reason to repeat the action; claimed messages are delivered again after their lease.
            _log().warning(
                "committed, but delivering its %d outbox messages failed; they stay queued: %r",
                len(committed.message_ids),
                exc,
                exc_info=exc,
            )

    def dead_letters(self, *, limit: int | None = None) -> list[DeadLetter]:
        """Return the outbox messages moved aside (unreadable, failing, stopped), oldest first, with their reasons."""
        check_limit("dead_letters", limit)
        return self.repository.dead_letters(limit)

    def retry_dead_letters(self, ids: Iterable[int]) -> int:
        """Queue dead letters again, ready now, for the next delivery; return how many were queued."""
        chosen = _message_ids("retry_dead_letters", ids)
        return self.repository.revive(chosen, now=self.clock.now())

    def drop_dead_letters(self, ids: Iterable[int]) -> int:
        """Delete dead letters for good (the host has dealt with them); return how many were deleted."""
        return self.repository.drop_dead_letters(_message_ids("drop_dead_letters", ids))

    # --- what units of work ask of the service ---------------------------------------------

    def check_open(self, kind: TaskKind, draft: NewTask, actor: Actor, at: datetime) -> None:
        """Raise what opening a task of `kind` from `draft` would raise; store nothing."""
        if isinstance(draft, NewTask):  # anything else is refused by the engine, naming it
            self.limits.check_draft(draft)
        authorizer = self.authorizer
        checked = engine.open_task(
            kind.workflow,
            kind.name,
            draft,
            actor,
            at,
            TaskId("-"),
            "-",
            data_type=kind.data_type,
            authorizer=authorizer,
        )
        # Kept for `run_open` of the same draft, which then gives it its id and number
        # instead of opening it a second time (one slot, read and replaced whole).
        self._checked_open = (kind, draft, actor, at, authorizer, checked)

    def task_number(self, company: CompanyId) -> str:
        """Take the next task number of `company` from the repository."""
        # Numbered per code, not per id: 'acme' and 'ACME' share the code ACME, so they share
        # one counter and never get the same number (docs/decisions.md).
        code = self.company_code(company)
        return f"{code}-TASK-{self.repository.next_number(CompanyId(code))}"

    def run_open(
        self,
        kind: TaskKind,
        draft: NewTask,
        actor: Actor,
        at: datetime,
        task_id: TaskId,
        number: str,
        cause: Cause,
    ) -> Outcome:
        """Open a task with the engine (the unit of work stores it)."""
        last = self._checked_open
        if (
            last is not None
            and last[0] is kind
            and last[1] is draft
            and last[2] is actor
            and last[3] is at
            and last[4] is self.authorizer
        ):
            self._checked_open = None
            return engine.opened_as(last[5], task_id, number, cause)
        return engine.open_task(
            kind.workflow,
            kind.name,
            draft,
            actor,
            at,
            task_id,
            number,
            data_type=kind.data_type,
            cause=cause,
            authorizer=self.authorizer,
        )

    def run_action(
        self, task: Task, action: str, actor: Actor, payload: Any, cause: Cause
    ) -> Outcome:
        """Take an action with the engine (the unit of work stores it)."""
        workflow = self.registry[task.kind].workflow
        now = self.clock.now()
        # Checked before the engine runs, so an oversized payload never reaches a rule.
        self.limits.check_payload(action, payload)
        outcome = engine.apply(
            workflow, task, action, actor, now, payload, cause=cause, authorizer=self.authorizer
        )
        # Counts grow by the action (one comment, some files): refused before anything is kept.
        self.limits.check_task(outcome.task, action)
        return outcome

    def run_erasure(
        self, task: Task, actor: Actor, person: DataSubject, reason: str, cause: Cause
    ) -> tuple[Task, DomainEvent]:
        """Erase a person's data from a task with the domain's erasure, if the authorizer lets the actor."""
        kind = self.registry[task.kind]
        decision = self.authorizer.may_take(kind.workflow, task, self.erasure, actor)
        if not decision:
            raise PermissionDenied(decision.reason, task=task.number, action=ERASE_PERSONAL_DATA)
        if not isinstance(reason, str) or not reason.strip():
            msg = f"erase_personal_data needs a non-blank reason (who asked, and why), got {excerpt(reason)}"
            raise InvalidPayload(msg, field="reason", action=ERASE_PERSONAL_DATA)
        self.limits.check_payload(ERASE_PERSONAL_DATA, {"reason": reason})
        return erase_personal_data(
            task,
            person,
            actor,
            self.clock.now(),
            reason,
            personal_fields=kind.personal_fields,
            cause=cause,
        )

    def notifications(
        self, before: Task | None, after: Task, events: Iterable[DomainEvent]
    ) -> tuple[Notification, ...]:
        """Return who hears of `events`: the host's matrix over the kind's rows and policy (C12)."""
        kind = self.registry[after.kind]
        shown = tuple(events)
        policy = self.policy
        if isinstance(policy, NotificationMatrix):
            return policy.notify(
                kind.workflow, before, after, shown, rows=kind.matrix, kind_policy=kind.policy
            )
        if kind.matrix:
            # No host matrix: the kind's rows, then its policy, then the service's decide.
            rows_only = NotificationMatrix((), fallback=kind.policy or policy)
            return rows_only.notify(kind.workflow, before, after, shown, rows=kind.matrix)
        if kind.policy is not None:
            policy = kind.policy
        return tuple(policy(kind.workflow, before, after, shown))

    def subscriptions_for(self, event: DomainEvent) -> list[Subscription]:
        """Return the handlers that want `event`."""
        return [s for s in self._subscriptions.values() if s.wants(event)]

    def event_message(self, subscription: Subscription, event: DomainEvent) -> OutboxMessage:
        """Return the outbox message that hands `event` to one handler."""
        payload = {"handler": subscription.name, "event": self._events().dump_event(event)}
        return OutboxMessage(
            EVENT_TOPIC,
            f"{event.id}>{subscription.name}",
            payload,
            task_id=event.task_id,
            task_version=event.version,
        )

    # --- internals ---------------------------------------------------------------------------

    def _events(self) -> Serializer:
        if self._serializer is None:
            # Made on first use: a service without handlers never builds the converter.
            from taskflow.serialization import Serializer

            self._serializer = Serializer(self.registry)
        return self._serializer

    def _found(self, actor: Actor, query: TaskQuery) -> list[Task]:
        """Return the matching tasks the actor may see, as it may see them, up to the limit."""
        tasks = self.repository.query(query)
        seen = [t for t in tasks if self.may_see(actor, t)]
        if query.limit is not None and len(seen) < len(tasks):
            # Hidden tasks took places within the limit: read on past them.
            everything = self.repository.query(attrs.evolve(query, limit=None))
            seen = [t for t in everything if self.may_see(actor, t)][: query.limit]
        return [task.visible_to(actor.company) for task in seen]

    def _deliver(
        self, entries: Iterable[OutboxEntry], carried: Mapping[int, Carried]
    ) -> DeliveryReport:
        report = DeliveryReport()
        for entry in entries:
            report += self._deliver_one(entry, carried.get(entry.id))
        return report

    def _deliver_one(self, entry: OutboxEntry, carried: Carried | None) -> DeliveryReport:
        topic = entry.topic
        try:
            if topic == NOTIFICATION_TOPIC:
                note = carried if isinstance(carried, Notification) else None
                if note is None:
                    key = entry.message.key
                    note = self._read(entry, lambda p: notification_of(p, key))
                if note is None:
                    return DeliveryReport(buried=(entry.id,))
                self.notifier.notify(note)
            elif topic == EVENT_TOPIC:
                event = carried if isinstance(carried, DomainEvent) else None
                stopped = self._handle(entry, event)
                if stopped is not None:
                    return stopped
            else:
                sender = self._senders.get(topic)
                if sender is None:
                    # Another worker knows this topic: give it back at once, untouched.
                    self.repository.retry(entry, not_before=self.clock.now(), error="")
                    return DeliveryReport()
                sender(entry)
        except DeserializationError as exc:  # the message itself cannot be read: poisoned
            reason = f"the payload of a '{topic}' message cannot be read: {exc}"
            _log().error("outbox message %d moved to the dead letters: %s", entry.id, reason)
            self._bury(entry, reason)
            return DeliveryReport(buried=(entry.id,), errors=(reason,))
        except Exception as exc:  # any receiver failure: retried later, never the action's
            what = f"outbox message {entry.id} ({topic} {entry.message.key})"
            return self._failed(entry, what, exc)
        self.repository.complete((entry,))
        return _DELIVERED_ONE

    def _read(self, entry: OutboxEntry, read: Callable[[Mapping[str, Any]], _T]) -> _T | None:
        try:
            return read(entry.message.payload)
        except (KeyError, TypeError, ValueError, TaskflowError) as exc:
            reason = f"the payload of a '{entry.topic}' message cannot be read: {exc!r}"
            self._bury(entry, reason)
            return None

    def _handle(self, entry: OutboxEntry, event: DomainEvent | None) -> DeliveryReport | None:
        payload = entry.message.payload
        name = payload.get("handler") if isinstance(payload, Mapping) else None
        subscription = self._subscriptions.get(name) if isinstance(name, str) else None
        if subscription is None:
            reason = f"no handler named {excerpt(name)} is registered with this service"
            self._bury(entry, reason)
            return DeliveryReport(buried=(entry.id,), errors=(reason,))
        if event is None:
            loaded = self._read(entry, lambda p: self._events().load_event(p["event"]))
            if loaded is None:
                return DeliveryReport(buried=(entry.id,))
            event = loaded
        depth = 0 if event.cause is None else event.cause.depth
        if depth + 1 > self.depth_limit:
            reason = (
                f"handler '{subscription.name}' was not run for event {event.id}: the chain "
                f"reached the depth limit of {self.depth_limit}"
            )
            _log().warning("%s (task %s)", reason, event.task_number)
            self._bury(entry, reason)
            return DeliveryReport(buried=(entry.id,), errors=(reason,))
        correlation = event.cause.correlation_id if event.cause is not None else event.id
        cause = Cause(correlation, event.id, depth + 1)
        current = event

        def run() -> None:
            with UnitOfWork(self, cause=cause) as uow:
                subscription.handler(current, uow)

        retry_on_conflict(run, attempts=_HANDLER_ATTEMPTS)
        return None

    def _failed(self, entry: OutboxEntry, what: str, exc: Exception) -> DeliveryReport:
        error = f"{type(exc).__name__}: {exc}"
        handler = entry.message.payload.get("handler") if entry.topic == EVENT_TOPIC else None
        who = f" by handler '{handler}'" if handler else ""
        if self.retry.gives_up(entry.attempts):
            reason = f"failed {entry.attempts} times{who}; last error: {error}"
            _log().error("%s moved to the dead letters: %s", what, reason, exc_info=exc)
            self._bury(entry, reason)
            return DeliveryReport(buried=(entry.id,), errors=(error,))
        wait = self.retry.delay(entry.attempts)
        _log().warning(
            "%s failed%s (attempt %d), tried again in %s: %r",
            what,
            who,
            entry.attempts,
            wait,
            exc,
            exc_info=exc,
        )
        self.repository.retry(entry, not_before=self.clock.now() + wait, error=error)
        return DeliveryReport(failed=(entry,), errors=(error,))

    def _bury(self, entry: OutboxEntry, reason: str) -> None:
        self.repository.bury(entry, reason=reason, at=self.clock.now())


def retry_on_conflict(fn: Callable[[], _T], *, attempts: int = 3) -> _T:
    """Call `fn` until it ends without `ConcurrencyConflict`, at most `attempts` times.

    `fn` must load what it changes each time (as `TaskService.act` does). The last conflict is
    raised when every attempt met one; any other error is raised at once.
    """
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
        msg = f"retry_on_conflict: attempts must be a whole number >= 1, got {excerpt(attempts)}"
        raise InvalidPayload(msg, field="attempts")
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except ConcurrencyConflict:
            if attempt == attempts:
                raise
    msg = "retry_on_conflict: unreachable"  # pragma: no cover - the loop returns or raises
    raise AssertionError(msg)  # pragma: no cover


def _committed_note(committed: Committed) -> str:
    tasks = ", ".join(f"{t.number} (version {t.version})" for t in committed.tasks) or "nothing"
    return (
        f"taskflow: the unit of work was committed before this was raised: {tasks}; "
        "do not repeat the action; its outbox messages are delivered again after their lease"
    )


_DELIVERED_ONE = DeliveryReport(delivered=1)


def _check_name(call: str, field: str, value: Any) -> None:
    """Refuse a handler or topic name that is no well-formed id, as a definition error (`InvalidWorkflow`)."""
    try:
        check_id(call, field, value)  # a str, trimmed, short, no control characters
    except InvalidPayload as exc:
        raise InvalidWorkflow(str(exc)) from None


def _check_call(call: str, actor: Any, task_id: Any) -> None:
    check_actor(call, actor)
    check_instance(call, "task_id", task_id, str)


def _message_ids(call: str, ids: Any) -> tuple[int, ...]:
    if isinstance(ids, str | bytes) or not isinstance(ids, Iterable):
        msg = f"{call}: ids must be a collection of dead letter ids (whole numbers), got {excerpt(ids)}"
        raise InvalidPayload(msg, field="ids")
    chosen = tuple(ids)
    bad = [i for i in chosen if not isinstance(i, int) or isinstance(i, bool)]
    if bad:
        msg = f"{call}: dead letter ids are whole numbers, got {excerpt(bad[0])}"
        raise InvalidPayload(msg, field="ids")
    return chosen


def _log() -> logging.Logger:
    # Looked up when needed: importing taskflow configures and creates nothing.
    return logging.getLogger("taskflow.service")
