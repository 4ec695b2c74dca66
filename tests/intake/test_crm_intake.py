"""Tasks come in through the channels as tickets do (seed 004): CRM tasks take intake."""

from datetime import timedelta
from email.message import EmailMessage

import taskflow as tf
from taskflow.domain.intake import INTAKE_INDEXED
from taskflow.intake import Disposition, InMemoryContacts, Intake, Message, Sender
from taskflow.kinds.crm_task import CRM_TASK, CrmConfig, CrmTask, Regarding, crm_task_kind
from taskflow.sla import SlaPolicies, SlaPolicy


def _mail(msgid, subject, body, **headers):
    mail = EmailMessage()
    mail["From"], mail["Subject"], mail["Message-ID"] = "Cora <cora@acme.example>", subject, msgid
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(body)
    return mail.as_bytes()


def _desk(kind=CRM_TASK):
    registry = tf.Registry([kind])
    service = tf.TaskService(
        registry=registry,
        repository=tf.InMemoryRepository(registry=registry),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(),
        ids=tf.SequentialIds(),
    )
    contacts = InMemoryContacts({"cora@acme.example": tf.Actor("cora", "acme")})
    intake = Intake(
        service,
        kind=kind.name,
        recipient="desk",
        contacts=contacts,
        data=lambda message: CrmTask(regarding=Regarding.account("acme")),
    )
    return service, intake


def test_the_crm_task_kinds_declare_the_intake_fields():
    sla = SlaPolicies((SlaPolicy("std", resolution=timedelta(hours=8)),), default="std")
    for kind in (CRM_TASK, crm_task_kind(CrmConfig(kind="planned_work", sla=sla))):
        assert set(INTAKE_INDEXED) <= set(kind.indexed), kind.name


def test_an_email_opens_a_crm_task_its_reply_threads_and_a_redelivery_creates_nothing():
    service, intake = _desk()
    opened = intake.receive_email(_mail("<c1@acme>", "Invoices do not print", "Since Monday"))
    assert opened.disposition is Disposition.OPENED
    task = service.repository.get(opened.task_id)
    assert (task.kind, task.subject, task.requester) == (
        "crm_task",
        "Invoices do not print",
        tf.UserRef("acme", "cora"),
    )
    reply = _mail("<c2@acme>", "Re: Invoices", "Still not", In_Reply_To="<c1@acme>")
    assert intake.receive_email(reply).task_id == opened.task_id
    assert intake.receive_email(reply).disposition is Disposition.DUPLICATE
    by_number = _mail("<c3@acme>", f"[{opened.task_number}] more", "And again")
    assert intake.receive_email(by_number).task_id == opened.task_id
    assert [c.text for c in service.repository.get(opened.task_id).comments] == [
        "Still not",
        "And again",
    ]
    manual = Message("manual", "call-1", Sender("cora@acme.example"), subject="Phone call")
    assert intake.receive(manual).disposition is Disposition.OPENED
    assert len(service.repository) == 2
