"""Digest delivery: the digest items whose period ended, one message per user and period."""

from __future__ import annotations

from datetime import datetime

from taskflow.application.service import TaskService
from taskflow.application.unit_of_work import notification_of
from taskflow.domain.matrix import build_digests
from taskflow.domain.outbox import DIGEST_TOPIC

__all__ = ["deliver_digests"]


def deliver_digests(service: TaskService, now: datetime | None = None, *, limit: int = 1000) -> int:
    """Send the digests due at `now` (default: the clock's now) through the notifier; return how many.

    The items wait in the outbox under the `digest` topic with their period's end as not-before
    time; this claims the ready ones, builds the digests (`build_digests`) and completes them.
    """
    when = service.clock.now() if now is None else now
    entries = service.repository.claim(
        service.worker, when, lease=service.lease, limit=limit, topics=(DIGEST_TOPIC,)
    )
    items = [notification_of(entry.message.payload) for entry in entries]
    digests = build_digests(items, when)
    for digest in digests:
        service.notifier.notify(digest)
    service.repository.complete(entries)
    return len(digests)
