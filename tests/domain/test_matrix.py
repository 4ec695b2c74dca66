"""The notification matrix: per kind and event who is told, opt-outs, digests through the outbox."""

from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import taskflow as tf
from taskflow.application.digests import deliver_digests
from taskflow.domain.matrix import (
    SEED_DEFAULTS,
    InMemoryPreferences,
    MatrixEntry,
    NotificationMatrix,
    build_digests,
    digest_window,
)
from taskflow.domain.notifications import Notification
from taskflow.kinds import BUILTIN_KINDS
from taskflow.kinds.document import DocumentRequest, UploadDocument

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
BEA, SAM, SUE = tf.Actor("bea", "acme"), tf.Actor("sam", "supco"), tf.Actor("sue", "supco")
LEA = tf.UserRef("acme", "lea")
PDF_FILE = tf.FileRef("c.pdf", tf.PDF, 10, "sha256:1", "files/1")


@attrs.frozen
class Booking:
    """Data of a seed-000 booking task, for the silent default."""

    ref: str = "B-1"


BOOKING = tf.TaskKind(
    "booking_task",
    Booking,
    tf.Workflow(
        name="booking_task",
        initial="open",
        states=(tf.State("open", waiting_on=tf.Side.RECIPIENT), tf.State("resolved", final=True)),
        transitions=(
            tf.Transition("resolve", "open", "resolved", tf.Side.RECIPIENT),
            *tf.common_actions(),
        ),
    ),
)


def _service(policy=tf.default_policy):
    return tf.TaskService(
        registry=tf.Registry([*(k for k in BUILTIN_KINDS if k.name != "booking_task"), BOOKING]),
        repository=tf.InMemoryRepository(),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
        policy=policy,
    )


def _told(service):
    return [(n.recipient.user, n.event) for n in service.notifier.sent]


def _story(service):
    draft = tf.NewTask("ISO", "supco", DocumentRequest("ISO"), assignees=[SAM.ref], watchers=[LEA])
    task = service.open(BEA, "document_request", draft).task
    service.comment(SAM, task.id, "internal", tf.Visibility.INTERNAL)
    service.comment(SAM, task.id, "public")
    service.act(SAM, task.id, "upload", UploadDocument(PDF_FILE))
    return task


def test_the_seed_defaults_keep_what_the_default_policy_says_for_supplier_portal_kinds():
    plain, matrix = _service(), _service(NotificationMatrix(SEED_DEFAULTS))
    _story(plain)
    _story(matrix)
    assert _told(matrix) == _told(plain)
    assert ("bea", "commented") in _told(matrix)
    assert ("bea", "document_uploaded") in _told(matrix)


def test_seed_000_booking_tasks_notify_nobody():
    service = _service(NotificationMatrix(SEED_DEFAULTS))
    task = service.open(
        BEA, "booking_task", tf.NewTask("Book", "supco", Booking(), assignees=[SAM.ref])
    ).task
    service.comment(SAM, task.id, "done")
    service.act(SAM, task.id, "resolve")
    assert _told(service) == []
    # Without the matrix the default policy would have told the other side.
    plain = _service()
    plain.open(BEA, "booking_task", tf.NewTask("Book", "supco", Booking(), assignees=[SAM.ref]))
    assert _told(plain) == [("sam", "opened")]


def test_entries_per_kind_and_event_the_most_specific_decide_and_add_up():
    entries = [
        MatrixEntry("document_request", "*", {"assignees"}),
        MatrixEntry("document_request", "commented", {"watchers"}),
        MatrixEntry("document_request", "commented", {"requester"}, when=lambda t: "vip" in t.tags),
        MatrixEntry("*", "*", ()),
    ]
    service = _service(NotificationMatrix(entries))
    task = service.open(
        BEA,
        "document_request",
        tf.NewTask(
            "ISO",
            "supco",
            DocumentRequest("ISO"),
            assignees=[SAM.ref],
            watchers=[LEA],
            tags={"vip"},
        ),
    ).task
    assert _told(service) == [("sam", "opened")]  # bea opened it: never told of her own action
    service.notifier.clear()
    service.comment(SAM, task.id, "public")
    assert _told(service) == [("lea", "commented"), ("bea", "commented")]
    service.notifier.clear()
    service.comment(SAM, task.id, "note", tf.Visibility.INTERNAL)
    assert _told(service) == []  # acme may not read supco's internal note
    service.notifier.clear()
    service.open(BEA, "booking_task", tf.NewTask("B", "supco", Booking(), assignees=[SAM.ref]))
    assert _told(service) == []


