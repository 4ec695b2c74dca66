"""Email intake: a corpus of email shapes built here, each with the result it must give."""

from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import taskflow as tf
from taskflow.intake import (
    Disposition,
    InMemoryContacts,
    InMemoryFileStorage,
    Intake,
    html_to_text,
    parse_email,
)
from taskflow.kinds.ticket import SupportTicket

ACME = "acme"


def _mail(
    subject="Printer jam",
    body="It jams on page 2",
    *,
    sender="Carl <carl@cust.example>",
    msgid="<m1@cust.example>",
    **headers,
):
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "help@acme.example"
    message["Subject"] = subject
    if msgid:
        message["Message-ID"] = msgid
    message["Date"] = "Mon, 02 Mar 2026 09:00:00 +0000"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


def _desk(**more):
    registry = tf.default_registry()
    service = tf.TaskService(
        registry=registry,
        repository=tf.InMemoryRepository(registry=registry),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(),
        ids=tf.SequentialIds(),
    )
    contacts = InMemoryContacts(
        {"carl@cust.example": tf.Actor("carl", "cust")}, default_company="public"
    )
    files = InMemoryFileStorage()
    intake = Intake(
        service, kind="support_ticket", recipient=ACME, contacts=contacts, storage=files, **more
    )
    return service, intake, files


def _task(service, result):
    return service.repository.get(result.task_id)


def test_a_plain_email_opens_a_ticket_from_its_sender_with_the_message_in_history():
    service, intake, _ = _desk()
    result = intake.receive_email(_mail().as_bytes())
    assert result.disposition is Disposition.OPENED
    task = _task(service, result)
    assert (task.subject, task.requester, task.recipient) == (
        "Printer jam",
        tf.UserRef("cust", "carl"),
        ACME,
    )
    assert task.body == "It jams on page 2"
    assert task.data == SupportTicket(
        name="Carl", email="carl@cust.example", description="It jams on page 2"
    )
    assert task.history[0].cause.correlation_id == "intake:email:m1@cust.example"


def test_a_reply_threads_by_in_reply_to_and_a_redelivery_creates_nothing():
    service, intake, _ = _desk()
    opened = intake.receive_email(_mail().as_bytes())
    reply = _mail(
        "Re: Printer jam",
        "Still jamming",
        msgid="<m2@cust.example>",
        In_Reply_To="<m1@cust.example>",
    )
    appended = intake.receive_email(reply.as_bytes())
    assert (appended.disposition, appended.task_id) == (Disposition.APPENDED, opened.task_id)
    assert [c.text for c in _task(service, opened).comments] == ["Still jamming"]
    version = _task(service, opened).version
    assert intake.receive_email(reply.as_bytes()).disposition is Disposition.DUPLICATE
    assert intake.receive_email(_mail().as_bytes()).disposition is Disposition.DUPLICATE
    assert _task(service, opened).version == version
    assert len(service.repository) == 1


def test_a_reply_threads_by_references_or_by_the_task_number_in_the_subject():
    _service, intake, _ = _desk()
    opened = intake.receive_email(_mail().as_bytes())
    by_refs = _mail("Re: x", "one", msgid="<m3@x>", References="<m1@cust.example> <gone@x>")
    assert intake.receive_email(by_refs.as_bytes()).task_id == opened.task_id
    by_number = _mail(f"Re: [{opened.task_number}] Printer", "two", msgid="<m4@x>")
    assert intake.receive_email(by_number.as_bytes()).task_id == opened.task_id
    # A stranger quoting the number opens a ticket of their own.
    stranger = _mail(
        f"[{opened.task_number}] hi", "let me in", sender="eve@evil.example", msgid="<m5@x>"
    )
    result = intake.receive_email(stranger.as_bytes())
    assert result.disposition is Disposition.OPENED
    assert result.task_id != opened.task_id


