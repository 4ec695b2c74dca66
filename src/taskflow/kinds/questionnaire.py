"""Questionnaires (Q1-Q4): a requester's questions to a supplier, one question task per question.

The questionnaire task holds the questions as sent and mirrors the state of each question
task; its own state follows them: unanswered, in progress, complete, accepted. The service
layer (`taskflow.questionnaires`, `TaskService.send_questionnaire` and the other
questionnaire calls) opens the tasks and records every change of a question's state here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

import attrs

from taskflow.domain.common import common_actions
from taskflow.domain.registry import TaskKind
from taskflow.domain.task import NewTask, Task
from taskflow.domain.validators import excerpt, tuple_of, typed_fields
from taskflow.domain.values import Actor, Side, TaskId, not_blank
from taskflow.domain.workflow import Audience, Guard, State, Transition, Workflow
from taskflow.errors import InvalidPayload
from taskflow.kinds.question import (
    ACCEPTED,
    ANSWERED,
    QUESTION_WORKFLOW,
    UNANSWERED,
    Question,
    _clip,
    _listed,
    _tuple,
    check_questions,
)

__all__ = [
    "ATTACH_QUESTIONS",
    "COMPLETE",
    "IN_PROGRESS",
    "MARK_ACCEPTED",
    "MARK_COMPLETE",
    "MARK_IN_PROGRESS",
    "MARK_UNANSWERED",
    "PART_OF",
    "QUESTIONNAIRE",
    "QUESTIONNAIRE_WORKFLOW",
    "TRACK",
    "AttachQuestions",
    "QuestionChange",
    "Questionnaire",
    "overall_state",
    "tracking_action",
]

# The service records the question tasks once, right after sending, then mirrors every change
# of a question's state with one of the tracking actions. All of them are derived state: only
# the system actor of the questionnaires service takes them (`Transition.system_only`).
ATTACH_QUESTIONS = "attach_questions"
TRACK = "track"
MARK_UNANSWERED = "mark_unanswered"
MARK_IN_PROGRESS = "mark_in_progress"
MARK_COMPLETE = "mark_complete"
MARK_ACCEPTED = "mark_accepted"

PART_OF = "part_of"
"""The `Link.relation` from a question task to its questionnaire task."""

# The questionnaire's own states beyond those it shares with questions (unanswered, accepted).
IN_PROGRESS = "in_progress"
COMPLETE = "complete"
_DONE = frozenset({ANSWERED, ACCEPTED})

REQUESTER = Side.REQUESTER
RECIPIENT = Side.RECIPIENT

# --- questionnaire tasks -------------------------------------------------------------------


def _ids(value: Any) -> tuple[TaskId, ...]:
    return tuple_of(str, _tuple(value, "question_ids"), "question_ids")


def _states(value: Any) -> tuple[str, ...]:
    return tuple_of(str, _tuple(value, "question_states"), "question_states")


def _questions(value: Any) -> tuple[Question, ...]:
    if isinstance(value, Question):
        msg = "Questionnaire.questions must be a sequence of Question, got one Question"
        raise InvalidPayload(msg, field="questions")
    return _tuple(value, "questions")


@attrs.frozen(field_transformer=typed_fields)
class Questionnaire:
    """Data of a questionnaire: its title, the questions as sent, and their tasks and states.

    `question_ids` lists the question tasks in the order of `questions` once they are attached;
    `question_states` mirrors each one's state, so overviews read only the questionnaire.
    """

    title: str = attrs.field(validator=not_blank)
    questions: tuple[Question, ...] = attrs.field(converter=_questions)
    question_ids: tuple[TaskId, ...] = attrs.field(default=(), converter=_ids)
    question_states: tuple[str, ...] = attrs.field(default=(), converter=_states)

    def __attrs_post_init__(self) -> None:
        if len(self.question_states) != len(self.question_ids):
            msg = (
                f"Questionnaire has {len(self.question_ids)} question ids but "
                f"{len(self.question_states)} question states; they go in pairs"
            )
            raise InvalidPayload(msg, field="question_states")
        if self.question_ids and len(self.question_ids) != len(self.questions):
            msg = (
                f"Questionnaire has {len(self.questions)} questions but "
                f"{len(self.question_ids)} question ids"
            )
            raise InvalidPayload(msg, field="question_ids")

    @property
    def total(self) -> int:
        """Return the number of questions."""
        return len(self.questions)

    @property
    def answered(self) -> int:
        """Return how many questions are answered (accepted ones included)."""
        return sum(1 for s in self.question_states if s in _DONE)

    def index_of(self, question_id: TaskId) -> int | None:
        """Return the position of a question task, or None if it is not one of this questionnaire's."""
        try:
            return self.question_ids.index(question_id)
        except ValueError:
            return None


