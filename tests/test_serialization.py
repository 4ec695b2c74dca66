import copy
import enum
import json
import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskflow.domain import engine
from taskflow.domain.common import AddComment
from taskflow.domain.registry import Registry, TaskKind
from taskflow.domain.task import OPEN, Cause, DomainEvent, HistoryEntry, NewTask, Task
from taskflow.domain.values import (
    PDF,
    Actor,
    ActorType,
    CompanyId,
    FileRef,
    Side,
    TaskId,
    UserId,
    UserRef,
)
from taskflow.domain.workflow import State, Transition, Workflow
from taskflow.errors import DeserializationError, InvalidPayload, UnknownKind
from taskflow.kinds import default_registry
from taskflow.kinds.document import DOCUMENT_REQUEST, DocumentRequest, Reject, UploadDocument
from taskflow.serialization import SCHEMA_VERSION, Serializer
from taskflow.testing.strategies import (
    aware_datetimes,
    builtin_strategies,
    tasks,
    texts,
    user_refs,
)

REGISTRY = default_registry()
SERIALIZER = Serializer(REGISTRY)
ANOTHER_SERIALIZER = Serializer(REGISTRY)
PLUS_TWO = timezone(timedelta(hours=2))
BUYER = Actor(UserId("bea"), CompanyId("acme"), frozenset({"buyer", "admin"}))
SUPPLIER = Actor(UserId("sam"), CompanyId("supco"))
PLAIN_TYPES = (dict, list, str, int, float, bool, type(None))


