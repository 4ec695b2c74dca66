"""A stateful test of SLA-governed CRM tasks (host statuses) under a scheduler: each level fires once, in time."""

from datetime import UTC, datetime, timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from tests.kinds.test_crm_task import HOST_STATUSES

import taskflow as tf
from taskflow.application.sla import SlaService
from taskflow.kinds.crm_task import CrmConfig, CrmTask, Regarding, crm_task_kind
from taskflow.sla import (
    ESCALATE,
    BusinessCalendar,
    EscalationLevel,
    SlaPolicies,
    SlaPolicy,
    due_escalations,
    fired_escalations,
    sla_state,
)

T0 = datetime(2026, 12, 7, 8, tzinfo=UTC)  # Monday 09:00 in Berlin
H = timedelta(hours=1)
POLICY = SlaPolicy(
    "p",
    calendar=BusinessCalendar.weekdays("Europe/Berlin"),
    first_response=2 * H,
    next_response=3 * H,
    resolution=8 * H,
    pausing={"on_hold_customer"},
    ladder=(
        EscalationLevel("warn", 75),
        EscalationLevel("breach", 100),
        EscalationLevel("later", 100, after=2 * H),
    ),
)
POLICIES = SlaPolicies((POLICY,), default="p")
KIND = crm_task_kind(CrmConfig(HOST_STATUSES, sla=POLICIES))
AGENT = tf.Actor("ann", "desk")
CUSTOMER = tf.Actor("cora", "acme")
OPEN_STATUSES = ("triage", "working", "on_hold_customer")


class SlaScheduling(RuleBasedStateMachine):
    """Open tasks, comment, move statuses, let time pass and run the scheduler."""

    def __init__(self) -> None:
        super().__init__()
        registry = tf.Registry([KIND])
        self.clock = tf.FixedClock(T0)
        self.service = tf.TaskService(
            registry=registry,
            repository=tf.InMemoryRepository(registry=registry),
            notifier=tf.RecordingNotifier(),
            clock=self.clock,
            ids=tf.SequentialIds(),
        )
        self.sla = SlaService(self.service, {"crm_task": POLICIES})
        self.ids: list[tf.TaskId] = []
        self.last_run: datetime | None = None

    def _task(self, index: int) -> tf.Task:
        return self.service.repository.get(self.ids[index % len(self.ids)])

    @rule()
    def open_task(self) -> None:
        draft = tf.NewTask("t", "desk", CrmTask(regarding=Regarding.account("acme")))
        self.ids.append(self.service.open(CUSTOMER, "crm_task", draft).task.id)

    @precondition(lambda self: self.ids)
    @rule(index=st.integers(0, 50), business=st.booleans())
    def comment(self, index: int, business: bool) -> None:
        task = self._task(index)
        if task.is_open:
            self.service.comment(AGENT if business else CUSTOMER, task.id, "note")

    @precondition(lambda self: self.ids)
    @rule(index=st.integers(0, 50), status=st.sampled_from((*OPEN_STATUSES, "complete")))
    def move(self, index: int, status: str) -> None:
        task = self._task(index)
        action = "complete" if status == "complete" else f"set_{status}"
        if action in self.service.allowed_actions(AGENT, task.id):
            self.service.act(AGENT, task.id, action)

    @rule(minutes=st.integers(1, 60 * 12))
    def wait(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))

    @rule()
    def schedule(self) -> None:
        self.sla.apply_due()
        self.last_run = self.clock.now()

    @invariant()
    def each_level_fires_once_and_only_when_reached(self) -> None:
        for task_id in self.ids:
            task = self.service.repository.get(task_id)
            entries = [e for e in task.history if e.action == ESCALATE]
            keys = [e.payload.key for e in entries]
            assert len(keys) == len(set(keys)) == len(fired_escalations(task))
            for entry in entries:
                assert entry.actor == tf.Actor.system("sla", "desk")
                before = tf.task_at(KIND.workflow, task, entry.at - timedelta(microseconds=1))
                state = sla_state(before, POLICY, entry.at)[entry.payload.target]
                assert entry.payload.level not in state.fired

    @invariant()
    def after_a_run_nothing_reached_is_left_unfired(self) -> None:
        if self.last_run is None or self.last_run != self.clock.now():
            return
        for task_id in self.ids:
            task = self.service.repository.get(task_id)
            assert due_escalations(task, POLICY, self.last_run) == ()
            assert task_id not in self.sla.due(self.last_run)


SlaScheduling.TestCase.settings = settings(max_examples=25, stateful_step_count=25, deadline=None)
TestSlaScheduling = SlaScheduling.TestCase
