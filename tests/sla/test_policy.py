"""SLA policies: targets, pause, warning, breach and the escalation ladder, from recorded history."""

from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskflow.domain import engine
from taskflow.domain.common import AddComment, common_actions
from taskflow.domain.task import NewTask
from taskflow.domain.values import Actor, Priority, Side, TaskId, UserRef, Visibility
from taskflow.domain.workflow import State, Transition, Workflow
from taskflow.errors import InvalidPayload, InvalidWorkflow, PermissionDenied
from taskflow.sla import (
    ALWAYS,
    ESCALATE,
    BusinessCalendar,
    Escalate,
    EscalationLevel,
    SlaPolicies,
    SlaPolicy,
    SlaRule,
    SlaSubject,
    Target,
    due_escalations,
    escalation_action,
    fired_escalations,
    next_sla_event,
    sla_state,
    state_of,
)

H = timedelta(hours=1)
T0 = datetime(2026, 6, 8, 9, tzinfo=UTC)  # a Monday, 09:00 UTC
CUSTOMER = Actor("cora", "cust")
AGENT = Actor("ann", "desk")
ROBOT = Actor.system("sla", "desk")
LEAD = UserRef("desk", "lead")


@attrs.frozen
class Data:
    note: str = ""


LADDER = (
    EscalationLevel("warn", 80),
    EscalationLevel("breach", 100, notify_assignees=False, notify=[LEAD]),
    EscalationLevel(
        "manager", 100, after=4 * H, notify_assignees=False, notify=[UserRef("desk", "max")]
    ),
)
POLICY = SlaPolicy(
    "gold",
    ALWAYS,
    first_response=2 * H,
    next_response=4 * H,
    resolution=10 * H,
    ladder=LADDER,
    warning_events=False,  # the ladder alone; tests/sla/test_warnings.py has the warning
)
POLICIES = SlaPolicies((POLICY,), default="gold")

WORKFLOW = Workflow(
    name="sla_test",
    initial="open",
    states=(
        State("open", waiting_on=Side.RECIPIENT),
        State("waiting_on_customer", waiting_on=Side.REQUESTER),
        State("done", final=True),
    ),
    transitions=(
        Transition("wait", "open", "waiting_on_customer", Side.RECIPIENT),
        Transition(
            "resume",
            "waiting_on_customer",
            "open",
            {Side.REQUESTER, Side.RECIPIENT},
        ),
        Transition("finish", {"open", "waiting_on_customer"}, "done", Side.RECIPIENT),
        Transition("reopen", "done", "open", Side.REQUESTER),
        escalation_action(POLICIES),
        *common_actions(),
    ),
)


def opened(at=T0):
    draft = NewTask("Printer", "desk", Data(), assignees=[AGENT.ref])
    return engine.open_task(
        WORKFLOW, "sla_test", draft, CUSTOMER, at, TaskId("t1"), "CUST-TASK-1"
    ).task


def act(task, actor, action, at, payload=None):
    return engine.apply(WORKFLOW, task, action, actor, at, payload).task


def public(text="hello"):
    return AddComment(text, Visibility.PUBLIC)


def test_a_fresh_task_runs_first_response_and_resolution_but_no_next_response():
    state = sla_state(opened(), POLICY, T0 + H)
    first, nxt, resolution = state.targets
    assert (first.used, first.running, first.due) == (H, True, T0 + 2 * H)
    assert (nxt.cycle, nxt.running, nxt.due) == (0, False, None)
    assert (resolution.used, resolution.remaining) == (H, 9 * H)
    assert not first.warning
    assert not first.breached
    assert first.level is None


def test_a_public_answer_by_the_business_meets_the_first_response():
    task = act(opened(), AGENT, "comment", T0 + H, public())
    first = sla_state(task, POLICY, T0 + 5 * H)[Target.FIRST_RESPONSE]
    assert first.met_at == T0 + H
    assert not first.running
    assert first.used == H
    assert first.due is None


def test_an_internal_note_or_a_customer_comment_is_no_response():
    task = act(opened(), AGENT, "comment", T0 + H / 2, AddComment("psst", Visibility.INTERNAL))
    task = act(task, CUSTOMER, "comment", T0 + H, public())
    first = sla_state(task, POLICY, T0 + 3 * H)[Target.FIRST_RESPONSE]
    assert first.met_at is None
    assert first.breached
    assert first.breached_at == T0 + 2 * H


def test_a_customer_reply_starts_the_next_response_clock_and_the_answer_stops_it():
    task = act(opened(), AGENT, "comment", T0 + H, public())
    task = act(task, CUSTOMER, "comment", T0 + 2 * H, public("still broken"))
    nxt = sla_state(task, POLICY, T0 + 3 * H)[Target.NEXT_RESPONSE]
    assert (nxt.cycle, nxt.started_at, nxt.used, nxt.due) == (1, T0 + 2 * H, H, T0 + 6 * H)
    task = act(task, AGENT, "comment", T0 + 4 * H, public("try this"))
    task = act(task, CUSTOMER, "comment", T0 + 5 * H, public("no"))
    nxt = sla_state(task, POLICY, T0 + 5 * H)[Target.NEXT_RESPONSE]
    assert (nxt.cycle, nxt.used, nxt.met_at) == (2, timedelta(0), None)


