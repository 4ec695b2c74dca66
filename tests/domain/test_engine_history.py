"""History as recorded facts: what entries hold, replay and task_at without rules, changes."""

from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given

from taskflow import (
    OPEN_STATES,
    ActionNotAllowed,
    Actor,
    AddComment,
    Assign,
    Change,
    InvalidPayload,
    NewTask,
    PermissionDenied,
    Side,
    State,
    TaskId,
    Transition,
    Visibility,
    Workflow,
    apply,
    changes,
    common_actions,
    default_registry,
    open_task,
    replay,
    task_at,
)
from taskflow.domain.task import OPEN_FACTS
from taskflow.testing.strategies import tasks

R, Q = Side.REQUESTER, Side.RECIPIENT
T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)
REGISTRY = default_registry()


@attrs.frozen
class Note:
    text: str


@attrs.frozen
class Data:
    count: int = 0


def _count(task, payload, actor, at):
    return {"data": Data(task.data.count + 1)}


def _reverse_comments(task, payload, actor, at):
    return {"comments": task.comments[::-1]}


def _workflow(*, approve_roles=frozenset({"manager"}), guard=None, check=None, version=1):
    return Workflow(
        name="demo",
        initial="todo",
        version=version,
        states=(
            State("todo", waiting_on=Q),
            State("review", waiting_on=R),
            State("done", final=True),
        ),
        transitions=(
            Transition("submit", "todo", "review", Q, payload=Note, guard=guard, check=check),
            Transition("approve", "review", "done", R, roles=approve_roles),
            Transition("reopen", "done", "todo", R),
            Transition("count", OPEN_STATES, None, Q, effect=_count),
            Transition("tidy", OPEN_STATES, None, Q, effect=_reverse_comments),
            *common_actions(),
        ),
    )


WORKFLOW = _workflow()
ALICE = Actor("alice", "acme", {"manager"})
SAM = Actor("sam", "supco")
SUE = Actor("sue", "supco")


def _opened():
    draft = NewTask("Do it", "supco", Data(), assignees=[SAM.ref])
    return open_task(WORKFLOW, "demo", draft, ALICE, T0, TaskId("t1"), "ACME-TASK-1").task


def _lifecycle():
    """Every version the task went through, the first (opened) to the last (done)."""
    steps = [
        ("comment", SAM, AddComment("looking")),
        ("count", SAM, None),
        ("submit", SAM, Note("v1")),
        ("approve", ALICE, None),
        ("reopen", ALICE, None),
        ("comment", ALICE, AddComment("again")),
        ("submit", SAM, Note("v2")),
        ("approve", ALICE, None),
    ]
    versions = [_opened()]
    for hours, (action, actor, payload) in enumerate(steps, start=1):
        at = T0 + timedelta(hours=hours)
        versions.append(apply(WORKFLOW, versions[-1], action, actor, at, payload).task)
    return versions


# --- what an entry records -----------------------------------------------------------------


def test_open_entry_keeps_the_draft_and_records_ball_and_resolution():
    task = _opened()
    (entry,) = task.history
    assert entry.fact_fields == OPEN_FACTS == ("ball", "resolved_at")
    assert entry.facts == (Q, None)
    assert entry.payload.subject == "Do it"
    assert (entry.changed, entry.appended) == ((), ())
    assert task.workflow_version == 1


def test_task_opened_in_a_final_state_records_its_resolution_time():
    wf = Workflow("instant", (State("done", final=True),), (), initial="done")
    task = open_task(wf, "demo", NewTask("s", "supco", Data()), ALICE, T0, TaskId("t"), "N").task
    assert task.history[0].facts == (None, T0)
    assert (task.ball, task.resolved_at) == (None, T0)
    assert replay(None, task) == task