@attrs.frozen(field_transformer=typed_fields)
class AttachQuestions:
    """Payload of `attach_questions`: the question tasks, in the order of the questions."""

    question_ids: tuple[TaskId, ...] = attrs.field(converter=_ids)


@attrs.frozen(field_transformer=typed_fields)
class QuestionChange:
    """Payload of the tracking actions: one question task is now in `state`."""

    question_id: TaskId = attrs.field(validator=not_blank)
    state: str = attrs.field(validator=not_blank)


def overall_state(question_states: Iterable[str]) -> str:
    """Return the questionnaire state that question states add up to.

    Unanswered while every question is; complete when every question is answered or
    accepted; accepted when every answer is accepted; in progress otherwise (a question sent
    back counts as work begun).
    """
    states = tuple(question_states)
    if not states or all(s == UNANSWERED for s in states):
        return UNANSWERED
    if all(s == ACCEPTED for s in states):
        return ACCEPTED
    if all(s in _DONE for s in states):
        return COMPLETE
    return IN_PROGRESS


# A question task can be in any of its workflow's states: a mirror records whichever state the
# question is in now (it may catch up over several actions at once, or repair a wrong record).
_QUESTION_STATES: frozenset[str] = frozenset(QUESTION_WORKFLOW.state_names)

# The tracking action whose target is each questionnaire state.
_MARK: dict[str, str] = {
    UNANSWERED: MARK_UNANSWERED,
    IN_PROGRESS: MARK_IN_PROGRESS,
    COMPLETE: MARK_COMPLETE,
    ACCEPTED: MARK_ACCEPTED,
}


def _changed(states: tuple[str, ...], index: int, state: str) -> tuple[str, ...]:
    return (*states[:index], state, *states[index + 1 :])


def _outcomes(data: Questionnaire) -> Iterator[str]:
    states = data.question_states
    for i in range(len(states)):
        for new in _QUESTION_STATES:
            yield overall_state(_changed(states, i, new))


def tracking_action(task: Task, change: QuestionChange) -> str:
    """Return the questionnaire action that records `change`: `track` if its state stays."""
    data: Questionnaire = task.data
    index = data.index_of(change.question_id)
    if index is None:
        return TRACK
    after = overall_state(_changed(data.question_states, index, change.state))
    return TRACK if after == task.state else _MARK.get(after, TRACK)


def _leads_to(target: str | None) -> Guard:
    def guard(task: Task, actor: Actor) -> str | None:
        data: Questionnaire = task.data
        if not data.question_ids:
            return f"questionnaire {task.number} has no question tasks attached yet"
        goal = task.state if target is None else target
        if goal in _outcomes(data):
            return None
        return f"no change of one question's state leads questionnaire {task.number} to '{goal}'"

    return guard


def _check_change(
    action: str, target: str | None
) -> Callable[[Task, QuestionChange, Actor, datetime], None]:
    def check(task: Task, payload: QuestionChange, actor: Actor, at: datetime) -> None:
        data: Questionnaire = task.data
        where = f"'{action}' on questionnaire {task.number}"
        index = data.index_of(payload.question_id)
        if index is None:
            msg = (
                f"{where}: '{payload.question_id}' is not one of its question tasks "
                f"({_listed(data.question_ids)})"
            )
            raise InvalidPayload(msg, field="question_id", action=action)
        if payload.state not in _QUESTION_STATES:
            msg = (
                f"{where}: '{payload.state}' is not a state of a question task; "
                f"states: {_listed(sorted(_QUESTION_STATES))}"
            )
            raise InvalidPayload(msg, field="state", action=action)
        after = overall_state(_changed(data.question_states, index, payload.state))
        goal = task.state if target is None else target
        if after != goal:
            right = TRACK if after == task.state else _MARK[after]
            msg = (
                f"{where}: with question {index} '{payload.state}' the questionnaire is "
                f"'{after}', but '{action}' leads to '{goal}'; take '{right}'"
            )
            raise InvalidPayload(msg, field="state", action=action)

    return check


def _record(task: Task, payload: QuestionChange, actor: Actor, at: datetime) -> dict[str, Any]:
    data: Questionnaire = task.data
    index = data.index_of(payload.question_id)
    assert index is not None  # the check found it
    states = _changed(data.question_states, index, payload.state)
    return {"data": attrs.evolve(data, question_states=states)}


def _not_attached(task: Task, actor: Actor) -> str | None:
    if task.data.question_ids:
        return f"the question tasks of questionnaire {task.number} are already attached"
    return None


