"""A unit of work checks its own arguments: a host calling it directly gets a typed error naming the field."""

import pytest

import taskflow as tf
from taskflow.kinds.document import DocumentRequest

BUYER, SUPPLIER = tf.Actor("bea", "acme"), tf.Actor("sam", "supco")

CASES = [
    ("actor", lambda u, t: u.get("bea", t.id)),
    ("task_id", lambda u, t: u.get(BUYER, 7)),
    ("actor", lambda u, t: u.act("sam", t.id, "comment")),
    ("task_id", lambda u, t: u.act(SUPPLIER, 5, "comment")),
    ("action", lambda u, t: u.act(SUPPLIER, t.id, 5)),
    ("expected_version", lambda u, t: u.act(SUPPLIER, t.id, "decline", expected_version=True)),
    ("actor", lambda u, t: u.open("bea", "document_request", None)),
    ("draft", lambda u, t: u.open(BUYER, "document_request", "a draft")),
]


@pytest.mark.parametrize(("field", "call"), CASES)
def test_a_malformed_argument_is_refused_naming_it_and_nothing_is_stored(field, call):
    service = tf.TaskService(
        registry=tf.default_registry(),
        repository=tf.InMemoryRepository(),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(),
        ids=tf.SequentialIds(),
    )
    task = service.open(
        BUYER, "document_request", tf.NewTask("ISO", "supco", DocumentRequest("ISO"))
    ).task
    with pytest.raises(tf.TaskflowError) as refused, service.unit_of_work() as uow:
        call(uow, task)
    assert getattr(refused.value, "field", None) == field
    assert service.get(BUYER, task.id) == task
    after = service.open(
        BUYER, "document_request", tf.NewTask("Next", "supco", DocumentRequest("X"))
    ).task
    assert after.number == "ACME-TASK-2"  # no number was taken by the refused call
