"""The unit of work: the tasks one service call opens and changes, committed in one atomic write.

    with service.unit_of_work() as uow:
        questionnaire = uow.open(actor, "questionnaire", draft).task
        ...                                       # more opens and actions, any tasks
    # leaving the block commits every task and outbox message at once, then runs the handlers

A unit of work reads through the repository, keeps every task it opened or changed, and at
the end writes them with one `TaskRepository.commit`: all of them or none. Each action's
notifications and each event a handler subscribed to become outbox messages of the same
commit. An exception inside the block discards everything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol

import attrs

from taskflow.domain._fast import copier, positional_builder
from taskflow.domain.engine import Outcome
from taskflow.domain.erasure import DataSubject
from taskflow.domain.notifications import Notification
from taskflow.domain.outbox import DIGEST_TOPIC, NOTIFICATION_TOPIC, OutboxMessage
from taskflow.domain.registry import Registry, TaskKind
from taskflow.domain.task import Cause, DomainEvent, NewTask, Task
from taskflow.domain.validators import (
    check_actor,
    check_id,
    check_instance,
    check_version,
    excerpt,
    frozenset_of,
)
from taskflow.domain.values import Actor, CompanyId, TaskId, UserRef
from taskflow.errors import ConcurrencyConflict, InvalidPayload, TaskNotFound
from taskflow.ports import Changeset, Clock, IdFactory, TaskRepository

__all__ = [
    "Carried",
    "Committed",
    "Handler",
    "Subscription",
    "UnitOfWork",
    "UnitOfWorkHost",
    "notification_message",
    "notification_of",
]

Carried = DomainEvent | Notification
"""What an outbox message of this process's own commit carries, handed over without decoding."""

Handler = Callable[[DomainEvent, "UnitOfWork"], None]
"""Reacts to one committed event; its changes go in the unit of work it is given (committed after it returns)."""


def _names(value: Iterable[str] | None, where: str) -> frozenset[str] | None:
    if value is None:
        return None
    # One name alone is a set of one (kinds="question"); a str is never split into letters.
    names = frozenset({value}) if isinstance(value, str) else frozenset_of(str, value, where)
    for name in names:
        check_id(where, where.rsplit(".", 1)[-1], name)  # trimmed, short, no control characters
    return names


def _kinds(value: Iterable[str] | None) -> frozenset[str] | None:
    return _names(value, "Subscription.kinds")


def _events(value: Iterable[str] | None) -> frozenset[str] | None:
    return _names(value, "Subscription.events")


@attrs.frozen
class Subscription:
    """A handler, its unique name, and the events it wants (None: every kind, every event)."""

    name: str
    handler: Handler = attrs.field(eq=False)
    kinds: frozenset[str] | None = attrs.field(default=None, converter=_kinds)
    events: frozenset[str] | None = attrs.field(default=None, converter=_events)

    def wants(self, event: DomainEvent) -> bool:
        """Tell whether this handler is for `event`."""
        return (self.kinds is None or event.kind in self.kinds) and (
            self.events is None or event.name in self.events
        )


@attrs.frozen
class Committed:
    """What a commit wrote: the tasks as stored, the events, and the outbox message ids."""

    tasks: tuple[Task, ...]
    events: tuple[DomainEvent, ...]
    message_ids: tuple[int, ...]


