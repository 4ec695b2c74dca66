from datetime import UTC, datetime, timedelta

import attrs
import pytest

from taskflow import (
    ActionNotAllowed,
    Actor,
    AddComment,
    Assign,
    Cause,
    Change,
    Edit,
    InvalidPayload,
    InvalidWorkflow,
    NewTask,
    PermissionDenied,
    Side,
    State,
    TaskId,
    Transition,
    UserRef,
    Visibility,
    Workflow,
    allowed_actions,
    apply,
    changes,
    common_actions,
    open_task,
    replay,
    task_at,
)

R, Q = Side.REQUESTER, Side.RECIPIENT
T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)


@attrs.frozen
class Note:
    text: str


@attrs.frozen
class Data:
    count: int = 0


def _bump(task, payload, actor, at):
    return {"data": Data(task.data.count + 1)}


def _needs_note(task, payload, actor, at):
    if payload.text == "bad":
        msg = "note may not be 'bad'"
        raise InvalidPayload(msg, field="text")


def _not_twice(task, actor):
    return "counted already" if task.data.count >= 1 else None


def _blank_subject(task, payload, actor, at):
    return {"subject": " "}


def _sets_version(task, payload, actor, at):
    return {"version": 99}


WORKFLOW = Workflow(
    name="demo",
    initial="todo",
    states=(
        State("todo", waiting_on=Q),
        State("review", waiting_on=R),
        State("done", final=True),
    ),
    transitions=(
        Transition("submit", "todo", "review", Q, payload=Note, check=_needs_note),
        Transition("approve", "review", "done", R, roles={"manager"}),
        Transition("send_back", "review", "todo", R),
        Transition("reopen", "done", "todo", R),
        Transition("count", "todo", None, Q, guard=_not_twice, effect=_bump),
        Transition("blank", "todo", None, Q, effect=_blank_subject),
        Transition("cheat", "todo", None, Q, effect=_sets_version),
        *common_actions(),
    ),
)

ALICE = Actor("alice", "acme", {"manager"})
BOB = Actor("bob", "acme")
SAM = Actor("sam", "supco")
SUE = Actor("sue", "supco")
EVE = Actor("eve", "other")


def _open(**draft):
    base = {"subject": "Do it", "recipient": "supco", "data": Data(), "assignees": [SAM.ref]}
    base.update(draft)
    return open_task(WORKFLOW, "demo", NewTask(**base), ALICE, T0, TaskId("t1"), "ACME-TASK-1")


def _task():
    return _open().task


def test_open_makes_the_opener_requester_and_first_assignee():
    outcome = _open(watchers=[BOB.ref])
    task = outcome.task
    assert task.requester == ALICE.ref
    assert task.assignees == (ALICE.ref, SAM.ref)
    assert (task.state, task.ball, task.version, task.resolved_at) == ("todo", Q, 1, None)
    assert [e.action for e in task.history] == ["open"]
    assert task.history[0].payload.subject == "Do it"
    (event,) = outcome.events
    assert (event.name, event.task_number, event.version, event.to_state) == (
        "opened",
        "ACME-TASK-1",
        1,
        "todo",
    )


def test_open_refuses_assignees_of_a_stranger_company():
    with pytest.raises(InvalidPayload, match=r"assignees must belong to .*not: eve@other"):
        _open(assignees=[EVE.ref])
    with pytest.raises(InvalidPayload, match=r"watchers must belong"):
        _open(watchers=[EVE.ref])


def test_open_refuses_data_of_another_type():
    draft = NewTask("s", "supco", Note("x"))
    with pytest.raises(InvalidPayload, match="needs data of type Data, got Note"):
        open_task(WORKFLOW, "demo", draft, ALICE, T0, TaskId("t"), "N-1", data_type=Data)


def test_open_needs_the_workflow_open_roles():
    wf = attrs.evolve(WORKFLOW, open_roles={"buyer"})
    with pytest.raises(PermissionDenied, match=r"needs one of the roles \['buyer'\]"):
        open_task(wf, "demo", NewTask("s", "supco", Data()), ALICE, T0, TaskId("t"), "N-1")


def test_accepted_action_returns_new_task_with_one_more_entry_and_version():
    task = _task()
    at = T0 + timedelta(hours=1)
    outcome = apply(WORKFLOW, task, "submit", SAM, at, Note("here"))
    new = outcome.task
    assert task.state == "todo"  # the old task is untouched
    assert (new.state, new.ball, new.version, len(new.history)) == ("review", R, 2, 2)
    entry = new.history[-1]
    assert (entry.action, entry.actor, entry.at, entry.from_state, entry.to_state) == (
        "submit",
        SAM,
        at,
        "todo",
        "review",
    )
    assert entry.payload == Note("here")
    assert entry.changed == ("state", "ball")
    (event,) = outcome.events
    assert (event.name, event.action, event.from_state, event.to_state, event.version) == (
        "submit",
        "submit",
        "todo",
        "review",
        2,
    )


