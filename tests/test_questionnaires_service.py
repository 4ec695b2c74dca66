"""The questionnaire calls of the service: answering many at once (Q2) and the overview (Q4)."""

import re
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

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
    TaskNotFound,
    TaskQuery,
)
from taskflow.application.questionnaires import QuestionnaireSummary
from taskflow.errors import InvalidAnswers, TaskflowError
from taskflow.kinds.question import QUESTION, Answer, Question, QuestionType
from taskflow.kinds.questionnaire import PART_OF, QUESTIONNAIRE, Questionnaire

START = datetime(2026, 5, 4, 8, 30, tzinfo=UTC)
BUYER = Actor("bea", "acme")
OTHER_BUYER = Actor("olga", "globex")
SUPPLIER = Actor("sam", "supco")
COLLEAGUE = Actor("sue", "supco")
OTHER_SUPPLIER = Actor("otto", "rivalco")
STRANGER = Actor("eve", "other")
T = QuestionType
COLOURS = ("Red", "Green", "Blue")


def _file(n=1):
    return FileRef("answer.pdf", PDF, 1000 + n, f"sha256:{n:064x}", f"files/{n}")


def _service():
    return tf.TaskService(
        registry=Registry([QUESTIONNAIRE, QUESTION]),
        repository=tf.InMemoryRepository(),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )


QUESTIONS = (
    Question("Do you hold ISO 9001?", T.YES_NO),
    Question("How many employees?", T.NUMBER),
    Question("Which colours do you make?", T.MULTIPLE_CHOICE, COLOURS),
    Question("When were you founded?", T.DATE),
    Question("Anything else?", T.FREE_TEXT, required=False),
)


def _send(service, questions=QUESTIONS, *, by=BUYER, to="supco", title="Self-assessment"):
    assignees = [SUPPLIER.ref] if to == "supco" else []
    draft = NewTask(title, to, Questionnaire(title, questions), assignees=assignees)
    return tf.Questionnaires(service).send_questionnaire(by, draft)


# --- answering many at once (Q2) -------------------------------------------------------------


def test_good_answers_are_saved_each_as_its_own_action_and_bad_ones_are_named():
    service = _service()
    sent = _send(service)
    ids = [q.id for q in sent.questions]
    with pytest.raises(InvalidAnswers) as caught:
        tf.Questionnaires(service).answer_questions(
            SUPPLIER,
            sent.questionnaire.id,
            {0: "yes", 1: "about forty", ids[2]: ["Red", "Blue"], 3: "1999-02-30", 4: None},
        )
    group = caught.value
    assert str(group) == (
        "questionnaire ACME-TASK-1: 2 of 5 answers refused, 3 saved (2 sub-exceptions)"
    )
    assert isinstance(group, TaskflowError)
    assert group.questionnaire == "ACME-TASK-1"
    assert group.questions == (ids[1], ids[3])
    assert [type(e) for e in group.exceptions] == [InvalidPayload, InvalidPayload]
    assert [e.__notes__ for e in group.exceptions] == [
        ["questions[1] 'How many employees?' (task ACME-TASK-3)"],
        ["questions[3] 'When were you founded?' (task ACME-TASK-5)"],
    ]
    assert re.search("'about forty' is not a number", str(group.exceptions[0]))
    assert re.search("'1999-02-30' is not a date", str(group.exceptions[1]))
    assert set(group.refused) == {ids[1], ids[3]}
    assert [o.task.id for o in group.saved] == [ids[0], ids[2], ids[4]]
    for index, answer in ((0, Answer(yes_no=True)), (2, Answer(choices=("Red", "Blue")))):
        task = service.get(SUPPLIER, ids[index])
        assert (task.state, task.data.answer) == ("answered", answer)
        assert [(e.action, e.actor) for e in task.history] == [
            ("open", BUYER),
            ("answer", SUPPLIER),
        ]
    for index in (1, 3):
        task = service.get(SUPPLIER, ids[index])
        assert (task.state, len(task.history)) == ("unanswered", 1)
    questionnaire = service.get(BUYER, sent.questionnaire.id)
    assert (questionnaire.state, questionnaire.data.answered) == ("in_progress", 3)


