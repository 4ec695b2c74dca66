"""The notification matrix: per kind and event, who is told; per-user opt-out and digests (pure).

    policy = NotificationMatrix([*SEED_DEFAULTS, MatrixEntry("crm_task", "*", {"assignees"})],
                                preferences=preferences)
    TaskService(..., policy=policy)

A kind declares its own rows (`TaskKind.matrix`, e.g. seed 003's on `crm_task`) and may carry
its own policy (`TaskKind.policy`). For each event the first of these that says something
decides: the host's entries for the kind and event, then for the kind and `*`; the kind's rows
for the event, then for `*`; the kind's policy; the host's entries for `*` and the event, then
for `*` and `*`; then `fallback` (the default policy). Several entries at one level add up, so
a matrix changes only what it names, and a host entry naming a kind overrides what the kind
declares. Nobody hears of their own action, no stranger hears anything, an internal comment
reaches only the writer's company. A user who opted out of (kind, event) is skipped; a user
with a digest period gets the notification as a digest item, queued until the period ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

import attrs

from taskflow.domain.notifications import (
    Notification,
    NotificationPolicy,
    Recipient,
    TeamLookup,
    default_policy,
    recipients_of,
)
from taskflow.domain.task import DomainEvent, Task
from taskflow.domain.validators import excerpt
from taskflow.domain.values import UserRef
from taskflow.domain.workflow import Workflow
from taskflow.errors import InvalidPayload, InvalidWorkflow

__all__ = [
    "ANY",
    "SEED_DEFAULTS",
    "InMemoryPreferences",
    "MatrixEntry",
    "NotificationMatrix",
    "Preferences",
    "build_digests",
    "digest_window",
    "kind_rows",
]

ANY = "*"
"""Any kind, or any event, in a matrix entry."""

_EPOCH = datetime(
    2000, 1, 3, tzinfo=UTC
)  # a Monday at midnight UTC: weekly periods start on Mondays


def _recipients(value: Iterable[str]) -> frozenset[Recipient]:
    try:
        return frozenset(Recipient(v) for v in value)
    except ValueError:
        allowed = ", ".join(repr(r.value) for r in Recipient)
        msg = f"MatrixEntry.to must name recipients among {allowed}, got {excerpt(value)}"
        raise InvalidWorkflow(msg) from None


@attrs.frozen
class MatrixEntry:
    """Who is told of `event` on tasks of `kind` (`*` for any); `when` narrows it to some tasks."""

    kind: str = ANY
    event: str = ANY
    to: frozenset[Recipient] = attrs.field(default=frozenset(), converter=_recipients)
    when: Callable[[Task], bool] | None = attrs.field(default=None, eq=False)
    # False: an event done by a system actor (a rule, a scheduler) tells nobody through this entry.
    by_system: bool = attrs.field(default=True, kw_only=True)


@runtime_checkable
class Preferences(Protocol):
    """Each user's notification choices: what they opted out of, and their digest period."""

    def opted_out(self, user: UserRef, kind: str, event: str) -> bool:
        """Tell whether `user` does not want to hear of `event` on tasks of `kind`."""
        ...

    def digest_period(self, user: UserRef) -> timedelta | None:
        """Return how long `user`'s digests collect (None: told at once)."""
        ...