def test_final_state_sets_resolved_at_and_reopen_clears_it():
    task = apply(WORKFLOW, _task(), "submit", SAM, T0, Note("x")).task
    done = apply(WORKFLOW, task, "approve", ALICE, T0 + timedelta(days=1)).task
    assert (done.state, done.ball, done.is_open) == ("done", None, False)
    assert done.resolved_at == T0 + timedelta(days=1)
    again = apply(WORKFLOW, done, "reopen", ALICE, T0 + timedelta(days=2)).task
    assert (again.state, again.ball, again.resolved_at, again.is_open) == ("todo", Q, None, True)
    assert again.history[-1].changed == ("state", "resolved_at", "ball")


def test_unknown_action_lists_the_workflow_actions_and_what_is_allowed_now():
    with pytest.raises(ActionNotAllowed) as caught:
        apply(WORKFLOW, _task(), "fly", SAM, T0)
    message = str(caught.value)
    assert message.startswith("task ACME-TASK-1 is 'todo'; 'fly' is not an action of workflow")
    assert (
        "allowed now: 'submit', 'count', 'blank', 'cheat', 'comment', 'assign', 'edit'" in message
    )
    assert caught.value.allowed == (
        "submit",
        "count",
        "blank",
        "cheat",
        "comment",
        "assign",
        "edit",
    )


def test_wrong_state_names_the_state_the_action_needs():
    with pytest.raises(ActionNotAllowed, match="'approve' needs 'review'; allowed now: ") as caught:
        apply(WORKFLOW, _task(), "approve", ALICE, T0)
    assert (caught.value.task, caught.value.state, caught.value.action) == (
        "ACME-TASK-1",
        "todo",
        "approve",
    )


def test_final_state_reports_none_allowed_for_open_state_actions():
    task = apply(WORKFLOW, _task(), "submit", SAM, T0, Note("x")).task
    done = apply(WORKFLOW, task, "approve", ALICE, T0).task
    with pytest.raises(ActionNotAllowed, match="'claim' needs an open state; allowed now: "):
        apply(WORKFLOW, done, "claim", SAM, T0)


def test_wrong_side_is_permission_denied_naming_the_side():
    with pytest.raises(
        PermissionDenied, match=r"'submit' on task ACME-TASK-1 is for the recipient"
    ):
        apply(WORKFLOW, _task(), "submit", ALICE, T0, Note("x"))


def test_missing_role_is_permission_denied_naming_the_roles():
    task = apply(WORKFLOW, _task(), "submit", SAM, T0, Note("x")).task
    with pytest.raises(
        PermissionDenied, match=r"needs one of the roles \['manager'\]; bob@acme has none"
    ):
        apply(WORKFLOW, task, "approve", BOB, T0)
    assert "approve" not in allowed_actions(WORKFLOW, task, BOB)
    assert "approve" in allowed_actions(WORKFLOW, task, ALICE)


def test_stranger_company_is_permission_denied_and_has_no_actions():
    with pytest.raises(PermissionDenied, match="eve@other is not a party to task ACME-TASK-1"):
        apply(WORKFLOW, _task(), "comment", EVE, T0, AddComment("hi"))
    assert allowed_actions(WORKFLOW, _task(), EVE) == ()


def test_guard_refusal_says_why_and_is_reflected_in_allowed_actions():
    task = apply(WORKFLOW, _task(), "count", SAM, T0).task
    assert task.data == Data(1)
    assert task.state == "todo"
    assert "count" not in allowed_actions(WORKFLOW, task, SAM)
    with pytest.raises(ActionNotAllowed, match="'todo'; counted already; allowed now"):
        apply(WORKFLOW, task, "count", SAM, T0)


@pytest.mark.parametrize(
    ("action", "payload", "message"),
    [
        ("submit", None, "'submit' on task ACME-TASK-1 needs a Note payload, got nothing"),
        ("submit", Data(), "needs a Note payload, got Data"),
        ("count", Note("x"), "'count' on task ACME-TASK-1 takes no payload, got Note"),
        ("submit", Note("bad"), "note may not be 'bad'"),
        ("blank", None, "'blank' on task ACME-TASK-1 would leave it invalid: Task.subject"),
    ],
)
def test_bad_payload_is_invalid_payload(action, payload, message):
    task = _task()
    with pytest.raises(InvalidPayload, match=message):
        apply(WORKFLOW, task, action, SAM, T0, payload)


