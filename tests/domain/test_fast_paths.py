"""The engine's and validators' fast paths give the same answers as the general ones they replace."""

from __future__ import annotations

import enum
import typing
import unicodedata
from collections import abc
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal, NewType

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskflow.domain.limits import Limits
from taskflow.domain.validators import _compile, _conforms, _control, tuple_of, typed_fields
from taskflow.domain.values import CompanyId, TaskId
from taskflow.errors import InvalidPayload, LimitExceeded

Code = NewType("Code", str)


class Colour(enum.Enum):
    RED = "red"


HINTS: list[Any] = [
    Any,
    None,
    type(None),
    str,
    int,
    float,
    bool,
    Decimal,
    date,
    datetime,
    Colour,
    Code,
    str | None,
    int | None,
    date | None,
    int | str,
    int | str | None,
    tuple[str, ...],
    tuple[int, ...],
    tuple[Any, ...],
    tuple[int, str],
    tuple[()],
    frozenset[str],
    frozenset[int],
    frozenset,
    set[int],
    abc.Set[str],
    dict[str, int],
    abc.Mapping[str, Any],
    list[int],
    Literal["a", 1],
    tuple[int, ...] | None,
    typing.Optional[frozenset[Code]],  # noqa: UP045 (the old spelling is a hint too)
]

VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=3)
    | st.sampled_from(["a", Colour.RED, Decimal(1), date(2030, 1, 1)])
    | st.sampled_from([datetime(2030, 1, 1), datetime(2030, 1, 1, tzinfo=UTC)]),
    lambda inner: (
        st.lists(inner, max_size=3).map(tuple)
        | st.frozensets(st.integers() | st.text(max_size=2), max_size=3)
        | st.dictionaries(st.text(max_size=2), inner, max_size=2)
        | st.lists(inner, max_size=2)
    ),
    max_leaves=6,
)


@pytest.mark.parametrize("hint", HINTS, ids=repr)
@given(value=VALUES)
def test_a_compiled_hint_tells_what_the_hint_tells(hint: Any, value: Any) -> None:
    assert _compile(hint)(value) is _conforms(value, hint)


# --- Limits: the walk that keeps places unspelled refuses exactly what the path walk refused ---


def _reference_walk(limits: Limits, root: str, value: Any, action: str = "") -> None:
    """The walk as it was: every child's path spelled out as it is pushed."""

    def text_limit(path: str) -> int:
        name = path.rsplit(".", 1)[-1]
        if path.startswith("payload.") and path.count(".") == 1:
            if name == "text":
                return limits.comment
            if name in ("subject", "body"):
                return limits.subject if name == "subject" else limits.body
        return limits.text

    def children(path: str, item: Any) -> list[tuple[str, Any]] | None:
        if attrs.has(type(item)):
            return [(f"{path}.{a.name}", getattr(item, a.name)) for a in attrs.fields(type(item))]
        if isinstance(item, abc.Mapping):
            return [(f"{path}[{k!r:.40}]", v) for k, v in item.items()]
        if isinstance(item, list | tuple | set | frozenset):
            return [(f"{path}[{i}]", v) for i, v in enumerate(item)]
        return None

    stack: list[tuple[str, Any, int]] = [(root, value, 1)]
    while stack:
        path, item, depth = stack.pop()
        if isinstance(item, str):
            if len(item) > text_limit(path):
                raise LimitExceeded(path, text_limit(path), len(item), action=action)
            continue
        found = children(path, item)
        if found is None:
            continue
        if depth > limits.depth:
            raise LimitExceeded(path, limits.depth, depth, unit="levels", action=action)
        stack.extend((p, v, depth + 1) for p, v in found)


@attrs.frozen
class _Node:
    text: str
    subject: str
    items: tuple[Any, ...]


TEXTS = st.text(alphabet="ab", max_size=6)
TREES = st.recursive(
    TEXTS | st.integers() | st.none() | st.dates(),
    lambda inner: (
        st.lists(inner, max_size=3).map(tuple)
        | st.lists(inner, max_size=2)
        | st.dictionaries(st.sampled_from(["text", "k.x", "b"]), inner, max_size=2)
        | st.builds(_Node, TEXTS, TEXTS, st.lists(inner, max_size=2).map(tuple))
    ),
    max_leaves=8,
)


def _refusal(walk: Any) -> tuple[str, int, int] | None:
    try:
        walk()
    except LimitExceeded as exc:
        return (exc.field, exc.limit, exc.size)
    return None


@given(
    value=TREES,
    root=st.sampled_from(["payload", "data"]),
    sizes=st.tuples(*[st.integers(1, 5)] * 5),
)
def test_limits_refuse_the_same_value_at_the_same_place_as_before(
    value: Any, root: str, sizes: tuple[int, ...]
) -> None:
    comment, subject, body, text, depth = sizes
    limits = Limits(subject=subject, body=body, comment=comment, text=text, depth=depth)
    expected = _refusal(lambda: _reference_walk(limits, root, value))
    assert _refusal(lambda: limits._walk(root, value)) == expected


@given(st.text())
def test_an_id_has_control_characters_exactly_when_one_is_of_those_categories(value: str) -> None:
    scan = any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value)
    assert _control(value) is scan