def test_each_entry_records_the_new_value_of_every_field_it_changed():
    versions = _lifecycle()
    counted, submitted, approved = (v.history[-1] for v in versions[2:5])
    assert dict(zip(counted.changed, counted.facts, strict=True)) == {"data": Data(1)}
    assert dict(zip(submitted.changed, submitted.facts, strict=True)) == {
        "state": "review",
        "ball": R,
    }
    assert dict(zip(approved.changed, approved.facts, strict=True)) == {
        "state": "done",
        "resolved_at": T0 + timedelta(hours=4),
        "ball": None,
    }
    assert all(e.fact_fields == e.changed for e in versions[-1].history[1:])


def test_a_tuple_that_grows_records_only_the_appended_items():
    task = _opened()
    for n in range(30):
        task = apply(WORKFLOW, task, "comment", SAM, T0, AddComment(f"note {n}")).task
    entries = task.history[1:]
    assert all(e.appended == ("comments",) for e in entries)
    assert [len(e.facts[0]) for e in entries] == [1] * 30
    assert entries[-1].facts[0] == (task.comments[-1],)
    assert replay(None, task) == task


def test_a_tuple_replaced_by_another_records_the_whole_new_value():
    task = apply(WORKFLOW, _opened(), "assign", SAM, T0, Assign([SUE.ref])).task
    entry = task.history[-1]
    assert (entry.changed, entry.appended) == (("assignees",), ())
    assert entry.facts == ((ALICE.ref, SUE.ref),)
    grown = apply(WORKFLOW, task, "assign", SAM, T0, Assign([SUE.ref, SAM.ref])).task
    assert grown.history[-1].appended == ("assignees",)
    assert grown.history[-1].facts == ((SAM.ref,),)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        (
            {"facts": ()},
            r"facts of 'submit' must be a tuple of one value for each of \('state', 'ball'\), got 0 values",
        ),
        ({"facts": ["review", R]}, "got list"),
        (
            {"appended": ("state",)},
            r"may name only recorded tuple fields \(\[\]\), got \('state',\)",
        ),
        ({"action": "open", "facts": (Q,)}, r"each of \('ball', 'resolved_at'\), got 1 value$"),
    ],
)
def test_entry_whose_facts_do_not_match_its_fields_is_refused(fields, words):
    entry = _lifecycle()[3].history[-1]
    with pytest.raises(InvalidPayload, match=words):
        attrs.evolve(entry, **fields)


# --- replay and task_at apply facts, no rules ------------------------------------------------


def test_replay_rebuilds_every_version_without_a_workflow():
    versions = _lifecycle()
    task = versions[-1]
    assert replay(None, task) == task
    assert replay(WORKFLOW, task) == task
    for version in versions:
        assert replay(None, version) == version


def test_task_at_each_entry_time_gives_the_version_after_that_entry():
    versions = _lifecycle()
    task = versions[-1]
    for entry, version in zip(task.history, versions, strict=True):
        assert task_at(None, task, entry.at) == version
    assert task_at(None, task, T0 - timedelta(seconds=1)) is None


def _submitted():
    return apply(WORKFLOW, _opened(), "submit", SAM, T0, Note("v1")).task


def _no_more_notes(task, actor):
    return "submissions are closed"


def _notes_must_be_long(task, payload, actor, at):
    msg = "a note needs at least 10 characters"
    raise InvalidPayload(msg, field="text")


def _refuses_approve(workflow):
    with pytest.raises(PermissionDenied, match="needs one of the roles"):
        apply(workflow, _submitted(), "approve", ALICE, T0)


def _refuses_submit(workflow):
    with pytest.raises((ActionNotAllowed, InvalidPayload), match=r"closed|10 characters"):
        apply(workflow, _opened(), "submit", SAM, T0, Note("v1"))


