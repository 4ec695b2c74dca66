"""A hypothesis state machine that drives any task kind through the service and checks invariants.

Use `workflow_machine` to get a machine for one kind of a `Registry`; pytest runs its `TestCase`.
Every step opens a task or takes a random action (allowed or not, with a fitting, a wrong or
no payload) after a random wait; then the engine's invariants are checked. A broken invariant
raises `InvariantViolated`, whose `invariant` says which one.
"""

from __future__ import annotations

import enum
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from taskflow.adapters.memory import (
    FixedClock,
    InMemoryRepository,
    RecordingNotifier,
    SequentialIds,
)
from taskflow.application.service import TaskService
from taskflow.domain import engine
from taskflow.domain.authorization import DEFAULT_AUTHORIZER, Authorizer
from taskflow.domain.engine import Outcome
from taskflow.domain.notifications import Notification
from taskflow.domain.query import TaskQuery
from taskflow.domain.registry import Registry, TaskKind
from taskflow.domain.task import OPEN, NewTask, Task
from taskflow.domain.values import Actor, CompanyId, Side, TaskId, UserId, UserRef
from taskflow.domain.workflow import Workflow
from taskflow.errors import (
    ActionNotAllowed,
    InvalidPayload,
    InvalidWorkflow,
    PermissionDenied,
    TaskflowError,
    TaskNotFound,
    UnknownKind,
)
from taskflow.ports import Clock, IdFactory, Notifier, TaskRepository
from taskflow.serialization import Serializer
from taskflow.testing.strategies import (
    KindStrategies,
    Parties,
    aware_datetimes,
    builtin_strategies,
    new_tasks,
)

__all__ = ["Invariant", "InvariantViolated", "WorkflowMachine", "workflow_machine"]

# Start early enough that the built-in strategies' "good" expiry dates are still in the future.
_LATEST_START = datetime(2026, 1, 1, tzinfo=UTC)
# Zero waits are frequent so that several history entries share one time (task_at must cope).
_WAITS = st.one_of(st.just(timedelta(0)), st.timedeltas(timedelta(0), timedelta(days=30)))
_ONE_IN_TEN = st.integers(0, 9)
_ONE_IN_EIGHT = st.integers(0, 7)
# Fields an action never changes: they say which task it is and between whom.
_IDENTITY = ("id", "number", "kind", "requester", "recipient", "created_at")
_BOOKKEEPING = frozenset({"history", "version"})
_TASK_FIELDS = tuple(a.name for a in attrs.fields(Task))


_REFUSED: Any = object()
"""What `_draw_payload` returns for a payload its own class refused while being built."""


class Invariant(enum.StrEnum):
    """The invariants the workflow machine checks; `InvariantViolated.invariant` names one."""

    # An action missing from allowed_actions is refused with ActionNotAllowed or
    # PermissionDenied; a listed one is accepted, or only its payload is refused
    # (InvalidPayload, or PermissionDenied for edit fields the actor may not change).
    ALLOWED_AGREES_WITH_APPLY = "allowed-agrees-with-apply"
    # Every refusal, of an action or of a draft, is a TaskflowError.
    REFUSAL_IS_TASKFLOW_ERROR = "refusal-is-taskflow-error"
    # A refusal leaves the stored task as it was and notifies nobody.
    REFUSAL_CHANGES_NOTHING = "refusal-changes-nothing"
    # An accepted action adds one entry (action, actor, time, from and to state, payload,
    # changed fields) and one version; a new task starts with one 'open' entry.
    HISTORY_RECORDS_EACH_ACTION = "history-records-each-action"
    # No action changes a task's id, number, kind, requester, recipient or creation time.
    IDENTITY_UNCHANGED = "identity-unchanged"
    # The state is the transition's target (or unchanged) and one of the workflow's;
    # resolved_at is set and the ball is None exactly when the state is final.
    STATE_AND_RESOLUTION = "state-and-resolution"
    # The Serializer's dump, through JSON text, loads back to an equal task.
    SERIALIZATION_ROUND_TRIP = "serialization-round-trip"
    # replay() applies the recorded facts and gives the stored task, under no rule of the
    # workflow; task_at() at each entry's time gives the task as stored after the last entry
    # of that time; changes() gives each entry's fields as stored before and after it.
    REPLAY = "replay"
    # Open tasks are in the Teambox of the ball's company and in the inbox of its assignees
    # there, nowhere else, for the users who may see them; dashboards count each party's tasks
    # of the kinds the user may see.
    INBOX_AND_TEAMBOX = "inbox-and-teambox"
    # A stranger, or a user the authorizer does not let see a task, gets TaskNotFound and sees
    # nothing of it; a party never sees the other company's internal notes.
    COMPANY_ISOLATION = "company-isolation"
    # No notification goes to the actor, to a stranger, or to a company that may not read
    # the payload (an internal comment).
    NOTIFICATIONS = "notifications"


