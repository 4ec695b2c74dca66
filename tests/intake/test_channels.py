"""CSV import, web forms, chat transcripts and a host's own kind, through one intake path."""

import json

import attrs
import pytest

import taskflow as tf
from taskflow.domain.intake import INTAKE_INDEXED
from taskflow.intake import (
    CUSTOMER,
    SUPPORT_FORM,
    ChatLine,
    ColumnMapping,
    Disposition,
    FieldType,
    FormField,
    FormSchema,
    InMemoryContacts,
    Intake,
    Message,
    Sender,
    Transcript,
)


@attrs.frozen
class WorkItem:
    """A host's planned task: where it came from."""

    source: str


WORK_ITEM = tf.TaskKind(
    "work_item",
    WorkItem,
    tf.Workflow(
        name="work_item",
        initial="planned",
        states=(tf.State("planned", waiting_on=tf.Side.RECIPIENT), tf.State("done", final=True)),
        transitions=(
            tf.Transition("finish", "planned", "done", tf.Side.RECIPIENT),
            *tf.common_actions(),
        ),
    ),
    indexed=INTAKE_INDEXED,
)


def _desk(kind="support_ticket", repository=None, **more):
    registry = tf.default_registry(WORK_ITEM)
    service = tf.TaskService(
        registry=registry,
        repository=repository
        if repository is not None
        else tf.InMemoryRepository(registry=registry),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(),
        ids=tf.SequentialIds(),
    )
    contacts = InMemoryContacts(default_company="public")
    return service, Intake(service, kind=kind, recipient="acme", contacts=contacts, **more)


CSV = """id,title,email,name,details
A1,Printer jam,carl@cust.example,Carl,It jams
A2,,dora@cust.example,Dora,no title
A3,"Two
lines",eve@cust.example,Eve,fine
A4,Bad mail,not-an-address,Fay,x
A5,Screen,gus@cust.example,Gus
"""
MAPPING = ColumnMapping(
    subject="title", sender="email", body="details", sender_name="name", message_id="id"
)


def test_a_csv_import_reports_each_bad_row_by_line_and_imports_the_rest_once():
    service, intake = _desk()
    report = intake.import_csv(CSV, MAPPING)
    assert [(line, r.task_number) for line, r in report.results] == [
        (2, "PUBLIC-TASK-1"),
        (4, "PUBLIC-TASK-2"),
    ]
    assert [e.__notes__ for e in report.errors] == [["line 3"], ["line 6"], ["line 7"]]
    assert "column 'title' is empty" in str(report.errors[0])
    assert "must look like an email address" in str(report.errors[1])
    assert "the row has 4 cells" in str(report.errors[2])
    with pytest.raises(tf.InvalidRows) as caught:
        report.raise_errors()
    assert caught.value.lines == (3, 6, 7)
    again = intake.import_csv(CSV, MAPPING)
    assert again.created == 0
    assert {r.disposition for _, r in again.results} == {Disposition.DUPLICATE}
    assert len(service.repository) == 2


def test_rows_without_an_id_are_recognised_by_their_values():
    _service, intake = _desk()
    mapping = ColumnMapping(subject="title", sender="email")
    text = "title,email\nHello,a@b.example\nHello,a@b.example\nOther,a@b.example\n"
    report = intake.import_csv(text, mapping)
    assert [r.disposition for _, r in report.results] == [
        Disposition.OPENED,
        Disposition.DUPLICATE,
        Disposition.OPENED,
    ]
    with pytest.raises(tf.InvalidPayload, match="the CSV header has no column 'title'"):
        intake.import_csv("subject,email\n", mapping)
    with pytest.raises(tf.InvalidPayload, match="the CSV file is empty"):
        intake.import_csv("", mapping)


