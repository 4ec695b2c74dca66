"""`SqliteRepository.add_all`: a bulk load in one transaction through the repository's write path."""

from pathlib import Path

import attrs
import pytest

import taskflow as tf
from taskflow import TaskQuery
from taskflow.adapters.sqlite import SqliteRepository
from taskflow.errors import ConcurrencyConflict, InvalidPayload, ViewNotSaveable
from taskflow.testing.contracts import ACME, SUPPLIER, T0, RepositoryContract, make_task, upload

REGISTRY = RepositoryContract.registry


def _tasks(count, start=0):
    for n in range(start, start + count):
        yield make_task(f"t-{n:04d}", assignees=[SUPPLIER.ref], created_at=T0)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "bulk.db"


def test_a_generator_of_tasks_is_stored_as_add_stores_each(db: Path) -> None:
    with SqliteRepository(db, REGISTRY) as bulk:
        assert bulk.add_all(_tasks(25), chunk=7) == 25
    with SqliteRepository(tmp := db.with_name("one.db"), REGISTRY) as one:
        for task in _tasks(25):
            one.add(task)
    with SqliteRepository(db, REGISTRY) as bulk, SqliteRepository(tmp, REGISTRY) as one:
        for task in _tasks(25):
            assert bulk.get(task.id) == one.get(task.id) == task
        inbox = TaskQuery(company=SUPPLIER.company, assignee=SUPPLIER.ref, open=True)
        assert [t.id for t in bulk.query(inbox)] == [t.id for t in one.query(inbox)]
        assert len(bulk.query(inbox)) == 25
        assert bulk.count(TaskQuery()) == one.count(TaskQuery())
        assert bulk.check() == []


def test_tasks_with_history_keep_their_rows(db: Path) -> None:
    tasks = [upload(task, SUPPLIER) for task in _tasks(3)]
    with SqliteRepository(db, REGISTRY) as repository:
        assert repository.add_all(tasks) == 3
    with SqliteRepository(db, REGISTRY) as again:
        assert [again.get(t.id) for t in tasks] == tasks
        assert again.check() == []


def test_a_taken_id_in_a_late_chunk_rolls_the_whole_load_back(db: Path) -> None:
    with SqliteRepository(db, REGISTRY) as repository:
        repository.add(next(_tasks(1, start=30)))
        with pytest.raises(ConcurrencyConflict):
            repository.add_all(_tasks(40), chunk=10)  # t-0030 is in the fourth chunk
        assert repository.count(TaskQuery()) == {("document_request", "requested"): 1}
        assert repository.add_all(_tasks(30)) == 30  # the lock and the store are fine


def test_views_and_non_tasks_are_refused_and_nothing_is_stored(db: Path) -> None:
    task = next(_tasks(1))
    view = attrs.evolve(task, view_of=ACME)
    with SqliteRepository(db, REGISTRY) as repository:
        with pytest.raises(ViewNotSaveable):
            repository.add_all([*_tasks(3, start=1), view])
        with pytest.raises(InvalidPayload, match="item 1 is a str") as caught:
            repository.add_all([task, "t-2"])
        assert caught.value.field == "tasks"
        assert repository.count(TaskQuery()) == {}


@pytest.mark.parametrize(
    ("tasks", "chunk", "field"),
    [("t-1", 10, "tasks"), (5, 10, "tasks"), ([], 0, "chunk"), ([], True, "chunk")],
)
def test_bad_arguments_are_refused_naming_them(db: Path, tasks, chunk, field) -> None:
    with SqliteRepository(db, REGISTRY) as repository, pytest.raises(InvalidPayload) as caught:
        repository.add_all(tasks, chunk=chunk)
    assert caught.value.field == field


def test_an_empty_load_stores_nothing(db: Path) -> None:
    with SqliteRepository(db, REGISTRY) as repository:
        assert repository.add_all(iter(())) == 0
        assert repository.next_number(tf.CompanyId("acme")) == 1


def test_loads_and_single_adds_interleave_on_fresh_keys(db: Path) -> None:
    with SqliteRepository(db, REGISTRY) as repository:
        repository.add(next(_tasks(1, start=100)))
        assert repository.add_all(_tasks(5), chunk=2) == 5
        repository.add(next(_tasks(1, start=101)))
        assert repository.add_all(_tasks(3, start=10)) == 3
        assert repository.check() == []
    with SqliteRepository(db, REGISTRY) as again:
        assert len(again.query(TaskQuery())) == 10
        assert again.check() == []
