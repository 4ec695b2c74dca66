"""Seed 001 in the matrix: the partner hears of responses, public comments and resolutions.

Events that are not for the partner (an internal reassignment, a claim, a delegated question,
a questionnaire's own bookkeeping) keep what the default policy says.
"""

import pytest

import taskflow as tf
from taskflow.domain.matrix import SEED_DEFAULTS, NotificationMatrix
from taskflow.kinds.document import DocumentRequest, UploadDocument
from taskflow.kinds.ticket import SupportTicket

BEA, BOB, SAM = tf.Actor("bea", "acme"), tf.Actor("bob", "acme"), tf.Actor("sam", "supco")
PDF_FILE = tf.FileRef("c.pdf", tf.PDF, 10, "sha256:1", "files/1")
SEED_001 = (
    "document_request", "product_document_request", "agreement", "audit", "evaluation",
    "corrective_action", "contact", "general", "question", "questionnaire",
    "support_ticket", "complaint_ticket",
)  # fmt: skip


def _service(policy):
    return tf.TaskService(
        registry=tf.default_registry(),
        repository=tf.InMemoryRepository(),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(),
        ids=tf.SequentialIds(),
        policy=policy,
    )


def _told(service):
    told = [(str(n.recipient), n.event) for n in service.notifier.sent]
    service.notifier.clear()
    return told


@pytest.mark.parametrize("policy", ["default", "matrix"])
def test_an_internal_reassignment_tells_the_new_assignee_not_the_partner(policy):
    service = _service(
        tf.default_policy if policy == "default" else NotificationMatrix(SEED_DEFAULTS)
    )
    draft = tf.NewTask("ISO", "supco", DocumentRequest("ISO"), assignees=[SAM.ref])
    task = service.open(BEA, "document_request", draft).task
    assert _told(service) == [("sam@supco", "opened")]
    service.act(BEA, task.id, "assign", tf.Assign((BOB.ref,)))
    assert _told(service) == [("bob@acme", "assigned")]
    service.comment(SAM, task.id, "which one?")
    assert _told(service) == [("bob@acme", "commented")]
    service.act(SAM, task.id, "upload", UploadDocument(PDF_FILE))
    assert _told(service) == [("bob@acme", "document_uploaded")]


def test_the_seed_defaults_leave_seed_001_to_the_default_policy_event_by_event():
    assert not {entry.kind for entry in SEED_DEFAULTS} & set(SEED_001)
    sue = tf.Actor("sue", "supco")
    told = []
    for policy in (tf.default_policy, NotificationMatrix(SEED_DEFAULTS)):
        service = _service(policy)
        draft = tf.NewTask("ISO", "supco", DocumentRequest("ISO"), assignees=[SAM.ref, sue.ref])
        task = service.open(BEA, "document_request", draft).task
        service.act(BEA, task.id, "assign", tf.Assign((BOB.ref,)))
        service.act(sue, task.id, "claim")
        service.comment(SAM, task.id, "for sue only", tf.Visibility.INTERNAL)
        service.comment(SAM, task.id, "public")
        service.act(SAM, task.id, "upload", UploadDocument(PDF_FILE))
        told.append(_told(service))
    assert told[0] == told[1]
    assert ("sam@supco", "claimed") in told[1]  # a claim tells the own side, not the buyer
    assert ("sue@supco", "commented") in told[1]  # an internal note reaches a colleague


def test_a_ticket_resolution_and_public_comment_reach_the_customer_an_internal_note_does_not():
    service = _service(NotificationMatrix(SEED_DEFAULTS))
    carl, ann = tf.Actor("carl", "cust"), tf.Actor("ann", "acme")
    data = SupportTicket(name="Carl", email="carl@cust.example", description="It jams")
    task = service.open(carl, "support_ticket", tf.NewTask("Printer", "acme", data)).task
    _told(service)
    service.comment(ann, task.id, "checking", tf.Visibility.INTERNAL)
    service.comment(ann, task.id, "Try the other tray")
    service.act(ann, task.id, "resolve")
    assert _told(service) == [("carl@cust", "commented"), ("carl@cust", "ticket_resolved")]