def test_answering_many_tells_the_requester_once_per_saved_answer():
    service = _service()
    sent = _send(service, QUESTIONS[:3])
    before = len(service.notifier.sent)
    outcomes = tf.Questionnaires(service).answer_questions(
        SUPPLIER, sent.questionnaire.id, {2: "Green", 0: False, 1: 7}
    )
    assert [o.task.id for o in outcomes] == [q.id for q in sent.questions]
    told = [(n.recipient, n.task_id, n.event) for n in service.notifier.sent[before:]]
    assert told == [
        *((BUYER.ref, q.id, "question_answered") for q in sent.questions),
        (BUYER.ref, sent.questionnaire.id, "questionnaire_complete"),
    ]


def test_except_star_handles_the_refusals_by_kind():
    service = _service()
    sent = _send(service, QUESTIONS[:2])
    tf.Questionnaires(service).answer_question(SUPPLIER, sent.questions[0].id, True)
    payload_errors, state_errors = [], []
    try:
        tf.Questionnaires(service).answer_questions(
            SUPPLIER, sent.questionnaire.id, {0: False, 1: "x"}
        )
    except* InvalidPayload as group:
        payload_errors.append(group)
    except* ActionNotAllowed as group:
        state_errors.append(group)
    (payloads,), (states,) = payload_errors, state_errors
    assert isinstance(payloads, InvalidAnswers)
    assert isinstance(states, InvalidAnswers)
    assert payloads.questions == (sent.questions[1].id,)
    assert states.questions == (sent.questions[0].id,)
    assert re.search(
        "'answered'; 'answer' needs 'sent_back' or 'unanswered'", str(states.exceptions[0])
    )


@pytest.mark.parametrize(
    ("answers", "note", "message"),
    [
        (
            {7: True},
            "answers[7]",
            r"has no question 7; name a question by its position \(0 to 1\) or its task id",
        ),
        ({"task-99": True}, "answers['task-99']", "has no question 'task-99'"),
        ({True: True}, "answers[True]", "has no question True"),
        ({-1: True}, "answers[-1]", "has no question -1"),
        ({(0,): True}, "answers[(0,)]", r"has no question \(0,\)"),
        (
            {0: True, "task-2": False},
            "questions[0] 'Do you hold ISO 9001?' (task ACME-TASK-2)",
            r"question 0 of questionnaire ACME-TASK-1 is named 2 times \(0 and 'task-2'\)",
        ),
    ],
)
def test_a_key_that_names_no_question_or_one_twice_is_refused(answers, note, message):
    service = _service()
    sent = _send(service, QUESTIONS[:2])
    with pytest.raises(InvalidAnswers) as caught:
        tf.Questionnaires(service).answer_questions(SUPPLIER, sent.questionnaire.id, answers)
    (error,) = caught.value.exceptions
    assert error.__notes__ == [note]
    assert re.search(message, str(error))
    assert service.get(SUPPLIER, sent.questions[0].id).state == "unanswered"


def test_the_whole_call_is_refused_when_it_cannot_be_taken_at_all():
    service = _service()
    sent = _send(service, QUESTIONS[:2])
    qn = sent.questionnaire.id
    with pytest.raises(
        PermissionDenied,
        match=r"answering questionnaire ACME-TASK-1 is for the recipient \(supco\); bea@acme is the requester",
    ):
        tf.Questionnaires(service).answer_questions(BUYER, qn, {0: True})
    with pytest.raises(InvalidPayload, match="names no question to answer"):
        tf.Questionnaires(service).answer_questions(SUPPLIER, qn, {})
    with pytest.raises(TaskNotFound):
        tf.Questionnaires(service).answer_questions(STRANGER, qn, {0: True})
    with pytest.raises(
        InvalidPayload, match="task ACME-TASK-2 is a 'question' task, not a 'questionnaire'"
    ):
        tf.Questionnaires(service).answer_questions(SUPPLIER, sent.questions[0].id, {0: True})
    assert all(service.get(SUPPLIER, q.id).state == "unanswered" for q in sent.questions)


