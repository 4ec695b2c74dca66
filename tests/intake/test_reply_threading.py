"""A reply threads by any message taken into a ticket: the opening one or any reply after it."""

from email.message import EmailMessage

import pytest

import taskflow as tf
from taskflow.domain.intake import THREAD_MARK_PREFIX, thread_mark
from taskflow.intake import (
    FOLLOW_UP_OF,
    Disposition,
    FollowUp,
    InMemoryContacts,
    Intake,
    Message,
    Sender,
)

ACME = "acme"
CARL = tf.Actor("carl", "cust")
ANN = tf.Actor("ann", ACME)


def _mail(msgid, body, *, subject="Printer jam", in_reply_to=None, references=None):
    message = EmailMessage()
    message["From"] = "Carl <carl@cust.example>"
    message["To"] = "help@acme.example"
    message["Subject"] = subject if in_reply_to is None else f"Re: {subject}"
    message["Message-ID"] = msgid
    if in_reply_to is not None:
        message["In-Reply-To"] = in_reply_to
    if references is not None:
        message["References"] = references
    message.set_content(body)
    return message.as_bytes()


def _desk(repository=None, registry=None, **more):
    registry = registry or tf.default_registry()
    if repository is None:  # a repository may be falsy (len 0): ask for None
        repository = tf.InMemoryRepository(registry=registry)
    service = tf.TaskService(
        registry=registry,
        repository=repository,
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(),
        ids=tf.SequentialIds(),
    )
    contacts = InMemoryContacts({"carl@cust.example": CARL})
    return service, Intake(
        service, kind="support_ticket", recipient=ACME, contacts=contacts, **more
    )


def _ticket_count(service):
    return len(service.repository.query(tf.TaskQuery(kind="support_ticket")))


def test_a_reply_to_an_earlier_reply_without_references_threads_onto_the_ticket():
    service, intake = _desk()
    opened = intake.receive_email(_mail("<m1@cust>", "It jams"))
    first = intake.receive_email(_mail("<m2@cust>", "Page 2", in_reply_to="<m1@cust>"))
    # In-Reply-To names the reply, not the opening message, and there is no References header.
    second = intake.receive_email(_mail("<m3@cust>", "And page 3", in_reply_to="<m2@cust>"))
    assert (first.disposition, second.disposition) == (Disposition.APPENDED, Disposition.APPENDED)
    assert second.task_id == opened.task_id
    assert _ticket_count(service) == 1
    ticket = service.repository.get(opened.task_id)
    assert [c.text for c in ticket.comments] == ["Page 2", "And page 3"]
    third = intake.receive_email(_mail("<m4@cust>", "Page 4", references="<m3@cust>"))
    assert (third.disposition, third.task_id) == (Disposition.APPENDED, opened.task_id)


def test_every_message_taken_into_a_ticket_is_recorded_and_a_redelivered_reply_is_a_duplicate():
    service, intake = _desk()
    opened = intake.receive_email(_mail("<m1@cust>", "It jams"))
    intake.receive_email(_mail("<m2@cust>", "Page 2", in_reply_to="<m1@cust>"))
    intake.receive_email(_mail("<m3@cust>", "Page 3", in_reply_to="<m2@cust>"))
    task_id = opened.task_id
    assert service.repository.marks(THREAD_MARK_PREFIX) == [
        thread_mark(f"email:m{n}@cust", task_id) for n in (1, 2, 3)
    ]
    version = service.repository.get(task_id).version
    again = intake.receive_email(_mail("<m3@cust>", "Page 3", in_reply_to="<m2@cust>"))
    assert (again.disposition, again.task_id) == (Disposition.DUPLICATE, task_id)
    assert service.repository.get(task_id).version == version


def test_a_manual_message_answering_an_earlier_reply_threads_too():
    service, intake = _desk()
    sender = Sender("carl@cust.example", "Carl")
    opened = intake.receive(Message("manual", "call-1", sender, subject="Printer", body="Jams"))
    intake.receive(Message("manual", "call-2", sender, body="Again", references=("call-1",)))
    third = intake.receive(
        Message("manual", "call-3", sender, body="Still", references=("call-2",))
    )
    assert (third.disposition, third.task_id) == (Disposition.APPENDED, opened.task_id)
    assert _ticket_count(service) == 1
    # Keys are per channel: an email naming the same id is not that phone call.
    other = intake.receive_email(_mail("<e-1@cust>", "Hello", in_reply_to="<call-2>"))
    assert other.disposition is Disposition.OPENED


