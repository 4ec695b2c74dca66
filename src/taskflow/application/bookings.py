"""The bookings application service (BK3, BR1, BR2): booking tasks, matching, broadcast, ratings.

    bookings = Bookings(service, directory=providers, lookup=host_bookings)  # once, at start-up

`Bookings` is built on the generic `TaskService`. For booking tasks it resolves a new-booking
task when the host reports the booking made (a call, `booking_made`, or a message the host
publishes on its outbox topic `BOOKING_MADE_TOPIC`), and checks the host's booking lookup
before an update, cancel or refund task is resolved. For booking requests it matches
providers, confirms a 100 % match or an alternative, broadcasts to several providers (the
first to accept wins, in one unit of work), returns expired broadcasts to the operator, and
answers the customer's views: bookings, upcoming calendar, series, history, ratings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs

from taskflow.application.service import TaskService, retry_on_conflict
from taskflow.booking_ports import BookingLookup, BookingRecord, BookingStatus, ProviderDirectory
from taskflow.domain.engine import Outcome
from taskflow.domain.outbox import OutboxEntry, OutboxMessage
from taskflow.domain.query import Between, TaskQuery
from taskflow.domain.task import NewTask, Task
from taskflow.domain.validators import check_actor, check_instance
from taskflow.domain.values import Actor, CompanyId, Link, TaskId
from taskflow.errors import (
    AlreadyTaken,
    BookingUnchanged,
    DeserializationError,
    InvalidPayload,
    MarkTaken,
    OfferExpired,
    TaskNotFound,
)
from taskflow.kinds.booking import (
    BOOKING_MADE,
    BOOKING_TASK,
    MARK_RESOLVED,
    TIED_ACTIONS,
    BookingAction,
    BookingMade,
    MarkResolved,
)
from taskflow.kinds.booking_request import (
    ACCEPT,
    ACCEPT_OFFER,
    BOOKING_OFFER,
    BOOKING_REQUEST,
    BROADCAST,
    CONFIRM,
    RATE,
    RETURN_TO_OPERATOR,
    WITHDRAW,
    AcceptOffer,
    BookingOffer,
    BookingOutcome,
    BookingRequest,
    Broadcast,
    Candidate,
    Confirm,
    OfferAccepted,
    Rate,
    TimeWindow,
    rank_providers,
    score_provider,
)
from taskflow.kinds.recurrence import Recurrence, occurrences

__all__ = [
    "BOOKING_MADE_TOPIC",
    "OCCURRENCE_MARK",
    "OFFER_OF",
    "ROBOT",
    "AcceptedOffer",
    "Bookings",
    "Broadcasted",
    "ProviderRating",
]

ROBOT = "bookings"
"""The name of the system actor that takes the bookings' own actions (auto-resolve, withdraw)."""

BOOKING_MADE_TOPIC = "bookings.booking_made"
"""The outbox topic a host publishes `{"task_id": ..., "booking_ref": ...}` on when it made a booking."""

OFFER_OF = "offer-of"
"""The link relation from an offer task to its booking request."""

OCCURRENCE_MARK = "booking-occurrence:"
"""The prefix of the once-only mark each generated occurrence's commit stores (+ its occurrence key)."""

_OPEN_REQUEST_STATES = frozenset({"requested", "broadcast", "confirmed"})
_ATTEMPTS = 5


@attrs.frozen
class Broadcasted:
    """What `broadcast` made: the request, now waiting on providers, and one offer per provider."""

    request: Task
    offers: tuple[Task, ...]


@attrs.frozen
class AcceptedOffer:
    """What a winning `accept_offer` committed: the confirmed request, the offer, the withdrawn ones."""

    request: Task
    offer: Task
    withdrawn: tuple[TaskId, ...]


@attrs.frozen
class ProviderRating:
    """A provider's average rating over its rated bookings (None when it has none yet)."""

    provider_id: str
    average: float | None
    count: int


def _robot(company: CompanyId) -> Actor:
    return Actor.system(ROBOT, company)


def _kind(task: Task, kind: str) -> None:
    if task.kind != kind:
        msg = f"task {task.number} is a '{task.kind}' task, not a '{kind}'"
        raise InvalidPayload(msg, field="task_id")