@pytest.mark.parametrize(
    ("changed", "refuses"),
    [
        (_workflow(approve_roles=frozenset({"director"})), _refuses_approve),
        (_workflow(guard=_no_more_notes), _refuses_submit),
        (_workflow(check=_notes_must_be_long), _refuses_submit),
    ],
    ids=["role removed", "guard added", "check tightened"],
)
def test_tasks_made_under_an_older_workflow_still_replay(changed, refuses):
    task = _lifecycle()[-1]
    refuses(changed)  # the changed workflow would refuse what the history holds ...
    # ... yet the recorded facts rebuild the task, its past and its changes.
    assert replay(changed, task) == task
    assert task_at(changed, task, T0 + timedelta(hours=4)).state == "done"
    assert changes(changed, task, 3) == (Change("state", "todo", "review"), Change("ball", Q, R))


# --- changes -----------------------------------------------------------------------------------


def test_changes_gives_before_and_after_from_the_facts():
    task = _lifecycle()[-1]
    assert changes(None, task, 0) == ()
    (first_comment,) = changes(None, task, 1)
    assert (first_comment.field, first_comment.before) == ("comments", ())
    assert [c.text for c in first_comment.after] == ["looking"]
    (second_comment,) = changes(None, task, 6)
    assert [c.text for c in second_comment.before] == ["looking"]
    assert [c.text for c in second_comment.after] == ["looking", "again"]
    assert changes(None, task, 5) == (
        Change("state", "done", "todo"),
        Change("resolved_at", T0 + timedelta(hours=4), None),
        Change("ball", None, Q),
    )
    assert changes(None, task, -1) == changes(None, task, len(task.history) - 1)


def _brute_force_changes(task, index):
    before = replay(None, attrs.evolve(task, history=task.history[:index]))
    after = replay(None, attrs.evolve(task, history=task.history[: index + 1]))
    return tuple(
        Change(name, getattr(before, name), getattr(after, name))
        for name in task.history[index].changed
    )


@given(tasks(REGISTRY))
def test_generated_tasks_replay_to_themselves_and_changes_agree_with_prefix_replay(task):
    assert replay(None, task) == task
    assert changes(None, task, 0) == ()
    for index in range(1, len(task.history)):
        assert changes(None, task, index) == _brute_force_changes(task, index)


def test_changes_agrees_with_the_versions_the_engine_made():
    versions = _lifecycle()
    task = versions[-1]
    for index in range(1, len(task.history)):
        before, after = versions[index - 1], versions[index]
        expected = tuple(
            Change(name, getattr(before, name), getattr(after, name))
            for name in task.history[index].changed
        )
        assert changes(None, task, index) == expected


def test_replay_refuses_a_history_without_open_entry():
    task = _lifecycle()[-1]
    with pytest.raises(InvalidPayload, match="has no 'open' entry"):
        replay(None, attrs.evolve(task, history=task.history[1:]))


# --- views, versions -----------------------------------------------------------------------------


def test_view_hides_the_other_company_internal_notes_inside_recorded_facts():
    task = apply(WORKFLOW, _opened(), "comment", SAM, T0, AddComment("ours", "internal")).task
    task = apply(WORKFLOW, task, "comment", SAM, T0, AddComment("yours")).task
    task = apply(WORKFLOW, task, "tidy", SAM, T0).task  # records the whole reversed tuple
    entry = task.history[-1]
    assert entry.appended == ()
    assert [c.visibility for c in entry.facts[0]] == [Visibility.PUBLIC, Visibility.INTERNAL]
    view = task.visible_to(ALICE.company)
    assert [c.text for c in view.history[-1].facts[0]] == ["yours"]
    assert task.visible_to(SAM.company) is task


def test_changes_of_an_opener_named_again_in_the_draft_sees_them_once():
    draft = NewTask("s", "supco", Data(), assignees=[ALICE.ref, SAM.ref])
    task = open_task(WORKFLOW, "demo", draft, ALICE, T0, TaskId("t"), "N").task
    assert task.assignees == (ALICE.ref, SAM.ref)
    task = apply(WORKFLOW, task, "claim", SUE, T0).task
    assert changes(None, task, 1) == (
        Change("assignees", (ALICE.ref, SAM.ref), (ALICE.ref, SUE.ref)),
    )
