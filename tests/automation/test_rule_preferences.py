"""A rule's notifications follow the host's opt-outs and digests, as the matrix's do."""

from datetime import UTC, datetime, timedelta

import attrs

import taskflow as tf
from taskflow.application.digests import deliver_digests
from taskflow.automation import Automation, Notify, On, Rule, Trigger
from taskflow.domain.matrix import InMemoryPreferences, NotificationMatrix

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ANN = tf.Actor("ann", "acme")
LEA, MAX = tf.UserRef("acme", "lea"), tf.UserRef("acme", "max")


@attrs.frozen
class Chore:
    """Data of a host's own kind."""

    area: str = "office"


CHORE = tf.TaskKind(
    "chore",
    Chore,
    tf.Workflow(
        name="chore",
        initial="todo",
        states=(tf.State("todo", waiting_on=tf.Side.RECIPIENT), tf.State("done", final=True)),
        transitions=(tf.Transition("finish", "todo", "done", tf.Side.RECIPIENT),),
    ),
)


def test_a_rule_notification_skips_an_opted_out_user_and_waits_in_a_digest():
    prefs = InMemoryPreferences()
    prefs.opt_out(LEA, "chore", "rule:tell")
    prefs.digest(MAX, timedelta(hours=1))
    registry = tf.Registry([CHORE])
    service = tf.TaskService(
        registry=registry,
        repository=tf.InMemoryRepository(registry=registry),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
        policy=NotificationMatrix([], preferences=prefs),
    )
    rules = [Rule("tell", Trigger(On.OPENED), (Notify("$number opened", to={"watchers"}),))]
    Automation(service, rules, company="acme")
    service.open(ANN, "chore", tf.NewTask("Plants", "acme", Chore(), watchers=[LEA, MAX]))
    assert [n for n in service.notifier.sent if n.event == "rule:tell"] == []
    service.clock.advance(timedelta(hours=1))
    assert deliver_digests(service) == 1
    digest = service.notifier.sent[-1]
    assert (digest.recipient, digest.event) == (MAX, "digest")
    assert "ACME-TASK-1 opened" in digest.message
