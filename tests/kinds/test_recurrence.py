"""Recurring bookings (BR1): RFC 5545 rules through dateutil, idempotent generation, the optional extra."""

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

import taskflow as tf
from taskflow import Actor, Bookings, InMemoryProviders, InvalidPayload
from taskflow.kinds.booking_request import Place, TimeWindow, booking_request_draft
from taskflow.kinds.recurrence import Recurrence, occurrences

MONDAY = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
OPERATOR = Actor("olga", "homeops")
CUSTOMER = Actor("jo", "cust-jo")


def test_weekly_on_given_days_until_a_date_with_an_exception():
    rule = Recurrence(
        start=MONDAY,
        weekdays=(0, 3),
        until=MONDAY + timedelta(days=14),
        exceptions=(MONDAY + timedelta(days=7),),
    )
    found = occurrences(rule, MONDAY, MONDAY + timedelta(days=60))
    assert [t.strftime("%a %d") for t in found] == ["Mon 01", "Thu 04", "Thu 11", "Mon 15"]
    assert rule.rrule.startswith("FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,TH;UNTIL=")


def test_every_second_week_for_a_count_and_daily_and_monthly():
    every_other = Recurrence(start=MONDAY, interval=2, count=3)
    found = occurrences(every_other, MONDAY, MONDAY + timedelta(days=100))
    assert [(t - MONDAY).days for t in found] == [0, 14, 28]
    daily = Recurrence(start=MONDAY, frequency="daily", count=2)
    assert len(occurrences(daily, MONDAY, MONDAY + timedelta(days=9))) == 2
    monthly = Recurrence(start=MONDAY, frequency="monthly", count=3)
    assert [t.month for t in occurrences(monthly, MONDAY, MONDAY + timedelta(days=100))] == [
        6,
        7,
        8,
    ]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"interval": 0}, "interval"),
        ({"weekdays": (7,)}, "weekdays"),
        ({"frequency": "yearly"}, "frequency"),
        ({"count": 2, "until": MONDAY}, "count"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_field(fields, field):
    with pytest.raises(InvalidPayload) as caught:
        Recurrence(start=MONDAY, **fields)
    assert caught.value.field == field


@given(st.integers(1, 3), st.integers(1, 10), st.integers(0, 60), st.integers(1, 60))
def test_occurrences_lie_in_the_span_and_are_fewer_than_the_count(interval, count, skip, span):
    rule = Recurrence(start=MONDAY, interval=interval, count=count, weekdays=(1, 4))
    after = MONDAY + timedelta(days=skip)
    found = occurrences(rule, after, after + timedelta(days=span))
    assert all(after <= t <= after + timedelta(days=span) for t in found)
    assert len(found) <= count
    assert list(found) == sorted(found)


def _bookings():
    registry = tf.default_registry()
    service = tf.TaskService(
        registry=registry,
        repository=tf.InMemoryRepository(registry=registry),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(MONDAY),
        ids=tf.SequentialIds(),
    )
    return Bookings(service, directory=InMemoryProviders())


def test_a_weekly_series_over_four_weeks_is_generated_once():
    bookings = _bookings()
    window = TimeWindow(MONDAY, MONDAY + timedelta(hours=2))
    template = booking_request_draft(
        "cust-jo", "C-1", ("cleaning",), Place("Home", 46.05, 14.5), window, subject="Cleaning"
    )
    rule = Recurrence(start=MONDAY, weekdays=(0,))
    horizon = timedelta(days=27)
    made = bookings.generate_series(
        OPERATOR, template, rule, series_id="S-1", now=MONDAY, horizon=horizon
    )
    assert [t.data.window.start.day for t in made] == [1, 8, 15, 22]
    again = bookings.generate_series(
        OPERATOR, template, rule, series_id="S-1", now=MONDAY, horizon=horizon
    )
    assert again == ()
    later = bookings.generate_series(
        OPERATOR, template, rule, series_id="S-1", now=MONDAY + timedelta(days=7), horizon=horizon
    )
    assert [t.data.window.start.day for t in later] == [29]
    series = bookings.series_bookings(CUSTOMER, "S-1")
    assert len(series) == 5
    assert all(t.data.series_id == "S-1" for t in series)
    assert len(bookings.customer_bookings(CUSTOMER, "C-1", recurring=True)) == 5


def test_importing_taskflow_does_not_import_dateutil():
    code = "import taskflow, taskflow.kinds.recurrence, sys; print('dateutil' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_without_the_extra_occurrences_raise_missing_extra_naming_it():
    code = (
        "import sys; sys.modules['dateutil'] = None\n"
        "from datetime import UTC, datetime\n"
        "import taskflow as tf\n"
        "from taskflow.kinds.recurrence import Recurrence, occurrences\n"
        "t = datetime(2026, 6, 1, tzinfo=UTC)\n"
        "try:\n"
        "    occurrences(Recurrence(start=t), t, t)\n"
        "except tf.MissingExtra as e:\n"
        "    print(isinstance(e, ImportError), e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == (
        "True recurring bookings needs the optional package 'python-dateutil', which is not "
        "installed; install it with: pip install 'taskflow[bookings]'"
    )
