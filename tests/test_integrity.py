"""Integrity (issue 9): views are never stored, lists re-check parties, health checks, answerers."""

import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import attrs
import pytest

import taskflow as tf
from taskflow import Actor, NewTask, TaskQuery, Visibility
from taskflow.adapters.memory import InMemoryRepository
from taskflow.adapters.sqlite import SqliteRepository
from taskflow.errors import TaskNotFound, ViewNotSaveable
from taskflow.kinds import default_registry
from taskflow.kinds.document import Decline, DocumentRequest, Reject, UploadDocument
from taskflow.serialization import Serializer

REGISTRY = default_registry()
SERIALIZER = Serializer(REGISTRY)
START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
BEA = Actor("bea", "acme")
SAM = Actor("sam", "supco")
EVE = Actor("eve", "evil")


def _service(repository) -> tf.TaskService:
    return tf.TaskService(
        registry=REGISTRY,
        repository=repository,
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )


@pytest.fixture(params=["memory", "sqlite"])
def service(request, tmp_path: Path):
    if request.param == "memory":
        yield _service(InMemoryRepository(registry=REGISTRY))
        return
    repository = SqliteRepository(tmp_path / "tasks.db", REGISTRY, serializer=SERIALIZER)
    yield _service(repository)
    repository.close()


def _pdf(n: int = 1) -> UploadDocument:
    return UploadDocument(tf.FileRef(f"c{n}.pdf", tf.PDF, 10, f"sha256:{n}", f"files/{n}"))


def _open(service: tf.TaskService, assignees=(SAM.ref,)) -> tf.Task:
    draft = NewTask(
        "ISO 9001 certificate", "supco", DocumentRequest("ISO 9001"), assignees=assignees
    )
    return service.open(BEA, "document_request", draft).task


# --- views are never stored -----------------------------------------------------------------


def test_a_partners_view_cannot_be_saved_and_the_internal_notes_survive(service) -> None:
    task = _open(service)
    service.comment(BEA, task.id, "Their last audit was poor", Visibility.INTERNAL)
    view = service.get(SAM, task.id)
    assert view.is_view
    assert view.view_of == "supco"
    assert view.comments == ()
    outcome = service.comment(SAM, task.id, "Uploading soon")
    for refused in (view, outcome.task):
        with pytest.raises(ViewNotSaveable, match="is a view for supco"):
            service.repository.save(refused, refused.version - 1)
    stored = service.repository.get(task.id)
    assert [c.text for c in stored.comments] == ["Their last audit was poor", "Uploading soon"]
    assert not stored.is_view


def test_a_task_nothing_is_hidden_from_is_the_stored_task_itself(service) -> None:
    task = _open(service)
    assert not service.get(SAM, task.id).is_view
    assert not service.get(BEA, task.id).is_view


# --- lists re-check the parties; the health check reports tampered index columns ------------


def _tamper_sqlite(repository: SqliteRepository, task_id: str) -> None:
    with closing(sqlite3.connect(repository.path, isolation_level=None)) as raw:
        raw.execute(
            "UPDATE tasks SET requester_company = 'evil', ball_company = 'evil' WHERE id = ?",
            (task_id,),
        )
        raw.execute(
            "UPDATE task_assignees SET company = 'evil', user_id = 'eve', ball_company = 'evil' "
            "WHERE user_id = 'sam' AND task_pk = (SELECT pk FROM tasks WHERE id = ?)",
            (task_id,),
        )


def _tamper_memory(repository: InMemoryRepository, task_id: str) -> None:
    repository._by_company["evil"].add(task_id)
    repository._by_ball["evil"].add(task_id)
    repository._by_assignee[EVE.ref].add(task_id)


def test_a_tampered_index_shows_a_stranger_nothing_and_the_health_check_reports_it(
    service,
) -> None:
    task = _open(service)
    _open(service)
    assert service.repository.check() == []
    if isinstance(service.repository, SqliteRepository):
        _tamper_sqlite(service.repository, task.id)
    else:
        _tamper_memory(service.repository, task.id)
    if isinstance(service.repository, SqliteRepository):
        # SQLite answers from its (tampered) columns; the service checks every task it returns.
        found = service.repository.query(TaskQuery(ball_company="evil"))
        assert [t.id for t in found] == [task.id]
    assert service.inbox(EVE) == []
    assert service.teambox(EVE) == []
    assert service.find(EVE, TaskQuery()) == []
    assert service.dashboard(EVE).counts == {}
    with pytest.raises(TaskNotFound):
        service.get(EVE, task.id)
    problems = service.repository.check()
    assert problems
    assert {p.task_id for p in problems} == {task.id}
    text = "\n".join(str(p) for p in problems)
    assert "evil" in text
    if isinstance(service.repository, SqliteRepository):
        assert {p.index for p in problems} == {
            "requester_company",
            "ball_company",
            "task_assignees",
        }