def test_questions_of_lists_them_in_order_for_both_parties_only():
    service = _service()
    sent = _send(service)
    assert [
        q.id for q in tf.Questionnaires(service).questions_of(BUYER, sent.questionnaire.id)
    ] == [q.id for q in sent.questions]
    with pytest.raises(TaskNotFound):
        tf.Questionnaires(service).questions_of(STRANGER, sent.questionnaire.id)


# --- received and sent questionnaires (Q4, C13) ------------------------------------------------


def _line(summary: QuestionnaireSummary):
    return summary.number, summary.progress, summary.state, summary.state_label


def test_the_received_questionnaires_show_answered_vs_total_and_state():
    service = _service()
    first = _send(service, title="Quality")
    service.clock.advance(timedelta(days=1))
    second = _send(service, QUESTIONS[:1], title="Safety")
    tf.Questionnaires(service).answer_questions(SUPPLIER, first.questionnaire.id, {0: True, 1: 3})
    (a, b) = tf.Questionnaires(service).received_questionnaires(SUPPLIER)
    assert _line(a) == ("ACME-TASK-1", "2/5", "in_progress", "In progress")
    assert _line(b) == ("ACME-TASK-7", "0/1", "unanswered", "Unanswered")
    assert (a.title, a.requester_company, a.sent_by, a.recipient, a.sent_at) == (
        "Quality",
        "acme",
        BUYER.ref,
        "supco",
        START,
    )
    assert (a.id, a.answered, a.total, a.due_at) == (first.questionnaire.id, 2, 5, None)
    tf.Questionnaires(service).answer_question(SUPPLIER, second.questions[0].id, False)
    tf.Questionnaires(service).accept_answer(BUYER, second.questions[0].id)
    assert [
        _line(s)[1:3] for s in tf.Questionnaires(service).received_questionnaires(COLLEAGUE)
    ] == [
        ("2/5", "in_progress"),
        ("1/1", "accepted"),
    ]


def test_the_overview_filters_by_requester_state_and_date():
    service = _service()
    _send(service, title="Acme 1")  # ACME-TASK-1, day 0
    service.clock.advance(timedelta(days=2))
    globex = _send(service, QUESTIONS[:1], by=OTHER_BUYER, title="Globex")  # day 2
    service.clock.advance(timedelta(days=2))
    _send(service, QUESTIONS[:1], title="Acme 2")  # day 4
    tf.Questionnaires(service).answer_question(SUPPLIER, globex.questions[0].id, True)

    def titles(**filters):
        return [
            s.title for s in tf.Questionnaires(service).received_questionnaires(SUPPLIER, **filters)
        ]

    assert titles() == ["Acme 1", "Globex", "Acme 2"]
    assert titles(requester="acme") == ["Acme 1", "Acme 2"]
    assert titles(requester="globex") == ["Globex"]
    assert titles(states="complete") == ["Globex"]
    assert titles(states={"unanswered", "in_progress"}) == ["Acme 1", "Acme 2"]
    assert titles(received_from=START + timedelta(days=2)) == ["Globex", "Acme 2"]
    assert titles(received_until=START + timedelta(days=2)) == ["Acme 1", "Globex"]
    day_two = START + timedelta(days=2)
    assert titles(received_from=day_two, received_until=day_two) == ["Globex"]
    assert titles(requester="acme", states="complete") == []


class _Recording(tf.InMemoryRepository):
    """Keeps every query it is asked, so a test sees what the service left to the repository."""

    def __init__(self):
        super().__init__()
        self.asked: list[TaskQuery] = []

    def query(self, query):
        self.asked.append(query)
        return super().query(query)