def test_a_web_form_is_checked_per_field_and_exported_as_json_schema():
    service, intake = _desk()
    with pytest.raises(tf.InvalidForm) as caught:
        intake.submit_form(
            SUPPORT_FORM, {"email": "nope", "phone": "call me", "colour": "red"}, submission_id="f1"
        )
    assert caught.value.fields == ("colour", "name", "email", "subject", "description", "phone")
    assert "'Email' must be an email address" in str(caught.value.exceptions[2])
    assert len(service.repository) == 0
    form = {
        "name": "Carl",
        "email": "carl@cust.example",
        "subject": "Broken",
        "description": "It broke",
        "product": "X-1",
    }
    result = intake.submit_form(SUPPORT_FORM, form, submission_id="f1")
    task = service.repository.get(result.task_id)
    assert (task.subject, task.data.product, task.data.description) == ("Broken", "X-1", "It broke")
    assert (
        intake.submit_form(SUPPORT_FORM, form, submission_id="f1").disposition
        is Disposition.DUPLICATE
    )
    schema = SUPPORT_FORM.json_schema()
    assert schema["required"] == ["name", "email", "subject", "description"]
    assert schema["properties"]["email"] == {
        "title": "Email",
        "type": "string",
        "maxLength": 320,
        "minLength": 1,
        "format": "email",
    }
    assert schema["additionalProperties"] is False
    json.dumps(schema)


def test_form_fields_check_their_types():
    number = FormField("n", FieldType.NUMBER)
    assert number.check("2") == 2
    assert number.check("2.5") == 2.5
    with pytest.raises(tf.InvalidPayload, match="must be a number"):
        number.check("two")
    pick = FormField("p", FieldType.SELECT, choices=("a", "b"))
    with pytest.raises(tf.InvalidPayload, match="must be one of a, b"):
        pick.check("c")
    assert FormField("c", FieldType.CHECKBOX).check(None) is False
    with pytest.raises(tf.InvalidPayload, match="must be a date"):
        FormField("d", FieldType.DATE).check("soon")
    with pytest.raises(tf.InvalidPayload, match="at most 3 characters"):
        FormField("t", max_length=3).check("long")
    with pytest.raises(tf.InvalidWorkflow, match="lists its choices"):
        FormField("s", FieldType.SELECT)
    with pytest.raises(tf.InvalidWorkflow, match="has no field 'description'"):
        FormSchema("f", (FormField("email", FieldType.EMAIL),))


def test_a_chat_transcript_becomes_one_ticket_with_the_messages_as_comments():
    service, intake = _desk()
    transcript = Transcript(
        "chat-9",
        Sender("carl@cust.example", "Carl"),
        (
            ChatLine("ann", "Hello, how can I help?"),
            ChatLine(CUSTOMER, "My printer jams"),
            ChatLine("ann", "Which model?"),
            ChatLine(CUSTOMER, "X-1"),
        ),
    )
    result = intake.receive_chat(transcript)
    task = service.repository.get(result.task_id)
    assert (task.subject, task.body) == ("My printer jams", "My printer jams")
    assert [(c.author.user, c.text) for c in task.comments] == [
        ("ann", "Hello, how can I help?"),
        ("ann", "Which model?"),
        ("carl@cust.example", "X-1"),
    ]
    assert intake.receive_chat(transcript).disposition is Disposition.DUPLICATE
    with pytest.raises(tf.InvalidPayload, match="at least one line by the customer"):
        Transcript("c", Sender("a@b.example"), (ChatLine("ann", "hi"),))


def test_intake_opens_a_hosts_own_kind_and_refuses_a_kind_without_the_intake_fields():
    service, intake = _desk("work_item", data=lambda message: WorkItem(message.channel.value))
    manual = Message(
        "manual", "desk-1", Sender("carl@cust.example"), subject="Move desks", body="Tuesday"
    )
    result = intake.receive(manual)
    task = service.repository.get(result.task_id)
    assert (task.kind, task.data, task.subject) == ("work_item", WorkItem("manual"), "Move desks")
    assert intake.receive(manual).disposition is Disposition.DUPLICATE
    with pytest.raises(tf.InvalidWorkflow, match="must declare the indexed fields"):
        Intake(service, kind="document_request", recipient="acme", contacts=InMemoryContacts())
    with pytest.raises(tf.InvalidWorkflow, match="has no FORM_FIELDS"):
        Intake(service, kind="work_item", recipient="acme", contacts=InMemoryContacts())


def test_intake_is_idempotent_on_sqlite_too(tmp_path):
    registry = tf.default_registry(WORK_ITEM)
    repository = tf.SqliteRepository(tmp_path / "desk.db", registry)
    _service, intake = _desk(repository=repository)
    report = intake.import_csv(CSV, MAPPING)
    assert report.created == 2
    reopened = tf.SqliteRepository(tmp_path / "desk.db", registry)
    _service2, intake2 = _desk(repository=reopened)
    assert intake2.import_csv(CSV, MAPPING).created == 0
    assert len(reopened.query(tf.TaskQuery())) == 2
    repository.close()
    reopened.close()
