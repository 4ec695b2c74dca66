"""A CRM configuration and its SLA policies agree on the statuses that pause the clock."""

from datetime import UTC, datetime, timedelta

import pytest
from tests.kinds.test_crm_task import HOST_STATUSES

import taskflow as tf
from taskflow.application.sla import SlaService
from taskflow.kinds.crm_task import CrmConfig, CrmStatus, CrmTask, Regarding, crm_task_kind
from taskflow.sla import SlaPolicies, SlaPolicy, Target

T0 = datetime(2026, 12, 7, 9, tzinfo=UTC)
H = timedelta(hours=1)
AGENT = tf.Actor("ann", "desk")
CUSTOMER = tf.Actor("cora", "acme")


def test_a_default_policy_with_renamed_statuses_is_refused_naming_the_waiting_ones():
    policies = SlaPolicies((SlaPolicy("p", resolution=8 * H),), default="p")
    with pytest.raises(tf.InvalidWorkflow, match="pauses in \\['waiting_on_customer'\\]") as caught:
        CrmConfig(HOST_STATUSES, sla=policies)
    assert "on_hold_customer" in str(caught.value)
    assert "pausing=frozenset()" in str(caught.value)


def test_no_waiting_status_needs_an_explicit_never_pausing_policy():
    statuses = [s for s in HOST_STATUSES if s.name != "on_hold_customer"]
    with pytest.raises(tf.InvalidWorkflow, match="no status waits on the customer"):
        CrmConfig(statuses, sla=SlaPolicies((SlaPolicy("p", resolution=8 * H),), default="p"))
    never = SlaPolicies((SlaPolicy("p", resolution=8 * H, pausing=()),), default="p")
    assert CrmConfig(statuses, sla=never).sla is never


def test_a_policy_naming_the_hosts_waiting_status_pauses_in_it():
    policies = SlaPolicies(
        (SlaPolicy("p", resolution=8 * H, pausing={"on_hold_customer", "waiting_on_customer"}),),
        default="p",
    )
    registry = tf.Registry([crm_task_kind(CrmConfig(HOST_STATUSES, sla=policies))])
    clock = tf.FixedClock(T0)
    service = tf.TaskService(
        registry=registry,
        repository=tf.InMemoryRepository(registry=registry),
        notifier=tf.RecordingNotifier(),
        clock=clock,
        ids=tf.SequentialIds(),
    )
    draft = tf.NewTask("Printer jams", "desk", CrmTask(regarding=Regarding.account("acme")))
    task = service.open(CUSTOMER, "crm_task", draft).task
    service.act(AGENT, task.id, "set_on_hold_customer")
    clock.advance(2 * H)
    state = SlaService(service, {"crm_task": policies}).state(AGENT, task.id, clock.now())
    assert state.paused
    assert state[Target.RESOLUTION].used == timedelta(0)


def test_a_configuration_without_sla_needs_no_waiting_status():
    assert CrmConfig((*HOST_STATUSES[:3], CrmStatus("done", "complete"))).sla is None
