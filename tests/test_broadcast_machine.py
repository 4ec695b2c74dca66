"""The test kit's broadcast machine (taskflow.testing.broadcast): on memory, on SQLite, and that it fails."""

import itertools
import tempfile
from pathlib import Path

import attrs
import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

import taskflow as tf
from taskflow import Bookings
from taskflow.kinds.booking_request import ACCEPT, AcceptOffer
from taskflow.testing.broadcast import broadcast_machine

REGISTRY = tf.default_registry()
FEW = settings(max_examples=8, stateful_step_count=8, deadline=None)


def _sqlite_storage():
    folder = Path(tempfile.mkdtemp(prefix="broadcasts-"))
    numbers = itertools.count()

    def new_storage():
        path = folder / f"run-{next(numbers)}.db"
        return lambda: tf.SqliteRepository(path, REGISTRY)

    return new_storage


def test_the_broadcast_machine_holds_on_sqlite_with_two_connections():
    machine = broadcast_machine(_sqlite_storage(), registry=REGISTRY, providers=3)
    run_state_machine_as_test(machine, settings=FEW)


class _AcceptOnly(Bookings):
    """A broken accept: the offer is accepted, but the request is not confirmed nor others withdrawn."""

    def accept_offer(self, actor, offer_id):
        self.service.act(actor, offer_id, ACCEPT, AcceptOffer())


def test_the_broadcast_machine_fails_when_an_accept_does_not_confirm_the_request():
    base = broadcast_machine(registry=REGISTRY)

    class Broken(base):
        def _bookings(self, repository=None):
            good = super()._bookings(repository)
            return _AcceptOnly(good.service, directory=good.directory)

    with pytest.raises(AssertionError):
        run_state_machine_as_test(
            Broken, settings=settings(FEW, max_examples=50, report_multiple_bugs=False)
        )


def test_each_machine_class_keeps_its_own_storage_and_provider_count():
    one, two = broadcast_machine(providers=2), broadcast_machine(providers=3)
    assert (one.providers, two.providers) == (2, 3)
    assert one().repository is not two().repository
    assert attrs.has(type(one().field[0]))