def test_waiting_on_the_customer_pauses_every_clock():
    task = act(opened(), AGENT, "wait", T0 + H)
    state = sla_state(task, POLICY, T0 + 50 * H)
    assert state.paused
    assert all(t.used == H and t.paused and t.due is None for t in state.targets if t.cycle)
    task = act(task, CUSTOMER, "resume", T0 + 50 * H)
    state = sla_state(task, POLICY, T0 + 51 * H)
    assert not state.paused
    assert state[Target.RESOLUTION].used == 2 * H
    assert state[Target.RESOLUTION].due == T0 + 59 * H


def test_resolving_stops_the_clocks_and_reopening_runs_the_resolution_on():
    task = act(opened(), AGENT, "finish", T0 + 3 * H)
    state = sla_state(task, POLICY, T0 + 20 * H)
    assert state[Target.RESOLUTION].met_at == T0 + 3 * H
    assert state[Target.FIRST_RESPONSE].met_at == T0 + 3 * H  # resolution answers it too
    task = act(task, CUSTOMER, "reopen", T0 + 20 * H)
    resolution = sla_state(task, POLICY, T0 + 21 * H)[Target.RESOLUTION]
    assert (resolution.met_at, resolution.used, resolution.running) == (None, 4 * H, True)


def test_warning_breach_and_ladder_levels_are_reached_at_their_thresholds():
    task = opened()
    first = sla_state(task, POLICY, T0 + 2 * H * 0.8)[Target.FIRST_RESPONSE]
    assert first.warning
    assert first.warned_at == T0 + 96 * timedelta(minutes=1)
    assert first.level == "warn"
    first = sla_state(task, POLICY, T0 + 2 * H)[Target.FIRST_RESPONSE]
    assert first.breached
    assert first.level == "breach"
    assert first.due == T0 + 2 * H
    first = sla_state(task, POLICY, T0 + 6 * H)[Target.FIRST_RESPONSE]
    assert first.level == "manager"
    assert first.remaining == -4 * H


def test_due_escalations_name_who_hears_and_each_fires_once():
    task = opened()
    assert due_escalations(task, POLICY, T0 + H) == ()
    due = due_escalations(task, POLICY, T0 + 2 * H)
    assert [(e.target, e.level, e.notify) for e in due] == [
        (Target.FIRST_RESPONSE, "warn", (AGENT.ref,)),
        (Target.FIRST_RESPONSE, "breach", (LEAD,)),
    ]
    fired = act(task, ROBOT, ESCALATE, T0 + 2 * H, due[0])
    assert fired.history[-1].actor == ROBOT
    assert fired_escalations(fired) == {(Target.FIRST_RESPONSE, 1, "warn")}
    assert [e.level for e in due_escalations(fired, POLICY, T0 + 2 * H)] == ["breach"]
    assert sla_state(fired, POLICY, T0 + 2 * H)[Target.FIRST_RESPONSE].fired == ("warn",)
    with pytest.raises(InvalidPayload, match="fired on task CUST-TASK-1 already"):
        act(fired, ROBOT, ESCALATE, T0 + 2 * H, due[0])


def test_a_level_not_reached_yet_or_unknown_is_refused_and_users_may_not_escalate():
    task = opened()
    with pytest.raises(InvalidPayload, match="is not reached on task CUST-TASK-1"):
        act(task, ROBOT, ESCALATE, T0 + H, Escalate(Target.FIRST_RESPONSE, "breach"))
    with pytest.raises(InvalidPayload, match="has no escalation level 'nope'"):
        act(task, ROBOT, ESCALATE, T0 + 3 * H, Escalate(Target.FIRST_RESPONSE, "nope"))
    with pytest.raises(PermissionDenied, match="system only"):
        act(task, AGENT, ESCALATE, T0 + 3 * H, Escalate(Target.FIRST_RESPONSE, "warn"))
    assert ESCALATE not in engine.allowed_actions(WORKFLOW, task, AGENT)


def test_next_event_is_the_next_unfired_level_and_none_while_paused_or_resolved():
    task = opened()
    assert next_sla_event(task, POLICY) == T0 + 2 * H * 0.8
    assert next_sla_event(task, None) is None
    task = act(task, AGENT, "comment", T0 + H, public())  # first response met
    assert next_sla_event(task, POLICY) == T0 + 8 * H  # resolution's warning at 80 % of 10 h
    paused = act(task, AGENT, "wait", T0 + 2 * H)
    assert next_sla_event(paused, POLICY) is None
    late = act(task, AGENT, "comment", T0 + 9 * H, AddComment("note", Visibility.INTERNAL))
    assert next_sla_event(late, POLICY) == T0 + 8 * H  # reached and not fired: due since then
    assert next_sla_event(act(task, AGENT, "finish", T0 + 3 * H), POLICY) is None


