"""Malformed input to every public service call and value class: a typed error, nothing changed.

Generated wrong types, strings where collections belong, naive datetimes and dates, bools and
floats as ints, huge and deeply nested values, control characters, blank strings and unknown
enum values are fed to every public `TaskService` method (enumerated from the class) and to
every public value and payload class (enumerated from taskflow's value modules, the kinds'
modules and the default registry). Each must raise a `TaskflowError` that names the argument
or field, with a bounded message; the stored tasks and outbox stay as they were, and no task
number is taken. A public method or class that is neither covered nor listed as exempt fails
the coverage tests, so a new one cannot slip past.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import pkgutil
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import taskflow as tf
import taskflow.kinds
from taskflow import Actor, NewTask, TaskflowError, TaskQuery
from taskflow.adapters.sqlite import SqliteRepository
from taskflow.domain import validators
from taskflow.domain.erasure import DataSubject
from taskflow.kinds.document import DocumentRequest
from taskflow.testing.strategies import builtin_strategies

START = datetime(2026, 5, 4, 8, 30, tzinfo=UTC)
BEA = Actor("bea", "acme")
SAM = Actor("sam", "supco")
PIA = Actor("pia", "acme", frozenset({"privacy"}))
MESSAGE_BOUND = 1_000  # no error message may be longer (a 10 MB value is never echoed)

# --- malformed values --------------------------------------------------------------------------

HUGE = "x" * 10_000_000  # 10 MB, built once


def _deep(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


DEEP_LIST = _deep(50_000)
DEEP_DICT: dict[str, Any] = {}
for _ in range(50_000):
    DEEP_DICT = {"a": DEEP_DICT}


class Colour(enum.Enum):
    """An enum no taskflow field takes."""

    RED = "red"


class Unprintable:
    """A value whose repr and str raise."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    __str__ = __repr__


BLANKS = st.sampled_from(["", " ", "\t", "\n  ", "\u3000"])
CONTROLS = st.text(st.characters(categories=["Cc", "Cf"]), min_size=1, max_size=4).map(
    lambda s: f"a{s}b"
)
NAIVE = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2050, 1, 1))
DATES = st.dates(min_value=date(2000, 1, 1), max_value=date(2050, 1, 1))
AWARE = NAIVE.map(lambda d: d.replace(tzinfo=UTC))

# Values of a wrong type for nearly every argument: none is a str.
NOT_TEXT = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.just(Decimal("1.5")),
    st.just(b"bytes"),
    st.lists(st.text(max_size=3), max_size=3),
    st.tuples(st.integers()),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.frozensets(st.integers(), max_size=2),
    NAIVE,
    DATES,
    AWARE,
    st.just(DEEP_LIST),
    st.just(DEEP_DICT),
    st.just(Colour.RED),
    st.just(object()),
    st.just(Unprintable()),
    st.just(SAM.ref),  # a UserRef where an Actor (or anything else) belongs
    st.just(timedelta(days=1)),
)
# Strings that are no good where a name, an id or a text belongs.
BAD_STRINGS = st.one_of(BLANKS, CONTROLS, st.just(HUGE), st.just(" acme "), st.just("urgent"))
ANYTHING_BAD = st.one_of(NOT_TEXT, BAD_STRINGS)

# --- the world each service test runs in -------------------------------------------------------

STORES = ["memory", "sqlite"]


def _repository(store: str) -> Any:
    if store == "memory":
        return tf.InMemoryRepository()
    return SqliteRepository(":memory:", tf.default_registry())


@dataclass
class World:
    """A service on one store with one task, and what it held before a call."""

    service: tf.TaskService
    task_id: str
    opened: int = 1  # tasks opened so far (numbers taken)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def repository(self) -> Any:
        return self.service.repository

    def state(self) -> tuple[Any, ...]:
        """Everything a call could change: tasks, outbox, dead letters, notifications."""
        repo = self.repository
        return (
            tuple(repo.query(TaskQuery())),
            tuple(repo.pending()),
            tuple(repo.dead_letters()),
            tuple(self.service.notifier.sent),
        )

    def next_number_is_untouched(self) -> None:
        """Open one more task: it must get the next number, so no refused call took one."""
        task = self.service.open(BEA, "document_request", _draft()).task
        self.opened += 1
        assert task.number == f"ACME-TASK-{self.opened}"


