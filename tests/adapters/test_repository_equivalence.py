"""The same random service calls, run against the in-memory and a durable repository, answer alike.

The durable one is SQLite in memory, and PostgreSQL on the session's real server (fewer
examples: each empties the module's schema).

Every rule runs once per repository, through two services that share one clock; the outcome
(or the error), every inbox, Teambox and dashboard, random `find` queries, the notifications
sent and the outbox must be the same for both.
"""

import hashlib
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

import taskflow as tf
from taskflow import Actor, TaskQuery, TaskService
from taskflow.adapters.memory import FixedClock, InMemoryRepository, RecordingNotifier
from taskflow.adapters.postgres import PostgresRepository
from taskflow.adapters.sqlite import SqliteRepository
from taskflow.errors import TaskflowError
from taskflow.kinds import default_registry
from taskflow.kinds.document import (
    Decline,
    DocumentRequest,
    ProductDocumentRequest,
    Reject,
    UploadDocument,
)
from taskflow.serialization import Serializer

REGISTRY = default_registry()
SERIALIZER = Serializer(REGISTRY)
KINDS = ("document_request", "product_document_request")
ACTIONS = tuple(REGISTRY["document_request"].workflow.action_names)

ACTORS = (
    Actor("bea", "acme"),
    Actor("bob", "acme"),
    Actor("sam", "supco"),
    Actor("sue", "supco"),
    Actor("oli", "globex"),
)
COMPANIES = ("acme", "supco", "globex", "initech")
USERS = tuple(a.ref for a in ACTORS)
START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
ZONES = (UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5)))
PDF_FILE = tf.FileRef("c.pdf", tf.PDF, 10, "sha256:1", "files/1")
PNG_FILE = tf.FileRef("c.png", "image/png", 10, "sha256:2", "files/2")

moments = st.builds(
    lambda days, zone: (START + timedelta(days=days)).astimezone(zone),
    st.integers(-3, 30),
    st.sampled_from(ZONES),
)


def _payloads(action: str, actor: Actor, anyone: bool) -> st.SearchStrategy[Any]:
    colleagues = [u for u in USERS if anyone or u.company == actor.company]
    users = st.lists(st.sampled_from(colleagues), min_size=1, max_size=2)
    choices: dict[str, st.SearchStrategy[Any]] = {
        "upload": st.sampled_from(
            [UploadDocument(PDF_FILE, date(2030, 1, 1)), UploadDocument(PNG_FILE)]
        ),
        "decline": st.just(Decline("We have none")),
        "reject": st.just(Reject("Out of date")),
        "comment": st.builds(
            tf.AddComment, st.sampled_from(["ok", "ü?"]), st.sampled_from(tf.Visibility)
        ),
        "assign": st.builds(tf.Assign, users),
        "edit": st.builds(tf.Edit, due_at=st.none() | moments, subject=st.none() | st.just("New")),
    }
    return choices.get(action, st.none())


queries = st.builds(
    TaskQuery,
    kind=st.none() | st.sampled_from(KINDS),
    states=st.none() | st.frozensets(st.sampled_from(["requested", "uploaded", "accepted"])),
    assignee=st.none() | st.sampled_from(USERS),
    ball_company=st.none() | st.sampled_from(COMPANIES),
    open=st.none() | st.booleans(),
    due_before=st.none() | moments,
    limit=st.none() | st.integers(0, 4),
)


class ShuffledIds:
    """Ids in an order unrelated to creation, so ordering by id and by time differ."""

    def __init__(self) -> None:
        self.count = 0

    def new_task_id(self) -> tf.TaskId:
        self.count += 1
        return tf.TaskId(f"t-{hashlib.sha256(str(self.count).encode()).hexdigest()[:8]}")


def _result(call) -> tuple[str, Any]:
    try:
        return ("ok", call())
    except TaskflowError as error:
        return (type(error).__name__, str(error))


