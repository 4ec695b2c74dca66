"""docs/kinds/booking.md and booking_request.md describe every `Bookings` call of their kind.

Each public call of `taskflow.application.bookings.Bookings` belongs to one page (booking tasks
or booking requests); the page must name it, so a host reading the kind's page finds how the
host's bookings, providers and scheduler reach taskflow. The python blocks themselves are run
by tests/test_docs_examples.py.
"""

import inspect
from pathlib import Path

import pytest

from taskflow.application.bookings import BOOKING_MADE_TOPIC, Bookings
from taskflow.kinds.booking import BOOKING_TASK
from taskflow.kinds.booking_request import BOOKING_OFFER, BOOKING_REQUEST

ROOT = Path(__file__).resolve().parent.parent
TASKS = (ROOT / "docs" / "kinds" / "booking.md").read_text(encoding="utf-8")
REQUESTS = (ROOT / "docs" / "kinds" / "booking_request.md").read_text(encoding="utf-8")

TASK_CALLS = {"booking_made", "booking_made_message", "resolve_task", "tasks_page", "booking_tasks"}
PUBLIC = {
    name
    for name, member in inspect.getmembers(Bookings)
    if not name.startswith("_") and callable(member)
}


def test_every_public_bookings_call_belongs_to_one_page():
    assert TASK_CALLS <= PUBLIC


@pytest.mark.parametrize("call", sorted(TASK_CALLS))
def test_the_booking_task_page_names_each_booking_task_call(call):
    assert f"{call}(" in TASKS


@pytest.mark.parametrize("call", sorted(PUBLIC - TASK_CALLS))
def test_the_booking_request_page_names_each_request_call(call):
    assert f"{call}(" in REQUESTS


def test_the_booking_task_page_names_the_bus_topic_the_lookup_and_its_refusal():
    assert f'"{BOOKING_MADE_TOPIC}"' in TASKS
    for name in ("BookingLookup", "InMemoryBookings", "BookingUnchanged"):
        assert name in TASKS
    # The lookup is asked by resolve_task only: the page must say so.
    assert 'a plain `service.act(actor, task_id, "mark_resolved", ...)` does not see' in TASKS


@pytest.mark.parametrize(
    ("page", "kinds"),
    [(TASKS, (BOOKING_TASK,)), (REQUESTS, (BOOKING_REQUEST, BOOKING_OFFER))],
)
def test_each_page_has_who_may_do_what_and_links_its_generated_diagrams(page, kinds):
    assert "## Who may do what" in page
    for kind in kinds:
        assert f"../workflows/{kind.name}.md" in page