def _draft() -> NewTask:
    return NewTask("Cert", "supco", DocumentRequest("ISO"), assignees=(SAM.ref,))


@pytest.fixture(params=STORES)
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    repository = _repository(request.param)
    service = tf.TaskService(
        registry=tf.default_registry(),
        repository=repository,
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )
    task = service.open(BEA, "document_request", _draft()).task
    yield World(service, task.id)
    close = getattr(repository, "close", None)
    if close is not None:
        close()


# --- every public TaskService call -------------------------------------------------------------


@dataclass(frozen=True)
class Arg:
    """One argument of a call: its name as errors give it, and what is malformed for it."""

    name: str
    bad: st.SearchStrategy[Any]
    names: tuple[str, ...] = ()  # other words an error may name it by (a payload's field)


ACTOR = Arg("actor", ANYTHING_BAD | st.just("bea@acme") | st.just(BEA.ref))
TASK_ID = Arg("task_id", ANYTHING_BAD, ("task",))
LIMIT = Arg("limit", st.one_of(st.booleans(), st.floats(), st.integers(max_value=-1), BAD_STRINGS))
IDS = Arg(
    "ids",
    st.one_of(
        BAD_STRINGS,
        st.integers(),
        st.none(),
        st.lists(st.one_of(st.text(max_size=3), st.booleans(), st.floats()), min_size=1),
    ),
)
TEXT = Arg("text", st.one_of(NOT_TEXT, BLANKS, st.just(HUGE)), ("comment",))
NAME = Arg("name", st.one_of(NOT_TEXT.filter(lambda v: v is not None), BLANKS, st.just(HUGE)))

# Names of kinds or events: one name or several, never blank, spaced, huge or with controls.
BAD_NAME = st.one_of(BLANKS, CONTROLS, st.just(HUGE), st.just(" acme "))
NAMES = st.one_of(
    BAD_NAME,
    st.integers(),
    st.lists(st.integers(), min_size=1),
    st.lists(BAD_NAME, min_size=1, max_size=2),
)

# For each public method: a call built from the arguments (None: a valid value), and the
# arguments to make malformed one at a time.
Call = Callable[[World, dict[str, Any]], Any]


def _not_empty(value: Any) -> bool:
    return not isinstance(value, list | tuple | dict | frozenset) or bool(value)


def _a(bad: dict[str, Any], name: str, good: Any) -> Any:
    return bad.get(name, good)


def _task_call(method: str, *rest: Any) -> Call:
    def call(w: World, bad: dict[str, Any]) -> Any:
        fn = getattr(w.service, method)
        return fn(_a(bad, "actor", BEA), _a(bad, "task_id", w.task_id), *rest)

    return call


