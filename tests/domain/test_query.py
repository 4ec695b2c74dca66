import enum
import pickle
from datetime import UTC, datetime, time, timedelta, timezone

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskflow.domain.query import (
    QUERY_FIELDS,
    Between,
    Cursor,
    Page,
    TaskQuery,
    check_indexed,
    index_tag,
    index_values,
    sort_key,
)
from taskflow.domain.registry import Registry, TaskKind
from taskflow.domain.values import CompanyId, Side, TaskId, UserId, UserRef
from taskflow.errors import InvalidPayload, InvalidWorkflow
from taskflow.kinds import default_registry
from taskflow.kinds.document import DOCUMENT_REQUEST, DOCUMENT_WORKFLOW, DocumentRequest
from taskflow.testing.contracts import (
    ACME,
    BUYER,
    GLOBEX,
    PROBE,
    SUPCO,
    SUPPLIER,
    SUPPLIER_COLLEAGUE,
    T0,
    Probe,
    accept,
    contract_registry,
    make_task,
    upload,
)
from taskflow.testing.strategies import aware_datetimes, tasks

DAY = timedelta(days=1)
MICRO = timedelta(microseconds=1)
MINUS_FIVE = timezone(timedelta(hours=-5))
REGISTRY = default_registry()
INDEXED = contract_registry()
COMPANIES = [CompanyId(c) for c in ("req", "rcp", "other")]
USERS = [UserRef(c, UserId(f"{c}-{n}")) for c in COMPANIES for n in (1, 2, 3)]

# A requested document task from acme to supco, due in ten days, with sam assigned.
REQUESTED = make_task("t-1", due_at=T0 + 10 * DAY, assignees=[SUPPLIER.ref])
UPLOADED = upload(REQUESTED, SUPPLIER)
ACCEPTED = accept(UPLOADED, BUYER)
UNDATED = make_task("t-2", assignees=[SUPPLIER.ref])


def values_of(task):
    return index_values(INDEXED[task.kind], task)


def single_filters(query: TaskQuery) -> list[TaskQuery]:
    """Split a query into one query per filter it sets (company and side stay together)."""
    names = (
        "kind",
        "states",
        "assignee",
        "ball_company",
        "open",
        "due_before",
        "requester_company",
        "recipient_company",
        "created_from",
        "created_until",
        "after",
    )
    singles = [
        TaskQuery(**{name: getattr(query, name)})
        for name in names
        if getattr(query, name) is not None
    ]
    if query.company is not None:
        singles.append(TaskQuery(company=query.company, side=query.side))
    singles += [TaskQuery(where={name: c}) for name, c in query.where.items()]
    return singles


def ordered(one, other):
    return (one, other) if one is None or other is None or one <= other else (other, one)


@st.composite
def ranges(draw: st.DrawFn, ends) -> Between:
    low, high = ordered(draw(st.none() | ends), draw(ends))
    return Between(low, high) if draw(st.booleans()) else Between(high, None)


@st.composite
def queries(draw: st.DrawFn) -> TaskQuery:
    company = draw(st.none() | st.sampled_from([*COMPANIES, CompanyId("stranger")]))
    start, end = ordered(draw(st.none() | aware_datetimes()), draw(st.none() | aware_datetimes()))
    where = draw(
        st.dictionaries(
            st.sampled_from(["document_type", "files", "deadline"]),
            st.integers(0, 3)
            | st.booleans()
            | aware_datetimes()
            | st.text(max_size=3)
            | ranges(st.integers(0, 3))
            | ranges(aware_datetimes()),
            max_size=2,
        )
    )
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
        requester_company=draw(st.none() | st.sampled_from(COMPANIES)),
        recipient_company=draw(st.none() | st.sampled_from(COMPANIES)),
        created_from=start,
        created_until=end,
        where=where,
        after=draw(st.none() | st.builds(Cursor, aware_datetimes(), st.sampled_from(["t", "u"]))),
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
    values = values_of(task)
    singles = single_filters(query)
    assert query.matches(task, values) == all(s.matches(task, values) for s in singles)


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


# Validation of the new filters, and of the old ones' types


