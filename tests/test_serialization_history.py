"""Stored history: facts in the JSON shape, schema-1 documents, workflow versions and upgrades."""

import copy
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest

from taskflow import (
    PDF,
    Actor,
    ActorType,
    AddComment,
    Cause,
    CompanyId,
    DeserializationError,
    FileRef,
    InvalidPayload,
    NewTask,
    Registry,
    Serializer,
    Side,
    State,
    Task,
    TaskId,
    TaskKind,
    Transition,
    Workflow,
    common_actions,
    default_registry,
    replay,
)
from taskflow.domain import engine
from taskflow.kinds.audit import AddFiles
from taskflow.kinds.corrective_action import CORRECTIVE_ACTION, CorrectiveAction, Reopen, Resolve
from taskflow.kinds.document import DOCUMENT_REQUEST, DocumentRequest, Reject, UploadDocument
from taskflow.serialization import SCHEMA_VERSION

FIXTURES = Path(__file__).parent / "fixtures" / "schema1"
REGISTRY = default_registry()
SERIALIZER = Serializer(REGISTRY)
PLUS_TWO = timezone(timedelta(hours=2))
AT = datetime(2025, 9, 1, 9, 30, tzinfo=PLUS_TWO)
BUYER = Actor("bea", "acme", {"buyer", "admin"})
CLERK = Actor("carl", "acme")
SUPPLIER = Actor("sam", "supco")
PDF_1 = FileRef("cert.pdf", PDF, 1024, "sha256:ab", "files/cert")
PDF_2 = FileRef("cert-2025.pdf", PDF, 2048, "sha256:cd", "files/cert-2025")
PHOTO = FileRef("site.png", "image/png", 4096, "sha256:ef", "files/site")


def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _schema_1_rules(workflow: Workflow) -> Workflow:
    """The rules schema-1 histories were made by: effects as they were, no rules added since."""
    transitions = [
        t if t.schema_1_effect is None else attrs.evolve(t, effect=t.schema_1_effect)
        for t in workflow.transitions
    ]
    return attrs.evolve(workflow, transitions=transitions, assign_answerer=False)


def _run(
    kind: TaskKind, draft: NewTask, steps, task_id: str, number: str, *, then: bool = False
) -> Task:
    workflow = _schema_1_rules(kind.workflow) if then else kind.workflow
    task = engine.open_task(workflow, kind.name, draft, BUYER, AT, TaskId(task_id), number).task
    for hours, (actor, action, payload) in enumerate(steps, start=1):
        at = AT + timedelta(hours=hours)
        task = engine.apply(workflow, task, action, actor, at, payload).task
    return task


def _document_task(*, then: bool = False) -> Task:
    """The task tests/fixtures/schema1/document_request.json holds, made by today's engine."""
    draft = NewTask(
        "ISO cert",
        CompanyId("supco"),
        DocumentRequest("ISO 9001", requires_expiry=True),
        tags=frozenset({"quality", "audit"}),
        assignees=[SUPPLIER.ref],
        watchers=[CLERK.ref],
        due_at=AT + timedelta(days=14),
    )
    steps = [
        (SUPPLIER, "upload", UploadDocument(PDF_1, date(2027, 1, 1))),
        (BUYER, "comment", AddComment("expired scan?", "internal")),
        (BUYER, "reject", Reject("wrong year")),
        (SUPPLIER, "comment", AddComment("new one coming")),
        (SUPPLIER, "upload", UploadDocument(PDF_2, date(2028, 1, 1))),
        (BUYER, "accept", None),
        (BUYER, "comment", AddComment("thanks")),
    ]
    return _run(DOCUMENT_REQUEST, draft, steps, "t-doc", "ACME-TASK-1", then=then)


