"""Each SLA target's warning threshold: reported by the state, fired once per target and cycle.

The warning (level `WARNING`) is the policy's own, apart from the escalation ladder: it fires
with no ladder at all, ladder levels at the same percentage still fire as well, and each target
may warn at its own percentage.
"""

from datetime import UTC, datetime, timedelta

import attrs
import pytest

from taskflow.domain import engine
from taskflow.domain.common import AddComment, common_actions
from taskflow.domain.task import NewTask
from taskflow.domain.values import Actor, Side, TaskId, Visibility
from taskflow.domain.workflow import State, Transition, Workflow
from taskflow.errors import InvalidPayload, InvalidWorkflow, PermissionDenied
from taskflow.sla import (
    ALWAYS,
    ESCALATE,
    WARNING,
    Escalate,
    EscalationLevel,
    SlaPolicies,
    SlaPolicy,
    Target,
    due_escalations,
    escalation_action,
    fired_escalations,
    next_sla_event,
    sla_state,
)

H = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
T0 = datetime(2026, 6, 8, 9, tzinfo=UTC)
CUSTOMER = Actor("cora", "cust")
AGENT = Actor("ann", "desk")
ROBOT = Actor.system("sla", "desk")

# No ladder: the warnings alone. First response warns at 50 %, the others at the default 80 %.
PLAIN = SlaPolicy(
    "plain",
    ALWAYS,
    first_response=2 * H,
    next_response=4 * H,
    resolution=10 * H,
    warnings={Target.FIRST_RESPONSE: 50},
)
LADDERED = attrs.evolve(PLAIN, name="laddered", ladder=(EscalationLevel("assignee", 80),))


@attrs.frozen
class Data:
    note: str = ""


def workflow_of(policy):
    """Return the test workflow whose `sla_escalate` follows `policy`."""
    return Workflow(
        name="sla_warn_test",
        initial="open",
        states=(State("open", waiting_on=Side.RECIPIENT), State("done", final=True)),
        transitions=(
            Transition("finish", "open", "done", Side.RECIPIENT),
            escalation_action(SlaPolicies((policy,), default=policy.name)),
            *common_actions(),
        ),
    )


WORKFLOWS = {p.name: workflow_of(p) for p in (PLAIN, LADDERED)}


def opened():
    draft = NewTask("Printer", "desk", Data(), assignees=[AGENT.ref])
    return engine.open_task(
        WORKFLOWS["plain"], "sla_warn_test", draft, CUSTOMER, T0, TaskId("t1"), "CUST-TASK-1"
    ).task


def act(task, actor, action, at, payload=None, policy=PLAIN):
    return engine.apply(WORKFLOWS[policy.name], task, action, actor, at, payload).task


def fire_all(task, policy, at):
    """Fire every level due at `at`, as the scheduler does; return the task and what fired."""
    fired = []
    while due := due_escalations(task, policy, at):
        task = act(task, ROBOT, ESCALATE, at, due[0], policy)
        fired.append(due[0])
    return task, fired


def test_each_target_warns_at_its_own_threshold_and_the_state_reports_it():
    assert PLAIN.warning_threshold(Target.FIRST_RESPONSE) == 50
    assert PLAIN.warning_threshold(Target.RESOLUTION) == 80
    task = opened()
    state = sla_state(task, PLAIN, T0 + H)
    first, resolution = state[Target.FIRST_RESPONSE], state[Target.RESOLUTION]
    assert (first.warning, first.warned_at, first.breached) == (True, T0 + H, False)
    assert (resolution.warning, resolution.breached) == (False, False)
    state = sla_state(task, PLAIN, T0 + 8 * H)
    assert state[Target.RESOLUTION].warned_at == T0 + 8 * H
    assert state[Target.FIRST_RESPONSE].breached
    assert state[Target.FIRST_RESPONSE].breached_at == T0 + 2 * H


def test_the_default_threshold_is_80_percent_of_every_target():
    policy = SlaPolicy("p", resolution=10 * H)
    assert policy.warning_threshold(Target.RESOLUTION) == 80
    assert sla_state(opened(), policy, T0 + 8 * H - MINUTE)[Target.RESOLUTION].warning is False
    assert sla_state(opened(), policy, T0 + 8 * H)[Target.RESOLUTION].warning is True


def test_a_warning_fires_without_any_ladder_telling_the_assignees():
    task = opened()
    assert next_sla_event(task, PLAIN) == T0 + H  # first response's warning
    assert due_escalations(task, PLAIN, T0 + H - MINUTE) == ()
    (warning,) = due_escalations(task, PLAIN, T0 + H)
    assert warning == Escalate(Target.FIRST_RESPONSE, WARNING, 1, (AGENT.ref,), breach=False)
    assert warning.warning
    task = act(task, ROBOT, ESCALATE, T0 + H, warning)
    entry = task.history[-1]
    assert (entry.action, entry.actor, entry.payload) == (ESCALATE, ROBOT, warning)
    assert sla_state(task, PLAIN, T0 + H)[Target.FIRST_RESPONSE].fired == (WARNING,)


