"""Questionnaires and question tasks (Q1-Q4): every rule of the two workflows through the service."""

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal

import attrs
import pytest
from hypothesis import settings

import taskflow as tf
from taskflow import (
    PDF,
    ActionNotAllowed,
    Actor,
    FileRef,
    InvalidPayload,
    Link,
    NewTask,
    PermissionDenied,
    Registry,
    Side,
    TaskId,
    UserRef,
)
from taskflow.diagrams import to_mermaid
from taskflow.domain import engine
from taskflow.errors import InvalidQuestionnaire, TaskflowError
from taskflow.kinds.question import (
    QUESTION,
    QUESTION_WORKFLOW,
    Answer,
    Delegate,
    Question,
    QuestionType,
    SendBack,
)
from taskflow.kinds.questionnaire import (
    PART_OF,
    QUESTIONNAIRE,
    QUESTIONNAIRE_WORKFLOW,
    AttachQuestions,
    QuestionChange,
    Questionnaire,
    overall_state,
    tracking_action,
)
from taskflow.serialization import Serializer
from taskflow.testing.stateful import workflow_machine
from taskflow.testing.strategies import builtin_strategies

START = datetime(2026, 5, 4, 8, 30, tzinfo=UTC)
BUYER = Actor("bea", "acme")
BUYER_COLLEAGUE = Actor("bob", "acme")
SUPPLIER = Actor("sam", "supco")
COLLEAGUE = Actor("sue", "supco")
STRANGER = Actor("eve", "other")
TRACKER = Actor.system("questionnaires", "acme")
REGISTRY = Registry([QUESTIONNAIRE, QUESTION])
T = QuestionType
COLOURS = ("Red", "Green", "Blue")


def _file(name="answer.pdf", media_type=PDF, n=1):
    return FileRef(name, media_type, 1000 + n, f"sha256:{n:064x}", f"files/{n}")


def _service():
    return tf.TaskService(
        registry=REGISTRY,
        repository=tf.InMemoryRepository(),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )


def _send(service, questions, *, assignees=(SUPPLIER.ref,), title="Supplier self-assessment"):
    draft = NewTask(title, "supco", Questionnaire(title, questions), assignees=assignees)
    return tf.Questionnaires(service).send_questionnaire(BUYER, draft)


def _one(service, question, **kw):
    """Send a questionnaire of one question; return (questionnaire id, question id)."""
    sent = _send(service, (question,), **kw)
    return sent.questionnaire.id, sent.questions[0].id


def _ids(tasks):
    return [t.id for t in tasks]


def _stored(service, task_id):
    return service.repository.get(task_id)


# --- sending (Q1) ------------------------------------------------------------------------------


FIVE = (
    Question("Do you hold ISO 9001?", T.YES_NO),
    Question("How many employees?", T.NUMBER),
    Question("Which colours do you make?", T.MULTIPLE_CHOICE, COLOURS),
    Question("When were you founded?", T.DATE, required=False),
    Question("Anything else?", T.FREE_TEXT, required=False),
)


def test_sending_opens_one_question_task_per_question_linked_to_the_questionnaire():
    service = _service()
    sent = _send(service, FIVE)
    questionnaire = sent.questionnaire
    assert questionnaire.kind == "questionnaire"
    assert questionnaire.state == "unanswered"
    assert questionnaire.data.question_ids == tuple(_ids(sent.questions))
    assert questionnaire.data.question_states == ("unanswered",) * 5
    assert (questionnaire.data.answered, questionnaire.data.total) == (0, 5)
    for position, (task, question) in enumerate(zip(sent.questions, FIVE, strict=True)):
        assert task.kind == "question"
        assert task.state == "unanswered"
        assert task.links == (Link(PART_OF, questionnaire.id),)
        assert task.data == question
        assert task.body == question.text
        assert task.subject == f"Supplier self-assessment {position + 1}/5: {question.text}"
        assert task.assignees == (BUYER.ref, SUPPLIER.ref)
    # The questionnaire has no supplier assignee: it is in the Teambox, not in an inbox.
    assert questionnaire.assignees == (BUYER.ref,)
    assert _ids(service.inbox(SUPPLIER)) == _ids(sent.questions)
    assert _ids(service.teambox(SUPPLIER)) == [questionnaire.id, *_ids(sent.questions)]
    assert service.inbox(BUYER) == []
    assert tf.Questionnaires(service).questions_of(SUPPLIER, questionnaire.id) == list(
        sent.questions
    )


def test_questions_sent_to_nobody_wait_in_the_supplier_teambox():
    service = _service()
    sent = _send(service, FIVE[:2], assignees=())
    assert service.inbox(SUPPLIER) == []
    assert _ids(service.teambox(COLLEAGUE)) == [sent.questionnaire.id, *_ids(sent.questions)]
    assert service.notifier.sent == []
    taken = service.claim(COLLEAGUE, sent.questions[1].id).task
    assert taken.assignees == (BUYER.ref, COLLEAGUE.ref)
    assert _ids(service.inbox(COLLEAGUE)) == [sent.questions[1].id]


def test_sending_notifies_each_named_supplier_user_once_per_question():
    service = _service()
    sent = _send(service, FIVE[:3], assignees=(SUPPLIER.ref, COLLEAGUE.ref))
    got = [(n.recipient.user, n.task_id, n.event) for n in service.notifier.sent]
    assert got == [(user, q.id, "opened") for q in sent.questions for user in ("sam", "sue")]


def test_requester_side_assignees_go_on_the_questionnaire_and_every_question():
    service = _service()
    sent = _send(service, FIVE[:2], assignees=(SUPPLIER.ref, BUYER_COLLEAGUE.ref))
    assert sent.questionnaire.assignees == (BUYER.ref, BUYER_COLLEAGUE.ref)
    assert all(
        q.assignees == (BUYER.ref, BUYER_COLLEAGUE.ref, SUPPLIER.ref) for q in sent.questions
    )