# What each tied action needs of the booking before its task may be resolved (BK3).
def _unchanged(task: Task, record: BookingRecord | None) -> tuple[str, str] | None:
    action = task.data.action
    if record is None:
        needed = {
            BookingAction.UPDATE_BOOKING: "changed",
            BookingAction.CANCEL_BOOKING: "cancelled",
            BookingAction.REFUND: "refunded",
        }[action]
        return needed, "unknown to the lookup"
    if action is BookingAction.CANCEL_BOOKING and record.status is not BookingStatus.CANCELLED:
        return "cancelled", f"'{record.status}'"
    if action is BookingAction.REFUND and not record.refunded:
        return "refunded", "not refunded"
    if action is BookingAction.UPDATE_BOOKING and (
        record.changed_at is None or record.changed_at < task.created_at
    ):
        since = f"unchanged since the task was opened ({task.created_at.isoformat()})"
        return "changed after the task was opened", since
    return None


class Bookings:
    """The booking calls (BK3, BR1, BR2), built on a `TaskService`; making one registers its sender."""

    def __init__(
        self,
        service: TaskService,
        *,
        directory: ProviderDirectory | None = None,
        lookup: BookingLookup | None = None,
    ) -> None:
        self.service = service
        self.directory = directory
        self.lookup = lookup
        service.add_sender(BOOKING_MADE_TOPIC, self._on_booking_made)

    # --- booking tasks (seed 000) ----------------------------------------------------------

    def booking_made(self, task_id: TaskId, booking_ref: str) -> Task:
        """Resolve a new-booking task because the host made its booking, and link it; idempotent.

        Taken by the system actor `bookings` of the task's company; calling it again for the
        same booking returns the resolved task and changes nothing.
        """
        made = BookingMade(booking_ref)
        stored = self.service.repository.get(task_id)
        _kind(stored, BOOKING_TASK.name)
        robot = _robot(stored.requester.company)
        if stored.state == "resolved" and stored.data.booking_ref == made.booking_ref:
            return stored
        return self.service.act_with_retry(robot, task_id, BOOKING_MADE, made).task

    @staticmethod
    def booking_made_message(task_id: TaskId, booking_ref: str) -> OutboxMessage:
        """Return the outbox message a host enqueues (with its own commit) when it made a booking."""
        payload = {"task_id": str(task_id), "booking_ref": booking_ref}
        return OutboxMessage(BOOKING_MADE_TOPIC, f"{task_id}/{booking_ref}", payload)

    def _on_booking_made(self, entry: OutboxEntry) -> None:
        payload: Mapping[str, Any] = entry.message.payload
        found = {name: payload.get(name) for name in ("task_id", "booking_ref")}
        bad = [name for name, value in found.items() if not isinstance(value, str) or not value]
        if bad:
            # Bad input never gets better: the delivery moves it to the dead letters at once.
            msg = (
                f"a '{BOOKING_MADE_TOPIC}' message needs task_id and booking_ref as non-empty "
                f"strings; {', '.join(bad)} {'is' if len(bad) == 1 else 'are'} missing or not one"
            )
            raise DeserializationError(msg, path=bad[0])
        self.booking_made(TaskId(str(found["task_id"])), str(found["booking_ref"]))

    def resolve_task(
        self,
        actor: Actor,
        task_id: TaskId,
        *,
        answer: str | None = None,
        booking_ref: str | None = None,
    ) -> Outcome:
        """Mark a booking task resolved; an update, cancel or refund is checked with the lookup first.

        Raises `BookingUnchanged` when the host's lookup says the booking was not changed,
        cancelled or refunded as the task's action needs (no lookup: not checked); an actor
        who may not resolve the task at all gets the service's own refusal first.
        """
        task = self.service.get(actor, task_id)
        _kind(task, BOOKING_TASK.name)
        payload = MarkResolved(answer=answer, booking_ref=booking_ref)
        ref = task.data.booking_ref
        if self.lookup is not None and task.is_open and ref and task.data.action in TIED_ACTIONS:
            allowed = self.service.allowed_actions(actor, task_id)
            problem = _unchanged(task, self.lookup.booking(ref))
            if problem is not None and MARK_RESOLVED in allowed:
                needed, found = problem
                refused = BookingUnchanged(task.number, task.state, ref, needed, found)
                raise refused.allowing(a for a in allowed if a != MARK_RESOLVED)
        return self.service.act(actor, task_id, MARK_RESOLVED, payload)

    def tasks_page(
        self,
        actor: Actor,
        *,
        action: BookingAction | str | None = None,
        due_until: datetime | None = None,
        resolved: bool | None = None,
        parked: bool | None = False,
        booking_ref: str | None = None,
        due_from: datetime | None = None,
    ) -> list[Task]:
        """List booking tasks, oldest first: by action, due date (from/until, both included), resolved or not, parked, booking."""
        where: dict[str, Any] = {}
        if action is not None:
            where["booking_action"] = str(BookingAction(action))
        if due_from is not None or due_until is not None:
            where["resolve_by"] = Between(due_from, due_until)
        if parked is not None:
            where["parked"] = parked
        if booking_ref is not None:
            where["booking_ref"] = booking_ref
        is_open = None if resolved is None else not resolved
        query = TaskQuery(kind=BOOKING_TASK.name, open=is_open, where=where)
        return self.service.find(actor, query)

    def booking_tasks(self, actor: Actor, booking_ref: str) -> list[Task]:
        """Return every task of one booking (its detail page), oldest first: open, parked or resolved."""
        check_instance("booking_tasks", "booking_ref", booking_ref, str)
        query = TaskQuery(kind=BOOKING_TASK.name, where={"booking_ref": booking_ref})
        return self.service.find(actor, query)

    # --- booking requests: matching and confirmation (seed 002) -------------------------------

    def request_booking(self, actor: Actor, draft: NewTask) -> Task:
        """Open a booking request (see `booking_request_draft`) for the customer's company."""
        return self.service.open(actor, BOOKING_REQUEST.name, draft).task

    def _directory(self) -> ProviderDirectory:
        if self.directory is None:
            msg = "Bookings needs a provider directory (directory=...) to match providers"
            raise InvalidPayload(msg, field="directory")
        return self.directory

    def _request(self, actor: Actor, request_id: TaskId) -> Task:
        task = self.service.get(actor, request_id)
        _kind(task, BOOKING_REQUEST.name)
        return task

    def find_providers(
        self,
        actor: Actor,
        request_id: TaskId,
        *,
        limit: int | None = 5,
        use_rating: bool = False,
    ) -> tuple[Candidate, ...]:
        """Return the ranked candidates for a request, best first, each with its score and reasons."""
        data: BookingRequest = self._request(actor, request_id).data
        providers = self._directory().providers(data.services)
        return rank_providers(
            providers, data.services, data.place, data.window, use_rating=use_rating, limit=limit
        )

    def confirm(self, actor: Actor, request_id: TaskId, provider_id: str) -> Outcome:
        """Confirm a provider for a request: outcome 'match' at 100 %, else 'alternative'; the customer hears of it."""
        data: BookingRequest = self._request(actor, request_id).data
        provider = self._directory().provider(provider_id)
        if provider is None:
            msg = f"confirm: the provider directory knows no provider '{provider_id}'"
            raise InvalidPayload(msg, field="provider_id", action=CONFIRM)
        candidate = score_provider(provider, data.services, data.place, data.window)
        outcome = BookingOutcome.MATCH if candidate.exact else BookingOutcome.ALTERNATIVE
        payload = Confirm(provider.id, provider.company, candidate.score, str(outcome))
        return self.service.act(actor, request_id, CONFIRM, payload)

    # --- broadcast: first accept wins --------------------------------------------------------

    def broadcast(
        self,
        actor: Actor,
        request_id: TaskId,
        provider_ids: Sequence[str],
        *,
        expires_at: datetime,
    ) -> Broadcasted:
        """Send one offer per provider (its company the recipient) and wait for the first accept; one commit."""
        request = self._request(actor, request_id)
        data: BookingRequest = request.data
        directory = self._directory()
        providers = []
        for provider_id in dict.fromkeys(provider_ids):
            provider = directory.provider(provider_id)
            if provider is None:
                msg = f"broadcast: the provider directory knows no provider '{provider_id}'"
                raise InvalidPayload(msg, field="provider_ids", action=BROADCAST)
            providers.append(provider)
        if not providers:
            msg = f"'{BROADCAST}' on request {request.number} names no provider"
            raise InvalidPayload(msg, field="provider_ids", action=BROADCAST)
        with self.service.unit_of_work() as uow:
            offers = []
            for provider in providers:
                score = score_provider(provider, data.services, data.place, data.window).score
                offer = BookingOffer(
                    request_id=request.id,
                    provider_id=provider.id,
                    services=data.services,
                    place=data.place,
                    window=data.window,
                    expires_at=expires_at,
                    score=score,
                )
                draft = NewTask(
                    subject=f"Offer: {request.subject}",
                    recipient=provider.company,
                    data=offer,
                    body=request.body,
                    category="Appointment",
                    assignees=provider.contacts,
                    links=(Link(OFFER_OF, request.id),),
                    due_at=expires_at,
                )
                offers.append(uow.open(actor, BOOKING_OFFER.name, draft).task)
            payload = Broadcast(tuple(o.id for o in offers), expires_at)
            sent = uow.act(actor, request.id, BROADCAST, payload).task
        return Broadcasted(sent, tuple(offers))

    def accept_offer(self, actor: Actor, offer_id: TaskId) -> AcceptedOffer:
        """Accept an offer: the first accept confirms the request and withdraws every other offer, in one commit.

        A later accept raises `AlreadyTaken`; an accept after the offer's time `OfferExpired`.
        Two providers accepting at once through two services: the repository's compare-and-set
        lets one commit win; the other is retried on fresh reads and then refused.
        """

        def attempt() -> AcceptedOffer:
            with self.service.unit_of_work() as uow:
                offer = uow.get(actor, offer_id)
                _kind(offer, BOOKING_OFFER.name)
                data: BookingOffer = offer.data
                robot = _robot(offer.requester.company)
                request = uow.get(robot, data.request_id)
                self._refuse_late(offer, request)
                accepted = uow.act(actor, offer_id, ACCEPT, AcceptOffer()).task
                won = OfferAccepted(offer.id, data.provider_id, offer.recipient, data.score)
                confirmed = uow.act(robot, request.id, ACCEPT_OFFER, won).task
                withdrawn = []
                for other in request.data.offer_ids:
                    if other != offer_id and uow.get(robot, other).state == "offered":
                        uow.act(robot, other, WITHDRAW)
                        withdrawn.append(other)
            return AcceptedOffer(confirmed, accepted, tuple(withdrawn))

        return retry_on_conflict(attempt, attempts=_ATTEMPTS)

    def _refuse_late(self, offer: Task, request: Task) -> None:
        data: BookingOffer = offer.data
        if request.state == "broadcast" and offer.state == "offered":
            return  # in time or not: the offer workflow's time guard decides (`accept`)
        if request.state == "confirmed" or offer.state == "withdrawn":
            winner = request.data.provider_id or ""
            if request.data.provider_id == data.provider_id and offer.state == "accepted":
                winner = f"this provider ({winner})"
            raise AlreadyTaken(offer.number, offer.state, request.number, winner=winner)
        if offer.state == "expired" or request.state == "requested":
            raise OfferExpired(offer.number, offer.state, data.expires_at.isoformat())
        # Declined, cancelled, done: the engine's own refusal names the state.

    def decline_offer(self, actor: Actor, offer_id: TaskId) -> Outcome:
        """Decline an offer: the provider does not take the appointment."""
        return self.service.act(actor, offer_id, "decline")

    def expire_broadcasts(self, at: datetime) -> tuple[Task, ...]:
        """Return to the operator every broadcast whose offers expired by `at`; their open offers expire.

        The host's scheduler calls it (a due-time query, as SLA triggers are); idempotent.
        """
        query = TaskQuery(
            kind=BOOKING_REQUEST.name,
            states={"broadcast"},
            where={"broadcast_expires": Between(None, at)},
        )
        returned: list[Task] = []
        for request in self.service.repository.query(query):
            robot = _robot(request.requester.company)

            def expire(request: Task = request, robot: Actor = robot) -> Task | None:
                with self.service.unit_of_work() as uow:
                    current = uow.get(robot, request.id)
                    if current.state != "broadcast":
                        return None
                    for offer_id in current.data.offer_ids:
                        if uow.get(robot, offer_id).state == "offered":
                            uow.act(robot, offer_id, "expire")
                    back = uow.act(robot, request.id, RETURN_TO_OPERATOR).task
                return back

            back = retry_on_conflict(expire, attempts=_ATTEMPTS)
            if back is not None:
                returned.append(back)
        return tuple(returned)

    def offers_of(self, actor: Actor, request_id: TaskId) -> list[Task]:
        """Return a request's offers, in the order sent, as the actor may see them."""
        request = self._request(actor, request_id)
        found = []
        for offer_id in request.data.offer_ids:
            try:
                found.append(self.service.get(actor, offer_id))
            except TaskNotFound:
                continue
        return found

    # --- after the booking: done, ratings --------------------------------------------------

    def complete(self, actor: Actor, request_id: TaskId) -> Outcome:
        """Record that the booked service was done; the customer may rate it from then on."""
        return self.service.act(actor, request_id, "complete")

    def rate(self, actor: Actor, request_id: TaskId, stars: int, comment: str = "") -> Outcome:
        """Rate a done booking 1 to 5 with a comment, once (the customer's side)."""
        self._request(actor, request_id)
        return self.service.act(actor, request_id, RATE, Rate(stars, comment))

    def provider_rating(self, actor: Actor, provider_id: str) -> ProviderRating:
        """Return a provider's average rating over the rated bookings the actor may see."""
        query = TaskQuery(
            kind=BOOKING_REQUEST.name, where={"provider_id": provider_id, "rated": True}
        )
        stars = [t.data.rating for t in self.service.find(actor, query)]
        average = round(sum(stars) / len(stars), 2) if stars else None
        return ProviderRating(provider_id, average, len(stars))

    # --- the customer's views (BR1) ----------------------------------------------------------

    def customer_bookings(
        self, actor: Actor, customer_id: str, *, recurring: bool | None = None
    ) -> list[Task]:
        """Return a customer's booking requests, oldest first; `recurring` keeps series or single ones."""
        where: dict[str, Any] = {"customer_id": customer_id}
        if recurring is not None:
            where["recurring"] = recurring
        return self.service.find(actor, TaskQuery(kind=BOOKING_REQUEST.name, where=where))

    def upcoming(
        self, actor: Actor, customer_id: str, start: datetime, end: datetime
    ) -> list[Task]:
        """Return the customer's open bookings starting from `start` to `end`, by start time (the calendar)."""
        query = TaskQuery(
            kind=BOOKING_REQUEST.name,
            states=_OPEN_REQUEST_STATES,
            where={"customer_id": customer_id, "starts_at": Between(start, end)},
        )
        return sorted(self.service.find(actor, query), key=lambda t: t.data.window.start)

    def series_bookings(self, actor: Actor, series_id: TaskId) -> list[Task]:
        """Return the booking requests of one recurring series, by start time."""
        query = TaskQuery(kind=BOOKING_REQUEST.name, where={"series_id": series_id})
        return sorted(self.service.find(actor, query), key=lambda t: t.data.window.start)

    def history(self, actor: Actor, customer_id: str) -> list[Task]:
        """Return the customer's done bookings, latest first, each with its rating if given."""
        query = TaskQuery(
            kind=BOOKING_REQUEST.name, states={"done"}, where={"customer_id": customer_id}
        )
        return sorted(
            self.service.find(actor, query), key=lambda t: t.data.window.start, reverse=True
        )

    # --- recurring bookings (BR1) ------------------------------------------------------------

    def generate_series(
        self,
        actor: Actor,
        template: NewTask,
        rule: Recurrence | None = None,
        *,
        series_id: str,
        now: datetime,
        horizon: timedelta,
    ) -> tuple[Task, ...]:
        """Open one booking request per occurrence of `rule` from `now` to `now + horizon`; idempotent.

        `template` is a booking request draft whose window gives each occurrence's length; `rule`
        defaults to the template's own `recurrence`. Each request carries `series_id`, its
        occurrence and the rule (`data.recurrence`). An occurrence that has a request already
        is skipped, so running it again creates nothing new. Each request is committed with the
        once-only mark `OCCURRENCE_MARK + <occurrence key>`, so when two generators run at once
        the storage refuses the second commit of an occurrence (`MarkTaken`) and that
        generator skips it: never two requests for one occurrence. Needs `taskflow[bookings]`.
        """
        check_actor("generate_series", actor)
        check_instance("generate_series", "template", template, NewTask)
        data = template.data
        if not isinstance(data, BookingRequest):
            msg = f"generate_series needs a BookingRequest draft, got {type(data).__name__}"
            raise InvalidPayload(msg, field="template")
        rule = data.recurrence if rule is None else rule
        if rule is None:
            msg = "generate_series needs a rule: pass rule=Recurrence(...) or give the template one"
            raise InvalidPayload(msg, field="rule")
        check_instance("generate_series", "rule", rule, Recurrence)
        length = data.window.end - data.window.start
        starts = occurrences(rule, now, now + horizon)
        made: list[Task] = []
        for start in starts:
            key = f"{series_id}@{start.isoformat()}"
            query = TaskQuery(kind=BOOKING_REQUEST.name, where={"occurrence_key": key}, limit=1)
            if self.service.repository.query(query):
                continue
            occurrence = attrs.evolve(
                data,
                window=TimeWindow(start, start + length),
                series_id=TaskId(series_id),
                occurrence=start,
                recurrence=rule,
            )
            draft = attrs.evolve(
                template,
                data=occurrence,
                subject=f"{template.subject} ({start:%Y-%m-%d})",
                due_at=start,
            )
            try:
                with self.service.unit_of_work() as uow:
                    opened = uow.open(actor, BOOKING_REQUEST.name, draft)
                    uow.mark(OCCURRENCE_MARK + key)
            except MarkTaken:
                continue  # another generator committed this occurrence first
            made.append(opened.task)
        return tuple(made)
