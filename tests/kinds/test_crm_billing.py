"""Accounting marks a CRM task billed once the work is done (seed 003: "Billed ... for accounting")."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

import taskflow as tf
from taskflow.kinds.crm_task import BILL, COMPLETE, Bill, CrmTask, Regarding

T0 = datetime(2026, 12, 4, 16, tzinfo=UTC)
CUSTOMER = tf.Actor("cora", "acme")
AGENT = tf.Actor("ann", "desk")
ACCOUNTING = tf.Actor("abe", "desk")


def make_service():
    registry = tf.default_registry()
    notifier = tf.RecordingNotifier()
    service = tf.TaskService(
        registry=registry,
        repository=tf.InMemoryRepository(registry=registry),
        notifier=notifier,
        clock=tf.FixedClock(T0),
        ids=tf.SequentialIds(),
    )
    return service, notifier


def open_task(service, *, billable=True):
    data = CrmTask(regarding=Regarding.account("acme"), billable=billable)
    draft = tf.NewTask("Printer jams", "desk", data, assignees=[AGENT.ref])
    return service.open(CUSTOMER, "crm_task", draft).task


def test_a_complete_billable_task_is_marked_billed_with_its_actual_hours():
    service, notifier = make_service()
    task = open_task(service)
    service.act(AGENT, task.id, COMPLETE)
    assert BILL in service.allowed_actions(ACCOUNTING, task.id)
    notifier.clear()
    billed = service.act(ACCOUNTING, task.id, BILL, Bill(actual_hours=Decimal("2.5"))).task
    assert billed.state == "complete"
    assert billed.data.billed
    assert billed.data.actual_hours == Decimal("2.5")
    assert billed.data.percent_complete == 100
    assert billed.history[-1].action == BILL
    assert AGENT.ref in {n.recipient for n in notifier.sent}  # every save tells the assignees
    undone = service.act(ACCOUNTING, task.id, BILL, Bill(billed=False)).task
    assert not undone.data.billed
    assert undone.data.actual_hours == Decimal("2.5")


def test_billing_a_task_that_is_not_billable_is_refused_naming_the_field():
    service, _ = make_service()
    task = open_task(service, billable=False)
    service.act(AGENT, task.id, COMPLETE)
    with pytest.raises(
        tf.InvalidPayload, match="billed can be set only on a billable task"
    ) as caught:
        service.act(ACCOUNTING, task.id, BILL, Bill())
    assert caught.value.field == "billed"
    assert not service.get(AGENT, task.id).data.billed


def test_the_customer_may_not_mark_a_task_billed():
    service, _ = make_service()
    task = open_task(service)
    assert BILL not in service.allowed_actions(CUSTOMER, task.id)
    with pytest.raises(tf.TaskflowError):
        service.act(CUSTOMER, task.id, BILL, Bill())


def test_a_bill_payload_checks_its_values():
    with pytest.raises(tf.InvalidPayload, match="actual_hours must be a Decimal"):
        Bill(actual_hours=2.5)
    with pytest.raises(tf.InvalidPayload, match="billed must be True or False"):
        Bill(billed="yes")