def _alternative():
    outer = MIMEMultipart("alternative")
    outer.attach(MIMEText("Plain words", "plain", "utf-8"))
    outer.attach(MIMEText("<p>HTML <b>words</b></p>", "html", "utf-8"))
    return outer


def _html_only():
    return MIMEText(
        "<html><head><style>p{}</style></head><body><p>Only</p><p>HTML &amp; more</p></body></html>",
        "html",
        "utf-8",
    )


def _forwarded():
    outer = MIMEMultipart()
    outer.attach(MIMEText("See below", "plain"))
    inner = _mail(
        "Original question", "The original text", sender="dora@cust.example", msgid="<orig@x>"
    )
    part = MIMEBase("message", "rfc822")
    part.set_payload([inner])
    outer.attach(part)
    return outer


def _inline_image():
    outer = MIMEMultipart("related")
    outer.attach(MIMEText('<p>Look: <img src="cid:img1"></p>', "html"))
    image = MIMEBase("image", "png")
    image.set_payload(b"\x89PNG fake")
    from email import encoders

    encoders.encode_base64(image)
    image.add_header("Content-ID", "<img1>")
    image.add_header("Content-Disposition", "inline")
    outer.attach(image)
    return outer


def _attachment(size):
    outer = MIMEMultipart()
    outer.attach(MIMEText("Invoice attached", "plain"))
    pdf = MIMEApplication(b"%PDF" + b"x" * size, "pdf")
    pdf.add_header("Content-Disposition", "attachment", filename="invoice.pdf")
    outer.attach(pdf)
    return outer


def _latin1():
    return MIMEText("Grüße aus Köln", "plain", "iso-8859-1")


def _headed(part, subject="Shape", msgid="<shape@x>", sender="Carl <carl@cust.example>", **headers):
    part["From"] = sender
    part["Subject"] = subject
    if msgid:
        part["Message-ID"] = msgid
    for name, value in headers.items():
        part[name.replace("_", "-")] = value
    return part.as_bytes()


def _bounce():
    return (
        b"From: MAILER-DAEMON@mx.example\r\nSubject: Undelivered Mail\r\nMessage-ID: <bounce@mx>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nDelivery failed\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n"
        b"--B--\r\n"
    )


@pytest.mark.parametrize(
    ("raw", "disposition", "body", "files"),
    [
        (_headed(_alternative()), Disposition.OPENED, "Plain words", 0),
        (_headed(_html_only()), Disposition.OPENED, "Only\n\nHTML & more", 0),
        (
            _headed(_forwarded()),
            Disposition.OPENED,
            "See below\n\n---------- Forwarded message from dora@cust.example: Original question ----------\nThe original text",
            0,
        ),
        (_headed(_inline_image()), Disposition.OPENED, "Look:", 1),
        (_headed(_attachment(100)), Disposition.OPENED, "Invoice attached", 1),
        (_headed(_latin1()), Disposition.OPENED, "Grüße aus Köln", 0),
        (_mail(msgid=None).as_bytes(), Disposition.OPENED, "It jams on page 2", 0),
        (_mail(Auto_Submitted="auto-replied").as_bytes(), Disposition.IGNORED, None, 0),
        (_mail(Precedence="bulk").as_bytes(), Disposition.IGNORED, None, 0),
        (_mail(Auto_Submitted="no").as_bytes(), Disposition.OPENED, "It jams on page 2", 0),
        (_bounce(), Disposition.IGNORED, None, 0),
        (b"Subject: no sender at all\r\n\r\nhello", Disposition.IGNORED, None, 0),
        (
            b"From: =?broken?= <<<\r\nSubject: =?utf-8?q?broken=ZZ?=\r\nMessage-ID: <b@x>\r\n\r\nbody",
            Disposition.IGNORED,
            None,
            0,
        ),
    ],
    ids=[
        "alternative",
        "html-only",
        "forwarded",
        "inline-image",
        "attachment",
        "latin-1",
        "no-message-id",
        "auto-reply",
        "bulk",
        "auto-submitted-no",
        "bounce",
        "no-sender",
        "broken-headers",
    ],
)
def test_each_email_shape_gives_its_expected_result(raw, disposition, body, files):
    service, intake, storage = _desk()
    result = intake.receive_email(raw)
    assert result.disposition is disposition, result.reason
    if body is None:
        assert len(service.repository) == 0
        return
    task = _task(service, result)
    assert task.body.split("\n\nAttachments:")[0] == body
    assert len(storage) == files


