"""CRM tasks for a host: account defaults (C5, CS5) and "save to tracker" (C16) through ports.

`CrmTasks(service, accounts=..., tracker=...)` opens CRM tasks. With an `AccountLookup` the
task regarding an account gets that account's support staff as its assignees when none are
given, starts on the day it is opened, and is due (CS5) at its start plus the account's SLA
hours in business time of the account's calendar. With a `Tracker`, a task opened with
`save_to_tracker` queues a tracker request in the same unit of work (the general outbox), so
a tracker that is down never loses the task: the request is retried with back-off and
becomes a dead letter after the service's retry policy gives up; when the tracker answers,
the system actor `system:tracker@<recipient>` stores the link with `link_tracker`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, time, timedelta
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo

import attrs

from taskflow.application.service import TaskService
from taskflow.domain.engine import Outcome
from taskflow.domain.outbox import OutboxEntry, OutboxMessage
from taskflow.domain.task import NewTask
from taskflow.domain.values import Actor, CompanyId, TaskId, UserRef, not_blank
from taskflow.errors import ActionNotAllowed, InvalidPayload
from taskflow.kinds.crm_task import LINK_TRACKER, CrmTask, RegardingType, TrackerLinked
from taskflow.sla.calendar import ALWAYS, BusinessCalendar

__all__ = [
    "TRACKER_TOPIC",
    "Account",
    "AccountLookup",
    "CrmTasks",
    "InMemoryAccounts",
    "Tracker",
    "TrackerRequest",
]

TRACKER_TOPIC = "crm.tracker"
"""The outbox topic of "save to tracker" requests."""


def _staff(value: Iterable[UserRef]) -> tuple[UserRef, ...]:
    return tuple(dict.fromkeys(value))


def _hours(instance: Account, attribute: attrs.Attribute[timedelta | None], value: object) -> None:
    if value is not None and (not isinstance(value, timedelta) or value <= timedelta(0)):
        msg = f"Account.sla_hours must be a positive timedelta or None, got {value!r:.80}"
        raise InvalidPayload(msg, field="sla_hours")


@attrs.frozen
class Account:
    """What the host knows of an account: its support staff, SLA hours and business calendar."""

    id: str = attrs.field(validator=not_blank)
    support_staff: tuple[UserRef, ...] = attrs.field(default=(), converter=_staff)
    sla_hours: timedelta | None = attrs.field(default=None, validator=_hours)
    calendar: BusinessCalendar = ALWAYS


@runtime_checkable
class AccountLookup(Protocol):
    """The host's accounts, looked up by id (the CRM's account/lead records)."""

    def account(self, account_id: str) -> Account | None:
        """Return the account called `account_id`, or None when the host has none."""
        ...


class InMemoryAccounts:
    """Accounts held in a dict: for tests, examples and small hosts."""

    def __init__(self, accounts: Iterable[Account] = ()) -> None:
        self._accounts = {a.id: a for a in accounts}

    def account(self, account_id: str) -> Account | None:
        """Return the account called `account_id`, or None."""
        return self._accounts.get(account_id)


@attrs.frozen
class TrackerRequest:
    """What the tracker is asked to open: the task's id, number, subject and body."""

    task_id: TaskId
    number: str
    subject: str
    body: str
    company: CompanyId

    def payload(self) -> dict[str, str]:
        """Return the request as the JSON-ready outbox payload."""
        return {
            "task_id": self.task_id,
            "number": self.number,
            "subject": self.subject,
            "body": self.body,
            "company": self.company,
        }

    @classmethod
    def of(cls, payload: Mapping[str, object]) -> TrackerRequest:
        """Return the request an outbox payload holds."""
        fields = ("task_id", "number", "subject", "body", "company")
        values = {f: payload[f] for f in fields}
        bad = [f for f, v in values.items() if not isinstance(v, str)]
        if bad:
            msg = f"tracker request payload: {bad} must be text"
            raise InvalidPayload(msg, field=bad[0])
        return cls(**values)  # type: ignore[arg-type]