def test_question_tasks_take_the_drafts_due_date_priority_and_tags():
    service = _service()
    due = datetime(2026, 6, 1, tzinfo=UTC)
    draft = NewTask(
        "Audit prep",
        "supco",
        Questionnaire("Audit prep", FIVE[:1]),
        priority="high",
        tags={"audit"},
        watchers=[COLLEAGUE.ref],
        due_at=due,
    )
    sent = tf.Questionnaires(service).send_questionnaire(BUYER, draft)
    (question,) = sent.questions
    assert (question.due_at, question.priority, question.tags) == (due, "high", {"audit"})
    assert question.watchers == ()
    assert sent.questionnaire.watchers == (COLLEAGUE.ref,)


@pytest.mark.parametrize(
    ("question", "message"),
    [
        (Question("  ", T.NUMBER), "text: must not be blank"),
        (
            Question("Colour?", T.SINGLE_CHOICE, ("Red",)),
            "needs at least two different options, got 'Red'",
        ),
        (
            Question("Colour?", T.MULTIPLE_CHOICE, ("Red", " red ")),
            r"options\[1\]: option 'red' repeats options\[0\]",
        ),
        (Question("Colour?", T.SINGLE_CHOICE, ("Red", " ")), r"options\[1\]: an option must be"),
        (Question("Staff?", T.NUMBER, ("1", "2")), "a number question takes no options"),
        (
            Question("Staff?", T.NUMBER, answer=Answer(number=3)),
            "a question is sent without an answer",
        ),
    ],
)
def test_a_bad_question_is_refused_and_nothing_is_stored(question, message):
    service = _service()
    with pytest.raises(InvalidQuestionnaire) as caught:
        _send(service, (FIVE[0], question))
    (member,) = caught.value.exceptions
    assert isinstance(member, InvalidPayload)
    assert caught.value.indexes == (1,)
    assert member.__notes__ == [f"questions[1] {question.text.strip()!r}"]
    assert re.search(message, str(member))
    assert service.repository.query(tf.TaskQuery()) == []
    assert service.repository.next_number("acme") == 1


def test_every_bad_question_is_named_in_one_error():
    service = _service()
    questions = (
        Question("", T.YES_NO),
        FIVE[1],
        Question("Colour?", T.SINGLE_CHOICE),
        Question("Size?", T.FREE_TEXT, ("S", "M")),
    )
    with pytest.raises(InvalidQuestionnaire) as caught:
        _send(service, questions)
    group = caught.value
    assert isinstance(group, TaskflowError)
    assert isinstance(group, ExceptionGroup)
    assert group.indexes == (0, 2, 3)
    assert str(group) == (
        "questionnaire 'Supplier self-assessment': 3 of 4 questions cannot be sent "
        "(questions 0, 2, 3, counted from 0) (3 sub-exceptions)"
    )
    assert [m.__notes__ for m in group.exceptions] == [
        ["questions[0] ''"],
        ["questions[2] 'Colour?'"],
        ["questions[3] 'Size?'"],
    ]
    assert [m.field for m in group.exceptions] == [
        "questions[0].text",
        "questions[2].options",
        "questions[3].options",
    ]


def test_except_star_splits_the_questionnaire_error_and_keeps_its_class():
    service = _service()
    with pytest.raises(InvalidQuestionnaire) as caught:
        _send(service, (Question("", T.YES_NO), Question("", T.NUMBER)))
    part = caught.value.split(lambda e: "questions[1]" in getattr(e, "__notes__", [""])[0])[0]
    assert isinstance(part, InvalidQuestionnaire)
    assert part.indexes == (1,)


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (Questionnaire("Empty", ()), InvalidPayload, "has no questions; send at least one"),
        (
            Questionnaire("Pre", FIVE[:1], (TaskId("t-9"),), ("unanswered",)),
            InvalidPayload,
            "is sent without question task ids; 'attach_questions' records them",
        ),
        (Question("Single", T.YES_NO), InvalidPayload, "needs a Questionnaire as the draft's data"),
    ],
)
def test_a_questionnaire_that_cannot_be_sent_is_refused(data, error, message):
    service = _service()
    with pytest.raises(error, match=message):
        tf.Questionnaires(service).send_questionnaire(BUYER, NewTask("x", "supco", data))
    assert service.repository.query(tf.TaskQuery()) == []


def test_a_supplier_user_of_a_third_company_cannot_be_named():
    service = _service()
    with pytest.raises(InvalidPayload, match="not: eve@other"):
        _send(service, FIVE[:1], assignees=(STRANGER.ref,))
    assert service.repository.query(tf.TaskQuery()) == []


def test_questionnaire_data_keeps_ids_and_states_in_pairs():
    with pytest.raises(InvalidPayload, match="1 question ids but 0 question states"):
        Questionnaire("x", FIVE[:1], ("t-1",))
    with pytest.raises(InvalidPayload, match="has 2 questions but 1 question ids"):
        Questionnaire("x", FIVE[:2], ("t-1",), ("unanswered",))
    with pytest.raises(InvalidPayload, match="got one Question"):
        Questionnaire("x", FIVE[0])
    with pytest.raises(InvalidPayload, match=r"must not|non-blank"):
        Questionnaire(" ", FIVE[:1])


def test_question_fields_are_checked_when_built():
    with pytest.raises(InvalidPayload, match=r"Question.type must be one of 'free_text'"):
        Question("x", "essay")
    with pytest.raises(InvalidPayload, match="sequence of strings, got the string 'Red'"):
        Question("x", T.SINGLE_CHOICE, "Red")
    with pytest.raises(InvalidPayload, match=r"Question.required must be True or False"):
        Question("x", T.YES_NO, required="yes")
    with pytest.raises(InvalidPayload, match=r"Question.text must be a string"):
        Question(None, T.YES_NO)
    with pytest.raises(InvalidPayload, match=r"Question.answer must be an Answer"):
        Question("x", T.YES_NO, answer=True)


