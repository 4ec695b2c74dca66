"""SLA rules on the account look at the account a task is about, not at who typed it in."""

from datetime import UTC, datetime, timedelta

import taskflow as tf
from taskflow.application.sla import SlaService
from taskflow.kinds.crm_task import CrmConfig, CrmTask, Regarding, crm_task_kind
from taskflow.sla import SlaPolicies, SlaPolicy, SlaRule

T0 = datetime(2026, 12, 7, 9, tzinfo=UTC)
H = timedelta(hours=1)
POLICIES = SlaPolicies(
    (SlaPolicy("gold", resolution=8 * H), SlaPolicy("standard", resolution=40 * H)),
    rules=(SlaRule("gold", accounts={"acme"}),),
    default="standard",
)
AGENT = tf.Actor("ann", "desk")
CUSTOMER = tf.Actor("cora", "acme")


def make_sla():
    registry = tf.Registry([crm_task_kind(CrmConfig(sla=POLICIES))])
    service = tf.TaskService(
        registry=registry,
        repository=tf.InMemoryRepository(registry=registry),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(T0),
        ids=tf.SequentialIds(),
    )
    return service, SlaService(service, {"crm_task": POLICIES})


def open_task(service, actor, regarding):
    draft = tf.NewTask("Invoices do not print", "desk", CrmTask(regarding=regarding))
    return service.open(actor, "crm_task", draft).task


def test_a_task_an_agent_logs_regarding_an_account_gets_that_accounts_policy():
    service, sla = make_sla()
    task = open_task(service, AGENT, Regarding.account("acme"))
    assert task.data.account == "acme"
    assert POLICIES.subject_of(task).account == "acme"
    assert sla.state(AGENT, task.id, T0).policy == "gold"


def test_the_regarding_account_wins_over_the_requesters_company():
    service, sla = make_sla()
    task = open_task(service, CUSTOMER, Regarding.account("globex"))
    assert sla.state(AGENT, task.id, T0).policy == "standard"


def test_a_task_regarding_a_user_falls_back_to_the_requesters_company():
    service, sla = make_sla()
    task = open_task(service, CUSTOMER, Regarding.user("cora"))
    assert task.data.account is None
    assert sla.state(AGENT, task.id, T0).policy == "gold"
    logged = open_task(service, AGENT, Regarding.user("cora"))
    assert sla.state(AGENT, logged.id, T0).policy == "standard"
