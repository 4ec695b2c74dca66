"""Bookings broadcast benchmark: requests x offers with first accept wins, against a bare dict baseline.

Each request is opened, broadcast to `--offers` providers (one offer task each), the second
provider accepts first (the request is confirmed, the other offers withdrawn in one unit of
work) and the first provider's late accept is refused. The baseline does the same job with
plain dicts in the same run. Both must end with every request confirmed. The sides run
interleaved in every round (`--repeat`), each side's best round counts (`_runner`).

Run: .venv/bin/python benchmarks/bench_bookings.py [--requests N] [--offers N] [--repeat N]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta

import _runner

import taskflow as tf
from taskflow.adapters.bookings import InMemoryProviders
from taskflow.kinds.booking_request import Provider, booking_request_draft
from taskflow.testing.bookings import OPERATOR, RACE_PLACE, RACE_WINDOW, START, race_providers

DEFAULT_REQUESTS = 10_000
DEFAULT_OFFERS = 5


def bench_taskflow(requests: int, offers: int) -> float:
    """Return seconds for the broadcast job through `Bookings` on the in-memory repository."""
    return _runner.time_run(taskflow_side(requests, offers)())


def taskflow_side(requests: int, offers: int) -> _runner.Side:
    """Return the taskflow side: a fresh service prepared untimed, then the broadcast job."""
    return lambda: _taskflow_job(requests, offers)


def _taskflow_job(requests: int, offers: int) -> Callable[[], None]:
    registry = tf.default_registry()
    providers = race_providers(offers)
    service = tf.TaskService(
        registry=registry,
        repository=tf.InMemoryRepository(registry=registry),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )
    bookings = tf.Bookings(service, directory=InMemoryProviders(providers))
    ids = [p.id for p in providers]
    first, second = providers[0], providers[1 % offers]

    def job() -> None:
        for i in range(requests):
            _one_request(bookings, ids, first, second, offers, i)

    return job


def _one_request(
    bookings: tf.Bookings,
    ids: list[str],
    first: Provider,
    second: Provider,
    offers: int,
    i: int,
) -> None:
    """Open request `i`, broadcast it, let the second provider win and refuse the first's late accept."""
    draft = booking_request_draft("cust", f"C-{i}", ("cleaning",), RACE_PLACE, RACE_WINDOW)
    request = bookings.request_booking(OPERATOR, draft)
    sent = bookings.broadcast(OPERATOR, request.id, ids, expires_at=START + timedelta(days=1))
    won = bookings.accept_offer(
        tf.Actor(second.contacts[0].user, second.company), sent.offers[1 % offers].id
    )
    assert won.request.state == "confirmed"
    if offers > 1:
        try:
            bookings.accept_offer(
                tf.Actor(first.contacts[0].user, first.company), sent.offers[0].id
            )
        except tf.AlreadyTaken:
            pass
        else:  # pragma: no cover - the benchmark depends on this refusal
            raise SystemExit("a late accept won")


def bench_baseline(requests: int, offers: int) -> float:
    """Return seconds for the same job with plain dicts: requests, offers, first accept wins."""
    return _runner.time_run(baseline_side(requests, offers)())


def baseline_side(requests: int, offers: int) -> _runner.Side:
    """Return the baseline side: the same job with plain dicts."""
    return lambda: lambda: _baseline_job(requests, offers)


def _baseline_job(requests: int, offers: int) -> None:
    store: dict[str, dict[str, object]] = {}
    for i in range(requests):
        rid = f"r{i}"
        offer_ids = [f"{rid}-o{j}" for j in range(offers)]
        store[rid] = {"state": "requested", "customer": "cust", "ref": f"C-{i}", "history": []}
        for j, oid in enumerate(offer_ids):
            store[oid] = {"state": "offered", "request": rid, "provider": f"p{j}", "history": []}
        store[rid].update(state="broadcast", offers=offer_ids)
        for k in (1 % offers, 0) if offers > 1 else (0,):
            offer, request = store[offer_ids[k]], store[rid]
            if request["state"] != "broadcast" or offer["state"] != "offered":
                continue  # late: already taken
            offer["state"] = "accepted"
            request.update(state="confirmed", provider=offer["provider"])
            for other in offer_ids:
                if store[other]["state"] == "offered":
                    store[other]["state"] = "withdrawn"
        assert store[rid]["state"] == "confirmed"


def main(argv: Sequence[str] | None = None) -> int:
    """Run both in one process and print requests per second and the ratio."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS)
    parser.add_argument("--offers", type=int, default=DEFAULT_OFFERS)
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the best counts")
    options = parser.parse_args(argv)
    n, k = options.requests, options.offers
    sides = {"baseline": baseline_side(n, k), "taskflow": taskflow_side(n, k)}
    best = _runner.best_times(sides, options.repeat)
    base, flow = best["baseline"], best["taskflow"]
    print(f"broadcast: {n} requests x {k} offers, first accept wins, late accept refused")
    print(f"hand-written dicts: {n / base:,.0f} requests/s")
    print(f"Bookings (in memory): {n / flow:,.0f} requests/s, {flow / base:.1f}x the baseline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
