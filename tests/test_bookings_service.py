"""The Bookings service (BK3, BR1, BR2): auto-resolve, lookup checks, matching, broadcast, ratings, views."""

from datetime import UTC, datetime, timedelta

import pytest

import taskflow as tf
from taskflow import (
    ActionNotAllowed,
    Actor,
    AlreadyTaken,
    Bookings,
    BookingUnchanged,
    InMemoryBookings,
    InMemoryProviders,
    InvalidPayload,
    OfferExpired,
)
from taskflow.application.bookings import BOOKING_MADE_TOPIC
from taskflow.kinds.booking import BookingAction, ChangeAction, booking_task_draft
from taskflow.kinds.booking_request import (
    AcceptOffer,
    Place,
    Provider,
    TimeWindow,
    booking_request_draft,
)
from taskflow.testing.bookings import (
    check_first_accept_wins,
    check_first_accept_wins_in_processes,
)

START = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
REGISTRY = tf.default_registry()
OFFICE = Actor("bo", "tours", {"backoffice_user"})
OPERATOR = Actor("olga", "homeops")
CUSTOMER = Actor("jo", "cust-jo")
HOME = Place("Jo's home", 46.05, 14.50)
WINDOW = TimeWindow(START + timedelta(days=2), START + timedelta(days=2, hours=3))


def _provider(pid, *, services=("cleaning", "ironing"), km_north=1.0, free=True, rating=None):
    company = f"prov-{pid}"
    return Provider(
        id=pid,
        company=company,
        name=pid.title(),
        services=services,
        base=Place(f"{pid} base", 46.05 + km_north / 111.2, 14.50),
        radius_km=25,
        availability=(WINDOW,) if free else (),
        rating=rating,
        contacts=(tf.UserRef(company, f"{pid}-desk"),),
    )


JULIA = _provider("julia")
MARK = _provider("mark", services=("cleaning",), km_north=8)
NINA = _provider("nina", km_north=15, free=False)
OMAR = _provider("omar", services=("windows",))


def _world(providers=(JULIA, MARK, NINA, OMAR), lookup=None):
    service = tf.TaskService(
        registry=REGISTRY,
        repository=tf.InMemoryRepository(registry=REGISTRY),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )
    return Bookings(service, directory=InMemoryProviders(providers), lookup=lookup)


def _request(bookings, services=("cleaning", "ironing"), window=WINDOW, **more):
    draft = booking_request_draft(
        "cust-jo", "C-1", services, HOME, window, customers=[CUSTOMER.ref], **more
    )
    return bookings.request_booking(OPERATOR, draft)


def _told(bookings):
    sent = [(n.recipient.user, n.event) for n in bookings.service.notifier.sent]
    bookings.service.notifier.clear()
    return sent


# --- booking tasks: auto-resolve and the lookup ----------------------------------------------


def _task(bookings, action, **more):
    more.setdefault("booking_ref", "BK-1")
    draft = booking_task_draft("tours", action, START + timedelta(days=1), **more)
    return bookings.service.open(OFFICE, "booking_task", draft).task


def test_booking_made_resolves_a_new_booking_task_by_a_system_actor_and_links_it():
    bookings = _world()
    task = _task(bookings, "new_booking", booking_ref=None, customer_name="Jo", subject="Book")
    done = bookings.booking_made(task.id, "BK-900")
    assert (done.state, done.data.booking_ref) == ("resolved", "BK-900")
    assert str(done.history[-1].actor) == "system:bookings@tours"
    assert bookings.booking_made(task.id, "BK-900").version == done.version  # idempotent
    assert [t.id for t in bookings.tasks_page(OFFICE, booking_ref="BK-900", parked=None)] == [
        task.id
    ]


def test_a_booking_made_message_on_the_bus_resolves_the_task_like_the_call():
    bookings = _world()
    service = bookings.service
    task = _task(bookings, "new_booking", booking_ref=None, customer_name="Jo", subject="Book")
    with service.unit_of_work() as uow:  # the host's own commit publishes the event
        uow.enqueue(Bookings.booking_made_message(task.id, "BK-901"))
    stored = service.get(OFFICE, task.id)
    assert (stored.state, stored.data.booking_ref) == ("resolved", "BK-901")
    assert service.repository.pending() == []


