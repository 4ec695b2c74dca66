"""The general outbox: messages a unit of work commits with its tasks, delivered after the commit.

A message has a topic (`notification`, `event` for a handler, a host's own such as `tracker`
or `webhook`), a key the receiver can use to drop duplicates (delivery is at least once), a
JSON-ready payload and a not-before time. A repository keeps messages in the same atomic
write as the tasks that caused them; workers `claim` ready messages with a lease, so two
workers never hold the same message at the same time, then `complete` them, `retry` them
later, or `bury` them as dead letters with the reason. Pure values: no I/O here.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs

from taskflow.domain.validators import excerpt, typed_fields
from taskflow.domain.values import TaskId, aware, not_blank
from taskflow.errors import InvalidPayload

__all__ = [
    "DIGEST_TOPIC",
    "EVENT_TOPIC",
    "NOTIFICATION_TOPIC",
    "DeadLetter",
    "DeliveryReport",
    "OutboxEntry",
    "OutboxMessage",
    "RetryPolicy",
    "check_payload",
]

NOTIFICATION_TOPIC = "notification"
"""The topic of a `Notification` for the host's `Notifier`."""

DIGEST_TOPIC = "digest"
"""The topic of a notification collected into a digest, ready when its period ends."""

EVENT_TOPIC = "event"
"""The topic of a domain event waiting for one registered handler."""


# The encoder `json.dumps` would build per call with these options, built once.
_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False, sort_keys=True).encode


def check_payload(payload: Any, where: str) -> str:
    """Return `payload` as compact JSON text, or raise `InvalidPayload` if it is not JSON-ready."""
    if not isinstance(payload, Mapping):
        msg = f"{where}: an outbox payload must be a mapping of JSON-ready values, got {type(payload).__name__}"
        raise InvalidPayload(msg, field="payload")
    try:
        return _encode(payload)
    except (TypeError, ValueError) as exc:
        msg = (
            f"{where}: an outbox payload must hold only dicts, lists, str, int, float, bool and "
            f"None: {excerpt(str(exc), 120)}"
        )
        raise InvalidPayload(msg, field="payload") from exc
    except RecursionError:  # json's own recursion: the payload nests too deep to store
        msg = f"{where}: an outbox payload nests too deep to be stored as JSON"
        raise InvalidPayload(msg, field="payload") from None


def _topic(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    not_blank(instance, attribute, value)
    if value != value.strip() or len(value) > 200:
        msg = f"OutboxMessage.topic must be a trimmed name of at most 200 characters, got {excerpt(value)}"
        raise InvalidPayload(msg, field="topic")


def _optional_version(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        msg = (
            f"OutboxMessage.task_version must be None or a whole number >= 1, got {excerpt(value)}"
        )
        raise InvalidPayload(msg, field="task_version")


@attrs.frozen(field_transformer=typed_fields)
class OutboxMessage:
    """One message to deliver after the commit: topic, duplicate key, payload, not-before time."""

    topic: str = attrs.field(validator=_topic)
    key: str = attrs.field(validator=not_blank)
    payload: Mapping[str, Any] = attrs.field(eq=False, hash=False)
    not_before: datetime | None = attrs.field(default=None, validator=aware)
    task_id: TaskId | None = None
    task_version: int | None = attrs.field(default=None, validator=_optional_version)

    def __attrs_post_init__(self) -> None:
        # Stored as JSON by every repository: refuse here what could not be stored.
        _ = self.body

    @functools.cached_property
    def body(self) -> str:
        """Return the payload as the compact JSON text repositories store (made once)."""
        return check_payload(self.payload, f"OutboxMessage {excerpt(self.key)}")


@attrs.frozen(field_transformer=typed_fields)
class OutboxEntry:
    """A stored message as a worker sees it: its id, the message, and how often it was claimed."""

    id: int
    message: OutboxMessage
    attempts: int = 0
    claimed_by: str | None = None
    lease_until: datetime | None = None
    last_error: str | None = None

    @property
    def topic(self) -> str:
        """Return the message's topic."""
        return self.message.topic


@attrs.frozen(field_transformer=typed_fields)
class DeadLetter:
    """A message moved aside: it kept failing, could not be read, or stopped a handler chain."""

    id: int
    topic: str
    key: str
    body: str
    reason: str
    attempts: int
    buried_at: datetime
    task_id: TaskId | None = None
    task_version: int | None = None


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, timedelta) or value <= timedelta(0):
        msg = f"RetryPolicy.{attribute.name} must be a positive timedelta, got {excerpt(value)}"
        raise InvalidPayload(msg, field=attribute.name)


def _attempts(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        msg = f"RetryPolicy.attempts must be a whole number >= 1, got {excerpt(value)}"
        raise InvalidPayload(msg, field="attempts")


@attrs.frozen(field_transformer=typed_fields)
class RetryPolicy:
    """How a failed delivery is tried again: doubling waits from `first` up to `longest`, `attempts` in all."""

    first: timedelta = attrs.field(default=timedelta(seconds=10), validator=_positive)
    longest: timedelta = attrs.field(default=timedelta(hours=1), validator=_positive)
    attempts: int = attrs.field(default=10, validator=_attempts)

    def delay(self, attempt: int) -> timedelta:
        """Return how long to wait after failed attempt number `attempt` (1 for the first)."""
        steps = max(attempt - 1, 0)
        if steps >= 40:  # 2**40 waits of any size are past `longest`
            return self.longest
        wait: timedelta = self.first * (2**steps)
        return min(wait, self.longest)

    def gives_up(self, attempt: int) -> bool:
        """Tell whether a message that failed attempt number `attempt` goes to the dead letters."""
        return attempt >= self.attempts


@attrs.frozen
class DeliveryReport:
    """What one delivery round did: delivered, failed (to be retried) and buried messages."""

    delivered: int = 0
    failed: tuple[OutboxEntry, ...] = ()
    buried: tuple[int, ...] = ()
    errors: tuple[str, ...] = attrs.field(default=(), eq=False)

    @property
    def ok(self) -> bool:
        """Tell whether every message the round claimed was delivered."""
        return not self.failed and not self.buried

    def __add__(self, other: DeliveryReport) -> DeliveryReport:
        return DeliveryReport(
            self.delivered + other.delivered,
            (*self.failed, *other.failed),
            (*self.buried, *other.buried),
            (*self.errors, *other.errors),
        )
