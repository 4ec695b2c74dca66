"""The ports bookings ask the host through: its bookings and its provider directory.

taskflow does not own bookings, customers or providers (seeds 000, 002): the host does, and
answers these questions about them. In-memory adapters for tests and examples are in
`taskflow.adapters.bookings`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import attrs

from taskflow.domain.values import aware, not_blank
from taskflow.kinds.booking_request import Provider

__all__ = ["BookingLookup", "BookingRecord", "BookingStatus", "ProviderDirectory"]


class BookingStatus(enum.StrEnum):
    """Where a booking stands in the host's system."""

    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


@attrs.frozen
class BookingRecord:
    """What the host's booking lookup says about one booking."""

    ref: str = attrs.field(validator=not_blank)
    status: BookingStatus = attrs.field(default=BookingStatus.CONFIRMED, converter=BookingStatus)
    # When the booking was last changed (None: never since it was made).
    changed_at: datetime | None = attrs.field(default=None, validator=aware)
    refunded: bool = False


class BookingLookup(Protocol):
    """The host's bookings, asked when an update, cancel or refund task is resolved."""

    def booking(self, ref: str) -> BookingRecord | None:
        """Return the booking called `ref`, or None if the host knows no such booking."""
        ...


class ProviderDirectory(Protocol):
    """The host's providers: their services, service areas, availability and ratings."""

    def providers(self, services: Sequence[str]) -> Sequence[Provider]:
        """Return the providers that offer at least one of `services`."""
        ...

    def provider(self, provider_id: str) -> Provider | None:
        """Return the provider with this id, or None."""
        ...
