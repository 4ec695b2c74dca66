"""The engine alone, driven at random on a small workflow that uses every kind of transition."""

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from taskflow.domain import engine
from taskflow.domain.task import NewTask, Task
from taskflow.domain.values import Actor, CompanyId, Side, TaskId, UserId, not_blank
from taskflow.domain.workflow import (
    ANY_STATE,
    BOTH_SIDES,
    OPEN_STATES,
    State,
    Transition,
    Workflow,
)
from taskflow.errors import ActionNotAllowed, InvalidPayload, PermissionDenied, TaskflowError

REQUESTER = Side.REQUESTER
RECIPIENT = Side.RECIPIENT


@attrs.frozen
class Chore:
    notes: int = 0


@attrs.frozen
class Note:
    text: str = attrs.field(validator=not_blank)


def only_assignees(task: Task, actor: Actor) -> str | None:
    if actor.ref not in task.assignees:
        return f"{actor} is not assigned to task {task.number}"
    return None


def count_note(task: Task, payload: Note, actor: Actor, at: datetime) -> dict[str, Any]:
    return {"data": attrs.evolve(task.data, notes=task.data.notes + 1)}


def pass_ball(task: Task, payload: None, actor: Actor, at: datetime) -> dict[str, Any]:
    (side,) = task.sides_of(actor.company)
    return {"ball": side.other}


CHORE = Workflow(
    name="chore",
    initial="todo",
    states=(
        State("todo", waiting_on=RECIPIENT),
        State("doing", waiting_on=RECIPIENT),
        State("review", waiting_on=REQUESTER),
        State("done", final=True),
        State("cancelled", final=True),
    ),
    transitions=(
        Transition("start", "todo", "doing", RECIPIENT, guard=only_assignees),
        Transition("submit", "doing", "review", RECIPIENT),
        Transition("approve", "review", "done", REQUESTER, roles={"approver"}),
        Transition("send_back", "review", "doing", REQUESTER, payload=Note, effect=count_note),
        Transition("reopen", "done", "doing", REQUESTER),
        Transition("cancel", ANY_STATE, "cancelled", REQUESTER),
        Transition("note", ANY_STATE, None, BOTH_SIDES, payload=Note, effect=count_note),
        Transition("hand_over", OPEN_STATES, None, BOTH_SIDES, effect=pass_ball),
    ),
)
TARGETS = {t.name: t.target for t in CHORE.transitions}
TAKES_NOTE = {"send_back", "note"}
FINAL = {"done", "cancelled"}

BOSS = Actor(UserId("boss"), CompanyId("req"), {"approver"})
CLERK = Actor(UserId("clerk"), CompanyId("req"))
WORKERS = (Actor(UserId("ann"), CompanyId("rcp")), Actor(UserId("bob"), CompanyId("rcp")))
OUTSIDER = Actor(UserId("eve"), CompanyId("other"), {"approver"})
EVERYONE = (BOSS, CLERK, *WORKERS, OUTSIDER)
START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
WAITS = st.just(timedelta(0)) | st.timedeltas(timedelta(0), timedelta(days=9))
ANYONE = st.sampled_from(EVERYONE)
ANY_ACTION = st.sampled_from([*CHORE.action_names, "open", "dance"])
ANY_PAYLOAD = st.sampled_from([None, Note("a note"), Chore()])


def expected_allowed(task: Task, actor: Actor) -> set[str]:
    """The actions the chore workflow allows, written out by hand from its definition."""
    sides = task.sides_of(actor.company)
    if not sides:
        return set()
    requester, recipient, state = REQUESTER in sides, RECIPIENT in sides, task.state
    wanted = {
        "start": state == "todo" and recipient and actor.ref in task.assignees,
        "submit": state == "doing" and recipient,
        "approve": state == "review" and requester and "approver" in actor.roles,
        "send_back": state == "review" and requester,
        "reopen": state == "done" and requester,
        "cancel": requester,
        "note": True,
        "hand_over": state not in FINAL,
    }
    return {name for name, yes in wanted.items() if yes}


def fits(action: str, payload: Any) -> bool:
    return isinstance(payload, Note) if action in TAKES_NOTE else payload is None