@pytest.mark.parametrize(
    ("options", "field", "says"),
    [
        ({"requester_company": ""}, "requester_company", "non-blank string"),
        ({"recipient_company": 7}, "recipient_company", "non-blank string"),
        ({"company": " "}, "company", "non-blank string"),
        ({"ball_company": 1}, "ball_company", "non-blank string"),
        ({"kind": 3}, "kind", "non-blank string"),
        ({"states": [1]}, "states", "state names"),
        ({"company": ACME, "side": "left"}, "side", "'requester', 'recipient'"),
        ({"assignee": "bea"}, "assignee", "a UserRef"),
        ({"open": 1}, "open", "True or False"),
        ({"created_from": datetime(2026, 3, 2, 9)}, "created_from", "timezone-aware"),
        ({"created_until": "2026-03-02"}, "created_until", "timezone-aware"),
        ({"created_from": T0 + MICRO, "created_until": T0}, "created_until", "is after"),
        ({"after": (T0, "t-1")}, "after", "a Cursor"),
        ({"where": [("files", 1)]}, "where", "mapping of indexed field names"),
        ({"where": {"booking-ref": "B1"}}, "where", "not an indexed field name"),
        ({"where": {"kind": "x"}}, "where", "TaskQuery's own fields"),
        ({"where": {1: "x"}}, "where", "not an indexed field name"),
        ({"where": {"files": None}}, "where.files", "None matches nothing"),
        ({"where": {"files": 1.5}}, "where.files", "whole number from -2**63"),
        ({"where": {"files": 2**63}}, "where.files", "got 9223372036854775808"),
        ({"where": {"deadline": datetime(2026, 3, 2)}}, "where.deadline", "timezone-aware"),
        ({"where": {"files": Between()}}, "where.files", "at least one end"),
        ({"where": {"files": Between(1.5)}}, "where.files", "at least one end, each"),
        ({"where": {"files": Between(1, "2")}}, "where.files", "of one type (got int and text)"),
        ({"where": {"files": Between(True, 3)}}, "where.files", "bool and int"),
        ({"where": {"files": Between(3, 1)}}, "where.files", "low end 3 is above the high end 1"),
        ({"where": {"deadline": Between(T0, T0 - MICRO)}}, "where.deadline", "is above"),
    ],
)
def test_bad_filter_is_refused_naming_the_field_and_what_is_allowed(options, field, says):
    with pytest.raises(InvalidPayload) as caught:
        TaskQuery(**options)
    assert caught.value.field == field
    assert says in str(caught.value)


def test_side_given_as_its_name_becomes_the_side():
    assert TaskQuery(company=ACME, side="requester").side is Side.REQUESTER


def test_created_range_of_one_instant_and_open_ended_ranges_are_accepted():
    assert TaskQuery(created_from=T0, created_until=T0.astimezone(MINUS_FIVE)).created_from == T0
    assert TaskQuery(where={"files": Between(high=3)}).where["files"] == Between(None, 3)


def test_queries_with_equal_conditions_are_equal_and_hash_alike():
    one = TaskQuery(where={"files": 1, "deadline": Between(T0)})
    other = TaskQuery(where={"deadline": Between(T0), "files": 1})
    assert one == other
    assert hash(one) == hash(other)
    assert {one: 1}[other] == 1
    assert TaskQuery().where == {}


class Colour(enum.StrEnum):
    RED = "red"


class Size(enum.IntEnum):
    BIG = 3


def test_conditions_of_str_and_int_subclasses_become_plain_values():
    query = TaskQuery(where={"colour": Colour.RED, "size": Between(Size.BIG)})
    assert type(query.where["colour"]) is str
    assert query.where["colour"] == "red"
    assert type(query.where["size"].low) is int  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        ("x", "text"),
        (0, "int"),
        (2**63 - 1, "int"),
        (-(2**63), "int"),
        (2**63, None),
        (True, "bool"),
        (T0, "time"),
        (datetime(2026, 1, 1), None),
        (1.0, None),
        (None, None),
        (b"x", None),
    ],
)
def test_index_tag_names_the_type_a_value_is_stored_as(value, tag):
    assert index_tag(value) == tag


# matches: the new filters


def test_requester_and_recipient_company_match_their_own_side_only():
    assert TaskQuery(requester_company=ACME).matches(REQUESTED)
    assert not TaskQuery(requester_company=SUPCO).matches(REQUESTED)
    assert TaskQuery(recipient_company=SUPCO).matches(REQUESTED)
    assert not TaskQuery(recipient_company=ACME).matches(REQUESTED)
    assert TaskQuery(requester_company=ACME, recipient_company=SUPCO).matches(REQUESTED)


