from datetime import UTC, datetime

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskflow import (
    ALLOW,
    BOTH_SIDES,
    DEFAULT_AUTHORIZER,
    Actor,
    AddComment,
    Decision,
    DefaultAuthorizer,
    Edit,
    InvalidPayload,
    InvalidWorkflow,
    NewTask,
    Operation,
    PermissionDenied,
    RoleMatrix,
    Side,
    State,
    TaskId,
    Transition,
    UserRef,
    Workflow,
    allowed_actions,
    apply,
    common_actions,
    default_registry,
    is_system_actor,
    open_task,
    operation_of,
)
from taskflow.domain.task import EDITABLE_FIELDS
from taskflow.testing.strategies import Parties, builtin_strategies, tasks

R, Q = Side.REQUESTER, Side.RECIPIENT
T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)


@attrs.frozen
class Data:
    count: int = 0


def SystemActor(name, company, roles=()):
    return Actor.system(name, company, roles)


def _reject_all(task, payload, actor, at):
    msg = "the check ran"
    raise InvalidPayload(msg)


WORKFLOW = Workflow(
    name="demo",
    initial="todo",
    states=(
        State("todo", waiting_on=Q),
        State("review", waiting_on=R),
        State("done", final=True),
        State("parked", final=True),
    ),
    transitions=(
        Transition("submit", "todo", "review", Q),
        Transition("approve", "review", "done", R, roles={"manager"}),
        Transition("park", {"todo", "review"}, "parked", R, operation="modify"),
        Transition("remind", "todo", None, R, system_only=True),
        Transition("reopen", {"done", "parked"}, "todo", R),
        *common_actions(),
    ),
)
# Only the requester may edit; the recipient may edit nothing.
REQUESTER_EDITS = attrs.evolve(
    WORKFLOW,
    transitions=(
        *(t for t in WORKFLOW.transitions if t.name != "edit"),
        *(t for t in common_actions(editable={R: EDITABLE_FIELDS}) if t.name == "edit"),
    ),
)

ALICE = Actor("alice", "acme", {"manager", "admin"})
BOB = Actor("bob", "acme", {"agent"})
SAM = Actor("sam", "supco", {"admin"})
EVE = Actor("eve", "other", {"admin", "manager"})
ROBOT = SystemActor("reminder", "acme")
SUPPLY_ROBOT = SystemActor("sync", "supco")


def _task(workflow=WORKFLOW, kind="demo", opener=ALICE):
    draft = NewTask("Do it", "supco", Data(), assignees=[SAM.ref])
    return open_task(workflow, kind, draft, opener, T0, TaskId("t1"), "ACME-TASK-1").task


def _in_review(workflow=WORKFLOW, kind="demo"):
    return apply(workflow, _task(workflow, kind), "submit", SAM, T0).task


# --- operations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "operation"),
    [
        ("submit", Operation.MODIFY),
        ("approve", Operation.RESOLVE),
        ("park", Operation.MODIFY),
        ("reopen", Operation.MODIFY),
        ("comment", Operation.MODIFY),
        ("edit", Operation.MODIFY),
    ],
)
def test_a_transition_into_a_final_state_resolves_unless_it_says_otherwise(action, operation):
    transition = WORKFLOW.transition(action)
    assert operation_of(WORKFLOW, transition) is operation


@pytest.mark.parametrize("operation", ["create", "see", "delete"])
def test_a_transition_may_declare_only_modify_or_resolve(operation):
    with pytest.raises(InvalidWorkflow, match=rf"action 'go' declares operation '{operation}'"):
        Workflow(
            name="w",
            initial="a",
            states=(State("a", waiting_on=Q), State("b", final=True)),
            transitions=(Transition("go", "a", "b", Q, operation=operation),),
        )


def test_a_declared_operation_name_becomes_an_operation():
    assert Transition("go", "a", "b", Q, operation="resolve").operation is Operation.RESOLVE


def test_editable_fields_must_name_sides_and_editable_fields_and_need_a_fields_payload():
    with pytest.raises(InvalidWorkflow, match=r"given for 'buyer', which is not a side"):
        Transition("e", "a", None, Q, payload=Edit, editable={"buyer": {"tags"}})
    states = (State("a", waiting_on=Q), State("b", final=True))
    go = Transition("go", "a", "b", Q)
    with pytest.raises(
        InvalidWorkflow, match=r"lets the recipient edit \['state'\], which are not"
    ):
        Workflow(
            "w",
            states,
            (go, Transition("e", "a", None, Q, payload=Edit, editable={Q: {"state"}})),
            "a",
        )
    with pytest.raises(InvalidWorkflow, match=r"its payload needs a fields\(\) method"):
        Workflow(
            "w",
            states,
            (go, Transition("e", "a", None, Q, payload=Data, editable={Q: {"tags"}})),
            "a",
        )


