from datetime import date

import taskflow as tf


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
    draft = tf.NewTask(
        "ISO cert", "supco", tf.DocumentRequest("ISO 9001"), assignees=[supplier.ref]
    )
    task = svc.open(buyer, "document_request", draft).task
    pdf = tf.FileRef("cert.pdf", tf.PDF, 10, "sha256:bb", "k2")
    svc.act(supplier, task.id, "upload", tf.UploadDocument(pdf, date(2027, 1, 1)))
    svc.act(buyer, task.id, "reject", tf.Reject("wrong year"))
    svc.act(supplier, task.id, "upload", tf.UploadDocument(pdf, date(2027, 1, 1)))
    svc.act(buyer, task.id, "accept")
    stored = svc.repository.get(task.id)
    assert stored.state == "accepted"
    assert tf.replay(tf.DOCUMENT_REQUEST.workflow, stored) == stored