def test_created_range_includes_both_ends_and_compares_instants():
    at = REQUESTED.created_at
    assert TaskQuery(created_from=at, created_until=at).matches(REQUESTED)
    assert TaskQuery(created_from=at.astimezone(MINUS_FIVE)).matches(REQUESTED)
    assert not TaskQuery(created_from=at + MICRO).matches(REQUESTED)
    assert not TaskQuery(created_until=at - MICRO).matches(REQUESTED)


def test_after_is_strict_and_breaks_a_creation_time_tie_by_id():
    at = REQUESTED.created_at  # REQUESTED is t-1; UNDATED (t-2) was created at the same time
    assert not TaskQuery(after=Cursor.of(REQUESTED)).matches(REQUESTED)
    assert TaskQuery(after=Cursor.of(REQUESTED)).matches(UNDATED)
    assert TaskQuery(after=Cursor(at - MICRO, TaskId("t-9"))).matches(REQUESTED)
    assert not TaskQuery(after=Cursor(at.astimezone(MINUS_FIVE), TaskId("t-2"))).matches(UNDATED)


def test_where_matches_equal_values_of_the_same_type_only():
    values = {"files": 1, "flag": True, "name": "7", "due": T0}
    assert TaskQuery(where={"files": 1}).matches(REQUESTED, values)
    assert not TaskQuery(where={"flag": 1}).matches(REQUESTED, values)
    assert not TaskQuery(where={"files": True}).matches(REQUESTED, values)
    assert not TaskQuery(where={"name": 7}).matches(REQUESTED, values)
    assert TaskQuery(where={"due": T0.astimezone(MINUS_FIVE)}).matches(REQUESTED, values)
    assert not TaskQuery(where={"missing": 1}).matches(REQUESTED, values)
    assert TaskQuery(where={"files": 1, "name": "7"}).matches(REQUESTED, values)
    assert not TaskQuery(where={"files": 1, "name": "8"}).matches(REQUESTED, values)


def test_between_includes_both_ends_and_refuses_other_types():
    values = {"files": 2, "due": T0, "flag": True}
    assert TaskQuery(where={"files": Between(2, 2)}).matches(REQUESTED, values)
    assert TaskQuery(where={"files": Between(None, 2)}).matches(REQUESTED, values)
    assert not TaskQuery(where={"files": Between(3)}).matches(REQUESTED, values)
    assert not TaskQuery(where={"flag": Between(0, 5)}).matches(REQUESTED, values)
    assert TaskQuery(where={"flag": Between(True)}).matches(REQUESTED, values)
    assert TaskQuery(where={"due": Between(T0 - DAY, T0)}).matches(REQUESTED, values)
    assert not TaskQuery(where={"due": Between(high=T0 - MICRO)}).matches(REQUESTED, values)
    assert not TaskQuery(where={"missing": Between(0)}).matches(REQUESTED, values)


def test_where_without_the_tasks_values_is_refused_and_other_queries_need_none():
    with pytest.raises(InvalidPayload, match="pass the task's index_values") as caught:
        TaskQuery(where={"files": 1}).matches(REQUESTED)
    assert caught.value.field == "where"
    assert TaskQuery(kind="document_request").matches(REQUESTED)


# index_values and TaskKind.indexed


def _kind(**indexed) -> TaskKind:
    return TaskKind("indexed_request", DocumentRequest, DOCUMENT_WORKFLOW, indexed=indexed)


def test_index_values_computes_each_field_and_leaves_out_none():
    kind = _kind(
        document_type=lambda t: t.data.document_type,
        due=lambda t: t.due_at,
        files=lambda t: len(t.files),
        waiting=lambda t: t.is_open,
    )
    assert index_values(kind, REQUESTED) == {
        "document_type": "ISO 9001",
        "due": REQUESTED.due_at,
        "files": 0,
        "waiting": True,
    }
    assert "due" not in index_values(kind, UNDATED)


def test_index_values_of_a_kind_without_indexed_fields_is_empty():
    assert index_values(DOCUMENT_REQUEST, REQUESTED) == {}
    assert DOCUMENT_REQUEST.indexed == {}


