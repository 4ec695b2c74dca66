"""What docs/security.md says about limits and erasure holds: the service enforces the limits
(the repositories store what they are given), and erasure leaves queued outbox messages as they
were, so the host must deliver or drop them.
"""

import json
from pathlib import Path

import attrs
import pytest

import taskflow as tf
from taskflow.domain.erasure import DataSubject
from taskflow.kinds.document import DocumentRequest

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
BUYER, SUPPLIER = tf.Actor("bea", "acme"), tf.Actor("sam", "supco")
OFFICER = tf.Actor("olivia", "acme", roles={"privacy"})


def _service(**options):
    registry = tf.default_registry()
    return tf.TaskService(
        registry=registry,
        repository=tf.InMemoryRepository(registry=registry),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(),
        ids=tf.SequentialIds(),
        **options,
    )


def _draft(subject="ISO cert"):
    return tf.NewTask(subject, "supco", DocumentRequest("ISO 9001"), assignees=[SUPPLIER.ref])


def test_limits_are_the_services_and_a_repository_stores_what_it_is_given():
    service = _service(limits=tf.Limits(subject=10))
    with pytest.raises(tf.LimitExceeded):
        service.open(BUYER, "document_request", _draft("x" * 11))
    task = service.open(BUYER, "document_request", _draft()).task
    stored = service.repository.get(task.id)
    longer = attrs.evolve(stored, subject="x" * 11, version=stored.version + 1)
    service.repository.save(longer, stored.version)  # no limit checked here
    assert service.repository.get(task.id).subject == "x" * 11
    assert "not by the repositories" in PAGE


def test_erasure_does_not_rewrite_outbox_messages_queued_before_it():
    service = _service(deliver_after_commit=False)
    task = service.open(BUYER, "document_request", _draft("Cert of Sam Secret")).task
    queued = service.repository.pending()
    assert any("Sam Secret" in json.dumps(m.message.payload) for m in queued)
    service.erase_personal_data(
        OFFICER, [task.id], DataSubject(SUPPLIER.ref, identifiers={"Sam Secret"}), "request 7"
    )
    assert "Sam Secret" not in service.repository.get(task.id).subject
    before = {m.id: m.message.payload for m in queued}
    after = {m.id: m.message.payload for m in service.repository.pending() if m.id in before}
    assert after == before  # the queued messages still hold what they held
    assert "Outbox messages already queued" in PAGE
