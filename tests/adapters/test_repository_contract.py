"""The repository contract, run against the SQLite repository on a file and in memory.

The in-memory repository runs the same suite in tests/adapters/test_memory.py.
"""

import itertools
from pathlib import Path

import pytest
from hypothesis import settings

from taskflow.adapters.sqlite import SqliteRepository
from taskflow.ports import TaskRepository
from taskflow.serialization import Serializer
from taskflow.testing.contracts import RepositoryContract

_REGISTRY = RepositoryContract.registry
# One serializer for every repository: building one generates code (a tenth of a second).
_SERIALIZER = Serializer(_REGISTRY)


class TestSqliteFileRepository(RepositoryContract):
    # A fifth of the profile's examples: the SQL is the same as in memory (below); a file
    # adds WAL and the file itself, which a few examples exercise.
    max_examples = max(5, settings.default.max_examples // 5)

    @pytest.fixture(autouse=True)
    def _files(self, tmp_path: Path):
        self._names = (tmp_path / f"tasks-{n}.db" for n in itertools.count())
        self._opened: list[SqliteRepository] = []
        yield
        for repository in self._opened:
            repository.close()

    def make_repository(self) -> TaskRepository:
        repository = SqliteRepository(next(self._names), _REGISTRY, serializer=_SERIALIZER)
        self._opened.append(repository)
        return repository

    def make_sibling(self, repo: TaskRepository) -> TaskRepository:
        # A second connection to the same file: the concurrency tests then use two doors.
        assert isinstance(repo, SqliteRepository)
        sibling = SqliteRepository(repo.path, _REGISTRY, serializer=_SERIALIZER)
        self._opened.append(sibling)
        return sibling


class TestSqliteMemoryRepository(RepositoryContract):
    # Half the loaded profile's examples: tasks of every registered kind are costly to generate, and
    # the in-memory repository runs the full number in test_memory.py.
    max_examples = max(10, settings.default.max_examples // 2)

    def make_repository(self) -> TaskRepository:
        return SqliteRepository(":memory:", _REGISTRY, serializer=_SERIALIZER)