def notification_message(note: Notification, version: int) -> OutboxMessage:
    """Return the outbox message that carries `note`; its key is the notification's stable id."""
    recipient = note.recipient
    payload = {
        "recipient": {"company": recipient.company, "user": recipient.user},
        "task_id": note.task_id,
        "task_number": note.task_number,
        "event": note.event,
        "message": note.message,
    }
    key = f"{note.task_id}@{version}/{note.event}/{recipient}"
    if note.digest_until is not None:
        # A digest item waits in the outbox until its period ends (`deliver_digests`).
        payload["digest_until"] = note.digest_until.isoformat()
        return OutboxMessage(
            DIGEST_TOPIC,
            key,
            payload,
            not_before=note.digest_until,
            task_id=note.task_id,
            task_version=version,
        )
    if _plain_texts(note, recipient) and type(version) is int and version >= 1:
        # Every value is a str, so the payload is JSON-ready and the key non-blank: built
        # without the checks, its body encoded only if a repository or dead letter reads it.
        message: OutboxMessage = _message(
            NOTIFICATION_TOPIC, key, payload, None, note.task_id, version
        )
        return message
    return OutboxMessage(
        NOTIFICATION_TOPIC, key, payload, task_id=note.task_id, task_version=version
    )


_message = positional_builder(OutboxMessage)


def _plain_texts(note: Notification, recipient: UserRef) -> bool:
    """Tell whether the values a notification's payload takes are all non-blank or plain str."""
    return (
        type(note.message) is str
        and type(note.event) is str
        and type(note.task_number) is str
        and type(note.task_id) is str
        and bool(note.task_id.strip())
        and type(recipient) is UserRef
        and type(recipient.company) is str
        and type(recipient.user) is str
    )


def notification_of(payload: Mapping[str, Any], key: str = "") -> Notification:
    """Return the notification `notification_message` put in an outbox payload; `key` (the message's) is its id."""
    recipient = payload["recipient"]
    until = payload.get("digest_until")
    return Notification(
        UserRef(recipient["company"], recipient["user"]),
        TaskId(payload["task_id"]),
        payload["task_number"],
        payload["event"],
        payload["message"],
        id=key,
        digest_until=None if until is None else datetime.fromisoformat(until),
    )


def _with_id(note: Notification, key: str) -> Notification:
    """Return `note` with its id set, built directly (attrs.evolve's generic path costs more)."""
    if type(note) is not Notification:
        return attrs.evolve(note, id=key)
    # A copy with the new id, field by field (the same values as attrs would set).
    copy: Notification = _copy_note(note)
    _set_note_id(copy, key)
    return copy


_copy_note = copier(Notification)
_set_note_id = Notification.__dict__["id"].__set__


class UnitOfWorkHost(Protocol):
    """What a unit of work asks of the service it belongs to (`TaskService` is one)."""

    registry: Registry
    repository: TaskRepository
    clock: Clock
    ids: IdFactory

    def may_see(self, actor: Actor, task: Task) -> bool:
        """Tell whether `actor` may read `task`."""
        ...

    def check_open(self, kind: TaskKind, draft: NewTask, actor: Actor, at: datetime) -> None:
        """Raise what opening a task of `kind` from `draft` would raise."""
        ...

    def task_number(self, company: CompanyId) -> str:
        """Take the next task number of `company`."""
        ...

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
        """Open a task with the engine."""
        ...

    def run_action(
        self, task: Task, action: str, actor: Actor, payload: Any, cause: Cause
    ) -> Outcome:
        """Take an action with the engine."""
        ...

    def run_erasure(
        self, task: Task, actor: Actor, person: DataSubject, reason: str, cause: Cause
    ) -> tuple[Task, DomainEvent]:
        """Erase a person's data from a task, if the authorizer lets the actor."""
        ...

    def notifications(
        self, before: Task | None, after: Task, events: Iterable[DomainEvent]
    ) -> tuple[Notification, ...]:
        """Return who hears of `events`."""
        ...

    def subscriptions_for(self, event: DomainEvent) -> list[Subscription]:
        """Return the handlers that want `event`."""
        ...

    def event_message(self, subscription: Subscription, event: DomainEvent) -> OutboxMessage:
        """Return the outbox message that hands `event` to one handler."""
        ...

    def after_commit(self, committed: Committed, carried: dict[int, Carried]) -> None:
        """Deliver what a commit wrote."""
        ...


