"""What the PostgreSQL repository adds to the contract: schema versions, upgrades, errors, wake-ups.

Every test runs on the session's real server (tests/conftest.py) in the module's schema, or in
a schema of its own where the test is about schemas.
"""

import json
import logging
import subprocess
import sys
import threading
import uuid
from datetime import timedelta

import attrs
import psycopg
import pytest
from psycopg_pool import ConnectionPool

import taskflow as tf
from taskflow import DeserializationError, InvalidPayload, TaskQuery
from taskflow.adapters.postgres import STORAGE_VERSION, PostgresRepository, main, upgrade
from taskflow.domain.common import COMMENT
from taskflow.domain.query import Between
from taskflow.domain.registry import Registry
from taskflow.errors import ConcurrencyConflict, StorageError
from taskflow.serialization import Serializer
from taskflow.testing.contracts import (
    ACME,
    BUYER,
    PROBE,
    SUPPLIER,
    T0,
    Probe,
    RepositoryContract,
    act,
    make_task,
    upload,
)

REGISTRY = RepositoryContract.registry
SERIALIZER = Serializer(REGISTRY)


@pytest.fixture
def repo(pg_pool, pg_schema, pg_reset):
    pg_reset()
    with PostgresRepository(pg_pool, REGISTRY, schema=pg_schema, serializer=SERIALIZER) as r:
        yield r


@pytest.fixture
def fresh_schema(pg_pool):
    """A schema name no table has yet, dropped afterwards."""
    name = f"s_{uuid.uuid4().hex[:12]}"
    yield name
    with pg_pool.connection() as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def _sql(pool: ConnectionPool, statement: str, params=()) -> list[tuple]:
    with pool.connection() as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


# --- connections, schema versions, upgrades --------------------------------------------------


def test_tasks_numbers_and_messages_survive_closing_and_reopening_on_a_connection_string(
    pg_dsn, fresh_schema
) -> None:
    task = make_task("t-1", assignees=[SUPPLIER.ref])
    saved = upload(task, SUPPLIER)
    note = tf.OutboxMessage("webhook", "k-1", {"text": "über ✓", "n": [1, 2.5, None]})
    with PostgresRepository(pg_dsn, REGISTRY, schema=fresh_schema, pool_size=2) as first:
        first.add(task)
        first.commit(tf.Changeset(saved=[(saved, task.version)], messages=[note]))
        assert [first.next_number(ACME) for _ in range(2)] == [1, 2]
    with PostgresRepository(pg_dsn, REGISTRY, schema=fresh_schema) as again:
        assert again.get(task.id) == saved
        assert again.query(TaskQuery(ball_company=ACME, assignee=BUYER.ref)) == [saved]
        assert again.next_number(ACME) == 3
        assert [e.message for e in again.pending()] == [note]
        assert again.pending()[0].message.payload == note.payload


def test_schema_is_created_on_first_use_once_with_its_version(pg_pool, fresh_schema) -> None:
    for _ in range(2):
        PostgresRepository(pg_pool, REGISTRY, schema=fresh_schema).close()
    rows = _sql(pg_pool, f'SELECT version FROM "{fresh_schema}".schema_version')
    assert rows == [(STORAGE_VERSION,)]
    tables = {
        name
        for (name,) in _sql(
            pg_pool, "SELECT tablename FROM pg_tables WHERE schemaname = %s", (fresh_schema,)
        )
    }
    assert {"tasks", "task_history", "task_fields", "outbox", "dead_letters"} <= tables


def test_repositories_opened_at_once_create_the_schema_once(pg_dsn, fresh_schema) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def open_one() -> None:
        barrier.wait()
        try:
            PostgresRepository(pg_dsn, REGISTRY, schema=fresh_schema, pool_size=1).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert upgrade(pg_dsn, schema=fresh_schema) == (STORAGE_VERSION, STORAGE_VERSION)