# --- answers, by type -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "value", "stored", "python"),
    [
        (
            Question("Notes", T.FREE_TEXT),
            "  We ship daily \n",
            Answer(text="We ship daily"),
            "We ship daily",
        ),
        (
            Question("Colour", T.SINGLE_CHOICE, COLOURS),
            " green ",
            Answer(choices=("Green",)),
            ("Green",),
        ),
        (
            Question("Colours", T.MULTIPLE_CHOICE, COLOURS),
            ["blue", "Red"],
            Answer(choices=("Red", "Blue")),
            ("Red", "Blue"),
        ),
        (
            Question("Colours", T.MULTIPLE_CHOICE, COLOURS),
            "Red",
            Answer(choices=("Red",)),
            ("Red",),
        ),
        (Question("ISO?", T.YES_NO), True, Answer(yes_no=True), True),
        (Question("ISO?", T.YES_NO), " No ", Answer(yes_no=False), False),
        (Question("Staff", T.NUMBER), 12, Answer(number="12"), Decimal(12)),
        (Question("Staff", T.NUMBER), 12.50, Answer(number="12.5"), Decimal("12.5")),
        (Question("Staff", T.NUMBER), 0.1, Answer(number="0.1"), Decimal("0.1")),
        (Question("Staff", T.NUMBER), Decimal("1.50"), Answer(number="1.5"), Decimal("1.5")),
        (Question("Staff", T.NUMBER), " 1e3 ", Answer(number="1000"), Decimal(1000)),
        (Question("Staff", T.NUMBER), "-0.00", Answer(number="0"), Decimal(0)),
        (
            Question("Founded", T.DATE),
            date(1999, 5, 1),
            Answer(day=date(1999, 5, 1)),
            date(1999, 5, 1),
        ),
        (Question("Founded", T.DATE), "1999-05-01", Answer(day=date(1999, 5, 1)), date(1999, 5, 1)),
        (Question("Policy", T.FILE), _file(), Answer(file=_file()), _file()),
        (Question("Staff", T.NUMBER), Answer(number=7), Answer(number="7"), Decimal(7)),
    ],
)
def test_each_answer_type_is_parsed_and_stored_normalized(question, value, stored, python):
    service = _service()
    _, question_id = _one(service, question)
    task = tf.Questionnaires(service).answer_question(SUPPLIER, question_id, value).task
    assert (task.state, task.data.answer, task.data.answer.value) == ("answered", stored, python)


def test_a_file_answer_is_also_among_the_task_files():
    service = _service()
    _, question_id = _one(service, Question("Policy", T.FILE))
    task = tf.Questionnaires(service).answer_question(SUPPLIER, question_id, _file()).task
    assert task.files == (_file(),)


@pytest.mark.parametrize(
    ("question", "value", "message"),
    [
        (Question("Staff", T.NUMBER), "abc", "'abc' is not a number; write digits"),
        (Question("Staff", T.NUMBER), "1,000", "no thousands separators"),
        (Question("Staff", T.NUMBER), True, "True is not a number"),
        (Question("Staff", T.NUMBER), float("nan"), "nan is not a number"),
        (Question("Staff", T.NUMBER), "1e999", "'1e999' is out of range"),
        (Question("Staff", T.NUMBER), [1], r"\[1\] is not a number"),
        (
            Question("Founded", T.DATE),
            "05/01/2024",
            "'05/01/2024' is not a date; write it as YYYY-MM-DD",
        ),
        (Question("Founded", T.DATE), "2024-02-30", "'2024-02-30' is not a date"),
        (Question("Founded", T.DATE), datetime(2024, 5, 1, tzinfo=UTC), "is a date and time"),
        (Question("ISO?", T.YES_NO), "maybe", "'maybe' is not yes or no"),
        (Question("ISO?", T.YES_NO), 1, "1 is not yes or no"),
        (
            Question("Colour", T.SINGLE_CHOICE, COLOURS),
            "Purple",
            "'Purple' is not one of the options 'Red', 'Green', 'Blue'",
        ),
        (Question("Colour", T.SINGLE_CHOICE, COLOURS), ["Red"], "one option as a string, got list"),
        (
            Question("Colours", T.MULTIPLE_CHOICE, COLOURS),
            ["Red", "red"],
            "'Red' chosen twice; choose each option at most once",
        ),
        (
            Question("Colours", T.MULTIPLE_CHOICE, COLOURS),
            ["Red", "Purple"],
            "'Purple' is not one of the options",
        ),
        (
            Question("Colours", T.MULTIPLE_CHOICE, COLOURS),
            ["Red", 3],
            "each choice must be a non-blank string, got 3",
        ),
        (Question("Colours", T.MULTIPLE_CHOICE, COLOURS), 3, "choices must be a sequence, got int"),
        (Question("Notes", T.FREE_TEXT), 5, "a text answer must be a string, got int"),
        (Question("Policy", T.FILE), "policy.pdf", "a file answer must be a FileRef, got str"),
        (Question("Staff", T.NUMBER), None, "the question is required; a blank answer is refused"),
        (Question("Notes", T.FREE_TEXT), "   ", "the question is required"),
        (Question("Colours", T.MULTIPLE_CHOICE, COLOURS), [], "the question is required"),
        (
            Question("Staff", T.NUMBER),
            Answer(text="many"),
            r"takes Answer\(number=...\), got Answer\(text=...\)",
        ),
        (
            Question("Colour", T.SINGLE_CHOICE, COLOURS),
            Answer(choices=("Red", "Blue")),
            "choose exactly one of 'Red', 'Green', 'Blue', got 2",
        ),
    ],
)
def test_a_wrong_answer_is_refused_with_the_reason_and_changes_nothing(question, value, message):
    service = _service()
    questionnaire_id, question_id = _one(service, question)
    before = (_stored(service, question_id), _stored(service, questionnaire_id))
    sent = len(service.notifier.sent)
    with pytest.raises(InvalidPayload, match=message) as caught:
        tf.Questionnaires(service).answer_question(SUPPLIER, question_id, value)
    assert str(caught.value).startswith("'answer' on task ACME-TASK-2: ")
    assert f"question {question.text!r}: " in str(caught.value)
    assert (_stored(service, question_id), _stored(service, questionnaire_id)) == before
    assert len(service.notifier.sent) == sent


