"""`SqliteRepository.query_plan`: the plan SQLite takes for a query's task rows."""

import taskflow as tf
from taskflow.adapters.sqlite import SqliteRepository


def test_an_indexed_query_is_planned_from_an_index(tmp_path):
    registry = tf.default_registry()
    with SqliteRepository(str(tmp_path / "t.db"), registry) as repository:
        plan = repository.query_plan(tf.TaskQuery(kind="document_request", open=True))
    assert plan
    assert any("USING" in step and "INDEX" in step for step in plan), plan


def test_a_query_that_can_match_nothing_has_no_plan(tmp_path):
    registry = tf.default_registry()
    with SqliteRepository(str(tmp_path / "t.db"), registry) as repository:
        assert repository.query_plan(tf.TaskQuery(states=frozenset())) == []