@given(st.lists(st.sampled_from(["a", "b", "c"]), max_size=4).map(tuple))
def test_a_unique_tuple_keeps_each_item_once_in_order(value: tuple[str, ...]) -> None:
    assert tuple_of(str, value, "X.items", unique=True) == tuple(dict.fromkeys(value))


def test_a_typed_field_refuses_what_typed_refuses_naming_the_field() -> None:
    @attrs.frozen(field_transformer=typed_fields)
    class Reading:
        when: date | None = None
        count: int = 0

    assert Reading(date(2030, 1, 1), 2).count == 2
    for bad, field in (({"when": "2030-01-01"}, "when"), ({"count": True}, "count")):
        with pytest.raises(InvalidPayload) as raised:
            Reading(**bad)
        assert raised.value.field == field
        assert "Reading." + field in str(raised.value)


# --- the engine's per-state moves: worked out once, never shared between states or workflows ---


def test_a_move_known_from_one_state_is_still_refused_from_another() -> None:
    from taskflow import PDF, Actor, FileRef, NewTask, apply, open_task
    from taskflow.errors import ActionNotAllowed
    from taskflow.kinds.document import DOCUMENT_REQUEST, DocumentRequest, UploadDocument

    buyer, supplier = Actor("bea", "acme"), Actor("sam", "supco")
    at = datetime(2026, 5, 4, 8, 30, tzinfo=UTC)
    flow = DOCUMENT_REQUEST.workflow
    draft = NewTask("ISO", CompanyId("supco"), DocumentRequest("ISO"))
    task = open_task(flow, "document_request", draft, buyer, at, TaskId("t-1"), "N-1").task
    upload = UploadDocument(FileRef("a.pdf", PDF, 1, "sha256:x", "k"))
    uploaded = apply(flow, task, "upload", supplier, at, upload).task  # known from 'requested'
    assert uploaded.state == "uploaded"
    with pytest.raises(ActionNotAllowed) as raised:
        apply(flow, uploaded, "upload", supplier, at, upload)
    assert "requested" in str(raised.value)
    assert "rejected" in str(raised.value)
    assert uploaded.version == 2  # nothing changed
    # Another workflow of the same name, whose 'upload' emits another event, is its own.
    other = attrs.evolve(
        flow,
        transitions=[
            attrs.evolve(t, events=("other",)) if t.name == "upload" else t
            for t in flow.transitions
        ],
    )
    events = apply(other, task, "upload", supplier, at, upload).events
    assert [e.name for e in events] == ["other"]


def test_an_opened_task_given_its_id_and_number_later_is_the_task_opened_with_them() -> None:
    from taskflow import Actor, NewTask, open_task
    from taskflow.domain.engine import opened_as
    from taskflow.domain.task import Cause
    from taskflow.kinds.document import DOCUMENT_REQUEST, DocumentRequest

    buyer = Actor("bea", "acme")
    at = datetime(2026, 5, 4, 8, 30, tzinfo=UTC)
    flow = DOCUMENT_REQUEST.workflow
    draft = NewTask("ISO", CompanyId("supco"), DocumentRequest("ISO"))
    cause = Cause("t-9@1")
    checked = open_task(flow, "document_request", draft, buyer, at, TaskId("-"), "-")
    direct = open_task(
        flow, "document_request", draft, buyer, at, TaskId("t-9"), "ACME-TASK-9", cause=cause
    )
    later = opened_as(checked, TaskId("t-9"), "ACME-TASK-9", cause)
    assert later == direct
    assert later.task.history == direct.task.history
    assert later.task.private_authors == direct.task.private_authors
    with pytest.raises(InvalidPayload):
        opened_as(checked, TaskId(" "), "ACME-TASK-9", cause)


def test_tasks_of_the_same_short_lineage_share_one_lineage_tuple() -> None:
    from taskflow import Actor, AddComment, NewTask, apply, open_task
    from taskflow.kinds.document import DOCUMENT_REQUEST, DocumentRequest

    buyer = Actor("bea", "acme")
    at = datetime(2026, 5, 4, 8, 30, tzinfo=UTC)
    flow = DOCUMENT_REQUEST.workflow
    commented = []
    for n in (1, 2):
        draft = NewTask("ISO", CompanyId("supco"), DocumentRequest("ISO"))
        task = open_task(flow, "document_request", draft, buyer, at, TaskId(f"t-{n}"), "N").task
        commented.append(apply(flow, task, "comment", buyer, at, AddComment("hi")).task)
    first, second = (t._lineage for t in commented)
    assert first == (1, 0)
    assert first is second


def test_the_evolver_copies_as_attrs_evolve_does_and_checks_only_what_changed() -> None:
    from taskflow.domain._fast import evolver
    from taskflow.kinds.document import DocumentRequest

    evolve = evolver(DocumentRequest)
    data = DocumentRequest("ISO", requires_expiry=True)
    changed = evolve(data, reject_reason="blurred", expires_on=date(2030, 1, 1))
    assert changed == attrs.evolve(data, reject_reason="blurred", expires_on=date(2030, 1, 1))
    with pytest.raises(InvalidPayload) as raised:
        evolve(data, expires_on="2030-01-01")
    assert raised.value.field == "expires_on"
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        evolve(data, colour="red")
