"""Questions (Q1-Q3): one task per question, answered by the supplier, reviewed by the requester.

A question's data is its definition (text, answer type, options, required) with the answer
sent last. Questions are usually sent as a questionnaire (`taskflow.kinds.questionnaire`,
`TaskService.send_questionnaire`); a question task may also be opened on its own.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import attrs

from taskflow.domain.common import common_actions
from taskflow.domain.registry import TaskKind
from taskflow.domain.task import NewTask, Task
from taskflow.domain.validators import excerpt, one_of, typed_fields
from taskflow.domain.values import Actor, CompanyId, FileRef, Side, UserRef, not_blank
from taskflow.domain.workflow import Audience, State, Transition, Workflow
from taskflow.errors import InvalidPayload, InvalidQuestionnaire

__all__ = [
    "ACCEPT",
    "ACCEPTED",
    "ANSWER",
    "ANSWERED",
    "DELEGATE",
    "QUESTION",
    "QUESTION_WORKFLOW",
    "SEND_BACK",
    "SENT_BACK",
    "UNANSWERED",
    "Answer",
    "Delegate",
    "Question",
    "QuestionType",
    "SendBack",
    "check_questions",
]

# Question actions.
ANSWER = "answer"
DELEGATE = "delegate"
ACCEPT = "accept"
SEND_BACK = "send_back"

# The states of a question task; the names are part of the stored data.
UNANSWERED = "unanswered"
ANSWERED = "answered"
SENT_BACK = "sent_back"
ACCEPTED = "accepted"


class QuestionType(enum.StrEnum):
    """What kind of answer a question takes."""

    FREE_TEXT = "free_text"
    SINGLE_CHOICE = "single_choice"
    MULTIPLE_CHOICE = "multiple_choice"
    YES_NO = "yes_no"
    NUMBER = "number"
    DATE = "date"
    FILE = "file"

    @property
    def has_options(self) -> bool:
        """Tell whether questions of this type list options to choose from."""
        return self in (QuestionType.SINGLE_CHOICE, QuestionType.MULTIPLE_CHOICE)

    @property
    def label(self) -> str:
        """Return the type's name for people: 'single choice', 'yes/no', ..."""
        return "yes/no" if self is QuestionType.YES_NO else self.value.replace("_", " ")


# --- answers -------------------------------------------------------------------------------

# Digits with an optional sign, decimal point and exponent; no thousands separators.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Numbers beyond these bounds are refused rather than written out in full.
_MAX_DIGITS = 40
_MAX_EXPONENT = 40
_YES = frozenset({"yes", "true"})
_NO = frozenset({"no", "false"})


def _not_a_number(value: Any) -> InvalidPayload:
    msg = (
        f"{excerpt(value)} is not a number; write digits with an optional sign and decimal point, "
        "like '1250' or '-3.5' (no thousands separators)"
    )
    return InvalidPayload(msg, field="number")


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise _not_a_number(value)
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        # repr gives the shortest text that reads back as the same float: 0.1 stays 0.1.
        number = Decimal(repr(value))
    elif isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        number = Decimal(value.strip())
    else:
        raise _not_a_number(value)
    if not number.is_finite():
        raise _not_a_number(value)
    return number


def _number_text(value: Any) -> str | None:
    """Attrs converter: a number given as int, float, Decimal or text, as canonical decimal text."""
    if value is None:
        return None
    number = _decimal(value)
    if number.is_zero():
        return "0"
    number = number.normalize()
    if len(number.as_tuple().digits) > _MAX_DIGITS or abs(number.adjusted()) > _MAX_EXPONENT:
        msg = (
            f"{excerpt(value)} is out of range: a number answer has at most {_MAX_DIGITS} digits "
            f"and lies between 1e-{_MAX_EXPONENT} and 1e{_MAX_EXPONENT}"
        )
        raise InvalidPayload(msg, field="number")
    return format(number, "f")


def _day(value: Any) -> date | None:
    """Attrs converter: a calendar date, given as a `date` or as 'YYYY-MM-DD' text."""
    if value is None:
        return None
    if isinstance(value, datetime):
        msg = f"{excerpt(value)} is a date and time; a date answer takes a date only, like '2024-05-01'"
        raise InvalidPayload(msg, field="day")
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    msg = f"{excerpt(value)} is not a date; write it as YYYY-MM-DD, like '2024-05-01'"
    raise InvalidPayload(msg, field="day")