def test_the_engine_checks_an_answer_given_through_act_too():
    service = _service()
    _, question_id = _one(service, Question("Staff", T.NUMBER))
    with pytest.raises(
        InvalidPayload, match="'answer' on task ACME-TASK-2: number question 'Staff': takes"
    ):
        service.act(SUPPLIER, question_id, "answer", Answer(yes_no=True))
    with pytest.raises(InvalidPayload, match="needs a Answer payload, got int"):
        service.act(SUPPLIER, question_id, "answer", 5)


def test_an_optional_question_may_be_answered_blank():
    service = _service()
    questionnaire_id, question_id = _one(service, Question("Notes", T.FREE_TEXT, required=False))
    task = tf.Questionnaires(service).answer_question(SUPPLIER, question_id, "  ").task
    assert (task.state, task.data.answer, task.data.answer.is_blank) == ("answered", Answer(), True)
    assert task.data.answer.value is None
    assert service.get(BUYER, questionnaire_id).state == "complete"


def test_an_answer_holds_one_value():
    with pytest.raises(InvalidPayload, match="an Answer holds one value, got text and number"):
        Answer(text="x", number=1)
    assert Answer(text="  ").is_blank
    assert Answer(choices="Red").choices == ("Red",)
    assert Answer(yes_no="YES").yes_no is True
    assert Answer(choices=None) == Answer()


def test_something_that_is_not_a_question_is_named_too():
    service = _service()
    with pytest.raises(InvalidQuestionnaire) as caught:
        _send(service, (FIVE[0], "Colour?"))
    (member,) = caught.value.exceptions
    assert (str(member), member.__notes__) == ("expected a Question, got str", ["questions[1]"])


def test_tracking_action_names_the_action_for_a_change():
    service = _service()
    sent = _send(service, FIVE[:2])
    task = service.get(BUYER, sent.questionnaire.id)
    first = sent.questions[0].id
    assert tracking_action(task, QuestionChange(first, "answered")) == "mark_in_progress"
    assert tracking_action(task, QuestionChange("not-mine", "answered")) == "track"


# --- the question's workflow ------------------------------------------------------------------


def test_an_answer_moves_the_question_to_the_requesters_inbox_and_notifies_them():
    service = _service()
    question_id = _send(service, FIVE[1:3]).questions[0].id
    sent = len(service.notifier.sent)
    outcome = tf.Questionnaires(service).answer_question(SUPPLIER, question_id, 40)
    assert outcome.task.state == "answered"
    assert [e.name for e in outcome.events] == ["question_answered"]
    assert _ids(service.inbox(BUYER)) == [question_id]
    assert question_id not in _ids(service.inbox(SUPPLIER))
    told = [(n.recipient, n.task_id, n.event) for n in service.notifier.sent[sent:]]
    assert told == [(BUYER.ref, question_id, "question_answered")]


def test_the_requester_accepts_an_answer_for_good_and_the_supplier_is_told():
    service = _service()
    _, question_id = _one(service, Question("Staff", T.NUMBER))
    tf.Questionnaires(service).answer_question(SUPPLIER, question_id, 40)
    sent = len(service.notifier.sent)
    task = tf.Questionnaires(service).accept_answer(BUYER, question_id).task
    assert (task.state, task.is_open, task.resolved_at) == ("accepted", False, START)
    told = [(n.recipient, n.event) for n in service.notifier.sent[sent:]]
    assert (SUPPLIER.ref, "answer_accepted") in told
    with pytest.raises(
        ActionNotAllowed,
        match="'accepted'; 'answer' needs 'sent_back' or 'unanswered'; allowed now: 'comment'",
    ):
        tf.Questionnaires(service).answer_question(SUPPLIER, question_id, 41)
    with pytest.raises(ActionNotAllowed, match="'send_back' needs 'answered'"):
        tf.Questionnaires(service).send_back_question(BUYER, question_id, "late")


def test_sending_back_returns_the_question_to_the_supplier_with_the_reason():
    service = _service()
    _, question_id = _one(service, Question("Staff", T.NUMBER))
    tf.Questionnaires(service).answer_question(SUPPLIER, question_id, 40)
    sent = len(service.notifier.sent)
    task = (
        tf.Questionnaires(service)
        .send_back_question(BUYER, question_id, "Count part-timers too")
        .task
    )
    assert (task.state, task.data.sent_back_reason) == ("sent_back", "Count part-timers too")
    assert task.data.answer == Answer(number=40)
    assert _ids(service.inbox(SUPPLIER)) == [question_id]
    told = [(n.recipient, n.event) for n in service.notifier.sent[sent:]]
    assert told == [(SUPPLIER.ref, "question_sent_back")]
    task = tf.Questionnaires(service).answer_question(SUPPLIER, question_id, 52).task
    assert (task.state, task.data.answer, task.data.sent_back_reason) == (
        "answered",
        Answer(number=52),
        None,
    )
    rounds = [(e.action, e.to_state) for e in task.history[1:]]
    assert rounds == [("answer", "answered"), ("send_back", "sent_back"), ("answer", "answered")]
    assert task.history[2].payload == SendBack("Count part-timers too")


