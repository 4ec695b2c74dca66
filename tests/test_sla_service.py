"""SlaService: due SLA events found through the index, fired once by the system actor, even by two schedulers."""

import threading
from datetime import UTC, datetime, timedelta

import pytest

import taskflow as tf
from taskflow.adapters.sqlite import SqliteRepository
from taskflow.application.sla import SlaService
from taskflow.automation import AddTag, Automation, On, Rule, Trigger
from taskflow.kinds.crm_task import CrmConfig, CrmTask, Regarding, crm_task_kind
from taskflow.kinds.ticket import SupportTicket, ticket_kind
from taskflow.sla import ESCALATE, SLA_NEXT_EVENT, EscalationLevel, SlaPolicies, SlaPolicy, Target

T0 = datetime(2026, 12, 7, 9, tzinfo=UTC)
H = timedelta(hours=1)
CUSTOMER = tf.Actor("cora", "acme")
AGENT = tf.Actor("ann", "desk")
LEAD = tf.UserRef("desk", "lee")
MANAGER = tf.UserRef("desk", "max")

POLICY = SlaPolicy(
    "standard",
    first_response=2 * H,
    resolution=8 * H,
    ladder=(
        EscalationLevel("assignee", 80),
        EscalationLevel("lead", 100, notify_assignees=False, notify=(LEAD,)),
        EscalationLevel("manager", 100, after=4 * H, notify_assignees=False, notify=(MANAGER,)),
    ),
    warning_events=False,  # the ladder alone; tests/test_sla_warnings.py has the warning
)
POLICIES = SlaPolicies((POLICY,), default="standard")
CRM = crm_task_kind(CrmConfig(sla=POLICIES))
TICKET = ticket_kind(POLICIES)
REGISTRY = tf.Registry([CRM, TICKET])


def _service(repository=None, clock=None):
    repository = repository if repository is not None else tf.InMemoryRepository(registry=REGISTRY)
    notifier = tf.RecordingNotifier()
    service = tf.TaskService(
        registry=REGISTRY,
        repository=repository,
        notifier=notifier,
        clock=clock if clock is not None else tf.FixedClock(T0),
        ids=tf.SequentialIds(),
    )
    return service, notifier


def _open(service, subject="Printer jams"):
    draft = tf.NewTask(
        subject, "desk", CrmTask(regarding=Regarding.account("acme")), assignees=[AGENT.ref]
    )
    return service.open(CUSTOMER, "crm_task", draft).task


def _levels(task):
    return [(e.payload.target, e.payload.level) for e in task.history if e.action == ESCALATE]


def test_due_finds_only_tasks_whose_next_event_has_come_and_apply_fires_it_as_the_system():
    service, notifier = _service()
    sla = SlaService(service, {"crm_task": POLICIES})
    task = _open(service)
    assert service.repository.get(task.id).history  # stored with its index value
    assert sla.due(T0 + 1.5 * H) == []
    assert sla.due(T0 + 1.6 * H) == [task.id]  # 80 % of the first response's 2 h
    service.clock.set(T0 + 1.6 * H)
    run = sla.apply_due()
    assert [(f.task_id, f.escalation.level, f.escalation.breach) for f in run.fired] == [
        (task.id, "assignee", False)
    ]
    stored = service.repository.get(task.id)
    entry = stored.history[-1]
    assert (entry.action, entry.actor) == (ESCALATE, tf.Actor.system("sla", "desk"))
    assert [n.recipient for n in notifier.sent if n.event == "sla_escalated"] == [AGENT.ref]
    assert sla.due(T0 + 1.6 * H) == []  # the next event was recomputed: the breach at 2 h
    assert sla.due(T0 + 2 * H) == [task.id]
    assert sla.apply_due(T0 + 1.6 * H).fired == ()  # nothing new: each level fires once


def test_breach_and_ladder_levels_fire_in_order_and_a_late_call_catches_up():
    service, notifier = _service()
    sla = SlaService(service, {"crm_task": POLICIES})
    task = _open(service)
    service.clock.set(T0 + 7 * H)  # the scheduler was down: everything up to now fires at once
    run = sla.apply_due()
    assert [f.escalation.level for f in run.fired] == [
        "assignee",  # first response
        "lead",
        "manager",  # 2 h + 4 h
        "assignee",  # resolution at 6.4 h
    ]
    assert [f.escalation.target for f in run.fired] == [Target.FIRST_RESPONSE] * 3 + [
        Target.RESOLUTION
    ]
    heard = [n.recipient for n in notifier.sent if n.event == "sla_escalated"]
    assert heard == [AGENT.ref, LEAD, MANAGER, AGENT.ref]
    assert _levels(service.repository.get(task.id))[-1] == (Target.RESOLUTION, "assignee")


def test_the_state_at_any_instant_comes_from_the_service():
    service, _ = _service()
    sla = SlaService(service, {"crm_task": POLICIES})
    task = _open(service)
    service.clock.set(T0 + 3 * H)
    sla.apply_due()
    before = sla.state(AGENT, task.id, T0 + H)
    assert before[Target.FIRST_RESPONSE].used == H
    assert not before[Target.FIRST_RESPONSE].breached
    assert before[Target.FIRST_RESPONSE].fired == ()
    after = sla.state(AGENT, task.id, T0 + 3 * H)
    assert after[Target.FIRST_RESPONSE].breached
    assert after[Target.FIRST_RESPONSE].fired == ("assignee", "lead")
    assert sla.state(AGENT, task.id, T0 - H) is None  # not opened yet
    with pytest.raises(tf.TaskNotFound):
        sla.state(tf.Actor("zed", "zeta"), task.id, T0 + H)


