from datetime import UTC, datetime, timedelta, timezone

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskflow.domain.query import TaskQuery, sort_key
from taskflow.domain.values import CompanyId, Side, UserId, UserRef
from taskflow.errors import InvalidPayload
from taskflow.kinds import default_registry
from taskflow.kinds.document import DOCUMENT_WORKFLOW
from taskflow.testing.contracts import (
    ACME,
    BUYER,
    GLOBEX,
    SUPCO,
    SUPPLIER,
    SUPPLIER_COLLEAGUE,
    T0,
    accept,
    make_task,
    upload,
)
from taskflow.testing.strategies import aware_datetimes, tasks

DAY = timedelta(days=1)
REGISTRY = default_registry()
COMPANIES = [CompanyId(c) for c in ("req", "rcp", "other")]
USERS = [UserRef(c, UserId(f"{c}-{n}")) for c in COMPANIES for n in (1, 2, 3)]

# A requested document task from acme to supco, due in ten days, with sam assigned.
REQUESTED = make_task("t-1", due_at=T0 + 10 * DAY, assignees=[SUPPLIER.ref])
UPLOADED = upload(REQUESTED, SUPPLIER)
ACCEPTED = accept(UPLOADED, BUYER)
UNDATED = make_task("t-2", assignees=[SUPPLIER.ref])


def single_filters(query: TaskQuery) -> list[TaskQuery]:
    """Split a query into one query per filter it sets (company and side stay together)."""
    names = ("kind", "states", "assignee", "ball_company", "open", "due_before")
    singles = [
        TaskQuery(**{name: getattr(query, name)})
        for name in names
        if getattr(query, name) is not None
    ]
    if query.company is not None:
        singles.append(TaskQuery(company=query.company, side=query.side))
    return singles


@st.composite
def queries(draw: st.DrawFn) -> TaskQuery:
    company = draw(st.none() | st.sampled_from([*COMPANIES, CompanyId("stranger")]))
    return TaskQuery(
        kind=draw(st.none() | st.sampled_from(REGISTRY.names)),
        states=draw(st.none() | st.frozensets(st.sampled_from(DOCUMENT_WORKFLOW.state_names))),
        company=company,
        side=draw(st.none() | st.sampled_from(Side)) if company is not None else None,
        assignee=draw(st.none() | st.sampled_from(USERS)),
        ball_company=draw(st.none() | st.sampled_from(COMPANIES)),
        open=draw(st.none() | st.booleans()),
        due_before=draw(st.none() | aware_datetimes()),
        limit=draw(st.none() | st.integers(0, 5)),
    )


# Validation


def test_side_without_company_is_refused():
    with pytest.raises(InvalidPayload, match=r"needs TaskQuery\.company") as caught:
        TaskQuery(side=Side.RECIPIENT)
    assert caught.value.field == "side"


@pytest.mark.parametrize("limit", [-1, -100, 1.5, "3"])
def test_limit_that_is_not_a_whole_number_from_zero_up_is_refused(limit):
    with pytest.raises(InvalidPayload, match="limit") as caught:
        TaskQuery(limit=limit)
    assert caught.value.field == "limit"


def test_naive_due_before_is_refused():
    with pytest.raises(InvalidPayload, match="timezone-aware") as caught:
        TaskQuery(due_before=datetime(2026, 3, 2, 9))
    assert caught.value.field == "due_before"


def test_limit_zero_and_side_with_company_are_accepted():
    query = TaskQuery(company=ACME, side=Side.REQUESTER, limit=0)
    assert (query.company, query.side, query.limit) == (ACME, Side.REQUESTER, 0)


def test_one_state_given_as_a_string_is_one_state_not_its_letters():
    assert TaskQuery(states="requested").states == frozenset({"requested"})


def test_states_given_as_any_iterable_become_a_frozenset():
    assert TaskQuery(states=["requested", "uploaded"]).states == frozenset(
        {"requested", "uploaded"}
    )


# matches: one filter at a time


def test_empty_query_matches_open_and_closed_tasks():
    assert all(TaskQuery().matches(t) for t in (REQUESTED, UPLOADED, ACCEPTED, UNDATED))


def test_kind_matches_only_that_kind():
    assert TaskQuery(kind="document_request").matches(REQUESTED)
    assert not TaskQuery(kind="product_document_request").matches(REQUESTED)


def test_states_match_any_of_the_states_and_an_empty_set_matches_nothing():
    assert TaskQuery(states={"uploaded", "accepted"}).matches(UPLOADED)
    assert TaskQuery(states={"uploaded", "accepted"}).matches(ACCEPTED)
    assert not TaskQuery(states={"uploaded", "accepted"}).matches(REQUESTED)
    assert not TaskQuery(states=frozenset()).matches(REQUESTED)


@pytest.mark.parametrize(
    ("company", "side", "expected"),
    [
        (ACME, None, True),
        (SUPCO, None, True),
        (GLOBEX, None, False),
        (ACME, Side.REQUESTER, True),
        (ACME, Side.RECIPIENT, False),
        (SUPCO, Side.RECIPIENT, True),
        (SUPCO, Side.REQUESTER, False),
        (GLOBEX, Side.RECIPIENT, False),
    ],
)
def test_company_matches_a_party_on_the_given_side(company, side, expected):
    assert TaskQuery(company=company, side=side).matches(REQUESTED) is expected


def test_company_inside_one_company_task_is_on_both_sides():
    internal = make_task("t-3", recipient=ACME)
    assert TaskQuery(company=ACME, side=Side.REQUESTER).matches(internal)
    assert TaskQuery(company=ACME, side=Side.RECIPIENT).matches(internal)
    assert not TaskQuery(company=SUPCO).matches(internal)


