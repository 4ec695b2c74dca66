"""Business calendars: working hours per weekday in a time zone, holidays, and time arithmetic.

A calendar's working time is the set of instants whose *local wall time* (in the calendar's
`zoneinfo` time zone) falls in one of its weekday's spans, on a day that is not a holiday.
`add_business_time` and `business_time_between` measure that set exactly, to the microsecond,
across DST changes: on a day the clocks go forward a 00:00-24:00 span holds 23 hours, on a day
they go back 25, and a span such as 01:30-02:30 on the night the clocks go back holds every
instant whose wall time reads between those times (both passes of the repeated hour).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from taskflow.errors import InvalidPayload

__all__ = [
    "ALWAYS",
    "WEEKDAYS",
    "BusinessCalendar",
    "Span",
    "holidays_from",
]

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""The weekday names a calendar's hours are keyed by, Monday first (`date.weekday()` order)."""

_DAY = 24 * 60
_ZERO = timedelta(0)
# Offsets range from UTC-12 to UTC+14; a local day's instants lie within these bounds of it.
_BEFORE, _AFTER = timedelta(hours=15), timedelta(hours=13)


def _minutes(text: Any, what: str) -> int:
    if isinstance(text, time):
        return text.hour * 60 + text.minute
    if not isinstance(text, str):
        msg = f"Span.{what} must be a time 'HH:MM' (00:00 to 24:00), got {text!r}"
        raise InvalidPayload(msg, field=what)
    hours, sep, minutes = text.partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        msg = f"Span.{what} must be a time 'HH:MM' (00:00 to 24:00), got {text!r}"
        raise InvalidPayload(msg, field=what)
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or value > _DAY:
        msg = f"Span.{what} must be a time 'HH:MM' (00:00 to 24:00), got {text!r}"
        raise InvalidPayload(msg, field=what)
    return value


def _span_end(instance: Span, attribute: attrs.Attribute[Any], value: int) -> None:
    if value <= instance.start:
        msg = (
            f"Span.end must be after its start ({_clock(instance.start)}), got {_clock(value)}; "
            "a span runs within one day (end 24:00 for midnight)"
        )
        raise InvalidPayload(msg, field="end")


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _start(value: Any) -> int:
    return _minutes(value, "start")


def _end(value: Any) -> int:
    return _minutes(value, "end")


@attrs.frozen(order=True)
class Span:
    """Working hours within one local day, from `start` to `end` ('HH:MM', end up to '24:00')."""

    start: int = attrs.field(converter=_start)
    end: int = attrs.field(converter=_end, validator=_span_end)

    def __str__(self) -> str:
        return f"{_clock(self.start)}-{_clock(self.end)}"


def _zone(value: Any) -> str:
    if not isinstance(value, str):
        msg = f"BusinessCalendar.zone must be an IANA time zone name like 'Europe/Berlin', got {value!r}"
        raise InvalidPayload(msg, field="zone")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        msg = (
            f"BusinessCalendar.zone {value!r} is not a known IANA time zone (e.g. 'Europe/Berlin')"
        )
        raise InvalidPayload(msg, field="zone") from None
    return value


def _spans(value: Any) -> tuple[Span, ...]:
    if isinstance(value, Span):
        return (value,)
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return (Span(*value),)
    spans = sorted(v if isinstance(v, Span) else Span(*v) for v in value)
    for a, b in itertools.pairwise(spans):
        if b.start < a.end:
            msg = f"working hours {a} and {b} overlap; give each weekday's spans apart"
            raise InvalidPayload(msg, field="hours")
    return tuple(spans)


def _hours(value: Mapping[str, Any]) -> tuple[tuple[Span, ...], ...]:
    if not isinstance(value, Mapping):
        msg = f"BusinessCalendar.hours must map weekday names {WEEKDAYS} to spans, got {value!r}"
        raise InvalidPayload(msg, field="hours")
    unknown = sorted(str(k) for k in value if k not in WEEKDAYS)
    if unknown:
        msg = f"BusinessCalendar.hours names {unknown}, which are not weekdays; use {WEEKDAYS}"
        raise InvalidPayload(msg, field="hours")
    return tuple(_spans(value.get(day, ())) for day in WEEKDAYS)


