"""Checks for bookings that any repository must pass: first accept wins under concurrency.

    from taskflow.testing.bookings import check_first_accept_wins
    check_first_accept_wins(lambda: MyRepository(dsn, registry))   # each call: a new connection

`repository_factory` returns a repository onto the same storage on every call (for an
in-memory repository, the same object); each accepting provider gets its own `TaskService`
and `Bookings` on its own repository, as two processes of a host would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from taskflow.adapters.bookings import InMemoryProviders
from taskflow.adapters.memory import FixedClock, RecordingNotifier, SequentialIds
from taskflow.application.bookings import AcceptedOffer, Bookings
from taskflow.application.service import TaskService
from taskflow.domain.query import TaskQuery
from taskflow.domain.registry import Registry
from taskflow.domain.values import Actor, CompanyId, TaskId, UserId, UserRef
from taskflow.errors import AlreadyTaken, TaskflowError
from taskflow.kinds import default_registry
from taskflow.kinds.booking_request import Place, Provider, TimeWindow, booking_request_draft
from taskflow.ports import TaskRepository

__all__ = [
    "OPERATOR",
    "RACE_PLACE",
    "RACE_WINDOW",
    "START",
    "RaceResult",
    "check_first_accept_wins",
    "check_first_accept_wins_in_processes",
    "check_race",
    "race_providers",
    "start_broadcast",
]

OPERATOR = Actor(UserId("olga"), CompanyId("homeops"))
"""The operator who opens and broadcasts the race's booking requests."""
START = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
"""The time the race's clock starts at."""
RACE_PLACE = Place("Customer home", 46.05, 14.5)
"""Where the race's requests are for: inside every `race_providers` provider's area."""
RACE_WINDOW = TimeWindow(START + timedelta(days=2), START + timedelta(days=2, hours=3))
"""When the race's requests are for: a window every `race_providers` provider is free in."""


def race_providers(n: int) -> tuple[Provider, ...]:
    """Return `n` providers of one service near the race's customer, each its own company."""
    return tuple(
        Provider(
            id=f"p{i}",
            company=CompanyId(f"prov{i}"),
            name=f"Provider {i}",
            services=("cleaning",),
            base=Place(f"Base {i}", 46.05 + i * 0.01, 14.5),
            radius_km=30,
            availability=(RACE_WINDOW,),
            contacts=(UserRef(CompanyId(f"prov{i}"), UserId(f"pro{i}")),),
        )
        for i in range(1, n + 1)
    )


def _service(repository: TaskRepository, registry: Registry) -> TaskService:
    return TaskService(
        registry=registry,
        repository=repository,
        notifier=RecordingNotifier(),
        clock=FixedClock(START),
        ids=SequentialIds(),
    )


def start_broadcast(
    repository: TaskRepository, providers: tuple[Provider, ...], registry: Registry | None = None
) -> tuple[TaskId, tuple[TaskId, ...]]:
    """Open a booking request on `repository` and broadcast it to `providers`; return the ids."""
    registry = registry if registry is not None else default_registry()
    bookings = Bookings(_service(repository, registry), directory=InMemoryProviders(providers))
    draft = booking_request_draft(
        CompanyId("cust"), "C-1", ("cleaning",), RACE_PLACE, RACE_WINDOW, subject="Race"
    )
    request = bookings.request_booking(OPERATOR, draft)
    sent = bookings.broadcast(
        OPERATOR, request.id, [p.id for p in providers], expires_at=START + timedelta(days=1)
    )
    return request.id, tuple(o.id for o in sent.offers)


@attrs.frozen
class RaceResult:
    """What each provider of a race got: an `AcceptedOffer` or the error it raised."""

    request_id: TaskId
    results: tuple[AcceptedOffer | TaskflowError, ...]

    @property
    def winners(self) -> tuple[AcceptedOffer, ...]:
        """Return the accepts that won (exactly one, if the repository is right)."""
        return tuple(r for r in self.results if isinstance(r, AcceptedOffer))


