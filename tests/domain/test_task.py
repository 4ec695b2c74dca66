from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskflow import (
    Actor,
    AddComment,
    Cause,
    CompanyId,
    DomainEvent,
    InvalidPayload,
    TaskId,
    UserId,
    Visibility,
    apply,
    default_registry,
)
from taskflow.domain.task import kept_of
from taskflow.testing.contracts import BUYER, SUPPLIER, make_task

T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)


def test_cause_of_an_outside_request_has_no_event_and_depth_zero():
    cause = Cause("req-1")
    assert (cause.correlation_id, cause.event_id, cause.depth) == ("req-1", None, 0)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"correlation_id": " "}, "correlation_id must be a non-blank"),
        ({"correlation_id": "r", "depth": -1}, "depth must be a whole number >= 0"),
        ({"correlation_id": "r", "depth": True}, "depth must be a whole number >= 0"),
    ],
)
def test_cause_refuses_a_blank_correlation_or_a_negative_depth(fields, words):
    with pytest.raises(InvalidPayload, match=words):
        Cause(**fields)


def test_event_id_names_task_version_and_event():
    actor = Actor(UserId("bea"), CompanyId("acme"))
    event = DomainEvent(
        "uploaded", TaskId("t1"), "ACME-TASK-1", "doc", "upload", actor, T0, "a", "b", 3
    )
    assert event.id == "t1@3/uploaded"
    assert event.cause is None


# --- views: what a company may read, and the shortcut that skips the scan ---------------------


_WORKFLOW = default_registry()["document_request"].workflow


def _brute_view(task, company):
    comments = tuple(c for c in task.comments if c.visible_to(company))
    history = tuple(
        e
        for e in task.history
        if getattr(e.payload, "visible_to_company", None) is None
        or e.payload.visible_to_company(e.actor.company, company)
    )
    return comments, history


@given(
    st.lists(
        st.tuples(st.sampled_from([BUYER, SUPPLIER]), st.sampled_from(list(Visibility))),
        max_size=12,
    ),
    st.integers(0, 12),
)
def test_a_view_hides_exactly_the_other_companies_internal_notes(steps, asked_at):
    """Whenever the private authors are asked (carried or computed), views equal a brute-force filter."""
    task = make_task("t-1", assignees=[SUPPLIER.ref])
    at = task.created_at
    for n, (actor, visibility) in enumerate(steps):
        if n == asked_at:
            _ = task.private_authors  # computed here, then carried by each action
        at += timedelta(minutes=1)
        task = apply(_WORKFLOW, task, "comment", actor, at, AddComment(f"c{n}", visibility)).task
        for company in ("acme", "supco", "initech"):
            view = task.visible_to(company)
            assert (view.comments, view.history) == _brute_view(task, company)


def test_kept_of_tells_an_engine_extension_from_a_rewritten_history():
    task = make_task("t-1", assignees=[SUPPLIER.ref])
    after = apply(_WORKFLOW, task, "comment", BUYER, task.created_at, AddComment("hi")).task
    assert kept_of(after, task) == (1, 0)
    rewritten = attrs.evolve(after, comments=(attrs.evolve(after.comments[0], text="erased"),))
    again = apply(_WORKFLOW, rewritten, "comment", BUYER, task.created_at, AddComment("x")).task
    assert kept_of(again, after) is None  # the first comment differs from the stored one
    assert kept_of(again, rewritten) == (2, 1)
