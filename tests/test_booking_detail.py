"""The booking's detail page (BK4): every task of one booking, parked and resolved ones too."""

from datetime import UTC, datetime, timedelta

import pytest

import taskflow as tf
from taskflow import Actor, Bookings, InvalidPayload
from taskflow.kinds.booking import (
    BookingAction,
    ChangeAction,
    MarkResolved,
    booking_role_matrix,
    booking_task_draft,
)

START = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
REGISTRY = tf.default_registry()
OFFICE = Actor("bo", "tours", {"backoffice_user"})


def _bookings(authorizer=None):
    more = {} if authorizer is None else {"authorizer": authorizer}
    service = tf.TaskService(
        registry=REGISTRY,
        repository=tf.InMemoryRepository(registry=REGISTRY),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
        **more,
    )
    return Bookings(service)


def _task(bookings, action, booking_ref):
    draft = booking_task_draft("tours", action, START + timedelta(days=1), booking_ref=booking_ref)
    return bookings.service.open(OFFICE, "booking_task", draft).task


def test_the_bookings_detail_lists_its_open_parked_and_resolved_tasks_and_no_other():
    bookings = _bookings()
    service = bookings.service
    update = _task(bookings, "update_booking", "BK-7")
    parked = _task(bookings, "task", "BK-7")
    service.act(OFFICE, parked.id, "change_action", ChangeAction(BookingAction.IGNORE))
    done = _task(bookings, "refund", "BK-7")
    service.act(OFFICE, done.id, "mark_resolved", MarkResolved())
    _task(bookings, "cancel_booking", "BK-8")
    detail = bookings.booking_tasks(OFFICE, "BK-7")
    assert [t.id for t in detail] == [update.id, parked.id, done.id]
    # The tasks page, by contrast, leaves the parked task out.
    assert parked.id not in [t.id for t in bookings.tasks_page(OFFICE, booking_ref="BK-7")]


def test_the_bookings_detail_shows_nothing_to_a_role_that_may_not_see_booking_tasks():
    bookings = _bookings(booking_role_matrix())
    _task(bookings, "update_booking", "BK-7")
    guide = Actor("gus", "tours", {"guide"})
    assert bookings.booking_tasks(guide, "BK-7") == []
    assert len(bookings.booking_tasks(OFFICE, "BK-7")) == 1


def test_the_bookings_detail_refuses_a_reference_that_is_not_text():
    with pytest.raises(InvalidPayload) as refused:
        _bookings().booking_tasks(OFFICE, 7)
    assert refused.value.field == "booking_ref"


def test_the_tasks_page_filters_by_a_due_date_range():
    bookings = _bookings()
    early = _task(bookings, "refund", "BK-1")  # due START + 1 day
    draft = booking_task_draft("tours", "refund", START + timedelta(days=5), booking_ref="BK-2")
    late = bookings.service.open(OFFICE, "booking_task", draft).task
    day = timedelta(days=1)
    assert [t.id for t in bookings.tasks_page(OFFICE, due_from=START + 2 * day)] == [late.id]
    assert [t.id for t in bookings.tasks_page(OFFICE, due_until=START + 2 * day)] == [early.id]
    window = bookings.tasks_page(OFFICE, due_from=START + day, due_until=START + 5 * day)
    assert [t.id for t in window] == [early.id, late.id]
    assert bookings.tasks_page(OFFICE, due_from=START + 2 * day, due_until=START + 4 * day) == []
