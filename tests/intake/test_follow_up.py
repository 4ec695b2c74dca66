"""A customer's reply to a resolved ticket: reopened (the default), a follow-up, or a comment."""

from email.message import EmailMessage

import pytest

import taskflow as tf
from taskflow.intake import FOLLOW_UP_OF, Disposition, FollowUp, InMemoryContacts, Intake

ACME = "acme"
CARL = tf.Actor("carl", "cust")
ANN = tf.Actor("ann", ACME)


def _mail(subject, body, msgid, **headers):
    message = EmailMessage()
    message["From"] = "Carl <carl@cust.example>"
    message["To"] = "help@acme.example"
    message["Subject"] = subject
    message["Message-ID"] = msgid
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message.as_bytes()


def _desk(**more):
    registry = tf.default_registry()
    service = tf.TaskService(
        registry=registry,
        repository=tf.InMemoryRepository(registry=registry),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(),
        ids=tf.SequentialIds(),
    )
    contacts = InMemoryContacts({"carl@cust.example": CARL})
    intake = Intake(service, kind="support_ticket", recipient=ACME, contacts=contacts, **more)
    return service, intake


def _resolved(service, intake):
    opened = intake.receive_email(_mail("Printer jam", "It jams", "<m1@cust.example>"))
    service.act(ANN, opened.task_id, "resolve")
    return service.repository.get(opened.task_id)


REPLY = _mail(
    "Re: Printer jam", "Still jamming", "<m2@cust.example>", In_Reply_To="<m1@cust.example>"
)


def test_an_emailed_reply_to_a_resolved_ticket_reopens_it_with_the_reply_as_comment():
    service, intake = _desk()
    ticket = _resolved(service, intake)
    result = intake.receive_email(REPLY)
    assert (result.disposition, result.task_id, result.created) == (
        Disposition.REOPENED,
        ticket.id,
        True,
    )
    after = service.repository.get(ticket.id)
    assert after.state == "reopened"
    assert after.is_open
    assert after.data.reopen_reason == "the customer replied: Still jamming"
    assert [c.text for c in after.comments] == ["Still jamming"]
    assert [e.action for e in after.history[-2:]] == ["reopen", "comment"]
    assert {e.cause.correlation_id for e in after.history[-2:]} == {"intake:email:m2@cust.example"}
    assert intake.receive_email(REPLY).disposition is Disposition.DUPLICATE
    assert service.repository.get(ticket.id).version == after.version


def test_a_portal_reply_by_the_customer_reopens_and_an_agents_note_does_not():
    service, intake = _desk()
    ticket = _resolved(service, intake)
    note = intake.reply(ANN, ticket.id, "closing note for the file")
    assert note.disposition is Disposition.APPENDED
    assert service.repository.get(ticket.id).state == "resolved"
    result = intake.reply(CARL, ticket.id, "It is back")
    assert result.disposition is Disposition.REOPENED
    assert service.repository.get(ticket.id).state == "reopened"
    again = intake.reply(CARL, ticket.id, "and louder")  # open now: a plain comment
    assert again.disposition is Disposition.APPENDED
    assert service.repository.get(ticket.id).data.reopen_count == 1


def test_with_new_task_a_reply_to_a_closed_ticket_opens_a_linked_follow_up_once():
    service, intake = _desk(follow_up=FollowUp.NEW_TASK)
    ticket = _resolved(service, intake)
    result = intake.receive_email(REPLY)
    assert result.disposition is Disposition.OPENED
    assert result.reason == f"follow-up of {ticket.number}"
    follow = service.repository.get(result.task_id)
    assert follow.links == (tf.Link(FOLLOW_UP_OF, ticket.id),)
    assert follow.is_open
    assert service.repository.get(ticket.id).state == "resolved"
    assert intake.receive_email(REPLY).disposition is Disposition.DUPLICATE
    # A later reply quoting both threads joins the open follow-up, not the closed ticket.
    later = _mail(
        f"Re: [{follow.number}] Printer jam",
        "any news?",
        "<m3@cust.example>",
        In_Reply_To="<m1@cust.example>",
    )
    joined = intake.receive_email(later)
    assert (joined.disposition, joined.task_id) == (Disposition.APPENDED, follow.id)


def test_a_portal_follow_up_copies_the_ticket_form_without_its_reopen_rounds():
    service, intake = _desk(follow_up=FollowUp.NEW_TASK)
    ticket = _resolved(service, intake)
    result = intake.reply(CARL, ticket.id, "new problem, same printer")
    follow = service.repository.get(result.task_id)
    assert follow.subject == "Follow-up: Printer jam"
    assert follow.data == ticket.data
    assert follow.body == "new problem, same printer"


def test_with_append_a_reply_leaves_the_ticket_resolved():
    service, intake = _desk(follow_up=FollowUp.APPEND)
    ticket = _resolved(service, intake)
    assert intake.receive_email(REPLY).disposition is Disposition.APPENDED
    after = service.repository.get(ticket.id)
    assert (after.state, [c.text for c in after.comments]) == ("resolved", ["Still jamming"])


def test_a_kind_that_cannot_be_reopened_gets_a_follow_up_instead():
    service, intake = _desk(reopen_action="no_such_action")
    ticket = _resolved(service, intake)
    result = intake.receive_email(REPLY)
    assert result.disposition is Disposition.OPENED
    assert service.repository.get(result.task_id).links == (tf.Link(FOLLOW_UP_OF, ticket.id),)


@pytest.mark.parametrize(
    ("more", "field"),
    [({"follow_up": "sometimes"}, "follow_up"), ({"reopen_action": " "}, "reopen_action")],
)
def test_a_bad_follow_up_setting_is_refused_naming_it(more, field):
    with pytest.raises(tf.InvalidPayload) as refused:
        _desk(**more)
    assert refused.value.field == field
