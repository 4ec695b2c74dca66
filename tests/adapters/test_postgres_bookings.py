"""First accept wins on PostgreSQL: the bookings race checks of taskflow.testing on a real server."""

import taskflow as tf
from taskflow.adapters.postgres import PostgresRepository
from taskflow.testing.bookings import check_first_accept_wins

REGISTRY = tf.default_registry()


def test_first_accept_wins_under_threads_on_postgres(pg_pool, pg_schema, pg_reset):
    pg_reset()
    repositories = []

    def factory():
        # One repository per accepting provider on the shared pool, as separate app servers.
        repository = PostgresRepository(pg_pool, REGISTRY, schema=pg_schema)
        repositories.append(repository)
        return repository

    try:
        race = check_first_accept_wins(factory, providers=4)
    finally:
        for repository in repositories:
            repository.close()
    assert len(race.winners) == 1