def test_the_overviews_leave_partner_and_dates_to_the_repository():
    repository = _Recording()
    service = tf.TaskService(
        registry=tf.default_registry(),
        repository=repository,
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )
    _send(service, title="Acme 1")
    day = START + timedelta(days=1)
    assert (
        tf.Questionnaires(service).received_questionnaires(
            SUPPLIER, requester="globex", received_from=day
        )
        == []
    )
    assert repository.asked[-1] == TaskQuery(
        kind="questionnaire",
        company="supco",
        side=Side.RECIPIENT,
        requester_company="globex",
        created_from=day,
    )
    (sent,) = tf.Questionnaires(service).sent_questionnaires(
        BUYER, recipient="supco", sent_until=day
    )
    assert sent.title == "Acme 1"
    assert repository.asked[-1] == TaskQuery(
        kind="questionnaire",
        company="acme",
        side=Side.REQUESTER,
        recipient_company="supco",
        created_until=day,
    )


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        (
            {"states": "done"},
            r"cannot be filtered by state \['done'\]; states of 'questionnaire': \('unanswered', 'in_progress', 'complete', 'accepted'\)",
        ),
        (
            {"received_from": datetime(2026, 1, 1)},
            "received_from must be a timezone-aware datetime",
        ),
        ({"received_until": "2026-01-01"}, "received_until must be a timezone-aware datetime"),
        (
            {"received_from": START, "received_until": START - timedelta(days=1)},
            "received_from 2026-05-04T08:30:00[+]00:00 is after received_until",
        ),
    ],
)
def test_bad_overview_filters_are_refused(filters, message):
    service = _service()
    with pytest.raises(InvalidPayload, match=message):
        tf.Questionnaires(service).received_questionnaires(SUPPLIER, **filters)


def test_each_company_sees_only_its_own_questionnaires():
    service = _service()
    _send(service, title="To supco")
    _send(service, QUESTIONS[:1], to="rivalco", title="To rivalco")
    assert [s.title for s in tf.Questionnaires(service).received_questionnaires(SUPPLIER)] == [
        "To supco"
    ]
    assert [
        s.title for s in tf.Questionnaires(service).received_questionnaires(OTHER_SUPPLIER)
    ] == ["To rivalco"]
    assert tf.Questionnaires(service).received_questionnaires(STRANGER) == []
    assert tf.Questionnaires(service).received_questionnaires(BUYER) == []
    assert tf.Questionnaires(service).sent_questionnaires(SUPPLIER) == []


def test_the_requester_sees_its_sent_questionnaires_the_same_way():
    service = _service()
    _send(service, title="To supco")
    service.clock.advance(timedelta(hours=1))
    to_rival = _send(service, QUESTIONS[:1], to="rivalco", title="To rivalco")
    tf.Questionnaires(service).answer_question(OTHER_SUPPLIER, to_rival.questions[0].id, True)
    lines = [
        (s.title, s.recipient, s.progress, s.state)
        for s in tf.Questionnaires(service).sent_questionnaires(BUYER)
    ]
    assert lines == [
        ("To supco", "supco", "0/5", "unanswered"),
        ("To rivalco", "rivalco", "1/1", "complete"),
    ]
    assert [
        s.title for s in tf.Questionnaires(service).sent_questionnaires(BUYER, recipient="rivalco")
    ] == ["To rivalco"]
    assert [
        s.title for s in tf.Questionnaires(service).sent_questionnaires(BUYER, states=["complete"])
    ] == ["To rivalco"]
    later = START + timedelta(minutes=30)
    assert [
        s.title for s in tf.Questionnaires(service).sent_questionnaires(BUYER, sent_from=later)
    ] == ["To rivalco"]
    assert [
        s.title for s in tf.Questionnaires(service).sent_questionnaires(BUYER, sent_until=later)
    ] == ["To supco"]