COVERED: dict[str, tuple[Call, tuple[Arg, ...]]] = {
    "open": (
        lambda w, b: w.service.open(
            _a(b, "actor", BEA), _a(b, "kind", "document_request"), _a(b, "draft", _draft())
        ),
        (
            ACTOR,
            Arg("kind", ANYTHING_BAD),
            Arg("draft", ANYTHING_BAD | st.just(DocumentRequest("ISO"))),
        ),
    ),
    "act": (
        lambda w, b: w.service.act(
            _a(b, "actor", BEA),
            _a(b, "task_id", w.task_id),
            _a(b, "action", "comment"),
            _a(b, "payload", tf.AddComment("hi")),
            expected_version=_a(b, "expected_version", None),
        ),
        (
            ACTOR,
            TASK_ID,
            Arg("action", ANYTHING_BAD),
            Arg("payload", ANYTHING_BAD | st.just(tf.Edit(subject="x"))),
            Arg(
                "expected_version",
                st.one_of(st.booleans(), st.floats(), st.integers(max_value=0), BAD_STRINGS),
            ),
        ),
    ),
    "act_with_retry": (
        lambda w, b: w.service.act_with_retry(
            _a(b, "actor", BEA),
            _a(b, "task_id", w.task_id),
            _a(b, "action", "comment"),
            _a(b, "payload", tf.AddComment("hi")),
            attempts=_a(b, "attempts", 2),
        ),
        (
            ACTOR,
            TASK_ID,
            Arg("action", ANYTHING_BAD),
            Arg("payload", ANYTHING_BAD),
            Arg(
                "attempts",
                st.one_of(st.booleans(), st.floats(), st.integers(max_value=0), BAD_STRINGS),
            ),
        ),
    ),
    "comment": (
        lambda w, b: w.service.comment(
            _a(b, "actor", BEA),
            _a(b, "task_id", w.task_id),
            _a(b, "text", "hi"),
            _a(b, "visibility", tf.Visibility.PUBLIC),
        ),
        (ACTOR, TASK_ID, TEXT, Arg("visibility", ANYTHING_BAD)),
    ),
    "assign": (
        lambda w, b: w.service.assign(
            _a(b, "actor", SAM), _a(b, "task_id", w.task_id), _a(b, "users", (SAM.ref,))
        ),
        (
            ACTOR,
            TASK_ID,
            Arg("users", ANYTHING_BAD | st.just(["sue"]) | st.just(["sam@supco"]) | st.just([SAM])),
        ),
    ),
    "claim": (_task_call("claim"), (ACTOR, TASK_ID)),
    "edit": (
        lambda w, b: w.service.edit(
            _a(b, "actor", BEA), _a(b, "task_id", w.task_id), _a(b, "edit", tf.Edit(subject="x"))
        ),
        (ACTOR, TASK_ID, Arg("edit", ANYTHING_BAD | st.just(tf.AddComment("hi")), ("payload",))),
    ),
    "erase_personal_data": (
        lambda w, b: w.service.erase_personal_data(
            _a(b, "actor", PIA),
            _a(b, "task_ids", [w.task_id]),
            _a(b, "person", DataSubject(SAM.ref)),
            _a(b, "reason", "asked by sam"),
        ),
        (
            ACTOR,
            Arg(
                "task_ids",
                # An empty collection erases nothing: a valid call, so not generated.
                ANYTHING_BAD.filter(_not_empty) | st.lists(ANYTHING_BAD, min_size=1, max_size=2),
                ("task",),
            ),
            Arg("person", ANYTHING_BAD | st.just(SAM.ref)),
            Arg("reason", st.one_of(NOT_TEXT, BLANKS, st.just(HUGE))),
        ),
    ),
    "get": (_task_call("get"), (ACTOR, TASK_ID)),
    "allowed_actions": (_task_call("allowed_actions"), (ACTOR, TASK_ID)),
    "task_at": (
        lambda w, b: w.service.task_at(
            _a(b, "actor", BEA), _a(b, "task_id", w.task_id), _a(b, "at", START)
        ),
        (
            ACTOR,
            TASK_ID,
            Arg("at", st.one_of(NOT_TEXT.filter(lambda v: not _is_aware(v)), BAD_STRINGS)),
        ),
    ),
    "inbox": (lambda w, b: w.service.inbox(_a(b, "actor", BEA)), (ACTOR,)),
    "teambox": (lambda w, b: w.service.teambox(_a(b, "actor", BEA)), (ACTOR,)),
    "dashboard": (lambda w, b: w.service.dashboard(_a(b, "actor", BEA)), (ACTOR,)),
    "find": (
        lambda w, b: w.service.find(_a(b, "actor", BEA), _a(b, "query", TaskQuery())),
        (ACTOR, Arg("query", ANYTHING_BAD)),
    ),
    "may_see": (
        lambda w, b: w.service.may_see(
            _a(b, "actor", BEA), _a(b, "task", w.repository.get(w.task_id))
        ),
        (ACTOR, Arg("task", ANYTHING_BAD)),
    ),
    "unit_of_work": (
        lambda w, b: w.service.unit_of_work(correlation_id=_a(b, "correlation_id", "c-1")),
        (
            Arg(
                "correlation_id",
                st.one_of(NOT_TEXT.filter(lambda v: v is not None), BLANKS, st.just(HUGE)),
            ),
        ),
    ),
    "deliver": (lambda w, b: w.service.deliver(limit=_a(b, "limit", None)), (LIMIT,)),
    "dead_letters": (lambda w, b: w.service.dead_letters(limit=_a(b, "limit", None)), (LIMIT,)),
    "retry_dead_letters": (lambda w, b: w.service.retry_dead_letters(_a(b, "ids", ())), (IDS,)),
    "drop_dead_letters": (lambda w, b: w.service.drop_dead_letters(_a(b, "ids", ())), (IDS,)),
    "subscribe": (
        lambda w, b: w.service.subscribe(
            _a(b, "handler", lambda event, uow: None),
            name=_a(b, "name", "h"),
            kinds=_a(b, "kinds", None),
            events=_a(b, "events", None),
        ),
        (
            Arg("handler", ANYTHING_BAD),
            NAME,
            Arg("kinds", NAMES),
            Arg("events", NAMES),
        ),
    ),
    "add_subscription": (
        lambda w, b: w.service.add_subscription(_a(b, "subscription", None)),
        (Arg("subscription", ANYTHING_BAD),),
    ),
    "add_sender": (
        lambda w, b: w.service.add_sender(
            _a(b, "topic", "tracker"), _a(b, "sender", lambda entry: None)
        ),
        (Arg("topic", st.one_of(NOT_TEXT, BAD_NAME)), Arg("sender", ANYTHING_BAD)),
    ),
}