class EngineMachine(RuleBasedStateMachine):
    """Open chores and take random actions with the engine; check what it does after each."""

    ids = Bundle("ids")

    def __init__(self) -> None:
        super().__init__()
        self.now = START
        self.tasks: dict[TaskId, Task] = {}
        self.replayed: set[Task] = set()

    def wait(self, data: st.DataObject) -> None:
        self.now += data.draw(WAITS)

    @precondition(lambda self: len(self.tasks) < 2)
    @rule(target=ids, data=st.data())
    def open_chore(self, data: st.DataObject) -> TaskId:
        self.wait(data)
        opener = data.draw(st.sampled_from((BOSS, CLERK)))
        assignees = data.draw(st.lists(st.sampled_from([w.ref for w in WORKERS]), max_size=2))
        draft = NewTask("Sweep the yard", CompanyId("rcp"), Chore(), assignees=assignees)
        number = len(self.tasks) + 1
        task_id = TaskId(f"chore-{number}")
        opened = engine.open_task(
            CHORE, "chore", draft, opener, self.now, task_id, f"REQ-TASK-{number}"
        ).task
        assert opened.state == "todo"
        assert opened.ball is RECIPIENT
        assert opened.resolved_at is None
        assert opened.assignees == (opener.ref, *dict.fromkeys(assignees))
        assert len(opened.history) == 1
        assert opened.version == 1
        self.tasks[task_id] = opened
        return task_id

    @rule(task_id=ids, data=st.data())
    def take_allowed_action(self, task_id: TaskId, data: st.DataObject) -> None:
        task = self.tasks[task_id]
        pairs = [(a, name) for a in EVERYONE for name in engine.allowed_actions(CHORE, task, a)]
        # Stays and cancelling are always at hand; favour the other moves to get deep.
        moves = [(a, name) for a, name in pairs if TARGETS[name] not in (None, "cancelled")]
        if moves and data.draw(st.integers(0, 3)):
            pairs = moves
        if not pairs:
            return
        actor, action = data.draw(st.sampled_from(pairs))
        payload = Note("swept") if action in TAKES_NOTE else None
        self.act(task_id, actor, action, payload, data)

    @rule(task_id=ids, data=st.data())
    def take_any_action(self, task_id: TaskId, data: st.DataObject) -> None:
        actor = data.draw(ANYONE)
        action = data.draw(ANY_ACTION)
        payload = data.draw(ANY_PAYLOAD)
        self.act(task_id, actor, action, payload, data)

    def act(
        self, task_id: TaskId, actor: Actor, action: str, payload: Any, data: st.DataObject
    ) -> None:
        self.wait(data)
        before = self.tasks[task_id]
        allowed = engine.allowed_actions(CHORE, before, actor)
        assert set(allowed) == expected_allowed(before, actor)
        assert list(allowed) == [name for name in CHORE.action_names if name in allowed]
        try:
            new = engine.apply(CHORE, before, action, actor, self.now, payload).task
        except TaskflowError as exc:
            self.check_refused(before, actor, action, payload, allowed, exc)
            return
        assert action in allowed
        assert fits(action, payload)
        self.check_accepted(before, new, actor, action, payload)
        self.check_task_at(new, data)
        self.tasks[task_id] = new

    def check_refused(
        self,
        before: Task,
        actor: Actor,
        action: str,
        payload: Any,
        allowed: tuple[str, ...],
        exc: TaskflowError,
    ) -> None:
        if action in allowed:
            assert not fits(action, payload)
            assert isinstance(exc, InvalidPayload)
        elif not before.is_party(actor.company):
            # Checked first: a stranger learns nothing of the task, not even its actions.
            assert isinstance(exc, PermissionDenied)
        elif action not in CHORE.action_names:
            assert isinstance(exc, ActionNotAllowed)
        else:
            assert isinstance(exc, ActionNotAllowed | PermissionDenied)
        # Guards are pure: asking again after a refusal gives the same answer.
        assert engine.allowed_actions(CHORE, before, actor) == allowed

    def check_accepted(
        self, before: Task, new: Task, actor: Actor, action: str, payload: Any
    ) -> None:
        target = TARGETS[action] or before.state
        assert new.state == target
        assert new.version == before.version + 1
        assert new.history[:-1] == before.history
        entry = new.history[-1]
        assert (entry.action, entry.actor, entry.at) == (action, actor, self.now)
        assert (entry.from_state, entry.to_state, entry.payload) == (before.state, target, payload)
        differ = {
            a.name
            for a in attrs.fields(Task)
            if a.name not in {"history", "version"}
            and getattr(new, a.name) != getattr(before, a.name)
        }
        assert set(entry.changed) == differ
        if target in FINAL:
            expected_resolved = before.resolved_at if before.state in FINAL else self.now
        else:
            expected_resolved = None
        assert new.resolved_at == expected_resolved
        if action == "hand_over":
            (side,) = before.sides_of(actor.company)
            assert new.ball is side.other
        elif target != before.state:
            assert new.ball is CHORE.state(target).waiting_on
        else:
            assert new.ball is before.ball
        assert new.data.notes == before.data.notes + (action in TAKES_NOTE)
        unchanged = ("id", "number", "requester", "recipient", "created_at")
        assert all(getattr(new, f) == getattr(before, f) for f in unchanged)
        # Whoever answers for a company with no assignee (hands its ball on) becomes one.
        answered = (
            before.ball is not None
            and before.company_of(before.ball) == actor.company
            and new.ball != before.ball
            and not before.assignees_of(actor.company)
        )
        assert new.assignees == (*before.assignees, actor.ref) if answered else before.assignees

    def check_task_at(self, task: Task, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(task.history) - 1))
        when = task.history[index].at
        last = max(i for i, e in enumerate(task.history) if e.at <= when)
        past = engine.task_at(CHORE, task, when)
        assert past is not None
        assert past.state == task.history[last].to_state
        assert past.version == last + 1
        assert past.history == task.history[: last + 1]
        assert engine.task_at(CHORE, task, task.created_at - timedelta.resolution) is None

    @invariant()
    def every_task_is_consistent(self) -> None:
        for task in self.tasks.values():
            state = CHORE.state(task.state)
            assert (task.resolved_at is not None) == state.final
            assert (task.ball is None) == state.final
            assert task.ball is None or isinstance(task.ball, Side)
            assert task.version == len(task.history)
            if task not in self.replayed:  # replaying depends on the task's value alone
                assert engine.replay(CHORE, task) == task
                self.replayed.add(task)


TestEngineMachine = EngineMachine.TestCase
TestEngineMachine.settings = settings(stateful_step_count=30, deadline=None)