# --- a model of the whole questionnaire, driven at random ------------------------------------

_GOOD = {
    T.FREE_TEXT: "We ship daily",
    T.SINGLE_CHOICE: "Green",
    T.MULTIPLE_CHOICE: ["Red", "Blue"],
    T.YES_NO: True,
    T.NUMBER: "12.5",
    T.DATE: "2024-05-01",
    T.FILE: _file(),
}
_BAD = {
    T.FREE_TEXT: 5,
    T.SINGLE_CHOICE: "Purple",
    T.MULTIPLE_CHOICE: ["Red", "Red"],
    T.YES_NO: "maybe",
    T.NUMBER: "twelve",
    T.DATE: "2024-13-01",
    T.FILE: "policy.pdf",
}
_WAITS_ON_SUPPLIER = frozenset({"unanswered", "sent_back"})
_SUPPLIER_USERS = (SUPPLIER, COLLEAGUE, Actor("tom", "supco"))


def _expected_overall(states):
    if all(s == "unanswered" for s in states):
        return "unanswered"
    if all(s == "accepted" for s in states):
        return "accepted"
    if all(s in ("answered", "accepted") for s in states):
        return "complete"
    return "in_progress"


def _question(kind):
    return Question(f"About {kind.value}?", kind, COLOURS if kind.has_options else ())


