"""A stateful check of broadcasts (BR2) for any repository: first accept wins, also at one moment.

    from taskflow.testing.broadcast import broadcast_machine
    TestBroadcasts = broadcast_machine().TestCase                      # in memory
    TestOnMyStore = broadcast_machine(lambda: my_storage_factory()).TestCase

The machine broadcasts requests to 1-4 providers, lets providers accept (one at a time, and two
at the same moment through two services on one storage, in threads), decline, and lets time
pass with the host's scheduler expiring broadcasts. After every step it checks that a request
has at most one accepted offer, that a confirmed request's accepted offer is its provider's
and no offer of it is still open, and that a request returned to the operator has no open
offer. Needs the `testing` extra (hypothesis).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from taskflow.adapters.bookings import InMemoryProviders
from taskflow.adapters.memory import (
    FixedClock,
    InMemoryRepository,
    RecordingNotifier,
    SequentialIds,
)
from taskflow.application.bookings import Bookings
from taskflow.application.service import TaskService
from taskflow.domain.query import TaskQuery
from taskflow.domain.registry import Registry
from taskflow.domain.values import Actor, CompanyId, TaskId, UserId
from taskflow.errors import ActionNotAllowed, AlreadyTaken, OfferExpired
from taskflow.kinds import default_registry
from taskflow.kinds.booking_request import booking_request_draft
from taskflow.ports import TaskRepository
from taskflow.testing.bookings import OPERATOR, RACE_PLACE, RACE_WINDOW, START, race_providers

__all__ = ["BroadcastMachine", "StorageFactory", "broadcast_machine", "in_memory_storage"]

StorageFactory = Callable[[], Callable[[], TaskRepository]]
"""Called once per run: makes fresh storage and returns a factory of repositories onto it."""

_REFUSED = (AlreadyTaken, OfferExpired, ActionNotAllowed)


def in_memory_storage(registry: Registry | None = None) -> StorageFactory:
    """Return a storage factory of a fresh in-memory repository per run (every call: the same one)."""

    def new_storage() -> Callable[[], TaskRepository]:
        repository = InMemoryRepository(registry=registry or default_registry())
        return lambda: repository

    return new_storage


class BroadcastMachine(RuleBasedStateMachine):
    """Broadcast requests, let providers accept (two at the same moment, too), decline and expire."""

    new_storage: ClassVar[StorageFactory]
    registry: ClassVar[Registry]
    providers: ClassVar[int] = 4

    requests = Bundle("requests")

    def __init__(self) -> None:
        super().__init__()
        self.field = race_providers(self.providers)
        self.connect = type(self).new_storage()
        self.opened: list[TaskRepository] = []
        self.clock = FixedClock(START)
        self.ids = SequentialIds()
        self.repository = self._repository()
        self.bookings = self._bookings()

    def _repository(self) -> TaskRepository:
        repository = self.connect()
        self.opened.append(repository)
        return repository

    def _bookings(self, repository: TaskRepository | None = None) -> Bookings:
        service = TaskService(
            registry=self.registry,
            repository=repository or self.repository,
            notifier=RecordingNotifier(),
            clock=self.clock,
            ids=self.ids,
        )
        return Bookings(service, directory=InMemoryProviders(self.field))

    def _pro(self, offer_id: TaskId) -> Actor:
        offer = self.repository.get(offer_id)
        return Actor(UserId(f"pro{offer.data.provider_id[1:]}"), CompanyId(offer.recipient))

    @rule(target=requests, n=st.integers(1, 4), hours=st.integers(1, 5))
    def broadcast(self, n: int, hours: int) -> tuple[TaskId, tuple[TaskId, ...]]:
        """Open a request and broadcast it to `n` providers, expiring in `hours`."""
        draft = booking_request_draft(
            CompanyId("cust"), "C-1", ("cleaning",), RACE_PLACE, RACE_WINDOW
        )
        request = self.bookings.request_booking(OPERATOR, draft)
        chosen = [p.id for p in self.field[: min(n, len(self.field))]]
        expires = self.clock.now() + timedelta(hours=hours)
        sent = self.bookings.broadcast(OPERATOR, request.id, chosen, expires_at=expires)
        return request.id, tuple(o.id for o in sent.offers)

    @rule(sent=requests, i=st.integers(0, 3))
    def accept(self, sent: tuple[TaskId, tuple[TaskId, ...]], i: int) -> None:
        """One provider accepts its offer (refused if taken, expired or answered)."""
        offers = sent[1]
        offer_id = offers[i % len(offers)]
        with contextlib.suppress(*_REFUSED):
            self.bookings.accept_offer(self._pro(offer_id), offer_id)

    @rule(sent=requests, i=st.integers(0, 3), j=st.integers(0, 3))
    def accept_at_the_same_moment(
        self, sent: tuple[TaskId, tuple[TaskId, ...]], i: int, j: int
    ) -> None:
        """Two providers accept at once, through two services on two repositories of one storage."""
        offers = sent[1]
        pair = [offers[i % len(offers)], offers[j % len(offers)]]
        services = [self._bookings(self._repository()), self._bookings(self._repository())]
        actors = [self._pro(o) for o in pair]
        barrier = threading.Barrier(2)
        won: list[TaskId] = []
        failed: list[BaseException] = []

        def go(k: int) -> None:
            barrier.wait()
            try:
                services[k].accept_offer(actors[k], pair[k])
                won.append(pair[k])
            except _REFUSED:
                pass
            except BaseException as exc:  # reported below, in the machine's thread
                failed.append(exc)

        threads = [threading.Thread(target=go, args=(k,)) for k in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failed, f"an accept failed: {failed!r}"
        assert len(won) <= 1, f"two accepts won at the same moment: {won}"

    @rule(sent=requests, i=st.integers(0, 3))
    def decline(self, sent: tuple[TaskId, tuple[TaskId, ...]], i: int) -> None:
        """One provider declines its offer (refused once it was answered)."""
        offers = sent[1]
        offer_id = offers[i % len(offers)]
        with contextlib.suppress(ActionNotAllowed):
            self.bookings.decline_offer(self._pro(offer_id), offer_id)

    @rule(hours=st.integers(1, 4))
    def time_passes_and_the_scheduler_expires_broadcasts(self, hours: int) -> None:
        """Move the clock on and run the host's scheduler call."""
        self.clock.advance(timedelta(hours=hours))
        self.bookings.expire_broadcasts(self.clock.now())

    @invariant()
    def each_request_has_at_most_one_accepted_offer_and_it_is_the_winner(self) -> None:
        """At most one accepted offer per request: the confirmed provider's; no open offer left."""
        for request in self.repository.query(TaskQuery(kind="booking_request")):
            offers = [self.repository.get(o) for o in request.data.offer_ids]
            accepted = [o for o in offers if o.state == "accepted"]
            assert len(accepted) <= 1, [o.number for o in accepted]
            if request.state == "confirmed":
                assert [o.data.provider_id for o in accepted] == [request.data.provider_id]
                assert all(o.state != "offered" for o in offers)
            else:
                assert accepted == []
            if request.state == "requested":
                assert all(o.state != "offered" for o in offers)

    def teardown(self) -> None:
        """Close every repository the run opened (those that can be closed)."""
        for repository in self.opened:
            close: Any = getattr(repository, "close", None)
            if close is not None:
                close()


def broadcast_machine(
    new_storage: StorageFactory | None = None,
    *,
    registry: Registry | None = None,
    providers: int = 4,
) -> type[BroadcastMachine]:
    """Return a broadcast state machine class on fresh storage per run (default: in memory).

    `new_storage` is called at the start of each run; it makes empty storage and returns a
    factory giving a repository onto it on every call (for memory, the same repository), as
    two processes of a host would open.
    """
    reg = registry if registry is not None else default_registry()
    namespace = {
        "new_storage": staticmethod(new_storage or in_memory_storage(reg)),
        "registry": reg,
        "providers": providers,
        "__doc__": BroadcastMachine.__doc__,
    }
    return type("BroadcastMachine", (BroadcastMachine,), namespace)
