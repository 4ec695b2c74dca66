"""Booking requests and provider offers (BR1, BR2, seed 002): matching, alternatives, broadcast.

A `booking_request` is a customer's booking (services, place, time window) between the
operator's company (the requester) and the customer's company (the recipient). The operator
matches it against providers with the pure `rank_providers`: (A) a 100 % match is confirmed at
once; (B) the operator picks one of the closest alternatives and confirms it; (C) the request is
broadcast as one `booking_offer` per provider (the provider's company is the recipient of its
offer); the first provider to accept gets the booking (`taskflow.application.bookings`).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import attrs

from taskflow.domain.common import common_actions
from taskflow.domain.notifications import Notification, default_policy
from taskflow.domain.registry import TaskKind
from taskflow.domain.task import OPEN, DomainEvent, NewTask, Task
from taskflow.domain.validators import excerpt, tuple_of, typed_fields
from taskflow.domain.values import (
    Actor,
    CompanyId,
    Side,
    TaskId,
    UserRef,
    aware,
    not_blank,
    optional_text,
)
from taskflow.domain.workflow import BOTH_SIDES, Audience, State, Transition, Workflow
from taskflow.errors import InvalidPayload, OfferExpired
from taskflow.kinds.recurrence import Recurrence

__all__ = [
    "ACCEPT",
    "ACCEPT_OFFER",
    "BOOKING_OFFER",
    "BOOKING_OFFER_WORKFLOW",
    "BOOKING_REQUEST",
    "BOOKING_REQUEST_WORKFLOW",
    "BROADCAST",
    "CONFIRM",
    "RATE",
    "RETURN_TO_OPERATOR",
    "WITHDRAW",
    "AcceptOffer",
    "BookingOffer",
    "BookingOutcome",
    "BookingRequest",
    "Broadcast",
    "Candidate",
    "Confirm",
    "OfferAccepted",
    "Place",
    "Provider",
    "Rate",
    "TimeWindow",
    "booking_request_draft",
    "distance_km",
    "rank_providers",
    "request_policy",
    "score_provider",
]

CONFIRM = "confirm"
BROADCAST = "broadcast"
ACCEPT_OFFER = "accept_offer"
RETURN_TO_OPERATOR = "return_to_operator"
COMPLETE = "complete"
CANCEL = "cancel"
RATE = "rate"
ACCEPT = "accept"
DECLINE = "decline"
WITHDRAW = "withdraw"
EXPIRE = "expire"


def _number(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        msg = f"{type(instance).__name__}.{attribute.name} must be a finite number, got {excerpt(value)}"
        raise InvalidPayload(msg, field=attribute.name)


def _latitude(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    _number(instance, attribute, value)
    if not -90 <= value <= 90:
        msg = f"{type(instance).__name__}.{attribute.name} must be from -90 to 90, got {excerpt(value)}"
        raise InvalidPayload(msg, field=attribute.name)


def _longitude(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    _number(instance, attribute, value)
    if not -180 <= value <= 180:
        msg = f"{type(instance).__name__}.{attribute.name} must be from -180 to 180, got {excerpt(value)}"
        raise InvalidPayload(msg, field=attribute.name)


@attrs.frozen(field_transformer=typed_fields)
class Place:
    """Where a service is wanted or a provider is based: a name and its coordinates (degrees)."""

    name: str = attrs.field(validator=not_blank)
    lat: float = attrs.field(validator=_latitude)
    lon: float = attrs.field(validator=_longitude)


def _window_order(instance: TimeWindow, attribute: attrs.Attribute[Any], value: datetime) -> None:
    aware(instance, attribute, value)
    if value is None or not value > instance.start:
        msg = f"TimeWindow.end must be after TimeWindow.start ({excerpt(instance.start)}), got {excerpt(value)}"
        raise InvalidPayload(msg, field="end")


@attrs.frozen(order=True, field_transformer=typed_fields)
class TimeWindow:
    """A span of time, start included, end excluded; both timezone-aware."""

    start: datetime = attrs.field(validator=[aware, attrs.validators.instance_of(datetime)])
    end: datetime = attrs.field(validator=_window_order)

    def overlap(self, other: TimeWindow) -> float:
        """Return the seconds this window shares with `other`."""
        shared = min(self.end, other.end) - max(self.start, other.start)
        return max(shared.total_seconds(), 0.0)

    @property
    def seconds(self) -> float:
        """Return the window's length in seconds."""
        return (self.end - self.start).total_seconds()


