"""Evaluations (SP4): the requester sends its evaluation of a supplier; the supplier acknowledges it."""

from __future__ import annotations

import math
from typing import Any

import attrs

from taskflow.domain.common import common_actions
from taskflow.domain.registry import TaskKind
from taskflow.domain.validators import excerpt, typed_fields
from taskflow.domain.values import Side, not_blank
from taskflow.domain.workflow import State, Transition, Workflow
from taskflow.errors import InvalidPayload

__all__ = [
    "ACKNOWLEDGE",
    "EVALUATION",
    "EVALUATION_WORKFLOW",
    "Criterion",
    "Evaluation",
]

ACKNOWLEDGE = "acknowledge"


def _number(value: Any, where: str) -> float:
    field = where.rpartition(".")[2]
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"{where} must be a number, got {excerpt(value)}"
        raise InvalidPayload(msg, field=field)
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        msg = f"{where} must be a finite number, got {excerpt(value)}"
        raise InvalidPayload(msg, field=field)
    return number


# One named converter per field, so the message names the field (and mypy's attrs plugin
# accepts them: it takes only named functions as converters).
def _criterion_score(value: Any) -> float:
    return _number(value, "Criterion.score")


def _score(value: Any) -> float:
    return _number(value, "Evaluation.score")


def _min_score(value: Any) -> float:
    return _number(value, "Evaluation.min_score")


def _max_score(value: Any) -> float:
    return _number(value, "Evaluation.max_score")


@attrs.frozen(field_transformer=typed_fields)
class Criterion:
    """One criterion of an evaluation: its name, the score given, and a comment on it."""

    name: str = attrs.field(validator=not_blank)
    score: float = attrs.field(converter=_criterion_score)
    comment: str = ""


def _criteria(value: Any) -> tuple[Criterion, ...]:
    if isinstance(value, str | Criterion):
        msg = f"Evaluation.criteria must be a tuple of Criterion, got {excerpt(value)}"
        raise InvalidPayload(msg, field="criteria")
    try:
        items = tuple(value)
    except TypeError:
        msg = f"Evaluation.criteria must be a tuple of Criterion, got {type(value).__name__}"
        raise InvalidPayload(msg, field="criteria") from None
    for i, item in enumerate(items):
        if not isinstance(item, Criterion):
            msg = f"Evaluation.criteria[{i}] must be a Criterion, got {type(item).__name__}"
            raise InvalidPayload(msg, field=f"criteria[{i}]")
    return items


def _scale_word(low: float, high: float) -> str:
    return f"{low:g}..{high:g}"


@attrs.frozen(field_transformer=typed_fields)
class Evaluation:
    """Data of an evaluation: the overall score, the score per criterion, and comments.

    Every score lies on the scale `min_score..max_score` (0..100 unless declared); criterion
    names are non-blank and unique, ignoring case and surrounding spaces.
    """

    score: float = attrs.field(converter=_score)
    criteria: tuple[Criterion, ...] = attrs.field(default=(), converter=_criteria)
    comments: str = ""
    min_score: float = attrs.field(default=0.0, converter=_min_score)
    max_score: float = attrs.field(default=100.0, converter=_max_score)

    def __attrs_post_init__(self) -> None:
        low, high = self.min_score, self.max_score
        if low >= high:
            msg = f"Evaluation scale {_scale_word(low, high)} is empty: min_score must be below max_score"
            raise InvalidPayload(msg, field="max_score")
        scale = _scale_word(low, high)
        if not low <= self.score <= high:
            msg = f"Evaluation.score {self.score:g} is outside the scale {scale}"
            raise InvalidPayload(msg, field="score")
        seen: dict[str, int] = {}
        for i, criterion in enumerate(self.criteria):
            if not low <= criterion.score <= high:
                msg = (
                    f"Evaluation criterion '{criterion.name}' scores {criterion.score:g}, "
                    f"outside the scale {scale}"
                )
                raise InvalidPayload(msg, field=f"criteria[{i}].score")
            key = criterion.name.strip().casefold()
            if key in seen:
                msg = (
                    f"Evaluation names criterion '{criterion.name.strip()}' twice "
                    f"(criteria[{seen[key]}] and criteria[{i}])"
                )
                raise InvalidPayload(msg, field=f"criteria[{i}].name")
            seen[key] = i

    def criterion(self, name: str) -> Criterion | None:
        """Return the criterion called `name` (ignoring case and surrounding spaces), or None."""
        key = name.strip().casefold()
        return next((c for c in self.criteria if c.name.strip().casefold() == key), None)


RECIPIENT = Side.RECIPIENT

EVALUATION_WORKFLOW = Workflow(
    name="evaluation",
    description="The requester sends its evaluation of the supplier; the supplier acknowledges it.",
    initial="sent",
    states=(
        State("sent", waiting_on=RECIPIENT, label="Awaiting acknowledgement"),
        State("done", final=True, label="Done"),
    ),
    transitions=(
        Transition(
            ACKNOWLEDGE,
            "sent",
            "done",
            RECIPIENT,
            events=("evaluation_acknowledged",),
            description="Acknowledge the results (Done)",
        ),
        *common_actions(),
    ),
)

EVALUATION = TaskKind(
    "evaluation",
    Evaluation,
    EVALUATION_WORKFLOW,
    "Send a supplier the results of its evaluation, to acknowledge (SP4)",
)