def test_the_edit_transition_carries_its_editable_fields():
    edit = WORKFLOW.transition("edit")
    assert edit.editable == {R: EDITABLE_FIELDS, Q: frozenset({"tags"})}
    assert hash(edit)  # still usable in sets, like every transition


# --- decisions and the system predicate -------------------------------------------------------


def test_a_decision_is_true_exactly_when_it_allows_and_a_refusal_says_why():
    assert ALLOW
    assert ALLOW.allowed
    refusal = Decision.deny("no, because")
    assert not refusal
    assert refusal.reason == "no, because"
    with pytest.raises(InvalidPayload, match="must say why"):
        Decision.deny("  ")


def test_system_actors_are_told_by_their_type():
    assert is_system_actor(ROBOT)
    assert is_system_actor(Actor.system("import", "acme", {"agent"}))
    assert not is_system_actor(ALICE)
    assert not is_system_actor(Actor("reminder", "acme"))


# --- the default rules ------------------------------------------------------------------------


def test_default_authorizer_is_the_default_of_the_engine():
    assert isinstance(DEFAULT_AUTHORIZER, DefaultAuthorizer)
    task = _task()
    assert allowed_actions(WORKFLOW, task, SAM) == allowed_actions(
        WORKFLOW, task, SAM, authorizer=DefaultAuthorizer()
    )


def test_a_stranger_refused_an_action_is_named_as_no_party():
    decision = DEFAULT_AUTHORIZER.may_take(WORKFLOW, _task(), WORKFLOW.transition("submit"), EVE)
    assert decision.reason == (
        "'submit' on task ACME-TASK-1 is for the recipient (supco); eve@other is not a party to it"
    )


def test_system_only_transition_is_never_offered_to_a_user_and_refused_by_apply():
    task = _task()
    assert "remind" not in allowed_actions(WORKFLOW, task, ALICE)
    with pytest.raises(
        PermissionDenied,
        match=r"'remind' on task ACME-TASK-1 is taken by the system only; alice@acme is a user",
    ):
        apply(WORKFLOW, task, "remind", ALICE, T0)


def test_system_actor_follows_the_side_rules_of_its_company():
    task = _task()
    assert "remind" in allowed_actions(WORKFLOW, task, ROBOT)
    assert apply(WORKFLOW, task, "remind", ROBOT, T0).task.history[-1].actor == ROBOT
    assert "remind" not in allowed_actions(WORKFLOW, task, SUPPLY_ROBOT)
    with pytest.raises(PermissionDenied, match="is for the requester"):
        apply(WORKFLOW, task, "remind", SUPPLY_ROBOT, T0)
    assert allowed_actions(WORKFLOW, task, SystemActor("x", "other")) == ()


def test_edit_is_not_offered_to_a_side_that_may_edit_no_field():
    task = _task(REQUESTER_EDITS)
    assert "edit" in allowed_actions(REQUESTER_EDITS, task, ALICE)
    assert "edit" not in allowed_actions(REQUESTER_EDITS, task, SAM)
    message = r"sam@supco may edit no field of task ACME-TASK-1 with 'edit'"
    with pytest.raises(PermissionDenied, match=message):
        apply(REQUESTER_EDITS, task, "edit", SAM, T0, Edit(tags={"x"}))
    with pytest.raises(PermissionDenied, match=message):
        apply(REQUESTER_EDITS, task, "edit", SAM, T0, Edit())


def test_a_forbidden_field_is_refused_before_the_payload_is_checked():
    task = _task()
    with pytest.raises(
        PermissionDenied,
        match=r"sam@supco may not edit \['subject', 'watchers'\] on task ACME-TASK-1; may edit: \['tags'\]",
    ) as caught:
        apply(WORKFLOW, task, "edit", SAM, T0, Edit(subject="x", watchers=[UserRef("other", "z")]))
    assert (caught.value.task, caught.value.action) == ("ACME-TASK-1", "edit")
    # A check of its own that refuses everything never runs for a refused field.
    edit = attrs.evolve(WORKFLOW.transition("edit"), check=_reject_all)
    strict = attrs.evolve(
        WORKFLOW, transitions=(*(t for t in WORKFLOW.transitions if t.name != "edit"), edit)
    )
    with pytest.raises(PermissionDenied, match="may not edit"):
        apply(strict, _task(strict), "edit", SAM, T0, Edit(subject="x"))
    with pytest.raises(InvalidPayload, match="the check ran"):
        apply(strict, _task(strict), "edit", SAM, T0, Edit(tags={"x"}))


