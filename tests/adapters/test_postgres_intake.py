"""Intake threading on PostgreSQL: a reply to an earlier reply finds its ticket by its thread mark."""

from email.message import EmailMessage

import taskflow as tf
from taskflow.adapters.postgres import PostgresRepository
from taskflow.intake import Disposition, InMemoryContacts, Intake

REGISTRY = tf.default_registry()


def _mail(msgid, body, in_reply_to=None):
    message = EmailMessage()
    message["From"] = "Carl <carl@cust.example>"
    message["Subject"] = "Printer jam"
    message["Message-ID"] = msgid
    if in_reply_to is not None:
        message["In-Reply-To"] = in_reply_to
    message.set_content(body)
    return message.as_bytes()


def test_a_reply_to_a_reply_threads_on_postgres(pg_pool, pg_schema, pg_reset):
    pg_reset()
    repository = PostgresRepository(pg_pool, REGISTRY, schema=pg_schema)
    try:
        service = tf.TaskService(
            registry=REGISTRY,
            repository=repository,
            notifier=tf.RecordingNotifier(),
            clock=tf.FixedClock(),
            ids=tf.SequentialIds(),
        )
        contacts = InMemoryContacts({"carl@cust.example": tf.Actor("carl", "cust")})
        intake = Intake(service, kind="support_ticket", recipient="acme", contacts=contacts)
        opened = intake.receive_email(_mail("<m1@cust>", "It jams"))
        intake.receive_email(_mail("<m2@cust>", "Page 2", "<m1@cust>"))
        reply = intake.receive_email(_mail("<m3@cust>", "Page 3", "<m2@cust>"))
        assert (reply.disposition, reply.task_id) == (Disposition.APPENDED, opened.task_id)
        again = intake.receive_email(_mail("<m3@cust>", "Page 3", "<m2@cust>"))
        assert again.disposition is Disposition.DUPLICATE
        assert len(repository.query(tf.TaskQuery(kind="support_ticket"))) == 1
    finally:
        repository.close()
