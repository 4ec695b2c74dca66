"""Who learns of what: the pure notification policy the service hands to the notifier port."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

import attrs

from taskflow.domain.task import OPEN, DomainEvent, Task
from taskflow.domain.values import CompanyId, TaskId, UserRef
from taskflow.domain.workflow import Audience, Workflow

__all__ = [
    "Notification",
    "NotificationPolicy",
    "Recipient",
    "TeamLookup",
    "default_policy",
    "recipients_of",
]


@attrs.frozen
class Notification:
    """One message for one user about one event on one task.

    `id` is stable: the same on every delivery of one notification (delivery is at least once,
    so a host may be handed it twice, by two workers or after a retry) and unique among
    notifications, so a host drops a duplicate by it. The service sets it from the outbox
    message that carries the notification; a policy leaves it empty.
    """

    recipient: UserRef
    task_id: TaskId
    task_number: str
    event: str
    message: str
    id: str = attrs.field(default="", eq=False, kw_only=True)
    # Set for a digest: the end of the period it is collected in (delivered from then on).
    digest_until: datetime | None = attrs.field(default=None, kw_only=True)


NotificationPolicy = Callable[
    [Workflow, Task | None, Task, Sequence[DomainEvent]], Sequence[Notification]
]
"""Decide the notifications for events that took a task from `before` (None if new) to `after`."""


class Recipient(enum.StrEnum):
    """Who of a task is told of an event: the columns of a notification matrix."""

    REQUESTER = "requester"  # the user who opened the task
    ASSIGNEES = "assignees"  # everyone working on it, of both companies
    WATCHERS = "watchers"  # the notify list
    TEAM = "team"  # the team the host names for the task (a `TeamLookup`)
    PARTNER = "partner"  # the other company's people (its assignees and watchers)


TeamLookup = Callable[[Task], Iterable[UserRef]]
"""Return the users of the team a task belongs to (the host knows its teams)."""


def recipients_of(
    task: Task,
    recipient: Recipient,
    actor_company: CompanyId,
    team: TeamLookup | None = None,
) -> tuple[UserRef, ...]:
    """Return the users `recipient` names on `task` for an event by a user of `actor_company`.

    PARTNER is the other side's assignees and watchers (the requester user when the requester
    company assigned nobody); on a task inside one company it is nobody.
    """
    if recipient is Recipient.REQUESTER:
        return (task.requester,)
    if recipient is Recipient.ASSIGNEES:
        return task.assignees
    if recipient is Recipient.WATCHERS:
        return task.watchers
    if recipient is Recipient.TEAM:
        return () if team is None else tuple(team(task))
    sides = task.sides_of(actor_company)
    if len(sides) != 1:
        return ()
    (side,) = sides
    return tuple(_company_users(task, task.company_of(side.other)))


def _company_users(task: Task, company: CompanyId) -> list[UserRef]:
    assigned = [ref for ref in task.assignees if ref.company == company]
    users = assigned + [w for w in task.watchers if w.company == company]
    if not assigned and company == task.requester.company:
        # A requester company that assigned nobody still hears of answers through the requester.
        users.insert(0, task.requester)
    return users


def _audience(
    audience: Audience, before: Task | None, after: Task, event: DomainEvent
) -> Iterable[UserRef]:
    own = event.actor.company
    sides = after.sides_of(own)
    if audience is Audience.NOBODY:
        return ()
    if audience is Audience.NEW_ASSIGNEES:
        old = set() if before is None else set(before.assignees)
        return (r for r in after.assignees if r not in old)
    if audience is Audience.OWN_SIDE or (audience is Audience.OTHER_SIDE and len(sides) > 1):
        previous = () if before is None else before.assignees_of(own)
        return (*previous, *_company_users(after, own))
    if audience is Audience.OTHER_SIDE:
        (side,) = sides
        return _company_users(after, after.company_of(side.other))
    return (
        *_company_users(after, after.requester.company),
        *_company_users(after, after.recipient),
    )


def default_policy(
    workflow: Workflow, before: Task | None, after: Task, events: Sequence[DomainEvent]
) -> tuple[Notification, ...]:
    """Tell each event to the audience its transition names; never the actor, never a stranger.

    A payload that a company may not read (an internal comment) reaches only the writer's company.
    """
    out: list[Notification] = []
    for event in events:
        if event.action == OPEN:
            audience = Audience.OTHER_SIDE
        else:
            transition = workflow.transition(event.action)
            audience = Audience.NOBODY if transition is None else transition.notify
        private = getattr(event.payload, "visible_to_company", None)
        if private is not None and audience is not Audience.NOBODY:
            other = {after.requester.company, after.recipient} - {event.actor.company}
            if any(not private(event.actor.company, c) for c in other):
                audience = Audience.OWN_SIDE
        seen: set[UserRef] = set()
        what = event.name.replace("_", " ")
        message = f"{after.number} '{after.subject}': {what} by {event.actor}"
        me, parties = event.actor.ref, (after.requester.company, after.recipient)
        for user in _audience(audience, before, after, event):
            if user in seen or user == me or user.company not in parties:
                continue
            seen.add(user)
            out.append(Notification(user, after.id, after.number, event.name, message))
    return tuple(out)
