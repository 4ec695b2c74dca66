"""The ready-made workflow machine: every built-in kind keeps its invariants, and broken ones fail."""

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import attrs
import pytest
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from taskflow.adapters.memory import InMemoryRepository
from taskflow.application.service import TaskService
from taskflow.domain.authorization import RoleMatrix
from taskflow.domain.common import common_actions
from taskflow.domain.notifications import Notification
from taskflow.domain.query import TaskQuery
from taskflow.domain.registry import Registry, TaskKind
from taskflow.domain.task import DomainEvent, Task
from taskflow.domain.values import Actor, Side, not_blank
from taskflow.domain.workflow import BOTH_SIDES, OPEN_STATES, State, Transition, Workflow
from taskflow.errors import (
    ActionNotAllowed,
    InvalidWorkflow,
    TaskflowError,
    TaskNotFound,
    UnknownKind,
)
from taskflow.kinds import BUILTIN_KINDS, default_registry
from taskflow.ports import Changeset, Clock, IdFactory, Notifier, TaskRepository
from taskflow.testing.stateful import (
    Invariant,
    InvariantViolated,
    WorkflowMachine,
    workflow_machine,
)
from taskflow.testing.strategies import builtin_strategies, texts


def per_kind_examples() -> int:
    # The file keeps one budget however many kinds are built in: up to four kinds get the
    # profile's max_examples each, more kinds share four kinds' worth.
    share = settings.default.max_examples * 4 // max(4, len(BUILTIN_KINDS))
    return max(10, share)


@pytest.mark.parametrize("kind", [k.name for k in BUILTIN_KINDS])
def test_builtin_kind_keeps_every_invariant_under_random_actions(kind):
    machine = workflow_machine(default_registry(), kind)
    run_state_machine_as_test(
        machine,
        settings=settings(max_examples=per_kind_examples(), stateful_step_count=30, deadline=None),
    )


# --- a host's own kind, checked the documented way -----------------------------------------


@attrs.frozen
class Errand:
    what: str = attrs.field(validator=not_blank)
    report: str | None = None


@attrs.frozen
class Report:
    text: str = attrs.field(validator=not_blank)


def write_report(task: Task, payload: Report, actor: Actor, at: datetime) -> dict[str, Any]:
    return {"data": attrs.evolve(task.data, report=payload.text)}


def errand_workflow(*extra: Transition) -> Workflow:
    return Workflow(
        name="errand",
        initial="asked",
        states=(
            State("asked", waiting_on=Side.RECIPIENT),
            State("reported", waiting_on=Side.REQUESTER),
            State("closed", final=True),
        ),
        transitions=(
            Transition(
                "report", "asked", "reported", Side.RECIPIENT, payload=Report, effect=write_report
            ),
            Transition("close", "reported", "closed", Side.REQUESTER, roles={"boss"}),
            Transition("redo", "reported", "asked", Side.REQUESTER),
            *common_actions(public_comment_passes_ball=True),
            *extra,
        ),
    )


ERRAND_TABLE = builtin_strategies().with_types(
    {Errand: st.builds(Errand, texts(max_size=20)), Report: st.builds(Report, texts())}
)


def errand_registry(*extra: Transition) -> Registry:
    return Registry([TaskKind("errand", Errand, errand_workflow(*extra))])


TestErrandMachine = workflow_machine(errand_registry(), "errand", ERRAND_TABLE).TestCase
TestErrandMachine.settings = settings(max_examples=10, stateful_step_count=30, deadline=None)


def test_workflow_machine_makes_a_new_class_configured_for_the_kind():
    registry = default_registry()
    first = workflow_machine(registry, "document_request")
    second = workflow_machine(registry, "document_request")
    assert first is not second
    assert issubclass(first, WorkflowMachine)
    assert (first.registry, first.kind, first.table) == (registry, "document_request", None)
    assert first.__name__ == "DocumentRequestMachine"


def test_workflow_machine_refuses_an_unknown_kind_at_once():
    with pytest.raises(UnknownKind, match="no_such_kind"):
        workflow_machine(default_registry(), "no_such_kind")


def test_unconfigured_machine_says_how_to_configure_it():
    with pytest.raises(InvalidWorkflow, match=r"workflow_machine\(registry, kind\)"):
        WorkflowMachine()


