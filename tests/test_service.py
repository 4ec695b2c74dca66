from datetime import UTC, date, datetime, timedelta

import pytest

import taskflow as tf
from taskflow import (
    PDF,
    Actor,
    ConcurrencyConflict,
    Edit,
    FileRef,
    InvalidPayload,
    NewTask,
    TaskNotFound,
    TaskQuery,
    UnknownKind,
    Visibility,
)
from taskflow.kinds.document import Decline, DocumentRequest, UploadDocument

START = datetime(2026, 5, 4, 8, 30, tzinfo=UTC)
BUYER = Actor("bea", "acme")
BUYER2 = Actor("bob", "acme")
SAM = Actor("sam", "supco")
SUE = Actor("sue", "supco")
EVE = Actor("eve", "other")
PDF_FILE = FileRef("c.pdf", PDF, 10, "sha256:1", "files/1")


@pytest.fixture
def service():
    return tf.TaskService(
        registry=tf.default_registry(),
        repository=tf.InMemoryRepository(),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )


def _open(service, actor=BUYER, recipient="supco", assignees=(SAM.ref,), **more):
    draft = NewTask("Cert", recipient, DocumentRequest("ISO"), assignees=assignees, **more)
    return service.open(actor, "document_request", draft).task


def _sent(service):
    return [(n.recipient.user, n.event) for n in service.notifier.sent]


def test_numbers_are_per_requester_company_and_use_its_code(service):
    assert [_open(service).number for _ in range(2)] == ["ACME-TASK-1", "ACME-TASK-2"]
    other = _open(service, actor=Actor("ola", "initech"), recipient="supco")
    assert other.number == "INITECH-TASK-1"


def test_company_code_is_chosen_by_the_host(service):
    service.company_code = lambda company: {"acme": "AC"}[company]
    assert _open(service).number == "AC-TASK-1"


def test_refused_draft_takes_no_number(service):
    with pytest.raises(InvalidPayload):
        _open(service, assignees=(EVE.ref,))
    with pytest.raises(UnknownKind):
        service.open(BUYER, "nope", NewTask("x", "supco", DocumentRequest("ISO")))
    assert _open(service).number == "ACME-TASK-1"
    assert len(service.repository) == 1


def test_stranger_company_cannot_see_or_touch_a_task(service):
    task = _open(service)
    for call in (
        lambda: service.get(EVE, task.id),
        lambda: service.act(EVE, task.id, "decline", Decline("x")),
        lambda: service.allowed_actions(EVE, task.id),
        lambda: service.comment(EVE, task.id, "hi"),
        lambda: service.task_at(EVE, task.id, START),
    ):
        with pytest.raises(TaskNotFound, match=f"no task with id '{task.id}' is visible here"):
            call()
    assert service.inbox(EVE) == service.teambox(EVE) == []
    assert service.dashboard(EVE).counts == {}
    assert service.find(EVE, TaskQuery()) == []
    assert service.find(EVE, TaskQuery(company="acme")) == []
    assert service.repository.get(task.id).version == 1


def test_unknown_task_id_is_not_found(service):
    with pytest.raises(TaskNotFound):
        service.get(BUYER, "missing")


def test_internal_comment_is_visible_only_to_the_writer_company(service):
    task = _open(service)
    service.comment(SAM, task.id, "ask Sue", Visibility.INTERNAL)
    outcome = service.comment(SAM, task.id, "on it")
    assert [c.text for c in outcome.task.comments] == ["ask Sue", "on it"]
    assert [c.text for c in service.get(BUYER, task.id).comments] == ["on it"]
    assert [c.text for c in service.get(SUE, task.id).comments] == ["ask Sue", "on it"]
    assert [e.action for e in service.get(BUYER, task.id).history] == ["open", "comment"]


def test_notifications_follow_the_ball_and_never_reach_the_actor(service):
    task = _open(service)
    assert _sent(service) == [("sam", "opened")]
    service.comment(SAM, task.id, "internal note", Visibility.INTERNAL)
    service.comment(SAM, task.id, "public note")
    service.act(SAM, task.id, "upload", UploadDocument(PDF_FILE))
    assert _sent(service)[1:] == [("bea", "commented"), ("bea", "document_uploaded")]


def test_internal_comment_notifies_colleagues_only(service):
    task = _open(service)
    service.assign(SAM, task.id, [SAM.ref, SUE.ref])
    service.notifier.clear()
    service.comment(SAM, task.id, "Sue, can you?", Visibility.INTERNAL)
    assert _sent(service) == [("sue", "commented")]