def test_replies_to_earlier_replies_thread_on_sqlite_across_reopened_repositories(tmp_path):
    registry = tf.default_registry()
    path = tmp_path / "desk.db"
    with tf.SqliteRepository(path, registry) as repository:
        service, intake = _desk(repository, registry)
        opened = intake.receive_email(_mail("<m1@cust>", "It jams"))
        intake.receive_email(_mail("<m2@cust>", "Page 2", in_reply_to="<m1@cust>"))
    with tf.SqliteRepository(path, registry) as repository:
        service, intake = _desk(repository, registry)
        reply = intake.receive_email(_mail("<m3@cust>", "Page 3", in_reply_to="<m2@cust>"))
        assert (reply.disposition, reply.task_id) == (Disposition.APPENDED, opened.task_id)
        assert _ticket_count(service) == 1


@pytest.mark.parametrize(
    ("follow_up", "disposition"),
    [
        (FollowUp.REOPEN, Disposition.REOPENED),
        (FollowUp.NEW_TASK, Disposition.OPENED),
        (FollowUp.APPEND, Disposition.APPENDED),
    ],
)
def test_a_reply_to_a_resolved_ticket_through_a_reply_id_follows_the_follow_up_setting(
    follow_up, disposition
):
    service, intake = _desk(follow_up=follow_up)
    opened = intake.receive_email(_mail("<m1@cust>", "It jams"))
    intake.receive_email(_mail("<m2@cust>", "Page 2", in_reply_to="<m1@cust>"))
    service.act(ANN, opened.task_id, "resolve")
    late = intake.receive_email(_mail("<m3@cust>", "It is back", in_reply_to="<m2@cust>"))
    assert late.disposition is disposition
    old = service.repository.get(opened.task_id)
    if follow_up is FollowUp.REOPEN:
        assert late.task_id == opened.task_id
        assert old.state == "reopened"
        assert old.comments[-1].text == "It is back"
    elif follow_up is FollowUp.APPEND:
        assert late.task_id == opened.task_id
        assert old.state == "resolved"
        assert old.comments[-1].text == "It is back"
    else:
        assert late.task_id != opened.task_id
        assert old.state == "resolved"
        follow = service.repository.get(late.task_id)
        assert [(link.relation, link.task_id) for link in follow.links] == [
            (FOLLOW_UP_OF, opened.task_id)
        ]
        # The follow-up took the reply in: a reply to it joins the follow-up.
        more = intake.receive_email(_mail("<m4@cust>", "Any news?", in_reply_to="<m3@cust>"))
        assert (more.disposition, more.task_id) == (Disposition.APPENDED, late.task_id)
    again = intake.receive_email(_mail("<m3@cust>", "It is back", in_reply_to="<m2@cust>"))
    assert again.disposition is Disposition.DUPLICATE


class _StaleReads(tf.InMemoryRepository):
    """A repository whose next lookups miss what was just stored: another delivery's race."""

    stale = 0

    def marks(self, prefix="", *, after=None, limit=None):
        if self.stale:
            self.stale -= 1
            return []
        return super().marks(prefix, after=after, limit=limit)

    def query(self, query):
        if self.stale:
            self.stale -= 1
            return []
        return super().query(query)


def test_a_delivery_racing_another_of_the_same_email_opens_no_second_ticket():
    registry = tf.default_registry()
    repository = _StaleReads(registry=registry)
    _service, intake = _desk(repository, registry)
    raw = _mail("<m1@cust>", "It jams")
    opened = intake.receive_email(raw)
    # The second delivery looks (mark, then index) before the first one's commit is seen.
    repository.stale = 2
    again = intake.receive_email(raw)
    assert repository.stale == 0
    assert (again.disposition, again.task_id) == (Disposition.DUPLICATE, opened.task_id)
    assert len(repository.query(tf.TaskQuery(kind="support_ticket"))) == 1
    assert repository.get(opened.task_id).version == 1