def test_the_health_check_reports_a_row_that_does_not_load(tmp_path: Path) -> None:
    repository = SqliteRepository(tmp_path / "t.db", REGISTRY, serializer=SERIALIZER)
    service = _service(repository)
    task = _open(service)
    with closing(sqlite3.connect(repository.path, isolation_level=None)) as raw:
        raw.execute("UPDATE tasks SET body = '{broken' WHERE id = ?", (task.id,))
    repository._cache.clear()
    (problem,) = repository.check()
    assert (problem.task_id, problem.index) == (task.id, "row")
    assert "does not parse" in problem.problem
    repository.close()


def test_the_health_check_finds_nothing_wrong_after_a_busy_day(service) -> None:
    for i in range(4):
        task = _open(service)
        service.act(SAM, task.id, "upload", _pdf(i))
        if i % 2:
            service.act(BEA, task.id, "reject", Reject("Expired"))
        service.comment(BEA, task.id, "note", Visibility.INTERNAL)
    assert service.repository.check() == []


# --- a document request keeps its reasons only until the next answer -------------------------


def test_an_upload_after_a_rejection_clears_the_reject_reason(service) -> None:
    task = _open(service)
    service.act(SAM, task.id, "upload", _pdf(1))
    rejected = service.act(BEA, task.id, "reject", Reject("Expired")).task
    assert rejected.data.reject_reason == "Expired"
    again = service.act(SAM, task.id, "upload", _pdf(2)).task
    assert again.data.reject_reason is None
    assert again.data.document == _pdf(2).file


def test_a_decline_after_a_rejection_clears_the_rejected_file_and_reason(service) -> None:
    task = _open(service)
    service.act(SAM, task.id, "upload", _pdf(1))
    service.act(BEA, task.id, "reject", Reject("Expired"))
    declined = service.act(SAM, task.id, "decline", Decline("No longer made")).task
    assert declined.data.document is None
    assert declined.data.expires_on is None
    assert declined.data.reject_reason is None
    assert declined.data.decline_reason == "No longer made"
    assert [f.name for f in declined.files] == ["c1.pdf"]  # the upload stays on record


# --- whoever answers for a company with no assignee becomes its assignee ----------------------

SUE = Actor("sue", "supco")


def test_a_rejected_response_comes_back_to_the_inbox_of_whoever_gave_it(service) -> None:
    # Seed 001: Sue answers from the Teambox without claiming; the buyer rejects.
    task = _open(service, assignees=())
    assert [t.id for t in service.teambox(SUE)] == [task.id]
    assert service.inbox(SUE) == []
    uploaded = service.act(SUE, task.id, "upload", _pdf()).task
    assert uploaded.assignees_of("supco") == (SUE.ref,)
    service.notifier.clear()
    service.act(BEA, task.id, "reject", Reject("Expired"))
    assert [t.id for t in service.inbox(SUE)] == [task.id]
    assert [n.event for n in service.notifier.for_user(SUE.ref)] == ["document_rejected"]


def test_an_answer_for_a_company_that_has_an_assignee_assigns_nobody_new(service) -> None:
    task = _open(service)
    uploaded = service.act(SUE, task.id, "upload", _pdf()).task
    assert uploaded.assignees_of("supco") == (SAM.ref,)
    assert uploaded.history[-1].changed.count("assignees") == 0


def test_a_comment_that_hands_nothing_on_assigns_nobody(service) -> None:
    task = _open(service, assignees=())
    commented = service.comment(SUE, task.id, "Looking into it").task
    assert commented.assignees_of("supco") == ()