def test_a_layout_1_schema_gains_marks_and_merges_number_counters_per_code(
    pg_pool, pg_dsn, fresh_schema
) -> None:
    # Layout 1 had no marks table and counted numbers per company id; numbers are counted per
    # company code now ('acme' and 'ACME' share ACME), so the upgrade keeps the highest.
    PostgresRepository(pg_pool, REGISTRY, schema=fresh_schema).close()
    _sql(pg_pool, f'DROP TABLE "{fresh_schema}".marks')
    _sql(pg_pool, f'UPDATE "{fresh_schema}".schema_version SET version = 1')
    _sql(
        pg_pool,
        f'INSERT INTO "{fresh_schema}".task_numbers (company, last) '
        "VALUES ('acme', 4), ('ACME', 2), ('supco', 7)",
    )
    with PostgresRepository(pg_pool, REGISTRY, schema=fresh_schema) as repository:
        assert repository.next_number(tf.CompanyId("ACME")) == 5
        assert repository.next_number(tf.CompanyId("SUPCO")) == 8
        assert not repository.marked("m")
    assert upgrade(pg_dsn, schema=fresh_schema) == (STORAGE_VERSION, STORAGE_VERSION)


def test_schema_of_a_newer_taskflow_is_refused_with_a_storage_error(pg_pool, fresh_schema) -> None:
    PostgresRepository(pg_pool, REGISTRY, schema=fresh_schema).close()
    _sql(
        pg_pool, f'UPDATE "{fresh_schema}".schema_version SET version = %s', (STORAGE_VERSION + 1,)
    )
    with pytest.raises(StorageError) as caught:
        PostgresRepository(pg_pool, REGISTRY, schema=fresh_schema)
    message = str(caught.value)
    assert f"storage schema version {STORAGE_VERSION + 1}" in message
    assert f"({STORAGE_VERSION})" in message
    assert "upgrade taskflow" in message


def test_without_auto_upgrade_a_missing_schema_names_the_deploy_step_that_creates_it(
    pg_dsn, pg_pool, fresh_schema
) -> None:
    with pytest.raises(StorageError, match=r"python -m taskflow\.adapters\.postgres upgrade"):
        PostgresRepository(pg_pool, REGISTRY, schema=fresh_schema, auto_upgrade=False)
    assert _sql(pg_pool, "SELECT 1 FROM pg_namespace WHERE nspname = %s", (fresh_schema,)) == []
    assert upgrade(pg_dsn, schema=fresh_schema) == (0, STORAGE_VERSION)
    with PostgresRepository(pg_pool, REGISTRY, schema=fresh_schema, auto_upgrade=False) as repo:
        repo.add(make_task("t-1"))
        assert [t.id for t in repo.query(TaskQuery())] == ["t-1"]


def test_the_upgrade_command_creates_the_schema_then_reports_it_current(
    pg_dsn, fresh_schema, capsys
) -> None:
    assert main(["version", pg_dsn, "--schema", fresh_schema]) == 0
    assert capsys.readouterr().out.strip() == "0"
    assert main(["upgrade", pg_dsn, "--schema", fresh_schema]) == 0
    assert "upgraded from 0" in capsys.readouterr().out
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "taskflow.adapters.postgres",
            "upgrade",
            pg_dsn,
            "--schema",
            fresh_schema,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"storage version {STORAGE_VERSION} (already current)" in done.stdout


def test_the_upgrade_command_reports_a_server_it_cannot_reach(tmp_path, capsys) -> None:
    assert main(["upgrade", f"host={tmp_path} dbname=none connect_timeout=2"]) == 1
    assert "could not upgrade schema taskflow" in capsys.readouterr().err


def test_a_server_that_cannot_be_reached_raises_storage_error(tmp_path) -> None:
    with pytest.raises(StorageError, match="could not connect") as caught:
        PostgresRepository(f"host={tmp_path} dbname=nowhere", REGISTRY, timeout=0.5)
    assert "nowhere" in caught.value.database


def test_bad_options_are_refused_naming_them(pg_pool) -> None:
    with pytest.raises(InvalidPayload) as caught:
        PostgresRepository(pg_pool, REGISTRY, schema=" ")
    assert caught.value.field == "schema"
    with pytest.raises(InvalidPayload) as caught:
        PostgresRepository(pg_pool, REGISTRY, pool_size=0)
    assert caught.value.field == "pool_size"
    with pytest.raises(InvalidPayload) as caught:
        PostgresRepository(42, REGISTRY)  # type: ignore[arg-type]
    assert caught.value.field == "conninfo"


def test_closed_repository_raises_storage_error_and_closing_twice_is_fine(repo) -> None:
    repo.add(make_task("t-1"))
    repo.close()
    with pytest.raises(StorageError, match="closed"):
        repo.get(tf.TaskId("t-1"))
    with pytest.raises(StorageError, match="closed"):
        repo.add(make_task("t-2"))
    repo.close()