def test_refusals_name_the_most_basic_problem_first():
    service = _service()
    _, question_id = _one(service, Question("Staff", T.NUMBER))
    with pytest.raises(ActionNotAllowed, match="'send_back' needs 'answered'"):
        tf.Questionnaires(service).send_back_question(BUYER, question_id, "  ")
    tf.Questionnaires(service).answer_question(SUPPLIER, question_id, 1)
    with pytest.raises(InvalidPayload, match=r"SendBack.reason must be a non-blank string"):
        tf.Questionnaires(service).send_back_question(BUYER, question_id, "  ")
    with pytest.raises(ActionNotAllowed, match="'answered'; 'answer' needs"):
        tf.Questionnaires(service).answer_question(SUPPLIER, question_id, "not a number")
    with pytest.raises(tf.ConcurrencyConflict, match="expected version 1"):
        tf.Questionnaires(service).answer_question(SUPPLIER, question_id, "nan", expected_version=1)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda s, q: tf.Questionnaires(s).answer_question(BUYER, q, 3),
            r"'answer' on task ACME-TASK-2 is for the recipient \(supco\); bea@acme is the requester",
        ),
        (
            lambda s, q: tf.Questionnaires(s).delegate_question(BUYER, q, BUYER_COLLEAGUE.ref),
            "'delegate' on task ACME-TASK-2 is for the recipient",
        ),
    ],
)
def test_the_requester_cannot_answer_or_delegate(call, message):
    service = _service()
    _, question_id = _one(service, Question("Staff", T.NUMBER))
    with pytest.raises(PermissionDenied, match=message):
        call(service, question_id)


def test_the_supplier_cannot_accept_or_send_back():
    service = _service()
    _, question_id = _one(service, Question("Staff", T.NUMBER))
    tf.Questionnaires(service).answer_question(SUPPLIER, question_id, 3)
    with pytest.raises(PermissionDenied, match="'accept' on task ACME-TASK-2 is for the requester"):
        tf.Questionnaires(service).accept_answer(SUPPLIER, question_id)
    with pytest.raises(
        PermissionDenied, match="'send_back' on task ACME-TASK-2 is for the requester"
    ):
        tf.Questionnaires(service).send_back_question(SUPPLIER, question_id, "no")


def test_a_stranger_finds_no_question():
    service = _service()
    _, question_id = _one(service, Question("Staff", T.NUMBER))
    for call in (
        lambda: tf.Questionnaires(service).answer_question(STRANGER, question_id, 3),
        lambda: tf.Questionnaires(service).accept_answer(STRANGER, question_id),
        lambda: tf.Questionnaires(service).delegate_question(STRANGER, question_id, STRANGER.ref),
        lambda: tf.Questionnaires(service).send_back_question(STRANGER, question_id, "x"),
    ):
        with pytest.raises(tf.TaskNotFound):
            call()


def test_question_calls_refuse_a_task_of_another_kind():
    service = _service()
    questionnaire_id, _ = _one(service, Question("Staff", T.NUMBER))
    with pytest.raises(
        InvalidPayload, match="task ACME-TASK-1 is a 'questionnaire' task, not a 'question'"
    ):
        tf.Questionnaires(service).accept_answer(BUYER, questionnaire_id)


# --- delegation (Q3) ---------------------------------------------------------------------------


def test_delegating_moves_the_question_to_the_colleagues_inbox_and_notifies_them():
    service = _service()
    _, question_id = _one(service, Question("Staff", T.NUMBER))
    sent = len(service.notifier.sent)
    outcome = tf.Questionnaires(service).delegate_question(
        SUPPLIER, question_id, COLLEAGUE.ref, "You have the figures"
    )
    assert outcome.task.assignees == (BUYER.ref, COLLEAGUE.ref)
    assert outcome.task.state == "unanswered"
    assert _ids(service.inbox(COLLEAGUE)) == [question_id]
    assert service.inbox(SUPPLIER) == []
    told = [(n.recipient, n.event) for n in service.notifier.sent[sent:]]
    assert told == [(COLLEAGUE.ref, "question_delegated")]
    assert (
        tf.Questionnaires(service).answer_question(COLLEAGUE, question_id, 12).task.state
        == "answered"
    )


def test_delegating_to_a_co_assignee_makes_them_the_only_one_and_tells_both():
    service = _service()
    _, question_id = _one(
        service, Question("Staff", T.NUMBER), assignees=(SUPPLIER.ref, COLLEAGUE.ref)
    )
    sent = len(service.notifier.sent)
    task = tf.Questionnaires(service).delegate_question(SUPPLIER, question_id, COLLEAGUE.ref).task
    assert task.assignees_of("supco") == (COLLEAGUE.ref,)
    assert [n.recipient for n in service.notifier.sent[sent:]] == [COLLEAGUE.ref]
    third = UserRef("supco", "tom")
    tf.Questionnaires(service).delegate_question(COLLEAGUE, question_id, third)
    told = [n.recipient for n in service.notifier.sent[sent + 1 :]]
    assert told == [third]


def test_the_requester_does_not_see_the_delegation_or_its_note():
    service = _service()
    _, question_id = _one(service, Question("Staff", T.NUMBER))
    tf.Questionnaires(service).delegate_question(
        SUPPLIER, question_id, COLLEAGUE.ref, "internal note"
    )
    assert [e.action for e in service.get(BUYER, question_id).history] == ["open"]
    assert [e.action for e in service.get(SUPPLIER, question_id).history] == ["open", "delegate"]
    assert service.get(BUYER, question_id).assignees == (BUYER.ref, COLLEAGUE.ref)


