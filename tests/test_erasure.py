"""Erasure of one person's personal data: tickets, intake, history shape, replay, stores, authorization."""

from datetime import timedelta
from email.message import EmailMessage

import pytest

import taskflow as tf
from taskflow.adapters.sqlite import SqliteRepository
from taskflow.domain import engine
from taskflow.domain.erasure import (
    ERASE_PERSONAL_DATA,
    ERASED_EMAIL,
    TOMBSTONE,
    DataSubject,
    ErasePersonalData,
)
from taskflow.intake import InMemoryContacts, Intake
from taskflow.kinds.ticket import SupportTicket
from taskflow.serialization import Serializer

CUSTOMER = tf.Actor("carl", "cust")
AGENT = tf.Actor("ann", "acme")
OFFICER = tf.Actor("olivia", "acme", roles={"privacy"})
STRANGER = tf.Actor("eve", "evil", roles={"privacy"})
PHONE = "+44 20 7946 0958"


def _service(repository=None):
    registry = tf.default_registry()
    return tf.TaskService(
        registry=registry,
        repository=repository if repository is not None else tf.InMemoryRepository(),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(),
        ids=tf.SequentialIds(),
    )


def _ticket(service):
    data = SupportTicket(
        name="Carl Customer", email="carl@cust.example", description="Printer jams", phone=PHONE
    )
    draft = tf.NewTask("Printer jam", "acme", data, body="Carl Customer here: it jams on page 2")
    task = service.open(CUSTOMER, "support_ticket", draft).task
    service.clock.advance()
    service.comment(AGENT, task.id, "Thanks Carl Customer, we will call you")
    service.clock.advance()
    service.comment(CUSTOMER, task.id, f"Please call me on {PHONE}")
    service.clock.advance()
    service.act(AGENT, task.id, "resolve")
    service.clock.advance(timedelta(days=30))
    return service.get(AGENT, task.id)


def _shape(task):
    return [(e.action, e.actor, e.at, e.from_state, e.to_state, e.changed) for e in task.history]


def test_erasing_a_customer_replaces_contact_details_comments_and_names_with_tombstones():
    service = _service()
    before = _ticket(service)
    [outcome] = service.erase_personal_data(
        OFFICER, [before.id], DataSubject(CUSTOMER.ref), "customer's request of 2026-02-01"
    )
    after = outcome.task
    assert (after.data.name, after.data.email, after.data.phone) == (TOMBSTONE, ERASED_EMAIL, None)
    assert after.body == f"{TOMBSTONE} here: it jams on page 2"
    assert [c.text for c in after.comments] == [
        f"Thanks {TOMBSTONE}, we will call you",
        TOMBSTONE,
    ]
    text = repr(after)
    for secret in ("Carl Customer", "carl@cust.example", PHONE):
        assert secret not in text
    # The history keeps its shape: who did what when, one entry more, by the officer.
    assert _shape(after)[:-1] == _shape(before)
    last = after.history[-1]
    assert (last.action, last.actor, last.at) == (ERASE_PERSONAL_DATA, OFFICER, service.clock.now())
    assert last.payload == ErasePersonalData(
        "customer's request of 2026-02-01", CUSTOMER.ref, last.payload.erased
    )
    assert last.payload.erased > 0
    assert after.version == before.version + 1
    assert outcome.events[0].name == "personal_data_erased"


def test_an_erased_task_still_replays_and_its_past_shows_tombstones():
    service = _service()
    before = _ticket(service)
    service.erase_personal_data(OFFICER, [before.id], DataSubject(CUSTOMER.ref), "request")
    stored = service.repository.get(before.id)
    assert engine.replay(None, stored) == stored
    opened = service.task_at(AGENT, before.id, before.created_at)
    assert (opened.data.name, opened.body) == (TOMBSTONE, f"{TOMBSTONE} here: it jams on page 2")
    commented = service.task_at(AGENT, before.id, before.history[2].at)
    assert commented.comments[-1].text == TOMBSTONE


def test_an_erased_ticket_is_stored_and_read_back_from_sqlite(tmp_path):
    registry = tf.default_registry()
    service = _service(SqliteRepository(tmp_path / "desk.db", registry))
    before = _ticket(service)
    erased = service.erase_personal_data(OFFICER, [before.id], DataSubject(CUSTOMER.ref), "asked")
    other = SqliteRepository(tmp_path / "desk.db", registry)
    fresh = other.get(before.id)
    assert fresh == service.repository.get(before.id)
    assert fresh.data.email == ERASED_EMAIL
    assert erased[0].task.comments == fresh.comments
    other.close()
    service.repository.close()
    # After a checkpoint (closing the last connection makes one), no copy is left in the file.
    assert b"7946 0958" not in (tmp_path / "desk.db").read_bytes()