def test_each_warning_fires_once_per_target():
    task, fired = fire_all(opened(), PLAIN, T0 + 9 * H)
    assert [(e.target, e.level) for e in fired] == [
        (Target.FIRST_RESPONSE, WARNING),
        (Target.RESOLUTION, WARNING),
    ]
    assert due_escalations(task, PLAIN, T0 + 20 * H) == ()
    with pytest.raises(InvalidPayload, match="fired on task CUST-TASK-1 already"):
        act(task, ROBOT, ESCALATE, T0 + 20 * H, fired[0])
    assert next_sla_event(task, PLAIN) is None


def test_the_next_response_warns_once_per_cycle():
    task = act(opened(), AGENT, "comment", T0 + H / 2, AddComment("hi", Visibility.PUBLIC))
    task = act(task, CUSTOMER, "comment", T0 + H, AddComment("still", Visibility.PUBLIC))
    task, fired = fire_all(task, PLAIN, T0 + H + 4 * H * 0.8)
    assert [(e.target, e.cycle, e.level) for e in fired] == [(Target.NEXT_RESPONSE, 1, WARNING)]
    task = act(task, AGENT, "comment", T0 + 5 * H, AddComment("try", Visibility.PUBLIC))
    task = act(task, CUSTOMER, "comment", T0 + 6 * H, AddComment("no", Visibility.PUBLIC))
    task, fired = fire_all(task, PLAIN, T0 + 6 * H + 4 * H * 0.8)
    assert [(e.target, e.cycle, e.level) for e in fired] == [
        (Target.RESOLUTION, 1, WARNING),
        (Target.NEXT_RESPONSE, 2, WARNING),
    ]
    assert (Target.NEXT_RESPONSE, 1, WARNING) in fired_escalations(task)


def test_ladder_levels_still_fire_beside_the_warning():
    task, fired = fire_all(opened(), LADDERED, T0 + 2 * H)
    assert [(e.target, e.level) for e in fired] == [
        (Target.FIRST_RESPONSE, WARNING),  # at 50 %: 1 h
        (Target.FIRST_RESPONSE, "assignee"),  # the ladder's 80 %: 1 h 36 min
    ]
    assert sla_state(task, LADDERED, T0 + 2 * H)[Target.FIRST_RESPONSE].level == "assignee"


def test_warning_events_can_be_switched_off_and_the_state_still_warns():
    quiet = attrs.evolve(PLAIN, name="quiet", warning_events=False)
    task = opened()
    assert next_sla_event(task, quiet) is None
    assert due_escalations(task, quiet, T0 + 9 * H) == ()
    assert sla_state(task, quiet, T0 + 9 * H)[Target.FIRST_RESPONSE].warning
    with pytest.raises(InvalidPayload, match="has no escalation level 'warning'"):
        quiet.level(WARNING)


def test_a_resolved_task_warns_no_more():
    task = act(opened(), AGENT, "finish", T0 + H / 2)
    assert due_escalations(task, PLAIN, T0 + 20 * H) == ()
    assert next_sla_event(task, PLAIN) is None


def test_no_user_may_fire_a_warning():
    (warning,) = due_escalations(opened(), PLAIN, T0 + H)
    with pytest.raises(PermissionDenied, match="system only"):
        act(opened(), AGENT, ESCALATE, T0 + H, warning)


def test_a_ladder_level_may_not_take_the_warnings_name():
    with pytest.raises(InvalidWorkflow, match="no escalation level may be named 'warning'"):
        SlaPolicy("p", resolution=H, ladder=(EscalationLevel(WARNING, 90),))


@pytest.mark.parametrize(
    ("warnings", "message"),
    [
        ("resolution", "must map targets"),
        ({"answer": 50}, "'answer' is not a target"),
        ({Target.RESOLUTION: 0}, r"warnings\['resolution'\] must be a whole percentage"),
        ({Target.RESOLUTION: 101}, "from 1 to 100"),
        ({Target.RESOLUTION: True}, "got True"),
    ],
)
def test_bad_warning_thresholds_are_refused_naming_the_field(warnings, message):
    with pytest.raises(InvalidPayload, match=message) as caught:
        SlaPolicy("p", resolution=H, warnings=warnings)
    assert caught.value.field == "warnings"


def test_warnings_given_as_names_are_kept_as_targets():
    policy = SlaPolicy("p", resolution=H, first_response=H, warnings={"resolution": 90})
    assert policy.warnings == ((Target.RESOLUTION, 90),)
    assert attrs.evolve(policy, name="q").warnings == policy.warnings
