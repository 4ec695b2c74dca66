"""What the SQLite repository adds to the contract: indexes, files, schema, bad rows, errors.

The second half checks the service's outbox and retry helper with either repository.
"""

import json
import logging
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest

import taskflow as tf
from taskflow import (
    Actor,
    ConcurrencyConflict,
    DeserializationError,
    DocumentRequest,
    InvalidPayload,
    NewTask,
    TaskQuery,
)
from taskflow.adapters.memory import InMemoryRepository
from taskflow.adapters.sqlite import STORAGE_VERSION, SqliteRepository
from taskflow.domain.query import Between, Cursor
from taskflow.domain.registry import Registry
from taskflow.errors import ActionNotAllowed, StorageError
from taskflow.outbox import DeliveryReport
from taskflow.ports import OutboxRepository, TaskRepository
from taskflow.serialization import Serializer
from taskflow.service import retry_on_conflict
from taskflow.testing.contracts import (
    ACME,
    BUYER,
    GLOBEX,
    OTHER_SUPPLIER,
    SUPCO,
    SUPPLIER,
    T0,
    RepositoryContract,
    make_task,
    upload,
)

# The contract's kinds: the built-in ones, the document kinds with indexed fields.
REGISTRY = RepositoryContract.registry
SERIALIZER = Serializer(REGISTRY)


def _open_repo(path: Path | str, **options) -> SqliteRepository:
    return SqliteRepository(path, REGISTRY, serializer=SERIALIZER, **options)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "tasks.db"


@pytest.fixture
def repo(db: Path):
    with _open_repo(db) as repository:
        yield repository


def _raw(db: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(db, isolation_level=None))


# --- indexes ---------------------------------------------------------------------------------

_INDEXED = [
    pytest.param(TaskQuery(ball_company=SUPCO, assignee=SUPPLIER.ref), False, "tasks", id="inbox"),
    pytest.param(TaskQuery(ball_company=SUPCO), False, "tasks_by_ball", id="teambox"),
    pytest.param(
        TaskQuery(company=SUPCO, side=tf.Side.RECIPIENT, open=True),
        False,
        "tasks_by_recipient",
        id="received-open",
    ),
    pytest.param(TaskQuery(due_before=T0), False, "tasks_by_due", id="due-before"),
    pytest.param(TaskQuery(open=True, due_before=T0), False, "tasks_by_due", id="overdue"),
    pytest.param(TaskQuery(company=ACME), True, "tasks_by_requester", id="dashboard"),
    pytest.param(TaskQuery(company=ACME), False, "tasks_by_requester", id="company"),
]


@pytest.mark.parametrize(("query", "count", "index"), _INDEXED)
def test_inbox_teambox_due_before_and_dashboard_search_an_index_never_scan_tasks(
    repo: SqliteRepository, query: TaskQuery, count: bool, index: str
) -> None:
    for n in range(20):
        repo.add(make_task(f"t-{n}", due_at=T0 + timedelta(days=n), assignees=[SUPPLIER.ref]))
    plan = repo.query_plan(query, count=count)
    assert plan
    assert not [line for line in plan if line.startswith("SCAN tasks")], plan
    assert any(line.startswith("SEARCH tasks") and index in line for line in plan), plan


def test_inbox_is_driven_by_the_user_s_assignments_not_by_the_whole_teambox(
    repo: SqliteRepository,
) -> None:
    plan = repo.query_plan(TaskQuery(ball_company=SUPCO, assignee=SUPPLIER.ref))
    assert any("task_assignees_by_user" in line for line in plan), plan
    assert not any("tasks_by_ball" in line for line in plan), plan


def test_dashboard_counts_read_only_covering_indexes(repo: SqliteRepository) -> None:
    plan = repo.query_plan(TaskQuery(company=ACME), count=True)
    searches = [line for line in plan if line.startswith("SEARCH tasks")]
    assert len(searches) == 2
    assert all("COVERING INDEX" in line for line in searches), plan


def _twenty_tasks(repo: SqliteRepository) -> None:
    for n in range(20):
        requester = OTHER_SUPPLIER if n % 3 else BUYER
        repo.add(
            make_task(
                f"t-{n}",
                requester=requester,
                created_at=T0 + timedelta(hours=n),
                due_at=T0 + timedelta(days=n),
                assignees=[SUPPLIER.ref],
            )
        )


_CURSOR = Cursor(T0 + timedelta(hours=3), tf.TaskId("t-3"))