# Public methods the units of work call with values they checked already; a host never does.
EXEMPT = {
    "check_open": "called by UnitOfWork.open after open() checked actor, kind and draft",
    "task_number": "called by UnitOfWork.open with the checked actor's company",
    "run_open": "called by UnitOfWork.open after check_open",
    "run_action": "called by UnitOfWork.act with a loaded task and checked arguments",
    "run_erasure": "called by UnitOfWork.erase with a loaded task and a checked person",
    "notifications": "called by UnitOfWork with the engine's own tasks and events",
    "subscriptions_for": "called by UnitOfWork with the engine's own events",
    "event_message": "called by UnitOfWork with a registered subscription and an engine event",
    "after_commit": "called by UnitOfWork with what its commit returned",
}


def _is_aware(value: Any) -> bool:
    return isinstance(value, datetime) and value.utcoffset() is not None


def _public_methods(cls: type) -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and inspect.isfunction(member)
    }


def test_every_public_service_method_is_covered_or_exempt() -> None:
    """A new public TaskService method fails here until it is fed malformed input too."""
    public = _public_methods(tf.TaskService)
    assert public - COVERED.keys() - EXEMPT.keys() == set()
    assert (COVERED.keys() | EXEMPT.keys()) - public == set()


def _names_it(error: BaseException, arg: Arg) -> bool:
    words = [w.lower() for w in (arg.name, *arg.names)]
    named = str(getattr(error, "field", "") or "").lower()
    message = str(error).lower()
    return any(w in named or w in message for w in words)


def _check_refused(error: BaseException, arg: Arg) -> None:
    if not isinstance(error, TaskflowError):
        raise AssertionError(f"raw {type(error).__name__} for {arg.name}") from error
    message = str(error)
    assert len(message) <= MESSAGE_BOUND, f"{len(message)} characters: {message[:200]}..."
    assert _names_it(error, arg), f"the error does not name {arg.name!r}: {message}"


def _cases() -> list[tuple[str, str]]:
    return [(method, arg.name) for method, (_, args) in COVERED.items() for arg in args]


@pytest.mark.parametrize(("method", "arg_name"), _cases())
def test_malformed_argument_is_a_typed_error_and_changes_nothing(
    world: World, method: str, arg_name: str
) -> None:
    call, args = COVERED[method]
    arg = next(a for a in args if a.name == arg_name)
    before = world.state()

    @settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
    @given(value=arg.bad)
    def run(value: Any) -> None:
        try:
            call(world, {arg.name: value})
        except BaseException as error:
            _check_refused(error, arg)
        else:
            raise AssertionError(f"{method}({arg.name}={validators.excerpt(value)}) was accepted")
        assert world.state() == before

    run()
    world.next_number_is_untouched()


