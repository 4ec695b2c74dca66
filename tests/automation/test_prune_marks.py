"""Fired-markers of tasks closed long ago are pruned by the host's scheduler; the rest stay."""

from datetime import UTC, datetime, timedelta

import attrs
import pytest

import taskflow as tf
from taskflow.adapters.sqlite import SqliteRepository
from taskflow.automation import MARK_HORIZON, Automation, Notify, On, Rule, Trigger

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ANN = tf.Actor("ann", "acme")
LEA = tf.UserRef("acme", "lea")


@attrs.frozen
class Chore:
    """Data of a host's own kind."""

    area: str = "office"


CHORE = tf.TaskKind(
    "chore",
    Chore,
    tf.Workflow(
        name="chore",
        initial="todo",
        states=(tf.State("todo", waiting_on=tf.Side.RECIPIENT), tf.State("done", final=True)),
        transitions=(
            tf.Transition("finish", "todo", "done", tf.Side.RECIPIENT),
            tf.Transition("again", "done", "todo", tf.Side.RECIPIENT),
        ),
    ),
)
REGISTRY = tf.Registry([CHORE])
RULES = [
    Rule("tell", Trigger(On.OPENED), (Notify("$number opened", to={"watchers"}),)),
    Rule("told", Trigger(On.ACTION, "finish"), (Notify("$number done", to={"watchers"}),)),
]


class _Ids:
    """Task ids with a '/' in them, as a host's own id scheme may make."""

    def __init__(self) -> None:
        self.n = 0

    def new_task_id(self) -> tf.TaskId:
        self.n += 1
        return tf.TaskId(f"acme/chore/{self.n}")


@pytest.fixture(params=["memory", "sqlite"])
def repository(request, tmp_path):
    if request.param == "memory":
        yield tf.InMemoryRepository(registry=REGISTRY)
        return
    with SqliteRepository(tmp_path / "marks.db", REGISTRY) as repo:
        yield repo


def _desk(repository, ids=None):
    clock = tf.FixedClock(START)
    service = tf.TaskService(
        registry=REGISTRY,
        repository=repository,
        notifier=tf.RecordingNotifier(),
        clock=clock,
        ids=ids or tf.SequentialIds(),
    )
    return service, clock, Automation(service, RULES, company="acme")


def _open(service):
    return service.open(ANN, "chore", tf.NewTask("Plants", "acme", Chore(), watchers=[LEA])).task


def _marks_of(repository, task):
    return [m for m in repository.marks("rule:automation/") if f"/{task.id}/" in m]


def test_marks_of_tasks_closed_before_the_horizon_are_dropped_and_the_others_kept(repository):
    service, clock, automation = _desk(repository)
    closed, still_open, closed_late = _open(service), _open(service), _open(service)
    service.act(ANN, closed.id, "finish")
    clock.advance(timedelta(days=2))
    service.act(ANN, closed_late.id, "finish")
    repository.commit(tf.Changeset(marks=["intake-thread:email:m1@x\ntask-1", "rule:other/r/x"]))
    assert len(_marks_of(repository, closed)) == 2  # opened and finished: one mark each
    assert len(_marks_of(repository, still_open)) == 1
    before = repository.marks()

    assert automation.prune_marks(START) == 0  # closed at START: not before it
    assert repository.marks() == before
    assert automation.prune_marks(START + timedelta(days=1), batch=1) == 2
    assert _marks_of(repository, closed) == []
    assert len(_marks_of(repository, still_open)) == 1
    assert len(_marks_of(repository, closed_late)) == 2
    assert repository.marked("intake-thread:email:m1@x\ntask-1")  # intake's marks stay
    assert repository.marked("rule:other/r/x")  # so do another automation's
    assert automation.prune_marks(START + timedelta(days=1)) == 0  # again: nothing left


def test_by_default_marks_of_tasks_closed_more_than_the_horizon_ago_go(repository):
    service, clock, automation = _desk(repository)
    task = _open(service)
    service.act(ANN, task.id, "finish")
    clock.advance(MARK_HORIZON)
    assert automation.prune_marks() == 0
    clock.advance(timedelta(seconds=1))
    assert automation.prune_marks() == 2
    assert repository.marks() == []


def test_a_reopened_task_keeps_its_marks_until_it_has_been_closed_long_enough(repository):
    service, clock, automation = _desk(repository)
    task = _open(service)
    service.act(ANN, task.id, "finish")
    service.act(ANN, task.id, "again")
    clock.advance(timedelta(days=60))
    assert automation.prune_marks() == 0  # open again: its marks may still guard something
    service.act(ANN, task.id, "finish")
    assert automation.prune_marks() == 0  # closed just now
    clock.advance(timedelta(days=60))
    assert automation.prune_marks() == 3  # opened, finished, finished again


def test_a_task_id_with_slashes_is_read_from_the_mark(repository):
    service, clock, automation = _desk(repository, _Ids())
    closed, still_open = _open(service), _open(service)
    service.act(ANN, closed.id, "finish")
    assert closed.id == "acme/chore/1"
    clock.advance(timedelta(days=31))
    assert automation.prune_marks() == 2
    assert repository.marks() == _marks_of(repository, still_open)


def test_a_mark_naming_no_stored_task_is_dropped(repository):
    _service, _clock, automation = _desk(repository)
    repository.commit(
        tf.Changeset(marks=["rule:automation/tell/gone/corr||0", "rule:automation/x"])
    )
    assert automation.prune_marks() == 2
    assert repository.marks() == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"closed_before": datetime(2026, 1, 1)}, "closed_before"),  # naive
        ({"closed_before": "2026-01-01"}, "closed_before"),
        ({"batch": 0}, "batch"),
        ({"batch": True}, "batch"),
    ],
)
def test_a_bad_horizon_or_batch_is_refused_naming_it(kwargs, field):
    _service, _clock, automation = _desk(tf.InMemoryRepository(registry=REGISTRY))
    with pytest.raises(tf.InvalidPayload) as refused:
        automation.prune_marks(**kwargs)
    assert refused.value.field == field
