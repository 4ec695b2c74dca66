"""An expired booking offer is not offered `accept`, and every way of accepting it is refused."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

import taskflow as tf
from taskflow import Actor, Bookings, InMemoryProviders, OfferExpired
from taskflow.domain import engine
from taskflow.kinds.booking_request import (
    AcceptOffer,
    Place,
    Provider,
    TimeWindow,
    booking_request_draft,
)

START = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
REGISTRY = tf.default_registry()
OPERATOR = Actor("olga", "homeops")
CUSTOMER = Actor("jo", "cust-jo")
HOME = Place("Jo's home", 46.05, 14.50)
WINDOW = TimeWindow(START + timedelta(days=2), START + timedelta(days=2, hours=3))
NAMES = ("julia", "mark", "nina")


def _provider(pid):
    company = f"prov-{pid}"
    return Provider(
        id=pid,
        company=company,
        name=pid.title(),
        services=("cleaning",),
        base=Place(f"{pid} base", 46.06, 14.50),
        radius_km=25,
        availability=(WINDOW,),
        contacts=(tf.UserRef(company, f"{pid}-desk"),),
    )


def _pro(pid):
    return Actor(f"{pid}-desk", f"prov-{pid}")


def _broadcast(expires_in):
    service = tf.TaskService(
        registry=REGISTRY,
        repository=tf.InMemoryRepository(registry=REGISTRY),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )
    bookings = Bookings(service, directory=InMemoryProviders([_provider(p) for p in NAMES]))
    draft = booking_request_draft(
        "cust-jo", "C-1", ("cleaning",), HOME, WINDOW, customers=[CUSTOMER.ref]
    )
    request = bookings.request_booking(OPERATOR, draft)
    sent = bookings.broadcast(OPERATOR, request.id, NAMES, expires_at=START + expires_in)
    return bookings, sent


EXPIRY = st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=7))
LATE = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30))


@given(expires_in=EXPIRY, late_by=LATE, which=st.sampled_from(range(len(NAMES))))
def test_for_every_expired_offer_allowed_actions_omits_accept_and_accepting_is_refused(
    expires_in, late_by, which
):
    bookings, sent = _broadcast(expires_in)
    service = bookings.service
    offer, provider = sent.offers[which], _pro(NAMES[which])
    assert "accept" in service.allowed_actions(provider, offer.id)  # in time: offered
    service.clock.set(START + expires_in + late_by)  # at or after the expiry
    allowed = service.allowed_actions(provider, offer.id)
    assert "accept" not in allowed
    assert "decline" in allowed  # the provider may still say no
    stored = service.repository.get(offer.id)
    workflow = REGISTRY["booking_offer"].workflow
    assert "accept" not in engine.allowed_actions(
        workflow, stored, provider, at=service.clock.now()
    )
    for payload in (AcceptOffer(), None):  # through the workflow, with or without the payload
        with pytest.raises(OfferExpired) as refused:
            service.act(provider, offer.id, "accept", payload)
        assert "the offer expired at" in str(refused.value)
        assert refused.value.allowed == allowed  # the error tells the same truth
    with pytest.raises(OfferExpired, match="the offer expired at"):
        bookings.accept_offer(provider, offer.id)
    assert [service.repository.get(o.id).state for o in sent.offers] == ["offered"] * 3
    assert service.repository.get(sent.request.id).state == "broadcast"


@given(expires_in=EXPIRY, late_by=LATE)
def test_once_the_scheduler_expired_the_broadcast_no_offer_is_offered_accept(expires_in, late_by):
    bookings, sent = _broadcast(expires_in)
    service = bookings.service
    service.clock.set(START + expires_in + late_by)
    assert bookings.expire_broadcasts(service.clock.now())
    for offer, pid in zip(sent.offers, NAMES, strict=True):
        assert "accept" not in service.allowed_actions(_pro(pid), offer.id)
        with pytest.raises(OfferExpired):
            bookings.accept_offer(_pro(pid), offer.id)
        with pytest.raises(tf.ActionNotAllowed):
            service.act(_pro(pid), offer.id, "accept", AcceptOffer())


def test_just_before_the_expiry_accept_is_offered_and_taken():
    bookings, sent = _broadcast(timedelta(hours=2))
    service = bookings.service
    service.clock.set(START + timedelta(hours=2) - timedelta(microseconds=1))
    assert "accept" in service.allowed_actions(_pro("mark"), sent.offers[1].id)
    won = bookings.accept_offer(_pro("mark"), sent.offers[1].id)
    assert won.request.state == "confirmed"


def test_engine_allowed_actions_without_a_time_asks_no_time_guard():
    bookings, sent = _broadcast(timedelta(hours=2))
    stored = bookings.service.repository.get(sent.offers[0].id)
    workflow = REGISTRY["booking_offer"].workflow
    late = START + timedelta(days=1)
    assert "accept" in engine.allowed_actions(workflow, stored, _pro("julia"))
    assert "accept" not in engine.allowed_actions(workflow, stored, _pro("julia"), at=late)
