"""The production adapters for time and ids: the system clock in UTC and time-ordered UUIDs.

This is the one module of taskflow that reads the clock or the random source; the core never
does (a layout test holds every other module to that). `FixedClock` and `SequentialIds`
(`taskflow.adapters.memory`) are test helpers: their ids collide across processes and restarts.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import UTC, datetime

from taskflow.domain.values import TaskId

__all__ = ["SystemClock", "UuidIds", "uuid7"]

# RFC 9562 section 5.7: 48 bits of Unix milliseconds, version 7, 12 bits, variant, 62 bits.
_RAND_A_BITS = 12
_RAND_B_BITS = 62


class SystemClock:
    """Tells the real time, timezone-aware in UTC; never earlier than the time it told before.

    The system clock may be stepped back (NTP, a VM resumed); the clock then repeats the
    latest time it told until the system catches up, so history entries stay in order.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: datetime | None = None

    def now(self) -> datetime:
        """Return the current time in UTC (aware), no earlier than the last time returned."""
        current = datetime.now(UTC)
        with self._lock:
            if self._last is not None and current < self._last:
                return self._last
            self._last = current
            return current


class UuidIds:
    """Makes task ids that are UUID version 7 strings: unique across processes and restarts.

    Time-ordered (RFC 9562): ids made later sort later, so a database's primary-key index is
    appended to rather than written at random places; 74 random bits per millisecond keep
    two processes from ever meeting. Within one process ids are strictly increasing.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def new_task_id(self) -> TaskId:
        """Return a new UUID7 id in its canonical text form (36 characters, lower case)."""
        with self._lock:
            value = _uuid7_int(time.time_ns() // 1_000_000, self._last)
            self._last = value
        return TaskId(str(uuid.UUID(int=value)))


def uuid7() -> uuid.UUID:
    """Return a new random UUID version 7 (time-ordered) from the system clock."""
    return uuid.UUID(int=_uuid7_int(time.time_ns() // 1_000_000, 0))


def _uuid7_int(millis: int, last: int) -> int:
    rand_a = int.from_bytes(os.urandom(2)) & ((1 << _RAND_A_BITS) - 1)
    rand_b = int.from_bytes(os.urandom(8)) & ((1 << _RAND_B_BITS) - 1)
    value = _layout(millis, rand_a, rand_b)
    if value <= last:
        # The same millisecond (or a clock stepped back): count on from the last id, so ids
        # of one process stay strictly increasing (RFC 9562 6.2, method 2 on rand_b).
        last_millis = last >> 80
        last_a = (last >> 64) & ((1 << _RAND_A_BITS) - 1)
        last_b = last & ((1 << _RAND_B_BITS) - 1)
        if last_b + 1 < (1 << _RAND_B_BITS):
            value = _layout(last_millis, last_a, last_b + 1)
        elif last_a + 1 < (1 << _RAND_A_BITS):  # pragma: no cover - 2**62 ids in one ms
            value = _layout(last_millis, last_a + 1, rand_b)
        else:  # pragma: no cover - borrow the next millisecond
            value = _layout(last_millis + 1, rand_a, rand_b)
    return value


def _layout(millis: int, rand_a: int, rand_b: int) -> int:
    return (millis & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
