"""A task kind of the host's own, registered without changing taskflow: sample requests.

A buyer asks a supplier for product samples. The supplier ships them with a carrier and a
tracking number; a buyer with the 'quality' role confirms they arrived, or reports them
missing, which sends the task back to the supplier to ship again.

The kind is three small parts: a data class, payload classes, and a workflow that reads top
to bottom like the process. `tests/test_custom_kind.py` runs taskflow's stateful checks on it.

Run: .venv/bin/python examples/custom_kind.py
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

import taskflow as tf
from taskflow import (
    Actor,
    InvalidPayload,
    NewTask,
    Side,
    State,
    Task,
    TaskKind,
    Transition,
    Workflow,
    common_actions,
)

# -- data and payloads -------------------------------------------------------------------


@attrs.frozen
class SampleRequest:
    """What the buyer asks for, and where the shipment stands."""

    product: str
    quantity: int = 1
    carrier: str | None = None
    tracking: str | None = None
    shipments: int = 0


@attrs.frozen
class Ship:
    """The supplier's shipment: carrier and tracking number."""

    carrier: str
    tracking: str


@attrs.frozen
class ReportMissing:
    """The buyer's report that nothing arrived."""

    note: str


# -- rules -------------------------------------------------------------------------------

CARRIERS = ("DHL", "UPS", "FedEx", "Post")
MAX_SHIPMENTS = 3


def check_ship(task: Task, payload: Ship, actor: Actor, at: datetime) -> None:
    """Refuse unknown carriers and blank tracking numbers."""
    if payload.carrier not in CARRIERS:
        msg = f"carrier {payload.carrier!r} is not one of {CARRIERS}"
        raise InvalidPayload(msg, field="carrier", action="ship")
    if not payload.tracking.strip():
        msg = "a shipment needs a tracking number"
        raise InvalidPayload(msg, field="tracking", action="ship")


def shipments_left(task: Task, actor: Actor) -> str | None:
    """After three lost shipments the buyer must cancel: shipping again is not offered."""
    if task.data.shipments >= MAX_SHIPMENTS:
        return f"{MAX_SHIPMENTS} shipments were sent already; cancel the request instead"
    return None


def ship(task: Task, payload: Ship, actor: Actor, at: datetime) -> dict[str, Any]:
    """Record the shipment on the task's data."""
    data = attrs.evolve(
        task.data,
        carrier=payload.carrier,
        tracking=payload.tracking,
        shipments=task.data.shipments + 1,
    )
    return {"data": data}


def check_missing(task: Task, payload: ReportMissing, actor: Actor, at: datetime) -> None:
    """A report of missing samples needs a note for the supplier."""
    if not payload.note.strip():
        msg = "say what is missing: the note is blank"
        raise InvalidPayload(msg, field="note", action="report_missing")


BUYER, SUPPLIER = Side.REQUESTER, Side.RECIPIENT

SAMPLE_WORKFLOW = Workflow(
    name="sample_request",
    description="A buyer asks for samples; the supplier ships; the buyer's quality team confirms.",
    initial="requested",
    states=(
        State("requested", waiting_on=SUPPLIER),
        State("shipped", waiting_on=BUYER),
        State("received", final=True),
        State("cancelled", final=True),
    ),
    transitions=(
        Transition(
            "ship", "requested", "shipped", SUPPLIER,
            payload=Ship, guard=shipments_left, check=check_ship, effect=ship,
            events=("samples_shipped",),
        ),
        Transition(
            "confirm", "shipped", "received", BUYER, roles={"quality"},
            events=("samples_received",),
        ),
        Transition(
            "report_missing", "shipped", "requested", BUYER,
            payload=ReportMissing, check=check_missing, events=("samples_missing",),
        ),
        Transition("cancel", {"requested", "shipped"}, "cancelled", BUYER),
        *common_actions(),
    ),
)  # fmt: skip

SAMPLE_REQUEST = TaskKind("sample_request", SampleRequest, SAMPLE_WORKFLOW, "Product samples")


def main() -> None:
    registry = tf.default_registry(SAMPLE_REQUEST)
    clock = tf.FixedClock(datetime(2026, 11, 23, 9, tzinfo=UTC))
    notifier = tf.RecordingNotifier()
    service = tf.TaskService(
        registry=registry,
        repository=tf.InMemoryRepository(),
        notifier=notifier,
        clock=clock,
        ids=tf.SequentialIds("smp"),
    )
    buyer = Actor("quinn", "acme", {"quality"})
    trainee = Actor("tom", "acme")
    supplier = Actor("samuel", "supco")

    draft = NewTask("Samples of Solvent X-200", "supco", SampleRequest("Solvent X-200", 3))
    task = service.open(buyer, "sample_request", draft).task
    print(f"{task.number}: '{task.state}', waiting on {task.ball_company}")
    for attempt in (Ship("Pigeon", "123"), Ship("DHL", "JD0146")):
        try:
            task = service.act(supplier, task.id, "ship", attempt).task
        except tf.TaskflowError as error:
            print(f"refused: {error}")
    print(f"shipped with {task.data.carrier} {task.data.tracking}: '{task.state}'")
    clock.advance(timedelta(days=2))
    try:
        service.act(trainee, task.id, "confirm")
    except tf.PermissionDenied as error:
        print(f"refused: {error}")
    task = service.act(buyer, task.id, "report_missing", ReportMissing("Box never came")).task
    print(f"reported missing: back to '{task.state}', waiting on {task.ball_company}")
    task = service.act(supplier, task.id, "ship", Ship("UPS", "1Z999")).task
    task = service.act(buyer, task.id, "confirm").task
    print(f"{task.number}: '{task.state}' after {task.data.shipments} shipments")
    print("notified:", ", ".join(f"{n.recipient} ({n.event})" for n in notifier.sent))


if __name__ == "__main__":
    main()