@runtime_checkable
class Tracker(Protocol):
    """The host's tracker (an issue tracker, a project tool): opens a linked item for a task."""

    def open_item(self, request: TrackerRequest) -> str:
        """Open an item for the task and return its link; raise when the tracker is down."""
        ...


class CrmTasks:
    """Opens CRM tasks with the account's defaults and "save to tracker" through the outbox."""

    def __init__(
        self,
        service: TaskService,
        *,
        accounts: AccountLookup | None = None,
        tracker: Tracker | None = None,
        kind: str = "crm_task",
        actor_name: str = "tracker",
    ) -> None:
        if kind not in service.registry:
            msg = (
                f"CrmTasks: kind '{kind}' is not registered; kinds: {list(service.registry.names)}"
            )
            raise InvalidPayload(msg, field="kind")
        self.service = service
        self.accounts = accounts
        self.tracker = tracker
        self.kind = kind
        self.actor_name = actor_name
        if tracker is not None:
            service.add_sender(TRACKER_TOPIC, self._send)

    def defaults(self, draft: NewTask, at: datetime) -> NewTask:
        """Return `draft` with the account's defaults: assignees, start (today) and CS5 due date."""
        data = draft.data
        if not isinstance(data, CrmTask):
            msg = f"a CRM task's data must be CrmTask, got {type(data).__name__}"
            raise InvalidPayload(msg, field="data")
        account = None
        if self.accounts is not None and data.regarding.type is RegardingType.ACCOUNT:
            account = self.accounts.account(data.regarding.id)
        calendar = account.calendar if account is not None else ALWAYS
        zone = ZoneInfo(calendar.zone)
        local = at.astimezone(zone)
        changes: dict[str, object] = {}
        if data.start is None:
            changes["data"] = attrs.evolve(data, start=local.date())
        start = data.start if data.start is not None else local.date()
        if account is not None:
            if not draft.assignees:
                changes["assignees"] = tuple(
                    u for u in account.support_staff if u.company == draft.recipient
                )
            if draft.due_at is None and account.sla_hours is not None:
                begin = (
                    at if start <= local.date() else datetime.combine(start, time(), tzinfo=zone)
                )
                changes["due_at"] = calendar.add_business_time(begin, account.sla_hours)
        return attrs.evolve(draft, **changes) if changes else draft  # type: ignore[arg-type]

    def open(self, actor: Actor, draft: NewTask) -> Outcome:
        """Open a CRM task with the account's defaults; queue its tracker item when asked for."""
        draft = self.defaults(draft, self.service.clock.now())
        with self.service.unit_of_work() as uow:
            outcome = uow.open(actor, self.kind, draft)
            if draft.data.save_to_tracker:
                if self.tracker is None:
                    msg = "save_to_tracker needs a tracker: pass CrmTasks(..., tracker=...)"
                    raise InvalidPayload(msg, field="data.save_to_tracker")
                task = outcome.task
                request = TrackerRequest(
                    task.id, task.number, task.subject, task.body, task.recipient
                )
                uow.enqueue(
                    OutboxMessage(
                        TRACKER_TOPIC, f"tracker:{task.id}", request.payload(), task_id=task.id
                    )
                )
        return outcome

    def _send(self, entry: OutboxEntry) -> None:
        request = TrackerRequest.of(entry.message.payload)
        task = self.service.repository.get(request.task_id)
        if task.data.tracker_link is not None:
            return  # delivered twice: the link is stored already
        link = self.tracker.open_item(request) if self.tracker is not None else None
        if link is None:
            return
        actor = Actor.system(self.actor_name, request.company)
        try:
            self.service.act_with_retry(actor, request.task_id, LINK_TRACKER, TrackerLinked(link))
        except ActionNotAllowed:
            if self.service.repository.get(request.task_id).data.tracker_link is None:
                raise

    def pending_requests(self) -> Sequence[OutboxEntry]:
        """Return the tracker requests not delivered yet (waiting or being retried)."""
        return [e for e in self.service.repository.pending() if e.topic == TRACKER_TOPIC]