def _plain_types_only(value: Any, path: str = "$") -> None:
    assert type(value) in PLAIN_TYPES, f"{path} is a {type(value).__name__}"
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str, f"{path} has a key of type {type(key).__name__}"
            _plain_types_only(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _plain_types_only(item, f"{path}[{index}]")


def _same_types(a: Any, b: Any, path: str = "$") -> None:
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if attrs.has(type(a)):
        for field in attrs.fields(type(a)):
            _same_types(getattr(a, field.name), getattr(b, field.name), f"{path}.{field.name}")
    elif isinstance(a, tuple):
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            _same_types(x, y, f"{path}[{index}]")
    elif isinstance(a, datetime):
        assert a.utcoffset() == b.utcoffset(), f"{path}: offset changed"


def _events_of(task: Task) -> list[DomainEvent]:
    workflow = REGISTRY[task.kind].workflow
    events = []
    for version, entry in enumerate(task.history, start=1):
        transition = workflow.transition(entry.action)
        name = "opened" if transition is None else transition.event_names[0]
        events.append(
            DomainEvent(
                name,
                task.id,
                task.number,
                task.kind,
                entry.action,
                entry.actor,
                entry.at,
                entry.from_state,
                entry.to_state,
                version,
                entry.payload,
            )
        )
    return events


def _document_task() -> Task:
    """A document request opened, uploaded (history[1]), rejected, uploaded again, commented."""
    wf = DOCUMENT_REQUEST.workflow
    at = datetime(2026, 3, 1, 9, 30, tzinfo=PLUS_TWO)
    draft = NewTask(
        "ISO cert",
        CompanyId("supco"),
        DocumentRequest("ISO 9001", requires_expiry=True),
        tags=frozenset({"quality", "audit"}),
        assignees=[SUPPLIER.ref],
        due_at=at + timedelta(days=14),
    )
    task = engine.open_task(
        wf, "document_request", draft, BUYER, at, TaskId("t1"), "ACME-TASK-1"
    ).task
    pdf = FileRef("cert.pdf", PDF, 1024, "sha256:ab", "files/cert")
    steps: list[tuple[Actor, str, Any]] = [
        (SUPPLIER, "upload", UploadDocument(pdf, date(2027, 1, 1))),
        (BUYER, "reject", Reject("wrong year")),
        (SUPPLIER, "upload", UploadDocument(pdf, date(2028, 1, 1))),
        (BUYER, "comment", AddComment("thanks")),
    ]
    for hours, (actor, action, payload) in enumerate(steps, start=1):
        task = engine.apply(wf, task, action, actor, at + timedelta(hours=hours), payload).task
    return task


@pytest.fixture
def stored() -> dict[str, Any]:
    return json.loads(json.dumps(SERIALIZER.dump_task(_document_task())))


# --- round trips ---------------------------------------------------------------------------


@given(tasks(REGISTRY))
def test_every_task_round_trips_exactly_with_the_same_types_and_offsets(task):
    loaded = SERIALIZER.load_task(SERIALIZER.dump_task(task))
    assert loaded == task
    _same_types(loaded, task)


@given(tasks(REGISTRY))
def test_task_survives_json_text_and_back(task):
    dumped = SERIALIZER.dump_task(task)
    _plain_types_only(dumped)
    assert SERIALIZER.load_task(json.loads(json.dumps(dumped))) == task


@given(tasks(REGISTRY))
def test_same_task_always_gives_the_same_json_text(task):
    text = json.dumps(SERIALIZER.dump_task(task))
    reloaded = SERIALIZER.load_task(json.loads(text))
    assert json.dumps(SERIALIZER.dump_task(task)) == text
    assert json.dumps(ANOTHER_SERIALIZER.dump_task(reloaded)) == text


@given(tasks(REGISTRY))
def test_every_history_entry_round_trips_on_its_own(task):
    for entry in task.history:
        dumped = SERIALIZER.dump_entry(task.kind, entry)
        assert dumped["schema"] == SCHEMA_VERSION
        _plain_types_only(dumped)
        loaded = SERIALIZER.load_entry(task.kind, json.loads(json.dumps(dumped)))
        assert loaded == entry
        _same_types(loaded, entry)


@given(tasks(REGISTRY))
def test_every_event_round_trips_with_schema_and_kind(task):
    for event in _events_of(task):
        dumped = SERIALIZER.dump_event(event)
        assert (dumped["schema"], dumped["kind"]) == (SCHEMA_VERSION, task.kind)
        _plain_types_only(dumped)
        loaded = SERIALIZER.load_event(json.loads(json.dumps(dumped)))
        assert loaded == event
        _same_types(loaded, event)


def test_events_the_engine_emits_round_trip():
    task = _document_task()
    outcome = engine.apply(
        DOCUMENT_REQUEST.workflow, task, "accept", BUYER, datetime(2026, 4, 1, tzinfo=UTC)
    )
    draft = task.history[0].payload
    opened = engine.open_task(
        DOCUMENT_REQUEST.workflow, task.kind, draft, BUYER, task.created_at, task.id, task.number
    )
    for event in (*opened.events, *outcome.events):
        assert SERIALIZER.load_event(json.loads(json.dumps(SERIALIZER.dump_event(event)))) == event


def test_dumped_task_is_tagged_and_written_in_a_stable_plain_shape():
    dumped = SERIALIZER.dump_task(_document_task())
    assert (dumped["schema"], dumped["kind"]) == (SCHEMA_VERSION, "document_request")
    assert dumped["tags"] == ["audit", "quality"]
    assert dumped["history"][0]["actor"]["roles"] == ["admin", "buyer"]
    assert dumped["created_at"] == "2026-03-01T09:30:00+02:00"
    assert dumped["data"]["expires_on"] == "2028-01-01"
    assert dumped["ball"] == "requester"
    assert dumped["history"][0]["payload"]["data"]["document_type"] == "ISO 9001"


def test_time_offset_is_kept_not_converted_to_utc(stored):
    loaded = SERIALIZER.load_task(stored)
    assert loaded.created_at.utcoffset() == timedelta(hours=2)
    assert loaded.history[1].at.utcoffset() == timedelta(hours=2)


# --- a kind the host registers works with no change to the serializer ------------------------


class Urgency(enum.StrEnum):
    LOW = "low"
    EMERGENCY = "emergency"


class Trade(str, enum.Enum):  # noqa: UP042 - the mixin spelling hosts still use
    PLUMBER = "plumber"
    ELECTRICIAN = "electrician"


class Floor(int, enum.Enum):
    GROUND = 0
    FIRST = 1


@attrs.frozen
class Repair:
    address: str
    urgency: Urgency = Urgency.LOW
    parts: frozenset[str] = frozenset()
    window: tuple[int, int] | None = None
    meters: dict[str, float] = attrs.field(factory=dict, hash=False)
    trade: Trade = Trade.PLUMBER
    floor: Floor = Floor.GROUND
    crew: frozenset[UserRef] = frozenset()


@attrs.frozen
class Fix:
    technician: UserRef
    visits: tuple[datetime, ...]
    note: str | None = None


REPAIR = TaskKind(
    "repair",
    Repair,
    Workflow(
        name="repair",
        initial="reported",
        states=(State("reported", waiting_on=Side.RECIPIENT), State("fixed", final=True)),
        transitions=(Transition("fix", "reported", "fixed", Side.RECIPIENT, payload=Fix),),
    ),
)

REPAIR_TYPES = builtin_strategies().with_types(
    {
        Repair: st.builds(
            Repair,
            texts(),
            st.sampled_from(Urgency),
            st.frozensets(texts(max_size=5), max_size=3),
            st.none() | st.tuples(st.integers(0, 23), st.integers(0, 23)),
            st.dictionaries(
                texts(max_size=5), st.floats(allow_nan=False, allow_infinity=False), max_size=2
            ),
            st.sampled_from(Trade),
            st.sampled_from(Floor),
            st.frozensets(user_refs(), max_size=3),
        ),
        Fix: st.builds(
            Fix,
            user_refs(),
            st.lists(aware_datetimes(), max_size=3).map(tuple),
            st.none() | texts(),
        ),
    }
)


REPAIRS = Registry([REPAIR])
REPAIR_SERIALIZER = Serializer(REPAIRS)


@given(tasks(REPAIRS, table=REPAIR_TYPES))
def test_task_of_a_host_kind_round_trips_through_json(task):
    text = json.dumps(REPAIR_SERIALIZER.dump_task(task))
    loaded = REPAIR_SERIALIZER.load_task(json.loads(text))
    assert loaded == task
    _same_types(loaded, task)


def _repair_task() -> Task:
    at = datetime(2026, 1, 5, 8, tzinfo=PLUS_TWO)
    tom = UserRef(CompanyId("fixit"), UserId("tom"))
    ann = UserRef(CompanyId("fixit"), UserId("ann"))
    data = Repair(
        "Main St 1",
        Urgency.EMERGENCY,
        frozenset({"valve", "seal"}),
        (8, 12),
        {"water": 12.5},
        Trade.ELECTRICIAN,
        Floor.FIRST,
        frozenset({tom, ann}),
    )
    draft = NewTask("Boiler", CompanyId("fixit"), data)
    task = engine.open_task(REPAIR.workflow, "repair", draft, BUYER, at, TaskId("r1"), "R-1").task
    fix = Fix(tom, (at + timedelta(hours=3),), "done")
    tech = Actor(UserId("tom"), CompanyId("fixit"))
    return engine.apply(REPAIR.workflow, task, "fix", tech, at + timedelta(hours=4), fix).task


def test_kind_registered_after_the_serializer_was_made_round_trips():
    registry = Registry()
    serializer = Serializer(registry)
    registry.register(REPAIR)
    task = _repair_task()
    dumped = json.loads(json.dumps(serializer.dump_task(task)))
    assert dumped["history"][1]["payload"]["visits"] == ["2026-01-05T11:00:00+02:00"]
    assert (dumped["data"]["trade"], dumped["data"]["floor"]) == ("electrician", 1)
    assert dumped["data"]["crew"] == [
        {"company": "fixit", "user": "ann"},
        {"company": "fixit", "user": "tom"},
    ]
    assert serializer.load_task(dumped) == task


# --- errors name what is wrong and where -------------------------------------------------------


def _load_error(data: dict[str, Any]) -> DeserializationError:
    with pytest.raises(DeserializationError) as caught:
        SERIALIZER.load_task(data)
    return caught.value


def test_missing_schema_is_refused(stored):
    del stored["schema"]
    error = _load_error(stored)
    assert error.path == "schema"
    assert "missing" in str(error)
    assert error.task_id == "t1"


@pytest.mark.parametrize(("schema", "words"), [(SCHEMA_VERSION + 1, "newer"), ("1", "whole")])
def test_newer_or_malformed_schema_is_refused_with_what_is_supported(stored, schema, words):
    stored["schema"] = schema
    error = _load_error(stored)
    assert error.path == "schema"
    assert words in str(error)
    assert f"{SCHEMA_VERSION}" in str(error)


def test_unknown_kind_names_the_kind_and_the_registered_kinds(stored):
    stored["kind"] = "invoice"
    error = _load_error(stored)
    assert error.path == "kind"
    assert "'invoice'" in str(error)
    assert "'document_request'" in str(error)
    assert "'product_document_request'" in str(error)
    assert isinstance(error.__cause__, UnknownKind)
    assert error.task_id == "t1"


def test_unknown_action_in_history_names_the_action_and_its_entry(stored):
    stored["history"][2]["action"] = "teleport"
    error = _load_error(stored)
    assert error.path == "history[2].action"
    assert "'teleport'" in str(error)
    assert "'reject'" in str(error)  # the actions the kind does have


def test_wrong_media_type_in_a_history_payload_file_names_the_field_path(stored):
    stored["history"][1]["payload"]["file"]["media_type"] = "PDF document"
    error = _load_error(stored)
    assert error.path == "history[1].payload.file.media_type"
    assert "history[1].payload.file.media_type" in str(error)
    assert "'PDF document'" in str(error)


@pytest.mark.parametrize(
    ("where", "path"),
    [
        (lambda d: d, "created_at"),
        (lambda d: d["history"][3], "history[3].at"),
        (lambda d: d["comments"][0], "comments[0].at"),
    ],
)
def test_naive_datetime_is_refused_naming_the_field(stored, where, path):
    field = path.rsplit(".", 1)[-1]
    where(stored)[field] = "2026-03-01T09:30:00"
    error = _load_error(stored)
    assert error.path == path
    assert "naive" in str(error)


def test_missing_required_field_is_refused_naming_it(stored):
    del stored["history"][1]["payload"]["file"]["digest"]
    error = _load_error(stored)
    assert error.path == "history[1].payload.file.digest"
    assert "missing" in str(error)


@pytest.mark.parametrize(
    ("where", "path"),
    [
        (lambda d: d, "colour"),
        (lambda d: d["requester"], "requester.colour"),
        (lambda d: d["history"][0]["payload"]["data"], "history[0].payload.data.colour"),
    ],
)
def test_unknown_extra_key_is_refused_naming_it(stored, where, path):
    where(stored)["colour"] = "blue"
    error = _load_error(stored)
    assert error.path == path
    assert "unknown field" in str(error)


MISSING = object()
_STEP = re.compile(r"(\w+)|\[(\d+)\]")


def _put(data: Any, path: str, value: Any) -> None:
    steps: list[Any] = [name or int(index) for name, index in _STEP.findall(path)]
    for step in steps[:-1]:
        data = data[step]
    if value is MISSING:
        del data[steps[-1]]
    else:
        data[steps[-1]] = value


@pytest.mark.parametrize(
    ("where", "value", "path", "words"),
    [
        ("version", "2", "version", "whole number"),
        ("version", 0, "version", ">= 1"),
        ("subject", 7, "subject", "string"),
        ("priority", "urgent", "priority", "'high'"),
        ("tags", "audit", "tags", "list"),
        ("tags", ["audit", 3], "tags[1]", "string"),
        ("ball", "left", "ball", "'requester'"),
        ("due_at", "next week", "due_at", "ISO 8601"),
        ("due_at", 1_700_000_000, "due_at", "string"),
        ("requester", "bea@acme", "requester", "fields of UserRef"),
        ("kind", MISSING, "kind", "missing"),
        ("kind", 3, "kind", "string"),
        ("history", {}, "history", "list"),
        ("history[2]", "reject", "history[2]", "fields of HistoryEntry"),
        ("history[2].action", MISSING, "history[2].action", "missing"),
        ("history[2].action", 3, "history[2].action", "string"),
        ("data.requires_expiry", "yes", "data.requires_expiry", "true or false"),
        ("data.expires_on", 20280101, "data.expires_on", "date string"),
        ("data.expires_on", "2028-13-01", "data.expires_on", "ISO 8601 date"),
        ("history[1].payload.file.size", -1, "history[1].payload.file.size", ">= 0"),
        ("history[1].payload.file.size", 1.5, "history[1].payload.file.size", "whole number"),
        ("history[0].payload.data", [], "history[0].payload.data", "DocumentRequest"),
        ("comments[0].visibility", "secret", "comments[0].visibility", "'public'"),
    ],
)
def test_wrong_values_are_refused_naming_the_field_path(stored, where, value, path, words):
    _put(stored, where, value)
    error = _load_error(stored)
    assert error.path == path
    assert words in str(error)


@pytest.mark.parametrize(
    ("where", "value", "path", "words"),
    [
        ("data.window", [8], "data.window", "2 items"),
        ("data.window", [8, "noon"], "data.window[1]", "whole number"),
        ("data.meters", {"water": "lots"}, "data.meters['water']", "number"),
        ("data.meters", ["water"], "data.meters", "expected an object"),
        ("data.trade", "roofer", "data.trade", "'plumber'"),
        ("data.floor", True, "data.floor", "whole number"),
        ("data.floor", 7, "data.floor", "0, 1"),
        ("data.crew[0].user", "", "data.crew[0].user", "non-blank"),
        ("history[1].payload.visits[0]", "2026-01-05", "history[1].payload.visits[0]", "naive"),
    ],
)
def test_wrong_values_in_a_host_kind_are_refused_naming_the_field_path(where, value, path, words):
    stored = REPAIR_SERIALIZER.dump_task(_repair_task())
    _put(stored, where, value)
    with pytest.raises(DeserializationError) as caught:
        REPAIR_SERIALIZER.load_task(stored)
    assert caught.value.path == path
    assert words in str(caught.value)


def test_long_list_of_problems_is_cut_short_with_a_count(stored):
    stored["tags"] = list(range(12))
    message = str(_load_error(stored))
    assert "(12 problems)" in message
    assert "tags[9]" in message
    assert "tags[10]" not in message
    assert "and 2 more" in message


def test_every_problem_is_listed_and_the_first_is_the_path(stored):
    stored["subject"] = ""
    del stored["history"][1]["payload"]["file"]["digest"]
    stored["history"][3]["payload"] = {"unexpected": True}
    error = _load_error(stored)
    message = str(error)
    assert "history[1].payload.file.digest" in message
    assert "history[3].payload" in message
    assert error.path == "history[1].payload.file.digest"


def test_payload_given_to_an_action_without_one_is_refused(stored):
    stored["history"][3]["payload"] = {"reason": "x"}
    stored["history"][3]["action"] = "accept"
    error = _load_error(stored)
    assert error.path == "history[3].payload"
    assert "no payload" in str(error)


def test_input_that_is_not_a_mapping_is_refused():
    with pytest.raises(DeserializationError, match="expected an object"):
        SERIALIZER.load_task([1, 2])  # type: ignore[arg-type]


def test_event_with_unknown_action_or_kind_is_refused():
    event = _events_of(_document_task())[1]
    dumped = SERIALIZER.dump_event(event)
    bad_action = {**dumped, "action": "teleport"}
    with pytest.raises(DeserializationError, match="teleport") as caught:
        SERIALIZER.load_event(bad_action)
    assert (caught.value.path, caught.value.task_id) == ("action", "t1")
    with pytest.raises(DeserializationError, match="invoice") as caught:
        SERIALIZER.load_event({**dumped, "kind": "invoice"})
    assert caught.value.path == "kind"
    with pytest.raises(DeserializationError, match="schema"):
        SERIALIZER.load_event({k: v for k, v in dumped.items() if k != "schema"})


def test_entry_of_an_unknown_kind_is_refused_naming_the_registered_kinds():
    entry = _document_task().history[1]
    dumped = SERIALIZER.dump_entry("document_request", entry)
    with pytest.raises(DeserializationError, match=r"'invoice'.*'document_request'"):
        SERIALIZER.load_entry("invoice", dumped)


def test_entry_with_a_bad_payload_names_the_path_inside_it():
    dumped = SERIALIZER.dump_entry("document_request", _document_task().history[1])
    broken = copy.deepcopy(dumped)
    broken["payload"]["file"]["size"] = -1
    with pytest.raises(DeserializationError) as caught:
        SERIALIZER.load_entry("document_request", broken)
    assert caught.value.path == "payload.file.size"


# --- dumping refuses what it could not read back -------------------------------------------------


def _upload_entry(**changes: Any) -> HistoryEntry:
    return attrs.evolve(_document_task().history[1], **changes)


PDF_FILE = FileRef("a.pdf", PDF, 1, "sha256:aa", "files/a")


def _forged_upload(expires_on: Any) -> UploadDocument:
    """An upload whose expiry its own class would refuse (forged past the validators)."""
    upload = UploadDocument(PDF_FILE)
    object.__setattr__(upload, "expires_on", expires_on)
    return upload


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        (_upload_entry(payload=Reject("no")), "needs a UploadDocument, got Reject"),
        (_upload_entry(payload=None), "got nothing"),
        (_upload_entry(action="teleport"), "'teleport' is not an action"),
        (_upload_entry(payload=_forged_upload(datetime(2027, 1, 1, tzinfo=UTC))), "date"),
        (
            _upload_entry(
                action=OPEN,
                payload=NewTask("s", CompanyId("supco"), Reject("x")),
                changed=(),
                facts=(Side.RECIPIENT, None),
                appended=(),
            ),
            "draft data of type DocumentRequest",
        ),
    ],
)
def test_dumping_what_could_not_be_read_back_is_refused(entry, words):
    with pytest.raises(InvalidPayload, match=words):
        SERIALIZER.dump_entry("document_request", entry)


