"""Bookings.resolve_task's refusals (BK3, BK5): rights before the lookup, and what may be done instead."""

from datetime import UTC, datetime, timedelta

import pytest

import taskflow as tf
from taskflow import Actor, Bookings, BookingUnchanged, InMemoryBookings, PermissionDenied
from taskflow.kinds.booking import booking_role_matrix, booking_task_draft

START = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
REGISTRY = tf.default_registry()
OFFICE = Actor("bo", "tours", {"backoffice_user"})
AGENT = Actor("agnes", "tours", {"agent"})


def _bookings():
    service = tf.TaskService(
        registry=REGISTRY,
        repository=tf.InMemoryRepository(registry=REGISTRY),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
        authorizer=booking_role_matrix(kinds=REGISTRY.names),
    )
    lookup = InMemoryBookings()
    lookup.add("BK-1")
    return Bookings(service, lookup=lookup)


def _cancel_task(bookings):
    draft = booking_task_draft(
        "tours", "cancel_booking", START + timedelta(days=1), booking_ref="BK-1"
    )
    return bookings.service.open(OFFICE, "booking_task", draft).task


def test_a_role_that_may_not_resolve_is_refused_for_its_rights_not_for_the_booking():
    bookings = _bookings()
    task = _cancel_task(bookings)
    with pytest.raises(PermissionDenied, match="needs the 'resolve' right"):
        bookings.resolve_task(AGENT, task.id)


def test_an_unchanged_booking_refusal_lists_what_the_actor_may_do_now():
    bookings = _bookings()
    task = _cancel_task(bookings)
    with pytest.raises(BookingUnchanged) as refused:
        bookings.resolve_task(OFFICE, task.id)
    allowed = set(bookings.service.allowed_actions(OFFICE, task.id)) - {"mark_resolved"}
    assert allowed
    assert set(refused.value.allowed) == allowed
    assert "allowed now: (none)" not in str(refused.value)
    assert "'change_action'" in str(refused.value)