@pytest.mark.parametrize(
    "field", ["version", "history", "id", "number", "recipient", "state", "resolved_at", "nope"]
)
def test_effect_may_not_set_engine_owned_or_unknown_fields(field):
    def effect(task, payload, actor, at):
        return {field: task.version}

    cheat = Transition("cheat", "todo", None, Q, effect=effect)
    workflow = WORKFLOW.with_transitions()
    workflow = attrs.evolve(
        workflow, transitions=[t for t in workflow.transitions if t.name != "cheat"] + [cheat]
    )
    task = _task()
    with pytest.raises(InvalidWorkflow, match=rf"the effect of 'cheat' may not set \['{field}'\]"):
        apply(workflow, task, "cheat", SAM, T0)


def test_comment_records_author_time_and_visibility():
    at = T0 + timedelta(minutes=5)
    task = apply(WORKFLOW, _task(), "comment", SAM, at, AddComment("hi", Visibility.INTERNAL)).task
    (comment,) = task.comments
    assert (comment.author, comment.at, comment.text, comment.visibility) == (
        SAM.ref,
        at,
        "hi",
        Visibility.INTERNAL,
    )
    assert task.state == "todo"
    assert task.history[-1].changed == ("comments",)


def test_internal_comment_and_its_history_entry_are_hidden_from_the_partner():
    task = apply(WORKFLOW, _task(), "comment", SAM, T0, AddComment("ours", "internal")).task
    task = apply(WORKFLOW, task, "comment", SAM, T0, AddComment("yours")).task
    buyer_view = task.visible_to(ALICE.company)
    assert [c.text for c in buyer_view.comments] == ["yours"]
    assert len(buyer_view.history) == 2
    assert task.visible_to(SAM.company) is task


def test_assign_replaces_only_the_actor_company_assignees():
    task = apply(WORKFLOW, _task(), "assign", SAM, T0, Assign([SUE.ref])).task
    assert task.assignees == (ALICE.ref, SUE.ref)
    with pytest.raises(InvalidPayload, match="may name only users of supco; not: bob@acme"):
        apply(WORKFLOW, task, "assign", SAM, T0, Assign([BOB.ref]))
    with pytest.raises(InvalidPayload, match="at least one user"):
        Assign([])


def test_claim_takes_the_task_and_refuses_when_already_sole_assignee():
    task = apply(WORKFLOW, _task(), "assign", SAM, T0, Assign([SUE.ref, SAM.ref])).task
    claimed = apply(WORKFLOW, task, "claim", SUE, T0).task
    assert claimed.assignees_of("supco") == (SUE.ref,)
    with pytest.raises(ActionNotAllowed, match="sue@supco is already the only assignee"):
        apply(WORKFLOW, claimed, "claim", SUE, T0)


def test_edit_follows_the_side_rules():
    task = _task()
    due = T0 + timedelta(days=3)
    edited = apply(WORKFLOW, task, "edit", ALICE, T0, Edit(subject="New", due_at=due)).task
    assert (edited.subject, edited.due_at) == ("New", due)
    assert edited.history[-1].changed == ("subject", "due_at")
    tagged = apply(WORKFLOW, task, "edit", SAM, T0, Edit(tags={"urgent"})).task
    assert tagged.tags == frozenset({"urgent"})
    with pytest.raises(
        PermissionDenied, match=r"may not edit \['subject'\] .* may edit: \['tags'\]"
    ):
        apply(WORKFLOW, task, "edit", SAM, T0, Edit(subject="Mine"))
    with pytest.raises(InvalidPayload, match="names no field to change"):
        apply(WORKFLOW, task, "edit", ALICE, T0, Edit())
    with pytest.raises(InvalidPayload, match="watchers of task ACME-TASK-1 must belong"):
        apply(WORKFLOW, task, "edit", ALICE, T0, Edit(watchers=[EVE.ref]))
    with pytest.raises(InvalidPayload, match=r"Edit\.subject must be a non-blank string"):
        Edit(subject="  ")


def test_task_inside_one_company_lets_that_company_act_on_both_sides():
    draft = NewTask("internal", "acme", Data())
    task = open_task(WORKFLOW, "demo", draft, ALICE, T0, TaskId("t"), "ACME-TASK-2").task
    assert task.sides_of("acme") == frozenset({R, Q})
    task = apply(WORKFLOW, task, "submit", BOB, T0, Note("x")).task
    task = apply(WORKFLOW, task, "approve", ALICE, T0).task
    assert task.state == "done"