# --- what PostgreSQL cannot store, and how it is stored anyway -------------------------------


def test_nul_and_the_escape_character_in_texts_come_back_unchanged(repo) -> None:
    task = make_task("t-1", assignees=[SUPPLIER.ref])
    repo.add(task)
    texts = ["a\x00b", "\ue000", "\ue000\x01", "\\u0000", "\x00\ue000\x00"]
    current = task
    for text in texts:
        changed = act(current, BUYER, COMMENT, tf.AddComment(text))
        repo.save(changed, current.version)
        current = changed
    with pytest.raises(InvalidPayload, match="U\\+0000"):
        repo.commit(tf.Changeset(messages=[tf.OutboxMessage("webhook", "k\x00", {})]))
    note = tf.OutboxMessage("webhook", "k", {"t\x00": texts})
    repo.commit(tf.Changeset(messages=[note]))
    fresh = PostgresRepository(repo.pool, REGISTRY, schema=repo.schema, cache_size=0)
    assert [c.text for c in fresh.get(task.id).comments] == texts
    assert fresh.get(task.id) == current
    (pending,) = fresh.pending()
    assert pending.message.payload == note.payload
    fresh.close()


def test_text_postgresql_cannot_store_raises_invalid_payload_and_stores_nothing(repo) -> None:
    with pytest.raises(InvalidPayload, match="valid Unicode"):
        repo.add(make_task("t-\ud800"))
    with pytest.raises(InvalidPayload, match="U\\+0000") as caught:
        repo.add(make_task("t-2", kind=PROBE.name, data=Probe("a\x00b")))
    assert caught.value.field == "probe"
    assert repo.query(TaskQuery()) == []


# --- errors of the server become taskflow's --------------------------------------------------


def test_a_deadlock_becomes_a_concurrency_conflict_and_writes_nothing(repo, pg_dsn) -> None:
    first, second = make_task("t-1", assignees=[SUPPLIER.ref]), make_task("t-2")
    repo.add(first)
    repo.add(second)
    caught: list[BaseException] = []
    table = f'"{repo.schema}".tasks'
    with psycopg.connect(pg_dsn) as other:
        other.execute(f"SELECT 1 FROM {table} WHERE id = 't-2' FOR UPDATE")

        def commit_both() -> None:
            try:
                repo.commit(
                    tf.Changeset(
                        saved=[
                            (upload(first, SUPPLIER), 1),
                            (act(second, BUYER, COMMENT, tf.AddComment("x")), 1),
                        ],
                        messages=[tf.OutboxMessage("webhook", "k", {})],
                    )
                )
            except BaseException as exc:
                caught.append(exc)

        thread = threading.Thread(target=commit_both)
        thread.start()
        # Wait until the commit holds t-1 and waits for t-2, then ask for t-1: a deadlock.
        for _ in range(400):
            waiting = other.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            ).fetchone()
            if waiting and waiting[0]:
                break
            threading.Event().wait(0.01)
        try:
            other.execute(f"SELECT 1 FROM {table} WHERE id = 't-1' FOR UPDATE")
        except psycopg.errors.DeadlockDetected:
            other.rollback()  # the server chose this side; the commit then goes through
        thread.join(timeout=60)
    # The commit waited first, so the server's deadlock check runs (and ends it) there first.
    assert caught, "the server broke the deadlock on the other side"
    assert isinstance(caught[0], ConcurrencyConflict), caught[0]
    assert "deadlock" in str(caught[0])
    assert repo.get(first.id) == first
    assert repo.pending() == []


def test_a_connection_the_server_closed_is_replaced_before_the_next_call(
    pg_dsn, fresh_schema
) -> None:
    with PostgresRepository(
        pg_dsn, REGISTRY, schema=fresh_schema, pool_size=1, check_connections=True
    ) as repo:
        repo.add(make_task("t-1"))
        with repo.pool.connection() as conn:
            (pid,) = conn.execute("SELECT pg_backend_pid()").fetchone()
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        # With check_connections the pool tests a connection before handing it out.
        assert [t.id for t in repo.query(TaskQuery())] == ["t-1"]