def test_a_team_lookup_names_the_team_and_a_user_may_opt_out():
    prefs = InMemoryPreferences()
    team = lambda task: [tf.UserRef("supco", "sue"), tf.UserRef("zeta", "zed")]  # noqa: E731
    matrix = NotificationMatrix(
        [MatrixEntry("document_request", "*", {"team", "partner"})], preferences=prefs, team=team
    )
    service = _service(matrix)
    prefs.opt_out(SAM.ref, "document_request", "opened")
    service.open(
        BEA,
        "document_request",
        tf.NewTask("ISO", "supco", DocumentRequest("ISO"), assignees=[SAM.ref]),
    )
    assert _told(service) == [("sue", "opened")]  # zed is no party; sam opted out
    prefs.opt_in(SAM.ref, "document_request", "opened")
    service.open(
        BEA,
        "document_request",
        tf.NewTask("ISO", "supco", DocumentRequest("ISO"), assignees=[SAM.ref]),
    )
    assert _told(service)[-2:] == [("sam", "opened"), ("sue", "opened")]


def test_a_digest_collects_one_message_per_user_per_period_through_the_outbox():
    prefs = InMemoryPreferences()
    prefs.digest(SAM.ref, timedelta(hours=1))
    service = _service(NotificationMatrix(SEED_DEFAULTS, preferences=prefs))
    for subject in ("ISO", "CE", "RoHS"):
        service.open(
            BEA,
            "document_request",
            tf.NewTask(subject, "supco", DocumentRequest(subject), assignees=[SAM.ref]),
        )
    assert _told(service) == []
    pending = service.repository.pending()
    assert {e.topic for e in pending} == {"digest"}
    assert {e.message.not_before for e in pending} == {START + timedelta(hours=1)}
    assert deliver_digests(service, START + timedelta(minutes=59)) == 0
    service.clock.set(START + timedelta(hours=1))
    assert deliver_digests(service) == 1
    (digest,) = service.notifier.sent
    assert digest.recipient == SAM.ref
    assert digest.message.startswith("3 update(s) until 2026-03-02T10:00:00+00:00:")
    assert service.repository.pending() == []
    with pytest.raises(tf.InvalidPayload, match="positive timedelta"):
        prefs.digest(SAM.ref, timedelta(0))


@given(
    st.datetimes(
        min_value=datetime(2001, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
    ),
    st.integers(1, 10_000),
)
def test_a_digest_window_holds_its_instant_and_is_the_same_for_every_instant_in_it(at, minutes):
    period = timedelta(minutes=minutes)
    start, end = digest_window(at, period)
    assert start <= at < end
    assert end - start == period
    assert digest_window(start, period) == (start, end)
    assert digest_window(end, period)[0] == end


@given(st.lists(st.tuples(st.sampled_from(["ann", "bob"]), st.integers(0, 3)), max_size=12))
def test_build_digests_makes_one_digest_per_user_and_period_ended_by_now(items):
    notes = [
        Notification(
            tf.UserRef("acme", u),
            tf.TaskId("t"),
            "N-1",
            "e",
            f"m{i}",
            digest_until=START + timedelta(hours=h),
        )
        for i, (u, h) in enumerate(items)
    ]
    now = START + timedelta(hours=2)
    digests = build_digests(notes, now)
    expected = {(u, h) for u, h in items if h <= 2}
    assert len(digests) == len(expected)
    assert sum(d.message.count("\n- ") for d in digests) == sum(1 for _, h in items if h <= 2)
    assert build_digests(notes, now) == digests  # pure