def test_a_past_state_is_recomputed_as_it_stood_then():
    task = act(opened(), AGENT, "wait", T0 + H)
    task = act(task, CUSTOMER, "resume", T0 + 30 * H)
    then = sla_state(task, POLICY, T0 + 20 * H)
    assert then.paused
    assert then[Target.RESOLUTION].used == H
    later = sla_state(task, POLICY, T0 + 31 * H)
    assert later[Target.RESOLUTION].used == 2 * H


def test_business_hours_apply_to_every_target():
    calendar = BusinessCalendar.weekdays("UTC")
    policy = SlaPolicy("office", calendar, resolution=8 * H)
    friday = datetime(2026, 6, 12, 16, tzinfo=UTC)
    state = sla_state(opened(friday), policy, friday + 3 * 24 * H)
    assert state[Target.RESOLUTION].used == 8 * H
    assert state[Target.RESOLUTION].breached_at == datetime(2026, 6, 15, 16, tzinfo=UTC)


def test_rules_choose_a_policy_by_account_kind_priority_and_category():
    silver = SlaPolicy("silver", resolution=20 * H)
    policies = SlaPolicies(
        (POLICY, silver),
        (
            SlaRule("gold", accounts={"acme"}, priorities={"high"}),
            SlaRule("silver", kinds="crm_task", categories={"Bug Fix"}),
        ),
    )
    assert policies.select(SlaSubject("acme", "x", Priority.HIGH, "Email")) is POLICY
    assert policies.select(SlaSubject("acme", "crm_task", Priority.LOW, "Bug Fix")) is silver
    assert policies.select(SlaSubject("acme", "crm_task", Priority.LOW, "Email")) is None
    assert policies.for_task(opened()) is None
    assert state_of(policies, opened(), T0) is None
    assert state_of(POLICIES, opened(), T0 + H) == sla_state(opened(), POLICY, T0 + H)


@pytest.mark.parametrize(
    ("build", "error", "words"),
    [
        (lambda: SlaPolicy("none"), InvalidWorkflow, "has no target"),
        (
            lambda: SlaPolicy("x", resolution=timedelta(0)),
            InvalidPayload,
            "resolution must be a timedelta > 0",
        ),
        (
            lambda: SlaPolicy("x", resolution=H, warning_percent=0),
            InvalidPayload,
            "warning_percent",
        ),
        (
            lambda: SlaPolicy(
                "x", resolution=H, ladder=[EscalationLevel("a"), EscalationLevel("a")]
            ),
            InvalidWorkflow,
            "named twice",
        ),
        (lambda: EscalationLevel("a", after=-H), InvalidPayload, "after must be a timedelta >= 0"),
        (
            lambda: SlaPolicies((POLICY,), (SlaRule("nope"),)),
            InvalidWorkflow,
            "unknown policy 'nope'",
        ),
        (lambda: SlaPolicies((POLICY, POLICY)), InvalidWorkflow, "declared twice"),
        (lambda: SlaPolicies((POLICY,), default="nope"), InvalidWorkflow, "default policy 'nope'"),
        (lambda: POLICIES.policy("nope"), InvalidPayload, "no SLA policy 'nope'"),
        (
            lambda: sla_state(opened(), POLICY, datetime(2026, 1, 1)),
            InvalidPayload,
            "at must be a timezone-aware",
        ),
        (lambda: sla_state(opened(), POLICY, T0)["nope"], InvalidPayload, "has no target 'nope'"),
    ],
)
def test_bad_policies_and_questions_are_refused_with_the_reason(build, error, words):
    with pytest.raises(error, match=words):
        build()


STEPS = st.lists(
    st.tuples(
        st.sampled_from(["wait", "resume", "answer", "reply", "finish", "reopen"]),
        st.integers(1, 300),
    ),
    max_size=8,
)


def _drive(steps):
    task, at = opened(), T0
    actors = {
        "wait": AGENT,
        "resume": CUSTOMER,
        "finish": AGENT,
        "reopen": CUSTOMER,
        "answer": AGENT,
        "reply": CUSTOMER,
    }
    for action, minutes in steps:
        at += timedelta(minutes=minutes)
        name, payload = ("comment", public()) if action in ("answer", "reply") else (action, None)
        if name in engine.allowed_actions(WORKFLOW, task, actors[action]):
            task = act(task, actors[action], name, at, payload)
    return task, at


@given(STEPS, st.integers(0, 600))
def test_used_time_never_exceeds_elapsed_time_and_grows_with_time(steps, minutes):
    task, at = _drive(steps)
    later = at + timedelta(minutes=minutes)
    now, then = sla_state(task, POLICY, at), sla_state(task, POLICY, later)
    for a, b in zip(now.targets, then.targets, strict=True):
        assert timedelta(0) <= a.used <= b.used <= later - T0
        assert b.used - a.used == (later - at if a.running else timedelta(0))


@given(STEPS)
def test_the_state_at_each_entry_agrees_with_replaying_the_task_up_to_it(steps):
    task, _ = _drive(steps)
    for entry in task.history:
        past = engine.task_at(WORKFLOW, task, entry.at)
        assert sla_state(past, POLICY, entry.at) == sla_state(task, POLICY, entry.at)