def check_first_accept_wins(
    repository_factory: Callable[[], TaskRepository],
    *,
    providers: int = 3,
    registry: Registry | None = None,
) -> RaceResult:
    """Let `providers` accept their offers of one broadcast at the same moment, in threads; check one wins.

    Raises `AssertionError` unless exactly one accept won, every other one raised
    `AlreadyTaken`, the request is confirmed for the winner, and every other offer is withdrawn.
    """
    registry = registry if registry is not None else default_registry()
    field = race_providers(providers)
    request_id, offer_ids = start_broadcast(repository_factory(), field, registry)
    barrier = threading.Barrier(providers)
    results: list[AcceptedOffer | TaskflowError | None] = [None] * providers

    def accept(i: int) -> None:
        bookings = Bookings(
            _service(repository_factory(), registry), directory=InMemoryProviders(field)
        )
        actor = Actor(UserId(f"pro{i + 1}"), field[i].company)
        barrier.wait()
        try:
            results[i] = bookings.accept_offer(actor, offer_ids[i])
        except TaskflowError as exc:
            results[i] = exc

    threads = [threading.Thread(target=accept, args=(i,)) for i in range(providers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = tuple(r for r in results if r is not None)
    race = RaceResult(request_id, done)
    check_race(repository_factory(), race, offer_ids)
    return race


def check_race(repository: TaskRepository, race: RaceResult, offer_ids: tuple[TaskId, ...]) -> None:
    """Check a race's outcome in `repository`: one winner, others refused, offers withdrawn."""
    winners = race.winners
    losers = [r for r in race.results if not isinstance(r, AcceptedOffer)]
    assert len(winners) == 1, f"expected exactly one winning accept, got {race.results}"
    assert all(isinstance(r, AlreadyTaken) for r in losers), f"late accepts: {losers}"
    request = repository.get(race.request_id)
    winner = winners[0]
    assert request.state == "confirmed", request.state
    assert request.data.provider_id == winner.offer.data.provider_id
    states = {o: repository.get(o).state for o in offer_ids}
    assert states[winner.offer.id] == "accepted", states
    others = {o: s for o, s in states.items() if o != winner.offer.id}
    assert set(others.values()) <= {"withdrawn"}, others
    accepted = repository.query(TaskQuery(kind="booking_offer", states={"accepted"}))
    assert [t.id for t in accepted if t.data.request_id == race.request_id] == [winner.offer.id]


def _accept_in_process(
    path: str, offer_id: TaskId, number: int, providers: int, barrier: Any, results: Any
) -> None:
    """Accept one offer from a process of its own, on its own SQLite connection (spawn target)."""
    from taskflow.adapters.sqlite import SqliteRepository

    registry = default_registry()
    repository = SqliteRepository(path, registry)
    bookings = Bookings(
        _service(repository, registry), directory=InMemoryProviders(race_providers(providers))
    )
    actor = Actor(UserId(f"pro{number}"), CompanyId(f"prov{number}"))
    barrier.wait()
    try:
        bookings.accept_offer(actor, offer_id)
        results.put((number, "won"))
    except AlreadyTaken:
        results.put((number, "taken"))
    except TaskflowError as exc:
        results.put((number, repr(exc)))
    finally:
        repository.close()


def check_first_accept_wins_in_processes(path: str, *, providers: int = 2) -> list[str]:
    """Race `providers` processes accepting offers of one broadcast on the SQLite file `path`; check one wins.

    Returns each process's outcome ('won' or 'taken'), sorted.
    """
    import multiprocessing

    from taskflow.adapters.sqlite import SqliteRepository

    registry = default_registry()
    repository = SqliteRepository(path, registry)
    try:
        field = race_providers(providers)
        request_id, offer_ids = start_broadcast(repository, field, registry)
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(providers)
        results = context.Queue()
        workers = [
            context.Process(
                target=_accept_in_process,
                args=(path, offer_ids[i], i + 1, providers, barrier, results),
            )
            for i in range(providers)
        ]
        for worker in workers:
            worker.start()
        outcomes = sorted(str(results.get(timeout=120)[1]) for _ in workers)
        for worker in workers:
            worker.join(30)
        assert outcomes == ["taken"] * (providers - 1) + ["won"], outcomes
        request = repository.get(request_id)
        assert request.state == "confirmed", request.state
        states = sorted(repository.get(o).state for o in offer_ids)
        assert states == ["accepted"] + ["withdrawn"] * (providers - 1), states
        return outcomes
    finally:
        repository.close()
