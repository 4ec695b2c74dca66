"""In-memory booking lookup and provider directory, for tests, examples and embedded use."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import datetime

import attrs

from taskflow.booking_ports import BookingRecord, BookingStatus
from taskflow.kinds.booking_request import Provider

__all__ = ["InMemoryBookings", "InMemoryProviders"]


class InMemoryBookings:
    """A booking lookup over a dict: the host's booking flow (or a test) records what it did."""

    def __init__(self, records: Iterable[BookingRecord] = ()) -> None:
        self._lock = threading.Lock()
        self._records = {r.ref: r for r in records}

    def booking(self, ref: str) -> BookingRecord | None:
        """Return the booking called `ref`, or None."""
        with self._lock:
            return self._records.get(ref)

    def add(self, ref: str) -> BookingRecord:
        """Record a new confirmed booking."""
        return self._put(BookingRecord(ref))

    def change(self, ref: str, at: datetime) -> BookingRecord:
        """Record that the booking was changed at `at`."""
        return self._put(attrs.evolve(self._get(ref), changed_at=at))

    def cancel(self, ref: str, at: datetime) -> BookingRecord:
        """Record that the booking was cancelled at `at`."""
        return self._put(
            attrs.evolve(self._get(ref), status=BookingStatus.CANCELLED, changed_at=at)
        )

    def refund(self, ref: str, at: datetime) -> BookingRecord:
        """Record that the booking was refunded at `at`."""
        return self._put(attrs.evolve(self._get(ref), refunded=True, changed_at=at))

    def _get(self, ref: str) -> BookingRecord:
        found = self.booking(ref)
        return found if found is not None else BookingRecord(ref)

    def _put(self, record: BookingRecord) -> BookingRecord:
        with self._lock:
            self._records[record.ref] = record
        return record


class InMemoryProviders:
    """A provider directory over a list of `Provider`s."""

    def __init__(self, providers: Iterable[Provider] = ()) -> None:
        self._providers = {p.id: p for p in providers}

    def providers(self, services: Sequence[str]) -> Sequence[Provider]:
        """Return the providers that offer at least one of `services`, in the order added."""
        wanted = set(services)
        return [p for p in self._providers.values() if wanted & set(p.services)]

    def provider(self, provider_id: str) -> Provider | None:
        """Return the provider with this id, or None."""
        return self._providers.get(provider_id)

    def add(self, provider: Provider) -> None:
        """Add or replace a provider."""
        self._providers[provider.id] = provider