def test_a_wrong_edit_payload_is_still_an_invalid_payload():
    with pytest.raises(InvalidPayload, match="needs a Edit payload, got AddComment"):
        apply(WORKFLOW, _task(), "edit", SAM, T0, AddComment("x"))


# --- the role matrix --------------------------------------------------------------------------

MATRIX = RoleMatrix(
    {
        "demo": {
            "agent": {"create", "see", "modify"},
            "manager": {Operation.SEE, Operation.RESOLVE},
        },
        "*": {"admin": {"create", "see", "modify", "resolve"}, "viewer": "see"},
    }
)


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (
            {"demo": {"agent": {"create", "delete"}}},
            r"'demo' -> 'agent': unknown operations \['delete'\]; operations are create, see, modify, resolve",
        ),
        ({"demo": {"agent": {"Create"}}}, r"unknown operations \['Create'\]"),
        ({"demo": {"  ": {"see"}}}, r"'demo': role name '  ' must be non-blank text"),
        ({"demo": {3: {"see"}}}, r"'demo': role name 3 must be non-blank text"),
        ({"": {"agent": {"see"}}}, r"kind name '' must be non-blank text"),
        ({"demo": {}}, r"'demo' must map at least one role name to its operations, got \{\}"),
        ({"demo": ["agent"]}, r"'demo' must map at least one role name"),
        ({"demo": {"agent": 5}}, r"'demo' -> 'agent': operations must be a set of names, got 5"),
        (["demo"], r"a role matrix maps kind names to \{role: operations\}, got list"),
    ],
)
def test_role_matrix_refuses_bad_entries_naming_them(matrix, message):
    with pytest.raises(InvalidWorkflow, match=message):
        RoleMatrix(matrix)


def test_role_matrix_names_every_bad_entry_at_once():
    with pytest.raises(InvalidWorkflow) as caught:
        RoleMatrix({"demo": {"agent": {"fly"}, "": {"see"}}, "x": {}})
    message = str(caught.value)
    assert message.startswith("role matrix is invalid: ")
    assert message.count(";") >= 2


def test_role_matrix_with_known_kinds_refuses_a_kind_that_is_not_registered():
    with pytest.raises(InvalidWorkflow, match=r"names kinds \['dmeo'\] that are not registered"):
        RoleMatrix({"dmeo": {"agent": {"see"}}, "*": {"admin": {"see"}}}, kinds=["demo"])
    assert RoleMatrix({"demo": {"agent": {"see"}}}, kinds=["demo"]).kinds == {"demo"}


def test_role_matrix_adds_every_kind_rows_to_the_kind_own():
    assert MATRIX.operations("demo", ALICE) == frozenset(Operation)
    assert MATRIX.operations("demo", BOB) == {Operation.CREATE, Operation.SEE, Operation.MODIFY}
    assert MATRIX.operations("other_kind", Actor("v", "acme", {"viewer"})) == {Operation.SEE}
    assert MATRIX.operations("other_kind", BOB) == frozenset()


def test_role_matrix_leaves_a_kind_it_names_no_roles_for_to_the_default_rules():
    matrix = RoleMatrix({"demo": {"agent": {"see"}}})
    assert matrix.operations("other_kind", Actor("nobody", "acme")) == frozenset(Operation)
    task = _task(kind="other_kind", opener=Actor("nobody", "acme"))
    assert allowed_actions(WORKFLOW, task, SAM, authorizer=matrix) == allowed_actions(
        WORKFLOW, task, SAM
    )


def test_role_matrix_decides_opening_by_create():
    draft = NewTask("Do it", "supco", Data())
    clerk = Actor("cleo", "acme", {"manager"})
    with pytest.raises(
        PermissionDenied,
        match=(
            r"opening a task needs the 'create' right on 'demo' tasks, which the roles "
            r"\['admin', 'agent'\] have; cleo@acme has \['manager'\] \(may: see, resolve\)"
        ),
    ):
        open_task(WORKFLOW, "demo", draft, clerk, T0, TaskId("t"), "N-1", authorizer=MATRIX)
    opened = open_task(WORKFLOW, "demo", draft, BOB, T0, TaskId("t"), "N-1", authorizer=MATRIX)
    assert opened.task.requester == BOB.ref


