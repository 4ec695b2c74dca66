"""Checks for bookings that any repository must pass: first accept wins, one request per occurrence.

    from taskflow.testing.bookings import check_first_accept_wins, check_series_race
    check_first_accept_wins(lambda: MyRepository(dsn, registry))   # each call: a new connection
    check_series_race(lambda: MyRepository(dsn, registry))

`repository_factory` returns a repository onto the same storage on every call (for an
in-memory repository, the same object); each accepting provider (each series generator) gets
its own `TaskService` and `Bookings` on its own repository, as two processes of a host would.
The `..._in_processes` checks run each in an OS process of its own, on a repository named by
a `RepositorySpec`: `("sqlite", path)` or `("postgres", dsn, schema)`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import attrs

from taskflow.adapters.bookings import InMemoryProviders
from taskflow.adapters.memory import FixedClock, RecordingNotifier, SequentialIds
from taskflow.application.bookings import AcceptedOffer, Bookings
from taskflow.application.service import TaskService
from taskflow.domain.query import TaskQuery
from taskflow.domain.registry import Registry
from taskflow.domain.task import NewTask, Task
from taskflow.domain.values import Actor, CompanyId, TaskId, UserId, UserRef
from taskflow.errors import AlreadyTaken, InvalidPayload, TaskflowError
from taskflow.kinds import default_registry
from taskflow.kinds.booking_request import Place, Provider, TimeWindow, booking_request_draft
from taskflow.kinds.recurrence import Recurrence
from taskflow.ports import TaskRepository

__all__ = [
    "OPERATOR",
    "RACE_PLACE",
    "RACE_WINDOW",
    "START",
    "RaceResult",
    "RepositorySpec",
    "check_first_accept_wins",
    "check_first_accept_wins_in_processes",
    "check_race",
    "check_series",
    "check_series_race",
    "check_series_race_in_processes",
    "open_repository",
    "race_providers",
    "series_template",
    "start_broadcast",
]

RepositorySpec = tuple[str, ...]
"""Names a repository a spawned process can open: `("sqlite", path)` or `("postgres", dsn, schema)`."""

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


def open_repository(spec: RepositorySpec, registry: Registry | None = None) -> TaskRepository:
    """Open the repository `spec` names (`("sqlite", path)` or `("postgres", dsn, schema)`)."""
    registry = registry if registry is not None else default_registry()
    if spec[0] == "sqlite" and len(spec) == 2:
        from taskflow.adapters.sqlite import SqliteRepository

        return SqliteRepository(spec[1], registry)
    if spec[0] == "postgres" and len(spec) == 3:
        from taskflow.adapters.postgres import PostgresRepository

        return PostgresRepository(spec[1], registry, schema=spec[2], pool_size=2)
    msg = f"a repository spec is ('sqlite', path) or ('postgres', dsn, schema), got {spec!r}"
    raise InvalidPayload(msg, field="spec")


def _close(repository: TaskRepository) -> None:
    close = getattr(repository, "close", None)
    if close is not None:
        close()


def _spec(target: str | RepositorySpec) -> RepositorySpec:
    return ("sqlite", target) if isinstance(target, str) else tuple(target)


def _accept_in_process(
    spec: RepositorySpec, offer_id: TaskId, number: int, providers: int, barrier: Any, results: Any
) -> None:
    """Accept one offer from a process of its own, on its own repository (spawn target)."""
    registry = default_registry()
    repository = open_repository(spec, registry)
    bookings = Bookings(
        _service(repository, registry), directory=InMemoryProviders(race_providers(providers))
    )
    actor = Actor(UserId(f"pro{number}"), CompanyId(f"prov{number}"))
    try:
        barrier.wait(timeout=120)
        bookings.accept_offer(actor, offer_id)
        results.put((number, "won"))
    except AlreadyTaken:
        results.put((number, "taken"))
    except Exception as exc:  # reported to the parent, which fails the check with it
        results.put((number, repr(exc)))
    finally:
        _close(repository)


def check_first_accept_wins_in_processes(
    target: str | RepositorySpec, *, providers: int = 2
) -> list[str]:
    """Race `providers` processes accepting offers of one broadcast; check exactly one wins.

    `target` is a SQLite file's path or a `RepositorySpec` (PostgreSQL: `("postgres", dsn,
    schema)`); every process opens its own repository on it, as separate app servers would.
    Returns each process's outcome ('won' or 'taken'), sorted. Raises `AssertionError` unless
    one won, the others got `AlreadyTaken`, the request is confirmed once and the other offers
    are withdrawn.
    """
    import multiprocessing

    spec = _spec(target)
    registry = default_registry()
    repository = open_repository(spec, registry)
    try:
        field = race_providers(providers)
        request_id, offer_ids = start_broadcast(repository, field, registry)
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(providers)
        results = context.Queue()
        workers = [
            context.Process(
                target=_accept_in_process,
                args=(spec, offer_ids[i], i + 1, providers, barrier, results),
            )
            for i in range(providers)
        ]
        for worker in workers:
            worker.start()
        outcomes = sorted(str(results.get(timeout=180)[1]) for _ in workers)
        for worker in workers:
            worker.join(30)
        assert outcomes == ["taken"] * (providers - 1) + ["won"], outcomes
        request = repository.get(request_id)
        assert request.state == "confirmed", request.state
        assert len(request.data.provider_id or "") > 0, request.data
        confirms = [e for e in request.history if e.to_state == "confirmed"]
        assert len(confirms) == 1, [e.action for e in request.history]
        states = sorted(repository.get(o).state for o in offer_ids)
        assert states == ["accepted"] + ["withdrawn"] * (providers - 1), states
        return outcomes
    finally:
        _close(repository)


# --- recurring series: one booking request per occurrence, however many generate at once --------

SERIES_ID = "S-race"
SERIES_WEEKS = 4


def series_template() -> tuple[NewTask, Recurrence]:
    """Return the race's booking request draft and its weekly rule (four occurrences from `START`)."""
    start = RACE_WINDOW.start
    draft = booking_request_draft(
        CompanyId("cust"), "C-1", ("cleaning",), RACE_PLACE, RACE_WINDOW, subject="Weekly cleaning"
    )
    return draft, Recurrence(start=start, weekdays=(start.weekday(),), count=SERIES_WEEKS)


class _Gate:
    """A repository that holds its generator at a barrier once it looked for an occurrence.

    So every generator has found the first occurrence missing before any of them commits it:
    the race the storage's unique key must decide.
    """

    def __init__(self, inner: TaskRepository, barrier: Any) -> None:
        self._inner = inner
        self._barrier = barrier
        self._held = False

    def query(self, query: TaskQuery) -> list[Task]:
        """Answer `query`; the first time it looks for an occurrence, wait for the other generators."""
        found = self._inner.query(query)
        if "occurrence_key" in query.where and not self._held:
            self._held = True
            self._barrier.wait(timeout=120)
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _generate(
    repository: TaskRepository, registry: Registry, number: int, barrier: Any
) -> tuple[Task, ...]:
    """Generate the race's series through a service of its own, held at `barrier` once."""
    service = TaskService(
        registry=registry,
        repository=cast(TaskRepository, _Gate(repository, barrier)),
        notifier=RecordingNotifier(),
        clock=FixedClock(START),
        ids=SequentialIds(f"gen{number}"),
    )
    bookings = Bookings(service, directory=InMemoryProviders(()))
    draft, rule = series_template()
    return bookings.generate_series(
        OPERATOR,
        draft,
        rule,
        series_id=SERIES_ID,
        now=START,
        horizon=timedelta(weeks=SERIES_WEEKS + 1),
    )


def check_series(repository: TaskRepository, made: list[int]) -> None:
    """Check the race's series in `repository`: one request per occurrence, as many as were made."""
    found = repository.query(
        TaskQuery(kind="booking_request", where={"series_id": TaskId(SERIES_ID)})
    )
    keys = sorted(f"{t.data.series_id}@{t.data.occurrence.isoformat()}" for t in found)
    assert len(keys) == len(set(keys)), f"an occurrence has two requests: {keys}"
    assert len(keys) == SERIES_WEEKS, keys
    assert sum(made) == SERIES_WEEKS, f"the generators made {made} requests, stored {len(keys)}"


def check_series_race(
    repository_factory: Callable[[], TaskRepository],
    *,
    generators: int = 2,
    registry: Registry | None = None,
) -> list[int]:
    """Let `generators` threads generate one recurring series at the same moment; check none doubles.

    Every generator finds the first occurrence missing before any commits it; the repository
    must refuse all but one commit of it (the occurrence's once-only mark). Returns how many
    requests each generator made. Raises `AssertionError` if an occurrence has two requests.
    """
    registry = registry if registry is not None else default_registry()
    barrier = threading.Barrier(generators)
    made: list[int | BaseException] = [0] * generators

    def generate(i: int) -> None:
        repository = repository_factory()
        try:
            made[i] = len(_generate(repository, registry, i + 1, barrier))
        except BaseException as exc:  # reported below, with the others' outcomes
            made[i] = exc
            barrier.abort()

    threads = [threading.Thread(target=generate, args=(i,)) for i in range(generators)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failed = [m for m in made if isinstance(m, BaseException)]
    assert not failed, f"a generator failed: {failed!r}"
    counts = [m for m in made if isinstance(m, int)]
    check_series(repository_factory(), counts)
    return counts


def _generate_in_process(spec: RepositorySpec, number: int, barrier: Any, results: Any) -> None:
    """Generate the race's series from a process of its own (spawn target)."""
    registry = default_registry()
    repository = open_repository(spec, registry)
    try:
        results.put((number, len(_generate(repository, registry, number, barrier))))
    except Exception as exc:  # reported to the parent, which fails the check with it
        results.put((number, repr(exc)))
    finally:
        _close(repository)


def check_series_race_in_processes(
    target: str | RepositorySpec, *, generators: int = 2
) -> list[int]:
    """Race `generators` processes generating one recurring series on `target`; check none doubles.

    `target` is a SQLite file's path or a `RepositorySpec`. Returns how many requests each
    process made, in process order.
    """
    import multiprocessing

    spec = _spec(target)
    repository = open_repository(spec)  # created before the processes open it
    try:
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(generators)
        results = context.Queue()
        workers = [
            context.Process(target=_generate_in_process, args=(spec, i + 1, barrier, results))
            for i in range(generators)
        ]
        for worker in workers:
            worker.start()
        outcomes = sorted(results.get(timeout=180) for _ in workers)
        for worker in workers:
            worker.join(30)
        errors = [o for _, o in outcomes if not isinstance(o, int)]
        assert not errors, f"a generator failed: {errors}"
        made = [int(o) for _, o in outcomes]
        check_series(repository, made)
        return made
    finally:
        _close(repository)
