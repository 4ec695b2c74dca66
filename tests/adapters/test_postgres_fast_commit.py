"""The PostgreSQL commit in one round trip: a save the cache knows is sent without reading the row.

When the stored row is not what the cache says (another repository saved it, an upgrade
rewrote it, a mark is taken), the one-round-trip commit writes nothing and the checked commit
runs: every refusal and every write stays exactly what it was.
"""

import psycopg
import pytest

from taskflow import OutboxMessage, TaskQuery
from taskflow.adapters.postgres import PostgresRepository
from taskflow.errors import ConcurrencyConflict, MarkTaken
from taskflow.ports import Changeset
from taskflow.serialization import Serializer
from taskflow.testing.contracts import SUPPLIER, RepositoryContract, make_task, upload

REGISTRY = RepositoryContract.registry
SERIALIZER = Serializer(REGISTRY)


@pytest.fixture
def repos(pg_pool, pg_schema, pg_reset):
    pg_reset()
    first = PostgresRepository(pg_pool, REGISTRY, schema=pg_schema, serializer=SERIALIZER)
    second = PostgresRepository(pg_pool, REGISTRY, schema=pg_schema, serializer=SERIALIZER)
    yield first, second
    first.close()
    second.close()


def _spy(repo):
    """Record whether each commit was written by the one-round-trip path."""
    taken = []
    fast = repo._write_fast

    def spy(changes, plan):
        ids = fast(changes, plan)
        taken.append(ids is not None)
        return ids

    repo._write_fast = spy
    return taken


def _message(key: str) -> OutboxMessage:
    return OutboxMessage("webhook", key, {"n": 1})


def test_a_save_the_cache_knows_is_written_in_one_round_trip(repos):
    repo, _ = repos
    task = make_task("t-1")
    repo.add(task)
    taken = _spy(repo)
    after = upload(task, SUPPLIER)
    ids = repo.commit(Changeset(saved=[(after, 1)], messages=[_message("k1")]))
    assert taken == [True]
    assert repo.get(task.id) == after
    assert [e.id for e in repo.pending()] == list(ids)
    assert repo.check() == []


def test_a_save_over_a_version_another_repository_wrote_is_refused_and_writes_nothing(repos):
    repo, other = repos
    task = make_task("t-1")
    repo.add(task)
    assert repo.get(task.id) == task  # cached in `repo` at version 1
    other.save(upload(task, SUPPLIER), 1)
    taken = _spy(repo)
    with pytest.raises(ConcurrencyConflict) as caught:
        repo.commit(
            Changeset(saved=[(upload(task, SUPPLIER), 1)], messages=[_message("k")], marks=["m"])
        )
    assert taken == [False]
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    assert repo.pending() == []
    assert not repo.marked("m")
    assert other.get(task.id).version == 2


def test_a_taken_mark_refuses_a_cached_save_with_mark_taken(repos):
    repo, other = repos
    task = make_task("t-1")
    repo.add(task)
    other.commit(Changeset(marks=["once"]))
    taken = _spy(repo)
    with pytest.raises(MarkTaken):
        repo.commit(Changeset(saved=[(upload(task, SUPPLIER), 1)], marks=["once"]))
    assert taken == [False]
    assert repo.get(task.id).version == 1


def test_a_row_rewritten_behind_the_cache_is_saved_by_the_checked_commit(repos, pg_pool, pg_schema):
    repo, _ = repos
    task = make_task("t-1")
    repo.add(task)
    # As an upgrade would leave it: the row of another task JSON schema (its rows are rewritten).
    with pg_pool.connection() as conn:
        conn.execute(
            psycopg.sql.SQL("UPDATE {}.tasks SET schema = schema - 1").format(
                psycopg.sql.Identifier(pg_schema)
            )
        )
    taken = _spy(repo)
    after = upload(task, SUPPLIER)
    repo.save(after, 1)
    assert taken == [False]
    fresh = PostgresRepository(pg_pool, REGISTRY, schema=pg_schema, serializer=SERIALIZER)
    try:
        assert fresh.get(task.id) == after
        assert fresh.query(TaskQuery(states={"uploaded"})) == [after]
        assert fresh.check() == []
    finally:
        fresh.close()
