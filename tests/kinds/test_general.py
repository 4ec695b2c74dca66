"""General tasks (SP7): answered with a PDF; the requester accepts or asks again."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import settings

import taskflow as tf
from taskflow import (
    PDF,
    ActionNotAllowed,
    Actor,
    FileRef,
    InvalidPayload,
    NewTask,
    PermissionDenied,
    Registry,
    TaskNotFound,
)
from taskflow.diagrams import to_mermaid
from taskflow.kinds.general import GENERAL, GENERAL_WORKFLOW, AskAgain, GeneralRequest, UploadAnswer
from taskflow.serialization import Serializer
from taskflow.testing.stateful import workflow_machine

START = datetime(2026, 5, 4, 8, 30, tzinfo=UTC)
BUYER = Actor("bea", "acme")
SUPPLIER = Actor("sam", "supco")
STRANGER = Actor("eve", "other")
REGISTRY = Registry([GENERAL])


def _file(name="answer.pdf", media_type=PDF, n=1):
    return FileRef(name, media_type, 1000 + n, f"sha256:{n:064x}", f"files/{n}")


ANSWER = _file()


def _service():
    return tf.TaskService(
        registry=REGISTRY,
        repository=tf.InMemoryRepository(),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )


def _send(service):
    draft = NewTask(
        "Organisation chart",
        "supco",
        GeneralRequest(),
        body="Please send your current organisation chart.",
        assignees=[SUPPLIER.ref],
    )
    return service.open(BUYER, "general", draft).task.id


def _answered(service):
    task_id = _send(service)
    service.act(SUPPLIER, task_id, "upload", UploadAnswer(ANSWER))
    return task_id


def _inboxes(service, task_id):
    return [a.user for a in (BUYER, SUPPLIER) if task_id in {t.id for t in service.inbox(a)}]


def _told(service):
    told = [(n.recipient.user, n.event) for n in service.notifier.sent]
    service.notifier.clear()
    return told


def test_uploaded_pdf_answers_the_task_and_the_requester_accepts_it():
    service = _service()
    task_id = _send(service)
    assert _inboxes(service, task_id) == ["sam"]
    assert service.allowed_actions(SUPPLIER, task_id)[0] == "upload"
    task = service.act(SUPPLIER, task_id, "upload", UploadAnswer(ANSWER)).task
    assert (task.state, task.data.answer, task.files) == ("answered", ANSWER, (ANSWER,))
    assert _inboxes(service, task_id) == ["bea"]
    assert service.allowed_actions(BUYER, task_id)[:2] == ("accept", "ask_again")
    task = service.act(BUYER, task_id, "accept").task
    assert (task.state, task.is_open, task.resolved_at) == ("accepted", False, START)
    assert _inboxes(service, task_id) == []


def test_asking_again_returns_the_task_to_the_supplier_with_the_reason():
    service = _service()
    task_id = _answered(service)
    task = service.act(BUYER, task_id, "ask_again", AskAgain("This chart is from 2019")).task
    assert (task.state, task.data.ask_again_reason) == ("asked_again", "This chart is from 2019")
    assert _inboxes(service, task_id) == ["sam"]
    second = _file("chart-2026.pdf", n=2)
    task = service.act(SUPPLIER, task_id, "upload", UploadAnswer(second)).task
    assert (task.state, task.data.answer, task.data.ask_again_reason) == ("answered", second, None)
    assert task.files == (ANSWER, second)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            UploadAnswer(_file("chart.xlsx", "application/vnd.ms-excel")),
            r"'upload' on task ACME-TASK-1 accepts only PDF \(application/pdf\); "
            r"'chart.xlsx' is application/vnd.ms-excel",
        ),
        (None, "'upload' on task ACME-TASK-1 needs a UploadAnswer payload, got nothing"),
        (AskAgain("x"), "needs a UploadAnswer payload, got AskAgain"),
    ],
)
def test_bad_answer_is_refused_and_changes_nothing(payload, message):
    service = _service()
    task_id = _send(service)
    before = service.repository.get(task_id)
    with pytest.raises(InvalidPayload, match=message):
        service.act(SUPPLIER, task_id, "upload", payload)
    assert service.repository.get(task_id) is before


def test_ask_again_needs_a_reason():
    with pytest.raises(InvalidPayload, match=r"AskAgain\.reason must be a non-blank string"):
        AskAgain("  ")


@pytest.mark.parametrize(
    ("answered", "actor", "action", "payload", "error", "message"),
    [
        (
            False,
            BUYER,
            "upload",
            UploadAnswer(ANSWER),
            PermissionDenied,
            r"'upload' on task ACME-TASK-1 is for the recipient \(supco\); bea@acme is the requester",
        ),
        (
            True,
            SUPPLIER,
            "accept",
            None,
            PermissionDenied,
            r"'accept' on task ACME-TASK-1 is for the requester \(acme\); sam@supco is the recipient",
        ),
        (True, SUPPLIER, "ask_again", AskAgain("x"), PermissionDenied, "is for the requester"),
        (False, BUYER, "accept", None, ActionNotAllowed, r"'requested'; 'accept' needs 'answered'"),
        (
            False,
            BUYER,
            "ask_again",
            AskAgain("x"),
            ActionNotAllowed,
            "'ask_again' needs 'answered'",
        ),
        (
            True,
            SUPPLIER,
            "upload",
            UploadAnswer(ANSWER),
            ActionNotAllowed,
            r"'answered'; 'upload' needs 'asked_again' or 'requested'",
        ),
        (True, BUYER, "ask_again", None, InvalidPayload, "needs a AskAgain payload, got nothing"),
    ],
)
def test_wrong_side_state_or_payload_is_refused_with_a_typed_error(
    answered, actor, action, payload, error, message
):
    service = _service()
    task_id = _answered(service) if answered else _send(service)
    with pytest.raises(error, match=message):
        service.act(actor, task_id, action, payload)


def test_accepted_task_takes_only_comments():
    service = _service()
    task_id = _answered(service)
    service.act(BUYER, task_id, "accept")
    with pytest.raises(ActionNotAllowed, match=r"'accepted'; .*allowed now: 'comment'$"):
        service.act(BUYER, task_id, "ask_again", AskAgain("late"))


def test_stranger_cannot_see_or_answer_a_general_task():
    service = _service()
    task_id = _send(service)
    with pytest.raises(TaskNotFound):
        service.act(STRANGER, task_id, "upload", UploadAnswer(ANSWER))


def test_each_step_notifies_the_other_side():
    service = _service()
    task_id = _send(service)
    assert _told(service) == [("sam", "opened")]
    service.act(SUPPLIER, task_id, "upload", UploadAnswer(ANSWER))
    assert _told(service) == [("bea", "answer_uploaded")]
    service.act(BUYER, task_id, "ask_again", AskAgain("Outdated"))
    assert _told(service) == [("sam", "asked_again")]
    service.act(SUPPLIER, task_id, "upload", UploadAnswer(_file(n=2)))
    assert _told(service) == [("bea", "answer_uploaded")]
    service.act(BUYER, task_id, "accept")
    assert _told(service) == [("sam", "answer_accepted")]


def test_history_records_every_round_and_the_task_round_trips_through_json():
    service = _service()
    task_id = _send(service)
    steps = [
        (SUPPLIER, "upload", UploadAnswer(ANSWER)),
        (BUYER, "ask_again", AskAgain("Outdated")),
        (SUPPLIER, "upload", UploadAnswer(_file(n=2))),
        (BUYER, "accept", None),
    ]
    for actor, action, payload in steps:
        service.clock.advance(timedelta(hours=1))
        service.act(actor, task_id, action, payload)
    task = service.repository.get(task_id)
    assert [(e.action, e.from_state, e.to_state) for e in task.history] == [
        ("open", None, "requested"),
        ("upload", "requested", "answered"),
        ("ask_again", "answered", "asked_again"),
        ("upload", "asked_again", "answered"),
        ("accept", "answered", "accepted"),
    ]
    serializer = Serializer(REGISTRY)
    assert serializer.load_task(json.loads(json.dumps(serializer.dump_task(task)))) == task
    assert service.task_at(BUYER, task_id, START + timedelta(hours=2)).state == "asked_again"


def test_general_workflow_draws_as_mermaid():
    text = to_mermaid(GENERAL_WORKFLOW)
    assert "answered --> asked_again : ask_again (requester)" in text


TestGeneralWorkflow = workflow_machine(REGISTRY, "general").TestCase
TestGeneralWorkflow.settings = settings(
    TestGeneralWorkflow.settings, stateful_step_count=25, deadline=None
)