# Paging queries (a cursor, a limit) that an index serves in result order: no sort at all.
_PAGED = [
    pytest.param(TaskQuery(after=_CURSOR, limit=5), "tasks_by_created", id="after"),
    pytest.param(
        TaskQuery(requester_company=ACME, after=_CURSOR, limit=5),
        "tasks_by_requester_created",
        id="requester-after",
    ),
    pytest.param(
        TaskQuery(recipient_company=SUPCO, after=_CURSOR, limit=5),
        "tasks_by_recipient_created",
        id="recipient-after",
    ),
    pytest.param(
        TaskQuery(company=SUPCO, side=tf.Side.RECIPIENT, after=_CURSOR, limit=5),
        "tasks_by_recipient_created",
        id="side-after",
    ),
    pytest.param(
        TaskQuery(ball_company=SUPCO, after=_CURSOR, limit=5), "tasks_by_ball", id="teambox-after"
    ),
    pytest.param(
        TaskQuery(created_from=T0, created_until=T0 + timedelta(days=1), limit=5),
        "tasks_by_created",
        id="created",
    ),
    pytest.param(
        TaskQuery(recipient_company=SUPCO, created_from=T0, after=_CURSOR, limit=5),
        "tasks_by_recipient_created",
        id="recipient-created-after",
    ),
    pytest.param(
        TaskQuery(requester_company=GLOBEX, created_until=T0 + timedelta(days=1)),
        "tasks_by_requester_created",
        id="requester-created",
    ),
]


@pytest.mark.parametrize(("query", "index"), _PAGED)
def test_paging_and_party_and_creation_filters_search_an_index_already_in_order(
    repo: SqliteRepository, query: TaskQuery, index: str
) -> None:
    _twenty_tasks(repo)
    plan = repo.query_plan(query)
    assert plan == [line for line in plan if line.startswith("SEARCH tasks")], plan
    assert index in plan[0], plan
    assert not any("TEMP B-TREE" in line for line in plan), plan


def test_first_page_of_everything_reads_the_creation_index_in_order(repo: SqliteRepository) -> None:
    _twenty_tasks(repo)
    plan = repo.query_plan(TaskQuery(limit=5))
    assert plan == ["SCAN tasks USING INDEX tasks_by_created"], plan


_FIELD_QUERIES = [
    pytest.param(TaskQuery(where={"document_type": "ISO 9001"}), "value=?", id="equality"),
    pytest.param(TaskQuery(where={"files": Between(1, 3)}), "value>? AND value<?", id="range"),
    pytest.param(TaskQuery(where={"deadline": Between(T0)}), "value>?", id="from"),
    pytest.param(
        TaskQuery(where={"files": 0}, after=_CURSOR, limit=5), "value=?", id="equality-after"
    ),
    pytest.param(
        TaskQuery(where={"files": 0, "deadline": Between(high=T0)}), "value", id="two-fields"
    ),
]


@pytest.mark.parametrize(("query", "search"), _FIELD_QUERIES)
def test_indexed_field_filters_search_the_field_index_never_scan(
    repo: SqliteRepository, query: TaskQuery, search: str
) -> None:
    _twenty_tasks(repo)
    plan = repo.query_plan(query)
    assert not any(line.startswith("SCAN") for line in plan), plan
    fields = [line for line in plan if line.startswith("SEARCH task_fields")]
    assert fields, plan
    assert all("USING PRIMARY KEY (name=? AND type=? AND" in line for line in fields), plan
    assert search in fields[0], plan
    assert any(line.startswith("SEARCH tasks USING INTEGER PRIMARY KEY") for line in plan), plan
    # Only the matching tasks are sorted: the field index is not in creation order.
    count_plan = repo.query_plan(query, count=True)
    assert not any(line.startswith("SCAN") for line in count_plan), count_plan


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(
            TaskQuery(
                kind="evaluation",
                recipient_company=SUPCO,
                requester_company=ACME,
                created_from=T0,
                created_until=T0 + timedelta(days=3),
            ),
            id="received-evaluations",
        ),
        pytest.param(
            TaskQuery(
                kind="questionnaire",
                states={"unanswered", "in_progress"},
                company=ACME,
                side=tf.Side.REQUESTER,
                recipient_company=SUPCO,
            ),
            id="sent-questionnaires",
        ),
    ],
)
def test_overview_queries_of_the_service_search_a_company_index(
    repo: SqliteRepository, query: TaskQuery
) -> None:
    _twenty_tasks(repo)
    plan = repo.query_plan(query)
    assert not any(line.startswith("SCAN") for line in plan), plan
    assert plan[0].startswith("SEARCH tasks USING INDEX tasks_by_re"), plan