def test_assignee_matches_any_assigned_user_of_either_company():
    assert TaskQuery(assignee=BUYER.ref).matches(REQUESTED)
    assert TaskQuery(assignee=SUPPLIER.ref).matches(REQUESTED)
    assert not TaskQuery(assignee=SUPPLIER_COLLEAGUE.ref).matches(REQUESTED)
    # The same user name in another company is another user.
    assert not TaskQuery(assignee=UserRef(GLOBEX, SUPPLIER.user)).matches(REQUESTED)


def test_ball_company_follows_the_ball_and_a_closed_task_is_in_nobodys_court():
    assert TaskQuery(ball_company=SUPCO).matches(REQUESTED)
    assert not TaskQuery(ball_company=ACME).matches(REQUESTED)
    assert TaskQuery(ball_company=ACME).matches(UPLOADED)
    assert not TaskQuery(ball_company=SUPCO).matches(UPLOADED)
    assert not TaskQuery(ball_company=ACME).matches(ACCEPTED)
    assert not TaskQuery(ball_company=SUPCO).matches(ACCEPTED)


def test_open_tells_waiting_tasks_from_final_ones():
    assert TaskQuery(open=True).matches(UPLOADED)
    assert not TaskQuery(open=False).matches(UPLOADED)
    assert TaskQuery(open=False).matches(ACCEPTED)
    assert not TaskQuery(open=True).matches(ACCEPTED)


def test_due_before_is_strict():
    due = REQUESTED.due_at
    assert due is not None
    assert not TaskQuery(due_before=due).matches(REQUESTED)
    assert TaskQuery(due_before=due + timedelta(microseconds=1)).matches(REQUESTED)
    assert not TaskQuery(due_before=due - timedelta(microseconds=1)).matches(REQUESTED)


def test_due_before_compares_instants_across_time_zones():
    due = REQUESTED.due_at
    assert due is not None
    # 05:00 at UTC-5 is 10:00 UTC: an hour after the due time, though it reads earlier.
    later_elsewhere = (due + timedelta(hours=1)).astimezone(timezone(timedelta(hours=-5)))
    assert later_elsewhere.replace(tzinfo=None) < due.replace(tzinfo=None)
    assert TaskQuery(due_before=later_elsewhere).matches(REQUESTED)


def test_task_without_due_date_never_matches_due_before():
    far = datetime(9999, 1, 1, tzinfo=UTC)
    assert not TaskQuery(due_before=far).matches(UNDATED)


def test_matches_ignores_the_limit():
    assert TaskQuery(limit=0).matches(REQUESTED)


def test_combined_filters_all_have_to_hold():
    inbox = TaskQuery(ball_company=SUPCO, assignee=SUPPLIER.ref)
    assert inbox.matches(REQUESTED)
    assert not inbox.matches(UPLOADED)
    assert not attrs.evolve(inbox, kind="product_document_request").matches(REQUESTED)


def test_sort_key_is_creation_time_then_id():
    assert sort_key(REQUESTED) == (REQUESTED.created_at, "t-1")
    same_time = sorted([UNDATED, REQUESTED], key=sort_key)
    assert [t.id for t in same_time] == ["t-1", "t-2"]


# matches: properties over generated tasks and queries


@given(tasks(REGISTRY), queries())
def test_a_query_matches_exactly_when_each_of_its_filters_does(task, query):
    assert query.matches(task) == all(single.matches(task) for single in single_filters(query))


@given(tasks(REGISTRY))
def test_a_task_matches_the_queries_built_from_its_own_values(task):
    assert TaskQuery().matches(task)
    assert TaskQuery(kind=task.kind, states=task.state).matches(task)
    assert TaskQuery(company=task.requester.company, side=Side.REQUESTER).matches(task)
    assert TaskQuery(company=task.recipient, side=Side.RECIPIENT).matches(task)
    assert all(TaskQuery(assignee=a).matches(task) for a in task.assignees)
    assert TaskQuery(open=task.is_open).matches(task)
    assert not TaskQuery(open=not task.is_open).matches(task)
    assert not TaskQuery(states=frozenset()).matches(task)


@given(tasks(REGISTRY), st.sampled_from(COMPANIES))
def test_company_matches_when_one_of_its_sides_does(task, company):
    either = TaskQuery(company=company).matches(task)
    sides = [TaskQuery(company=company, side=side).matches(task) for side in Side]
    assert either == any(sides)
    assert either == task.is_party(company)


@given(tasks(REGISTRY))
def test_an_open_task_is_in_exactly_one_companys_court_and_a_closed_one_in_none(task):
    courts = [c for c in COMPANIES if TaskQuery(ball_company=c).matches(task)]
    assert len(courts) == (1 if task.is_open else 0)
    assert courts == ([task.ball_company] if task.is_open else [])


@given(tasks(REGISTRY), aware_datetimes(), aware_datetimes())
def test_due_before_is_monotonic_in_the_cut_off(task, one, other):
    earlier, later = sorted([one, other])
    if TaskQuery(due_before=earlier).matches(task):
        assert TaskQuery(due_before=later).matches(task)
    matched = TaskQuery(due_before=later).matches(task)
    assert matched == (task.due_at is not None and task.due_at < later)


def test_limit_refuses_a_bool():
    with pytest.raises(InvalidPayload, match="limit must be None or a whole number"):
        TaskQuery(limit=True)