@pytest.mark.parametrize(
    "payload",
    [{}, {"task_id": "task-1"}, {"task_id": 7, "booking_ref": "BK-1"}, {"booking_ref": ""}],
)
def test_a_malformed_booking_made_message_is_a_dead_letter_at_once_and_changes_nothing(payload):
    bookings = _world()
    service = bookings.service
    task = _task(bookings, "new_booking", booking_ref=None, customer_name="Jo", subject="Book")
    with service.unit_of_work() as uow:
        uow.enqueue(tf.OutboxMessage(BOOKING_MADE_TOPIC, "bad", payload))
    assert service.repository.pending() == []  # not queued for retries: bad input stays bad
    (dead,) = service.repository.dead_letters()
    assert "cannot be read" in dead.reason
    assert "task_id" in dead.reason or "booking_ref" in dead.reason
    assert service.get(OFFICE, task.id).state == "open"


@pytest.mark.parametrize(
    ("action", "record", "found"),
    [
        ("update_booking", None, "unknown to the lookup"),
        ("update_booking", "add", "unchanged since the task was opened"),
        ("cancel_booking", "add", "'confirmed'"),
        ("refund", "change", "not refunded"),
    ],
)
def test_resolving_refuses_when_the_lookup_says_the_booking_was_not_changed(action, record, found):
    lookup = InMemoryBookings()
    bookings = _world(lookup=lookup)
    if record == "add":
        lookup.add("BK-1")
    elif record == "change":
        lookup.change("BK-1", START)
    task = _task(bookings, action)
    with pytest.raises(BookingUnchanged, match=found) as caught:
        bookings.resolve_task(OFFICE, task.id)
    assert isinstance(caught.value, ActionNotAllowed)
    assert bookings.service.get(OFFICE, task.id).is_open


@pytest.mark.parametrize(
    ("action", "do"),
    [("update_booking", "change"), ("cancel_booking", "cancel"), ("refund", "refund")],
)
def test_resolving_passes_once_the_host_changed_cancelled_or_refunded_the_booking(action, do):
    lookup = InMemoryBookings()
    bookings = _world(lookup=lookup)
    task = _task(bookings, action)
    getattr(lookup, do)("BK-1", START)
    assert bookings.resolve_task(OFFICE, task.id).task.state == "resolved"


def test_the_tasks_page_filters_by_action_and_leaves_parked_tasks_out():
    bookings = _world()
    refund = _task(bookings, "refund")
    parked = _task(bookings, "update_booking")
    bookings.service.act(OFFICE, parked.id, "change_action", ChangeAction(BookingAction.IGNORE))
    assert [t.id for t in bookings.tasks_page(OFFICE)] == [refund.id]
    assert [t.id for t in bookings.tasks_page(OFFICE, parked=True)] == [parked.id]
    assert [t.id for t in bookings.tasks_page(OFFICE, action="refund")] == [refund.id]
    assert bookings.tasks_page(OFFICE, resolved=True) == []


# --- matching (BR2) --------------------------------------------------------------------------


def test_find_providers_ranks_candidates_with_a_score_and_reasons():
    bookings = _world()
    request = _request(bookings)
    ranked = bookings.find_providers(OPERATOR, request.id)
    assert [c.provider.id for c in ranked] == ["julia", "mark", "nina"]  # omar covers nothing
    best = ranked[0]
    assert (best.score, best.exact) == (100, True)
    assert best.reasons[0] == "covers 2 of 2 services"
    assert ranked[1].reasons[0] == "covers 1 of 2 services (not: ironing)"
    assert all(0 <= c.score < 100 for c in ranked[1:])


def test_outcome_a_a_full_match_is_confirmed_and_the_customer_is_notified():
    bookings = _world()
    request = _request(bookings)
    _told(bookings)
    done = bookings.confirm(OPERATOR, request.id, "julia").task
    assert (done.state, done.data.outcome, done.data.score) == ("confirmed", "match", 100)
    assert _told(bookings) == [("jo", "booking_confirmed")]


