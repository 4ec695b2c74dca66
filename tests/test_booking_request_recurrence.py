"""A booking request's optional recurrence (BR1): the rule a series' requests carry."""

from datetime import UTC, datetime, timedelta

import pytest

import taskflow as tf
from taskflow import Actor, Bookings, InvalidPayload
from taskflow.kinds.booking_request import Place, TimeWindow, booking_request_draft
from taskflow.kinds.recurrence import Recurrence

MONDAY = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
REGISTRY = tf.default_registry()
OPERATOR = Actor("olga", "homeops")
CUSTOMER = Actor("jo", "cust-jo")
HOME = Place("Jo's home", 46.05, 14.50)
WEEKLY = Recurrence(start=MONDAY, weekdays=(0,), exceptions=(MONDAY + timedelta(weeks=2),))


def _bookings(repository=None):
    service = tf.TaskService(
        registry=REGISTRY,
        repository=repository or tf.InMemoryRepository(registry=REGISTRY),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(MONDAY),
        ids=tf.SequentialIds(),
    )
    return Bookings(service)


def _template(recurrence=WEEKLY):
    return booking_request_draft(
        "cust-jo",
        "C-1",
        ("cleaning",),
        HOME,
        TimeWindow(MONDAY, MONDAY + timedelta(hours=2)),
        customers=[CUSTOMER.ref],
        subject="Weekly cleaning",
        recurrence=recurrence,
    )


def test_a_template_with_a_recurrence_generates_its_series_and_each_request_carries_the_rule():
    bookings = _bookings()
    made = bookings.generate_series(
        OPERATOR, _template(), series_id="S-1", now=MONDAY, horizon=timedelta(days=27)
    )
    assert [t.data.window.start.day for t in made] == [1, 8, 22]  # the 15th is an exception
    series = bookings.series_bookings(CUSTOMER, "S-1")
    assert [t.data.recurrence for t in series] == [WEEKLY] * 3
    assert series[0].data.recurrence.rrule == "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO"


def test_a_rule_passed_to_generate_series_is_the_one_the_requests_carry():
    bookings = _bookings()
    fortnightly = Recurrence(start=MONDAY, interval=2, weekdays=(0,), count=2)
    made = bookings.generate_series(
        OPERATOR,
        _template(recurrence=None),
        fortnightly,
        series_id="S-2",
        now=MONDAY,
        horizon=timedelta(days=40),
    )
    assert [t.data.recurrence for t in made] == [fortnightly, fortnightly]


def test_the_rule_of_a_request_survives_storage_on_sqlite(tmp_path):
    repository = tf.SqliteRepository(tmp_path / "series.db", REGISTRY)
    try:
        bookings = _bookings(repository)
        made = bookings.generate_series(
            OPERATOR, _template(), series_id="S-1", now=MONDAY, horizon=timedelta(days=6)
        )
        assert repository.get(made[0].id).data.recurrence == WEEKLY
    finally:
        repository.close()


def test_a_series_needs_a_rule_from_the_call_or_the_template():
    with pytest.raises(InvalidPayload) as refused:
        _bookings().generate_series(
            OPERATOR,
            _template(recurrence=None),
            series_id="S-1",
            now=MONDAY,
            horizon=timedelta(days=6),
        )
    assert refused.value.field == "rule"


def test_a_request_with_a_recurrence_is_opened_only_as_an_occurrence_of_a_series():
    with pytest.raises(InvalidPayload) as refused:
        _bookings().request_booking(OPERATOR, _template())
    assert refused.value.field == "data.recurrence"
    assert "generate_series" in str(refused.value)


def test_a_recurrence_that_is_not_a_rule_is_refused():
    with pytest.raises(InvalidPayload) as refused:
        _template(recurrence="FREQ=WEEKLY")
    assert refused.value.field == "recurrence"