def test_a_resolved_task_has_no_next_event_and_is_never_found():
    service, _ = _service()
    sla = SlaService(service, {"crm_task": POLICIES})
    task = _open(service)
    service.act(AGENT, task.id, "complete")
    stored = service.repository.get(task.id)
    assert tf.index_values(CRM, stored).get(SLA_NEXT_EVENT) is None
    assert sla.due(T0 + 100 * H) == []


def test_bad_arguments_are_refused_naming_the_field():
    service, _ = _service()
    with pytest.raises(tf.InvalidPayload, match="is not registered"):
        SlaService(service, {"nope": POLICIES})
    bare = tf.Registry([tf.default_registry()["support_ticket"]])
    plain = tf.TaskService(
        registry=bare,
        repository=tf.InMemoryRepository(registry=bare),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(T0),
        ids=tf.SequentialIds(),
    )
    with pytest.raises(tf.InvalidPayload, match="does not index 'sla_next_event'"):
        SlaService(plain, {"support_ticket": POLICIES})
    sla = SlaService(service, {"crm_task": POLICIES})
    with pytest.raises(tf.InvalidPayload, match="timezone-aware"):
        sla.due(datetime(2026, 1, 1))
    with pytest.raises(tf.InvalidPayload, match="limit must be"):
        sla.apply_due(T0, limit=0)


def _race(make_services, tasks=12):
    """Two schedulers call apply_due at the same moment; every level must fire exactly once."""
    first, second = make_services()
    ids = [_open(first, f"Task {i}").id for i in range(tasks)]
    at = T0 + 7 * H
    first.clock.set(at)
    second.clock.set(at)
    runs = []
    barrier = threading.Barrier(2)

    def schedule(service):
        barrier.wait()
        runs.append(SlaService(service, {"crm_task": POLICIES}).apply_due(at))

    threads = [threading.Thread(target=schedule, args=(s,)) for s in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    fired = sorted((f.task_id, f.escalation.key) for run in runs for f in run.fired)
    assert len(fired) == len(set(fired)) == 4 * tasks
    for task_id in ids:
        levels = _levels(first.repository.get(task_id))
        assert len(levels) == len(set(levels)) == 4
    return runs


def test_two_schedulers_on_one_memory_store_fire_each_level_once():
    clock = tf.FixedClock(T0)
    repository = tf.InMemoryRepository(registry=REGISTRY)
    _race(lambda: (_service(repository, clock)[0], _service(repository, clock)[0]))


def test_two_schedulers_on_one_sqlite_file_fire_each_level_once(tmp_path):
    db = tmp_path / "sla.db"
    clocks = tf.FixedClock(T0), tf.FixedClock(T0)
    first = SqliteRepository(db, REGISTRY)
    second = SqliteRepository(db, REGISTRY)
    try:
        _race(lambda: (_service(first, clocks[0])[0], _service(second, clocks[1])[0]))
    finally:
        first.close()
        second.close()


def test_two_schedulers_on_postgresql_fire_each_level_once(pg_pool, pg_schema, pg_reset):
    from taskflow.adapters.postgres import PostgresRepository

    pg_reset()
    with (
        PostgresRepository(pg_pool, REGISTRY, schema=pg_schema) as first,
        PostgresRepository(pg_pool, REGISTRY, schema=pg_schema) as second,
    ):
        clocks = tf.FixedClock(T0), tf.FixedClock(T0)
        _race(lambda: (_service(first, clocks[0])[0], _service(second, clocks[1])[0]))


def test_a_ticket_rule_on_sla_breach_fires_once_when_the_scheduler_finds_the_breach():
    service, _ = _service()
    Automation(
        service,
        [
            Rule("warned", Trigger(On.SLA_WARNING), (AddTag("warned"),)),
            Rule("breached", Trigger(On.SLA_BREACH), (AddTag("escalated"),)),
        ],
        company="desk",
    )
    sla = SlaService(service, {"support_ticket": POLICIES})
    data = SupportTicket(name="Cora", email="cora@acme.example", description="It jams")
    ticket = service.open(CUSTOMER, "support_ticket", tf.NewTask("Jam", "desk", data)).task
    service.clock.set(T0 + 1.7 * H)
    sla.apply_due()
    assert service.repository.get(ticket.id).tags == {"warned"}
    service.clock.set(T0 + 2.5 * H)
    assert [f.escalation.level for f in sla.apply_due().fired] == ["lead"]
    stored = service.repository.get(ticket.id)
    assert stored.tags == {"warned", "escalated"}
    rule_edits = [e for e in stored.history if e.actor.user == "rule:breached"]
    assert len(rule_edits) == 1
    service.clock.set(T0 + 3 * H)
    assert sla.apply_due().fired == ()
    assert (
        len(
            [
                e
                for e in service.repository.get(ticket.id).history
                if e.actor.user == "rule:breached"
            ]
        )
        == 1
    )