class QuestionnaireModel(RuleBasedStateMachine):
    """Send one questionnaire; answer, delegate, send back and accept at random; compare a model."""

    def __init__(self):
        super().__init__()
        self.service = _service()

    @initialize(kinds=st.lists(st.sampled_from(QuestionType), min_size=1, max_size=4))
    def send(self, kinds):
        self.kinds = kinds
        sent = _send(self.service, tuple(_question(k) for k in kinds))
        self.questionnaire = sent.questionnaire.id
        self.ids = [q.id for q in sent.questions]
        self.states = ["unanswered"] * len(kinds)
        self.holder = [SUPPLIER] * len(kinds)

    def _answerable(self, index):
        return self.states[index] in _WAITS_ON_SUPPLIER

    @rule(data=st.data(), good=st.booleans())
    def answer_one(self, data, good):
        index = data.draw(st.integers(0, len(self.ids) - 1))
        value = (_GOOD if good else _BAD)[self.kinds[index]]
        actor = self.holder[index]
        if self._answerable(index) and good:
            tf.Questionnaires(self.service).answer_question(actor, self.ids[index], value)
            self.states[index] = "answered"
        else:
            wanted = InvalidPayload if self._answerable(index) else ActionNotAllowed
            with pytest.raises(wanted):
                tf.Questionnaires(self.service).answer_question(actor, self.ids[index], value)

    @rule(data=st.data())
    def answer_many(self, data):
        indexes = data.draw(st.sets(st.integers(0, len(self.ids) - 1), min_size=1))
        good = {i: data.draw(st.booleans()) for i in indexes}
        by_id = data.draw(st.booleans())
        answers = {
            (self.ids[i] if by_id else i): (_GOOD if good[i] else _BAD)[self.kinds[i]]
            for i in indexes
        }
        accepted = sorted(i for i in indexes if good[i] and self._answerable(i))
        refused = sorted(set(indexes) - set(accepted))
        if refused:
            with pytest.raises(InvalidAnswers) as caught:
                tf.Questionnaires(self.service).answer_questions(
                    SUPPLIER, self.questionnaire, answers
                )
            saved = caught.value.saved
            assert caught.value.questions == tuple(self.ids[i] for i in refused)
            for i, error in zip(refused, caught.value.exceptions, strict=True):
                assert error.__notes__[0].startswith(f"questions[{i}] ")
        else:
            saved = tf.Questionnaires(self.service).answer_questions(
                SUPPLIER, self.questionnaire, answers
            )
        assert [o.task.id for o in saved] == [self.ids[i] for i in accepted]
        for i in accepted:
            self.states[i] = "answered"

    @rule(data=st.data(), to=st.sampled_from(_SUPPLIER_USERS))
    def delegate(self, data, to):
        index = data.draw(st.integers(0, len(self.ids) - 1))

        def call():
            return tf.Questionnaires(self.service).delegate_question(
                SUPPLIER, self.ids[index], to.ref
            )

        if not self._answerable(index):
            with pytest.raises(ActionNotAllowed):
                call()
        elif self.holder[index] == to:
            with pytest.raises(InvalidPayload, match="already the only assignee"):
                call()
        else:
            call()
            self.holder[index] = to

    @rule(data=st.data())
    def send_back(self, data):
        index = data.draw(st.integers(0, len(self.ids) - 1))
        if self.states[index] == "answered":
            tf.Questionnaires(self.service).send_back_question(
                BUYER, self.ids[index], "Please check"
            )
            self.states[index] = "sent_back"
        else:
            with pytest.raises(ActionNotAllowed):
                tf.Questionnaires(self.service).send_back_question(
                    BUYER, self.ids[index], "Please check"
                )

    @rule(data=st.data())
    def accept(self, data):
        index = data.draw(st.integers(0, len(self.ids) - 1))
        if self.states[index] == "answered":
            tf.Questionnaires(self.service).accept_answer(BUYER, self.ids[index])
            self.states[index] = "accepted"
        else:
            with pytest.raises(ActionNotAllowed):
                tf.Questionnaires(self.service).accept_answer(BUYER, self.ids[index])

    @invariant()
    def the_overview_matches_the_model(self):
        (line,) = tf.Questionnaires(self.service).received_questionnaires(COLLEAGUE)
        answered = sum(s in ("answered", "accepted") for s in self.states)
        assert (line.answered, line.total) == (answered, len(self.states))
        assert line.state == _expected_overall(self.states)
        (sent,) = tf.Questionnaires(self.service).sent_questionnaires(BUYER)
        assert sent == line

    @invariant()
    def every_task_matches_the_model(self):
        questionnaire = self.service.get(BUYER, self.questionnaire)
        assert list(questionnaire.data.question_states) == self.states
        assert questionnaire.state == _expected_overall(self.states)
        for task_id, state, holder in zip(self.ids, self.states, self.holder, strict=True):
            task = self.service.get(SUPPLIER, task_id)
            assert task.state == state
            assert task.assignees_of("supco") == (holder.ref,)

    @invariant()
    def inboxes_hold_whatever_waits_on_their_owner(self):
        for user in _SUPPLIER_USERS:
            mine = [
                i
                for i, (s, h) in enumerate(zip(self.states, self.holder, strict=True))
                if s in _WAITS_ON_SUPPLIER and h == user
            ]
            assert [t.id for t in self.service.inbox(user)] == [self.ids[i] for i in mine]
        waiting = [self.ids[i] for i, s in enumerate(self.states) if s == "answered"]
        if _expected_overall(self.states) == "complete":
            waiting = [self.questionnaire, *waiting]
        assert [t.id for t in self.service.inbox(BUYER)] == waiting