def _dates(value: Iterable[date]) -> frozenset[date]:
    days = frozenset(value)
    wrong = [d for d in days if not isinstance(d, date) or isinstance(d, datetime)]
    if wrong:
        msg = f"BusinessCalendar.holidays must be dates, got {wrong[0]!r}"
        raise InvalidPayload(msg, field="holidays")
    return days


def _some_hours(instance: BusinessCalendar, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not instance.always and not any(value):
        msg = "BusinessCalendar.hours gives no working time on any weekday; give at least one span"
        raise InvalidPayload(msg, field="hours")


def _aware(at: datetime, what: str) -> datetime:
    if not isinstance(at, datetime) or at.utcoffset() is None:
        msg = f"{what} must be a timezone-aware datetime, got {at!r}"
        raise InvalidPayload(msg, field=what)
    return at.astimezone(UTC)


@attrs.frozen(eq=False)
class BusinessCalendar:
    """Working hours per weekday in an IANA time zone, minus holidays; `ALWAYS` counts every instant.

    `hours` maps weekday names ("mon" .. "sun") to spans: `{"mon": ("09:00", "17:00")}` or
    several, `{"mon": [("08:00", "12:00"), ("13:00", "17:00")]}`. `holidays` are local dates
    with no working time (the host supplies them; `holidays_from` builds them from the
    `holidays` package).
    """

    zone: str = attrs.field(default="UTC", converter=_zone)
    hours: tuple[tuple[Span, ...], ...] = attrs.field(
        factory=dict, converter=_hours, validator=_some_hours
    )
    holidays: frozenset[date] = attrs.field(factory=frozenset, converter=_dates)
    name: str = ""
    always: bool = attrs.field(default=False, kw_only=True)
    _tz: ZoneInfo = attrs.field(init=False, repr=False)
    _cache: dict[date, tuple[tuple[datetime, datetime], ...]] = attrs.field(
        init=False, repr=False, factory=dict
    )

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_tz", ZoneInfo(self.zone))

    @classmethod
    def weekdays(
        cls,
        zone: str,
        start: str = "09:00",
        end: str = "17:00",
        *,
        days: Iterable[str] = WEEKDAYS[:5],
        holidays: Iterable[date] = (),
        name: str = "",
    ) -> BusinessCalendar:
        """Return a calendar with the same hours on each of `days` (Monday to Friday by default)."""
        return cls(zone, dict.fromkeys(days, (start, end)), frozenset(holidays), name)

    def working_pieces(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """Return the working time of local `day` as UTC intervals [start, end), in order."""
        cached = self._cache.get(day)
        if cached is not None:
            return cached
        pieces: list[tuple[datetime, datetime]] = []
        if day not in self.holidays:
            midnight = datetime.combine(day, time())
            for span in self.hours[day.weekday()]:
                pieces += self._instants(
                    midnight + timedelta(minutes=span.start),
                    midnight + timedelta(minutes=span.end),
                )
        found = _merged(sorted(pieces))
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[day] = found
        return found

    def _instants(self, low: datetime, high: datetime) -> list[tuple[datetime, datetime]]:
        # The instants whose wall time lies in [low, high) (naive local times): per stretch of
        # constant UTC offset, wall = utc + offset, so utc lies in [low - offset, high - offset).
        out: list[tuple[datetime, datetime]] = []
        for begin, finish, offset in self._stretches(low - _BEFORE, high + _AFTER):
            a = max(begin, (low - offset).replace(tzinfo=UTC))
            b = min(finish, (high - offset).replace(tzinfo=UTC))
            if a < b:
                out.append((a, b))
        return out

    def _stretches(
        self, low: datetime, high: datetime
    ) -> Iterator[tuple[datetime, datetime, timedelta]]:
        # Split [low, high) (naive UTC) into stretches of constant offset: the zone's rules
        # change at most once within a day and a bit, so one bisection finds the change.
        begin, end = low.replace(tzinfo=UTC), high.replace(tzinfo=UTC)
        first, last = self._offset(begin), self._offset(end)
        if first == last:
            yield begin, end, first
            return
        a, b = begin, end
        while b - a > timedelta(seconds=1):
            mid = a + (b - a) / 2
            mid = mid.replace(microsecond=0)
            if self._offset(mid) == first:
                a = mid
            else:
                b = mid
        yield begin, b, first
        yield b, end, last

    def _offset(self, at: datetime) -> timedelta:
        offset = at.astimezone(self._tz).utcoffset()
        assert offset is not None  # a ZoneInfo always gives one
        return offset

    def _local_day(self, at: datetime) -> date:
        return at.astimezone(self._tz).date()

    def _pieces_from(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        # The working pieces that end after `at`, in order, the first clipped to start at `at`.
        day = self._local_day(at) - timedelta(days=1)
        idle = 0
        while True:
            found = False
            for a, b in self.working_pieces(day):
                found = True
                if b > at:
                    yield max(a, at), b
            day += timedelta(days=1)
            idle = 0 if found else idle + 1
            # Each holiday can take out at most one week's working day (a calendar may work on
            # one weekday only), so a longer idle run means no working time ever again.
            if idle > 7 * (
                len(self.holidays) + 1
            ):  # pragma: no cover - hours exist on some weekday
                msg = f"calendar {self.name or self.zone} has no working time after {at}"
                raise InvalidPayload(msg, field="hours")

    def add_business_time(self, instant: datetime, duration: timedelta) -> datetime:
        """Return the instant at which `duration` of working time has passed after `instant` (UTC)."""
        at = _aware(instant, "instant")
        _duration(duration)
        if self.always or duration == _ZERO:
            return at + duration
        left = duration
        for a, b in self._pieces_from(at):
            if b - a >= left:
                return a + left
            left -= b - a
        raise AssertionError  # pragma: no cover - _pieces_from never ends

    def business_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Return the working time between two instants (negative when `end` is before `start`)."""
        a, b = _aware(start, "start"), _aware(end, "end")
        if b < a:
            return -self.business_time_between(b, a)
        if self.always:
            return b - a
        total = _ZERO
        for low, high in self._pieces_from(a):
            if low >= b:
                break
            total += min(high, b) - low
        return total

    def is_working(self, instant: datetime) -> bool:
        """Tell whether `instant` lies in working time."""
        at = _aware(instant, "instant")
        if self.always:
            return True
        day = self._local_day(at)
        return any(
            a <= at < b
            for d in (day - timedelta(days=1), day, day + timedelta(days=1))
            for a, b in self.working_pieces(d)
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BusinessCalendar):
            return NotImplemented
        return (self.zone, self.hours, self.holidays, self.always) == (
            other.zone,
            other.hours,
            other.holidays,
            other.always,
        )

    def __hash__(self) -> int:
        return hash((self.zone, self.hours, self.holidays, self.always))


def _merged(pieces: list[tuple[datetime, datetime]]) -> tuple[tuple[datetime, datetime], ...]:
    out: list[tuple[datetime, datetime]] = []
    for a, b in pieces:
        if out and out[-1][1] >= a:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return tuple(out)


def _duration(value: Any) -> None:
    if not isinstance(value, timedelta) or value < _ZERO:
        msg = f"duration must be a timedelta >= 0, got {value!r}"
        raise InvalidPayload(msg, field="duration")


ALWAYS = BusinessCalendar(name="24x7", always=True)
"""The 24x7 calendar: every instant is working time."""


@functools.lru_cache(maxsize=64)
def _holiday_dates(country: str, years: tuple[int, ...], subdiv: str | None) -> frozenset[date]:
    try:
        import holidays
    except ImportError:
        msg = "holidays_from needs the 'holidays' package: pip install 'taskflow[holidays]'"
        raise InvalidPayload(msg, field="country") from None
    try:
        found = holidays.country_holidays(country, subdiv=subdiv, years=years)
    except NotImplementedError:
        msg = f"the holidays package knows no country {country!r} (subdivision {subdiv!r})"
        raise InvalidPayload(msg, field="country") from None
    return frozenset(found)


def holidays_from(
    country: str, years: Iterable[int], *, subdiv: str | None = None
) -> frozenset[date]:
    """Return a country's public holidays in `years` from the optional `holidays` package."""
    return _holiday_dates(country, tuple(sorted(set(years))), subdiv)
