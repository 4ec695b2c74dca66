"""The questionnaire application service (Q1-Q4): send, answer one or many, delegate, review, overview.

    questionnaires = Questionnaires(service)      # once, at start-up, in every process
    sent = questionnaires.send_questionnaire(buyer, draft)

`Questionnaires` is built on the generic `TaskService` and registers one handler with it:
after every committed change of a question task's state, the handler records that state on
the questionnaire (one tracking action there, taken by the system actor `questionnaires`),
which keeps the questionnaire's state and its answered-vs-total count current for the
overview, whether the question changed through these calls or through plain `service.act`.
Sending is one unit of work: the questionnaire, its question tasks and the attachment of
their ids are committed together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from taskflow.application.service import TaskService
from taskflow.application.unit_of_work import Subscription, UnitOfWork
from taskflow.domain import engine
from taskflow.domain.engine import Outcome
from taskflow.domain.query import TaskQuery, check_states, check_time_range
from taskflow.domain.task import DomainEvent, NewTask, Task
from taskflow.domain.values import Actor, CompanyId, Link, Side, TaskId, UserRef
from taskflow.errors import (
    ConcurrencyConflict,
    InvalidAnswers,
    InvalidPayload,
    PermissionDenied,
    TaskflowError,
)
from taskflow.kinds.question import (
    ACCEPT,
    ANSWER,
    DELEGATE,
    QUESTION,
    SEND_BACK,
    Delegate,
    Question,
    SendBack,
)
from taskflow.kinds.questionnaire import (
    ATTACH_QUESTIONS,
    PART_OF,
    QUESTIONNAIRE,
    QUESTIONNAIRE_WORKFLOW,
    AttachQuestions,
    QuestionChange,
    Questionnaire,
    overall_state,
    tracking_action,
)

__all__ = [
    "TRACKER",
    "QuestionnaireSummary",
    "Questionnaires",
    "SentQuestionnaire",
    "questionnaire_handlers",
    "track_question",
]

TRACKER = "questionnaires"
"""The name of the system actor that records question states on their questionnaire."""

_HANDLER = "taskflow.questionnaires.track"

# A question task's subject: the questionnaire's title, its position, and the text, clipped.
_SUBJECT_LIMIT = 120


@attrs.frozen
class SentQuestionnaire:
    """What `send_questionnaire` made: the questionnaire task and its question tasks, in order."""

    questionnaire: Task
    questions: tuple[Task, ...]


@attrs.frozen
class QuestionnaireSummary:
    """One line of the received or sent questionnaires overview (Q4, C13)."""

    id: TaskId
    number: str
    title: str
    requester_company: CompanyId
    sent_by: UserRef
    recipient: CompanyId
    sent_at: datetime
    due_at: datetime | None
    answered: int
    total: int
    state: str
    state_label: str

    @property
    def progress(self) -> str:
        """Return answered vs total as people read it: '3/5'."""
        return f"{self.answered}/{self.total}"


# --- sending ---------------------------------------------------------------------------------


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _question_draft(
    draft: NewTask,
    position: int,
    question: Question,
    assignees: tuple[UserRef, ...],
    links: tuple[Link, ...] = (),
) -> NewTask:
    data: Questionnaire = draft.data
    subject = f"{data.title} {position + 1}/{data.total}: {question.text}"
    return NewTask(
        subject=_clip(subject, _SUBJECT_LIMIT),
        recipient=draft.recipient,
        data=question,
        body=question.text,
        category=draft.category,
        priority=draft.priority,
        tags=draft.tags,
        assignees=assignees,
        links=links,
        due_at=draft.due_at,
    )


def send_questionnaire(service: TaskService, actor: Actor, draft: NewTask) -> SentQuestionnaire:
    """Send a questionnaire (`draft.data`) to `draft.recipient`: one question task per question.

    The draft's assignees of the recipient company are put on every question task, so the
    questions land in their inboxes (none named: in the recipient's Teambox); the actor and
    assignees of the actor's own company are on the questionnaire and on every question. The
    questionnaire keeps the draft's watchers, links, body and subject; each question takes its
    priority, category, tags and due date. Every question is checked before anything is
    stored: `InvalidQuestionnaire` names each bad one.
    """
    data = draft.data
    if not isinstance(data, Questionnaire):
        msg = (
            f"send_questionnaire needs a Questionnaire as the draft's data, "
            f"got {type(data).__name__}"
        )
        raise InvalidPayload(msg, field="data", action="open")
    questionnaire_kind = service.registry[QUESTIONNAIRE.name]
    question_kind = service.registry[QUESTION.name]
    theirs = tuple(r for r in draft.assignees if r.company == draft.recipient)
    ours = tuple(r for r in draft.assignees if r.company != draft.recipient)
    questionnaire_draft = attrs.evolve(draft, assignees=ours)
    assignees = (*ours, *theirs)
    # Check every draft before a task is stored or a number taken, so a refusal leaves nothing;
    # the questionnaire first, since its check names every bad question at once.
    at = service.clock.now()
    service.check_open(questionnaire_kind, questionnaire_draft, actor, at)
    for i, question in enumerate(data.questions):
        service.check_open(question_kind, _question_draft(draft, i, question, assignees), actor, at)
    # One unit of work: the questionnaire, every question and the attachment, or nothing.
    with service.unit_of_work() as uow:
        questionnaire = uow.open(actor, QUESTIONNAIRE.name, questionnaire_draft).task
        part_of = (Link(PART_OF, questionnaire.id),)
        questions = tuple(
            uow.open(actor, QUESTION.name, _question_draft(draft, i, q, assignees, part_of)).task
            for i, q in enumerate(data.questions)
        )
        ids = AttachQuestions(tuple(q.id for q in questions))
        # Which tasks are its questions is derived state: taskflow's own actor records it.
        tracker = _tracker(actor.company)
        attached = uow.act(tracker, questionnaire.id, ATTACH_QUESTIONS, ids).task
    attached = attached.visible_to(actor.company)
    questions = tuple(q.visible_to(actor.company) for q in questions)
    return SentQuestionnaire(attached, questions)


# --- reading ---------------------------------------------------------------------------------


def _load(service: TaskService, actor: Actor, task_id: TaskId, kind: str) -> Task:
    task = service.get(actor, task_id)
    if task.kind != kind:
        msg = f"task {task.number} is a '{task.kind}' task, not a '{kind}'"
        raise InvalidPayload(msg, field="task_id")
    return task


def questions_of(service: TaskService, actor: Actor, questionnaire_id: TaskId) -> list[Task]:
    """Return the question tasks of a questionnaire in order, as the actor sees them (Q2 preview)."""
    questionnaire = _load(service, actor, questionnaire_id, QUESTIONNAIRE.name)
    return [service.get(actor, qid) for qid in questionnaire.data.question_ids]


# --- tracking --------------------------------------------------------------------------------


def _parent(question: Task) -> TaskId | None:
    return next((link.task_id for link in question.links if link.relation == PART_OF), None)


def _tracker(company: CompanyId) -> Actor:
    return Actor.system(TRACKER, company)


def _track(uow: UnitOfWork, question: Task) -> None:
    """Record the question's state on its questionnaire, if it is attached to one and changed."""
    parent = _parent(question)
    if parent is None:
        return
    actor = _tracker(question.requester.company)
    questionnaire = uow.get(actor, parent)
    if questionnaire.kind != QUESTIONNAIRE.name or questionnaire.requester != question.requester:
        return
    data: Questionnaire = questionnaire.data
    index = data.index_of(question.id)
    if index is None or data.question_states[index] == question.state:
        return
    change = QuestionChange(question.id, question.state)
    uow.act(actor, parent, tracking_action(questionnaire, change), change)


def track_question(event: DomainEvent, uow: UnitOfWork) -> None:
    """Record a question task's new state on its questionnaire (the handler questionnaires register).

    Idempotent: it reads the question as it is now, so a repeated or late event records
    nothing twice.
    """
    if event.kind != QUESTION.name or event.from_state is None:
        return
    if event.from_state == event.to_state:
        return
    question = uow.get(_tracker(event.actor.company), event.task_id)
    _track(uow, question)


def questionnaire_handlers() -> tuple[Subscription, ...]:
    """Return the handlers questionnaires need, to pass to `TaskService(handlers=...)`."""
    return (Subscription(_HANDLER, track_question, kinds=QUESTION.name),)


def sync_questionnaire(service: TaskService, actor: Actor, questionnaire_id: TaskId) -> Task:
    """Make a questionnaire's tracking state agree with its question tasks again; return it.

    Records every question whose state changed unrecorded, and repairs a record that disagrees
    with the questions however it came about (each step a tracking action of the system actor).
    """
    questionnaire = _load(service, actor, questionnaire_id, QUESTIONNAIRE.name)
    tracker = _tracker(questionnaire.requester.company)
    for question_id in questionnaire.data.question_ids:
        with service.unit_of_work() as uow:
            _track(uow, uow.get(tracker, question_id))
    with service.unit_of_work() as uow:
        current = uow.get(tracker, questionnaire_id)
        data: Questionnaire = current.data
        if data.question_ids and overall_state(data.question_states) != current.state:
            # The states are right but the questionnaire's own state is not: record it again.
            change = QuestionChange(data.question_ids[0], data.question_states[0])
            uow.act(tracker, questionnaire_id, tracking_action(current, change), change)
    return service.get(actor, questionnaire_id)


# --- answering and reviewing -----------------------------------------------------------------


def _refuse_unless_allowed(
    service: TaskService, actor: Actor, task: Task, action: str, expected_version: int | None
) -> None:
    """Raise what the action would meet before its payload (conflict, state, side), if anything.

    A payload that cannot even be built is a lesser problem than an action that cannot be taken.
    """
    if expected_version is not None and task.version != expected_version:
        raise ConcurrencyConflict(task.number, expected_version, task.version)
    workflow = service.registry[task.kind].workflow
    try:
        engine.apply(
            workflow, task, action, actor, service.clock.now(), None, authorizer=service.authorizer
        )
    except InvalidPayload:
        return


def _answer(
    service: TaskService, actor: Actor, task: Task, value: Any, expected_version: int | None
) -> Outcome:
    question: Question = task.data
    try:
        answer = question.parse_answer(value, where=f"'{ANSWER}' on task {task.number}")
    except InvalidPayload:
        _refuse_unless_allowed(service, actor, task, ANSWER, expected_version)
        raise
    return service.act(actor, task.id, ANSWER, answer, expected_version=expected_version)


def answer_question(
    service: TaskService,
    actor: Actor,
    question_id: TaskId,
    value: Any,
    *,
    expected_version: int | None = None,
) -> Outcome:
    """Answer one question task; `value` is parsed for its type (see `Question.parse_answer`)."""
    task = _load(service, actor, question_id, QUESTION.name)
    return _answer(service, actor, task, value, expected_version)


def _position(data: Questionnaire, key: Any) -> int | None:
    if isinstance(key, bool):
        return None
    if isinstance(key, int):
        return key if 0 <= key < len(data.question_ids) else None
    if isinstance(key, str):
        return data.index_of(TaskId(key))
    return None


def _note(data: Questionnaire, index: int, number: str) -> str:
    text = _clip(data.questions[index].text, 60)
    return f"questions[{index}] {text!r} (task {number})"


def answer_questions(
    service: TaskService,
    actor: Actor,
    questionnaire_id: TaskId,
    answers: Mapping[Any, Any],
) -> tuple[Outcome, ...]:
    """Answer several questions of a questionnaire at once, each its own action (Q2).

    `answers` maps a question, named by its position (0, 1, ...) or its task id, to its value.
    Each answer is taken on its own: the good ones are saved even when others are refused.
    Returns the saved answers' outcomes in the questionnaire's order when all were saved;
    otherwise raises `InvalidAnswers`, whose members are the refusals (each noting its
    question) and whose `saved` holds the outcomes of the answers that were saved.
    """
    questionnaire = _load(service, actor, questionnaire_id, QUESTIONNAIRE.name)
    number = questionnaire.number
    if Side.RECIPIENT not in questionnaire.sides_of(actor.company):
        msg = (
            f"answering questionnaire {number} is for the recipient ({questionnaire.recipient}); "
            f"{actor} is the requester"
        )
        raise PermissionDenied(msg, task=number, action=ANSWER)
    if not answers:
        msg = f"answer_questions on questionnaire {number} names no question to answer"
        raise InvalidPayload(msg, field="answers", action=ANSWER)
    data: Questionnaire = questionnaire.data
    errors: list[TaskflowError] = []
    refused: list[str] = []
    chosen: dict[int, list[Any]] = {}
    for key in answers:
        index = _position(data, key)
        if index is None:
            last = len(data.question_ids) - 1
            msg = (
                f"questionnaire {number} has no question {key!r}; name a question by its "
                f"position (0 to {last}) or its task id"
                if last >= 0
                else f"questionnaire {number} has no question {key!r}: it has no question tasks"
            )
            error = InvalidPayload(msg, field="answers", action=ANSWER)
            error.add_note(f"answers[{key!r}]")
            errors.append(error)
            refused.append(str(key))
        else:
            chosen.setdefault(index, []).append(key)
    saved: list[Outcome] = []
    for index in sorted(chosen):
        keys = chosen[index]
        question_id = data.question_ids[index]
        task_number: str = question_id
        try:
            task = _load(service, actor, question_id, QUESTION.name)
            task_number = task.number
            if len(keys) > 1:
                named = " and ".join(repr(k) for k in keys)
                msg = (
                    f"question {index} of questionnaire {number} is named {len(keys)} times "
                    f"({named}); give one answer per question"
                )
                raise InvalidPayload(msg, field="answers", action=ANSWER)
            saved.append(_answer(service, actor, task, answers[keys[0]], None))
        except TaskflowError as exc:
            exc.add_note(_note(data, index, task_number))
            errors.append(exc)
            refused.append(question_id)
    if errors:
        msg = (
            f"questionnaire {number}: {len(errors)} of {len(answers)} answers refused, "
            f"{len(saved)} saved"
        )
        raise InvalidAnswers(msg, errors, questionnaire=number, questions=refused, saved=saved)
    return tuple(saved)


def delegate_question(
    service: TaskService,
    actor: Actor,
    question_id: TaskId,
    user: UserRef,
    note: str = "",
    *,
    expected_version: int | None = None,
) -> Outcome:
    """Hand a question to a colleague of the actor's company, who becomes its only assignee (Q3)."""
    _load(service, actor, question_id, QUESTION.name)
    payload = Delegate(user, note)
    return service.act(actor, question_id, DELEGATE, payload, expected_version=expected_version)


def accept_answer(
    service: TaskService,
    actor: Actor,
    question_id: TaskId,
    *,
    expected_version: int | None = None,
) -> Outcome:
    """Accept a question's answer: the question is done for good."""
    _load(service, actor, question_id, QUESTION.name)
    return service.act(actor, question_id, ACCEPT, expected_version=expected_version)


def send_back_question(
    service: TaskService,
    actor: Actor,
    question_id: TaskId,
    reason: str,
    *,
    expected_version: int | None = None,
) -> Outcome:
    """Send a question back to the supplier with a reason, to be answered again."""
    task = _load(service, actor, question_id, QUESTION.name)
    try:
        payload = SendBack(reason)
    except InvalidPayload:
        _refuse_unless_allowed(service, actor, task, SEND_BACK, expected_version)
        raise
    return service.act(actor, question_id, SEND_BACK, payload, expected_version=expected_version)


# --- overview --------------------------------------------------------------------------------


def _summary(task: Task) -> QuestionnaireSummary:
    data: Questionnaire = task.data
    return QuestionnaireSummary(
        id=task.id,
        number=task.number,
        title=data.title,
        requester_company=task.requester.company,
        sent_by=task.requester,
        recipient=task.recipient,
        sent_at=task.created_at,
        due_at=task.due_at,
        answered=data.answered,
        total=data.total,
        state=task.state,
        state_label=QUESTIONNAIRE_WORKFLOW.state(task.state).title,
    )


def _overview(
    service: TaskService,
    actor: Actor,
    side: Side,
    partner: CompanyId | None,
    states: frozenset[str] | None,
    start: datetime | None,
    end: datetime | None,
) -> list[QuestionnaireSummary]:
    query = TaskQuery(
        kind=QUESTIONNAIRE.name,
        states=states,
        company=actor.company,
        side=side,
        requester_company=partner if side is Side.RECIPIENT else None,
        recipient_company=partner if side is Side.REQUESTER else None,
        created_from=start,
        created_until=end,
    )
    return [_summary(task) for task in service.find(actor, query)]


def received_questionnaires(
    service: TaskService,
    actor: Actor,
    *,
    requester: CompanyId | None = None,
    states: str | Iterable[str] | None = None,
    received_from: datetime | None = None,
    received_until: datetime | None = None,
) -> list[QuestionnaireSummary]:
    """List the questionnaires the actor's company received, oldest first, with answered vs total.

    `requester` keeps one sending company's; `states` keeps those in the given questionnaire
    states (unanswered, in_progress, complete, accepted); a questionnaire is kept when it was
    sent between `received_from` and `received_until`, both included.
    """
    wanted = check_states("questionnaires", states, QUESTIONNAIRE_WORKFLOW)
    start, end = check_time_range(
        ("received_from", "received_until"), received_from, received_until
    )
    return _overview(service, actor, Side.RECIPIENT, requester, wanted, start, end)


def sent_questionnaires(
    service: TaskService,
    actor: Actor,
    *,
    recipient: CompanyId | None = None,
    states: str | Iterable[str] | None = None,
    sent_from: datetime | None = None,
    sent_until: datetime | None = None,
) -> list[QuestionnaireSummary]:
    """List the questionnaires the actor's company sent, oldest first, with answered vs total.

    The filters work as for `received_questionnaires`, with `recipient` the receiving company.
    """
    wanted = check_states("questionnaires", states, QUESTIONNAIRE_WORKFLOW)
    start, end = check_time_range(("sent_from", "sent_until"), sent_from, sent_until)
    return _overview(service, actor, Side.REQUESTER, recipient, wanted, start, end)


class Questionnaires:
    """The questionnaire calls (Q1-Q4), built on a `TaskService`; making one registers its handler."""

    def __init__(self, service: TaskService) -> None:
        self.service = service
        for subscription in questionnaire_handlers():
            service.add_subscription(subscription)

    def send_questionnaire(self, actor: Actor, draft: NewTask) -> SentQuestionnaire:
        """Send a questionnaire (`draft.data`) to `draft.recipient`: one question task per question, one commit."""
        return send_questionnaire(self.service, actor, draft)

    def questions_of(self, actor: Actor, questionnaire_id: TaskId) -> list[Task]:
        """Return the question tasks of a questionnaire in order, as the actor sees them."""
        return questions_of(self.service, actor, questionnaire_id)

    def answer_question(
        self,
        actor: Actor,
        question_id: TaskId,
        value: Any,
        *,
        expected_version: int | None = None,
    ) -> Outcome:
        """Answer one question task; `value` is parsed for the question's type."""
        return answer_question(
            self.service, actor, question_id, value, expected_version=expected_version
        )

    def answer_questions(
        self, actor: Actor, questionnaire_id: TaskId, answers: Mapping[Any, Any]
    ) -> tuple[Outcome, ...]:
        """Answer several questions (by position or task id) at once; raise `InvalidAnswers` for the refused."""
        return answer_questions(self.service, actor, questionnaire_id, answers)

    def delegate_question(
        self,
        actor: Actor,
        question_id: TaskId,
        user: UserRef,
        note: str = "",
        *,
        expected_version: int | None = None,
    ) -> Outcome:
        """Hand a question to a colleague of the actor's company, who becomes its only assignee."""
        return delegate_question(
            self.service, actor, question_id, user, note, expected_version=expected_version
        )

    def accept_answer(
        self, actor: Actor, question_id: TaskId, *, expected_version: int | None = None
    ) -> Outcome:
        """Accept a question's answer: the question is done for good."""
        return accept_answer(self.service, actor, question_id, expected_version=expected_version)

    def send_back_question(
        self,
        actor: Actor,
        question_id: TaskId,
        reason: str,
        *,
        expected_version: int | None = None,
    ) -> Outcome:
        """Send a question back to the supplier with a reason, to be answered again."""
        return send_back_question(
            self.service, actor, question_id, reason, expected_version=expected_version
        )

    def sync_questionnaire(self, actor: Actor, questionnaire_id: TaskId) -> Task:
        """Record on a questionnaire every question whose state changed unrecorded; return it."""
        return sync_questionnaire(self.service, actor, questionnaire_id)

    def received_questionnaires(
        self,
        actor: Actor,
        *,
        requester: CompanyId | None = None,
        states: str | Iterable[str] | None = None,
        received_from: datetime | None = None,
        received_until: datetime | None = None,
    ) -> list[QuestionnaireSummary]:
        """List the questionnaires the actor's company received, with answered vs total (Q4)."""
        return received_questionnaires(
            self.service,
            actor,
            requester=requester,
            states=states,
            received_from=received_from,
            received_until=received_until,
        )

    def sent_questionnaires(
        self,
        actor: Actor,
        *,
        recipient: CompanyId | None = None,
        states: str | Iterable[str] | None = None,
        sent_from: datetime | None = None,
        sent_until: datetime | None = None,
    ) -> list[QuestionnaireSummary]:
        """List the questionnaires the actor's company sent, with answered vs total."""
        return sent_questionnaires(
            self.service,
            actor,
            recipient=recipient,
            states=states,
            sent_from=sent_from,
            sent_until=sent_until,
        )
