"""What the SQLite repository adds to the contract: indexes, files, schema, bad rows, errors.

The service's delivery and retry with either repository: tests/test_delivery.py.
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
    DeserializationError,
    InvalidPayload,
    NewTask,
    TaskQuery,
)
from taskflow.adapters.sqlite import STORAGE_VERSION, SqliteRepository
from taskflow.domain.query import Between, Cursor
from taskflow.domain.registry import Registry
from taskflow.errors import StorageError
from taskflow.kinds.document import DocumentRequest, ProductDocumentRequest
from taskflow.serialization import Serializer
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


def test_tasks_numbers_and_outbox_messages_survive_closing_and_reopening(db: Path) -> None:
    task = make_task("t-1", assignees=[SUPPLIER.ref])
    saved = upload(task, SUPPLIER)
    note = tf.OutboxMessage("webhook", "k-1", {"text": "über ✓", "n": [1, 2.5, None]})
    with _open_repo(db) as first:
        first.add(task)
        first.commit(tf.Changeset(saved=[(saved, task.version)], messages=[note]))
        assert [first.next_number(ACME) for _ in range(2)] == [1, 2]
    with _open_repo(db) as again:
        assert again.get(task.id) == saved
        assert again.query(TaskQuery(ball_company=ACME, assignee=BUYER.ref)) == [saved]
        assert again.next_number(ACME) == 3
        assert [e.message for e in again.pending()] == [note]
        assert again.pending()[0].message.payload == note.payload


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
        "dead_letters",
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
        data=ProductDocumentRequest("Safety data sheet", "Widget 3000"),
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
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(STORAGE_VERSION,)]
        declared = raw.execute("SELECT kind, name FROM indexed_fields ORDER BY 1, 2").fetchall()
    assert ("document_request", "files") in declared
    assert ("product_document_request", "product") in declared
    assert ("t-1", "deadline", "time", _micros(T0 + timedelta(days=5))) in _field_rows(db)
    assert ("t-2", "files", "bool", 0) in _field_rows(db)


def test_an_older_database_merges_the_number_counters_of_ids_that_share_a_code(db: Path) -> None:
    # Numbers are counted per company code now ('acme' and 'ACME' share ACME): the upgrade
    # carries the highest number each code reached, so no number is given twice.
    _version_1_database(db, _old_tasks())
    with _raw(db) as raw:
        raw.executemany(
            "INSERT INTO task_numbers (company, last) VALUES (?, ?)",
            [("acme", 4), ("ACME", 2), ("supco", 7)],
        )
        raw.commit()
    with _open_repo(db) as repository:
        assert repository.next_number(tf.CompanyId("ACME")) == 5
        assert repository.next_number(tf.CompanyId("SUPCO")) == 8


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


def _break_entry(db: Path, task_id: str, seq: int, change) -> None:
    with _raw(db) as raw:
        (pk,) = raw.execute("SELECT pk FROM tasks WHERE id = ?", (task_id,)).fetchone()
        (body,) = raw.execute(
            "SELECT body FROM task_history WHERE task_pk = ? AND seq = ?", (pk, seq)
        ).fetchone()
        raw.execute(
            "UPDATE task_history SET body = ? WHERE task_pk = ? AND seq = ?",
            (change(body), pk, seq),
        )


def _bad_media_type(body: str) -> str:
    data = json.loads(body)
    data["payload"]["file"]["media_type"] = "PDF"
    return json.dumps(data)


def _three_tasks(db: Path) -> None:
    with _open_repo(db) as repository:
        for n, hours in ((1, 0), (2, 1), (3, 2)):
            task = make_task(f"t-{n}", created_at=T0 + timedelta(hours=hours))
            repository.add(task)
            repository.save(upload(task, SUPPLIER), task.version)


def test_get_of_a_row_that_no_longer_loads_names_the_task_and_the_field(db: Path) -> None:
    _three_tasks(db)
    _break_entry(db, "t-2", 1, _bad_media_type)
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
    _break_entry(db, "t-1", 1, _bad_media_type)
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
    _break_entry(db, "t-3", 1, _bad_media_type)
    with (
        caplog.at_level(logging.WARNING, logger="taskflow.adapters.sqlite"),
        _open_repo(db) as repository,
    ):
        assert [t.id for t in repository.query(TaskQuery())] == ["t-1", "t-2"]
    assert "cannot load task 't-3'" in caplog.text


def test_a_task_whose_history_rows_are_missing_is_refused_naming_the_count(db: Path) -> None:
    _three_tasks(db)
    with _raw(db) as raw:
        raw.execute("DELETE FROM task_history WHERE seq = 1")
    with _open_repo(db) as repository, pytest.raises(DeserializationError) as caught:
        repository.get(tf.TaskId("t-2"))
    assert "counts 2 history entries but 1 are stored" in str(caught.value)


def test_broken_rows_of_a_sound_database_is_empty(db: Path) -> None:
    _three_tasks(db)
    with _open_repo(db) as repository:
        assert repository.broken_rows() == []


# --- storage version 1 -> 2: the general outbox ----------------------------------------------


def test_a_version_1_database_keeps_its_pending_notifications_in_the_general_outbox(
    db: Path,
) -> None:
    note = {
        "recipient": {"company": "acme", "user": "bea"},
        "task_id": "t-1",
        "task_number": "ACME-TASK-1",
        "event": "document_uploaded",
        "message": "ACME-TASK-1 'Cert': document uploaded by sam@supco",
    }
    with _raw(db) as raw:
        for statement in _VERSION_1:
            raw.execute(statement)
        raw.execute("INSERT INTO schema_version VALUES (1)")
        for n in range(1, 5):
            raw.execute(
                "INSERT INTO outbox (task_id, task_version, body) VALUES ('t-1', ?, ?)",
                (n, json.dumps(note)),
            )
        raw.execute("DELETE FROM outbox WHERE id IN (1, 4)")  # delivered under version 1
    with _open_repo(db) as repository:
        pending = repository.pending()
        assert [e.id for e in pending] == [2, 3]
        assert [(e.topic, e.message.task_version) for e in pending] == [
            ("notification", 2),
            ("notification", 3),
        ]
        assert pending[0].message.payload == note
        # Ids delivered under version 1 are never given again.
        (new,) = repository.commit(tf.Changeset(messages=[tf.OutboxMessage("webhook", "k", {})]))
        assert new == 5
        notifier = tf.RecordingNotifier()
        service = tf.TaskService(
            registry=REGISTRY,
            repository=repository,
            notifier=notifier,
            clock=tf.FixedClock(T0),
            ids=tf.SequentialIds(),
        )
        assert service.deliver().delivered == 2
        assert [n.event for n in notifier.sent] == ["document_uploaded"] * 2
    with _raw(db) as raw:
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(STORAGE_VERSION,)]


def test_an_outbox_row_that_cannot_be_read_becomes_a_dead_letter_and_blocks_none(
    repo: SqliteRepository, db: Path, caplog
) -> None:
    ids = repo.commit(
        tf.Changeset(messages=[tf.OutboxMessage("webhook", f"k{n}", {"n": n}) for n in range(3)])
    )
    with _raw(db) as raw:
        raw.execute("UPDATE outbox SET body = '{not json' WHERE id = ?", (ids[0],))
    with caplog.at_level(logging.WARNING, logger="taskflow.adapters.sqlite"):
        taken = repo.claim("w", T0, lease=timedelta(minutes=1))
    assert [e.id for e in taken] == list(ids[1:])
    (dead,) = repo.dead_letters()
    assert dead.id == ids[0]
    assert "cannot be read" in dead.reason
    assert dead.body == "{not json"
    assert "dead letters" in caplog.text


# --- history entries and comments as rows of their own -------------------------------------


def _count_inserts(db: Path) -> None:
    with _raw(db) as raw:
        raw.execute("CREATE TABLE inserted (tbl TEXT)")
        for table in ("task_history", "task_comments"):
            raw.execute(
                f"CREATE TRIGGER count_{table} AFTER INSERT ON {table} "
                f"BEGIN INSERT INTO inserted VALUES ('{table}'); END"
            )


def _inserted(db: Path) -> dict[str, int]:
    with _raw(db) as raw:
        rows = raw.execute("SELECT tbl, COUNT(*) FROM inserted GROUP BY tbl").fetchall()
        raw.execute("DELETE FROM inserted")
    return dict(rows)


def test_a_save_appends_only_the_new_history_entry_and_comment(db: Path) -> None:
    repository = _open_repo(db)
    _count_inserts(db)
    service = tf.TaskService(
        registry=REGISTRY,
        repository=repository,
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(T0),
        ids=tf.SequentialIds(),
    )
    draft = NewTask("Cert", "supco", DocumentRequest("ISO"), assignees=[SUPPLIER.ref])
    task = service.open(BUYER, "document_request", draft).task
    assert _inserted(db) == {"task_history": 1}
    for n in range(30):
        service.comment(SUPPLIER, task.id, f"note {n}")
    assert _inserted(db) == {"task_history": 30, "task_comments": 30}
    service.comment(BUYER, task.id, "one more")
    assert _inserted(db) == {"task_history": 1, "task_comments": 1}
    current = repository.get(task.id)
    repository.close()
    with _open_repo(db) as again:
        stored = again.get(task.id)
        assert len(stored.history) == 32
        assert [c.text for c in stored.comments][-2:] == ["note 29", "one more"]
        assert stored == current


def test_a_save_without_the_previous_version_at_hand_rewrites_the_rows_correctly(db: Path) -> None:
    task = make_task("t-1", assignees=[SUPPLIER.ref])
    with _open_repo(db, cache_size=0) as repository:
        repository.add(task)
        uploaded = upload(task, SUPPLIER)
        repository.save(uploaded, 1)
        # A host may save any next version: here one whose history was rewritten.
        odd = attrs.evolve(uploaded, history=uploaded.history[1:], version=3)
        repository.save(odd, 2)
    with _open_repo(db) as again:
        assert again.get(task.id) == odd


def test_a_version_1_database_has_its_history_and_comments_moved_into_rows(db: Path) -> None:
    task = make_task("t-1", assignees=[SUPPLIER.ref])
    saved = upload(task, SUPPLIER)
    saved = tf.apply(
        REGISTRY["document_request"].workflow,
        saved,
        "comment",
        BUYER,
        T0 + timedelta(days=1),
        tf.AddComment("thanks"),
    ).task
    body = json.dumps(SERIALIZER.dump_task(saved))
    with _raw(db) as raw:
        for statement in _VERSION_1:
            raw.execute(statement)
        raw.execute("INSERT INTO schema_version VALUES (1)")
        raw.execute(
            "INSERT INTO tasks (id, kind, state, requester_company, recipient_company, "
            "ball_company, is_open, due_at, created_at, number, version, body) "
            "VALUES (?, 'document_request', ?, 'acme', 'supco', ?, 1, NULL, 0, ?, ?, ?)",
            (saved.id, saved.state, saved.ball_company, saved.number, saved.version, body),
        )
        raw.execute(
            "INSERT INTO tasks (id, kind, state, requester_company, recipient_company, "
            "ball_company, is_open, due_at, created_at, number, version, body) "
            "VALUES ('t-broken', 'document_request', 'requested', 'acme', 'supco', "
            "'supco', 1, NULL, 1, 'X', 1, '{not json')"
        )
    with _open_repo(db) as repository:
        assert repository.get(saved.id) == saved
        assert [e.task_id for e in repository.broken_rows()] == ["t-broken"]
    with _raw(db) as raw:
        assert raw.execute("SELECT COUNT(*) FROM task_history").fetchone() == (3,)
        assert raw.execute("SELECT COUNT(*) FROM task_comments").fetchone() == (1,)
        (head,) = raw.execute("SELECT body FROM tasks WHERE id = ?", (saved.id,)).fetchone()
        assert json.loads(head)["history"] == []


def _deeply_nested(body: str) -> str:
    data = json.loads(body)
    data["body"] = "x"
    return json.dumps(data)[:-1] + ',"deep":' + "[" * 100_000 + "]" * 100_000 + "}"


def test_a_deeply_nested_body_is_one_broken_row_not_a_recursion_error(db: Path) -> None:
    _three_tasks(db)
    _break_row(db, "t-1", _deeply_nested)
    with _open_repo(db, on_broken_row=lambda e: None) as repository:
        with pytest.raises(DeserializationError) as caught:
            repository.get(tf.TaskId("t-1"))
        assert caught.value.task_id == "t-1"
        assert [t.id for t in repository.query(TaskQuery())] == ["t-2", "t-3"]
        assert [e.task_id for e in repository.broken_rows()] == ["t-1"]


def test_invalid_utf8_in_a_row_is_one_broken_row_and_the_query_goes_on(db: Path) -> None:
    _three_tasks(db)
    with _raw(db) as raw:
        (body,) = raw.execute("SELECT body FROM tasks WHERE id = 't-2'").fetchone()
        bad = body.replace('"version"', '"v\udcff":1,"version"').encode("utf-8", "surrogateescape")
        raw.execute("UPDATE tasks SET body = CAST(? AS TEXT) WHERE id = 't-2'", (bad,))
    with _open_repo(db, on_broken_row=lambda e: None) as repository:
        with pytest.raises(DeserializationError) as caught:
            repository.get(tf.TaskId("t-2"))
        assert caught.value.task_id == "t-2"
        assert [t.id for t in repository.query(TaskQuery())] == ["t-1", "t-3"]
        assert [e.task_id for e in repository.broken_rows()] == ["t-2"]