def test_outcome_b_the_operator_confirms_one_of_the_closest_alternatives():
    bookings = _world(providers=(MARK, NINA))
    request = _request(bookings)
    ranked = bookings.find_providers(OPERATOR, request.id, limit=2)
    assert not ranked[0].exact
    done = bookings.confirm(OPERATOR, request.id, ranked[0].provider.id).task
    assert (done.data.provider_id, done.data.outcome) == ("mark", "alternative")


def test_confirming_an_unknown_provider_is_refused():
    bookings = _world()
    request = _request(bookings)
    with pytest.raises(InvalidPayload, match="knows no provider 'zed'"):
        bookings.confirm(OPERATOR, request.id, "zed")


# --- broadcast (BR2 outcome C) ---------------------------------------------------------------


def _broadcast(bookings, providers=("julia", "mark", "nina"), hours=6):
    request = _request(bookings)
    return bookings.broadcast(
        OPERATOR, request.id, providers, expires_at=START + timedelta(hours=hours)
    )


def _pro(provider_id):
    return Actor(f"{provider_id}-desk", f"prov-{provider_id}")


def test_broadcast_sends_one_offer_per_provider_whose_company_receives_it():
    bookings = _world()
    sent = _broadcast(bookings)
    assert sent.request.state == "broadcast"
    assert [o.recipient for o in sent.offers] == ["prov-julia", "prov-mark", "prov-nina"]
    assert [o.data.request_id for o in sent.offers] == [sent.request.id] * 3
    assert sorted(_told(bookings)) == [
        ("julia-desk", "opened"),
        ("mark-desk", "opened"),
        ("nina-desk", "opened"),
    ]
    assert [t.id for t in bookings.service.inbox(_pro("mark"))] == [sent.offers[1].id]


def test_the_first_accept_wins_the_others_are_withdrawn_and_a_late_accept_is_refused():
    bookings = _world()
    sent = _broadcast(bookings)
    julia, mark, nina = sent.offers
    _told(bookings)
    won = bookings.accept_offer(_pro("mark"), mark.id)
    assert (won.request.state, won.request.data.provider_id) == ("confirmed", "mark")
    assert won.request.data.outcome == "broadcast"
    assert won.withdrawn == (julia.id, nina.id)
    states = [bookings.service.get(OPERATOR, o.id).state for o in sent.offers]
    assert states == ["withdrawn", "accepted", "withdrawn"]
    assert sorted(_told(bookings)) == [
        ("jo", "booking_confirmed"),
        ("julia-desk", "offer_withdrawn"),
        ("nina-desk", "offer_withdrawn"),
        ("olga", "offer_accepted"),
    ]
    with pytest.raises(AlreadyTaken, match=r"already taken by mark") as caught:
        bookings.accept_offer(_pro("julia"), julia.id)
    assert isinstance(caught.value, ActionNotAllowed)


def test_an_offer_cannot_be_accepted_after_it_expired():
    bookings = _world()
    sent = _broadcast(bookings, hours=2)
    bookings.service.clock.advance(timedelta(hours=3))
    with pytest.raises(OfferExpired, match="the offer expired at"):
        bookings.accept_offer(_pro("julia"), sent.offers[0].id)


def test_a_plain_accept_on_an_offer_is_refused_naming_the_bookings_call():
    bookings = _world()
    sent = _broadcast(bookings)
    with pytest.raises(InvalidPayload, match=r"Bookings\.accept_offer\(actor, offer_id\)"):
        bookings.service.act(_pro("mark"), sent.offers[1].id, "accept")
    states = [bookings.service.get(OPERATOR, o.id).state for o in sent.offers]
    assert states == ["offered", "offered", "offered"]
    assert bookings.service.get(OPERATOR, sent.request.id).state == "broadcast"


def test_the_offer_workflow_refuses_an_accept_at_or_after_its_expiry_given_the_time():
    bookings = _world()
    sent = _broadcast(bookings, hours=2)
    offer = bookings.service.repository.get(sent.offers[0].id)
    workflow = REGISTRY["booking_offer"].workflow
    provider = _pro("julia")
    expires = START + timedelta(hours=2)
    just_before = tf.apply(
        workflow, offer, "accept", provider, expires - timedelta(seconds=1), AcceptOffer()
    )
    assert just_before.task.state == "accepted"
    for late in (expires, expires + timedelta(days=1)):
        with pytest.raises(OfferExpired, match="the offer expired at"):
            tf.apply(workflow, offer, "accept", provider, late, AcceptOffer())