class InvariantViolated(AssertionError):
    """A workflow, service or adapter broke one of the invariants the machine checks."""

    def __init__(self, invariant: Invariant, detail: str) -> None:
        self.invariant = invariant
        self.detail = detail
        msg = f"[{invariant.value}] {detail}"
        super().__init__(msg)


def _roles_of(workflow: Workflow, extra: frozenset[str]) -> frozenset[str]:
    named = frozenset().union(workflow.open_roles, *(t.roles for t in workflow.transitions))
    return named | extra | {"admin"}


def _company(name: str, roles: frozenset[str]) -> tuple[Actor, ...]:
    # One user with every role the workflow names, so role-restricted actions are reachable;
    # one with none, and (up to two) with a single role each, so they are refused too.
    single = [frozenset({r}) for r in sorted(roles - {"admin"})][:2]
    role_sets = (roles, frozenset(), *single)
    return tuple(
        Actor(UserId(f"{name}-{i}"), CompanyId(name), rs) for i, rs in enumerate(role_sets, 1)
    )


def _readable(payload: Any, author: CompanyId, reader: CompanyId) -> bool:
    # Payloads that are private to the author's company (internal comments) say so this way.
    visible_to_company = getattr(payload, "visible_to_company", None)
    return visible_to_company is None or bool(visible_to_company(author, reader))


def _unknown_action(workflow: Workflow) -> str:
    name = "no_such_action"
    while workflow.transition(name) is not None:
        name += "_"
    return name


@attrs.frozen(eq=False)
class _Kit:
    """What a machine class needs in every run: built once per class, since building costs."""

    registry: Registry
    kind: TaskKind
    table: KindStrategies
    serializer: Serializer
    parties: Parties
    drafts: st.SearchStrategy[NewTask]
    people: st.SearchStrategy[list[UserRef]]
    action_names: tuple[str, ...]
    payload_types: tuple[type, ...]
    extra_roles: frozenset[str]


def _build_kit(
    registry: Registry, kind: str, table: KindStrategies | None, extra_roles: frozenset[str]
) -> _Kit:
    task_kind = registry[kind]
    workflow = task_kind.workflow
    roles = _roles_of(workflow, extra_roles)
    parties = Parties(
        _company("req", roles),
        _company("rcp", roles),
        Actor(UserId("eve"), CompanyId("other"), roles),
    )
    table = table if table is not None else builtin_strategies()
    colleagues = [a.ref for a in (*parties.recipients, *parties.requesters)]
    return _Kit(
        registry=registry,
        kind=task_kind,
        table=table,
        serializer=Serializer(registry),
        parties=parties,
        drafts=new_tasks(task_kind, parties.recipients[0].company, table),
        people=st.lists(st.sampled_from(colleagues), max_size=2),
        action_names=(*workflow.action_names, OPEN, _unknown_action(workflow)),
        payload_types=tuple(
            dict.fromkeys(t.payload for t in workflow.transitions if t.payload is not None)
        ),
        extra_roles=extra_roles,
    )


