"""A process killed (SIGKILL) in the middle of writes leaves a database holding whole transactions.

A writer process runs document-request lifecycles through the service on a SQLite file (or on
PostgreSQL, where the server rolls back the transaction of a client that is gone), with a
notifier that always fails, so every notification stays in the outbox. Each write makes exactly
one notification (open tells the supplier; upload, reject and accept tell the other side), so
a whole transaction leaves one outbox row per saved task version, and none for a version that
was not saved. The writer is killed at a random moment, three times over the same file.
"""

import json
import random
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import psycopg
import pytest

from taskflow.adapters.postgres import PostgresRepository
from taskflow.adapters.sqlite import SqliteRepository
from taskflow.kinds import default_registry

_WRITER = """
import itertools, logging, sys
from datetime import UTC, date, datetime
import taskflow as tf
from taskflow.adapters.sqlite import SqliteRepository
from taskflow.kinds.document import DocumentRequest, Reject, UploadDocument

logging.disable(logging.CRITICAL)  # the failing notifier would log a warning per write

class WallClock:
    def now(self):
        return datetime.now(UTC)

class DownNotifier:
    def notify(self, notification):
        raise ConnectionError("the mail server is down")

path, prefix = sys.argv[1], sys.argv[2]
registry = tf.default_registry()
if len(sys.argv) > 3:  # PostgreSQL: a connection string and a schema
    from taskflow.adapters.postgres import PostgresRepository
    repository = PostgresRepository(path, registry, schema=sys.argv[3], pool_size=1)
else:
    repository = SqliteRepository(path, registry)
service = tf.TaskService(registry=registry, repository=repository,
                         notifier=DownNotifier(), clock=WallClock(), ids=tf.SequentialIds(prefix))
buyer, supplier = tf.Actor("bea", "acme"), tf.Actor("sam", "supco")
pdf = UploadDocument(tf.FileRef("c.pdf", tf.PDF, 10, "sha256:1", "files/1"), date(2030, 1, 1))
for n in itertools.count():
    draft = tf.NewTask(f"Certificate {n}", "supco", DocumentRequest("ISO 9001"),
                       assignees=[supplier.ref])
    task_id = service.open(buyer, "document_request", draft).task.id
    service.act(supplier, task_id, "upload", pdf)
    service.act(buyer, task_id, "reject", Reject("Out of date"))
    service.act(supplier, task_id, "upload", pdf)
    service.act(buyer, task_id, "accept")
    print(n, flush=True)
"""


def _run_and_kill(path: Path | str, prefix: str, rng: random.Random, *extra: str) -> int:
    """Start a writer, let it finish a few lifecycles, kill it at a random moment; return how many."""
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), prefix, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        done = 0
        deadline = time.monotonic() + 60
        while done < 3 and time.monotonic() < deadline:
            line = writer.stdout.readline()
            if not line:
                pytest.fail(f"the writer stopped by itself: {writer.stderr.read()}")
            done += 1
        time.sleep(rng.uniform(0, 0.05))  # somewhere inside a later lifecycle's writes
    finally:
        writer.kill()  # SIGKILL: no cleanup, no rollback, no checkpoint
        writer.wait(timeout=30)
    assert writer.returncode == -9
    return done


def _check_whole_transactions(path: Path) -> int:
    with closing(sqlite3.connect(path)) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = raw.execute(
            "SELECT pk, id, state, ball_company, is_open, version, number FROM tasks"
        ).fetchall()
        assignees = {
            (pk, company, user, ball)
            for pk, company, user, ball in raw.execute(
                "SELECT task_pk, company, user_id, ball_company FROM task_assignees"
            )
        }
        outbox = raw.execute("SELECT task_id, task_version, body FROM outbox").fetchall()
        (last_number,) = raw.execute(
            "SELECT last FROM task_numbers WHERE company = 'ACME'"
        ).fetchone()
    with SqliteRepository(path, default_registry()) as repository:
        assert repository.broken_rows() == []
        tasks = {row[1]: repository.get(row[1]) for row in rows}
    for pk, task_id, state, ball, is_open, version, number in rows:
        task = tasks[task_id]
        # The query columns and the assignee rows were written with the JSON, never apart.
        assert (state, ball, bool(is_open), version, number) == (
            task.state,
            task.ball_company,
            task.is_open,
            task.version,
            task.number,
        )
        assert version == len(task.history)
        for ref in task.assignees:
            assert (pk, ref.company, ref.user, task.ball_company) in assignees
    assert len(assignees) == sum(len(t.assignees) for t in tasks.values())
    # One notification per saved version, and none for a version that was never saved.
    queued = sorted((task_id, version) for task_id, version, _ in outbox)
    saved = sorted((t.id, v) for t in tasks.values() for v in range(1, t.version + 1))
    assert queued == saved
    assert all(json.loads(body)["task_id"] == task_id for task_id, _, body in outbox)
    assert last_number >= len(tasks)
    return len(tasks)


def test_writer_killed_mid_writes_leaves_only_whole_transactions(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    rng = random.Random(2026)
    stored = 0
    for round_ in range(3):
        finished = _run_and_kill(path, f"r{round_}", rng)
        count = _check_whole_transactions(path)
        assert count > stored + finished - 1  # the finished lifecycles are all there
        stored = count


def _check_whole_transactions_on_postgres(dsn: str, schema: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as raw:
        rows = raw.execute(
            f'SELECT pk, id, state, ball_company, is_open, version, number FROM "{schema}".tasks'
        ).fetchall()
        assignees = set(
            raw.execute(
                f'SELECT task_pk, company, user_id, ball_company FROM "{schema}".task_assignees'
            ).fetchall()
        )
        outbox = raw.execute(
            f'SELECT task_id, task_version, body::text FROM "{schema}".outbox'
        ).fetchall()
        (last_number,) = raw.execute(
            f"SELECT last FROM \"{schema}\".task_numbers WHERE company = 'ACME'"
        ).fetchone()
    with PostgresRepository(dsn, default_registry(), schema=schema, pool_size=1) as repository:
        assert repository.broken_rows() == []
        tasks = {row[1]: repository.get(row[1]) for row in rows}
    for pk, task_id, state, ball, is_open, version, number in rows:
        task = tasks[task_id]
        assert (state, ball, is_open, version, number) == (
            task.state,
            task.ball_company,
            task.is_open,
            task.version,
            task.number,
        )
        assert version == len(task.history)
        for ref in task.assignees:
            assert (pk, ref.company, ref.user, task.ball_company) in assignees
    assert len(assignees) == sum(len(t.assignees) for t in tasks.values())
    queued = sorted((task_id, version) for task_id, version, _ in outbox)
    saved = sorted((t.id, v) for t in tasks.values() for v in range(1, t.version + 1))
    assert queued == saved
    assert all(json.loads(body)["task_id"] == task_id for task_id, _, body in outbox)
    assert last_number >= len(tasks)
    return len(tasks)


def test_postgres_client_killed_mid_writes_leaves_only_whole_transactions(
    pg_dsn: str, pg_schema: str, pg_reset
) -> None:
    pg_reset()
    rng = random.Random(2026)
    stored = 0
    for round_ in range(3):
        finished = _run_and_kill(pg_dsn, f"r{round_}", rng, pg_schema)
        count = _check_whole_transactions_on_postgres(pg_dsn, pg_schema)
        assert count > stored + finished - 1
        stored = count