@pytest.mark.parametrize(
    ("user", "message"),
    [
        (
            STRANGER.ref,
            "'delegate' on task ACME-TASK-2 may name only a user of supco; eve@other is not one",
        ),
        (BUYER.ref, "may name only a user of supco; bea@acme is not one"),
        (SUPPLIER.ref, "sam@supco is already the only assignee of supco; name another colleague"),
    ],
)
def test_delegation_to_anyone_but_another_colleague_is_refused(user, message):
    service = _service()
    _, question_id = _one(service, Question("Staff", T.NUMBER))
    before = _stored(service, question_id)
    with pytest.raises(InvalidPayload, match=message):
        tf.Questionnaires(service).delegate_question(SUPPLIER, question_id, user)
    assert _stored(service, question_id) == before


def test_an_answered_question_cannot_be_delegated():
    service = _service()
    _, question_id = _one(service, Question("Staff", T.NUMBER))
    tf.Questionnaires(service).answer_question(SUPPLIER, question_id, 1)
    with pytest.raises(ActionNotAllowed, match="'delegate' needs 'sent_back' or 'unanswered'"):
        tf.Questionnaires(service).delegate_question(SUPPLIER, question_id, COLLEAGUE.ref)
    tf.Questionnaires(service).send_back_question(BUYER, question_id, "again")
    assert (
        tf.Questionnaires(service)
        .delegate_question(SUPPLIER, question_id, COLLEAGUE.ref)
        .task.state
        == "sent_back"
    )


# --- the questionnaire follows its questions (Q4) ---------------------------------------------


def _status(service, questionnaire_id):
    task = service.get(BUYER, questionnaire_id)
    return task.state, task.data.answered, task.data.total, task.ball


def test_the_questionnaire_state_follows_its_questions():
    service = _service()
    sent = _send(service, FIVE[:3])
    qn = sent.questionnaire.id
    first, second, third = _ids(sent.questions)
    assert _status(service, qn) == ("unanswered", 0, 3, tf.Side.RECIPIENT)
    tf.Questionnaires(service).answer_question(SUPPLIER, first, True)
    assert _status(service, qn) == ("in_progress", 1, 3, tf.Side.RECIPIENT)
    tf.Questionnaires(service).answer_question(SUPPLIER, second, 9)
    tf.Questionnaires(service).accept_answer(BUYER, first)
    assert _status(service, qn) == ("in_progress", 2, 3, tf.Side.RECIPIENT)
    tf.Questionnaires(service).answer_question(SUPPLIER, third, ["Red"])
    assert _status(service, qn) == ("complete", 3, 3, tf.Side.REQUESTER)
    assert qn in _ids(service.inbox(BUYER))
    tf.Questionnaires(service).send_back_question(BUYER, third, "Only red?")
    assert _status(service, qn) == ("in_progress", 2, 3, tf.Side.RECIPIENT)
    tf.Questionnaires(service).answer_question(SUPPLIER, third, ["Red", "Blue"])
    tf.Questionnaires(service).accept_answer(BUYER, second)
    assert _status(service, qn) == ("complete", 3, 3, tf.Side.REQUESTER)
    tf.Questionnaires(service).accept_answer(BUYER, third)
    task = service.get(BUYER, qn)
    assert (task.state, task.is_open, task.data.answered) == ("accepted", False, 3)
    assert task.data.question_states == ("accepted",) * 3
    assert QUESTIONNAIRE_WORKFLOW.state(task.state).title == "Accepted"
    actions = [e.action for e in task.history]
    assert actions == [
        "open",
        "attach_questions",
        "mark_in_progress",
        "track",
        "track",
        "mark_complete",
        "mark_in_progress",
        "mark_complete",
        "track",
        "mark_accepted",
    ]


def test_a_sent_back_question_counts_as_work_begun():
    service = _service()
    questionnaire_id, question_id = _one(service, Question("Staff", T.NUMBER))
    tf.Questionnaires(service).answer_question(SUPPLIER, question_id, 1)
    assert _status(service, questionnaire_id)[0] == "complete"
    tf.Questionnaires(service).send_back_question(BUYER, question_id, "again")
    assert _status(service, questionnaire_id) == ("in_progress", 0, 1, tf.Side.RECIPIENT)


def test_a_complete_questionnaire_is_told_to_the_requester():
    service = _service()
    questionnaire_id, question_id = _one(service, Question("Staff", T.NUMBER))
    sent = len(service.notifier.sent)
    tf.Questionnaires(service).answer_question(SUPPLIER, question_id, 1)
    told = [(n.recipient, n.task_id, n.event) for n in service.notifier.sent[sent:]]
    assert told == [
        (BUYER.ref, question_id, "question_answered"),
        (BUYER.ref, questionnaire_id, "questionnaire_complete"),
    ]


def test_labels_read_like_the_supplier_portal():
    assert [s.title for s in QUESTION_WORKFLOW.states] == [
        "Unanswered",
        "Answered",
        "Sent back",
        "Accepted",
    ]
    assert [s.title for s in QUESTIONNAIRE_WORKFLOW.states] == [
        "Unanswered",
        "In progress",
        "Complete",
        "Accepted",
    ]


@pytest.mark.parametrize(
    ("states", "overall"),
    [
        ((), "unanswered"),
        (("unanswered", "unanswered"), "unanswered"),
        (("answered", "unanswered"), "in_progress"),
        (("sent_back", "unanswered"), "in_progress"),
        (("answered", "accepted"), "complete"),
        (("accepted", "accepted"), "accepted"),
    ],
)
def test_overall_state_adds_up_the_question_states(states, overall):
    assert overall_state(states) == overall


