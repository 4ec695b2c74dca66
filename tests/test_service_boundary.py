"""Every public service call checks its arguments once, at the boundary, with typed errors."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

import taskflow as tf
from taskflow import Actor, InvalidPayload, NewTask
from taskflow.kinds.document import DocumentRequest

START = datetime(2026, 5, 4, 8, 30, tzinfo=UTC)
BUYER = Actor("bea", "acme")
SAM = Actor("sam", "supco")


@pytest.fixture
def service():
    return tf.TaskService(
        registry=tf.default_registry(),
        repository=tf.InMemoryRepository(),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )


def _open(service, actor=BUYER):
    draft = NewTask("Cert", "supco", DocumentRequest("ISO"), assignees=(SAM.ref,))
    return service.open(actor, "document_request", draft).task


@pytest.mark.parametrize("version", [True, 1.0, "1", 0])
def test_malformed_expected_version_is_invalid_payload_not_a_conflict(service, version):
    task = _open(service)
    with pytest.raises(InvalidPayload) as caught:
        service.act(BUYER, task.id, "comment", tf.AddComment("hi"), expected_version=version)
    assert caught.value.field == "expected_version"
    assert service.get(BUYER, task.id).version == task.version


@pytest.mark.parametrize("at", [None, date(2026, 5, 4), datetime(2026, 5, 4), "2026-05-04"])
def test_task_at_refuses_a_naive_datetime_a_date_and_none(service, at):
    task = _open(service)
    with pytest.raises(InvalidPayload) as caught:
        service.task_at(BUYER, task.id, at)
    assert caught.value.field == "at"


@pytest.mark.parametrize(
    "call",
    [
        lambda s, t: s.get("bea@acme", t),
        lambda s, t: s.act(None, t, "claim"),
        lambda s, t: s.inbox("bea"),
        lambda s, t: s.teambox(object()),
        lambda s, t: s.dashboard({"user": "bea"}),
        lambda s, t: s.allowed_actions(BUYER.ref, t),
    ],
)
def test_a_non_actor_actor_is_invalid_payload(service, call):
    task = _open(service)
    with pytest.raises(InvalidPayload) as caught:
        call(service, task.id)
    assert caught.value.field == "actor"


def test_a_non_str_task_id_is_invalid_payload(service):
    with pytest.raises(InvalidPayload) as caught:
        service.get(BUYER, 7)
    assert caught.value.field == "task_id"


def test_ids_differing_only_in_case_never_share_a_task_number(service):
    first = _open(service, Actor("bea", "acme"))
    second = _open(service, Actor("ann", "ACME"))
    assert (first.number, second.number) == ("ACME-TASK-1", "ACME-TASK-2")


def test_a_refused_draft_takes_no_number(service):
    with pytest.raises(InvalidPayload):
        service.open(BUYER, "document_request", NewTask("Cert", "supco", DocumentRequest(" ")))
    assert _open(service).number == "ACME-TASK-1"