# --- files, schema, reopening ----------------------------------------------------------------


def test_file_database_runs_in_wal_mode(repo: SqliteRepository, db: Path) -> None:
    with _raw(db) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_tasks_numbers_and_pending_notifications_survive_closing_and_reopening(db: Path) -> None:
    task = make_task("t-1", assignees=[SUPPLIER.ref])
    saved = upload(task, SUPPLIER)
    note = tf.Notification(BUYER.ref, task.id, task.number, "document_uploaded", "über ✓")
    with _open_repo(db) as first:
        first.add(task)
        first.save(saved, task.version, notifications=[note])
        assert [first.next_number(ACME) for _ in range(2)] == [1, 2]
    with _open_repo(db) as again:
        assert again.get(task.id) == saved
        assert again.query(TaskQuery(ball_company=ACME, assignee=BUYER.ref)) == [saved]
        assert again.next_number(ACME) == 3
        assert [e.notification for e in again.pending_notifications()] == [note]


def test_schema_is_created_on_first_use_with_its_version_once(db: Path) -> None:
    _open_repo(db).close()
    _open_repo(db).close()
    with _raw(db) as raw:
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(STORAGE_VERSION,)]
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {
        "tasks",
        "task_assignees",
        "task_numbers",
        "outbox",
        "schema_version",
        "task_fields",
        "indexed_fields",
    } <= tables


def test_database_with_a_newer_schema_is_refused_with_a_storage_error(db: Path) -> None:
    _open_repo(db).close()
    with _raw(db) as raw:
        raw.execute("UPDATE schema_version SET version = ?", (STORAGE_VERSION + 1,))
    with pytest.raises(StorageError) as caught:
        _open_repo(db)
    message = str(caught.value)
    assert f"schema version {STORAGE_VERSION + 1}" in message
    assert f"({STORAGE_VERSION})" in message
    assert "upgrade taskflow" in message
    assert caught.value.database == str(db)


def test_file_that_is_not_a_database_raises_a_storage_error(db: Path) -> None:
    db.write_bytes(b"this is a text file, not a database" * 100)
    with pytest.raises(StorageError, match="could not open the database") as caught:
        _open_repo(db)
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)


def test_closed_repository_raises_storage_error_and_closing_twice_is_fine(db: Path) -> None:
    with _open_repo(db) as repository:
        repository.add(make_task("t-1"))
    with pytest.raises(StorageError, match="closed"):
        repository.get(tf.TaskId("t-1"))
    with pytest.raises(StorageError, match="closed"):
        repository.add(make_task("t-2"))
    repository.close()


def test_write_blocked_by_another_connection_raises_storage_error_and_writes_nothing(
    db: Path,
) -> None:
    repository = _open_repo(db, timeout=0.05)
    with _raw(db) as raw:
        raw.execute("BEGIN IMMEDIATE")
        with pytest.raises(StorageError, match="database is locked"):
            repository.add(make_task("t-1"))
        raw.execute("ROLLBACK")
    assert repository.query(TaskQuery()) == []
    repository.add(make_task("t-1"))
    assert [t.id for t in repository.query(TaskQuery())] == ["t-1"]
    repository.close()


def test_text_sqlite_cannot_store_raises_invalid_payload_and_stores_nothing(
    repo: SqliteRepository,
) -> None:
    with pytest.raises(InvalidPayload, match="valid Unicode"):
        repo.add(make_task("t-\ud800"))
    assert repo.query(TaskQuery()) == []


def test_unknown_synchronous_setting_is_refused(db: Path) -> None:
    with pytest.raises(InvalidPayload, match="synchronous must be one of") as caught:
        _open_repo(db, synchronous="SOMETIMES")
    assert caught.value.field == "synchronous"


def test_next_number_never_repeats_between_two_repositories_on_one_file(db: Path) -> None:
    with _open_repo(db) as one, _open_repo(db) as two:
        taken = [repo.next_number(ACME) for _ in range(10) for repo in (one, two)]
    assert taken == list(range(1, 21))