def test_index_values_of_str_and_int_subclasses_are_plain_values():
    kind = _kind(colour=lambda t: Colour.RED, size=lambda t: Size.BIG)
    values = index_values(kind, REQUESTED)
    assert values == {"colour": "red", "size": 3}
    assert [type(v) for v in values.values()] == [str, int]


@pytest.mark.parametrize(
    "value",
    [1.5, 2**63, datetime(2026, 3, 2, 9), b"x", ("a",)],
    ids=["float", "too-big", "naive", "bytes", "tuple"],
)
def test_index_value_of_a_wrong_type_names_the_kind_the_field_and_the_value(value):
    kind = _kind(ref=lambda t: value)
    with pytest.raises(InvalidPayload) as caught:
        index_values(kind, REQUESTED)
    message = str(caught.value)
    assert "task kind 'indexed_request'" in message
    assert "indexed field 'ref'" in message
    assert repr(value) in message
    assert "ACME-TASK-t-1" in message
    assert caught.value.field == "ref"


def test_naive_time_computed_from_aware_data_is_refused():
    kind = _kind(day=lambda t: datetime.combine(t.created_at.date(), time()))
    with pytest.raises(InvalidPayload, match="timezone-aware datetime"):
        index_values(kind, REQUESTED)


def test_failing_index_function_is_a_fault_of_the_kind():
    kind = _kind(product=lambda t: t.data.product)
    with pytest.raises(InvalidWorkflow, match="indexed field 'product' failed") as caught:
        index_values(kind, REQUESTED)
    assert isinstance(caught.value.__cause__, AttributeError)


@pytest.mark.parametrize(
    ("indexed", "says"),
    [
        ({"booking-ref": len}, "'booking-ref' is not allowed"),
        ({"": len}, "'' is not allowed"),
        ({"kind": len}, "'kind' is not allowed"),
        ({"after": len}, "TaskQuery's own fields"),
        ({1: len}, "1 is not allowed"),
        ({"ref": "booking_ref"}, "must be a function of the task"),
        ([("ref", len)], "must map field names to functions"),
    ],
)
def test_kind_with_a_bad_indexed_declaration_is_refused_naming_the_kind(indexed, says):
    with pytest.raises(InvalidWorkflow, match="task kind 'indexed_request'") as caught:
        TaskKind("indexed_request", DocumentRequest, DOCUMENT_WORKFLOW, indexed=indexed)
    assert says in str(caught.value)


def test_kind_with_indexed_fields_is_frozen_and_hashable():
    ref = len
    kind = _kind(ref=ref)
    assert hash(kind) == hash(_kind(ref=ref))
    assert kind == _kind(ref=ref)
    with pytest.raises(TypeError):
        kind.indexed["other"] = ref  # type: ignore[index]


def test_every_query_field_is_reserved():
    assert {a.name for a in attrs.fields(TaskQuery)} == QUERY_FIELDS
    assert {"where", "after", "created_from", "requester_company"} <= QUERY_FIELDS


# check_indexed: can a repository with this registry answer the query?


def test_query_without_indexed_fields_needs_no_registry():
    check_indexed(TaskQuery(kind="document_request"), None, "MyRepository")


def test_indexed_field_without_a_registry_is_refused():
    with pytest.raises(InvalidPayload, match="MyRepository cannot filter by indexed field 'files'"):
        check_indexed(TaskQuery(where={"files": 1}), None, "MyRepository")


def test_indexed_field_no_registered_kind_declares_is_refused_listing_the_known_ones():
    with pytest.raises(InvalidPayload) as caught:
        check_indexed(TaskQuery(where={"colour": "red"}), INDEXED, "MyRepository")
    message = str(caught.value)
    assert "no kind registered with MyRepository has an indexed field 'colour'" in message
    for name in ("'document_type'", "'files'", "'occurrence_key'", "'intake_message'", "'probe'"):
        assert name in message
    assert caught.value.field == "where.colour"
    plain = Registry(kind for kind in REGISTRY if not kind.indexed)
    with pytest.raises(InvalidPayload, match=r"indexed fields: \(none\)"):
        check_indexed(TaskQuery(where={"colour": "red"}), plain, "MyRepository")


