"""A PostgreSQL row whose JSON body nests too deep to load is one broken row, not a crash.

The SQLite twin is in tests/adapters/test_sqlite.py. The test runs on the session's real
server (tests/conftest.py starts a throwaway one), in this module's schema.
"""

from datetime import timedelta

import pytest

import taskflow as tf
from taskflow import DeserializationError, TaskQuery
from taskflow.adapters.postgres import PostgresRepository
from taskflow.testing.contracts import (
    ACME,
    SUPPLIER,
    T0,
    RepositoryContract,
    make_task,
    upload,
)

REGISTRY = RepositoryContract.registry
DEPTH = 5_000  # far past Python's recursion limit, well inside what jsonb accepts


@pytest.fixture
def repo(pg_pool, pg_schema, pg_reset):
    pg_reset()
    with PostgresRepository(pg_pool, REGISTRY, schema=pg_schema) as r:
        yield r


def _three_tasks(repo: PostgresRepository) -> None:
    for n in (1, 2, 3):
        task = make_task(f"t-{n}", assignees=[SUPPLIER.ref], created_at=T0 + timedelta(hours=n))
        repo.add(task)
        repo.save(upload(task, SUPPLIER), 1)


def _nest_deep(pool, schema: str, task_id: str, table: str) -> None:
    deep = "[" * DEPTH + "]" * DEPTH
    if table == "tasks":
        statement = (
            f"UPDATE \"{schema}\".tasks SET body = jsonb_set(body, '{{deep}}', %s::jsonb) "
            "WHERE id = %s"
        )
    else:
        statement = (
            f"UPDATE \"{schema}\".task_history h SET body = jsonb_set(h.body, '{{deep}}', "
            f'%s::jsonb) FROM "{schema}".tasks t WHERE h.task_pk = t.pk AND t.id = %s '
            "AND h.seq = 1"
        )
    with pool.connection() as conn:
        assert conn.execute(statement, (deep, task_id)).rowcount == 1


@pytest.mark.parametrize("table", ["tasks", "task_history"])
def test_a_deeply_nested_body_is_one_broken_row_and_the_inbox_goes_on(repo, pg_pool, table) -> None:
    _three_tasks(repo)
    _nest_deep(pg_pool, repo.schema, "t-2", table)
    reported: list[DeserializationError] = []
    with PostgresRepository(
        pg_pool, REGISTRY, schema=repo.schema, cache_size=0, on_broken_row=reported.append
    ) as fresh:
        with pytest.raises(DeserializationError) as caught:
            fresh.get(tf.TaskId("t-2"))
        assert caught.value.task_id == "t-2"
        # The requester's inbox: the uploads wait on acme; the broken row is left out.
        inbox = TaskQuery(company=ACME, ball_company=ACME, open=True)
        assert [t.id for t in fresh.query(inbox)] == ["t-1", "t-3"]
        assert [e.task_id for e in reported] == ["t-2"]
        assert [e.task_id for e in fresh.broken_rows()] == ["t-2"]