def test_a_broken_charset_is_read_without_failing_and_the_digest_id_recognises_a_redelivery():
    service, intake, _ = _desk()
    raw = b'From: carl@cust.example\r\nSubject: x\r\nContent-Type: text/plain; charset="x-unknown-9"\r\n\r\ncaf\xe9\r\n'
    first = intake.receive_email(raw)
    assert first.disposition is Disposition.OPENED
    assert first.message_id.startswith("sha256:")
    assert "caf" in _task(service, first).body
    assert intake.receive_email(raw).disposition is Disposition.DUPLICATE


def test_a_huge_attachment_is_referenced_not_stored_and_the_ticket_still_opens():
    service, intake, storage = _desk(max_attachment_bytes=1000)
    result = intake.receive_email(_headed(_attachment(5000)))
    task = _task(service, result)
    assert len(storage) == 0
    assert "[attachment not stored: invoice.pdf is 5004 bytes, over the limit of 1000]" in task.body
    parsed = parse_email(_headed(_attachment(10)), storage=storage)
    (ref,) = parsed.message.attachments
    assert (ref.name, ref.media_type, ref.size) == ("invoice.pdf", "application/pdf", 14)
    assert storage.read(ref.storage_key).startswith(b"%PDF")


def test_an_unknown_sender_is_ignored_when_the_host_names_no_default_company():
    registry = tf.default_registry()
    service = tf.TaskService(
        registry=registry,
        repository=tf.InMemoryRepository(registry=registry),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(),
        ids=tf.SequentialIds(),
    )
    intake = Intake(service, kind="support_ticket", recipient=ACME, contacts=InMemoryContacts())
    result = intake.receive_email(_mail().as_bytes())
    assert result.disposition is Disposition.IGNORED
    assert result.reason == "unknown sender (carl@cust.example)"
    with pytest.raises(tf.InvalidPayload, match="raw bytes"):
        intake.receive_email("text")


def test_html_becomes_text_without_scripts():
    assert html_to_text("<div>a<script>x()</script></div><br>b &lt;c&gt;") == "a\n\nb <c>"


# --- property: threading is idempotent -----------------------------------------------------------

_PLANS = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 5)), min_size=1, max_size=8)


@settings(max_examples=20)
@given(_PLANS, st.randoms(use_true_random=False))
def test_threading_is_idempotent_redelivered_in_any_order(plan, rnd):
    """Message i answers message j < i (or starts a thread); delivering all again, shuffled, changes nothing."""
    mails = []
    for i, (parent, _) in enumerate(plan):
        headers = {}
        if i and parent % 2:
            headers["In_Reply_To"] = f"<m{(parent * 7) % i}@x>"
        mails.append(_mail(f"Subject {i}", f"text {i}", msgid=f"<m{i}@x>", **headers).as_bytes())
    service, intake, _ = _desk()
    first = [intake.receive_email(raw) for raw in mails]
    snapshot = {t.id: t for t in service.repository.query(tf.TaskQuery())}
    again = list(mails)
    rnd.shuffle(again)
    assert all(intake.receive_email(raw).disposition is Disposition.DUPLICATE for raw in again)
    assert {t.id: t for t in service.repository.query(tf.TaskQuery())} == snapshot
    # Each message made exactly one change: opened a task, or one comment on its thread's task.
    opened = sum(r.disposition is Disposition.OPENED for r in first)
    comments = sum(len(t.comments) for t in snapshot.values())
    assert opened == len(snapshot)
    assert opened + comments == len(mails)
