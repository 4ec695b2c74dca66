"""The repository contract, run against the PostgreSQL repository on a real server.

The server is the session's (tests/conftest.py: TASKFLOW_TEST_PG, or a throwaway cluster);
the module has a schema of its own, emptied before every repository the suite makes.
"""

import pytest
from hypothesis import settings

from taskflow.adapters.postgres import PostgresRepository
from taskflow.ports import TaskRepository
from taskflow.serialization import Serializer
from taskflow.testing.contracts import RepositoryContract

_REGISTRY = RepositoryContract.registry
_SERIALIZER = Serializer(_REGISTRY)


class TestPostgresRepository(RepositoryContract):
    # A sixth of the profile's examples: the SQL answers every query the in-memory and SQLite
    # runs draw in full; here each example also empties the schema (a TRUNCATE).
    max_examples = max(5, settings.default.max_examples // 6)

    @pytest.fixture(autouse=True)
    def _database(self, pg_pool, pg_schema, pg_reset):
        self._pool, self._schema, self._reset = pg_pool, pg_schema, pg_reset

    def make_repository(self) -> TaskRepository:
        self._reset()
        return PostgresRepository(
            self._pool, _REGISTRY, schema=self._schema, serializer=_SERIALIZER
        )

    def make_sibling(self, repo: TaskRepository) -> TaskRepository:
        # A second repository on the same tables: the concurrency tests then use two doors.
        return PostgresRepository(
            self._pool, _REGISTRY, schema=self._schema, serializer=_SERIALIZER
        )