def test_dumping_a_task_whose_data_is_not_its_kinds_type_is_refused():
    task = attrs.evolve(_document_task(), data=Reject("no"))
    with pytest.raises(InvalidPayload, match="DocumentRequest"):
        SERIALIZER.dump_task(task)


def test_dumping_a_task_of_an_unregistered_kind_raises_unknown_kind():
    with pytest.raises(UnknownKind):
        Serializer(Registry()).dump_task(_document_task())


def test_entry_dumped_alone_is_its_form_inside_the_task_plus_the_schema():
    # An entry dumped alone equals its form inside the task, plus the schema tag.
    task = _document_task()
    inside = SERIALIZER.dump_task(task)["history"][1]
    alone = SERIALIZER.dump_entry(task.kind, task.history[1])
    assert alone == {"schema": SCHEMA_VERSION, **inside}
    assert isinstance(SERIALIZER.load_entry(task.kind, alone), HistoryEntry)


def test_converter_reads_and_writes_tasks_inside_other_values_by_their_kind():
    both = [_document_task(), attrs.evolve(_document_task(), id=TaskId("t2"))]
    plain = SERIALIZER.converter.unstructure(both, list[Task])
    assert SERIALIZER.converter.structure(json.loads(json.dumps(plain)), list[Task]) == both