def test_the_erasure_entry_round_trips_through_the_serializer():
    service = _service()
    before = _ticket(service)
    service.erase_personal_data(OFFICER, [before.id], DataSubject(CUSTOMER.ref), "x")
    serializer = Serializer(tf.default_registry())
    task = service.repository.get(before.id)
    assert serializer.load_task(serializer.dump_task(task)) == task


def test_only_an_actor_with_an_erasure_role_may_erase_and_a_refusal_changes_nothing():
    service = _service()
    before = _ticket(service)
    with pytest.raises(tf.PermissionDenied, match=r"needs one of the roles \['privacy'\]"):
        service.erase_personal_data(AGENT, [before.id], DataSubject(CUSTOMER.ref), "x")
    with pytest.raises(tf.TaskNotFound):
        service.erase_personal_data(STRANGER, [before.id], DataSubject(CUSTOMER.ref), "x")
    assert service.repository.get(before.id) == service.repository.get(before.id)
    assert service.repository.get(before.id).version == before.version


def test_a_host_names_its_own_erasure_roles_and_a_role_matrix_still_applies():
    registry = tf.default_registry()
    service = tf.TaskService(
        registry=registry,
        repository=tf.InMemoryRepository(),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(),
        ids=tf.SequentialIds(),
        erasure_roles={"dpo"},
    )
    before = _ticket(service)
    with pytest.raises(tf.PermissionDenied):
        service.erase_personal_data(OFFICER, [before.id], DataSubject(CUSTOMER.ref), "x")
    dpo = tf.Actor("dan", "acme", roles={"dpo"})
    assert service.erase_personal_data(dpo, [before.id], DataSubject(CUSTOMER.ref), "x")


def test_a_refused_erasure_of_several_tasks_erases_none():
    service = _service()
    first, second = _ticket(service), _ticket(service)
    with pytest.raises(tf.TaskNotFound):
        service.erase_personal_data(
            OFFICER, [first.id, second.id, tf.TaskId("nope")], DataSubject(CUSTOMER.ref), "x"
        )
    assert service.repository.get(first.id).version == first.version


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (
            lambda s, t: s.erase_personal_data(OFFICER, t, DataSubject(CUSTOMER.ref), "x"),
            "task_ids",
        ),
        (
            lambda s, t: s.erase_personal_data(OFFICER, [t], DataSubject(CUSTOMER.ref), " "),
            "reason",
        ),
        (lambda s, t: s.erase_personal_data(OFFICER, [t], "carl", "x"), "person"),
        (lambda s, t: DataSubject(identifiers="carl@cust.example"), "identifiers"),
        (lambda s, t: DataSubject(), "user"),
    ],
)
def test_bad_erasure_requests_are_refused_naming_the_field(call, field):
    service = _service()
    task = _ticket(service)
    with pytest.raises(tf.InvalidPayload) as raised:
        call(service, task.id)
    assert raised.value.field == field


def test_a_person_without_a_user_is_erased_by_identifiers_wherever_they_occur(tmp_path):
    registry = tf.default_registry()
    service = _service(SqliteRepository(tmp_path / "desk.db", registry))
    before = _ticket(service)
    person = DataSubject(identifiers={PHONE, "carl@cust.example"})
    service.erase_personal_data(OFFICER, [before.id], person, "third-party request")
    # Read back through a new connection: every replacement is valid for its field.
    after = SqliteRepository(tmp_path / "desk.db", registry).get(before.id)
    assert PHONE not in repr(after)
    assert after.data.phone is None  # a phone field takes no tombstone text: it is emptied
    assert after.data.email == ERASED_EMAIL
    assert after.data.name == "Carl Customer"  # not named: not erased
    assert after.comments[-1].text == f"Please call me on {TOMBSTONE}"


def _email(sender="Carl Customer <carl@cust.example>"):
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "help@acme.example"
    message["Subject"] = "Printer jam"
    message["Message-ID"] = "<m1@cust.example>"
    message["Date"] = "Mon, 02 Mar 2026 09:00:00 +0000"
    message.set_content("It jams. Reach me at carl@cust.example.\n-- Carl Customer")
    return message.as_bytes()


def test_a_ticket_taken_in_by_email_loses_the_senders_address_and_name():
    service = _service(tf.InMemoryRepository(registry=tf.default_registry()))
    contacts = InMemoryContacts({"carl@cust.example": CUSTOMER}, default_company="public")
    intake = Intake(service, kind="support_ticket", recipient="acme", contacts=contacts)
    result = intake.receive_email(_email())
    [outcome] = service.erase_personal_data(
        OFFICER, [result.task_id], DataSubject(CUSTOMER.ref), "customer asked"
    )
    text = repr(outcome.task)
    assert "carl@cust.example" not in text
    assert "Carl Customer" not in text
    assert outcome.task.data.email == ERASED_EMAIL
    # Intake still recognises the message: the seen-set is the correlation id, not the address.
    assert intake.receive_email(_email()).disposition.value == "duplicate"