def test_an_expired_broadcast_returns_to_the_operator_and_its_offers_expire():
    bookings = _world()
    sent = _broadcast(bookings, hours=2)
    bookings.decline_offer(_pro("nina"), sent.offers[2].id)
    assert bookings.expire_broadcasts(START + timedelta(hours=1)) == ()
    back = bookings.expire_broadcasts(START + timedelta(hours=2))
    assert [t.id for t in back] == [sent.request.id]
    assert back[0].state == "requested"
    states = [bookings.service.get(OPERATOR, o.id).state for o in sent.offers]
    assert states == ["expired", "expired", "declined"]
    assert bookings.expire_broadcasts(START + timedelta(hours=3)) == ()  # idempotent
    with pytest.raises(OfferExpired):
        bookings.accept_offer(_pro("julia"), sent.offers[0].id)


def test_first_accept_wins_under_threads_on_memory():
    repository = tf.InMemoryRepository(registry=REGISTRY)
    race = check_first_accept_wins(lambda: repository, providers=4)
    assert len(race.winners) == 1


def test_first_accept_wins_under_threads_on_sqlite(tmp_path):
    path = tmp_path / "race.db"
    repositories = []

    def factory():
        repository = tf.SqliteRepository(path, REGISTRY)
        repositories.append(repository)
        return repository

    race = check_first_accept_wins(factory, providers=3)
    assert len(race.winners) == 1
    for repository in repositories:
        repository.close()


def test_first_accept_wins_under_processes_on_sqlite(tmp_path):
    assert check_first_accept_wins_in_processes(str(tmp_path / "race.db")) == ["taken", "won"]


# --- after the booking: ratings, views (BR1) -------------------------------------------------


def _done(bookings, provider="julia", window=WINDOW):
    request = _request(bookings, window=window)
    bookings.confirm(OPERATOR, request.id, provider)
    return bookings.complete(OPERATOR, request.id).task


def test_a_done_booking_is_rated_once_by_the_customer_and_the_provider_averages():
    bookings = _world()
    first = _done(bookings)
    second = _done(bookings)
    rated = bookings.rate(CUSTOMER, first.id, 5, "Spotless").task
    assert (rated.data.rating, rated.data.rating_comment) == (5, "Spotless")
    with pytest.raises(ActionNotAllowed, match="was rated already"):
        bookings.rate(CUSTOMER, first.id, 1)
    bookings.rate(CUSTOMER, second.id, 4)
    average = bookings.provider_rating(OPERATOR, "julia")
    assert (average.average, average.count) == (4.5, 2)
    assert bookings.provider_rating(OPERATOR, "mark").average is None


def test_a_booking_is_rated_only_after_it_was_done_and_only_from_1_to_5():
    bookings = _world()
    request = _request(bookings)
    with pytest.raises(ActionNotAllowed, match="'rate' needs 'done'"):
        bookings.rate(CUSTOMER, request.id, 5)
    done = _done(bookings)
    with pytest.raises(InvalidPayload, match="from 1 to 5"):
        bookings.rate(CUSTOMER, done.id, 6)


def test_the_customer_views_list_calendar_and_history():
    bookings = _world()
    past = _done(bookings)
    later = TimeWindow(START + timedelta(days=9), START + timedelta(days=9, hours=2))
    upcoming = _request(bookings, window=later)
    assert [t.id for t in bookings.customer_bookings(CUSTOMER, "C-1")] == [past.id, upcoming.id]
    assert [t.id for t in bookings.customer_bookings(CUSTOMER, "C-1", recurring=True)] == []
    week = bookings.upcoming(CUSTOMER, "C-1", START, START + timedelta(days=10))
    assert [t.id for t in week] == [upcoming.id]  # the done one is history
    assert bookings.upcoming(CUSTOMER, "C-1", START, START + timedelta(days=5)) == []
    assert [t.id for t in bookings.history(CUSTOMER, "C-1")] == [past.id]
