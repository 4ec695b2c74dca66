"""`PostgresRepository.add_all`: the shared store's bulk load, on the session's real server."""

import pytest

from taskflow import TaskQuery
from taskflow.adapters.postgres import PostgresRepository
from taskflow.errors import ConcurrencyConflict, InvalidPayload
from taskflow.testing.contracts import SUPPLIER, T0, RepositoryContract, make_task

REGISTRY = RepositoryContract.registry


def _tasks(count, start=0):
    for n in range(start, start + count):
        yield make_task(f"t-{n:04d}", assignees=[SUPPLIER.ref], created_at=T0)


@pytest.fixture
def repo(pg_pool, pg_schema, pg_reset):
    pg_reset()
    with PostgresRepository(pg_pool, REGISTRY, schema=pg_schema) as r:
        yield r


def test_a_generator_of_tasks_is_stored_as_add_stores_each(repo):
    assert repo.add_all(_tasks(25), chunk=7) == 25
    for task in _tasks(25):
        assert repo.get(task.id) == task
    inbox = TaskQuery(company=SUPPLIER.company, assignee=SUPPLIER.ref, open=True)
    assert len(repo.query(inbox)) == 25
    assert repo.check() == []


def test_a_refused_task_rolls_the_whole_load_back(repo):
    repo.add(next(_tasks(1, start=30)))
    with pytest.raises(ConcurrencyConflict):
        repo.add_all(_tasks(40), chunk=10)  # t-0030 is in the fourth chunk
    assert [t.id for t in repo.query(TaskQuery())] == ["t-0030"]
    with pytest.raises(InvalidPayload, match="tasks"):
        repo.add_all("t-1")