def _services(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    # Each service is checked by `_some_services`, naming the bad one.
    return tuple_of(str, value, "services", unique=True)


def _some_services(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, tuple) or not value:
        msg = f"{type(instance).__name__}.{attribute.name} must name at least one service, got {excerpt(value)}"
        raise InvalidPayload(msg, field=attribute.name)
    for i, service in enumerate(value):
        if not isinstance(service, str) or not service.strip():
            msg = f"{type(instance).__name__}.{attribute.name}[{i}] must be a non-blank name, got {excerpt(service)}"
            raise InvalidPayload(msg, field=f"{attribute.name}[{i}]")


def _windows(value: Any) -> tuple[TimeWindow, ...]:
    return tuple_of(TimeWindow, value, "Provider.availability")


def _refs(value: Any) -> tuple[UserRef, ...]:
    return tuple_of(UserRef, value, "Provider.contacts")


def _optional_rating(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    _number(instance, attribute, value)
    if not 1 <= value <= 5:
        msg = f"Provider.rating must be from 1 to 5 or None, got {excerpt(value)}"
        raise InvalidPayload(msg, field=attribute.name)


def _radius(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    _number(instance, attribute, value)
    if value <= 0:
        msg = f"Provider.radius_km must be above 0, got {excerpt(value)}"
        raise InvalidPayload(msg, field=attribute.name)


@attrs.frozen(field_transformer=typed_fields)
class Provider:
    """A provider as the host's directory knows it: services, service area, availability, rating.

    The provider's company receives its offers; `contacts` (users of that company) are put on
    them and hear of offers and withdrawals.
    """

    id: str = attrs.field(validator=not_blank)
    company: CompanyId = attrs.field(validator=not_blank)
    name: str = attrs.field(validator=not_blank)
    services: tuple[str, ...] = attrs.field(converter=_services, validator=_some_services)
    base: Place
    radius_km: float = attrs.field(validator=_radius)
    availability: tuple[TimeWindow, ...] = attrs.field(default=(), converter=_windows)
    rating: float | None = attrs.field(default=None, validator=_optional_rating)
    contacts: tuple[UserRef, ...] = attrs.field(default=(), converter=_refs)


def distance_km(a: Place, b: Place) -> float:
    """Return the great-circle distance between two places in kilometres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


# The distance bands (up to km, share of the distance points); beyond the provider's own
# service radius a provider gets no distance points at all.
DISTANCE_BANDS: tuple[tuple[float, float], ...] = ((5.0, 1.0), (10.0, 0.75), (20.0, 0.5))
_FAR = 0.25
# Points out of 100: services covered, distance band, availability, and optionally rating.
WEIGHTS = {"coverage": 45, "distance": 25, "availability": 30}
RATED_WEIGHTS = {"coverage": 40, "distance": 20, "availability": 25, "rating": 15}


@attrs.frozen(field_transformer=typed_fields)
class Candidate:
    """One provider's match for a request: a 0-100 score and the reasons for it."""

    provider: Provider
    score: int
    reasons: tuple[str, ...]
    coverage: float
    distance_km: float
    availability: float

    @property
    def exact(self) -> bool:
        """Tell whether this is a 100 % match (BR2 outcome A)."""
        return self.score == 100


def _band(distance: float, radius: float) -> float:
    if distance > radius:
        return 0.0
    for limit, share in DISTANCE_BANDS:
        if distance <= limit:
            return share
    return _FAR


def score_provider(
    provider: Provider,
    services: Iterable[str],
    place: Place,
    window: TimeWindow,
    *,
    use_rating: bool = False,
) -> Candidate:
    """Score one provider for a request: coverage, distance band, availability overlap, rating."""
    wanted = tuple(dict.fromkeys(services))
    offered = set(provider.services)
    covered = [s for s in wanted if s in offered]
    missing = [s for s in wanted if s not in offered]
    coverage = len(covered) / len(wanted) if wanted else 0.0
    distance = distance_km(place, provider.base)
    band = _band(distance, provider.radius_km)
    free = sum(window.overlap(w) for w in provider.availability)
    availability = min(free / window.seconds, 1.0)
    weights = RATED_WEIGHTS if use_rating else WEIGHTS
    parts = {"coverage": coverage, "distance": band, "availability": availability}
    reasons = [
        f"covers {len(covered)} of {len(wanted)} services"
        + (f" (not: {', '.join(missing)})" if missing else ""),
        (
            f"{distance:.1f} km away, outside the {provider.radius_km:g} km service area"
            if band == 0.0
            else f"{distance:.1f} km away (band {band:.0%})"
        ),
        f"available for {availability:.0%} of the time window",
    ]
    if use_rating:
        if provider.rating is None:
            parts["rating"] = 0.5
            reasons.append("no rating yet (counted as average)")
        else:
            parts["rating"] = (provider.rating - 1) / 4
            reasons.append(f"rated {provider.rating:.1f} of 5")
    total = sum(weights[name] * share for name, share in parts.items())
    # Rounded down, so that only a provider perfect on every part scores 100.
    score = max(0, min(100, math.floor(total + 1e-9)))
    return Candidate(provider, score, tuple(reasons), coverage, distance, availability)


def rank_providers(
    providers: Iterable[Provider],
    services: Iterable[str],
    place: Place,
    window: TimeWindow,
    *,
    use_rating: bool = False,
    limit: int | None = None,
) -> tuple[Candidate, ...]:
    """Return the providers that cover at least one service, best first (score, then distance, id)."""
    wanted = tuple(services)
    scored = [score_provider(p, wanted, place, window, use_rating=use_rating) for p in providers]
    ranked = sorted(
        (c for c in scored if c.coverage > 0),
        key=lambda c: (-c.score, c.distance_km, c.provider.id),
    )
    return tuple(ranked if limit is None else ranked[:limit])


# --- the booking request ---------------------------------------------------------------------


def _optional_stars(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        _stars(instance, attribute, value)


def _stars(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        msg = f"{type(instance).__name__}.{attribute.name} must be a whole number from 1 to 5, got {excerpt(value)}"
        raise InvalidPayload(msg, field=attribute.name)


def _ids(value: Any) -> tuple[TaskId, ...]:
    return tuple_of(str, value, "offer_ids")


@attrs.frozen(kw_only=True, field_transformer=typed_fields)
class BookingRequest:
    """Data of a booking request: what the customer wants, where and when, and how it was booked.

    `provider_id`, `outcome` ('match', 'alternative' or 'broadcast') and `score` are set on
    confirmation; `offer_ids` and `offers_expire_at` by a broadcast; `rating` (1-5) and
    `rating_comment` by the customer once the booking is done. `series_id` and `occurrence`
    name the recurring series a request was generated for, and `recurrence` its rule (BR1);
    a draft may carry one as the template of `Bookings.generate_series`.
    """

    customer_id: str = attrs.field(validator=not_blank)
    services: tuple[str, ...] = attrs.field(converter=_services, validator=_some_services)
    place: Place
    window: TimeWindow
    series_id: TaskId | None = attrs.field(default=None, validator=optional_text)
    occurrence: datetime | None = attrs.field(default=None, validator=aware)
    recurrence: Recurrence | None = None
    provider_id: str | None = attrs.field(default=None, validator=optional_text)
    provider_company: CompanyId | None = attrs.field(default=None, validator=optional_text)
    outcome: str | None = attrs.field(default=None, validator=optional_text)
    score: int | None = None
    offer_ids: tuple[TaskId, ...] = attrs.field(default=(), converter=_ids)
    offers_expire_at: datetime | None = attrs.field(default=None, validator=aware)
    rating: int | None = attrs.field(default=None, validator=_optional_stars)
    rating_comment: str | None = attrs.field(default=None, validator=optional_text)


def _outcome(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in _OUTCOMES:
        msg = f"Confirm.outcome must be one of {', '.join(map(repr, _OUTCOMES))}, got {excerpt(value)}"
        raise InvalidPayload(msg, field="outcome")


_OUTCOMES = ("match", "alternative")


@attrs.frozen(field_transformer=typed_fields)
class Confirm:
    """Payload of `confirm`: the provider chosen, its score, and whether it was a 100 % match."""

    provider_id: str = attrs.field(validator=not_blank)
    provider_company: CompanyId = attrs.field(validator=not_blank)
    score: int
    outcome: str = attrs.field(default="alternative", validator=_outcome)


def _future(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    aware(instance, attribute, value)
    if value is None:
        msg = f"{type(instance).__name__}.{attribute.name} must be a timezone-aware datetime"
        raise InvalidPayload(msg, field=attribute.name)


@attrs.frozen(field_transformer=typed_fields)
class Broadcast:
    """Payload of `broadcast`: the offer tasks sent, one per provider, and when they expire."""

    offer_ids: tuple[TaskId, ...] = attrs.field(converter=_ids)
    expires_at: datetime = attrs.field(validator=_future)


@attrs.frozen(field_transformer=typed_fields)
class OfferAccepted:
    """Payload of `accept_offer`: the offer that was accepted first, and its provider."""

    offer_id: TaskId = attrs.field(validator=not_blank)
    provider_id: str = attrs.field(validator=not_blank)
    provider_company: CompanyId = attrs.field(validator=not_blank)
    score: int | None = None


@attrs.frozen(field_transformer=typed_fields)
class Rate:
    """Payload of `rate`: 1 to 5 stars and an optional comment, given once per booking."""

    stars: int = attrs.field(validator=_stars)
    comment: str = ""


class BookingOutcome(enum.StrEnum):
    """The outcomes of BR2 as recorded on a confirmed request (`BookingRequest.outcome`)."""

    MATCH = "match"
    ALTERNATIVE = "alternative"
    BROADCAST = "broadcast"


def booking_request_draft(
    customer_company: CompanyId,
    customer_id: str,
    services: Sequence[str],
    place: Place,
    window: TimeWindow,
    *,
    customers: Sequence[UserRef] = (),
    subject: str | None = None,
    body: str = "",
    series_id: TaskId | None = None,
    occurrence: datetime | None = None,
    recurrence: Recurrence | None = None,
    assignees: Sequence[UserRef] = (),
) -> NewTask:
    """Return the draft of a booking request for a customer; `customers` hear of its confirmation.

    With `recurrence` the draft is the template of a recurring booking: pass it to
    `Bookings.generate_series`, which opens one request per occurrence, each carrying the rule.
    """
    data = BookingRequest(
        customer_id=customer_id,
        services=tuple(services),
        place=place,
        window=window,
        series_id=series_id,
        occurrence=occurrence,
        recurrence=recurrence,
    )
    title = subject or f"{', '.join(data.services)} at {place.name}, {window.start:%Y-%m-%d %H:%M}"
    return NewTask(
        subject=title,
        recipient=customer_company,
        data=data,
        body=body,
        category="Appointment",
        assignees=tuple(assignees),
        watchers=tuple(customers),
        due_at=window.start,
    )


def _check_request_open(draft: NewTask, actor: Actor, at: datetime) -> None:
    data: BookingRequest = draft.data
    set_later = (
        "provider_id",
        "provider_company",
        "outcome",
        "score",
        "offers_expire_at",
        "rating",
        "rating_comment",
    )
    for name in set_later:
        if getattr(data, name) is not None:
            msg = f"a new booking request cannot carry {name}: it is set when the request is booked or rated"
            raise InvalidPayload(msg, field=f"data.{name}", action=OPEN)
    if data.offer_ids:
        msg = "a new booking request cannot carry offer_ids: a broadcast sets them"
        raise InvalidPayload(msg, field="data.offer_ids", action=OPEN)
    if data.recurrence is not None and (data.series_id is None or data.occurrence is None):
        msg = (
            "a booking request with a recurrence is one occurrence of a series: open the "
            "template through Bookings.generate_series, which sets series_id and occurrence"
        )
        raise InvalidPayload(msg, field="data.recurrence", action=OPEN)


def _confirm(task: Task, payload: Confirm, actor: Actor, at: datetime) -> dict[str, Any]:
    data = attrs.evolve(
        task.data,
        provider_id=payload.provider_id,
        provider_company=payload.provider_company,
        outcome=payload.outcome,
        score=payload.score,
    )
    return {"data": data}


def _check_broadcast(task: Task, payload: Broadcast, actor: Actor, at: datetime) -> None:
    if not payload.offer_ids:
        msg = f"'{BROADCAST}' on request {task.number} names no offer: broadcast to 1 provider or more"
        raise InvalidPayload(msg, field="offer_ids", action=BROADCAST)
    if not payload.expires_at > at:
        msg = (
            f"'{BROADCAST}' on request {task.number}: expires_at {payload.expires_at.isoformat()} "
            f"must be after now ({at.isoformat()})"
        )
        raise InvalidPayload(msg, field="expires_at", action=BROADCAST)


def _broadcast(task: Task, payload: Broadcast, actor: Actor, at: datetime) -> dict[str, Any]:
    data = attrs.evolve(task.data, offer_ids=payload.offer_ids, offers_expire_at=payload.expires_at)
    return {"data": data}


def _accept_offer(task: Task, payload: OfferAccepted, actor: Actor, at: datetime) -> dict[str, Any]:
    data = attrs.evolve(
        task.data,
        provider_id=payload.provider_id,
        provider_company=payload.provider_company,
        outcome=str(BookingOutcome.BROADCAST),
        score=payload.score,
        offers_expire_at=None,
    )
    return {"data": data}


def _returned(task: Task, payload: None, actor: Actor, at: datetime) -> dict[str, Any]:
    return {"data": attrs.evolve(task.data, offers_expire_at=None)}


def _not_rated(task: Task, actor: Actor) -> str | None:
    if task.data.rating is not None:
        return f"booking {task.number} was rated already ({task.data.rating} of 5); a booking is rated once"
    return None


def _rate(task: Task, payload: Rate, actor: Actor, at: datetime) -> dict[str, Any]:
    comment = payload.comment.strip() or None
    return {"data": attrs.evolve(task.data, rating=payload.stars, rating_comment=comment)}


OPERATOR = Side.REQUESTER
CUSTOMER = Side.RECIPIENT

BOOKING_REQUEST_WORKFLOW = Workflow(
    name="booking_request",
    description=(
        "A customer's booking: matched against providers and confirmed at once (100 %), from "
        "the closest alternatives, or by the first provider to accept a broadcast; done, then "
        "rated once by the customer."
    ),
    initial="requested",
    open_check=_check_request_open,
    states=(
        State("requested", waiting_on=OPERATOR, label="Requested"),
        State("broadcast", waiting_on=OPERATOR, label="Broadcast to providers"),
        State("confirmed", waiting_on=OPERATOR, label="Confirmed"),
        State("done", final=True, label="Done"),
        State("cancelled", final=True, label="Cancelled"),
    ),
    transitions=(
        Transition(
            CONFIRM,
            "requested",
            "confirmed",
            OPERATOR,
            payload=Confirm,
            effect=_confirm,
            events=("booking_confirmed",),
            notify=Audience.OTHER_SIDE,
            description="Confirm a provider: a 100 % match or an alternative the operator picked",
        ),
        Transition(
            BROADCAST,
            "requested",
            "broadcast",
            OPERATOR,
            payload=Broadcast,
            check=_check_broadcast,
            effect=_broadcast,
            events=("booking_broadcast",),
            notify=Audience.NOBODY,
            description="Broadcast to several providers, one offer each, until a time",
        ),
        Transition(
            ACCEPT_OFFER,
            "broadcast",
            "confirmed",
            OPERATOR,
            payload=OfferAccepted,
            effect=_accept_offer,
            events=("booking_confirmed",),
            notify=Audience.OTHER_SIDE,
            system_only=True,
            description="The first provider accepted its offer: the booking is theirs",
        ),
        Transition(
            RETURN_TO_OPERATOR,
            "broadcast",
            "requested",
            OPERATOR,
            effect=_returned,
            events=("broadcast_expired",),
            notify=Audience.OWN_SIDE,
            system_only=True,
            description="No provider accepted in time: back to the operator",
        ),
        Transition(
            COMPLETE,
            "confirmed",
            "done",
            OPERATOR,
            events=("booking_done",),
            notify=Audience.OTHER_SIDE,
            description="The service was done",
        ),
        Transition(
            CANCEL,
            {"requested", "confirmed"},
            "cancelled",
            BOTH_SIDES,
            events=("booking_cancelled",),
            notify=Audience.OTHER_SIDE,
            description="Cancel the booking",
        ),
        Transition(
            RATE,
            "done",
            None,
            CUSTOMER,
            payload=Rate,
            guard=_not_rated,
            effect=_rate,
            events=("booking_rated",),
            notify=Audience.OTHER_SIDE,
            description="Rate the booking, 1 to 5 with a comment, once",
        ),
        *common_actions(),
    ),
)


def _customer_id(task: Task) -> str:
    return str(task.data.customer_id)


def _provider_id(task: Task) -> str | None:
    value: str | None = task.data.provider_id
    return value


def _starts_at(task: Task) -> datetime:
    start: datetime = task.data.window.start
    return start


def _series_id(task: Task) -> str | None:
    value: str | None = task.data.series_id
    return value


def _recurring(task: Task) -> bool:
    return task.data.series_id is not None


def _rated(task: Task) -> bool:
    return task.data.rating is not None


def _broadcast_expires(task: Task) -> datetime | None:
    if task.state != "broadcast":
        return None
    expires: datetime | None = task.data.offers_expire_at
    return expires


def _occurrence_key(task: Task) -> str | None:
    data: BookingRequest = task.data
    if data.series_id is None or data.occurrence is None:
        return None
    return f"{data.series_id}@{data.occurrence.isoformat()}"


def request_policy(
    workflow: Workflow, before: Task | None, after: Task, events: Sequence[DomainEvent]
) -> tuple[Notification, ...]:
    """Notification policy of booking requests: the default one, but the customer hears of no opening.

    The customer hears of the confirmation (seed 002), completion and cancellation.
    """
    shown = [e for e in events if e.action != OPEN]
    return default_policy(workflow, before, after, shown) if shown else ()


BOOKING_REQUEST = TaskKind(
    "booking_request",
    BookingRequest,
    BOOKING_REQUEST_WORKFLOW,
    "A customer's booking, matched against providers (BR1, BR2)",
    policy=request_policy,
    indexed={
        "customer_id": _customer_id,
        "provider_id": _provider_id,
        "starts_at": _starts_at,
        "series_id": _series_id,
        "recurring": _recurring,
        "rated": _rated,
        "broadcast_expires": _broadcast_expires,
        "occurrence_key": _occurrence_key,
    },
)


# --- the offer to one provider ---------------------------------------------------------------


@attrs.frozen(kw_only=True, field_transformer=typed_fields)
class BookingOffer:
    """Data of an offer: the request it belongs to, the provider asked, what, where, when, until when."""

    request_id: TaskId = attrs.field(validator=not_blank)
    provider_id: str = attrs.field(validator=not_blank)
    services: tuple[str, ...] = attrs.field(converter=_services, validator=_some_services)
    place: Place
    window: TimeWindow
    expires_at: datetime = attrs.field(validator=_future)
    score: int | None = None


PROVIDER = Side.RECIPIENT


@attrs.frozen
class AcceptOffer:
    """Payload of an offer's `accept`: made by `Bookings.accept_offer`, which confirms the request too.

    A plain `service.act(actor, offer_id, "accept")` carries none and is refused, so an offer is
    never accepted without its request being confirmed and the other offers withdrawn.
    """


def _in_time_to_accept(task: Task, actor: Actor, at: datetime) -> None:
    # A time guard: the engine's `at` (the service's clock) decides, for `apply` and for
    # `allowed_actions(at=...)` alike, so an expired offer is neither offered nor taken `accept`.
    expires_at: datetime = task.data.expires_at
    if at >= expires_at:
        raise OfferExpired(task.number, task.state, expires_at.isoformat())


BOOKING_OFFER_WORKFLOW = Workflow(
    name="booking_offer",
    description=(
        "One provider's offer of a broadcast booking request: the provider accepts or "
        "declines; the first accept wins, the other offers are withdrawn; unanswered, it expires."
    ),
    initial="offered",
    states=(
        State("offered", waiting_on=PROVIDER, label="Offered"),
        State("accepted", final=True, label="Accepted"),
        State("declined", final=True, label="Declined"),
        State("withdrawn", final=True, label="Withdrawn"),
        State("expired", final=True, label="Expired"),
    ),
    transitions=(
        Transition(
            ACCEPT,
            "offered",
            "accepted",
            PROVIDER,
            payload=AcceptOffer,
            time_guard=_in_time_to_accept,
            events=("offer_accepted",),
            notify=Audience.OTHER_SIDE,
            description=(
                "Take the appointment, through Bookings.accept_offer(actor, offer_id): "
                "first accept wins"
            ),
        ),
        Transition(
            DECLINE,
            "offered",
            "declined",
            PROVIDER,
            events=("offer_declined",),
            notify=Audience.OTHER_SIDE,
            description="Decline the appointment",
        ),
        Transition(
            WITHDRAW,
            "offered",
            "withdrawn",
            OPERATOR,
            events=("offer_withdrawn",),
            notify=Audience.OTHER_SIDE,
            description="Withdraw the offer: another provider took the booking",
        ),
        Transition(
            EXPIRE,
            "offered",
            "expired",
            OPERATOR,
            events=("offer_expired",),
            notify=Audience.OTHER_SIDE,
            system_only=True,
            description="Nobody accepted before the time the request set",
        ),
        *common_actions(),
    ),
)


def _request_id(task: Task) -> str:
    return str(task.data.request_id)


def _offer_provider(task: Task) -> str:
    return str(task.data.provider_id)


BOOKING_OFFER = TaskKind(
    "booking_offer",
    BookingOffer,
    BOOKING_OFFER_WORKFLOW,
    "One provider's offer of a broadcast booking request (BR2 outcome C)",
    indexed={"request_id": _request_id, "provider_id": _offer_provider},
)