def _corrective_task() -> Task:
    """The task tests/fixtures/schema1/corrective_action.json holds, made by today's engine."""
    draft = NewTask(
        "Fix the labels",
        CompanyId("supco"),
        CorrectiveAction("Labels are wrong"),
        assignees=[SUPPLIER.ref],
    )
    steps = [
        (SUPPLIER, "add_files", AddFiles([PHOTO])),
        (SUPPLIER, "resolve", Resolve("reprinted", "old template")),
        (BUYER, "reopen", Reopen("still wrong on pallet 3")),
        (SUPPLIER, "comment", AddComment("on it")),
        (SUPPLIER, "add_files", AddFiles([PDF_1])),
        (SUPPLIER, "resolve", Resolve("pallet 3 relabelled")),
        (BUYER, "close", None),
    ]
    return _run(CORRECTIVE_ACTION, draft, steps, "t-ca", "ACME-TASK-2")


# --- the stored shape of facts ---------------------------------------------------------------


def test_entries_store_their_facts_by_field_name_and_tasks_their_workflow_version():
    dumped = json.loads(json.dumps(SERIALIZER.dump_task(_document_task())))
    assert (dumped["schema"], dumped["workflow_version"]) == (SCHEMA_VERSION, 1) == (2, 1)
    opened, uploaded, commented = dumped["history"][:3]
    assert (opened["facts"], opened["appended"]) == ({"ball": "recipient", "resolved_at": None}, [])
    assert list(uploaded["facts"]) == uploaded["changed"] == ["state", "data", "files", "ball"]
    assert uploaded["appended"] == ["files"]
    assert uploaded["facts"]["files"] == [SERIALIZER.converter.unstructure(PDF_1)]
    assert uploaded["facts"]["data"]["expires_on"] == "2027-01-01"
    assert uploaded["facts"]["ball"] == "requester"
    assert commented["facts"]["comments"][0]["text"] == "expired scan?"


def _load_error(data: dict[str, Any], serializer: Serializer = SERIALIZER) -> DeserializationError:
    with pytest.raises(DeserializationError) as caught:
        serializer.load_task(data)
    return caught.value


def _stored() -> dict[str, Any]:
    return json.loads(json.dumps(SERIALIZER.dump_task(_document_task())))


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (
            lambda d: d["history"][1]["facts"]["data"].update(expires_on="soon"),
            "history[1].facts.data.expires_on",
            "ISO 8601 date",
        ),
        (
            lambda d: d["history"][1]["facts"].update(ball="left"),
            "history[1].facts.ball",
            "'requester'",
        ),
        (
            lambda d: d["history"][1]["facts"].update(files={}),
            "history[1].facts.files",
            "expected a list",
        ),
        (
            lambda d: d["history"][0]["facts"].update(resolved_at="2025-09-01T09:30:00"),
            "history[0].facts.resolved_at",
            "naive",
        ),
        (
            lambda d: d["history"][1]["facts"].pop("ball"),
            "history[1].facts",
            "a value for each field the entry records",
        ),
        (lambda d: d["history"][1].pop("facts"), "history[1].facts", "one value for each of"),
        (
            lambda d: d["history"][1].update(facts=[]),
            "history[1].facts",
            "an object of field names",
        ),
        (
            lambda d: d["history"][1].update(appended=["state"]),
            "history[1].appended",
            "only recorded tuple fields",
        ),
        (
            lambda d: d["history"][1].update(
                changed=["state", "number"], facts={"state": "uploaded", "number": "X"}
            ),
            "history[1].facts.number",
            "not a field a history entry records",
        ),
        (lambda d: d.update(workflow_version=0), "workflow_version", ">= 1"),
        (lambda d: d["history"][1].update(changed="state"), "history[1].changed", "list"),
    ],
)
def test_wrong_facts_are_refused_naming_the_path(change, path, words):
    stored = _stored()
    change(stored)
    error = _load_error(stored)
    assert error.path == path
    assert words in str(error)