# --- broken workflows, services and adapters: the machine must catch each -----------------

FIND_BUGS = settings(
    max_examples=300,
    stateful_step_count=30,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.generate,),  # stop at the first failure: its kind is all we look at
    report_multiple_bugs=False,
)


def violation_of(machine: type[WorkflowMachine]) -> Invariant:
    with pytest.raises(InvariantViolated) as caught:
        run_state_machine_as_test(machine, settings=FIND_BUGS)
    return caught.value.invariant


def errand_with(*extra: Transition) -> type[WorkflowMachine]:
    return workflow_machine(errand_registry(*extra), "errand", ERRAND_TABLE)


def stay(name: str, **kwargs: Any) -> Transition:
    return Transition(name, OPEN_STATES, None, BOTH_SIDES, **kwargs)


def stamp_a_field_tasks_lack(task: Task, payload: None, actor: Actor, at: datetime) -> Any:
    return {"stamped_at": at}


def crash_with_a_builtin_error(task: Task, payload: None, actor: Actor, at: datetime) -> None:
    msg = "a check that fails with a plain ValueError"
    raise ValueError(msg)


def refuse_as_if_in_wrong_state(task: Task, payload: None, actor: Actor, at: datetime) -> None:
    raise ActionNotAllowed(task.number, task.state, "hurry", (), reason="not in this state")


def drop_the_ball(task: Task, payload: None, actor: Actor, at: datetime) -> Any:
    return {"ball": None}


def store_a_number_as_text(task: Task, payload: None, actor: Actor, at: datetime) -> Any:
    return {"data": attrs.evolve(task.data, report=7)}


@pytest.mark.parametrize(
    ("broken", "invariant"),
    [
        (stay("stamp", effect=stamp_a_field_tasks_lack), Invariant.ALLOWED_AGREES_WITH_APPLY),
        (stay("crash", check=crash_with_a_builtin_error), Invariant.REFUSAL_IS_TASKFLOW_ERROR),
        (stay("hurry", check=refuse_as_if_in_wrong_state), Invariant.ALLOWED_AGREES_WITH_APPLY),
        (stay("park", effect=drop_the_ball), Invariant.STATE_AND_RESOLUTION),
        (stay("scribble", effect=store_a_number_as_text), Invariant.SERIALIZATION_ROUND_TRIP),
    ],
    ids=lambda value: value.name if isinstance(value, Transition) else str(value),
)
def test_machine_catches_a_broken_workflow(broken, invariant):
    assert violation_of(errand_with(broken)) is invariant


def tell_the_actor(
    workflow: Workflow, before: Task | None, after: Task, events: Sequence[DomainEvent]
) -> tuple[Notification, ...]:
    return tuple(
        Notification(e.actor.ref, after.id, after.number, e.name, "you did it") for e in events
    )


class LoudService(TaskService):
    def act(self, actor, task_id, action, payload=None, *, expected_version=None):
        try:
            return super().act(actor, task_id, action, payload, expected_version=expected_version)
        except TaskflowError:
            task = self.repository.get(task_id)
            self.notifier.notify(Notification(task.requester, task.id, task.number, "x", "no"))
            raise


class OpenDoorService(TaskService):
    def get(self, actor, task_id):
        return self.repository.get(task_id)


class BallBlindRepository(InMemoryRepository):
    def query(self, query: TaskQuery) -> list[Task]:
        return super().query(attrs.evolve(query, ball_company=None))


class RenumberingRepository(InMemoryRepository):
    # The engine refuses effects that touch identity, so only a broken adapter can renumber.
    def commit(self, changes: Changeset) -> tuple[int, ...]:
        saved = [(attrs.evolve(t, number=f"{t.number}-B"), v) for t, v in changes.saved]
        return super().commit(attrs.evolve(changes, saved=saved))


class WrongFactRepository(InMemoryRepository):
    # Stores a new task whose 'open' entry records the ball on the other side than the task's.
    def commit(self, changes: Changeset) -> tuple[int, ...]:
        added = []
        for task in changes.added:
            opened = task.history[0]
            wrong = (task.ball.other if task.ball else Side.RECIPIENT, *opened.facts[1:])
            history = (attrs.evolve(opened, facts=wrong), *task.history[1:])
            added.append(attrs.evolve(task, history=history))
        return super().commit(attrs.evolve(changes, added=added))


