"""Races on PostgreSQL across OS processes, each with its own repository and pool (issues 11, 12).

Several processes accept different offers of one broadcast: exactly one wins, the others get
`AlreadyTaken`, the request is confirmed once. Several processes generate one recurring series:
each occurrence gets exactly one booking request (its once-only mark is a primary key).
"""

import taskflow as tf
from taskflow.adapters.postgres import PostgresRepository
from taskflow.testing.bookings import (
    check_first_accept_wins_in_processes,
    check_series_race,
    check_series_race_in_processes,
)

REGISTRY = tf.default_registry()


def test_first_accept_wins_across_processes_on_postgres(pg_dsn, pg_schema, pg_reset):
    pg_reset()
    outcomes = check_first_accept_wins_in_processes(("postgres", pg_dsn, pg_schema), providers=4)
    assert outcomes == ["taken", "taken", "taken", "won"]


def test_series_generators_in_processes_on_postgres_make_each_occurrence_once(
    pg_dsn, pg_schema, pg_reset
):
    pg_reset()
    assert sum(check_series_race_in_processes(("postgres", pg_dsn, pg_schema))) == 4


def test_series_generators_in_threads_on_postgres_make_each_occurrence_once(
    pg_pool, pg_schema, pg_reset
):
    pg_reset()
    opened = []

    def factory():
        repository = PostgresRepository(pg_pool, REGISTRY, schema=pg_schema)
        opened.append(repository)
        return repository

    try:
        assert sum(check_series_race(factory, generators=3)) == 4
    finally:
        for repository in opened:
            repository.close()
