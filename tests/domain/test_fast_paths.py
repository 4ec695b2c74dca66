"""The engine's and validators' fast paths give the same answers as the general ones they replace."""

from __future__ import annotations

import enum
import typing
from collections import abc
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal, NewType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskflow.domain.validators import _compile, _conforms

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
