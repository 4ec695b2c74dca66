"""Chat transcripts: one conversation becomes one ticket, its messages the ticket's comments."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import attrs

from taskflow.domain.values import aware, not_blank
from taskflow.errors import InvalidPayload
from taskflow.intake.model import Sender

__all__ = ["CUSTOMER", "ChatLine", "Transcript"]

CUSTOMER = "customer"
"""The author of a chat line written by the customer (other authors are agents' user ids)."""


@attrs.frozen
class ChatLine:
    """One message of a chat: who wrote it (`customer` or an agent's user id), what, and when."""

    author: str = attrs.field(validator=not_blank)
    text: str = attrs.field(validator=not_blank)
    at: datetime | None = attrs.field(default=None, validator=aware)


def _lines(value: Iterable[ChatLine]) -> tuple[ChatLine, ...]:
    lines = tuple(value)
    if not any(line.author == CUSTOMER for line in lines):
        msg = "a chat transcript needs at least one line by the customer"
        raise InvalidPayload(msg, field="lines")
    return lines


@attrs.frozen
class Transcript:
    """A whole chat conversation: its id, the customer, and the lines in order."""

    conversation_id: str = attrs.field(validator=not_blank)
    customer: Sender
    lines: tuple[ChatLine, ...] = attrs.field(converter=_lines)
    subject: str = ""