def test_draft_payload_of_the_open_entry_is_typed_by_the_kind(stored):
    loaded = SERIALIZER.load_task(stored)
    assert loaded.history[0].action == OPEN
    assert isinstance(loaded.history[0].payload, NewTask)
    assert isinstance(loaded.history[0].payload.data, DocumentRequest)


# --- causes and system actors ----------------------------------------------------------------


def _caused_task() -> Task:
    """A document request opened by a rule for an outside request, then uploaded by a handler."""
    wf = DOCUMENT_REQUEST.workflow
    at = datetime(2026, 3, 1, 9, 30, tzinfo=PLUS_TWO)
    rule = Actor.system("onboarding", CompanyId("acme"), ["buyer"])
    draft = NewTask("ISO cert", CompanyId("supco"), DocumentRequest("ISO 9001"))
    opened = engine.open_task(
        wf, DOCUMENT_REQUEST.name, draft, rule, at, TaskId("t1"), "ACME-TASK-1", cause=Cause("r1")
    )
    pdf = FileRef("cert.pdf", PDF, 1024, "sha256:ab", "files/cert")
    cause = Cause("r1", opened.events[0].id, 1)
    return engine.apply(
        wf, opened.task, "upload", SUPPLIER, at, UploadDocument(pdf), cause=cause
    ).task