def test_dumping_an_entry_whose_data_fact_is_not_the_kind_data_type_is_refused():
    task = _document_task()
    entry = task.history[1]
    bad = attrs.evolve(entry, facts=(entry.facts[0], Reject("no"), *entry.facts[2:]))
    with pytest.raises(InvalidPayload, match="its fact data needs a DocumentRequest, got Reject"):
        SERIALIZER.dump_entry(task.kind, bad)


# --- schema-1 documents: facts derived on load -------------------------------------------------


@pytest.mark.parametrize(
    ("name", "made_today"),
    [
        # Made by the rules of its time: an upload then kept the last rejection's reason.
        ("document_request", lambda: _document_task(then=True)),
        ("corrective_action", _corrective_task),
    ],
)
def test_schema_1_task_loads_with_the_facts_the_engine_records_today(name, made_today):
    stored = _fixture(name)
    assert stored["schema"] == 1
    assert all("facts" not in entry for entry in stored["history"])
    loaded = SERIALIZER.load_task(stored)
    assert loaded == made_today()
    assert replay(None, loaded) == loaded
    again = SERIALIZER.dump_task(loaded)
    assert again["schema"] == SCHEMA_VERSION
    assert SERIALIZER.load_task(json.loads(json.dumps(again))) == loaded


def test_schema_1_task_with_a_system_actor_and_causes_loads():
    loaded = SERIALIZER.load_task(_fixture("system_actor_with_causes"))
    opened, uploaded, accepted = loaded.history
    assert opened.actor.type is ActorType.SYSTEM
    assert loaded.assignees == ()  # a rule opened it: nobody was made an assignee
    assert opened.cause == Cause("import-7")
    assert uploaded.cause == Cause("import-7", "t-rule@1/opened", 1)
    assert accepted.facts[accepted.changed.index("state")] == "accepted"
    assert replay(None, loaded) == loaded


def test_schema_1_event_loads_as_it_was_stored():
    event = SERIALIZER.load_event(_fixture("event"))
    assert (event.name, event.cause, event.id) == (
        "document_uploaded",
        Cause("x"),
        "t-rule@2/document_uploaded",
    )


@pytest.mark.parametrize("name", ["document_request.entry0", "document_request.entry1"])
def test_schema_1_entry_alone_is_refused_since_only_its_task_holds_its_facts(name):
    with pytest.raises(DeserializationError, match="stored by schema 1") as caught:
        SERIALIZER.load_entry("document_request", _fixture(name))
    assert caught.value.path == "facts"
    assert "load the task it belongs to" in str(caught.value)


def test_history_with_some_entries_lacking_facts_is_derived_again_as_a_whole():
    stored = _stored()
    stored["history"][2]["facts"] = None
    assert SERIALIZER.load_task(stored) == _document_task()


def test_schema_1_document_is_not_changed_by_loading_it():
    stored = _fixture("document_request")
    before = copy.deepcopy(stored)
    SERIALIZER.load_task(stored)
    assert stored == before


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (
            lambda d: d["history"][1]["payload"]["file"].update(media_type="image/png"),
            "history[1]",
            "entry 'upload' by sam@supco at 2025-09-01T10:30:00+02:00 was stored by schema 1 "
            "without facts; deriving them by replaying it with workflow 'document_request' "
            "fails: InvalidPayload",
        ),
        (
            lambda d: d["history"][3].update(to_state="declined"),
            "history[3]",
            "gives 'uploaded' -> 'rejected' changing ['state', 'data', 'ball'], stored: "
            "'uploaded' -> 'declined'",
        ),
        (lambda d: d.update(subject="Other"), "history", "gives other ['subject'] than stored"),
        (lambda d: d["history"].pop(0), "history", "must start with an 'open' entry"),
    ],
)
def test_schema_1_task_whose_history_does_not_replay_is_refused_naming_the_entry(
    change, path, words
):
    stored = _fixture("document_request")
    change(stored)
    error = _load_error(stored)
    assert error.path == path
    assert words in str(error)
    assert error.task_id == "t-doc"


