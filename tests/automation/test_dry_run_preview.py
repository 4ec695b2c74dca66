"""A host previews an edited rule set with a dry run before it makes the rules live."""

import pytest

import taskflow as tf
from taskflow.automation import AddTag, Automation, Condition, On, Rule, Trigger
from taskflow.kinds.ticket import SupportTicket

CARL = tf.Actor("carl", "cust")
CANDIDATE = [
    Rule(
        "tag-urgent",
        Trigger(On.COMMENTED),
        (AddTag("urgent"),),
        Condition.contains("event.payload.text", "urgent"),
    )
]


def _service():
    registry = tf.default_registry()
    return tf.TaskService(
        registry=registry,
        repository=tf.InMemoryRepository(registry=registry),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(),
        ids=tf.SequentialIds(),
    )


def test_an_automation_that_is_not_subscribed_previews_rules_and_never_runs_them():
    service = _service()
    data = SupportTicket(name="Carl", email="carl@cust.example", description="It jams")
    task = service.open(CARL, "support_ticket", tf.NewTask("Printer", "acme", data)).task
    preview = Automation(service, CANDIDATE, company="acme", subscribe=False)
    event = service.comment(CARL, task.id, "urgent, please").events[0]
    (firing,) = preview.dry_run(event)
    assert firing.rule == "tag-urgent"
    assert [(c.field, c.after) for c in firing.steps[0].changes] == [
        ("tags", frozenset({"urgent"}))
    ]
    # The comment was delivered with the preview in place: it changed nothing, then or later.
    service.comment(CARL, task.id, "urgent again")
    assert service.repository.get(task.id).tags == frozenset()
    assert preview.warnings == []


def test_subscribe_must_be_true_or_false():
    with pytest.raises(tf.InvalidPayload, match="subscribe") as caught:
        Automation(_service(), CANDIDATE, company="acme", subscribe="no")
    assert caught.value.field == "subscribe"