def test_a_business_agent_who_answers_a_ticket_gets_the_customers_reply(service) -> None:
    from taskflow.kinds.ticket import SupportTicket

    customer, agent = Actor("cat", "shopper"), Actor("ann", "acme")
    form = SupportTicket(name="Cat", email="cat@example.com", description="Broken")
    ticket = service.open(customer, "support_ticket", NewTask("Broken", "acme", form)).task
    answered = service.comment(agent, ticket.id, "Try turning it off and on").task
    assert answered.assignees_of("acme") == (agent.ref,)
    service.notifier.clear()
    service.comment(customer, ticket.id, "Still broken")
    assert [t.id for t in service.inbox(agent)] == [ticket.id]
    assert [n.recipient for n in service.notifier.sent] == [agent.ref]


def test_the_answerer_rule_is_a_workflow_setting_and_replay_gives_the_stored_task(service) -> None:
    task = _open(service, assignees=())
    service.act(SUE, task.id, "upload", _pdf())
    stored = service.repository.get(task.id)
    workflow = REGISTRY["document_request"].workflow
    assert workflow.assign_answerer
    assert tf.replay(workflow, stored) == stored
    assert tf.task_at(workflow, stored, START).assignees_of("supco") == (SUE.ref,)
    loaded = SERIALIZER.load_task(SERIALIZER.dump_task(stored))
    assert loaded == stored


def test_a_schema_1_history_answered_by_an_unassigned_user_still_loads_as_stored() -> None:
    # Stored before the rule: the supplier answered without being assigned, and stayed so.
    fixture = Path(__file__).parent / "fixtures" / "schema1" / "document_request.json"
    document = json.loads(fixture.read_text())
    document["assignees"] = [{"company": "acme", "user": "bea"}]
    document["history"][0]["payload"]["assignees"] = []
    loaded = SERIALIZER.load_task(document)
    assert loaded.assignees == (BEA.ref,)
    assert all("assignees" not in entry.changed for entry in loaded.history)
    assert tf.replay(None, loaded) == loaded


def _renamed_kind() -> tf.TaskKind:
    """Version 2 of the document request: 'accepted' is called 'approved' (an upgrade renames it)."""
    workflow = REGISTRY["document_request"].workflow

    def name(state):
        return "approved" if state == "accepted" else state

    def upgrade(document):
        document["state"] = name(document["state"])
        for entry in document["history"]:
            entry["from_state"], entry["to_state"] = (
                name(entry["from_state"]),
                name(entry["to_state"]),
            )
            if "state" in entry["facts"]:
                entry["facts"]["state"] = name(entry["facts"]["state"])
        return document

    renamed = attrs.evolve(
        workflow,
        version=2,
        states=[attrs.evolve(s, name=name(s.name)) for s in workflow.states],
        transitions=[
            attrs.evolve(t, sources=frozenset(map(name, t.sources)), target=name(t.target))
            for t in workflow.transitions
        ],
    )
    return tf.TaskKind("document_request", DocumentRequest, renamed, upgrades={1: upgrade})


def test_sqlite_rewrites_the_history_rows_of_a_task_saved_after_an_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    with SqliteRepository(path, REGISTRY, serializer=SERIALIZER) as old:
        service = _service(old)
        task = _open(service)
        service.act(SAM, task.id, "upload", _pdf())
        service.act(BEA, task.id, "accept")
    registry = tf.Registry([_renamed_kind()])
    with SqliteRepository(path, registry) as new:
        upgraded = new.get(task.id)
        assert (upgraded.state, upgraded.workflow_version) == ("approved", 2)
        service = tf.TaskService(
            registry=registry,
            repository=new,
            notifier=tf.RecordingNotifier(),
            clock=tf.FixedClock(START),
            ids=tf.SequentialIds(),
        )
        service.comment(BEA, task.id, "thanks")
    with SqliteRepository(path, registry) as again:
        stored = again.get(task.id)
        assert stored.history[3].to_state == "approved"
        assert tf.replay(None, stored) == stored


def test_a_schema_1_history_still_loads_by_the_rules_it_was_made_with() -> None:
    # The fixture's supplier uploaded again after a rejection: version 1 kept the reason.
    fixture = Path(__file__).parent / "fixtures" / "schema1" / "document_request.json"
    loaded = SERIALIZER.load_task(json.loads(fixture.read_text()))
    assert loaded.data.reject_reason == "wrong year"
    assert tf.replay(None, loaded) == loaded
