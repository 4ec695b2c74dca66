"""The SLA scheduler fires each target's warning once, as the system, recorded and notified.

Independent of the escalation ladder: a policy without one still warns; automation rules on
`On.SLA_WARNING` see the warning.
"""

from datetime import UTC, datetime, timedelta

import taskflow as tf
from taskflow.application.sla import SlaService
from taskflow.automation import AddTag, On, Rule, RuleBook, Trigger
from taskflow.kinds.crm_task import CrmConfig, CrmTask, Regarding, crm_task_kind
from taskflow.kinds.ticket import SupportTicket, ticket_kind
from taskflow.sla import (
    ESCALATE,
    WARNING,
    EscalationLevel,
    SlaPolicies,
    SlaPolicy,
    Target,
    due_escalations,
)

T0 = datetime(2026, 12, 7, 9, tzinfo=UTC)
H = timedelta(hours=1)
CUSTOMER = tf.Actor("cora", "acme")
AGENT = tf.Actor("ann", "desk")
LEAD = tf.UserRef("desk", "lee")
SYSTEM = tf.Actor.system("sla", "desk")

# No ladder at all: resolution in 10 h, first response in 2 h warning at 50 %.
POLICY = SlaPolicy(
    "plain", first_response=2 * H, resolution=10 * H, warnings={Target.FIRST_RESPONSE: 50}
)
POLICIES = SlaPolicies((POLICY,), default="plain")
LADDER = SlaPolicies(
    (
        SlaPolicy(
            "laddered",
            resolution=10 * H,
            ladder=(EscalationLevel("lead", 100, notify_assignees=False, notify=(LEAD,)),),
        ),
    ),
    default="laddered",
)


def _service(kinds):
    registry = tf.Registry(kinds)
    notifier = tf.RecordingNotifier()
    service = tf.TaskService(
        registry=registry,
        repository=tf.InMemoryRepository(registry=registry),
        notifier=notifier,
        clock=tf.FixedClock(T0),
        ids=tf.SequentialIds(),
    )
    return service, notifier


def _open_crm(service):
    data = CrmTask(regarding=Regarding.account("acme"))
    draft = tf.NewTask("Printer jams", "desk", data, assignees=[AGENT.ref])
    return service.open(CUSTOMER, "crm_task", draft).task


def _fired(task):
    return [
        (e.payload.target, e.payload.level, e.payload.breach)
        for e in task.history
        if e.action == ESCALATE
    ]


def test_the_scheduler_fires_a_warning_without_a_ladder_once_as_the_system():
    service, notifier = _service([crm_task_kind(CrmConfig(sla=POLICIES))])
    sla = SlaService(service, {"crm_task": POLICIES})
    task = _open_crm(service)
    assert sla.due(T0 + H - timedelta(minutes=1)) == []
    assert sla.due(T0 + H) == [task.id]  # 50 % of the first response's 2 h
    service.clock.set(T0 + H)
    run = sla.apply_due()
    assert [(f.escalation.target, f.escalation.level) for f in run.fired] == [
        (Target.FIRST_RESPONSE, WARNING)
    ]
    stored = service.repository.get(task.id)
    assert stored.history[-1].actor == SYSTEM
    assert [n.recipient for n in notifier.sent if n.event == "sla_escalated"] == [AGENT.ref]
    assert sla.apply_due(T0 + H).fired == ()  # once
    state = sla.state(AGENT, task.id, T0 + H)
    assert state[Target.FIRST_RESPONSE].warning
    assert not state[Target.RESOLUTION].warning


def test_a_late_scheduler_fires_every_targets_warning_once_in_order():
    service, _ = _service([crm_task_kind(CrmConfig(sla=POLICIES))])
    sla = SlaService(service, {"crm_task": POLICIES})
    task = _open_crm(service)
    service.clock.set(T0 + 9 * H)
    sla.apply_due()
    sla.apply_due()
    assert _fired(service.repository.get(task.id)) == [
        (Target.FIRST_RESPONSE, WARNING, False),
        (Target.RESOLUTION, WARNING, False),  # at 8 h
    ]
    assert sla.due(T0 + 100 * H) == []  # no ladder: nothing left to fire


def test_ladder_levels_still_fire_after_the_warning_and_tell_their_own_users():
    service, notifier = _service([crm_task_kind(CrmConfig(sla=LADDER))])
    sla = SlaService(service, {"crm_task": LADDER})
    task = _open_crm(service)
    service.clock.set(T0 + 8 * H)
    assert [f.escalation.level for f in sla.apply_due().fired] == [WARNING]
    service.clock.set(T0 + 10 * H)
    assert [f.escalation.level for f in sla.apply_due().fired] == ["lead"]
    assert _fired(service.repository.get(task.id)) == [
        (Target.RESOLUTION, WARNING, False),
        (Target.RESOLUTION, "lead", True),
    ]
    heard = [n.recipient for n in notifier.sent if n.event == "sla_escalated"]
    assert heard == [AGENT.ref, LEAD]


def test_tickets_warn_too_and_automation_rules_on_sla_warning_see_it():
    service, _ = _service([ticket_kind(POLICIES)])
    sla = SlaService(service, {"support_ticket": POLICIES})
    form = SupportTicket(name="Cora", email="cora@acme.example", description="It jams")
    task = service.open(CUSTOMER, "support_ticket", tf.NewTask("Jam", "desk", form)).task
    before = service.repository.get(task.id)
    (warning,) = due_escalations(before, POLICY, T0 + H)
    outcome = tf.apply(
        service.registry["support_ticket"].workflow, before, ESCALATE, SYSTEM, T0 + H, warning
    )
    book = RuleBook(
        [
            Rule("warn", Trigger(On.SLA_WARNING), (AddTag("warned"),)),
            Rule("escalate", Trigger(On.SLA_BREACH), (AddTag("escalated"),)),
        ]
    )
    assert [r.name for r in book.matching(outcome.events[0], outcome.task)] == ["warn"]
    service.clock.set(T0 + H)
    (fired,) = sla.apply_due().fired
    assert fired.escalation == warning
    assert _fired(service.repository.get(task.id)) == [(Target.FIRST_RESPONSE, WARNING, False)]