def test_repository_without_a_cache_answers_the_same(db: Path) -> None:
    with _open_repo(db, cache_size=0) as repository:
        task = make_task("t-1", assignees=[SUPPLIER.ref])
        repository.add(task)
        saved = upload(task, SUPPLIER)
        repository.save(saved, 1)
        assert repository.get(task.id) == saved
        assert repository.query(TaskQuery(states="uploaded")) == [saved]


# --- storage version 1 databases: migrated on open, index values back-filled ------------------

# The layout taskflow 0.1 wrote (storage version 1), as it was released: never edit it.
_VERSION_1 = (
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    """CREATE TABLE tasks (
        pk INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        requester_company TEXT NOT NULL,
        recipient_company TEXT NOT NULL,
        ball_company TEXT,
        is_open INTEGER NOT NULL,
        due_at INTEGER,
        created_at INTEGER NOT NULL,
        number TEXT NOT NULL,
        version INTEGER NOT NULL,
        body TEXT NOT NULL
    )""",
    "CREATE INDEX tasks_by_ball ON tasks (ball_company, created_at, id)",
    "CREATE INDEX tasks_by_requester ON tasks (requester_company, kind, state)",
    "CREATE INDEX tasks_by_recipient ON tasks (recipient_company, kind, state, requester_company)",
    "CREATE INDEX tasks_by_due ON tasks (is_open, due_at)",
    """CREATE TABLE task_assignees (
        task_pk INTEGER NOT NULL,
        company TEXT NOT NULL,
        user_id TEXT NOT NULL,
        ball_company TEXT,
        PRIMARY KEY (task_pk, company, user_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX task_assignees_by_user ON task_assignees (company, user_id, ball_company)",
    "CREATE TABLE task_numbers (company TEXT PRIMARY KEY, last INTEGER NOT NULL) WITHOUT ROWID",
    """CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        task_id TEXT NOT NULL,
        task_version INTEGER NOT NULL,
        body TEXT NOT NULL
    )""",
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(at: datetime | None) -> int | None:
    return None if at is None else (at - _EPOCH) // timedelta(microseconds=1)


def _version_1_database(db: Path, tasks: list[tf.Task]) -> None:
    """Write `tasks` as taskflow 0.1 did: the version-1 tables, rows and assignee rows."""
    with _raw(db) as raw:
        for statement in _VERSION_1:
            raw.execute(statement)
        raw.execute("INSERT INTO schema_version (version) VALUES (1)")
        for task in tasks:
            body = json.dumps(SERIALIZER.dump_task(task), separators=(",", ":"))
            (pk,) = raw.execute(
                "INSERT INTO tasks (id, kind, state, requester_company, recipient_company, "
                "ball_company, is_open, due_at, created_at, number, version, body) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING pk",
                (
                    task.id,
                    task.kind,
                    task.state,
                    task.requester.company,
                    task.recipient,
                    task.ball_company,
                    int(task.is_open),
                    _micros(task.due_at),
                    _micros(task.created_at),
                    task.number,
                    task.version,
                    body,
                ),
            ).fetchone()
            raw.executemany(
                "INSERT INTO task_assignees VALUES (?, ?, ?, ?)",
                [(pk, a.company, a.user, task.ball_company) for a in task.assignees],
            )


def _old_tasks() -> list[tf.Task]:
    first = make_task("t-1", due_at=T0 + timedelta(days=5), assignees=[SUPPLIER.ref])
    second = make_task(
        "t-2",
        kind="product_document_request",
        created_at=T0 + timedelta(hours=1),
        data=tf.ProductDocumentRequest("Safety data sheet", "Widget 3000"),
        assignees=[SUPPLIER.ref],
    )
    third = make_task("t-3", requester=OTHER_SUPPLIER, created_at=T0 + timedelta(hours=2))
    return [upload(first, SUPPLIER), second, third]


def _field_rows(db: Path) -> list[tuple]:
    with _raw(db) as raw:
        return raw.execute(
            "SELECT t.id, f.name, f.type, f.value FROM task_fields f "
            "JOIN tasks t ON t.pk = f.task_pk ORDER BY t.id, f.name"
        ).fetchall()


def test_version_1_database_is_migrated_and_its_index_values_back_filled(db: Path) -> None:
    old = _old_tasks()
    _version_1_database(db, old)
    with _open_repo(db) as repository:
        assert repository.query(TaskQuery(where={"files": 1})) == [old[0]]
        assert repository.query(TaskQuery(where={"product": "Widget 3000"})) == [old[1]]
        assert [t.id for t in repository.query(TaskQuery(where={"files": 0}))] == ["t-3"]
        assert repository.query(TaskQuery(where={"deadline": T0 + timedelta(days=5)})) == [old[0]]
        assert repository.query(TaskQuery(requester_company=GLOBEX)) == [old[2]]
        assert [t.id for t in repository.query(TaskQuery(after=Cursor.of(old[0])))] == [
            "t-2",
            "t-3",
        ]
        plan = repository.query_plan(TaskQuery(recipient_company=SUPCO, after=_CURSOR, limit=2))
        assert plan == [
            "SEARCH tasks USING INDEX tasks_by_recipient_created "
            "(recipient_company=? AND (created_at,id)>(?,?))"
        ]
        # Old rows stay writable: a save keeps the index values current.
        repository.save(upload(old[2], SUPPLIER), old[2].version)
        assert [t.id for t in repository.query(TaskQuery(where={"files": 1}))] == ["t-1", "t-3"]
    with _raw(db) as raw:
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(2,)]
        declared = raw.execute("SELECT kind, name FROM indexed_fields ORDER BY 1, 2").fetchall()
    assert ("document_request", "files") in declared
    assert ("product_document_request", "product") in declared
    assert ("t-1", "deadline", "time", _micros(T0 + timedelta(days=5))) in _field_rows(db)
    assert ("t-2", "files", "bool", 0) in _field_rows(db)


def test_fields_are_not_computed_again_on_reopening_until_reindex_is_asked(db: Path) -> None:
    _version_1_database(db, _old_tasks())
    _open_repo(db).close()
    rows = _field_rows(db)
    with _raw(db) as raw:
        raw.execute("DELETE FROM task_fields WHERE name = 'document_type'")
    with _open_repo(db) as repository:
        assert repository.query(TaskQuery(where={"document_type": "ISO 9001"})) == []
        assert repository.reindex(["document_request"]) == 2
        assert [t.id for t in repository.query(TaskQuery(where={"document_type": "ISO 9001"}))] == [
            "t-1",
            "t-3",
        ]
        assert repository.reindex() == 3
    assert _field_rows(db) == rows


def test_changed_declarations_are_indexed_again_on_open(db: Path) -> None:
    _version_1_database(db, _old_tasks())
    _open_repo(db).close()
    document = REGISTRY["document_request"]
    subject = attrs.evolve(
        document, indexed={**document.indexed, "subject_length": lambda t: len(t.subject)}
    )
    other = Registry([subject if k.name == subject.name else k for k in REGISTRY])
    with SqliteRepository(db, other) as repository:
        found = repository.query(TaskQuery(where={"subject_length": Between(1)}))
        assert [t.id for t in found] == ["t-1", "t-3"]
    # Back to the first declarations: the field is gone, and so are its rows.
    with _open_repo(db) as repository, pytest.raises(InvalidPayload, match="subject_length"):
        repository.query(TaskQuery(where={"subject_length": 1}))
    assert not [row for row in _field_rows(db) if row[1] == "subject_length"]


def test_back_fill_skips_and_reports_a_row_that_does_not_load(db: Path) -> None:
    _version_1_database(db, _old_tasks())
    _break_row(db, "t-3", lambda body: body[:40])
    reported: list[DeserializationError] = []
    with _open_repo(db, on_broken_row=reported.append) as repository:
        assert [e.task_id for e in reported] == ["t-3"]
        assert [t.id for t in repository.query(TaskQuery(where={"files": Between(0)}))] == ["t-1"]
    assert {row[0] for row in _field_rows(db)} == {"t-1", "t-2"}


def test_back_fill_of_a_wrong_value_refuses_to_open_and_a_fixed_kind_opens(db: Path) -> None:
    _version_1_database(db, _old_tasks())
    document = REGISTRY["document_request"]
    wrong = attrs.evolve(document, indexed={"ratio": lambda t: len(t.files) / 2})
    other = Registry([wrong if k.name == wrong.name else k for k in REGISTRY])
    with pytest.raises(InvalidPayload, match="indexed field 'ratio'"):
        SqliteRepository(db, other)
    assert _field_rows(db) == []
    with _open_repo(db) as repository:
        assert [t.id for t in repository.query(TaskQuery(where={"files": 1}))] == ["t-1"]


# --- rows that no longer load ----------------------------------------------------------------


def _break_row(db: Path, task_id: str, change) -> None:
    with _raw(db) as raw:
        (body,) = raw.execute("SELECT body FROM tasks WHERE id = ?", (task_id,)).fetchone()
        raw.execute("UPDATE tasks SET body = ? WHERE id = ?", (change(body), task_id))


def _bad_media_type(body: str) -> str:
    data = json.loads(body)
    data["history"][1]["payload"]["file"]["media_type"] = "PDF"
    return json.dumps(data)


def _three_tasks(db: Path) -> None:
    with _open_repo(db) as repository:
        for n, hours in ((1, 0), (2, 1), (3, 2)):
            task = make_task(f"t-{n}", created_at=T0 + timedelta(hours=hours))
            repository.add(task)
            repository.save(upload(task, SUPPLIER), task.version)


def test_get_of_a_row_that_no_longer_loads_names_the_task_and_the_field(db: Path) -> None:
    _three_tasks(db)
    _break_row(db, "t-2", _bad_media_type)
    with _open_repo(db) as repository, pytest.raises(DeserializationError) as caught:
        repository.get(tf.TaskId("t-2"))
    assert caught.value.task_id == "t-2"
    assert caught.value.path == "history[1].payload.file.media_type"
    assert "'t-2'" in str(caught.value)


def test_get_of_a_row_that_is_not_json_names_the_task(db: Path) -> None:
    _three_tasks(db)
    _break_row(db, "t-1", lambda body: body[:40])
    with _open_repo(db) as repository, pytest.raises(DeserializationError) as caught:
        repository.get(tf.TaskId("t-1"))
    assert caught.value.task_id == "t-1"
    assert "does not parse" in str(caught.value)


def test_row_whose_json_names_another_version_is_refused(db: Path) -> None:
    _three_tasks(db)
    _break_row(db, "t-3", lambda body: body.replace('"version":2', '"version":1'))
    with _open_repo(db) as repository, pytest.raises(DeserializationError) as caught:
        repository.get(tf.TaskId("t-3"))
    assert caught.value.path == "version"


def test_query_skips_a_broken_row_reports_it_and_still_fills_the_limit(db: Path) -> None:
    _three_tasks(db)
    _break_row(db, "t-1", _bad_media_type)
    reported: list[DeserializationError] = []
    with _open_repo(db, on_broken_row=reported.append) as repository:
        assert [t.id for t in repository.query(TaskQuery())] == ["t-2", "t-3"]
        assert [t.id for t in repository.query(TaskQuery(limit=2))] == ["t-2", "t-3"]
        assert [t.id for t in repository.query(TaskQuery(limit=1))] == ["t-2"]
        assert [e.task_id for e in reported] == ["t-1", "t-1", "t-1"]
        # Counts come from the columns, which are intact: the broken task is still counted.
        assert repository.count(TaskQuery()) == {("document_request", "uploaded"): 3}
        assert [e.task_id for e in repository.broken_rows()] == ["t-1"]


def test_broken_row_is_reported_as_a_logged_warning_by_default(db: Path, caplog) -> None:
    _three_tasks(db)
    _break_row(db, "t-3", _bad_media_type)
    with (
        caplog.at_level(logging.WARNING, logger="taskflow.adapters.sqlite"),
        _open_repo(db) as repository,
    ):
        assert [t.id for t in repository.query(TaskQuery())] == ["t-1", "t-2"]
    assert "cannot load task 't-3'" in caplog.text


def test_broken_rows_of_a_sound_database_is_empty(db: Path) -> None:
    _three_tasks(db)
    with _open_repo(db) as repository:
        assert repository.broken_rows() == []


# --- the service: outbox and retry, with either repository ------------------------------------

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SAM = Actor("sam", "supco")
BEA = Actor("bea", "acme")


class FlakyNotifier:
    """Records what it delivers; raises for the calls whose numbers are in `failing`."""

    def __init__(self, failing=()) -> None:
        self.failing = set(failing)
        self.calls = 0
        self.sent: list[tf.Notification] = []

    def notify(self, notification: tf.Notification) -> None:
        self.calls += 1
        if self.calls in self.failing:
            msg = "mail server down"
            raise ConnectionError(msg)
        self.sent.append(notification)


@pytest.fixture(params=["memory", "sqlite"])
def make_service(request, tmp_path: Path):
    opened: list[SqliteRepository] = []

    def make(notifier, repository: TaskRepository | None = None) -> tf.TaskService:
        if repository is None:
            if request.param == "memory":
                repository = InMemoryRepository()
            else:
                repository = _open_repo(tmp_path / f"svc-{len(opened)}.db")
                opened.append(repository)
        return tf.TaskService(
            registry=REGISTRY,
            repository=repository,
            notifier=notifier,
            clock=tf.FixedClock(START),
            ids=tf.SequentialIds(),
        )

    yield make
    for repository in opened:
        repository.close()


def _open_task(service: tf.TaskService) -> tf.Task:
    draft = NewTask("Cert", "supco", DocumentRequest("ISO"), assignees=[SAM.ref])
    return service.open(BEA, "document_request", draft).task


def test_failing_notifier_keeps_the_task_saved_and_its_notifications_pending(
    make_service, caplog
) -> None:
    notifier = FlakyNotifier(failing=range(1, 100))
    service = make_service(notifier)
    with caplog.at_level(logging.WARNING, logger="taskflow.service"):
        task = _open_task(service)
        outcome = service.comment(SAM, task.id, "on it")
    assert outcome.task.version == 2
    assert service.get(BEA, task.id).version == 2
    outbox = service.repository
    assert isinstance(outbox, OutboxRepository)
    pending = outbox.pending_notifications()
    assert [(e.notification.recipient, e.notification.event) for e in pending] == [
        (SAM.ref, "opened"),
        (BEA.ref, "commented"),
    ]
    assert [e.task_version for e in pending] == [1, 2]
    assert "stays pending" in caplog.text
    assert "mail server down" in caplog.text
    notifier.failing.clear()
    report = service.deliver_notifications()
    assert report == DeliveryReport(delivered=2)
    assert report.ok
    assert [n.event for n in notifier.sent] == ["opened", "commented"]
    assert outbox.pending_notifications() == []


def test_delivery_stops_at_the_first_failure_and_keeps_the_order(make_service) -> None:
    notifier = FlakyNotifier()
    service = make_service(notifier)
    task = _open_task(service)
    notifier.failing = {3}  # the second of the next round's notifications
    service.act(SAM, task.id, "decline", tf.Decline("none here"))  # notifies bea
    service.comment(SAM, task.id, "really")  # notifies bea: fails
    service.comment(SAM, task.id, "sorry")  # the round after it sends both, in order
    assert [n.event for n in notifier.sent] == [
        "opened",
        "document_declined",
        "commented",
        "commented",
    ]
    assert service.repository.pending_notifications() == []


def test_delivery_round_reports_the_failed_entry_and_its_error(make_service) -> None:
    notifier = FlakyNotifier(failing={1, 2, 3})
    service = make_service(notifier)
    task = _open_task(service)  # call 1 fails
    service.comment(SAM, task.id, "hello")  # call 2 fails again on 'opened'
    report = service.deliver_notifications()  # call 3 fails again
    assert (report.delivered, report.ok) == (0, False)
    assert report.failed is not None
    assert report.failed.notification.event == "opened"
    assert isinstance(report.error, ConnectionError)
    assert service.deliver_notifications(limit=1) == DeliveryReport(delivered=1)
    assert service.deliver_notifications() == DeliveryReport(delivered=1)
    assert service.deliver_notifications() == DeliveryReport()


def test_a_long_backlog_is_delivered_in_steps_up_to_the_limit(make_service) -> None:
    notifier = FlakyNotifier()
    service = make_service(notifier)
    task = make_task("t-1")
    notes = [
        tf.Notification(SUPPLIER.ref, task.id, task.number, "reminded", f"reminder {n}")
        for n in range(250)
    ]
    service.repository.add(task, notifications=notes)
    assert service.deliver_notifications(limit=130) == DeliveryReport(delivered=130)
    assert service.deliver_notifications() == DeliveryReport(delivered=120)
    assert notifier.sent == notes
    assert service.repository.pending_notifications() == []


def test_deliver_notifications_refuses_a_negative_limit(make_service) -> None:
    service = make_service(FlakyNotifier())
    with pytest.raises(InvalidPayload, match="limit") as caught:
        service.deliver_notifications(limit=-1)
    assert caught.value.field == "limit"


class PlainRepository:
    """A host's repository with only the port's methods: no outbox."""

    def __init__(self) -> None:
        self._inner = InMemoryRepository()
        self.get = self._inner.get
        self.query = self._inner.query
        self.count = self._inner.count
        self.next_number = self._inner.next_number

    def add(self, task: tf.Task) -> None:
        self._inner.add(task)

    def save(self, task: tf.Task, expected_version: int) -> None:
        self._inner.save(task, expected_version)


def test_repository_without_an_outbox_is_notified_directly_after_the_write(make_service) -> None:
    notifier = FlakyNotifier()
    service = make_service(notifier, PlainRepository())
    task = _open_task(service)
    assert [n.event for n in notifier.sent] == ["opened"]
    assert service.deliver_notifications() == DeliveryReport()
    notifier.failing = {2}
    with pytest.raises(ConnectionError):
        service.comment(SAM, task.id, "saved, then the notifier fails")
    assert service.get(BEA, task.id).version == 2


class RacingRepository:
    """Wraps a repository; before each of the first `races` saves, a colleague comments first."""

    def __init__(self, inner: TaskRepository, races: int) -> None:
        self.inner = inner
        self.races = races
        self.saves = 0
        self.get = inner.get
        self.add = inner.add
        self.query = inner.query
        self.count = inner.count
        self.next_number = inner.next_number
        self.pending_notifications = inner.pending_notifications
        self.mark_delivered = inner.mark_delivered

    def save(self, task: tf.Task, expected_version: int, **kwargs) -> None:
        self.saves += 1
        if self.races:
            self.races -= 1
            stored = self.inner.get(task.id)
            other = tf.apply(
                REGISTRY[stored.kind].workflow,
                stored,
                "comment",
                Actor("sue", "supco"),
                START,
                tf.AddComment(f"first, {self.races}"),
            ).task
            self.inner.save(other, stored.version)
        self.inner.save(task, expected_version, **kwargs)


@pytest.fixture(params=["memory", "sqlite"])
def inner_repository(request, tmp_path: Path):
    if request.param == "memory":
        yield InMemoryRepository()
    else:
        with _open_repo(tmp_path / "race.db") as repository:
            yield repository


def test_act_with_retry_reloads_and_applies_again_after_conflicts(inner_repository) -> None:
    racing = RacingRepository(inner_repository, races=2)
    notifier = FlakyNotifier()
    service = tf.TaskService(
        registry=REGISTRY,
        repository=racing,
        notifier=notifier,
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )
    task = _open_task(service)
    outcome = service.act_with_retry(SAM, task.id, "upload", _pdf(), attempts=3)
    assert outcome.task.version == 4
    assert [e.action for e in outcome.task.history] == ["open", "comment", "comment", "upload"]
    assert racing.saves == 3


def test_act_with_retry_raises_the_last_conflict_when_attempts_run_out(inner_repository) -> None:
    racing = RacingRepository(inner_repository, races=5)
    service = tf.TaskService(
        registry=REGISTRY,
        repository=racing,
        notifier=FlakyNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )
    task = _open_task(service)
    with pytest.raises(ConcurrencyConflict) as caught:
        service.act_with_retry(SAM, task.id, "upload", _pdf(), attempts=2)
    assert (caught.value.expected, caught.value.actual) == (2, 3)
    assert racing.saves == 2
    assert [e.action for e in service.get(SAM, task.id).history] == ["open", "comment", "comment"]


def test_act_with_retry_does_not_retry_a_refused_action(make_service) -> None:
    service = make_service(FlakyNotifier())
    task = _open_task(service)
    calls = 0

    def accept_too_early() -> tf.Outcome:
        nonlocal calls
        calls += 1
        return service.act(BEA, task.id, "accept")

    with pytest.raises(ActionNotAllowed):
        retry_on_conflict(accept_too_early, attempts=5)
    assert calls == 1


def test_retry_on_conflict_calls_again_until_success_and_needs_one_attempt() -> None:
    outcomes = iter([ConcurrencyConflict("T-1", 1, 2), ConcurrencyConflict("T-1", 2, 3), "done"])

    def flaky() -> str:
        result = next(outcomes)
        if isinstance(result, Exception):
            raise result
        return result

    assert retry_on_conflict(flaky, attempts=3) == "done"
    for bad in (0, -1, True, 1.5):
        with pytest.raises(InvalidPayload, match="attempts") as caught:
            retry_on_conflict(lambda: "x", attempts=bad)
        assert caught.value.field == "attempts"


def _pdf() -> tf.UploadDocument:
    return tf.UploadDocument(tf.FileRef("c.pdf", tf.PDF, 10, "sha256:1", "files/1"))
