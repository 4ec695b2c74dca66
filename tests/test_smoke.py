from datetime import date

import taskflow as tf
from taskflow.kinds.document import DOCUMENT_REQUEST, DocumentRequest, Reject, UploadDocument


def test_document_request_accepted_after_reupload_replays_to_same_task():
    svc = tf.TaskService(
        registry=tf.default_registry(),
        repository=tf.InMemoryRepository(),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(),
        ids=tf.SequentialIds(),
    )
    buyer = tf.Actor("bea", "acme")
    supplier = tf.Actor("sam", "supco")
    draft = tf.NewTask("ISO cert", "supco", DocumentRequest("ISO 9001"), assignees=[supplier.ref])
    task = svc.open(buyer, "document_request", draft).task
    pdf = tf.FileRef("cert.pdf", tf.PDF, 10, "sha256:bb", "k2")
    svc.act(supplier, task.id, "upload", UploadDocument(pdf, date(2027, 1, 1)))
    svc.act(buyer, task.id, "reject", Reject("wrong year"))
    svc.act(supplier, task.id, "upload", UploadDocument(pdf, date(2027, 1, 1)))
    svc.act(buyer, task.id, "accept")
    stored = svc.repository.get(task.id)
    assert stored.state == "accepted"
    assert tf.replay(DOCUMENT_REQUEST.workflow, stored) == stored