# --- workflow versions and kind upgrades --------------------------------------------------------


@attrs.frozen
class Sample:
    product: str


@attrs.frozen
class SampleV2:
    product: str
    quantity: int


@attrs.frozen
class Ship:
    carrier: str


@attrs.frozen
class ShipV2:
    courier: str


R, Q = Side.REQUESTER, Side.RECIPIENT


def _sample_workflow(version: int, shipped: str, ship_payload: type) -> Workflow:
    return Workflow(
        name="sample_request",
        initial="requested",
        version=version,
        states=(
            State("requested", waiting_on=Q),
            State(shipped, waiting_on=R),
            State("received", final=True),
        ),
        transitions=(
            Transition("ship", "requested", shipped, Q, payload=ship_payload),
            Transition("confirm", shipped, "received", R),
            *common_actions(),
        ),
    )


def _v1_to_v2(document: dict[str, Any]) -> dict[str, Any]:
    """Version 2 renamed 'shipped' to 'in_transit', added `quantity`, renamed `carrier`."""

    def state(name: str | None) -> str | None:
        return "in_transit" if name == "shipped" else name

    def data(value: dict[str, Any]) -> dict[str, Any]:
        return {**value, "quantity": 1}

    document["state"] = state(document["state"])
    document["data"] = data(document["data"])
    for entry in document["history"]:
        entry["from_state"], entry["to_state"] = (
            state(entry["from_state"]),
            state(entry["to_state"]),
        )
        if entry["action"] == "open":
            entry["payload"]["data"] = data(entry["payload"]["data"])
        if entry["action"] == "ship":
            entry["payload"] = {"courier": entry["payload"]["carrier"]}
        facts = entry["facts"]  # null in a schema-1 document: derived after the upgrade
        if facts is not None and "state" in facts:
            facts["state"] = state(facts["state"])
        if facts is not None and "data" in facts:
            facts["data"] = data(facts["data"])
    return document


SAMPLE_V1 = TaskKind("sample_request", Sample, _sample_workflow(1, "shipped", Ship))
SAMPLE_V2 = TaskKind(
    "sample_request", SampleV2, _sample_workflow(2, "in_transit", ShipV2), upgrades={1: _v1_to_v2}
)


def _sample_v1_task() -> Task:
    draft = NewTask("Samples", CompanyId("supco"), Sample("X-200"))
    steps = [
        (SUPPLIER, "comment", AddComment("packing")),
        (SUPPLIER, "ship", Ship("DHL")),
    ]
    return _run(SAMPLE_V1, draft, steps, "t-s", "ACME-TASK-9")


def test_task_stored_under_an_older_workflow_is_upgraded_on_load_and_replays():
    stored = json.loads(json.dumps(Serializer(Registry([SAMPLE_V1])).dump_task(_sample_v1_task())))
    assert stored["workflow_version"] == 1
    before = copy.deepcopy(stored)
    loaded = Serializer(Registry([SAMPLE_V2])).load_task(stored)
    assert stored == before  # the upgrade worked on a copy
    assert (loaded.workflow_version, loaded.state, loaded.data) == (
        2,
        "in_transit",
        SampleV2("X-200", 1),
    )
    assert loaded.history[0].payload.data == SampleV2("X-200", 1)
    assert loaded.history[-1].payload == ShipV2("DHL")
    assert replay(None, loaded) == loaded
    # It goes on under the new workflow, and is written at the new version.
    done = engine.apply(SAMPLE_V2.workflow, loaded, "confirm", BUYER, AT + timedelta(days=1)).task
    dumped = Serializer(Registry([SAMPLE_V2])).dump_task(done)
    assert dumped["workflow_version"] == 2
    assert Serializer(Registry([SAMPLE_V2])).load_task(dumped) == done


