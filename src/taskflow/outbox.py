"""The notification outbox: what a repository keeps until the notifier has delivered it.

The service records the notifications of a write in the same transaction as the write (see
`taskflow.ports.OutboxRepository`), then delivers the pending ones in order and marks each
delivered. A notifier that fails leaves its notification pending; the task stays saved.
"""

from __future__ import annotations

import attrs

from taskflow.domain.notifications import Notification
from taskflow.domain.values import TaskId

__all__ = ["DeliveryReport", "OutboxEntry"]


@attrs.frozen
class OutboxEntry:
    """One pending notification: its place in the outbox and the task version that caused it."""

    id: int
    task_id: TaskId
    task_version: int
    notification: Notification


@attrs.frozen
class DeliveryReport:
    """What one delivery round did: how many were delivered, and the one that failed, if any.

    Delivery stops at the first failure, so the notifications after it keep their order and
    are tried again, with it, in the next round. `error` is what the notifier raised (or,
    for the round the service runs after a write, what the outbox itself raised).
    """

    delivered: int = 0
    failed: OutboxEntry | None = None
    error: Exception | None = attrs.field(default=None, eq=False)

    @property
    def ok(self) -> bool:
        """Tell whether every pending notification the round read was delivered."""
        return self.failed is None and self.error is None
