"""Booking requests and offers (BR1, BR2): the values, the scoring function, random walks, a broadcast machine."""

from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import taskflow as tf
from taskflow import Actor, InvalidPayload
from taskflow.kinds.booking_request import (
    BookingRequest,
    Place,
    Provider,
    TimeWindow,
    booking_request_draft,
    distance_km,
    rank_providers,
    score_provider,
)
from taskflow.testing.broadcast import broadcast_machine
from taskflow.testing.stateful import workflow_machine

START = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
HOME = Place("Home", 46.05, 14.5)
WINDOW = TimeWindow(START, START + timedelta(hours=3))
REGISTRY = tf.default_registry()
SERVICES = ["cleaning", "ironing", "windows", "garden"]


def test_a_time_window_ends_after_it_starts():
    with pytest.raises(InvalidPayload, match=r"TimeWindow\.end must be after") as caught:
        TimeWindow(START, START)
    assert caught.value.field == "end"


def test_a_place_has_real_coordinates():
    with pytest.raises(InvalidPayload, match=r"Place\.lat must be from -90 to 90"):
        Place("Nowhere", 91, 0)


def test_a_new_request_cannot_carry_what_confirmation_sets():
    data = BookingRequest(
        customer_id="C-1", services=("cleaning",), place=HOME, window=WINDOW, provider_id="p"
    )
    draft = tf.NewTask("Clean", "cust", data)
    service = tf.TaskService(
        registry=REGISTRY,
        repository=tf.InMemoryRepository(registry=REGISTRY),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )
    with pytest.raises(InvalidPayload, match="cannot carry provider_id") as caught:
        service.open(Actor("olga", "ops"), "booking_request", draft)
    assert caught.value.field == "data.provider_id"


def test_a_request_names_at_least_one_service():
    with pytest.raises(InvalidPayload, match="must name at least one service"):
        booking_request_draft("cust", "C-1", (), HOME, WINDOW)


# --- scoring ---------------------------------------------------------------------------------

windows = st.builds(
    lambda start, hours: TimeWindow(start, start + timedelta(minutes=hours)),
    st.datetimes(datetime(2026, 6, 1), datetime(2026, 6, 3), timezones=st.just(UTC)),
    st.integers(30, 600),
)
providers = st.builds(
    Provider,
    id=st.sampled_from(["a", "b", "c", "d"]),
    company=st.just("prov"),
    name=st.just("P"),
    services=st.lists(st.sampled_from(SERVICES), min_size=1, max_size=4).map(tuple),
    base=st.builds(Place, st.just("base"), st.floats(45.8, 46.3), st.floats(14.2, 14.8)),
    radius_km=st.floats(1, 40),
    availability=st.lists(windows, max_size=3).map(tuple),
    rating=st.none() | st.floats(1, 5),
)
wanted = st.lists(st.sampled_from(SERVICES), min_size=1, max_size=4, unique=True)


@given(providers, wanted, windows, st.booleans())
def test_a_score_is_0_to_100_with_a_reason_per_part(provider, services, window, use_rating):
    candidate = score_provider(provider, services, HOME, window, use_rating=use_rating)
    assert 0 <= candidate.score <= 100
    assert len(candidate.reasons) == (4 if use_rating else 3)
    assert 0 <= candidate.coverage <= 1
    assert 0 <= candidate.availability <= 1


@given(providers, wanted, windows)
def test_only_a_provider_perfect_on_every_part_scores_100(provider, services, window):
    candidate = score_provider(provider, services, HOME, window)
    perfect = (
        candidate.coverage == 1
        and candidate.availability == 1
        and candidate.distance_km <= min(5, provider.radius_km)
    )
    assert candidate.exact is perfect


@given(providers, wanted, windows)
def test_offering_more_services_never_lowers_the_score(provider, services, window):
    before = score_provider(provider, services, HOME, window).score
    widened = attrs.evolve(provider, services=tuple(SERVICES))
    assert score_provider(widened, services, HOME, window).score >= before


@given(st.lists(providers, max_size=6), wanted, windows)
def test_ranked_candidates_come_best_first_and_each_covers_a_service(field, services, window):
    ranked = rank_providers(field, services, HOME, window)
    scores = [c.score for c in ranked]
    assert scores == sorted(scores, reverse=True)
    assert all(c.coverage > 0 for c in ranked)
    assert len(rank_providers(field, services, HOME, window, limit=2)) == min(2, len(ranked))


def test_distance_is_the_great_circle_in_kilometres():
    assert distance_km(HOME, HOME) == 0
    assert distance_km(Place("a", 0, 0), Place("b", 0, 1)) == pytest.approx(111.19, abs=0.01)


# --- random walks through the plain workflows ------------------------------------------------

TestBookingRequestWorkflow = workflow_machine(REGISTRY, "booking_request").TestCase
TestBookingRequestWorkflow.settings = settings(
    TestBookingRequestWorkflow.settings, stateful_step_count=20, deadline=None
)
TestBookingOfferWorkflow = workflow_machine(REGISTRY, "booking_offer").TestCase
TestBookingOfferWorkflow.settings = settings(
    TestBookingOfferWorkflow.settings, stateful_step_count=15, deadline=None
)


# --- broadcasts with concurrent accepts (the test kit's machine, tests/test_broadcast_machine.py) --

TestBroadcasts = broadcast_machine().TestCase
TestBroadcasts.settings = settings(max_examples=25, stateful_step_count=12, deadline=None)