TestQuestionnaireModel = QuestionnaireModel.TestCase
TestQuestionnaireModel.settings = settings(
    max_examples=max(10, settings.default.max_examples // 2), stateful_step_count=25
)


def test_an_unknown_questionnaire_is_not_found():
    service = _service()
    with pytest.raises(TaskNotFound):
        tf.Questionnaires(service).questions_of(SUPPLIER, TaskId("nope"))
    with pytest.raises(TaskNotFound):
        tf.Questionnaires(service).sync_questionnaire(SUPPLIER, TaskId("nope"))


class _Interleaving(tf.InMemoryRepository):
    """Lets someone else save the task `target` just before each of our next `times` saves of it."""

    def __init__(self):
        super().__init__()
        self.target = None
        self.times = 0

    def commit(self, changes):
        for task, _ in changes.saved:
            if task.id == self.target and self.times:
                self.times -= 1
                current = self.get(task.id)
                bumped = attrs.evolve(current, version=current.version + 1)
                super().commit(tf.Changeset(saved=[(bumped, current.version)]))
        return super().commit(changes)


def _interleaved_service():
    repository = _Interleaving()
    service = tf.TaskService(
        registry=Registry([QUESTIONNAIRE, QUESTION]),
        repository=repository,
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )
    return service, repository


def test_recording_on_the_questionnaire_retries_after_someone_else_saved_it():
    service, repository = _interleaved_service()
    sent = _send(service, QUESTIONS[:2])
    repository.target, repository.times = sent.questionnaire.id, 2
    tf.Questionnaires(service).answer_question(SUPPLIER, sent.questions[0].id, True)
    assert service.get(BUYER, sent.questionnaire.id).data.question_states == (
        "answered",
        "unanswered",
    )


def test_recording_gives_up_after_three_conflicts_but_the_answer_stands_and_is_retried():
    service, repository = _interleaved_service()
    sent = _send(service, QUESTIONS[:2])
    repository.target, repository.times = sent.questionnaire.id, 3
    outcome = tf.Questionnaires(service).answer_question(SUPPLIER, sent.questions[0].id, True)
    assert outcome.task.state == "answered"
    assert service.get(SUPPLIER, sent.questions[0].id).state == "answered"
    assert service.get(BUYER, sent.questionnaire.id).data.question_states[0] == "unanswered"
    # The handler's event waits in the outbox; the next delivery round records it.
    service.clock.advance(service.retry.delay(1))
    assert service.deliver().delivered == 1
    assert service.get(BUYER, sent.questionnaire.id).state == "in_progress"


def test_a_question_linked_to_something_else_records_nothing():
    service = _service()
    sent = _send(service, QUESTIONS[:1])
    draft = NewTask(
        "Loose",
        "supco",
        Question("Loose?", T.YES_NO),
        links=[Link(PART_OF, sent.questions[0].id)],
    )
    loose = service.open(BUYER, "question", draft).task
    before = service.get(BUYER, sent.questions[0].id)
    tf.Questionnaires(service).answer_question(SUPPLIER, loose.id, True)
    assert service.get(BUYER, sent.questions[0].id) == before
    other = NewTask(
        "Other", "supco", Question("Other?", T.YES_NO), links=[Link(PART_OF, sent.questionnaire.id)]
    )
    stray = service.open(BUYER, "question", other).task
    tf.Questionnaires(service).answer_question(SUPPLIER, stray.id, True)
    assert service.get(BUYER, sent.questionnaire.id).data.question_states == ("unanswered",)


class _FailingCommit(tf.InMemoryRepository):
    """Refuses the next commit as a full disk would."""

    def commit(self, changes):
        msg = "disk full"
        raise tf.StorageError(msg)


def test_sending_is_one_commit_so_a_failed_write_leaves_no_orphan_question_tasks():
    repository = _FailingCommit()
    service = tf.TaskService(
        registry=Registry([QUESTIONNAIRE, QUESTION]),
        repository=repository,
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )
    with pytest.raises(tf.StorageError, match="disk full"):
        _send(service)
    assert len(repository) == 0
    assert repository.pending() == []


def test_sending_writes_the_questionnaire_and_every_question_in_one_commit():
    commits = []

    class Counting(tf.InMemoryRepository):
        def commit(self, changes):
            commits.append((len(changes.added), len(changes.saved)))
            return super().commit(changes)

    service = tf.TaskService(
        registry=Registry([QUESTIONNAIRE, QUESTION]),
        repository=Counting(),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )
    sent = _send(service)
    assert commits == [(1 + len(QUESTIONS), 0)]
    assert sent.questionnaire.version == 2  # opened, then the questions attached
    assert [e.action for e in sent.questionnaire.history] == ["open", "attach_questions"]