def test_role_matrix_never_lets_in_what_the_default_rules_refuse():
    task = _task()
    assert not MATRIX.may_see(task, EVE)
    assert allowed_actions(WORKFLOW, task, EVE, authorizer=MATRIX) == ()
    with pytest.raises(PermissionDenied, match="eve@other is not a party to task ACME-TASK-1"):
        apply(WORKFLOW, task, "comment", EVE, T0, AddComment("hi"), authorizer=MATRIX)
    # A matrix role does not replace the transition's own side and roles either.
    review = _in_review()
    with pytest.raises(PermissionDenied, match=r"needs one of the roles \['manager'\]"):
        apply(WORKFLOW, review, "approve", Actor("ada", "acme", {"admin"}), T0, authorizer=MATRIX)


def test_a_user_with_no_role_the_matrix_names_for_a_kind_may_not_see_its_tasks():
    task = _task()
    nobody = Actor("nora", "acme")
    decision = MATRIX.may_see(task, nobody)
    assert decision.reason == (
        "seeing task ACME-TASK-1 needs the 'see' right on 'demo' tasks, which the roles "
        "['admin', 'agent', 'manager', 'viewer'] have; nora@acme has none (may: nothing)"
    )
    assert not MATRIX.may_see_kind("demo", nobody)
    assert allowed_actions(WORKFLOW, task, nobody, authorizer=MATRIX) == ()
    with pytest.raises(PermissionDenied, match="seeing task ACME-TASK-1 needs the 'see' right"):
        apply(WORKFLOW, task, "comment", nobody, T0, AddComment("hi"), authorizer=MATRIX)


def test_role_matrix_refuses_a_resolve_to_a_role_that_may_only_modify():
    review = _in_review()
    boss = Actor("bo", "acme", {"agent", "manager"})
    agent_manager = allowed_actions(WORKFLOW, review, boss, authorizer=MATRIX)
    assert "approve" in agent_manager
    lead = Actor("lea", "acme", {"agent"})
    assert "approve" not in allowed_actions(WORKFLOW, review, lead, authorizer=MATRIX)
    assert "park" in allowed_actions(WORKFLOW, review, lead, authorizer=MATRIX)
    viewer = Actor("vic", "acme", {"viewer", "manager"})
    assert allowed_actions(WORKFLOW, review, viewer, authorizer=MATRIX) == ("approve",)
    with pytest.raises(
        PermissionDenied,
        match=(
            r"'park' on task ACME-TASK-1 needs the 'modify' right on 'demo' tasks, which the "
            r"roles \['admin', 'agent'\] have; vic@acme has \['manager', 'viewer'\] "
            r"\(may: see, resolve\)"
        ),
    ):
        apply(WORKFLOW, review, "park", viewer, T0, authorizer=MATRIX)


def test_role_matrix_gives_no_editable_fields_without_the_edit_operation():
    task = _task()
    edit = WORKFLOW.transition("edit")
    viewer = Actor("vic", "acme", {"viewer"})
    assert MATRIX.editable_fields(WORKFLOW, task, edit, viewer) == frozenset()
    assert MATRIX.editable_fields(WORKFLOW, task, edit, BOB) == EDITABLE_FIELDS
    assert "edit" not in allowed_actions(WORKFLOW, task, viewer, authorizer=MATRIX)


def test_a_role_the_matrix_names_with_no_operation_gives_nothing():
    matrix = RoleMatrix({"demo": {"agent": set(), "admin": {"see"}}})
    decision = matrix.may_see(_task(), BOB)
    assert (
        "which the roles ['admin'] have; bob@acme has ['agent'] (may: nothing)" in decision.reason
    )
    none_resolve = matrix.may_take(WORKFLOW, _in_review(), WORKFLOW.transition("approve"), ALICE)
    assert "needs the 'resolve' right on 'demo' tasks, which no role has" in none_resolve.reason


def test_system_actor_is_held_to_the_matrix_only_through_a_role_it_carries():
    task = _task()
    assert MATRIX.operations("demo", ROBOT) == frozenset(Operation)
    assert "remind" in allowed_actions(WORKFLOW, task, ROBOT, authorizer=MATRIX)
    viewer_robot = SystemActor("reminder", "acme", {"viewer"})
    assert MATRIX.operations("demo", viewer_robot) == {Operation.SEE}
    assert "remind" not in allowed_actions(WORKFLOW, task, viewer_robot, authorizer=MATRIX)
    # A role the matrix does not name leaves the system actor to the default rules.
    assert MATRIX.operations("demo", SystemActor("r", "acme", {"cron"})) == frozenset(Operation)


