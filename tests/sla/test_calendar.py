"""Business calendars: exact arithmetic across DST and holidays, checked minute by minute."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskflow.errors import InvalidPayload
from taskflow.sla import ALWAYS, WEEKDAYS, BusinessCalendar, Span, holidays_from

MINUTE = timedelta(minutes=1)
ZONES = ("America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "UTC", "Asia/Kolkata")
# Ranges around DST changes of those zones, and an ordinary week.
STARTS = (
    datetime(2026, 3, 6, tzinfo=UTC),  # New York springs forward on 8 March
    datetime(2026, 3, 27, tzinfo=UTC),  # Berlin on 29 March
    datetime(2026, 10, 23, tzinfo=UTC),  # Berlin falls back on 25 October
    datetime(2026, 10, 30, tzinfo=UTC),  # New York on 1 November
    datetime(2026, 4, 3, tzinfo=UTC),  # Lord Howe goes back half an hour on 5 April
    datetime(2026, 6, 8, tzinfo=UTC),
)


def _reference_working(calendar: BusinessCalendar, minute: datetime) -> bool:
    """The definition, checked one minute at a time: its wall time lies in a span of a working day."""
    local = minute.astimezone(ZoneInfo(calendar.zone))
    if local.date() in calendar.holidays:
        return False
    clock = local.hour * 60 + local.minute
    return any(s.start <= clock < s.end for s in calendar.hours[local.weekday()])


def _reference_between(calendar: BusinessCalendar, a: datetime, b: datetime) -> timedelta:
    total, t = timedelta(0), a
    while t < b:
        total += MINUTE if _reference_working(calendar, t) else timedelta(0)
        t += MINUTE
    return total


def _reference_add(calendar: BusinessCalendar, a: datetime, duration: timedelta) -> datetime:
    t, left = a, duration
    while left > timedelta(0):
        if _reference_working(calendar, t):
            left -= MINUTE
        t += MINUTE
    return t


@st.composite
def spans(draw: st.DrawFn) -> list[tuple[str, str]]:
    # Quarter hours, so spans often begin or end inside a skipped or repeated hour.
    cuts = sorted(draw(st.sets(st.integers(0, 96), min_size=0, max_size=4)))
    pairs = [(cuts[i], cuts[i + 1]) for i in range(0, len(cuts) - 1, 2)]
    return [
        (f"{a * 15 // 60:02d}:{a * 15 % 60:02d}", f"{b * 15 // 60:02d}:{b * 15 % 60:02d}")
        for a, b in pairs
    ]


@st.composite
def calendars(draw: st.DrawFn) -> BusinessCalendar:
    zone = draw(st.sampled_from(ZONES))
    hours = {day: draw(spans()) for day in WEEKDAYS}
    if not any(hours.values()):
        hours["mon"] = [("01:00", "03:00")]
    start = draw(st.sampled_from(STARTS))
    days = draw(st.sets(st.integers(0, 6), max_size=2))
    holidays = [(start + timedelta(days=d)).date() for d in days]
    return BusinessCalendar(zone, hours, holidays)


@st.composite
def instants(draw: st.DrawFn) -> datetime:
    start = draw(st.sampled_from(STARTS))
    return (
        start
        + draw(st.integers(0, 5 * 24 * 4)) * timedelta(minutes=15)
        + draw(st.integers(0, 14)) * MINUTE
    )


@given(calendars(), instants(), st.integers(0, 36 * 60))
def test_business_time_between_counts_the_working_minutes_one_by_one(calendar, a, minutes):
    b = a + minutes * MINUTE
    assert calendar.business_time_between(a, b) == _reference_between(calendar, a, b)
    assert calendar.business_time_between(b, a) == -calendar.business_time_between(a, b)


@given(calendars(), instants(), st.integers(0, 10 * 60))
def test_adding_business_time_lands_where_the_minutes_run_out(calendar, a, minutes):
    duration = minutes * MINUTE
    end = calendar.add_business_time(a, duration)
    assert end == _reference_add(calendar, a, duration)
    assert calendar.business_time_between(a, end) == duration


@given(calendars(), instants(), st.integers(0, 600), st.integers(0, 600))
def test_adding_in_two_steps_is_adding_once(calendar, a, x, y):
    one = calendar.add_business_time(a, (x + y) * MINUTE)
    two = calendar.add_business_time(calendar.add_business_time(a, x * MINUTE), y * MINUTE)
    assert one == two


@given(calendars(), instants())
def test_is_working_agrees_with_the_definition(calendar, a):
    assert calendar.is_working(a) is _reference_working(calendar, a)


@given(instants(), st.integers(0, 10**6))
def test_the_24x7_calendar_counts_every_instant(a, seconds):
    d = timedelta(seconds=seconds)
    assert ALWAYS.add_business_time(a, d) == a + d
    assert ALWAYS.business_time_between(a, a + d) == d
    assert ALWAYS.is_working(a)


def test_a_day_the_clocks_go_forward_holds_23_hours_and_back_25():
    whole = BusinessCalendar("Europe/Berlin", dict.fromkeys(WEEKDAYS, ("00:00", "24:00")))
    berlin = ZoneInfo("Europe/Berlin")
    spring = datetime(2026, 3, 29, tzinfo=berlin)
    autumn = datetime(2026, 10, 25, tzinfo=berlin)
    assert whole.business_time_between(spring, spring + timedelta(days=1)) == timedelta(hours=23)
    assert whole.business_time_between(autumn, autumn + timedelta(days=1)) == timedelta(hours=25)


def test_friday_afternoon_plus_eight_hours_skips_the_weekend_and_a_holiday():
    ny = ZoneInfo("America/New_York")
    calendar = BusinessCalendar.weekdays("America/New_York", holidays=[date(2026, 11, 30)])
    friday = datetime(2026, 11, 27, 16, tzinfo=ny)
    due = calendar.add_business_time(friday, timedelta(hours=8))
    assert due == datetime(2026, 12, 1, 16, tzinfo=ny)
    assert calendar.business_time_between(friday, due) == timedelta(hours=8)


def test_sub_minute_durations_are_exact():
    calendar = BusinessCalendar.weekdays("UTC")
    at = datetime(2026, 6, 8, 16, 59, 59, 500000, tzinfo=UTC)
    assert calendar.add_business_time(at, timedelta(seconds=1)) == datetime(
        2026, 6, 9, 9, 0, 0, 500000, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: BusinessCalendar("Mars/Olympus", {"mon": ("09:00", "17:00")}), "zone"),
        (lambda: BusinessCalendar("UTC", {}), "hours"),
        (lambda: BusinessCalendar("UTC", {"monday": ("09:00", "17:00")}), "hours"),
        (lambda: BusinessCalendar("UTC", {"mon": ("17:00", "09:00")}), "end"),
        (lambda: BusinessCalendar("UTC", {"mon": ("9", "17:00")}), "start"),
        (lambda: BusinessCalendar("UTC", {"mon": ("09:00", "24:30")}), "end"),
        (
            lambda: BusinessCalendar("UTC", {"mon": [("09:00", "12:00"), ("11:00", "13:00")]}),
            "hours",
        ),
        (
            lambda: BusinessCalendar(
                "UTC", {"mon": ("09:00", "17:00")}, [datetime(2026, 1, 1, tzinfo=UTC)]
            ),
            "holidays",
        ),
    ],
)
def test_a_bad_calendar_is_refused_naming_the_field(build, field):
    with pytest.raises(InvalidPayload) as caught:
        build()
    assert caught.value.field == field


def test_naive_instants_and_negative_durations_are_refused():
    calendar = BusinessCalendar.weekdays("UTC")
    with pytest.raises(InvalidPayload, match="instant must be a timezone-aware"):
        calendar.add_business_time(datetime(2026, 1, 1), timedelta(hours=1))
    with pytest.raises(InvalidPayload, match="duration must be a timedelta >= 0"):
        calendar.add_business_time(datetime(2026, 1, 1, tzinfo=UTC), timedelta(hours=-1))


def test_spans_print_as_clock_times_and_calendars_compare_by_content():
    assert str(Span("09:00", "24:00")) == "09:00-24:00"
    assert BusinessCalendar.weekdays("UTC") == BusinessCalendar.weekdays("UTC", name="other")
    assert hash(BusinessCalendar.weekdays("UTC")) == hash(BusinessCalendar.weekdays("UTC"))
    assert BusinessCalendar.weekdays("UTC") != BusinessCalendar.weekdays("Europe/Berlin")


def test_holidays_from_the_holidays_package():
    days = holidays_from("US", [2026])
    assert date(2026, 11, 26) in days  # Thanksgiving
    with pytest.raises(InvalidPayload, match="knows no country"):
        holidays_from("XX", [2026])


def test_a_holiday_on_the_only_working_weekday_skips_to_the_week_after():
    # One working weekday whose date is a holiday leaves almost two weeks without work.
    thursdays = BusinessCalendar(
        "America/New_York", {"thu": [("00:00", "00:15")]}, [date(2026, 3, 12)]
    )
    friday = datetime(2026, 3, 6, tzinfo=UTC)
    assert thursdays.business_time_between(friday, friday) == timedelta(0)
    due = thursdays.add_business_time(friday, timedelta(minutes=5))
    assert due.astimezone(ZoneInfo("America/New_York")) == datetime(
        2026, 3, 19, 0, 5, tzinfo=ZoneInfo("America/New_York")
    )
    many = BusinessCalendar(
        "UTC",
        {"mon": [("09:00", "10:00")]},
        [date(2026, 12, 7), date(2026, 12, 14), date(2026, 12, 21)],
    )
    assert many.add_business_time(
        datetime(2026, 12, 1, tzinfo=UTC), timedelta(minutes=1)
    ) == datetime(2026, 12, 28, 9, 1, tzinfo=UTC)