def _lifecycle():
    task = _task()
    steps = [
        ("comment", SAM, AddComment("looking")),
        ("submit", SAM, Note("v1")),
        ("send_back", ALICE, None),
        ("submit", SAM, Note("v2")),
        ("approve", ALICE, None),
    ]
    for i, (action, actor, payload) in enumerate(steps, start=1):
        task = apply(WORKFLOW, task, action, actor, T0 + timedelta(hours=i), payload).task
    return task


def test_replay_rebuilds_the_same_task_from_history():
    task = _lifecycle()
    assert replay(WORKFLOW, task) == task


def test_task_at_gives_the_task_as_it_stood_then():
    task = _lifecycle()
    assert task_at(WORKFLOW, task, T0 - timedelta(seconds=1)) is None
    assert task_at(WORKFLOW, task, T0).state == "todo"
    assert task_at(WORKFLOW, task, T0 + timedelta(hours=2, minutes=30)).state == "review"
    assert task_at(WORKFLOW, task, T0 + timedelta(hours=3)).version == 4
    assert task_at(WORKFLOW, task, T0 + timedelta(days=9)) == task


def test_replay_refuses_a_history_without_open_entry():
    task = _lifecycle()
    with pytest.raises(InvalidPayload, match="has no 'open' entry"):
        replay(WORKFLOW, attrs.evolve(task, history=task.history[1:]))


def test_changes_gives_before_and_after_of_each_changed_field():
    task = _lifecycle()
    assert changes(WORKFLOW, task, 0) == ()
    assert changes(WORKFLOW, task, 2) == (
        Change("state", "todo", "review"),
        Change("ball", Q, R),
    )
    (comment_change,) = changes(WORKFLOW, task, 1)
    assert comment_change.field == "comments"
    assert comment_change.before == ()
    assert [c.text for c in comment_change.after] == ["looking"]


def test_overdue_is_open_and_past_due():
    task = _open(due_at=T0 + timedelta(days=1)).task
    assert not task.is_overdue(T0)
    assert task.is_overdue(T0 + timedelta(days=2))
    assert task.assignees_of("supco") == (SAM.ref,)
    assert task.ball_company == "supco"
    assert task.company_of(R) == "acme"
    assert UserRef("acme", "alice") == ALICE.ref


def test_naive_action_time_is_refused():
    naive = datetime(2026, 3, 1, 9)
    with pytest.raises(InvalidPayload, match="must be a timezone-aware datetime"):
        apply(WORKFLOW, _task(), "submit", SAM, naive, Note("x"))
    with pytest.raises(InvalidPayload, match="must be a timezone-aware datetime"):
        open_task(WORKFLOW, "demo", NewTask("s", "supco", Data()), ALICE, naive, TaskId("t"), "N")


def test_stranger_asking_for_an_unknown_action_learns_nothing_of_the_task():
    with pytest.raises(PermissionDenied, match="eve@other is not a party") as caught:
        apply(WORKFLOW, _task(), "fly", EVE, T0)
    assert "todo" not in str(caught.value)


def test_cause_goes_on_the_history_entry_and_every_event():
    opened_by = Cause("req-1")
    outcome = open_task(
        WORKFLOW,
        "demo",
        NewTask("s", "supco", Data()),
        ALICE,
        T0,
        TaskId("t1"),
        "N",
        cause=opened_by,
    )
    assert outcome.task.history[0].cause == opened_by
    assert [e.cause for e in outcome.events] == [opened_by]
    handled = Cause("req-1", outcome.events[0].id, 1)
    applied = apply(WORKFLOW, outcome.task, "submit", SAM, T0, Note("x"), cause=handled)
    assert applied.task.history[-1].cause == handled
    assert {e.cause for e in applied.events} == {handled}
    assert outcome.events[0].id == "t1@1/opened"
    plain = apply(WORKFLOW, applied.task, "approve", ALICE, T0)
    assert plain.task.history[-1].cause is None


def test_task_opened_by_a_system_actor_does_not_make_it_an_assignee():
    rule = Actor.system("escalation", "acme")
    draft = NewTask("s", "supco", Data(), assignees=[SAM.ref])
    task = open_task(WORKFLOW, "demo", draft, rule, T0, TaskId("t1"), "N").task
    assert task.requester == rule.ref
    assert task.assignees == (SAM.ref,)
    assert task.history[0].actor == rule
    assert replay(WORKFLOW, task) == task
