"""Recurring series under concurrency (issue 12): two generators never make one occurrence twice.

Each generator finds the first occurrence missing before either commits it (the check's gate);
the occurrence's once-only mark, stored with the request's commit, makes the storage refuse the
second commit, and that generator skips the occurrence.
"""

from datetime import timedelta

import attrs
import pytest

import taskflow as tf
from taskflow.adapters.bookings import InMemoryProviders
from taskflow.application.bookings import OCCURRENCE_MARK, Bookings
from taskflow.testing.bookings import (
    OPERATOR,
    SERIES_ID,
    START,
    check_series_race,
    check_series_race_in_processes,
    series_template,
)

REGISTRY = tf.default_registry()


def test_two_generators_in_threads_on_memory_make_each_occurrence_once():
    repository = tf.InMemoryRepository(registry=REGISTRY)
    assert sum(check_series_race(lambda: repository)) == 4


def test_two_generators_in_threads_on_sqlite_make_each_occurrence_once(tmp_path):
    path = tmp_path / "series.db"
    opened = []

    def factory():
        repository = tf.SqliteRepository(path, REGISTRY)
        opened.append(repository)
        return repository

    try:
        assert sum(check_series_race(factory, generators=3)) == 4
    finally:
        for repository in opened:
            repository.close()


def test_two_generators_in_processes_on_sqlite_make_each_occurrence_once(tmp_path):
    assert sum(check_series_race_in_processes(str(tmp_path / "series.db"))) == 4


def _service(repository):
    return tf.TaskService(
        registry=REGISTRY,
        repository=repository,
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )


def test_each_generated_request_is_committed_with_its_occurrence_mark():
    repository = tf.InMemoryRepository(registry=REGISTRY)
    service = _service(repository)
    draft, rule = series_template()
    made = Bookings(service, directory=InMemoryProviders(())).generate_series(
        OPERATOR, draft, rule, series_id=SERIES_ID, now=START, horizon=timedelta(weeks=5)
    )
    assert len(made) == 4
    for task in made:
        key = f"{SERIES_ID}@{task.data.occurrence.isoformat()}"
        assert repository.marked(OCCURRENCE_MARK + key)


def test_a_generator_skips_an_occurrence_whose_mark_another_commit_stored():
    # As if another generator committed the first occurrence between this one's look and commit.
    repository = tf.InMemoryRepository(registry=REGISTRY)
    service = _service(repository)
    draft, rule = series_template()
    first = tf.UnitOfWork(service)
    first.mark(OCCURRENCE_MARK + f"{SERIES_ID}@{rule.start.isoformat()}")
    first.commit()
    made = Bookings(service, directory=InMemoryProviders(())).generate_series(
        OPERATOR, draft, rule, series_id=SERIES_ID, now=START, horizon=timedelta(weeks=5)
    )
    assert rule.start not in {t.data.occurrence for t in made}
    assert len(made) == 3


def test_the_race_check_fails_when_the_storage_lets_an_occurrence_in_twice():
    # A repository that forgets marks (as before the fix): the check must catch the double.
    class Forgetful(tf.InMemoryRepository):
        def commit(self, changes):
            return super().commit(attrs.evolve(changes, marks=()))

    repository = Forgetful(registry=REGISTRY)
    with pytest.raises(AssertionError, match="two requests"):
        check_series_race(lambda: repository)