# --- every public value and payload class ------------------------------------------------------

VALUE_MODULES = (
    "taskflow.domain.values",
    "taskflow.domain.common",
    "taskflow.domain.task",
    "taskflow.domain.query",
    "taskflow.domain.outbox",
    "taskflow.domain.erasure",
    "taskflow.domain.limits",
    "taskflow.ports",
    *(m.name for m in pkgutil.iter_modules(taskflow.kinds.__path__, "taskflow.kinds.")),
)

# Results taskflow hands out and never takes from a caller.
OUTPUTS = {
    "DeliveryReport": "returned by deliver(); never an argument",
    "Page": "returned by paged queries; never an argument",
    "DomainEvent": "made by the engine; handlers receive it",
    "IndexProblem": "returned by check(); never an argument",
    # Checked where used: a TaskQuery refuses a bad range naming its where['field'].
    "Between": "its ends are checked by the TaskQuery it is given to (tests/domain/test_query.py)",
}


# Fields that take what they are given and are checked later, as a whole, on purpose.
CHECKED_LATER = {
    ("Task", "history"): "entries check themselves; the schema-1 loader passes its own through",
    ("Question", "options"): "checked when sent: InvalidQuestionnaire names every bad question",
    ("Questionnaire", "questions"): "checked when sent: InvalidQuestionnaire names each one",
}


def _value_classes() -> dict[str, type]:
    found: dict[str, type] = {}
    for name in VALUE_MODULES:
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", ()):
            obj = getattr(module, attr)
            if inspect.isclass(obj) and attrs.has(obj):
                found[obj.__qualname__] = obj
    for kind in tf.default_registry():
        if kind.data_type is not None:
            found.setdefault(kind.data_type.__qualname__, kind.data_type)
        for transition in kind.workflow.transitions:
            if transition.payload is not None:
                found.setdefault(transition.payload.__qualname__, transition.payload)
    return {k: v for k, v in sorted(found.items()) if k not in OUTPUTS}


def _examples() -> dict[type, Any]:
    """One valid instance of each class no strategy of the test kit builds."""
    from taskflow.domain.outbox import OutboxEntry, OutboxMessage, RetryPolicy
    from taskflow.domain.query import Between, Cursor
    from taskflow.domain.task import Cause, HistoryEntry
    from taskflow.kinds import booking_request as br
    from taskflow.kinds import crm_task, evaluation, recurrence
    from taskflow.ports import Changeset

    file = tf.FileRef("a.pdf", "application/pdf", 1, "d", "k")
    message = OutboxMessage("topic", "key", {"a": 1})
    task = tf.open_task(
        tf.default_registry()["document_request"].workflow,
        "document_request",
        _draft(),
        BEA,
        START,
        tf.TaskId("t-1"),
        "ACME-TASK-1",
    ).task
    place = br.Place("Depot", 52.5, 13.4)
    window = br.TimeWindow(START, START + timedelta(hours=2))
    provider = br.Provider("p1", tf.CompanyId("prov"), "Provider", ("clean",), place, 10.0)
    return {
        tf.Actor: BEA,
        tf.UserRef: SAM.ref,
        tf.FileRef: file,
        tf.Comment: tf.Comment(SAM.ref, START, "hi"),
        tf.Link: tf.Link("part_of", tf.TaskId("t-1")),
        tf.Assign: tf.Assign((SAM.ref,)),
        tf.Edit: tf.Edit(subject="x"),
        NewTask: _draft(),
        tf.Task: task,
        HistoryEntry: task.history[0],
        Cause: Cause("c-1"),
        TaskQuery: TaskQuery(kind="document_request"),
        Between: Between(1, 2),
        Cursor: Cursor(START, tf.TaskId("t-1")),
        OutboxMessage: message,
        OutboxEntry: OutboxEntry(1, message),
        tf.DeadLetter: tf.DeadLetter(1, "topic", "key", "{}", "why", 1, START),
        RetryPolicy: RetryPolicy(),
        DataSubject: DataSubject(SAM.ref),
        tf.ErasePersonalData: tf.ErasePersonalData("asked"),
        tf.Limits: tf.Limits(),
        Changeset: Changeset(),
        br.Place: place,
        br.TimeWindow: window,
        br.Provider: provider,
        br.Candidate: br.Candidate(provider, 90, ("near",), 1.0, 2.0, 1.0),
        crm_task.CrmConfig: crm_task.CrmConfig(),
        crm_task.CrmEdit: crm_task.CrmEdit(subject="x"),
        crm_task.CrmStatus: crm_task.CrmStatus("open", "in_progress"),
        crm_task.Document: crm_task.Document(file, "contract"),
        crm_task.Regarding: crm_task.Regarding("account", "a-1"),
        evaluation.Criterion: evaluation.Criterion("Quality", 3),
        recurrence.Recurrence: recurrence.Recurrence(start=START),
    }