def test_a_question_changed_with_plain_act_keeps_its_questionnaire_in_step():
    service = _service()
    questionnaire_id, question_id = _one(service, Question("Staff", T.NUMBER))
    service.act(SUPPLIER, question_id, "answer", Answer(number=3))
    assert service.get(BUYER, questionnaire_id).state == "complete"
    service.act(BUYER, question_id, "accept")
    questionnaire = service.get(BUYER, questionnaire_id)
    assert (questionnaire.state, questionnaire.data.question_states) == ("accepted", ("accepted",))
    tracked = questionnaire.history[-1]
    assert tracked.actor == Actor.system("questionnaires", "acme")
    assert tracked.cause.depth == 1
    # Nothing is left to record: sync changes nothing.
    assert tf.Questionnaires(service).sync_questionnaire(BUYER, questionnaire_id) == questionnaire


def test_a_question_changed_before_the_handler_was_registered_is_recorded_by_sync():
    service = _service()
    questionnaire_id, question_id = _one(service, Question("Staff", T.NUMBER))
    plain = tf.TaskService(
        registry=service.registry,
        repository=service.repository,
        notifier=tf.RecordingNotifier(),
        clock=service.clock,
        ids=service.ids,
    )
    plain.act(SUPPLIER, question_id, "answer", Answer(number=3))
    assert service.get(BUYER, questionnaire_id).state == "unanswered"
    synced = tf.Questionnaires(service).sync_questionnaire(BUYER, questionnaire_id)
    assert (synced.state, synced.data.question_states) == ("complete", ("answered",))


def test_a_question_outside_a_questionnaire_is_answered_on_its_own():
    service = _service()
    draft = NewTask("Staff?", "supco", Question("Staff", T.NUMBER), assignees=[SUPPLIER.ref])
    question_id = service.open(BUYER, "question", draft).task.id
    assert (
        tf.Questionnaires(service).answer_question(SUPPLIER, question_id, 5).task.state
        == "answered"
    )
    with pytest.raises(InvalidPayload, match="a number question takes no options"):
        service.open(
            BUYER, "question", NewTask("x", "supco", Question("Staff", T.NUMBER, ("a", "b")))
        )


# --- the questionnaire's own actions ----------------------------------------------------------


def test_question_tasks_are_attached_once_by_the_system_actor_only():
    service = _service()
    questionnaire_id, question_id = _one(service, Question("Staff", T.NUMBER))
    with pytest.raises(
        ActionNotAllowed,
        match="the question tasks of questionnaire ACME-TASK-1 are already attached",
    ):
        service.act(TRACKER, questionnaire_id, "attach_questions", AttachQuestions((question_id,)))
    for user in (BUYER, SUPPLIER):
        with pytest.raises(
            PermissionDenied, match="'attach_questions' on task ACME-TASK-1 is taken by the system"
        ):
            service.act(user, questionnaire_id, "attach_questions", AttachQuestions((question_id,)))
    with pytest.raises(
        PermissionDenied, match="'attach_questions' on task ACME-TASK-1 is for the requester"
    ):
        service.act(
            Actor.system("questionnaires", "supco"),
            questionnaire_id,
            "attach_questions",
            AttachQuestions((question_id,)),
        )


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (("t1",), "needs 2 question task ids, one per question in order; got 1"),
        (("t1", "t1"), "ids named twice \\['t1'\\]"),
        (("t1", " "), "blank or non-text ids \\[' '\\]"),
        (("t1", "task-1"), "the questionnaire's own id"),
    ],
)
def test_attaching_the_wrong_ids_is_refused(ids, message):
    service = _service()
    draft = NewTask("Q", "supco", Questionnaire("Q", FIVE[:2]))
    questionnaire_id = service.open(BUYER, "questionnaire", draft).task.id
    with pytest.raises(InvalidPayload, match=message):
        service.act(TRACKER, questionnaire_id, "attach_questions", AttachQuestions(ids))


def test_tracking_a_change_that_does_not_fit_is_refused():
    service = _service()
    sent = _send(service, FIVE[:2])
    qn = sent.questionnaire.id
    first = sent.questions[0].id
    with pytest.raises(
        InvalidPayload, match="'nope' is not one of its question tasks \\('task-2', 'task-3'\\)"
    ):
        service.act(TRACKER, qn, "mark_in_progress", QuestionChange("nope", "answered"))
    with pytest.raises(
        InvalidPayload,
        match="'done' is not a state of a question task; states: 'accepted', 'answered', "
        "'sent_back', 'unanswered'",
    ):
        service.act(TRACKER, qn, "mark_in_progress", QuestionChange(first, "done"))
    with pytest.raises(
        ActionNotAllowed,
        match="no change of one question's state leads questionnaire ACME-TASK-1 to 'accepted'",
    ):
        service.act(TRACKER, qn, "mark_accepted", QuestionChange(first, "accepted"))
    qn, only = _one(service, Question("Staff", T.NUMBER))
    with pytest.raises(
        InvalidPayload,
        match="with question 0 'answered' the questionnaire is 'complete', but 'mark_in_progress' "
        "leads to 'in_progress'; take 'mark_complete'",
    ):
        service.act(TRACKER, qn, "mark_in_progress", QuestionChange(only, "answered"))


TRACKING = ("track", "mark_unanswered", "mark_in_progress", "mark_complete", "mark_accepted")


@pytest.mark.parametrize("user", [SUPPLIER, BUYER], ids=["supplier", "buyer"])
def test_no_user_can_take_a_tracking_action_nor_is_offered_one(user):
    service = _service()
    sent = _send(service, FIVE[:3])
    qn = sent.questionnaire.id
    service.notifier.clear()
    for question in sent.questions:
        with pytest.raises(PermissionDenied, match="is taken by the system only"):
            service.act(user, qn, "mark_accepted", QuestionChange(question.id, "accepted"))
        for action in TRACKING:
            assert action not in service.allowed_actions(user, qn)
    stored = _stored(service, qn)
    assert stored.state == "unanswered"
    assert stored.data.answered == 0
    assert stored.version == sent.questionnaire.version
    assert service.notifier.sent == []