def test_a_lost_connection_raises_storage_error_and_the_next_call_reconnects(
    pg_dsn, pg_schema, pg_reset
) -> None:
    pg_reset()
    pool = ConnectionPool(pg_dsn, min_size=1, max_size=1, kwargs={"autocommit": True}, open=True)
    try:
        repo = PostgresRepository(pool, REGISTRY, schema=pg_schema)
        task = make_task("t-1", assignees=[SUPPLIER.ref])
        repo.add(task)
        with pool.connection() as conn:
            (pid,) = conn.execute("SELECT pg_backend_pid()").fetchone()
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(StorageError) as caught:
            repo.save(upload(task, SUPPLIER), 1)
        assert isinstance(caught.value.__cause__, psycopg.OperationalError)
        assert repo.get(task.id) == task  # nothing half-written; a new connection answers
        repo.save(upload(task, SUPPLIER), 1)
        assert repo.get(task.id).version == 2
    finally:
        pool.close()


# --- the outbox: skip locked, wake-ups, unreadable rows --------------------------------------


def test_a_claim_skips_messages_another_transaction_holds_instead_of_waiting(repo, pg_dsn) -> None:
    ids = repo.commit(
        tf.Changeset(messages=[tf.OutboxMessage("webhook", f"k{n}", {}) for n in range(3)])
    )
    with psycopg.connect(pg_dsn) as other:
        other.execute(f'SELECT 1 FROM "{repo.schema}".outbox WHERE id = %s FOR UPDATE', (ids[0],))
        taken = repo.claim("w1", T0, lease=timedelta(minutes=1))
        assert [e.id for e in taken] == list(ids[1:])
    assert [e.id for e in repo.claim("w2", T0, lease=timedelta(minutes=1))] == [ids[0]]


def test_an_idle_worker_wakes_when_a_commit_queues_a_message(repo) -> None:
    assert repo.wait_for_messages(0.05) is False
    other = PostgresRepository(repo.pool, REGISTRY, schema=repo.schema)
    woke: list[bool] = []
    waiting = threading.Thread(target=lambda: woke.append(repo.wait_for_messages(30)))
    waiting.start()
    # The listener is subscribed before the wait starts: a commit now is always heard.
    other.commit(tf.Changeset(messages=[tf.OutboxMessage("webhook", "k", {})]))
    waiting.join(timeout=60)
    assert woke == [True]
    assert [e.message.key for e in repo.claim("w", T0, lease=timedelta(minutes=1))] == ["k"]
    other.close()


def test_an_outbox_row_that_cannot_be_read_becomes_a_dead_letter_and_blocks_none(
    repo, pg_pool, caplog
) -> None:
    ids = repo.commit(
        tf.Changeset(messages=[tf.OutboxMessage("webhook", f"k{n}", {"n": n}) for n in range(3)])
    )
    _sql(pg_pool, f"UPDATE \"{repo.schema}\".outbox SET body = '[1]' WHERE id = %s", (ids[0],))
    with caplog.at_level(logging.WARNING, logger="taskflow.adapters.postgres"):
        taken = repo.claim("w", T0, lease=timedelta(minutes=1))
    assert [e.id for e in taken] == list(ids[1:])
    (dead,) = repo.dead_letters()
    assert (dead.id, dead.body) == (ids[0], "[1]")
    assert "cannot be read" in dead.reason
    assert "dead letters" in caplog.text
    assert repo.revive([dead.id], now=T0) == 1
    (revived,) = repo.claim("w", T0, lease=timedelta(minutes=1))
    assert revived.message.payload == {"unreadable": "[1]"}


# --- bad rows, indexed fields ----------------------------------------------------------------


def _three_tasks(repo: PostgresRepository) -> None:
    for n in (1, 2, 3):
        task = make_task(f"t-{n}", assignees=[SUPPLIER.ref], created_at=T0 + timedelta(hours=n))
        repo.add(task)
        repo.save(upload(task, SUPPLIER), 1)


def _break_entry(pool: ConnectionPool, schema: str, task_id: str) -> None:
    _sql(
        pool,
        f'UPDATE "{schema}".task_history h SET body = jsonb_set(h.body, '
        "'{payload,file,media_type}', '\"\"') FROM \"" + schema + '".tasks t '
        "WHERE h.task_pk = t.pk AND t.id = %s AND h.seq = 1",
        (task_id,),
    )