def test_role_matrix_over_another_base_asks_that_base_first():
    @attrs.frozen
    class NoComments(DefaultAuthorizer):
        def may_take(self, workflow, task, transition, actor):
            if transition.name == "comment":
                return Decision.deny("comments are closed")
            return super().may_take(workflow, task, transition, actor)

    matrix = RoleMatrix({"*": {"admin": {"see", "modify"}}}, base=NoComments())
    task = _task()
    assert "comment" not in allowed_actions(WORKFLOW, task, SAM, authorizer=matrix)
    assert "assign" in allowed_actions(WORKFLOW, task, SAM, authorizer=matrix)
    with pytest.raises(PermissionDenied, match="comments are closed"):
        apply(WORKFLOW, task, "comment", SAM, T0, AddComment("x"), authorizer=matrix)


def test_role_matrix_reads_both_sides_of_a_task_inside_one_company():
    inside = open_task(
        WORKFLOW, "demo", NewTask("x", "acme", Data()), BOB, T0, TaskId("t"), "ACME-TASK-2"
    ).task
    assert "submit" in allowed_actions(WORKFLOW, inside, BOB, authorizer=MATRIX)
    assert set(BOTH_SIDES) == inside.sides_of(BOB.company)


def test_role_matrix_passes_on_the_refusals_of_its_base():
    @attrs.frozen
    class Closed(DefaultAuthorizer):
        def may_see_kind(self, kind, actor):
            return Decision.deny(f"'{kind}' is closed")

    matrix = RoleMatrix({"*": {"admin": {"create", "see"}}}, base=Closed())
    assert matrix.may_see_kind("demo", SAM).reason == "'demo' is closed"
    needs_buyer = attrs.evolve(WORKFLOW, open_roles={"buyer"})
    decision = matrix.may_open(needs_buyer, "demo", SAM)
    assert (
        decision.reason
        == "opening a task of kind 'demo' needs one of the roles ['buyer']; sam@supco has ['admin']"
    )


def test_only_an_edit_transition_has_editable_fields():
    submit = WORKFLOW.transition("submit")
    assert DEFAULT_AUTHORIZER.editable_fields(WORKFLOW, _task(), submit, ALICE) == frozenset()


# --- allowed_actions and apply agree, for any authorizer -------------------------------------

REGISTRY = default_registry()
TABLE = builtin_strategies()
ROLES = ("admin", "agent", "auditor")


def _role_matrices() -> st.SearchStrategy[RoleMatrix]:
    rows = st.dictionaries(
        st.sampled_from(ROLES), st.frozensets(st.sampled_from(Operation)), min_size=1
    )
    return st.dictionaries(st.sampled_from([*REGISTRY.names, "*"]), rows, min_size=1).map(
        RoleMatrix
    )


AUTHORIZERS = st.one_of(st.just(DEFAULT_AUTHORIZER), _role_matrices())
ACTORS = st.builds(
    lambda system, user, company, roles: (SystemActor if system else Actor)(user, company, roles),
    st.booleans(),
    st.sampled_from(["u1", "u2"]),
    st.sampled_from(["req", "rcp", "other"]),
    st.frozensets(st.sampled_from(ROLES)),
)
WHO = Parties(
    (Actor("req-1", "req", {"admin"}), Actor("req-2", "req")),
    (Actor("rcp-1", "rcp", {"admin"}), Actor("rcp-2", "rcp")),
    Actor("eve", "other", {"admin"}),
)


@given(task=tasks(REGISTRY), actor=ACTORS, authorizer=AUTHORIZERS, data=st.data())
def test_offered_actions_are_permitted_and_refused_ones_raise_permission_denied(
    task, actor, authorizer, data
):
    workflow = REGISTRY[task.kind].workflow
    allowed = allowed_actions(workflow, task, actor, authorizer=authorizer)
    seen = authorizer.may_see(task, actor)
    if not seen:
        assert allowed == ()
    for t in workflow.transitions_from(task.state):
        decision = authorizer.may_take(workflow, task, t, actor)
        editable = authorizer.editable_fields(workflow, task, t, actor)
        payload = data.draw(TABLE.payload(t.payload, task, WHO), label=t.name)
        if t.name in allowed:
            assert seen
            assert decision
            assert t.editable is None or editable
            try:
                apply(workflow, task, t.name, actor, T0, payload, authorizer=authorizer)
            except PermissionDenied:
                # Only for the fields an edit names that the actor may not change.
                assert t.editable is not None
                assert not set(payload.fields()) <= editable
            except InvalidPayload:
                pass
        elif not seen or not decision or (t.editable is not None and not editable):
            with pytest.raises(PermissionDenied) as caught:
                apply(workflow, task, t.name, actor, T0, payload, authorizer=authorizer)
            reason = seen.reason or decision.reason
            if reason:
                assert str(caught.value) == reason
        else:
            # Permitted but not offered: only the guard may refuse it, and says why.
            assert t.guard is not None
            assert t.guard(task, actor) is not None