class RepositoriesAnswerAlike(RuleBasedStateMachine):
    task_ids = Bundle("task_ids")

    def __init__(self) -> None:
        super().__init__()
        self.clock = FixedClock(START)
        self.durable = self.make_durable()
        self.services = tuple(
            TaskService(
                registry=REGISTRY,
                repository=repository,
                notifier=RecordingNotifier(),
                clock=self.clock,
                ids=ShuffledIds(),
            )
            for repository in (InMemoryRepository(), self.durable)
        )

    def make_durable(self) -> SqliteRepository | PostgresRepository:
        return SqliteRepository(":memory:", REGISTRY, serializer=SERIALIZER)

    def both(self, call) -> Any:
        memory, durable = (_result(lambda s=s: call(s)) for s in self.services)
        assert memory == durable
        return memory

    @rule(
        target=task_ids,
        opener=st.sampled_from(ACTORS),
        recipient=st.sampled_from(COMPANIES),
        kind=st.sampled_from(KINDS),
        assignees=st.lists(st.sampled_from(USERS), max_size=3),
        due_at=st.none() | moments,
    )
    def open_task(self, opener, recipient, kind, assignees, due_at) -> str:
        data = (
            DocumentRequest("ISO 9001")
            if kind == "document_request"
            else ProductDocumentRequest("Data sheet", "Widget")
        )
        parties = {opener.company, recipient}
        draft = tf.NewTask(
            "Certificate",
            recipient,
            data,
            assignees=[u for u in assignees if u.company in parties],
            due_at=due_at,
        )
        status, outcome = self.both(lambda s: s.open(opener, kind, draft))
        return outcome.task.id if status == "ok" else "no-such-task"

    @rule(task_id=task_ids, data=st.data())
    def act(self, task_id, data) -> None:
        """Mostly an action a party may take now, with a fitting payload; sometimes anything."""
        memory = self.services[0]
        anything = data.draw(st.integers(0, 4), label="anything") == 0
        try:
            task = memory.repository.get(task_id)
        except TaskflowError:
            anything = True
        if anything:
            actor = data.draw(st.sampled_from(ACTORS), label="actor")
            action = data.draw(st.sampled_from(ACTIONS), label="action")
        else:
            parties = [a for a in ACTORS if task.is_party(a.company)]
            actor = data.draw(st.sampled_from(parties), label="actor")
            allowed = memory.allowed_actions(actor, task_id) or ACTIONS
            action = data.draw(st.sampled_from(allowed), label="action")
        payload = data.draw(_payloads(action, actor, anything), label="payload")
        self.both(lambda s: s.act(actor, task_id, action, payload))

    @rule(hours=st.integers(0, 72))
    def time_passes(self, hours) -> None:
        self.clock.advance(timedelta(hours=hours))

    @rule(actor=st.sampled_from(ACTORS), query=queries)
    def find(self, actor, query) -> None:
        self.both(lambda s: s.find(actor, query))

    @rule(actor=st.sampled_from(ACTORS), task_id=task_ids)
    def look_at_one_task(self, actor, task_id) -> None:
        self.both(lambda s: (s.get(actor, task_id), s.allowed_actions(actor, task_id)))

    @invariant()
    def every_box_and_dashboard_is_the_same(self) -> None:
        for actor in ACTORS:
            self.both(lambda s, a=actor: (s.inbox(a), s.teambox(a), s.dashboard(a)))
        self.both(lambda s: s.repository.count(TaskQuery()))

    @invariant()
    def the_same_notifications_were_sent_and_none_is_pending(self) -> None:
        memory, durable = self.services
        assert memory.notifier.sent == durable.notifier.sent
        assert memory.repository.pending() == []
        assert durable.repository.pending() == []

    def teardown(self) -> None:
        self.durable.close()


RepositoriesAnswerAlike.TestCase.settings = settings(stateful_step_count=20, deadline=None)
TestRepositoriesAnswerAlike = RepositoriesAnswerAlike.TestCase


_PG: dict[str, Any] = {}


@pytest.fixture
def _postgres(pg_pool, pg_schema, pg_reset):
    _PG.update(pool=pg_pool, schema=pg_schema, reset=pg_reset)


class PostgresAnswersLikeMemory(RepositoriesAnswerAlike):
    def make_durable(self) -> PostgresRepository:
        _PG["reset"]()
        return PostgresRepository(
            _PG["pool"], REGISTRY, schema=_PG["schema"], serializer=SERIALIZER
        )


PostgresAnswersLikeMemory.TestCase.settings = settings(
    max_examples=max(5, settings.default.max_examples // 6),
    stateful_step_count=20,
    deadline=None,
)


@pytest.mark.usefixtures("_postgres")
class TestPostgresAnswersLikeMemory(PostgresAnswersLikeMemory.TestCase):
    pass