def test_upgrades_run_one_version_after_the_other_from_the_stored_one():
    seen: list[tuple[str, int]] = []

    def step(name: str):
        def upgrade(document: dict[str, Any]) -> dict[str, Any]:
            seen.append((name, document["workflow_version"]))
            return document

        return upgrade

    v3 = TaskKind(
        "sample_request",
        Sample,
        _sample_workflow(3, "shipped", Ship),
        upgrades={2: step("second"), 1: step("first")},
    )
    stored = Serializer(Registry([SAMPLE_V1])).dump_task(_sample_v1_task())
    loaded = Serializer(Registry([v3])).load_task(stored)
    assert seen == [("first", 1), ("second", 2)]
    assert loaded.workflow_version == 3
    stored["workflow_version"] = 2
    seen.clear()
    Serializer(Registry([v3])).load_task(stored)
    assert seen == [("second", 2)]


def test_task_of_a_newer_workflow_than_the_registered_one_is_refused_naming_both():
    stored = Serializer(Registry([SAMPLE_V1])).dump_task(_sample_v1_task())
    stored["workflow_version"] = 2
    error = _load_error(stored, Serializer(Registry([SAMPLE_V1])))
    assert error.path == "workflow_version"
    assert (
        "stored under version 2 of kind 'sample_request', but the registered workflow "
        "'sample_request' is version 1" in str(error)
    )


def _failing(document: dict[str, Any]) -> dict[str, Any]:
    return document["no such key"]


@pytest.mark.parametrize(
    ("upgrade", "words"),
    [
        (_failing, "failed: KeyError: 'no such key'"),
        (lambda document: None, "must return the task as a dict, got None"),
    ],
)
def test_upgrade_that_fails_is_refused_naming_the_kind_and_versions(upgrade, words):
    kind = TaskKind(
        "sample_request", Sample, _sample_workflow(2, "shipped", Ship), upgrades={1: upgrade}
    )
    stored = Serializer(Registry([SAMPLE_V1])).dump_task(_sample_v1_task())
    error = _load_error(stored, Serializer(Registry([kind])))
    assert error.path == "workflow_version"
    assert "the upgrade of kind 'sample_request' from workflow version 1 to 2" in str(error)
    assert words in str(error)


def _renamed(workflow: Workflow, old: str, new: str, version: int) -> Workflow:
    def name(state: str | None) -> str | None:
        return new if state == old else state

    return attrs.evolve(
        workflow,
        version=version,
        initial=name(workflow.initial),
        states=[attrs.evolve(s, name=name(s.name)) for s in workflow.states],
        transitions=[
            attrs.evolve(t, sources=frozenset(map(name, t.sources)), target=name(t.target))
            for t in workflow.transitions
        ],
    )


def _accepted_becomes_approved(document: dict[str, Any]) -> dict[str, Any]:
    def name(state: str | None) -> str | None:
        return "approved" if state == "accepted" else state

    document["state"] = name(document["state"])
    for entry in document["history"]:
        entry["from_state"], entry["to_state"] = name(entry["from_state"]), name(entry["to_state"])
        if entry["facts"] is not None and "state" in entry["facts"]:
            entry["facts"]["state"] = name(entry["facts"]["state"])
    return document


def test_schema_1_task_of_a_kind_whose_state_was_renamed_since_loads_through_the_upgrade():
    renamed = TaskKind(
        "document_request",
        DocumentRequest,
        _renamed(DOCUMENT_REQUEST.workflow, "accepted", "approved", 2),
        upgrades={1: _accepted_becomes_approved},
    )
    serializer = Serializer(Registry([renamed]))
    # Stored by schema 1, before workflows had versions: facts are derived after the upgrade.
    loaded = serializer.load_task(_fixture("document_request"))
    assert (loaded.state, loaded.workflow_version) == ("approved", 2)
    assert [e.to_state for e in loaded.history].count("approved") == 2
    assert replay(None, loaded) == loaded
    # And a task stored with facts under version 1 loads too.
    with_facts = SERIALIZER.dump_task(_document_task(then=True))
    assert serializer.load_task(with_facts) == loaded
