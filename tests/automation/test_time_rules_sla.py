"""Time rules asked through the SLA engine's due-time query (`SlaService` as the `DueTasks` port)."""

from datetime import UTC, datetime, timedelta

import taskflow as tf
from taskflow.application.sla import SlaService
from taskflow.automation import AddTag, Automation, DueTasks, On, Rule, Trigger
from taskflow.kinds.ticket import SupportTicket, ticket_kind
from taskflow.sla import SlaPolicies, SlaPolicy

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SLA = SlaPolicies((SlaPolicy("desk", first_response=timedelta(hours=4)),), default="desk")


def test_a_time_rule_fires_on_the_tasks_the_sla_engine_says_are_due_once_per_instant():
    kind = ticket_kind(SLA)
    registry = tf.Registry([kind])
    service = tf.TaskService(
        registry=registry,
        repository=tf.InMemoryRepository(registry=registry),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )
    sla = SlaService(service, {kind.name: SLA})
    assert isinstance(sla, DueTasks)
    automation = Automation(
        service, [Rule("chase", Trigger(On.TIME), (AddTag("chased"),))], company="acme", due=sla
    )
    data = SupportTicket(name="Carl", email="carl@cust.example", description="It jams")
    task = service.open(tf.Actor("carl", "cust"), kind.name, tf.NewTask("P", "acme", data)).task
    assert automation.run_due(START + timedelta(hours=1)) == ()  # nothing due yet (warning at 80 %)
    later = START + timedelta(hours=5)
    assert [(f.rule, f.task_id) for f in automation.run_due(later)] == [("chase", task.id)]
    assert automation.run_due(later) == ()  # the same instant again changes nothing
    stored = service.repository.get(task.id)
    assert "chased" in stored.tags
    assert stored.history[-1].cause.correlation_id == f"time:{later.isoformat()}"
