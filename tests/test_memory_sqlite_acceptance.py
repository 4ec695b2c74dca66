"""The in-memory repository accepts exactly what SQLite accepts.

The same generated drafts and actions, valid ones and malformed ones, go to a service on each
store: both accept, with the same task, or both refuse with the same error class and nothing
stored, and refused drafts take no number on either.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import taskflow as tf
from taskflow import Actor, NewTask, TaskflowError
from taskflow.adapters.sqlite import SqliteRepository
from taskflow.testing.strategies import builtin_strategies, new_tasks

START = datetime(2026, 5, 4, 8, 30, tzinfo=UTC)
BEA = Actor("bea", "acme")
SAM = Actor("sam", "supco")
REGISTRY = tf.default_registry()
KINDS = sorted(k.name for k in REGISTRY if k.name not in ("question", "questionnaire"))
TABLE = builtin_strategies()

# Values a careless caller puts where they do not belong.
ODD = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.lists(st.text(max_size=3), max_size=2),
    st.just({"a": object()}),
    st.just(object()),
    st.datetimes(),
)
DRAFT_FIELDS = [a.name for a in attrs.fields(NewTask)]


def _service(repository: Any) -> tf.TaskService:
    return tf.TaskService(
        registry=REGISTRY,
        repository=repository,
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )


def _try(call: Any) -> tuple[str, Any]:
    try:
        return "ok", call()
    except TaskflowError as error:
        return type(error).__name__, None


@st.composite
def drafts(draw: st.DrawFn) -> tuple[str, NewTask]:
    """A draft of some kind: valid, or with one field changed to an odd value through its class."""
    kind = draw(st.sampled_from(KINDS))
    draft = draw(new_tasks(REGISTRY[kind], tf.CompanyId("supco"), TABLE))
    draft = attrs.evolve(draft, assignees=(SAM.ref,))
    if draw(st.booleans()):
        name = draw(st.sampled_from(DRAFT_FIELDS))
        # A value its class refuses never makes a draft that reaches a store.
        with contextlib.suppress(TaskflowError):
            draft = attrs.evolve(draft, **{name: draw(ODD)})
    return kind, draft


# Each example opens up to four tasks on two stores: fewer examples than the profile's.
@settings(
    max_examples=15,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    deadline=None,
)
@given(
    cases=st.lists(drafts(), min_size=1, max_size=4), comment=st.one_of(st.text(max_size=8), ODD)
)
def test_memory_and_sqlite_accept_and_refuse_the_same_drafts_and_actions(
    cases: list[tuple[str, NewTask]], comment: Any
) -> None:
    memory = _service(tf.InMemoryRepository())
    sqlite_repo = SqliteRepository(":memory:", REGISTRY)
    sqlite = _service(sqlite_repo)
    try:
        for kind, draft in cases:
            on_memory = _try(lambda s=memory, k=kind, d=draft: s.open(BEA, k, d).task)
            on_sqlite = _try(lambda s=sqlite, k=kind, d=draft: s.open(BEA, k, d).task)
            assert on_memory[0] == on_sqlite[0], (kind, draft, on_memory[0], on_sqlite[0])
            if on_memory[0] != "ok":
                continue
            assert on_memory[1] == on_sqlite[1]
            task_id = on_memory[1].id
            try:
                payload = tf.AddComment(comment) if isinstance(comment, str) else comment
            except TaskflowError:
                payload = comment  # refused when built: the raw value goes to both stores
            acted_memory = _try(
                lambda s=memory, t=task_id, p=payload: s.act(BEA, t, "comment", p).task
            )
            acted_sqlite = _try(
                lambda s=sqlite, t=task_id, p=payload: s.act(BEA, t, "comment", p).task
            )
            assert acted_memory[0] == acted_sqlite[0], (acted_memory[0], acted_sqlite[0])
            assert memory.get(BEA, task_id) == sqlite.get(BEA, task_id)
        # Refused drafts took no number on either store: the next numbers agree.
        assert memory.repository.next_number(tf.CompanyId("ACME")) == sqlite_repo.next_number(
            tf.CompanyId("ACME")
        )
    finally:
        sqlite_repo.close()
