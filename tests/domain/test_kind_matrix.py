"""Matrix rows a kind declares (seed 003 on crm_task), with the host's matrix and opt-outs on top."""

from datetime import UTC, datetime
from decimal import Decimal

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import taskflow as tf
from taskflow.domain.matrix import ANY, InMemoryPreferences, MatrixEntry, NotificationMatrix
from taskflow.kinds.crm_task import COMPLETE, CRM_TASK, CrmEdit, CrmTask, Regarding, crm_matrix

T0 = datetime(2026, 12, 4, 16, tzinfo=UTC)
CUSTOMER = tf.Actor("cora", "acme")
AGENT = tf.Actor("ann", "desk")
OTHER_AGENT = tf.Actor("bob", "desk")
WATCHER = tf.UserRef("acme", "wendy")
ROBOT = tf.Actor.system("rules", "desk")


def _service(kind=CRM_TASK, policy=tf.default_policy):
    registry = tf.Registry([kind])
    return tf.TaskService(
        registry=registry,
        repository=tf.InMemoryRepository(registry=registry),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(T0),
        ids=tf.SequentialIds(),
        policy=policy,
    )


def _open(service, *, change=False, complete=False, actor=CUSTOMER):
    data = CrmTask(
        regarding=Regarding.account("acme"), notice_on_change=change, notice_on_complete=complete
    )
    draft = tf.NewTask(
        "Printer jams", "desk", data, assignees=[AGENT.ref, OTHER_AGENT.ref], watchers=[WATCHER]
    )
    return service.open(actor, "crm_task", draft).task


def _told(service):
    return [(n.recipient, n.event) for n in service.notifier.sent]


def test_the_crm_kind_declares_seed_003_rows_for_every_event_a_person_causes():
    rows = CRM_TASK.matrix
    assert rows == crm_matrix(CRM_TASK.workflow)
    named = {r.event for r in rows}
    assert {"opened", "edited", "commented", "status_changed", "task_completed"} <= named
    assert "tracker_linked" not in named  # system only: left to the kind's policy
    assert all(r.kind == "crm_task" and not r.by_system for r in rows)


STEPS = st.lists(
    st.sampled_from(["edit", "comment", "internal", "progress", "complete", "reopen"]), max_size=6
)


@settings(max_examples=30, deadline=None)
@given(change=st.booleans(), complete=st.booleans(), steps=STEPS)
def test_the_declared_rows_tell_what_the_crm_policy_alone_told(change, complete, steps):
    by_rows, by_policy = _service(), _service(attrs.evolve(CRM_TASK, matrix=()))
    for service in (by_rows, by_policy):
        task = _open(service, change=change, complete=complete)
        for step in steps:
            allowed = service.allowed_actions(AGENT, task.id)
            if step == "edit" and "edit" in allowed:
                service.edit(AGENT, task.id, CrmEdit(actual_hours=Decimal(1)))
            elif step in ("comment", "internal") and "comment" in allowed:
                seen = tf.Visibility.INTERNAL if step == "internal" else tf.Visibility.PUBLIC
                service.comment(AGENT, task.id, step, seen)
            elif step == "progress" and "set_in_progress" in allowed:
                service.act(AGENT, task.id, "set_in_progress")
            elif step == "complete" and COMPLETE in allowed:
                service.act(AGENT, task.id, COMPLETE)
            elif step == "reopen" and "reopen" in allowed:
                service.act(AGENT, task.id, "reopen")
    assert _told(by_rows) == _told(by_policy)


def test_a_host_entry_naming_the_kind_overrides_its_declared_rows():
    matrix = NotificationMatrix([MatrixEntry("crm_task", "task_completed", {"requester"})])
    service = _service(policy=matrix)
    task = _open(service, complete=True)
    service.notifier.clear()
    service.act(AGENT, task.id, COMPLETE)
    assert _told(service) == [(CUSTOMER.ref, "task_completed")]


def test_a_user_opting_out_hears_nothing_of_the_kinds_declared_rows():
    prefs = InMemoryPreferences()
    prefs.opt_out(OTHER_AGENT.ref, "crm_task")
    service = _service(policy=NotificationMatrix([], preferences=prefs))
    task = _open(service)
    service.edit(AGENT, task.id, CrmEdit(actual_hours=Decimal(2)))
    assert OTHER_AGENT.ref not in {r for r, _ in _told(service)}
    assert (AGENT.ref, "opened") in _told(service)  # the rows still tell the others


def test_a_host_wildcard_entry_does_not_override_what_a_kind_declares():
    service = _service(policy=NotificationMatrix([MatrixEntry(ANY, ANY, ())]))
    _open(service)
    assert {r for r, _ in _told(service)} == {AGENT.ref, OTHER_AGENT.ref}


def test_an_entry_closed_to_system_actors_tells_nobody_of_a_rules_action():
    service = _service()
    task = _open(service)
    service.notifier.clear()
    service.comment(ROBOT, task.id, "auto-acknowledged")
    assert _told(service) == []


def test_a_host_kind_declares_rows_that_apply_without_a_host_matrix():
    @attrs.frozen
    class Note:
        text: str = ""

    workflow = tf.Workflow(
        name="note",
        initial="open",
        states=(tf.State("open", waiting_on=tf.Side.RECIPIENT), tf.State("done", final=True)),
        transitions=(tf.Transition("finish", "open", "done", tf.Side.RECIPIENT),),
    )
    kind = tf.TaskKind("note", Note, workflow, matrix=[MatrixEntry(ANY, "opened", {"watchers"})])
    service = _service(kind)
    draft = tf.NewTask("n", "desk", Note(), assignees=[AGENT.ref], watchers=[WATCHER])
    service.open(CUSTOMER, "note", draft)
    assert _told(service) == [(WATCHER, "opened")]  # the default policy would tell the assignee


def test_rows_naming_another_kind_are_refused_with_the_kind_named():
    with pytest.raises(tf.InvalidWorkflow, match=r"task kind 'crm_task'.*'booking_task'"):
        attrs.evolve(CRM_TASK, matrix=[MatrixEntry("booking_task", ANY, ())])