def test_causes_and_system_actors_round_trip_on_tasks_entries_and_events():
    task = _caused_task()
    dumped = json.loads(json.dumps(SERIALIZER.dump_task(task)))
    assert dumped["history"][0]["actor"]["type"] == "system"
    assert dumped["history"][1]["cause"] == {
        "correlation_id": "r1",
        "event_id": "t1@1/opened",
        "depth": 1,
    }
    assert SERIALIZER.load_task(dumped) == task
    for entry in task.history:
        assert SERIALIZER.load_entry(task.kind, SERIALIZER.dump_entry(task.kind, entry)) == entry
    for event in _events_of(task):
        event = attrs.evolve(event, cause=Cause("r1"))
        assert SERIALIZER.load_event(json.loads(json.dumps(SERIALIZER.dump_event(event)))) == event


def _strip(data: Any, *keys: str) -> None:
    """Remove `keys` wherever they occur: the shape written before causes and actor types."""
    if isinstance(data, dict):
        for key in keys:
            data.pop(key, None)
        for value in data.values():
            _strip(value, *keys)
    elif isinstance(data, list):
        for item in data:
            _strip(item, *keys)


def test_stored_data_without_causes_or_actor_types_loads_as_users_with_no_cause(stored):
    _strip(stored, "cause", "type")
    loaded = SERIALIZER.load_task(stored)
    assert loaded == _document_task()
    assert all(e.cause is None and e.actor.type is ActorType.USER for e in loaded.history)