class WorkflowMachine(RuleBasedStateMachine):
    """Drive one task kind through `TaskService` with random actions and check its invariants.

    Get a configured subclass from `workflow_machine`, or subclass and set `registry`, `kind`
    and (for kinds beyond the built-in ones) `table`; set `authorizer` (and the `roles` it
    names) to check your own rules, a `RoleMatrix` say. Override `make_repository` or
    `make_service` to run the same checks against your own repository or notification policy.

    A run opens up to `max_tasks` tasks from company `req` to company `rcp`; each company has
    a user with every role the workflow (or `roles`) names, one with none, and some with a
    single role; `eve` of company `other` is the outsider. Rules of a subclass may use
    `self.service`, `self.repository`, `self.clock`, `self.notifier` and `self.parties`.
    """

    registry: ClassVar[Registry | None] = None
    kind: ClassVar[str | None] = None
    table: ClassVar[KindStrategies | None] = None
    authorizer: ClassVar[Authorizer] = DEFAULT_AUTHORIZER
    roles: ClassVar[frozenset[str]] = frozenset()
    max_tasks: ClassVar[int] = 2
    # Each class builds its kit once (a serializer generates code): looked up in its own
    # __dict__, so a subclass never runs with its parent's.
    _built_kit: ClassVar[_Kit | None] = None

    task_ids: Bundle[TaskId] = Bundle("task_ids")

    def __init__(self) -> None:
        super().__init__()
        kit = self._class_kit()
        self._kit = kit
        self.task_registry: Registry = kit.registry
        self.task_kind: TaskKind = kit.kind
        self.workflow: Workflow = kit.kind.workflow
        self.strategies: KindStrategies = kit.table
        self.serializer: Serializer = kit.serializer
        self.parties: Parties = kit.parties
        self.notifier = RecordingNotifier()
        # Before any start the rules draw, since the clock only moves forward.
        self.clock = FixedClock(datetime(2000, 1, 1, tzinfo=UTC))
        self.ids = SequentialIds()
        self.repository = self.make_repository()
        self.service = self.make_service(self.repository, self.notifier, self.clock, self.ids)
        self.opened: list[TaskId] = []
        self._checked: dict[TaskId, Task] = {}
        # Every version of each task as stored after each accepted action, by version number;
        # and how many entries of each task were looked back at already.
        self._versions: dict[TaskId, dict[int, Task]] = {}
        self._looked_back: dict[TaskId, int] = {}

    @classmethod
    def _class_kit(cls) -> _Kit:
        if cls.registry is None or cls.kind is None:
            msg = (
                f"{cls.__name__} names no registry and kind; "
                "build a machine with workflow_machine(registry, kind)"
            )
            raise InvalidWorkflow(msg)
        kit = cls.__dict__.get("_built_kit")
        if (
            not isinstance(kit, _Kit)
            or kit.registry is not cls.registry
            or kit.kind is not cls.registry[cls.kind]
            or (cls.table is not None and kit.table is not cls.table)
            or kit.extra_roles != cls.roles
        ):
            kit = _build_kit(cls.registry, cls.kind, cls.table, frozenset(cls.roles))
            cls._built_kit = kit
        return kit

    def make_repository(self) -> TaskRepository:
        """Return the empty repository the machine stores tasks in (override to test your own)."""
        return InMemoryRepository()

    def make_service(
        self, repository: TaskRepository, notifier: Notifier, clock: Clock, ids: IdFactory
    ) -> TaskService:
        """Return the service the machine drives (override to pass your own policy)."""
        return TaskService(
            registry=self.task_registry,
            repository=repository,
            notifier=notifier,
            clock=clock,
            ids=ids,
            authorizer=self.authorizer,
        )

    # -- rules ------------------------------------------------------------------------------

    @initialize(start=aware_datetimes(max_value=_LATEST_START))
    def start_the_clock(self, start: datetime) -> None:
        """Set the time the story starts."""
        self.clock.set(start)

    @precondition(lambda self: len(self.opened) < self.max_tasks)
    @rule(target=task_ids, data=st.data())
    def open_task(self, data: st.DataObject) -> TaskId | MultipleResults[TaskId]:
        """Open a task from a random draft, sometimes naming assignees and watchers."""
        kit = self._kit
        who = self.parties
        self.clock.advance(data.draw(_WAITS, label="wait"))
        opener = data.draw(st.sampled_from(who.requesters), label="opener")
        try:
            draft = data.draw(kit.drafts, label="draft")
        except TaskflowError:
            # Kind data its own class refuses (a validator): a refused input, not a crash.
            return multiple()
        assignees = data.draw(kit.people, label="assignees")
        stranger = data.draw(_ONE_IN_TEN, label="stranger") == 0
        if stranger:
            assignees = [*assignees, who.outsider.ref]
        watchers = data.draw(kit.people, label="watchers")
        draft = attrs.evolve(draft, assignees=assignees, watchers=watchers)
        return self._open(opener, draft, stranger=stranger)

    @rule(task_id=task_ids, data=st.data())
    def take_allowed_action(self, task_id: TaskId, data: st.DataObject) -> None:
        """Take an action the service says is allowed, mostly with a fitting payload."""
        self.clock.advance(data.draw(_WAITS, label="wait"))
        task = self.repository.get(task_id)
        pairs = [
            (actor, action)
            for actor in (*self.parties.requesters, *self.parties.recipients)
            if self._sees(actor, task)
            for action in self.service.allowed_actions(actor, task_id)
        ]
        # Actions that stay (comment, assign, ...) outnumber moves; favour moves to get deep.
        moves = [(actor, action) for actor, action in pairs if self._moves(action, task)]
        if moves:
            favour: bool = data.draw(st.booleans(), label="favour a move")
            pairs = moves if favour else pairs
        if not pairs:
            return
        actor, action = data.draw(st.sampled_from(pairs), label="actor and action")
        payload = self._draw_payload(data, action, task)
        if payload is _REFUSED:
            return
        self._act(task_id, actor, action, payload, data)

    @rule(task_id=task_ids, data=st.data())
    def take_any_action(self, task_id: TaskId, data: st.DataObject) -> None:
        """Take any action of the workflow, or an unknown one, as anyone, outsider included."""
        self.clock.advance(data.draw(_WAITS, label="wait"))
        task = self.repository.get(task_id)
        actor = data.draw(st.sampled_from(self.parties.everyone), label="actor")
        action = data.draw(st.sampled_from(self._kit.action_names), label="action")
        payload = self._draw_payload(data, action, task)
        if payload is _REFUSED:
            return
        self._act(task_id, actor, action, payload, data)

    @invariant()
    def invariants_hold(self) -> None:
        """Check every stored task, the inboxes, the Teamboxes and what the outsider sees."""
        tasks = [self.repository.get(task_id) for task_id in self.opened]
        for task in tasks:
            checked = self._checked.get(task.id)
            if checked is task or checked == task:
                continue  # the checks below depend on the task's value alone
            self._check_state(task)
            self._check_round_trip(task)
            self._check_replay(task)
            self._checked[task.id] = task
        self._check_boxes(tasks)
        self._check_isolation(tasks)

    # -- helpers ----------------------------------------------------------------------------

    def _draw_payload(self, data: st.DataObject, action: str, task: Task) -> Any:
        # Mostly the action's own payload type; sometimes none, or another action's payload.
        transition = self.workflow.transition(action)
        own = None if transition is None else transition.payload
        pick = data.draw(_ONE_IN_EIGHT, label="payload kind")
        others = [p for p in self._kit.payload_types if p is not own]
        if pick == 0:
            return None
        payload_type = own
        if pick == 1 and others:
            payload_type = data.draw(st.sampled_from(others), label="other payload type")
        strategy = self.strategies.payload(payload_type, task, self.parties)
        try:
            return data.draw(strategy, label="payload")
        except TaskflowError:
            # A payload its own class refuses (an attrs validator, as docs/extending.md
            # recommends) never reaches the service: a refused input, not a crash.
            return _REFUSED

    def _moves(self, action: str, task: Task) -> bool:
        transition = self.workflow.transition(action)
        return transition is not None and transition.target not in (None, task.state)

    def _stored_ids(self) -> set[TaskId]:
        return {t.id for t in self.repository.query(TaskQuery())}

    def _open(
        self, opener: Actor, draft: NewTask, *, stranger: bool
    ) -> TaskId | MultipleResults[TaskId]:
        stored_before = self._stored_ids()
        sent = len(self.notifier.sent)
        at = self.clock.now()
        try:
            outcome = self.service.open(opener, self.task_kind.name, draft)
        except TaskflowError as exc:
            if self._stored_ids() != stored_before or len(self.notifier.sent) != sent:
                msg = f"opening a task was refused ({exc}) but a task was stored or someone told"
                raise InvariantViolated(Invariant.REFUSAL_CHANGES_NOTHING, msg) from exc
            return multiple()
        except Exception as exc:
            msg = f"opening a task raised {type(exc).__name__}: {exc}; refusals are TaskflowErrors"
            raise InvariantViolated(Invariant.REFUSAL_IS_TASKFLOW_ERROR, msg) from exc
        task = self.repository.get(outcome.task.id)
        if stranger:
            msg = f"task {task.number} was opened with an assignee of a company not party to it"
            raise InvariantViolated(Invariant.COMPANY_ISOLATION, msg)
        first = task.history[0] if task.history else None
        expected = (OPEN, opener, at, None, self.workflow.initial)
        if (
            len(task.history) != 1
            or task.version != 1
            or first is None
            or (first.action, first.actor, first.at, first.from_state, first.to_state) != expected
            or task.requester != opener.ref
            or task.state != self.workflow.initial
        ):
            msg = f"opened task {task.number} does not start with one '{OPEN}' entry by {opener} at {at}: {task.history}"
            raise InvariantViolated(Invariant.HISTORY_RECORDS_EACH_ACTION, msg)
        self._check_notifications(task, opener, draft, self.notifier.sent[sent:])
        self.opened.append(task.id)
        self._versions[task.id] = {task.version: task}
        return task.id

    def _sees(self, actor: Actor, task: Task) -> bool:
        return task.is_party(actor.company) and bool(self.authorizer.may_see(task, actor))

    def _allowed(self, actor: Actor, task: Task) -> tuple[str, ...] | None:
        if self._sees(actor, task):
            return self.service.allowed_actions(actor, task.id)
        try:
            allowed = self.service.allowed_actions(actor, task.id)
        except TaskNotFound:
            return None
        msg = f"{actor} may not see task {task.number} yet was told it may take {allowed}"
        raise InvariantViolated(Invariant.COMPANY_ISOLATION, msg)

    def _act(
        self, task_id: TaskId, actor: Actor, action: str, payload: Any, data: st.DataObject
    ) -> None:
        before = self.repository.get(task_id)
        sent = len(self.notifier.sent)
        at = self.clock.now()
        allowed = self._allowed(actor, before)
        try:
            outcome = self.service.act(actor, task_id, action, payload)
        except TaskflowError as exc:
            self._check_refusal(before, actor, action, payload, allowed, exc, sent)
            return
        except Exception as exc:
            msg = (
                f"'{action}' by {actor} on task {before.number} in '{before.state}' raised "
                f"{type(exc).__name__}: {exc}; every refusal must be a TaskflowError"
            )
            raise InvariantViolated(Invariant.REFUSAL_IS_TASKFLOW_ERROR, msg) from exc
        self._check_accepted(before, actor, action, payload, at, allowed, outcome, sent)
        after = self.repository.get(task_id)
        self._versions.setdefault(task_id, {})[after.version] = after
        self._check_look_back(task_id, data)

    def _edits_forbidden_fields(self, task: Task, actor: Actor, action: str, payload: Any) -> bool:
        transition = self.workflow.transition(action)
        fields = getattr(payload, "fields", None)
        if transition is None or transition.editable is None or not callable(fields):
            return False
        allowed = self.authorizer.editable_fields(self.workflow, task, transition, actor)
        return not set(fields()) <= allowed

    def _check_refusal(
        self,
        before: Task,
        actor: Actor,
        action: str,
        payload: Any,
        allowed: tuple[str, ...] | None,
        exc: TaskflowError,
        sent: int,
    ) -> None:
        what = f"'{action}' by {actor} on task {before.number} in '{before.state}'"
        if allowed is None:
            if not isinstance(exc, TaskNotFound):
                msg = f"{what}: a task the actor may not see must be TaskNotFound, got {type(exc).__name__}: {exc}"
                raise InvariantViolated(Invariant.COMPANY_ISOLATION, msg) from exc
        elif action in allowed:
            # An offered edit may still name a field the actor may not change.
            by_fields = isinstance(exc, PermissionDenied) and self._edits_forbidden_fields(
                before, actor, action, payload
            )
            if not (isinstance(exc, InvalidPayload) or by_fields):
                msg = (
                    f"{what} is allowed {allowed}, so only its payload may be refused, "
                    f"but apply raised {type(exc).__name__}: {exc}"
                )
                raise InvariantViolated(Invariant.ALLOWED_AGREES_WITH_APPLY, msg) from exc
        elif not isinstance(exc, (ActionNotAllowed, PermissionDenied)):
            msg = (
                f"{what} is not allowed {allowed}, so apply must raise ActionNotAllowed or "
                f"PermissionDenied, but raised {type(exc).__name__}: {exc}"
            )
            raise InvariantViolated(Invariant.ALLOWED_AGREES_WITH_APPLY, msg) from exc
        after = self.repository.get(before.id)
        if after != before:
            msg = f"{what} was refused ({exc}) but the stored task changed: {after}"
            raise InvariantViolated(Invariant.REFUSAL_CHANGES_NOTHING, msg) from exc
        if len(self.notifier.sent) != sent:
            msg = f"{what} was refused ({exc}) but notified {self.notifier.sent[sent:]}"
            raise InvariantViolated(Invariant.REFUSAL_CHANGES_NOTHING, msg) from exc

    def _check_accepted(
        self,
        before: Task,
        actor: Actor,
        action: str,
        payload: Any,
        at: datetime,
        allowed: tuple[str, ...] | None,
        outcome: Outcome,
        sent: int,
    ) -> None:
        what = f"'{action}' by {actor} on task {before.number} in '{before.state}'"
        if allowed is None:
            msg = f"{what} was accepted though {actor} may not see the task"
            raise InvariantViolated(Invariant.COMPANY_ISOLATION, msg)
        if action not in allowed:
            msg = f"{what} was accepted though allowed_actions said only {allowed}"
            raise InvariantViolated(Invariant.ALLOWED_AGREES_WITH_APPLY, msg)
        after = self.repository.get(before.id)
        moved = [f for f in _IDENTITY if getattr(after, f) != getattr(before, f)]
        if moved:
            msg = f"{what} changed {moved}, which name the task and its parties"
            raise InvariantViolated(Invariant.IDENTITY_UNCHANGED, msg)
        self._check_entry(what, before, after, actor, action, payload, at)
        transition = self.workflow.transition(action)
        assert transition is not None  # allowed actions are declared ones
        target = before.state if transition.target is None else transition.target
        if after.state != target:
            msg = f"{what} leads to '{target}' but the task is now '{after.state}'"
            raise InvariantViolated(Invariant.STATE_AND_RESOLUTION, msg)
        if outcome.task != after.visible_to(actor.company):
            msg = f"{what} returned a task that differs from the stored one as {actor} sees it"
            raise InvariantViolated(Invariant.COMPANY_ISOLATION, msg)
        self._check_notifications(after, actor, payload, self.notifier.sent[sent:])

    def _check_entry(
        self,
        what: str,
        before: Task,
        after: Task,
        actor: Actor,
        action: str,
        payload: Any,
        at: datetime,
    ) -> None:
        if (
            after.version != before.version + 1
            or len(after.history) != len(before.history) + 1
            or after.history[:-1] != before.history
        ):
            msg = (
                f"{what} must add one history entry and one version: version "
                f"{before.version} -> {after.version}, entries "
                f"{len(before.history)} -> {len(after.history)}"
            )
            raise InvariantViolated(Invariant.HISTORY_RECORDS_EACH_ACTION, msg)
        entry = after.history[-1]
        recorded = (entry.action, entry.actor, entry.at, entry.from_state, entry.to_state)
        expected = (action, actor, at, before.state, after.state)
        if recorded != expected or entry.payload != payload:
            msg = f"{what}: the new entry records {recorded} with {entry.payload!r}, expected {expected} with {payload!r}"
            raise InvariantViolated(Invariant.HISTORY_RECORDS_EACH_ACTION, msg)
        differ = {
            name
            for name in _TASK_FIELDS
            if name not in _BOOKKEEPING and getattr(after, name) != getattr(before, name)
        }
        if set(entry.changed) != differ:
            msg = f"{what}: the entry lists changed fields {entry.changed}, but {sorted(differ)} changed"
            raise InvariantViolated(Invariant.HISTORY_RECORDS_EACH_ACTION, msg)

    def _check_notifications(
        self, task: Task, actor: Actor, payload: Any, sent: Sequence[Notification]
    ) -> None:
        parties = {task.requester.company, task.recipient}
        for note in sent:
            to: UserRef = note.recipient
            why = ""
            if to == actor.ref:
                why = "the acting user"
            elif to.company not in parties:
                why = "a user of a company that is no party to the task"
            elif note.task_id != task.id:
                why = f"a user, about another task ({note.task_id})"
            elif not _readable(payload, actor.company, to.company):
                why = "a user of a company that may not read the payload (an internal note)"
            if why:
                msg = f"task {task.number}: '{note.event}' by {actor} notified {to}, {why}"
                raise InvariantViolated(Invariant.NOTIFICATIONS, msg)

    def _check_look_back(self, task_id: TaskId, data: st.DataObject) -> None:
        task = self.repository.get(task_id)
        index = data.draw(st.integers(0, len(task.history) - 1), label="look back to entry")
        when = task.history[index].at
        # Several entries may share one time: the task then stands as after the last of them.
        last = max(i for i, e in enumerate(task.history) if e.at <= when)
        try:
            past = engine.task_at(self.workflow, task, when)
            earlier = engine.task_at(self.workflow, task, task.created_at - timedelta.resolution)
        except Exception as exc:
            msg = f"task {task.number} cannot be rebuilt as it stood at {when}: {exc!r}"
            raise InvariantViolated(Invariant.REPLAY, msg) from exc
        expected = task.history[last].to_state
        if past is None or past.state != expected or past.version != last + 1:
            got = None if past is None else (past.state, past.version)
            msg = f"task {task.number} at {when} was '{expected}' v{last + 1}, task_at gives {got}"
            raise InvariantViolated(Invariant.REPLAY, msg)
        if earlier is not None:
            msg = f"task {task.number} did not exist before {task.created_at}, task_at says it did"
            raise InvariantViolated(Invariant.REPLAY, msg)

    def _check_state(self, task: Task) -> None:
        if task.state not in self.workflow.state_names:
            msg = f"task {task.number} is in '{task.state}', not a state of {self.workflow.state_names}"
            raise InvariantViolated(Invariant.STATE_AND_RESOLUTION, msg)
        final = self.workflow.state(task.state).final
        why = ""
        if final and task.resolved_at is None:
            why = "is final but has no resolved_at"
        elif not final and task.resolved_at is not None:
            why = f"is not final but was resolved at {task.resolved_at}"
        elif final and task.ball is not None:
            why = f"is final but the ball is still with the {task.ball}"
        elif not final and not isinstance(task.ball, Side):
            why = f"is open but the ball is {task.ball!r}, not a side"
        if why:
            msg = f"task {task.number} in '{task.state}' {why}"
            raise InvariantViolated(Invariant.STATE_AND_RESOLUTION, msg)

    def _check_round_trip(self, task: Task) -> None:
        try:
            # Through JSON text, as a host stores it.
            dumped = json.loads(json.dumps(self.serializer.dump_task(task)))
            loaded = self.serializer.load_task(dumped)
        except Exception as exc:
            msg = f"task {task.number} in '{task.state}' does not serialize: {exc!r}"
            raise InvariantViolated(Invariant.SERIALIZATION_ROUND_TRIP, msg) from exc
        if loaded != task:
            wrong = [f for f in _TASK_FIELDS if getattr(loaded, f) != getattr(task, f)]
            msg = f"task {task.number} comes back from serialization with other {wrong}"
            raise InvariantViolated(Invariant.SERIALIZATION_ROUND_TRIP, msg)

    def _check_replay(self, task: Task) -> None:
        try:
            rebuilt = engine.replay(self.workflow, task)
        except Exception as exc:
            msg = f"task {task.number} cannot be rebuilt from its history: {exc!r}"
            raise InvariantViolated(Invariant.REPLAY, msg) from exc
        if rebuilt != task:
            wrong = (
                ["(nothing: not opened)"]
                if rebuilt is None
                else [f for f in _TASK_FIELDS if getattr(rebuilt, f) != getattr(task, f)]
            )
            msg = f"task {task.number} rebuilt from its history differs in {wrong}"
            raise InvariantViolated(Invariant.REPLAY, msg)
        self._check_past_versions(task)

    def _check_past_versions(self, task: Task) -> None:
        # The history only grows, so each entry is looked at once; a later entry of the same
        # time is looked at with that time, which covers the earlier ones.
        versions = self._versions.get(task.id, {})
        entries = task.history
        for index in range(self._looked_back.get(task.id, 0), len(entries)):
            when = entries[index].at
            last = max(i for i, e in enumerate(entries) if e.at <= when)
            stored = versions.get(last + 1)
            try:
                past = engine.task_at(None, task, when)
                found = engine.changes(None, task, index)
            except Exception as exc:
                msg = f"task {task.number} cannot be looked back at entry {index}: {exc!r}"
                raise InvariantViolated(Invariant.REPLAY, msg) from exc
            if stored is not None and past != stored:
                wrong = (
                    ["(nothing: not opened)"]
                    if past is None
                    else [f for f in _TASK_FIELDS if getattr(past, f) != getattr(stored, f)]
                )
                msg = (
                    f"task {task.number} at {when} differs from the version {last + 1} stored "
                    f"then in {wrong}"
                )
                raise InvariantViolated(Invariant.REPLAY, msg)
            before, after = versions.get(index), versions.get(index + 1)
            if index and before is not None and after is not None:
                expected = tuple(
                    engine.Change(name, getattr(before, name), getattr(after, name))
                    for name in entries[index].changed
                )
                if found != expected:
                    msg = (
                        f"task {task.number}: changes of entry {index} "
                        f"('{entries[index].action}') are {found}, but the stored versions "
                        f"{index} and {index + 1} give {expected}"
                    )
                    raise InvariantViolated(Invariant.REPLAY, msg)
        self._looked_back[task.id] = len(entries)

    def _check_boxes(self, tasks: Sequence[Task]) -> None:
        for company in (self.parties.requesters, self.parties.recipients):
            own = company[0].company
            waiting = [t for t in tasks if t.is_open and t.ball_company == own]
            # The Teambox is the company's, as far as each colleague may see its tasks.
            for actor in (company[0], company[-1]):
                expected = {t.id for t in waiting if self._sees(actor, t)}
                got = {t.id for t in self.service.teambox(actor)}
                if got != expected:
                    msg = f"the Teambox of {own} holds {sorted(got)} for {actor}, expected {sorted(expected)}"
                    raise InvariantViolated(Invariant.INBOX_AND_TEAMBOX, msg)
            for actor in company:
                mine = {t.id for t in waiting if actor.ref in t.assignees and self._sees(actor, t)}
                got = {t.id for t in self.service.inbox(actor)}
                if got != mine:
                    msg = f"the inbox of {actor} holds {sorted(got)}, expected {sorted(mine)}"
                    raise InvariantViolated(Invariant.INBOX_AND_TEAMBOX, msg)
            for actor in (company[0], company[-1]):
                counts = dict(
                    Counter(
                        (t.kind, t.state)
                        for t in tasks
                        if t.is_party(own) and self.authorizer.may_see_kind(t.kind, actor)
                    )
                )
                dashboard = self.service.dashboard(actor).counts
                if dashboard != counts:
                    msg = (
                        f"the dashboard of {own} counts {dashboard} for {actor}, expected {counts}"
                    )
                    raise InvariantViolated(Invariant.INBOX_AND_TEAMBOX, msg)

    def _check_isolation(self, tasks: Sequence[Task]) -> None:
        outsider = self.parties.outsider
        seen = (
            self.service.inbox(outsider)
            + self.service.teambox(outsider)
            + self.service.find(outsider, TaskQuery())
        )
        if seen or self.service.dashboard(outsider).total():
            msg = f"{outsider}, no party to any task, sees {sorted({t.id for t in seen})}"
            raise InvariantViolated(Invariant.COMPANY_ISOLATION, msg)
        # The first user holds every role, the second none: between them, who sees and who not.
        who = self.parties
        viewers = tuple(
            dict.fromkeys(
                (*who.requesters[1:2], who.requesters[-1], *who.recipients[1:2], who.recipients[-1])
            )
        )
        for task in tasks:
            for blind in (outsider, *(v for v in viewers if not self._sees(v, task))):
                try:
                    self.service.get(blind, task.id)
                except TaskNotFound:
                    continue
                msg = f"{blind} may get task {task.number} without being allowed to see it"
                raise InvariantViolated(Invariant.COMPANY_ISOLATION, msg)
            for viewer in viewers:
                if not self._sees(viewer, task):
                    continue
                view = self.service.get(viewer, task.id)
                hidden: list[object] = [
                    c for c in view.comments if not c.visible_to(viewer.company)
                ]
                hidden += [
                    e
                    for e in view.history
                    if not _readable(e.payload, e.actor.company, viewer.company)
                ]
                if view.id != task.id or hidden:
                    msg = f"{viewer} sees task {task.number} with notes of the other company: {hidden}"
                    raise InvariantViolated(Invariant.COMPANY_ISOLATION, msg)


def _class_name(kind: str) -> str:
    words = [w for w in re.split(r"[^0-9A-Za-z]+", kind) if w]
    return "".join(w[:1].upper() + w[1:] for w in words) + "Machine"


def workflow_machine(
    registry: Registry,
    kind: str,
    table: KindStrategies | None = None,
    *,
    authorizer: Authorizer = DEFAULT_AUTHORIZER,
    roles: Iterable[str] = (),
) -> type[WorkflowMachine]:
    """Return a new state machine class that checks the workflow of `kind` with random actions.

    `table` generates the kind's data and payloads (default: `builtin_strategies()`); the
    service runs with `authorizer`, and users get the `roles` it names besides the workflow's.
    In a host's test module, for its own kind::

        from taskflow.testing.stateful import workflow_machine
        TestMyKind = workflow_machine(my_registry, "my_kind", my_table).TestCase
    """
    if kind not in registry:
        raise UnknownKind(kind, registry.names)
    namespace = {
        "registry": registry,
        "kind": kind,
        "table": table,
        "authorizer": authorizer,
        "roles": frozenset(roles),
        "__doc__": f"Drive '{kind}' tasks with random actions and check the invariants.",
    }
    return type(_class_name(kind), (WorkflowMachine,), namespace)