class InMemoryPreferences:
    """Opt-outs and digest periods kept in memory."""

    def __init__(self) -> None:
        self._out: set[tuple[UserRef, str, str]] = set()
        self._digest: dict[UserRef, timedelta] = {}

    def opt_out(self, user: UserRef, kind: str = ANY, event: str = ANY) -> None:
        """Stop telling `user` of `event` on `kind` tasks (`*`: all)."""
        self._out.add((user, kind, event))

    def opt_in(self, user: UserRef, kind: str = ANY, event: str = ANY) -> None:
        """Undo an opt-out."""
        self._out.discard((user, kind, event))

    def digest(self, user: UserRef, period: timedelta | None) -> None:
        """Collect `user`'s notifications into one digest per `period` (None: at once again)."""
        if period is None:
            self._digest.pop(user, None)
            return
        if not isinstance(period, timedelta) or period <= timedelta(0):
            msg = f"a digest period must be a positive timedelta, got {excerpt(period)}"
            raise InvalidPayload(msg, field="period")
        self._digest[user] = period

    def opted_out(self, user: UserRef, kind: str, event: str) -> bool:
        """Tell whether `user` opted out of `event` on `kind` (directly or through `*`)."""
        out = self._out
        return any((user, k, e) in out for k in (kind, ANY) for e in (event, ANY))

    def digest_period(self, user: UserRef) -> timedelta | None:
        """Return `user`'s digest period, if any."""
        return self._digest.get(user)


def digest_window(at: datetime, period: timedelta) -> tuple[datetime, datetime]:
    """Return the digest period `at` falls in: periods of `period` counted from a Monday 00:00 UTC."""
    if at.utcoffset() is None:
        msg = f"digest_window needs a timezone-aware time, got {excerpt(at)}"
        raise InvalidPayload(msg, field="at")
    steps = (at - _EPOCH) // period
    start = _EPOCH + steps * period
    return start, start + period


def build_digests(items: Iterable[Notification], now: datetime) -> list[Notification]:
    """Return one digest per user and period for the items whose period ended by `now` (pure).

    Items are grouped by recipient and period end, in the order given; each digest lists its
    items' messages, one per line, and names the first item's task.
    """
    groups: dict[tuple[UserRef, datetime], list[Notification]] = {}
    for item in items:
        until = item.digest_until
        if until is None or until > now:
            continue
        groups.setdefault((item.recipient, until), []).append(item)
    out: list[Notification] = []
    for (user, until), notes in groups.items():
        first = notes[0]
        lines = "\n".join(f"- {n.message}" for n in notes)
        text = f"{len(notes)} update(s) until {until.isoformat()}:\n{lines}"
        out.append(Notification(user, first.task_id, first.task_number, "digest", text))
    return out


def _entries(value: Iterable[MatrixEntry]) -> tuple[MatrixEntry, ...]:
    entries = tuple(value)
    wrong = [e for e in entries if not isinstance(e, MatrixEntry)]
    if wrong:
        msg = f"a NotificationMatrix holds MatrixEntry values, got {wrong[0]!r:.80}"
        raise InvalidWorkflow(msg)
    return entries