def test_indexed_field_the_queried_kind_lacks_is_refused_naming_the_kind():
    query = TaskQuery(kind="document_request", where={"product": "Widget"})
    with pytest.raises(InvalidPayload, match="task kind 'document_request' has no indexed field"):
        check_indexed(query, INDEXED, "MyRepository")
    check_indexed(attrs.evolve(query, kind="product_document_request"), INDEXED, "MyRepository")
    check_indexed(attrs.evolve(query, kind=None), INDEXED, "MyRepository")
    # A kind the registry does not know: any registered kind's field may be asked for.
    check_indexed(attrs.evolve(query, kind="unknown"), INDEXED, "MyRepository")


# Cursors and pages


def test_cursor_of_a_task_is_its_creation_time_and_id():
    assert Cursor.of(REQUESTED) == Cursor(REQUESTED.created_at, TaskId("t-1"))
    assert Cursor.of(REQUESTED).key() == sort_key(REQUESTED)


@pytest.mark.parametrize(
    ("created_at", "task_id", "field"),
    [(datetime(2026, 3, 2), "t-1", "created_at"), (T0, " ", "task_id")],
)
def test_cursor_needs_an_aware_time_and_an_id(created_at, task_id, field):
    with pytest.raises(InvalidPayload) as caught:
        Cursor(created_at, task_id)
    assert caught.value.field == field


def test_next_page_continues_after_the_last_result_of_a_full_page():
    page = TaskQuery(company=ACME, limit=2)
    assert page.next_page([REQUESTED, UNDATED]) == attrs.evolve(page, after=Cursor.of(UNDATED))
    assert page.next_page([REQUESTED]) is None
    assert page.next_page([]) is None
    assert TaskQuery().next_page([REQUESTED]) is None


def test_next_page_refuses_a_page_size_of_zero_and_a_result_longer_than_the_page():
    with pytest.raises(InvalidPayload, match="limit of 1 or more"):
        TaskQuery(limit=0).next_page([])
    with pytest.raises(InvalidPayload, match="got 2 results for a page of 1"):
        TaskQuery(limit=1).next_page([REQUESTED, UNDATED])


def test_page_of_holds_the_results_and_the_next_query():
    page = Page.of(TaskQuery(limit=1), [REQUESTED])
    assert page.tasks == (REQUESTED,)
    assert page.next == TaskQuery(limit=1, after=Cursor.of(REQUESTED))
    assert Page.of(TaskQuery(limit=2), iter([REQUESTED])).next is None


def _fetch(stored, query):
    found = sorted((t for t in stored if query.matches(t, values_of(t))), key=sort_key)
    return found if query.limit is None else found[: query.limit]


@given(
    st.lists(tasks(REGISTRY), max_size=8, unique_by=lambda t: t.id),
    st.integers(1, 4),
    st.none() | st.sampled_from(COMPANIES),
)
def test_pages_of_any_size_add_up_to_the_whole_answer_in_order(stored, size, company):
    query = TaskQuery(company=company)
    seen = []
    page = attrs.evolve(query, limit=size)
    while page is not None:
        found = _fetch(stored, page)
        seen += found
        page = page.next_page(found)
    assert seen == _fetch(stored, query)


def test_probe_kind_indexes_its_data_value_as_it_is():
    probe = make_task("t-9", kind=PROBE.name, data=Probe("x"))
    assert index_values(PROBE, probe) == {"probe": "x"}
    assert isinstance(INDEXED, Registry)
    assert PROBE.name in INDEXED


def test_an_index_function_may_refuse_a_task_with_taskflows_own_error():
    def strict(task):
        msg = "no booking reference yet"
        raise InvalidPayload(msg, field="booking_ref")

    with pytest.raises(InvalidPayload, match="no booking reference yet"):
        index_values(_kind(booking_ref=strict), REQUESTED)


def test_where_reads_like_a_dict_compares_with_any_mapping_and_pickles():
    query = TaskQuery(where={"files": 1, "deadline": Between(T0)})
    assert query.where == {"files": 1, "deadline": Between(T0)}
    assert query.where != {"files": 2}
    assert query.where != [("files", 1)]
    assert "where={'files': 1, 'deadline': Between(" in repr(query)
    assert pickle.loads(pickle.dumps(query)) == query