def _yes_no(value: Any) -> bool | None:
    """Attrs converter: True/False, or the words yes/no (true/false), any case."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().casefold()
        if word in _YES or word in _NO:
            return word in _YES
    msg = f"{excerpt(value)} is not yes or no; give True or False, or the words 'yes' or 'no'"
    raise InvalidPayload(msg, field="yes_no")


def _text(value: Any) -> str | None:
    """Attrs converter: text without surrounding white space; blank text is no answer."""
    if value is None:
        return None
    if not isinstance(value, str):
        msg = f"a text answer must be a string, got {type(value).__name__}"
        raise InvalidPayload(msg, field="text")
    return value.strip() or None


def _choices(value: Any) -> tuple[str, ...]:
    """Attrs converter: one option (a string) or several, as a tuple."""
    if value is None:
        return ()
    items: tuple[Any, ...] = (value,) if isinstance(value, str) else _tuple(value, "choices")
    for item in items:
        if not isinstance(item, str) or not item.strip():
            msg = f"each choice must be a non-blank string, got {excerpt(item)}"
            raise InvalidPayload(msg, field="choices")
    return items


def _tuple(value: Any, field: str) -> tuple[Any, ...]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        what = " (a str is not one)" if isinstance(value, str) else ""
        msg = f"{field} must be a sequence{what}, got {type(value).__name__}"
        raise InvalidPayload(msg, field=field)
    return tuple(value)


def _file(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, FileRef):
        msg = f"a file answer must be a FileRef, got {type(value).__name__}"
        raise InvalidPayload(msg, field="file")


_ANSWER_FIELDS = ("text", "choices", "yes_no", "number", "day", "file")


@attrs.frozen(field_transformer=typed_fields)
class Answer:
    """The answer to one question: one field set, the one of the question's type; none skips it.

    `text` answers free text; `choices` a single choice (one option) or a multiple choice;
    `yes_no` a yes/no question; `number` a number, kept as canonical decimal text ("1250.5");
    `day` a date; `file` a file. An answer with no field set is blank: it skips an optional
    question and is refused for a required one.
    """

    text: str | None = attrs.field(default=None, converter=_text)
    choices: tuple[str, ...] = attrs.field(default=(), converter=_choices)
    yes_no: bool | None = attrs.field(default=None, converter=_yes_no)
    number: str | None = attrs.field(default=None, converter=_number_text)
    day: date | None = attrs.field(default=None, converter=_day)
    file: FileRef | None = attrs.field(default=None, validator=_file)

    def __attrs_post_init__(self) -> None:
        given = self.fields_set
        if len(given) > 1:
            msg = f"an Answer holds one value, got {' and '.join(given)}"
            raise InvalidPayload(msg, field=given[1])

    @property
    def fields_set(self) -> tuple[str, ...]:
        """Return the names of the fields that hold a value (none, or one)."""
        return tuple(name for name in _ANSWER_FIELDS if getattr(self, name) not in (None, ()))

    @property
    def is_blank(self) -> bool:
        """Tell whether the answer holds nothing (a skipped optional question)."""
        return not self.fields_set

    @property
    def value(self) -> str | tuple[str, ...] | bool | Decimal | date | FileRef | None:
        """Return the answer as a Python value (a `Decimal` for a number), or None when blank."""
        if self.number is not None:
            return Decimal(self.number)
        for name in _ANSWER_FIELDS:
            held = getattr(self, name)
            if held not in (None, ()):
                return held  # type: ignore[no-any-return]
        return None


# The field each question type's answer uses.
_FIELD_OF: dict[QuestionType, str] = {
    QuestionType.FREE_TEXT: "text",
    QuestionType.SINGLE_CHOICE: "choices",
    QuestionType.MULTIPLE_CHOICE: "choices",
    QuestionType.YES_NO: "yes_no",
    QuestionType.NUMBER: "number",
    QuestionType.DATE: "day",
    QuestionType.FILE: "file",
}


# --- questions -----------------------------------------------------------------------------


def _question_type(value: Any) -> QuestionType:
    return one_of(QuestionType, value, "Question.type")


def _options(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        msg = f"Question.options must be a sequence of strings, got the string {excerpt(value)}"
        raise InvalidPayload(msg, field="options")
    return _tuple(value, "options")


def _text_field(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str):
        msg = f"Question.{attribute.name} must be a string, got {type(value).__name__}"
        raise InvalidPayload(msg, field=attribute.name)


def _bool_field(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        msg = f"Question.{attribute.name} must be True or False, got {excerpt(value)}"
        raise InvalidPayload(msg, field=attribute.name)


def _optional_answer(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, Answer):
        msg = f"Question.answer must be an Answer or None, got {type(value).__name__}"
        raise InvalidPayload(msg, field="answer")


def _key(option: str) -> str:
    return option.strip().casefold()


def _listed(items: Iterable[str]) -> str:
    return ", ".join(repr(item) for item in items) or "(none)"


@attrs.frozen(field_transformer=typed_fields)
class Question:
    """One question: its text, answer type, options (choice types only) and whether it is required.

    As a question task's data it also holds the answer sent last and the requester's reason
    when the question was sent back. The rules a question must follow (non-blank text, options
    only for choice types, ...) are checked when it is sent, all questions of a questionnaire at
    once (see `problems`), so that one error names every bad question.
    """

    text: str = attrs.field(validator=_text_field)
    type: QuestionType = attrs.field(converter=_question_type)
    options: tuple[str, ...] = attrs.field(default=(), converter=_options)
    required: bool = attrs.field(default=True, validator=_bool_field)
    answer: Answer | None = attrs.field(default=None, validator=_optional_answer)
    sent_back_reason: str | None = None

    def problems(self) -> list[tuple[str, str]]:
        """Return what is wrong with this question as sent: (field, sentence) pairs; [] if fine."""
        found: list[tuple[str, str]] = []
        if not self.text.strip():
            found.append(("text", "must not be blank"))
        if self.type.has_options:
            found += self._option_problems()
        elif self.options:
            found.append(
                (
                    "options",
                    f"a {self.type.label} question takes no options, got {_listed(self.options)}",
                )
            )
        if self.answer is not None or self.sent_back_reason is not None:
            found.append(("answer", "a question is sent without an answer or a send-back reason"))
        return found

    def _option_problems(self) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        seen: dict[str, int] = {}
        for i, option in enumerate(self.options):
            if not isinstance(option, str) or not option.strip():
                found.append(
                    (f"options[{i}]", f"an option must be non-blank text, got {excerpt(option)}")
                )
                continue
            key = _key(option)
            if key in seen:
                found.append(
                    (
                        f"options[{i}]",
                        f"option {option.strip()!r} repeats options[{seen[key]}] "
                        "(options are compared ignoring case and surrounding spaces)",
                    )
                )
            else:
                seen[key] = i
        if len(seen) < 2:
            found.append(
                (
                    "options",
                    f"a {self.type.label} question needs at least two different options, "
                    f"got {_listed(o for o in self.options if isinstance(o, str))}",
                )
            )
        return found

    def parse_answer(self, value: Any, *, where: str = "") -> Answer:
        """Turn a raw value into this question's `Answer`; raise `InvalidPayload` saying why not.

        Accepted: free text a string; single choice one option; multiple choice an option or
        a sequence of them (matched ignoring case and surrounding spaces, kept in the options'
        order); yes/no a bool or 'yes'/'no'; number an int, float, Decimal or decimal text;
        date a `date` or 'YYYY-MM-DD'; file a `FileRef`. None, blank text or no choices give a
        blank answer. An `Answer` is returned as it is. The answer is not checked against the
        rules (required, options): `check_answer` does that.
        """
        if isinstance(value, Answer):
            return value
        prefix = f"{where}: " if where else ""
        kind = self.type
        if value is None or (isinstance(value, str) and not value.strip()):
            return Answer()
        try:
            if kind is QuestionType.FREE_TEXT:
                return Answer(text=value)
            if kind is QuestionType.SINGLE_CHOICE:
                if not isinstance(value, str):
                    msg = f"a single choice answer is one option as a string, got {type(value).__name__}"
                    raise InvalidPayload(msg, field="choices")
                return Answer(choices=self._canonical((value,)))
            if kind is QuestionType.MULTIPLE_CHOICE:
                return Answer(choices=self._canonical(_choices(value)))
            if kind is QuestionType.YES_NO:
                return Answer(yes_no=value)
            if kind is QuestionType.NUMBER:
                return Answer(number=value)
            if kind is QuestionType.DATE:
                return Answer(day=value)
            return Answer(file=value)
        except InvalidPayload as exc:
            msg = f"{prefix}{self.type.label} question {self.text.strip()!r}: {exc}"
            raise InvalidPayload(msg, field=exc.field, action=ANSWER) from None

    def _canonical(self, given: tuple[str, ...]) -> tuple[str, ...]:
        by_key = {_key(o): o for o in self.options}
        matched = [by_key.get(_key(c), c) for c in given]
        if all(c in self.options for c in matched) and len(set(matched)) == len(matched):
            return tuple(sorted(matched, key=self.options.index))
        return tuple(matched)

    def answer_problem(self, answer: Answer) -> tuple[str, str] | None:
        """Say why `answer` does not answer this question, as (field, sentence); None if it does."""
        if answer.is_blank:
            if self.required:
                return ("answer", "the question is required; a blank answer is refused")
            return None
        expected = _FIELD_OF[self.type]
        (given,) = answer.fields_set
        if given != expected:
            return (
                given,
                f"takes Answer({expected}=...), got Answer({given}=...)",
            )
        if not self.type.has_options:
            return None
        choices = answer.choices
        if self.type is QuestionType.SINGLE_CHOICE and len(choices) != 1:
            return ("choices", f"choose exactly one of {_listed(self.options)}, got {len(choices)}")
        for choice in choices:
            if choice not in self.options:
                return (
                    "choices",
                    f"{excerpt(choice)} is not one of the options {_listed(self.options)}",
                )
        twice = sorted({c for c in choices if choices.count(c) > 1})
        if twice:
            return ("choices", f"{_listed(twice)} chosen twice; choose each option at most once")
        return None

    def check_answer(self, answer: Answer, *, where: str = "") -> None:
        """Raise `InvalidPayload` if `answer` does not answer this question."""
        problem = self.answer_problem(answer)
        if problem is not None:
            field, why = problem
            prefix = f"{where}: " if where else ""
            msg = f"{prefix}{self.type.label} question {self.text.strip()!r}: {why}"
            raise InvalidPayload(msg, field=field, action=ANSWER)


def check_questions(questions: Iterable[Question], *, where: str = "questionnaire") -> None:
    """Raise one `InvalidQuestionnaire` naming every bad question (by index), or nothing if all are fine."""
    errors: list[InvalidPayload] = []
    indexes: list[int] = []
    items = tuple(questions)
    for i, question in enumerate(items):
        if not isinstance(question, Question):
            errors.append(
                InvalidPayload(f"expected a Question, got {type(question).__name__}", field="")
            )
            errors[-1].add_note(f"questions[{i}]")
            indexes.append(i)
            continue
        problems = question.problems()
        if not problems:
            continue
        sentence = "; ".join(f"{field}: {why}" for field, why in problems)
        error = InvalidPayload(sentence, field=f"questions[{i}].{problems[0][0]}", action="open")
        error.add_note(f"questions[{i}] {_clip(question.text)!r}")
        errors.append(error)
        indexes.append(i)
    if errors:
        msg = (
            f"{where}: {len(errors)} of {len(items)} questions cannot be sent "
            f"(questions {', '.join(str(i) for i in indexes)}, counted from 0)"
        )
        raise InvalidQuestionnaire(msg, errors, indexes=indexes)


def _clip(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- question tasks ------------------------------------------------------------------------


@attrs.frozen(field_transformer=typed_fields)
class Delegate:
    """Payload of `delegate`: the colleague who answers the question now, and a note for them.

    A delegation is the supplier's own affair: its history entry and note are not shown to
    the requester's company.
    """

    user: UserRef
    note: str = ""

    def visible_to_company(self, author_company: CompanyId, viewer_company: CompanyId) -> bool:
        """Tell whether a user of `viewer_company` may read this delegation (only the author's company)."""
        return author_company == viewer_company


@attrs.frozen(field_transformer=typed_fields)
class SendBack:
    """Payload of `send_back`: why the requester does not accept the answer."""

    reason: str = attrs.field(validator=not_blank)


def _open_question(draft: NewTask, actor: Actor, at: datetime) -> None:
    question: Question = draft.data
    problems = question.problems()
    if problems:
        field = problems[0][0]
        listed = "; ".join(f"{f}: {w}" for f, w in problems)
        msg = f"question {_clip(question.text)!r} cannot be sent: {listed}"
        raise InvalidPayload(msg, field=field, action="open")


def _check_answer(task: Task, payload: Answer, actor: Actor, at: datetime) -> None:
    task.data.check_answer(payload, where=f"'{ANSWER}' on task {task.number}")


def _answer(task: Task, payload: Answer, actor: Actor, at: datetime) -> dict[str, Any]:
    changes: dict[str, Any] = {
        "data": attrs.evolve(task.data, answer=payload, sent_back_reason=None)
    }
    if payload.file is not None:
        changes["files"] = (*task.files, payload.file)
    return changes


def _check_delegate(task: Task, payload: Delegate, actor: Actor, at: datetime) -> None:
    user = payload.user
    if user.company != actor.company:
        msg = (
            f"'{DELEGATE}' on task {task.number} may name only a user of {actor.company}; "
            f"{user} is not one"
        )
        raise InvalidPayload(msg, field="user", action=DELEGATE)
    if task.assignees_of(actor.company) == (user,):
        msg = (
            f"'{DELEGATE}' on task {task.number}: {user} is already the only assignee of "
            f"{actor.company}; name another colleague"
        )
        raise InvalidPayload(msg, field="user", action=DELEGATE)


def _delegate(task: Task, payload: Delegate, actor: Actor, at: datetime) -> dict[str, Any]:
    others = tuple(r for r in task.assignees if r.company != actor.company)
    return {"assignees": (*others, payload.user)}


def _send_back(task: Task, payload: SendBack, actor: Actor, at: datetime) -> dict[str, Any]:
    return {"data": attrs.evolve(task.data, sent_back_reason=payload.reason)}


REQUESTER = Side.REQUESTER
RECIPIENT = Side.RECIPIENT

QUESTION_WORKFLOW = Workflow(
    name="question",
    description="One question of a questionnaire: the supplier answers; the requester accepts or sends it back.",
    initial=UNANSWERED,
    open_check=_open_question,
    states=(
        State(UNANSWERED, waiting_on=RECIPIENT, label="Unanswered"),
        State(ANSWERED, waiting_on=REQUESTER, label="Answered"),
        State(SENT_BACK, waiting_on=RECIPIENT, label="Sent back"),
        State(ACCEPTED, final=True, label="Accepted"),
    ),
    transitions=(
        Transition(
            ANSWER,
            {UNANSWERED, SENT_BACK},
            ANSWERED,
            RECIPIENT,
            payload=Answer,
            check=_check_answer,
            effect=_answer,
            events=("question_answered",),
            description="Send the answer",
        ),
        Transition(
            DELEGATE,
            {UNANSWERED, SENT_BACK},
            None,
            RECIPIENT,
            payload=Delegate,
            check=_check_delegate,
            effect=_delegate,
            events=("question_delegated",),
            notify=Audience.OWN_SIDE,
            description="Hand the question to a colleague, who becomes its only assignee",
        ),
        Transition(
            ACCEPT,
            ANSWERED,
            ACCEPTED,
            REQUESTER,
            events=("answer_accepted",),
            description="Accept the answer",
        ),
        Transition(
            SEND_BACK,
            ANSWERED,
            SENT_BACK,
            REQUESTER,
            payload=SendBack,
            effect=_send_back,
            events=("question_sent_back",),
            description="Send the question back with a reason, to be answered again",
        ),
        *common_actions(),
    ),
)


QUESTION = TaskKind(
    "question",
    Question,
    QUESTION_WORKFLOW,
    "One question of a questionnaire, answered, delegated and reviewed on its own (Q1-Q3)",
)