def test_requester_watchers_hear_of_answers(service):
    task = _open(service, watchers=(BUYER2.ref,))
    service.notifier.clear()
    service.act(SAM, task.id, "upload", UploadDocument(PDF_FILE))
    assert _sent(service) == [("bea", "document_uploaded"), ("bob", "document_uploaded")]


def test_task_without_recipient_assignee_waits_in_the_teambox(service):
    task = _open(service, assignees=())
    assert _sent(service) == []
    assert [t.id for t in service.teambox(SAM)] == [task.id]
    assert service.inbox(SAM) == []
    claimed = service.claim(SUE, task.id).task
    assert claimed.assignees_of("supco") == (SUE.ref,)
    assert [t.id for t in service.inbox(SUE)] == [task.id]


def test_claim_takes_a_colleague_task_and_tells_the_colleague(service):
    task = _open(service)
    service.notifier.clear()
    service.claim(SUE, task.id)
    assert service.inbox(SAM) == []
    assert [t.id for t in service.inbox(SUE)] == [task.id]
    assert _sent(service) == [("sam", "claimed")]


def test_assign_moves_the_task_between_inboxes_and_tells_new_assignees(service):
    task = _open(service)
    service.notifier.clear()
    service.assign(SAM, task.id, [SUE.ref])
    assert service.inbox(SAM) == []
    assert [t.id for t in service.inbox(SUE)] == [task.id]
    assert _sent(service) == [("sue", "assigned")]


def test_inbox_follows_the_ball(service):
    task = _open(service)
    assert [t.id for t in service.inbox(SAM)] == [task.id]
    assert service.inbox(BUYER) == []
    service.act(SAM, task.id, "upload", UploadDocument(PDF_FILE))
    assert service.inbox(SAM) == []
    assert [t.id for t in service.inbox(BUYER)] == [task.id]
    assert [t.id for t in service.teambox(BUYER2)] == [task.id]
    assert service.inbox(BUYER2) == []
    service.act(BUYER, task.id, "accept")
    assert service.inbox(BUYER) == service.teambox(BUYER) == []


def test_dashboard_counts_by_kind_and_state(service):
    first = _open(service)
    _open(service)
    service.act(SAM, first.id, "upload", UploadDocument(PDF_FILE))
    dashboard = service.dashboard(SAM)
    assert dashboard.counts == {
        ("document_request", "requested"): 1,
        ("document_request", "uploaded"): 1,
    }
    assert dashboard.total() == 2
    assert dashboard.total("product_document_request") == 0


def test_edit_changes_fields_while_open_only(service):
    task = _open(service)
    due = START + timedelta(days=7)
    edited = service.edit(BUYER, task.id, Edit(subject="ISO 9001 cert", due_at=due)).task
    assert (edited.subject, edited.due_at) == ("ISO 9001 cert", due)
    service.act(SAM, task.id, "upload", UploadDocument(PDF_FILE))
    service.act(BUYER, task.id, "accept")
    with pytest.raises(tf.ActionNotAllowed, match="'edit' needs an open state"):
        service.edit(BUYER, task.id, Edit(subject="late"))


def test_stale_expected_version_is_a_conflict_and_changes_nothing(service):
    task = _open(service)
    service.comment(SAM, task.id, "first")
    with pytest.raises(
        ConcurrencyConflict, match="expected version 1, but the stored version is 2"
    ):
        service.act(BUYER, task.id, "comment", tf.AddComment("x"), expected_version=1)
    assert service.repository.get(task.id).version == 2
    assert service.act(BUYER, task.id, "comment", tf.AddComment("x"), expected_version=2)


def test_find_is_scoped_to_the_actor_company(service):
    mine = _open(service, due_at=START + timedelta(days=1))
    _open(service, actor=Actor("ola", "initech"), recipient="supco")
    due_soon = TaskQuery(due_before=START + timedelta(days=2))
    assert [t.id for t in service.find(BUYER, due_soon)] == [mine.id]
    assert len(service.find(SAM, TaskQuery())) == 2


def test_task_at_rebuilds_the_past(service):
    task = _open(service)
    service.clock.advance(timedelta(hours=1))
    service.act(SAM, task.id, "upload", UploadDocument(PDF_FILE, date(2027, 1, 1)))
    assert service.task_at(BUYER, task.id, START).state == "requested"
    assert service.task_at(BUYER, task.id, START - timedelta(days=1)) is None
    assert service.task_at(BUYER, task.id, START + timedelta(hours=1)).state == "uploaded"