class VersionSkippingRepository(InMemoryRepository):
    def commit(self, changes: Changeset) -> tuple[int, ...]:
        saved = [(attrs.evolve(t, version=t.version + 1), v) for t, v in changes.saved]
        return super().commit(attrs.evolve(changes, saved=saved))


def with_hooks(
    service: Callable[..., TaskService] = TaskService,
    repository: Callable[[], TaskRepository] = InMemoryRepository,
) -> type[WorkflowMachine]:
    class Machine(errand_with()):
        def make_repository(self) -> TaskRepository:
            return repository()

        def make_service(
            self, repository: TaskRepository, notifier: Notifier, clock: Clock, ids: IdFactory
        ) -> TaskService:
            return service(
                registry=self.task_registry,
                repository=repository,
                notifier=notifier,
                clock=clock,
                ids=ids,
            )

    return Machine


def policy_telling_the_actor(**ports: Any) -> TaskService:
    return TaskService(policy=tell_the_actor, **ports)


@pytest.mark.parametrize(
    ("machine", "invariant"),
    [
        (with_hooks(service=policy_telling_the_actor), Invariant.NOTIFICATIONS),
        (with_hooks(service=LoudService), Invariant.REFUSAL_CHANGES_NOTHING),
        (with_hooks(service=OpenDoorService), Invariant.COMPANY_ISOLATION),
        (with_hooks(repository=BallBlindRepository), Invariant.INBOX_AND_TEAMBOX),
        (with_hooks(repository=VersionSkippingRepository), Invariant.HISTORY_RECORDS_EACH_ACTION),
        (with_hooks(repository=RenumberingRepository), Invariant.IDENTITY_UNCHANGED),
        (with_hooks(repository=WrongFactRepository), Invariant.REPLAY),
    ],
    ids=[
        "policy-tells-the-actor",
        "refusal-notifies",
        "outsider-gets-tasks",
        "teambox-ignores-ball",
        "save-skips-a-version",
        "save-renumbers",
        "add-records-a-wrong-fact",
    ],
)
def test_machine_catches_a_broken_service_or_adapter(machine, invariant):
    assert violation_of(machine) is invariant


def test_healthy_errand_machine_run_by_hand_finds_nothing():
    # The same hooks, left healthy, keep every invariant: the failures above are the bugs'.
    run_state_machine_as_test(
        with_hooks(), settings=settings(max_examples=10, stateful_step_count=20, deadline=None)
    )


# --- the machine under a host's authorizer ---------------------------------------------------

MATRIX = RoleMatrix(
    {"*": {"admin": {"create", "see", "modify", "resolve"}, "agent": {"create", "see", "modify"}}}
)


@pytest.mark.parametrize("kind", ["support_ticket", "corrective_action"])
def test_builtin_kind_keeps_every_invariant_under_a_role_matrix(kind):
    # Users with every role resolve, agents only modify, users with no role see nothing.
    machine = workflow_machine(default_registry(), kind, authorizer=MATRIX, roles={"agent"})
    assert machine.authorizer is MATRIX
    run_state_machine_as_test(
        machine,
        settings=settings(max_examples=per_kind_examples(), stateful_step_count=30, deadline=None),
    )


def test_system_only_actions_are_never_offered_to_users_and_always_refused():
    machine = errand_with(stay("remind", system_only=True))
    run_state_machine_as_test(
        machine, settings=settings(max_examples=10, stateful_step_count=20, deadline=None)
    )


class ReadsPastTheAuthorizer(TaskService):
    def get(self, actor, task_id):
        task = self.repository.get(task_id)
        if not task.is_party(actor.company):
            raise TaskNotFound(task_id)
        return task.visible_to(actor.company)


class Unauthorized(workflow_machine(errand_registry(), "errand", ERRAND_TABLE, roles={"agent"})):
    authorizer = MATRIX

    def make_service(self, repository, notifier, clock, ids):
        return ReadsPastTheAuthorizer(
            registry=self.task_registry,
            repository=repository,
            notifier=notifier,
            clock=clock,
            ids=ids,
            authorizer=self.authorizer,
        )


def test_machine_catches_a_read_that_skips_the_authorizer():
    assert violation_of(Unauthorized) is Invariant.COMPANY_ISOLATION
