"""Both booking stories: a tour operator's back-office tasks (seed 000) and a home-services
marketplace's booking requests (seed 002), printing each step.

    .venv/bin/python examples/bookings.py
"""

from datetime import UTC, datetime, timedelta

import taskflow as tf
from taskflow.kinds.booking import BookingAction, ChangeAction, booking_task_draft
from taskflow.kinds.booking_request import Place, Provider, TimeWindow, booking_request_draft
from taskflow.kinds.recurrence import Recurrence

START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def say(text):
    print(text)


def make_service(registry, clock):
    return tf.TaskService(
        registry=registry,
        repository=tf.InMemoryRepository(registry=registry),
        notifier=tf.RecordingNotifier(),
        clock=clock,
        ids=tf.SequentialIds(),
        authorizer=tf.RoleMatrix(
            {"booking_task": {"backoffice_user": {"create", "see", "modify", "resolve"}}}
        ),
    )


def tour_operator(registry):
    say("== Seed 000: a tour operator's booking tasks ==")
    clock = tf.FixedClock(START)
    service = make_service(registry, clock)
    host_bookings = tf.InMemoryBookings()
    bookings = tf.Bookings(service, lookup=host_bookings)
    bo = tf.Actor("bo", "tours", {"backoffice_user"})
    due = START + timedelta(days=2)

    question = service.open(
        bo,
        "booking_task",
        booking_task_draft(
            "tours",
            BookingAction.QUESTION,
            due,
            customer_name="Jo Doe",
            subject="Are dogs allowed on the boat tour?",
        ),
    ).task
    say(f"{question.number}: standalone question for a new customer, due {due:%Y-%m-%d}")
    done = bookings.resolve_task(bo, question.id, answer="Small dogs on a lead, yes").task
    say(f"{done.number}: answered ({done.data.answer!r}) -> {done.state}")

    host_bookings.add("BK-1042")
    update = service.open(
        bo,
        "booking_task",
        booking_task_draft(
            "tours",
            BookingAction.UPDATE_BOOKING,
            due,
            booking_ref="BK-1042",
            body="Move the tour to Friday",
        ),
    ).task
    say(f"{update.number}: update booking {update.subject}")
    try:
        bookings.resolve_task(bo, update.id)
    except tf.BookingUnchanged as refused:
        say(f"  refused: {refused}")
    clock.advance(timedelta(minutes=10))
    host_bookings.change("BK-1042", clock.now())
    resolved = bookings.resolve_task(bo, update.id).task
    say(f"{resolved.number}: booking changed in the host, resolved by hand -> {resolved.state}")

    new = service.open(
        bo,
        "booking_task",
        booking_task_draft(
            "tours",
            BookingAction.NEW_BOOKING,
            due,
            customer_id="C-77",
            subject="Book the sunset cruise for 4",
        ),
    ).task
    say(f"{new.number}: new booking for customer C-77")
    made = bookings.booking_made(new.id, "BK-2001")
    say(
        f"{made.number}: the host's booking flow made BK-2001 -> {made.state}, linked to "
        f"{made.data.booking_ref}, by {made.history[-1].actor}"
    )

    ignored = service.open(
        bo,
        "booking_task",
        booking_task_draft(
            "tours", BookingAction.TASK, due, booking_ref="BK-3003", body="Check the voucher"
        ),
    ).task
    service.act(bo, ignored.id, "change_action", ChangeAction(BookingAction.IGNORE))
    active = [t.number for t in bookings.tasks_page(bo, resolved=False)]
    say(f"{ignored.number}: ignored and parked; active tasks page: {active}")
    closed = bookings.resolve_task(bo, ignored.id).task
    say(f"{closed.number}: resolved {closed.data.resolution.replace('_', ' ')} -> {closed.state}")
    say(f"notifications sent for booking tasks: {len(service.notifier.sent)}")


def provider(pid, services, km, rating=None):
    company = f"prov-{pid}"
    return Provider(
        pid,
        company,
        pid.title(),
        services,
        Place(f"{pid} base", 46.05 + km / 111.2, 14.5),
        radius_km=25,
        availability=(WINDOW,),
        rating=rating,
        contacts=(tf.UserRef(company, pid),),
    )


