from datetime import UTC, datetime

import attrs
import pytest

from taskflow import (
    ANY_STATE,
    OPEN_STATES,
    Actor,
    InvalidWorkflow,
    NewTask,
    Registry,
    Side,
    State,
    TaskId,
    TaskKind,
    Transition,
    UnknownKind,
    Workflow,
    common_actions,
    open_task,
    replay,
)
from taskflow.kinds import BUILTIN_KINDS, default_registry

R, Q = Side.REQUESTER, Side.RECIPIENT
T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)


@attrs.frozen
class Note:
    text: str = "x"


def _workflow(states, transitions, initial="a"):
    return Workflow(name="w", states=states, transitions=transitions, initial=initial)


GOOD_STATES = (State("a", waiting_on=Q), State("done", final=True))
GOOD_MOVES = (Transition("finish", "a", "done", Q),)


def test_valid_workflow_indexes_its_transitions_by_state():
    wf = _workflow(GOOD_STATES, (*GOOD_MOVES, *common_actions()))
    assert wf.state_names == ("a", "done")
    assert wf.final_states == frozenset({"done"})
    assert [t.name for t in wf.transitions_from("a")] == [
        "finish",
        "comment",
        "assign",
        "claim",
        "edit",
    ]
    # Common actions that need an open task are not offered in a final state; comments are.
    assert [t.name for t in wf.transitions_from("done")] == ["comment"]


@pytest.mark.parametrize(
    ("states", "transitions", "initial", "fragment"),
    [
        (
            (*GOOD_STATES, State("a", waiting_on=R)),
            GOOD_MOVES,
            "a",
            "state 'a' is declared twice",
        ),
        (GOOD_STATES, (*GOOD_MOVES, *GOOD_MOVES), "a", "action 'finish' is declared twice"),
        (GOOD_STATES, GOOD_MOVES, "zzz", "initial state 'zzz' is not one of the states"),
        (GOOD_STATES, (Transition("finish", "a", "nowhere", Q),), "a", "unknown state 'nowhere'"),
        (GOOD_STATES, (Transition("finish", "x", "done", Q),), "a", "unknown state 'x'"),
        (
            (*GOOD_STATES, State("island", waiting_on=R)),
            (*GOOD_MOVES, Transition("leave", "island", "done", R)),
            "a",
            "state 'island' cannot be reached from 'a'",
        ),
        (
            (*GOOD_STATES, State("stuck", waiting_on=R)),
            (*GOOD_MOVES, Transition("go", "a", "stuck", Q)),
            "a",
            "state 'stuck' is not final but has no action that leaves it",
        ),
        (
            (State("a", waiting_on=Q), State("done", final=True, waiting_on=R)),
            GOOD_MOVES,
            "a",
            "final state 'done' cannot wait on a side",
        ),
        (
            (State("a"), State("done", final=True)),
            GOOD_MOVES,
            "a",
            "state 'a' is not final, so it must say whose court it is in",
        ),
        (GOOD_STATES, (Transition("finish", "a", "done", ()),), "a", "names no side"),
        (GOOD_STATES, (Transition("finish", (), "done", Q),), "a", "has no source state"),
        (GOOD_STATES, (*GOOD_MOVES, Transition("open", "a", "done", Q)), "a", "'open' is reserved"),
        (
            GOOD_STATES,
            (Transition("finish", "a", "done", Q, payload=dict),),
            "a",
            "is not an attrs class",
        ),
    ],
)
def test_invalid_workflow_is_refused_when_built(states, transitions, initial, fragment):
    with pytest.raises(InvalidWorkflow, match="workflow 'w' is invalid") as caught:
        _workflow(states, transitions, initial)
    assert fragment in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_a_stay_transition_does_not_count_as_a_way_out():
    with pytest.raises(InvalidWorkflow, match="state 'a' is not final but has no action"):
        _workflow(GOOD_STATES, (Transition("poke", "a", None, Q), Transition("x", "done", "a", R)))


def test_any_state_transition_can_leave_every_state():
    wf = _workflow(
        (State("a", waiting_on=Q), State("b", waiting_on=R), State("done", final=True)),
        (Transition("next", "a", "b", Q), Transition("abort", ANY_STATE, "done", R)),
    )
    assert {t.name for t in wf.transitions_from("done")} == {"abort"}


def test_open_states_transition_is_not_offered_in_final_states():
    wf = _workflow(GOOD_STATES, (*GOOD_MOVES, Transition("poke", OPEN_STATES, None, R)))
    assert [t.name for t in wf.transitions_from("done")] == []


def test_unknown_state_lookup_names_the_states():
    wf = _workflow(GOOD_STATES, GOOD_MOVES)
    with pytest.raises(InvalidWorkflow, match=r"no state 'x'; states: \('a', 'done'\)"):
        wf.state("x")
    assert wf.transition("nope") is None


def test_common_actions_refuse_fields_that_are_not_editable():
    with pytest.raises(InvalidWorkflow, match=r"\['state'\] are not editable"):
        common_actions(editable={R: frozenset({"state"})})


def test_registry_refuses_duplicate_kind_and_names_known_kinds():
    registry = default_registry()
    with pytest.raises(InvalidWorkflow, match="already registered"):
        registry.register(BUILTIN_KINDS[0])
    with pytest.raises(UnknownKind, match="unknown task kind 'nope'; registered kinds: ") as caught:
        registry["nope"]
    assert isinstance(caught.value, LookupError)
    assert "'document_request'" in str(caught.value)
    assert registry.names == tuple(k.name for k in BUILTIN_KINDS)
    assert len(registry) == len(BUILTIN_KINDS)
    assert "document_request" in registry
    assert "document_request" in repr(registry)


def test_task_kind_needs_an_attrs_data_class():
    wf = _workflow(GOOD_STATES, GOOD_MOVES)
    with pytest.raises(InvalidWorkflow, match="must be an attrs class"):
        TaskKind("k", dict, wf)


def test_registry_accepts_a_custom_kind():
    wf = _workflow(GOOD_STATES, GOOD_MOVES)
    kind = TaskKind("k", State, wf)
    registry = Registry([kind])
    assert registry["k"] is kind
    assert list(registry) == [kind]


@pytest.mark.parametrize(
    ("states", "transitions", "fragment"),
    [
        (
            (State("a b", waiting_on=Q), State("done", final=True)),
            (Transition("finish", "a b", "done", Q),),
            "state name 'a b' must be a Python identifier",
        ),
        (
            GOOD_STATES,
            (Transition("fin-ish", "a", "done", Q),),
            "action name 'fin-ish' must be a Python identifier",
        ),
    ],
)
def test_names_must_be_identifiers(states, transitions, fragment):
    with pytest.raises(InvalidWorkflow, match=fragment):
        _workflow(states, transitions)


@pytest.mark.parametrize("version", [0, -1, 1.5, True, "2"])
def test_workflow_version_must_be_a_whole_number_from_one(version):
    with pytest.raises(
        InvalidWorkflow, match=rf"version must be a whole number >= 1, got {version!r}"
    ):
        attrs.evolve(_workflow(GOOD_STATES, GOOD_MOVES), version=version)


def test_open_task_records_the_workflow_version_on_the_task():
    workflow = attrs.evolve(_workflow(GOOD_STATES, GOOD_MOVES), version=3)
    draft = NewTask("s", "supco", Note())
    task = open_task(workflow, "k", draft, Actor("bea", "acme"), T0, TaskId("t"), "N").task
    assert (workflow.version, task.workflow_version) == (3, 3)
    assert replay(workflow, task) == task
