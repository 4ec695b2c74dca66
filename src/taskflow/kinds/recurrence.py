"""Recurring bookings (BR1): an RFC 5545 recurrence rule and the occurrences it gives in a span.

The rule arithmetic is python-dateutil's `rrule`, an optional extra (`taskflow[bookings]`):
it is imported when occurrences are asked for, never by `import taskflow`; without it the
call raises `MissingExtra` naming the extra.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import attrs

from taskflow.domain.validators import excerpt, member_or_value, tuple_of, typed_fields
from taskflow.domain.values import aware
from taskflow.errors import InvalidPayload, MissingExtra

__all__ = ["Frequency", "Recurrence", "occurrences"]

WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


class Frequency(enum.StrEnum):
    """How often a rule repeats (RFC 5545 FREQ)."""

    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


def _frequency(value: Any) -> Any:
    return member_or_value(Frequency, value)


def _is_frequency(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Frequency):
        allowed = ", ".join(repr(f.value) for f in Frequency)
        msg = f"Recurrence.frequency must be one of {allowed}, got {excerpt(value)}"
        raise InvalidPayload(msg, field="frequency")


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None and attribute.name == "count":
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = f"Recurrence.{attribute.name} must be a whole number >= 1, got {excerpt(value)}"
        raise InvalidPayload(msg, field=attribute.name)


def _weekdays(value: Any) -> tuple[int, ...]:
    days = tuple_of(int, value, "Recurrence.weekdays", unique=True)
    return tuple(sorted(days))


def _check_weekdays(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    wrong = [d for d in value if isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 6]
    if wrong:
        msg = f"Recurrence.weekdays are 0 (Monday) to 6 (Sunday), got {excerpt(wrong)}"
        raise InvalidPayload(msg, field="weekdays")


def _times(value: Any) -> tuple[datetime, ...]:
    return tuple_of(datetime, value, "Recurrence.exceptions")


def _aware_all(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    for item in value:
        aware(instance, attribute, item)


@attrs.frozen(kw_only=True, field_transformer=typed_fields)
class Recurrence:
    """An RFC 5545 rule: every `interval` days, weeks or months from `start`, on `weekdays` for weekly.

    It ends at `until` (included) or after `count` occurrences, or runs on; `exceptions` are
    occurrences left out (EXDATE). Times are timezone-aware; occurrences keep `start`'s zone.
    """

    start: datetime = attrs.field(validator=aware)
    frequency: Frequency = attrs.field(
        default=Frequency.WEEKLY, converter=_frequency, validator=_is_frequency
    )
    interval: int = attrs.field(default=1, validator=_positive)
    weekdays: tuple[int, ...] = attrs.field(
        default=(), converter=_weekdays, validator=_check_weekdays
    )
    until: datetime | None = attrs.field(default=None, validator=aware)
    count: int | None = attrs.field(default=None, validator=_positive)
    exceptions: tuple[datetime, ...] = attrs.field(
        default=(), converter=_times, validator=_aware_all
    )

    def __attrs_post_init__(self) -> None:
        if self.until is not None and self.count is not None:
            msg = "a Recurrence ends at until or after count occurrences, not both (RFC 5545)"
            raise InvalidPayload(msg, field="count")

    @property
    def rrule(self) -> str:
        """Return the rule as an RFC 5545 RRULE value."""
        parts = [f"FREQ={self.frequency.upper()}", f"INTERVAL={self.interval}"]
        if self.weekdays:
            parts.append("BYDAY=" + ",".join(WEEKDAYS[d] for d in self.weekdays))
        if self.until is not None:
            parts.append(f"UNTIL={self.until.astimezone().strftime('%Y%m%dT%H%M%SZ')}")
        if self.count is not None:
            parts.append(f"COUNT={self.count}")
        return ";".join(parts)


def _rrule() -> Any:
    try:
        from dateutil import rrule  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        raise MissingExtra("recurring bookings", "bookings", "python-dateutil") from None
    return rrule


def occurrences(rule: Recurrence, after: datetime, until: datetime) -> tuple[datetime, ...]:
    """Return the rule's occurrences from `after` to `until`, both included, exceptions left out."""
    if not after <= until:
        msg = f"occurrences: after {after.isoformat()} must not be later than until {until.isoformat()}"
        raise InvalidPayload(msg, field="until")
    rr = _rrule()
    frequency = {
        Frequency.DAILY: rr.DAILY,
        Frequency.WEEKLY: rr.WEEKLY,
        Frequency.MONTHLY: rr.MONTHLY,
    }[rule.frequency]
    days = [rr.weekdays[d] for d in rule.weekdays] or None
    generator = rr.rrule(
        frequency,
        dtstart=rule.start,
        interval=rule.interval,
        byweekday=days,
        until=rule.until,
        count=rule.count,
    )
    skipped = set(rule.exceptions)
    found = generator.between(after, until, inc=True)
    return tuple(t for t in found if t not in skipped)