WINDOW = TimeWindow(START + timedelta(days=3), START + timedelta(days=3, hours=3))
HOME = Place("Jo's home", 46.05, 14.5)


def marketplace(registry):
    say("== Seed 002: a home-services marketplace ==")
    clock = tf.FixedClock(START)
    service = make_service(registry, clock)
    directory = tf.InMemoryProviders(
        [
            provider("julia", ("cleaning", "ironing"), 1),
            provider("mark", ("cleaning",), 8),
            provider("nina", ("cleaning", "ironing"), 15),
        ]
    )
    bookings = tf.Bookings(service, directory=directory)
    olga, jo = tf.Actor("olga", "homeops"), tf.Actor("jo", "cust-jo")

    def request(services=("cleaning", "ironing"), window=WINDOW, subject=None):
        draft = booking_request_draft(
            "cust-jo", "C-1", services, HOME, window, customers=[jo.ref], subject=subject
        )
        return bookings.request_booking(olga, draft)

    first = request()
    ranked = bookings.find_providers(olga, first.id)
    say(f"{first.number}: candidates " + ", ".join(f"{c.provider.id} {c.score}%" for c in ranked))
    confirmed = bookings.confirm(olga, first.id, ranked[0].provider.id).task
    say(
        f"{first.number}: (A) 100 % match {confirmed.data.provider_id} confirmed "
        f"-> {confirmed.state}; customer told: {[n.event for n in service.notifier.sent]}"
    )

    second = request(services=("cleaning", "windows"))
    ranked = bookings.find_providers(olga, second.id, limit=3)
    say(
        f"{second.number}: no full match; alternatives "
        + ", ".join(f"{c.provider.id} {c.score}% ({c.reasons[0]})" for c in ranked)
    )
    picked = bookings.confirm(olga, second.id, ranked[1].provider.id).task
    say(f"{second.number}: (B) operator picked {picked.data.provider_id} -> {picked.data.outcome}")

    third = request()
    sent = bookings.broadcast(
        olga, third.id, ["julia", "mark", "nina"], expires_at=START + timedelta(hours=6)
    )
    say(f"{third.number}: (C) broadcast to " + ", ".join(o.recipient for o in sent.offers))
    won = bookings.accept_offer(tf.Actor("mark", "prov-mark"), sent.offers[1].id)
    say(
        f"{third.number}: mark accepted first -> {won.request.state}; withdrawn: "
        + ", ".join(service.repository.get(o).recipient for o in won.withdrawn)
    )
    try:
        bookings.accept_offer(tf.Actor("julia", "prov-julia"), sent.offers[0].id)
    except tf.AlreadyTaken as late:
        say(f"  julia too late: {late}")

    rule = Recurrence(start=START, weekdays=(0,))
    template = booking_request_draft(
        "cust-jo",
        "C-1",
        ("cleaning",),
        HOME,
        TimeWindow(START, START + timedelta(hours=2)),
        customers=[jo.ref],
        subject="Weekly cleaning",
    )
    series = bookings.generate_series(
        olga,
        template,
        rule,
        series_id="S-1",
        now=START,
        horizon=timedelta(weeks=4) - timedelta(days=1),
    )
    say(
        "weekly series over four weeks: "
        + ", ".join(f"{t.data.window.start:%a %d %b}" for t in series)
    )
    again = bookings.generate_series(
        olga,
        template,
        rule,
        series_id="S-1",
        now=START,
        horizon=timedelta(weeks=4) - timedelta(days=1),
    )
    say(f"generated again: {len(again)} new")

    bookings.complete(olga, first.id)
    rated = bookings.rate(jo, first.id, 5, "Spotless, thank you").task
    say(f"{first.number}: done and rated {rated.data.rating}/5 ({rated.data.rating_comment!r})")
    average = bookings.provider_rating(olga, "julia")
    say(f"julia's average rating: {average.average} over {average.count} booking(s)")


def main():
    registry = tf.default_registry()
    tour_operator(registry)
    marketplace(registry)


if __name__ == "__main__":
    main()