class NotificationMatrix:
    """A `NotificationPolicy` built from matrix entries, opt-outs and digests (see the module docs)."""

    def __init__(
        self,
        entries: Iterable[MatrixEntry],
        *,
        preferences: Preferences | None = None,
        team: TeamLookup | None = None,
        fallback: NotificationPolicy = default_policy,
    ) -> None:
        self.entries = _entries(entries)
        self.preferences = preferences
        self.team = team
        self.fallback = fallback
        self._by_key: dict[tuple[str, str], list[MatrixEntry]] = {}
        for entry in self.entries:
            self._by_key.setdefault((entry.kind, entry.event), []).append(entry)

    def entries_for(self, kind: str, event: str) -> list[MatrixEntry]:
        """Return the entries that decide `event` on `kind` (empty: the fallback decides)."""
        for key in ((kind, event), (kind, ANY), (ANY, event), (ANY, ANY)):
            found = self._by_key.get(key)
            if found:
                return found
        return []

    def __call__(
        self, workflow: Workflow, before: Task | None, after: Task, events: Sequence[DomainEvent]
    ) -> tuple[Notification, ...]:
        """Return who hears of `events` on `after`, as the matrix says."""
        return self.notify(workflow, before, after, events)

    def notify(
        self,
        workflow: Workflow,
        before: Task | None,
        after: Task,
        events: Sequence[DomainEvent],
        *,
        rows: Sequence[MatrixEntry] = (),
        kind_policy: NotificationPolicy | None = None,
    ) -> tuple[Notification, ...]:
        """Return who hears of `events`, with the kind's own `rows` and `kind_policy` (module docs)."""
        out: list[Notification] = []
        kind = after.kind
        for event in events:
            name = event.name
            entries = self._by_key.get((kind, name)) or self._by_key.get((kind, ANY))
            if not entries:
                entries = [r for r in rows if r.event == name] or [
                    r for r in rows if r.event == ANY
                ]
            notes: Iterable[Notification]
            if entries:
                notes = self._told(entries, after, event)
            elif kind_policy is not None:
                notes = kind_policy(workflow, before, after, (event,))
            else:
                entries = self._by_key.get((ANY, name)) or self._by_key.get((ANY, ANY))
                if entries:
                    notes = self._told(entries, after, event)
                else:
                    notes = self.fallback(workflow, before, after, (event,))
            out.extend(self._preferred(after, event, notes))
        return tuple(out)

    def _told(
        self, entries: list[MatrixEntry], task: Task, event: DomainEvent
    ) -> list[Notification]:
        own = event.actor.company
        private = getattr(event.payload, "visible_to_company", None)
        users: dict[UserRef, None] = {}
        system = event.actor.is_system
        for entry in entries:
            if (system and not entry.by_system) or (
                entry.when is not None and not entry.when(task)
            ):
                continue
            for recipient in sorted(entry.to):
                for user in recipients_of(task, recipient, own, self.team):
                    users[user] = None
        what = event.name.replace("_", " ")
        message = f"{task.number} '{task.subject}': {what} by {event.actor}"
        out: list[Notification] = []
        for user in users:
            if user == event.actor.ref or not task.is_party(user.company):
                continue
            if private is not None and not private(own, user.company):
                continue  # an internal note reaches only the writer's company
            out.append(Notification(user, task.id, task.number, event.name, message))
        return out

    def _preferred(
        self, task: Task, event: DomainEvent, notes: Iterable[Notification]
    ) -> Iterable[Notification]:
        return self.preferred(task.kind, event.at, notes)

    def preferred(
        self, kind: str, at: datetime, notes: Iterable[Notification]
    ) -> list[Notification]:
        """Return `notes` (of tasks of `kind`, at `at`) less opt-outs, digest users' as digest items."""
        prefs = self.preferences
        if prefs is None:
            return list(notes)
        out: list[Notification] = []
        for note in notes:
            if prefs.opted_out(note.recipient, kind, note.event):
                continue
            period = prefs.digest_period(note.recipient)
            if period is None:
                out.append(note)
            else:
                out.append(attrs.evolve(note, digest_until=digest_window(at, period)[1]))
        return out


SEED_DEFAULTS: tuple[MatrixEntry, ...] = (
    # Seed 000: creating or updating a booking task notifies nobody.
    MatrixEntry("booking_task", ANY, ()),
)
"""The seeds' rules as matrix entries: seed 000's silent booking tasks.

Seed 001 (the partner hears of responses, public comments and resolutions) needs no entry:
the supplier-portal and ticket workflows tell the other side of exactly those events, so the
fallback (the default policy) says it, and an internal reassignment still tells the new
assignee. Seed 003's are the `crm_task` kind's own rows (`TaskKind.matrix`).
"""


def kind_rows(kind: str, value: Iterable[MatrixEntry]) -> tuple[MatrixEntry, ...]:
    """Check the rows a kind declares: MatrixEntry values naming that kind or `*` (any event)."""
    entries = _entries(value)
    wrong = [e for e in entries if e.kind not in (kind, ANY)]
    if wrong:
        msg = (
            f"task kind '{kind}': its matrix rows must name kind '{kind}' or '*', "
            f"got {wrong[0].kind!r} in {wrong[0]!r:.80}"
        )
        raise InvalidWorkflow(msg)
    return entries