TABLE = builtin_strategies()


def _example_strategy(cls: type) -> st.SearchStrategy[Any] | None:
    if cls in TABLE.types:
        return TABLE.types[cls]
    examples = _examples()
    return st.just(examples[cls]) if cls in examples else None


def test_every_value_class_has_an_example() -> None:
    """A new public value or payload class fails here until the malformed-input test builds it."""
    missing = [name for name, cls in _value_classes().items() if _example_strategy(cls) is None]
    assert missing == []


def _init_fields(cls: type) -> list[attrs.Attribute[Any]]:
    return [f for f in attrs.fields(cls) if f.init]


# One of each kind of malformed value, tried on every field of every class; the generated
# ones (any integer, float, naive time, ...) vary from run to run of the property test.
SAMPLES: tuple[Any, ...] = (
    None,
    True,
    0,
    -1,
    1.5,
    float("nan"),
    Decimal("1.5"),
    b"bytes",
    "",
    " ",
    "a\x00b",
    HUGE,
    " acme ",
    "urgent",
    ["x"],
    ("x",),
    {"a": 1},
    frozenset({1}),
    datetime(2030, 1, 1),
    date(2030, 1, 1),
    datetime(2030, 1, 1, tzinfo=UTC),
    DEEP_LIST,
    DEEP_DICT,
    Colour.RED,
    object(),
    Unprintable(),
    SAM.ref,
    timedelta(days=1),
)


def _refused_or_typed(name: str, good: Any, f: attrs.Attribute[Any], hint: Any, value: Any) -> None:
    try:
        made = attrs.evolve(good, **{f.alias: value})
    except BaseException as error:
        # A rule between fields may name the other one: any field of the class will do.
        others = tuple(a.name for a in attrs.fields(type(good)))
        _check_refused(error, Arg(f.alias, st.nothing(), (f.name, *others)))
        return
    stored = getattr(made, f.name)
    assert validators._conforms(stored, hint), (
        f"{name}.{f.name} accepted {validators.excerpt(value)} "
        f"and holds {validators.excerpt(stored)}, not {hint}"
    )


@pytest.mark.parametrize("name", list(_value_classes()))
def test_malformed_field_is_refused_or_stored_as_its_type(name: str) -> None:
    """Each field either refuses a malformed value with a typed error or holds a value of its type."""
    cls = _value_classes()[name]
    examples = _example_strategy(cls)
    assert examples is not None
    hints = typing.get_type_hints(cls)
    fields = _init_fields(cls)

    # Every sample on every field of a few valid instances, and a generated value besides:
    # the samples cover each kind of mistake, the generated values vary them.
    @settings(max_examples=5, suppress_health_check=[HealthCheck.too_slow])
    @given(
        good=examples, generated=st.lists(ANYTHING_BAD, min_size=len(fields), max_size=len(fields))
    )
    def run(good: Any, generated: list[Any]) -> None:
        for f, extra in zip(fields, generated, strict=True):
            if (name, f.name) in CHECKED_LATER:
                continue
            for value in (*SAMPLES, extra):
                _refused_or_typed(name, good, f, hints.get(f.name, Any), value)

    run()