class UnitOfWork:
    """One service call's work: open and change tasks, queue messages, then commit all at once."""

    def __init__(self, service: UnitOfWorkHost, *, cause: Cause | None = None) -> None:
        self._service = service
        self._cause = cause
        self._loaded: dict[TaskId, int] = {}  # the version each changed task was read at
        self._tasks: dict[TaskId, Task] = {}  # every task read or written, latest version
        self._new: dict[TaskId, None] = {}  # opened here, in order
        self._changed: dict[TaskId, None] = {}  # changed here, in order
        self._events: list[DomainEvent] = []
        self._messages: list[OutboxMessage] = []
        self._marks: dict[str, None] = {}
        # Outbox position -> the event it carries, so the service hands handlers the live event.
        self._carried: dict[int, Carried] = {}
        self._done = False

    @property
    def cause(self) -> Cause | None:
        """Return what caused this work (None until the first action of a request from outside)."""
        return self._cause

    @property
    def service(self) -> UnitOfWorkHost:
        """Return the service this unit of work belongs to."""
        return self._service

    def get(self, actor: Actor, task_id: TaskId) -> Task:
        """Return a task as `actor` may see it, this unit of work's changes included; strangers get `TaskNotFound`."""
        check_actor("get", actor)
        check_instance("get", "task_id", task_id, str)
        return self._checked(actor, task_id).visible_to(actor.company)

    def open(self, actor: Actor, kind: str, draft: NewTask) -> Outcome:
        """Open a task of `kind` from `draft` in this unit of work; `actor` becomes its requester.

        The outcome's task is as the actor may see it, like every task a unit of work hands out.
        """
        self._check_open()
        check_actor("open", actor)
        check_instance("open", "kind", kind, str)
        check_instance("open", "draft", draft, NewTask)
        service = self._service
        task_kind = service.registry[kind]
        at = service.clock.now()
        # Check everything before a number is taken, so a refused draft leaves no gap.
        service.check_open(task_kind, draft, actor, at)
        task_id = service.ids.new_task_id()
        if task_id in self._tasks:
            msg = f"the id factory gave '{task_id}' twice in one unit of work"
            raise InvalidPayload(msg, field="id")
        number = service.task_number(actor.company)
        cause = self._cause_for(task_id, 1)
        outcome = service.run_open(task_kind, draft, actor, at, task_id, number, cause)
        self._tasks[task_id] = outcome.task
        self._new[task_id] = None
        self._record(None, outcome)
        return Outcome(outcome.task.visible_to(actor.company), outcome.events)

    def act(
        self,
        actor: Actor,
        task_id: TaskId,
        action: str,
        payload: Any = None,
        *,
        expected_version: int | None = None,
    ) -> Outcome:
        """Take `action` on a task in this unit of work; with `expected_version`, only on that version."""
        self._check_open()
        check_actor("act", actor)
        check_instance("act", "task_id", task_id, str)
        check_instance("act", "action", action, str)
        check_version("act", expected_version)
        task = self._checked(actor, task_id)
        if expected_version is not None and task.version != expected_version:
            raise ConcurrencyConflict(task.number, expected_version, task.version)
        cause = self._cause_for(task_id, task.version + 1)
        outcome = self._service.run_action(task, action, actor, payload, cause)
        if task_id not in self._new and task_id not in self._loaded:
            self._loaded[task_id] = task.version
            self._changed[task_id] = None
        self._tasks[task_id] = outcome.task
        self._record(task, outcome)
        return Outcome(outcome.task.visible_to(actor.company), outcome.events)

    def erase(self, actor: Actor, task_id: TaskId, person: DataSubject, reason: str) -> Outcome:
        """Erase `person`'s personal data from a task and its history in this unit of work.

        The history keeps its shape (who did what when) with tombstones and gains an
        `erase_personal_data` entry naming `actor` and `reason`; only actors the authorizer
        lets take the service's erasure transition may erase. It notifies nobody and runs no
        handler (handlers react to workflow actions).
        """
        self._check_open()
        call = "erase_personal_data"
        check_actor(call, actor)
        check_instance(call, "task_id", task_id, str)
        check_instance(call, "person", person, DataSubject)
        task = self._checked(actor, task_id)
        cause = self._cause_for(task_id, task.version + 1)
        erased, event = self._service.run_erasure(task, actor, person, reason, cause)
        if task_id not in self._new and task_id not in self._loaded:
            self._loaded[task_id] = task.version
            self._changed[task_id] = None
        self._tasks[task_id] = erased
        self._events.append(event)
        return Outcome(erased.visible_to(actor.company), (event,))

    def enqueue(self, message: OutboxMessage) -> None:
        """Queue an outbox message (a tracker item, a webhook) to be committed with the tasks."""
        self._check_open()
        if not isinstance(message, OutboxMessage):
            msg = f"enqueue needs an OutboxMessage, got {type(message).__name__}"
            raise InvalidPayload(msg, field="message")
        self._messages.append(message)

    def mark(self, key: str) -> None:
        """Store `key` once for good with this commit; if a commit stored it before, the commit raises `MarkTaken`."""
        self._check_open()
        if not isinstance(key, str) or not key.strip():
            msg = f"a mark must be a non-blank string, got {excerpt(key)}"
            raise InvalidPayload(msg, field="mark")
        self._marks[key] = None

    def marked(self, key: str) -> bool:
        """Tell whether `key` is marked, by this unit of work or by a stored commit."""
        return key in self._marks or self._service.repository.marked(key)

    @property
    def events(self) -> tuple[DomainEvent, ...]:
        """Return the events of every action taken so far, in order."""
        return tuple(self._events)

    def commit(self) -> Committed:
        """Write every opened and changed task and every message in one atomic commit."""
        self._check_open()
        self._done = True
        changes = Changeset(
            added=[self._tasks[i] for i in self._new],
            saved=[(self._tasks[i], self._loaded[i]) for i in self._changed],
            messages=self._messages,
            marks=tuple(self._marks),
        )
        ids = () if changes.empty else self._service.repository.commit(changes)
        tasks = (*changes.added, *(task for task, _ in changes.saved))
        return Committed(tasks, tuple(self._events), tuple(ids))

    def carried(self, committed: Committed) -> dict[int, Carried]:
        """Return, by outbox id, the live notification or event each message of `committed` carries."""
        return {committed.message_ids[i]: value for i, value in self._carried.items()}

    def __enter__(self) -> UnitOfWork:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is not None or self._done:
            self._done = True
            return
        committed = self.commit()
        self._service.after_commit(committed, self.carried(committed))

    # --- internals ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._done:
            msg = "this unit of work was committed or discarded; start a new one"
            raise InvalidPayload(msg, field="unit_of_work")

    def _checked(self, actor: Actor, task_id: TaskId) -> Task:
        task = self._read(task_id)
        if not task.is_party(actor.company) or not self._service.may_see(actor, task):
            raise TaskNotFound(task_id)
        return task

    def _read(self, task_id: TaskId) -> Task:
        task = self._tasks.get(task_id)
        if task is None:
            task = self._service.repository.get(task_id)
            self._tasks[task_id] = task
        return task

    def _cause_for(self, task_id: TaskId, version: int) -> Cause:
        if self._cause is None:
            # A request from outside: everything it causes shares the id of its first change.
            self._cause = Cause(f"{task_id}@{version}")
        return self._cause

    def _record(self, before: Task | None, outcome: Outcome) -> None:
        service = self._service
        task = outcome.task
        self._events.extend(outcome.events)
        for note in service.notifications(before, task, outcome.events):
            message = notification_message(note, task.version)
            # The message's key is the notification's id, on this delivery and every later one.
            self._carried[len(self._messages)] = _with_id(note, message.key)
            self._messages.append(message)
        for event in outcome.events:
            for subscription in service.subscriptions_for(event):
                self._carried[len(self._messages)] = event
                self._messages.append(service.event_message(subscription, event))