def test_sync_repairs_a_questionnaire_whose_record_disagrees_with_its_questions():
    service = _service()
    sent = _send(service, FIVE[:3])
    qn = sent.questionnaire.id
    # A questionnaire forged before tracking was the system's alone: "accepted 3/3".
    stored = _stored(service, qn)
    forged = attrs.evolve(
        stored,
        state="accepted",
        ball=None,
        resolved_at=START,
        data=attrs.evolve(stored.data, question_states=("accepted",) * 3),
        version=stored.version + 1,
    )
    service.repository.save(forged, stored.version)
    repaired = tf.Questionnaires(service).sync_questionnaire(BUYER, qn)
    assert repaired.state == "unanswered"
    assert repaired.data.question_states == ("unanswered",) * 3
    assert repaired.is_open
    assert {e.actor for e in repaired.history[-3:]} == {TRACKER}
    (line,) = tf.Questionnaires(service).sent_questionnaires(BUYER)
    assert line.progress == "0/3"


def test_sync_repairs_a_questionnaire_state_that_disagrees_with_its_record():
    service = _service()
    sent = _send(service, FIVE[:2])
    qn = sent.questionnaire.id
    stored = _stored(service, qn)
    forged = attrs.evolve(stored, state="complete", ball=Side.REQUESTER, version=stored.version + 1)
    service.repository.save(forged, stored.version)
    repaired = tf.Questionnaires(service).sync_questionnaire(BUYER, qn)
    assert (repaired.state, repaired.ball) == ("unanswered", Side.RECIPIENT)
    assert repaired.history[-1].action == "mark_unanswered"


def test_a_questionnaire_without_attached_questions_tracks_nothing():
    service = _service()
    draft = NewTask("Q", "supco", Questionnaire("Q", FIVE[:1]))
    questionnaire_id = service.open(BUYER, "questionnaire", draft).task.id
    assert service.allowed_actions(BUYER, questionnaire_id) == ("comment", "assign", "edit")
    with pytest.raises(ActionNotAllowed, match="has no question tasks attached yet"):
        service.act(TRACKER, questionnaire_id, "mark_complete", QuestionChange("t", "answered"))


# --- serialization and diagrams ----------------------------------------------------------------


ANSWERS = (
    (Question("Notes", T.FREE_TEXT), "All fine"),
    (Question("Colour", T.SINGLE_CHOICE, COLOURS), "Green"),
    (Question("Colours", T.MULTIPLE_CHOICE, COLOURS), ["Red", "Blue"]),
    (Question("ISO?", T.YES_NO), False),
    (Question("Turnover", T.NUMBER), "-1250.75"),
    (Question("Founded", T.DATE), date(1999, 5, 1)),
    (Question("Policy", T.FILE), _file()),
    (Question("Extra", T.FREE_TEXT, required=False), None),
)


def test_tasks_with_every_answer_type_round_trip_through_json():
    service = _service()
    sent = _send(service, tuple(q for q, _ in ANSWERS))
    tf.Questionnaires(service).delegate_question(
        SUPPLIER, sent.questions[0].id, COLLEAGUE.ref, "yours"
    )
    tf.Questionnaires(service).answer_questions(
        COLLEAGUE, sent.questionnaire.id, {i: value for i, (_, value) in enumerate(ANSWERS)}
    )
    tf.Questionnaires(service).send_back_question(BUYER, sent.questions[1].id, "Sure?")
    tf.Questionnaires(service).accept_answer(BUYER, sent.questions[2].id)
    serializer = Serializer(Registry([QUESTIONNAIRE, QUESTION]))
    for task_id in [sent.questionnaire.id, *_ids(sent.questions)]:
        task = _stored(service, task_id)
        text = json.dumps(serializer.dump_task(task))
        assert serializer.load_task(json.loads(text)) == task
        assert engine.replay(REGISTRY[task.kind].workflow, task) == task
        for entry in task.history:
            assert (
                serializer.load_entry(task.kind, serializer.dump_entry(task.kind, entry)) == entry
            )
    number = serializer.dump_task(_stored(service, sent.questions[4].id))["data"]["answer"]
    assert number["number"] == "-1250.75"


@pytest.mark.parametrize("workflow", [QUESTION_WORKFLOW, QUESTIONNAIRE_WORKFLOW])
def test_both_workflows_draw_as_mermaid(workflow):
    text = to_mermaid(workflow)
    assert text.startswith("stateDiagram-v2")
    for state in workflow.states:
        assert state.title in text


def test_question_payloads_say_what_they_carry():
    assert Delegate(COLLEAGUE.ref).visible_to_company("supco", "supco")
    assert not Delegate(COLLEAGUE.ref).visible_to_company("supco", "acme")
    assert T.YES_NO.label == "yes/no"
    assert T.MULTIPLE_CHOICE.has_options
    assert not T.NUMBER.has_options


# --- stateful checks of both workflows ------------------------------------------------------------

# The machine replays and serializes every task after every step: a smaller budget than the
# profile's keeps this file within its time.
_BUDGET = settings(max_examples=max(10, settings.default.max_examples // 5))

TestQuestionWorkflow = workflow_machine(REGISTRY, "question", builtin_strategies()).TestCase
TestQuestionWorkflow.settings = _BUDGET
TestQuestionnaireWorkflow = workflow_machine(
    REGISTRY, "questionnaire", builtin_strategies()
).TestCase
TestQuestionnaireWorkflow.settings = _BUDGET