def _check_attach(task: Task, payload: AttachQuestions, actor: Actor, at: datetime) -> None:
    ids = payload.question_ids
    where = f"'{ATTACH_QUESTIONS}' on questionnaire {task.number}"
    total = task.data.total
    if len(ids) != total:
        msg = f"{where} needs {total} question task ids, one per question in order; got {len(ids)}"
        raise InvalidPayload(msg, field="question_ids", action=ATTACH_QUESTIONS)
    bad = [i for i in ids if not isinstance(i, str) or not i.strip()]
    twice = sorted({i for i in ids if ids.count(i) > 1 and i not in bad})
    if bad or twice or task.id in ids:
        why = (
            f"blank or non-text ids {excerpt(bad)}"
            if bad
            else f"ids named twice {excerpt(twice)}"
            if twice
            else "the questionnaire's own id"
        )
        msg = f"{where}: question task ids must be distinct ids of other tasks; got {why}"
        raise InvalidPayload(msg, field="question_ids", action=ATTACH_QUESTIONS)


def _attach(task: Task, payload: AttachQuestions, actor: Actor, at: datetime) -> dict[str, Any]:
    ids = payload.question_ids
    data = attrs.evolve(task.data, question_ids=ids, question_states=(UNANSWERED,) * len(ids))
    return {"data": data}


def _open_questionnaire(draft: NewTask, actor: Actor, at: datetime) -> None:
    data: Questionnaire = draft.data
    if data.question_ids:
        msg = (
            f"questionnaire {excerpt(data.title)} is sent without question task ids; "
            f"'{ATTACH_QUESTIONS}' records them"
        )
        raise InvalidPayload(msg, field="question_ids", action="open")
    if not data.questions:
        msg = f"questionnaire {excerpt(data.title)} has no questions; send at least one"
        raise InvalidPayload(msg, field="questions", action="open")
    check_questions(data.questions, where=f"questionnaire {_clip(data.title)!r}")


def _tracking(name: str, sources: set[str], target: str | None, **extra: Any) -> Transition:
    # Derived from the question tasks: the requester's system actor alone records them.
    return Transition(
        name,
        sources,
        target,
        REQUESTER,
        system_only=True,
        payload=QuestionChange,
        guard=_leads_to(target),
        check=_check_change(name, target),
        effect=_record,
        **extra,
    )


QUESTIONNAIRE_WORKFLOW = Workflow(
    name="questionnaire",
    description=(
        "A requester's questionnaire to a supplier; its state follows its question tasks "
        "(the service records every change of theirs)."
    ),
    initial=UNANSWERED,
    open_check=_open_questionnaire,
    states=(
        State(UNANSWERED, waiting_on=RECIPIENT, label="Unanswered"),
        State(IN_PROGRESS, waiting_on=RECIPIENT, label="In progress"),
        State(COMPLETE, waiting_on=REQUESTER, label="Complete"),
        State(ACCEPTED, final=True, label="Accepted"),
    ),
    transitions=(
        Transition(
            ATTACH_QUESTIONS,
            UNANSWERED,
            None,
            REQUESTER,
            system_only=True,
            payload=AttachQuestions,
            guard=_not_attached,
            check=_check_attach,
            effect=_attach,
            events=("questions_attached",),
            notify=Audience.NOBODY,
            description="Record the question tasks, in order (right after sending)",
        ),
        _tracking(
            TRACK,
            {UNANSWERED, IN_PROGRESS, COMPLETE, ACCEPTED},
            None,
            events=("question_tracked",),
            notify=Audience.NOBODY,
            description="Record a question's new state; the questionnaire's stays",
        ),
        _tracking(
            MARK_UNANSWERED,
            {IN_PROGRESS, COMPLETE, ACCEPTED},
            UNANSWERED,
            events=("questionnaire_unanswered",),
            notify=Audience.NOBODY,
            description="Record a question's new state: no question is answered (a repair)",
        ),
        _tracking(
            MARK_IN_PROGRESS,
            {UNANSWERED, COMPLETE, ACCEPTED},
            IN_PROGRESS,
            events=("questionnaire_in_progress",),
            notify=Audience.NOBODY,
            description="Record a question's new state: work has begun, not all are answered",
        ),
        _tracking(
            MARK_COMPLETE,
            {UNANSWERED, IN_PROGRESS, ACCEPTED},
            COMPLETE,
            events=("questionnaire_complete",),
            notify=Audience.EVERYONE,
            description="Record a question's new state: every question is answered",
        ),
        _tracking(
            MARK_ACCEPTED,
            {UNANSWERED, IN_PROGRESS, COMPLETE},
            ACCEPTED,
            events=("questionnaire_accepted",),
            notify=Audience.EVERYONE,
            description="Record a question's new state: every answer is accepted",
        ),
        *common_actions(),
    ),
)

QUESTIONNAIRE = TaskKind(
    "questionnaire",
    Questionnaire,
    QUESTIONNAIRE_WORKFLOW,
    "A questionnaire sent to a supplier, one question task per question (Q1-Q4)",
)