def test_query_skips_a_broken_row_reports_it_and_get_names_it(repo, pg_pool) -> None:
    _three_tasks(repo)
    _break_entry(pg_pool, repo.schema, "t-1")
    reported: list[DeserializationError] = []
    fresh = PostgresRepository(pg_pool, REGISTRY, schema=repo.schema, on_broken_row=reported.append)
    assert [t.id for t in fresh.query(TaskQuery())] == ["t-2", "t-3"]
    assert [t.id for t in fresh.query(TaskQuery(limit=2))] == ["t-2", "t-3"]
    assert [e.task_id for e in reported] == ["t-1", "t-1"]
    assert fresh.count(TaskQuery()) == {("document_request", "uploaded"): 3}
    assert [e.task_id for e in fresh.broken_rows()] == ["t-1"]
    with pytest.raises(DeserializationError) as caught:
        fresh.get(tf.TaskId("t-1"))
    assert caught.value.path == "history[1].payload.file.media_type"
    fresh.close()


def test_missing_history_rows_are_refused_naming_the_count(repo, pg_pool) -> None:
    _three_tasks(repo)
    _sql(pg_pool, f'DELETE FROM "{repo.schema}".task_history WHERE seq = 1')
    fresh = PostgresRepository(pg_pool, REGISTRY, schema=repo.schema, cache_size=0)
    with pytest.raises(DeserializationError, match="counts 2 history entries but 1 are stored"):
        fresh.get(tf.TaskId("t-2"))
    fresh.close()


def test_changed_declarations_are_indexed_again_on_open_and_reindex_recomputes(
    repo, pg_pool
) -> None:
    _three_tasks(repo)
    document = REGISTRY["document_request"]
    subject = attrs.evolve(
        document, indexed={**document.indexed, "subject_length": lambda t: len(t.subject)}
    )
    other = Registry([subject if k.name == subject.name else k for k in REGISTRY])
    with PostgresRepository(pg_pool, other, schema=repo.schema) as changed:
        found = changed.query(TaskQuery(where={"subject_length": Between(1)}))
        assert [t.id for t in found] == ["t-1", "t-2", "t-3"]
        _sql(pg_pool, f"DELETE FROM \"{repo.schema}\".task_fields WHERE name = 'subject_length'")
        assert changed.query(TaskQuery(where={"subject_length": Between(1)})) == []
        assert changed.reindex(["document_request"]) == 3
        assert len(changed.query(TaskQuery(where={"subject_length": Between(1)}))) == 3
    with (
        PostgresRepository(pg_pool, REGISTRY, schema=repo.schema) as back,
        pytest.raises(InvalidPayload, match="subject_length"),
    ):
        back.query(TaskQuery(where={"subject_length": 1}))
    left = _sql(
        pg_pool, f"SELECT count(*) FROM \"{repo.schema}\".task_fields WHERE name = 'subject_length'"
    )
    assert left == [(0,)]


def test_a_save_appends_only_the_new_rows_and_an_unknown_previous_version_rewrites_them(
    repo, pg_pool
) -> None:
    task = make_task("t-1", assignees=[SUPPLIER.ref])
    repo.add(task)
    current = task
    for n in range(5):
        changed = act(current, SUPPLIER, COMMENT, tf.AddComment(f"note {n}"))
        repo.save(changed, current.version)
        current = changed
    counts = _sql(pg_pool, f'SELECT count(*) FROM "{repo.schema}".task_comments')
    assert counts == [(5,)]
    cold = PostgresRepository(pg_pool, REGISTRY, schema=repo.schema, cache_size=0)
    odd = attrs.evolve(current, history=current.history[1:], version=current.version + 1)
    cold.save(odd, current.version)
    assert cold.get(task.id) == odd
    assert json.loads(json.dumps(len(cold.get(task.id).history))) == len(current.history) - 1
    cold.close()


def test_import_taskflow_does_not_import_psycopg() -> None:
    code = "import sys, taskflow, taskflow.adapters.sqlite; print('psycopg' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_the_health_check_reports_a_tampered_column_and_assignee_row(repo) -> None:
    task = make_task("t-1", assignees=[SUPPLIER.ref])
    repo.add(task)
    assert repo.check() == []
    _sql(repo.pool, f'UPDATE "{repo.schema}".tasks SET requester_company = %s', ("stranger",))
    _sql(repo.pool, f'DELETE FROM "{repo.schema}".task_assignees')
    problems = {(p.task_id, p.index) for p in repo.check()}
    assert problems == {("t-1", "requester_company"), ("t-1", "task_assignees")}
