"""Benchmark: the SQLite repository, through the service against raw sqlite3, and inbox queries at scale.

Run from the repository root::

    .venv/bin/python benchmarks/bench_sqlite.py [--lifecycles N] [--tasks N] [--queries Q]
        [--synchronous NORMAL|FULL] [--dir DIR]
    .venv/bin/python benchmarks/bench_sqlite.py --quick

Part 1, writes: N document-request lifecycles (open, upload, reject, upload, accept: five
actions each) through `TaskService` on a `SqliteRepository` file (WAL mode), against raw
`sqlite3` making the equivalent writes in one run: one transaction per action that inserts the
task row (open) or updates it with a version check (every other action), with a JSON body of
the same length, in a table with the same columns and indexes, with the same durability
settings. The service also does what the raw side does not: it loads the task, runs the
workflow, serializes, keeps the assignee rows and the notification outbox, and delivers.

Part 2, reads: a database of `--tasks` stored tasks (default 1,000,000) is built by the
benchmark itself with `executemany` straight into the tables (not through the service: that
would take hours); then the inbox of `--queries` different users is read through
`TaskService.inbox` on a freshly opened repository (cold: every task is deserialized) and again
(warm: the repository's cache of loaded tasks answers), and the same SQL alone.

The script reports; it never fails on a slow figure. Figures: docs/storage.md.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import _runner

import taskflow as tf
from taskflow.adapters.sqlite import SqliteRepository
from taskflow.kinds.document import DocumentRequest, Reject, UploadDocument
from taskflow.serialization import Serializer

DEFAULT_LIFECYCLES = 2_000
DEFAULT_TASKS = 1_000_000
DEFAULT_QUERIES = 20
QUICK_LIFECYCLES = 200
QUICK_TASKS = 20_000
QUICK_QUERIES = 5
ACTIONS_PER_LIFECYCLE = 5
START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

# Part 2's population: a few buying companies, many suppliers, three users each; a task is
# assigned to one buyer user and one supplier user. 80 % of the tasks are closed.
BUYER_COMPANIES = 50
SUPPLIER_COMPANIES = 2_000
USERS_PER_COMPANY = 3
BUILD_BATCH = 50_000

_TASK_COLUMNS = (
    "id, kind, state, requester_company, recipient_company, ball_company, is_open, "
    "due_at, created_at, number, version, body"
)
# The SQL the repository runs for an inbox (see docs/storage.md), to time the SQL alone.
_INBOX_SQL = (
    "SELECT id, version, body FROM tasks WHERE pk IN (SELECT task_pk FROM task_assignees "
    "WHERE company = ? AND user_id = ? AND ball_company = ?) AND +ball_company = ? "
    "ORDER BY created_at, id"
)


def machine() -> str:
    """Return the Python version and platform line the report starts with."""
    return _runner.machine(f"SQLite {sqlite3.sqlite_version}")


# --- part 1: writes -------------------------------------------------------------------------

BUYER = tf.Actor("bea", "acme")
SUPPLIER = tf.Actor("sam", "supco")


def _pdf(n: int) -> UploadDocument:
    file = tf.FileRef(f"certificate-{n}.pdf", tf.PDF, 48_000 + n, f"sha256:{n:064x}", f"s3/{n}")
    return UploadDocument(file, date(2030, 6, 30))


def _lifecycle(service: tf.TaskService, clock: tf.FixedClock, n: int) -> None:
    draft = tf.NewTask(
        f"ISO 9001 certificate {n}",
        "supco",
        DocumentRequest("ISO 9001 certificate", requires_expiry=True),
        assignees=[SUPPLIER.ref],
        due_at=START + timedelta(days=14),
    )
    task_id = service.open(BUYER, "document_request", draft).task.id
    clock.advance(timedelta(seconds=1))
    service.act(SUPPLIER, task_id, "upload", _pdf(2 * n))
    clock.advance(timedelta(seconds=1))
    service.act(BUYER, task_id, "reject", Reject("This is the 2019 certificate"))
    clock.advance(timedelta(seconds=1))
    service.act(SUPPLIER, task_id, "upload", _pdf(2 * n + 1))
    clock.advance(timedelta(seconds=1))
    service.act(BUYER, task_id, "accept")


def run_service(path: Path, lifecycles: int, synchronous: str) -> tuple[float, list[int]]:
    """Time `lifecycles` lifecycles through the service; return seconds and the body lengths."""
    registry = tf.default_registry()
    clock = tf.FixedClock(START)
    notifier = tf.RecordingNotifier()
    with SqliteRepository(path, registry, synchronous=synchronous) as repository:
        service = tf.TaskService(
            registry=registry,
            repository=repository,
            notifier=notifier,
            clock=clock,
            ids=tf.SequentialIds("bench"),
        )
        _lifecycle(service, clock, -1)  # warm up: the first call generates code
        started = time.perf_counter()
        for n in range(lifecycles):
            _lifecycle(service, clock, n)
            if n % 100 == 0:
                notifier.clear()
        elapsed = time.perf_counter() - started
        serializer = Serializer(registry)
        last = repository.get(tf.TaskId(f"bench-{lifecycles + 1}"))
        lengths = [
            len(json.dumps(serializer.dump_task(v), separators=(",", ":")))
            for v in _versions(registry, last)
        ]
    return elapsed, lengths


def _versions(registry: tf.Registry, task: tf.Task) -> list[tf.Task]:
    """Return the task as it stood after each of its actions (version 1, 2, ...)."""
    workflow = registry[task.kind].workflow
    versions = []
    for entry in task.history:
        past = tf.task_at(workflow, task, entry.at)
        assert past is not None
        versions.append(past)
    return versions


def run_raw(path: Path, lifecycles: int, synchronous: str, lengths: Sequence[int]) -> float:
    """Time the equivalent raw sqlite3 writes: one transaction per action, same row sizes."""
    SqliteRepository(path, tf.default_registry()).close()  # the same tables and indexes
    bodies = [json.dumps({"pad": "x" * max(n - 11, 0)}) for n in lengths]  # n characters
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    insert = f"INSERT INTO tasks ({_TASK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    update = (
        "UPDATE tasks SET state = ?, ball_company = ?, is_open = ?, version = ?, body = ? "
        "WHERE id = ? AND version = ?"
    )
    steps = [
        ("uploaded", "acme", 1),
        ("rejected", "supco", 1),
        ("uploaded", "acme", 1),
        ("accepted", None, 0),
    ]
    created = int(START.timestamp() * 1_000_000)
    started = time.perf_counter()
    for n in range(lifecycles):
        task_id = f"raw-{n}"
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            insert,
            (task_id, "document_request", "requested", "acme", "supco", "supco", 1,
             created + 14 * 86_400_000_000, created + n, f"ACME-TASK-{n}", 1, bodies[0]),
        )  # fmt: skip
        conn.execute("COMMIT")
        for version, (state, ball, is_open) in enumerate(steps, start=2):
            conn.execute("BEGIN IMMEDIATE")
            changed = conn.execute(
                update, (state, ball, is_open, version, bodies[version - 1], task_id, version - 1)
            ).rowcount
            conn.execute("COMMIT")
            assert changed == 1
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


# --- part 2: inbox queries over many stored tasks ---------------------------------------------


def _company(kind: str, n: int) -> str:
    return f"{kind}{n:04d}"


def _templates(registry: tf.Registry) -> dict[str, str]:
    """Return the JSON of one task per state, with %(name)s where each row puts its own values."""
    serializer = Serializer(registry)
    workflow = registry["document_request"].workflow
    buyer = tf.Actor("__buser__", "__buyer__")
    supplier = tf.Actor("__suser__", "__supplier__")
    draft = tf.NewTask(
        "ISO 9001 certificate",
        "__supplier__",
        DocumentRequest("ISO 9001 certificate", requires_expiry=True),
        assignees=[supplier.ref],
        due_at=START + timedelta(days=14),
    )
    at = START
    task = tf.open_task(
        workflow, "document_request", draft, buyer, at, tf.TaskId("__id__"), "__number__",
        data_type=DocumentRequest,
    ).task  # fmt: skip
    states = {"requested": task}
    for actor, action, payload in (
        (supplier, "upload", _pdf(1)),
        (buyer, "reject", Reject("This is the 2019 certificate")),
        (supplier, "upload", _pdf(2)),
        (buyer, "accept", None),
    ):
        at += timedelta(hours=1)
        task = tf.apply(workflow, task, action, actor, at, payload).task
        states.setdefault(task.state, task)
    templates = {}
    for state, version in states.items():
        text = json.dumps(serializer.dump_task(version), separators=(",", ":"))
        text = text.replace("%", "%%").replace(START.isoformat(), "%(created)s")
        for name in ("id", "number", "buser", "buyer", "suser", "supplier"):
            text = text.replace(f"__{name}__", f"%({name})s")
        templates[state] = text
    return templates


def _rows(count: int, seed: int = 2026) -> Iterator[tuple[dict[str, Any], str]]:
    rng = random.Random(seed)
    for n in range(count):
        roll = rng.random()
        state = "requested" if roll < 0.15 else "uploaded" if roll < 0.20 else "accepted"
        buyer = _company("buyer", rng.randrange(BUYER_COMPANIES))
        supplier = _company("supplier", rng.randrange(SUPPLIER_COMPANIES))
        values = {
            "id": f"t{n:07d}",
            "number": f"{buyer.upper()}-TASK-{n}",
            "buyer": buyer,
            "buser": f"u{rng.randrange(USERS_PER_COMPANY)}",
            "supplier": supplier,
            "suser": f"u{rng.randrange(USERS_PER_COMPANY)}",
            "created": (START - timedelta(minutes=count - n)).isoformat(),
        }
        yield values, state


def build(path: Path, count: int) -> float:
    """Store `count` tasks with executemany (synchronous=OFF while building); return seconds."""
    registry = tf.default_registry()
    SqliteRepository(path, registry).close()  # the schema, exactly as the repository makes it
    templates = _templates(registry)
    ball = {"requested": "supplier", "uploaded": "buyer", "accepted": None}
    versions = {"requested": 1, "uploaded": 2, "accepted": 5}
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    due = (START + timedelta(days=14) - epoch) // timedelta(microseconds=1)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    insert = f"INSERT INTO tasks ({_TASK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    assignee = (
        "INSERT INTO task_assignees (task_pk, company, user_id, ball_company) VALUES (?, ?, ?, ?)"
    )
    started = time.perf_counter()
    rows = _rows(count)
    pk = 0
    while True:
        tasks: list[tuple[Any, ...]] = []
        assignees: list[tuple[Any, ...]] = []
        for values, state in rows:
            pk += 1
            in_court = None if ball[state] is None else values[ball[state]]
            created = (datetime.fromisoformat(values["created"]) - epoch) // timedelta(
                microseconds=1
            )
            tasks.append(
                (values["id"], "document_request", state, values["buyer"], values["supplier"],
                 in_court, int(state != "accepted"), due, created, values["number"],
                 versions[state], templates[state] % values)
            )  # fmt: skip
            assignees.append((pk, values["buyer"], values["buser"], in_court))
            assignees.append((pk, values["supplier"], values["suser"], in_court))
            if len(tasks) == BUILD_BATCH:
                break
        if not tasks:
            break
        conn.execute("BEGIN")
        conn.executemany(insert, tasks)
        conn.executemany(assignee, assignees)
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - started


def time_inboxes(path: Path, actors: Sequence[tf.Actor]) -> dict[str, float]:
    """Return mean milliseconds per inbox: cold and warm through the service, and SQL alone."""
    registry = tf.default_registry()
    sizes: list[int] = []
    cold: list[float] = []
    warm: list[float] = []
    sql: list[float] = []
    with SqliteRepository(path, registry) as repository:
        service = tf.TaskService(
            registry=registry,
            repository=repository,
            notifier=tf.RecordingNotifier(),
            clock=tf.FixedClock(START),
            ids=tf.SequentialIds(),
        )
        service.inbox(tf.Actor("nobody", "nowhere"))  # warm up the code paths, not the data
        for actor in actors:
            started = time.perf_counter()
            found = service.inbox(actor)
            cold.append(time.perf_counter() - started)
            started = time.perf_counter()
            again = service.inbox(actor)
            warm.append(time.perf_counter() - started)
            assert again == found
            sizes.append(len(found))
    conn = sqlite3.connect(path)
    for actor in actors:
        params = (actor.company, actor.user, actor.company, actor.company)
        started = time.perf_counter()
        rows = conn.execute(_INBOX_SQL, params).fetchall()
        sql.append(time.perf_counter() - started)
        assert len(rows) == sizes[len(sql) - 1]
    conn.close()
    return {
        "tasks": statistics.mean(sizes),
        "cold": 1000 * statistics.mean(cold),
        "warm": 1000 * statistics.mean(warm),
        "sql": 1000 * statistics.mean(sql),
    }


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lifecycles", type=int, help=f"part 1 (default {DEFAULT_LIFECYCLES:,})")
    parser.add_argument(
        "--tasks", type=int, help=f"part 2 stored tasks (default {DEFAULT_TASKS:,})"
    )
    parser.add_argument(
        "--queries",
        type=int,
        help=f"users whose inbox is read, per side (default {DEFAULT_QUERIES})",
    )
    parser.add_argument(
        "--synchronous",
        default="NORMAL",
        choices=["NORMAL", "FULL"],
        help="durability (both sides)",
    )
    parser.add_argument(
        "--dir", type=Path, help="where the database files go (default: a temp dir)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {QUICK_LIFECYCLES} lifecycles, {QUICK_TASKS:,} tasks, {QUICK_QUERIES} queries",
    )
    args = parser.parse_args(argv)
    defaults = (
        (QUICK_LIFECYCLES, QUICK_TASKS, QUICK_QUERIES)
        if args.quick
        else (DEFAULT_LIFECYCLES, DEFAULT_TASKS, DEFAULT_QUERIES)
    )
    for name, default in zip(("lifecycles", "tasks", "queries"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, default)
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its report; return the exit status (0: reporting only)."""
    args = _parse(argv)
    print(f"taskflow SQLite benchmark, {date.today().isoformat()}")
    print(machine())
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        folder = Path(scratch)
        print(
            f"writes: {args.lifecycles:,} lifecycles x {ACTIONS_PER_LIFECYCLE} actions, file "
            f"database in WAL mode, synchronous={args.synchronous}, one transaction per action"
        )
        service_s, lengths = run_service(folder / "service.db", args.lifecycles, args.synchronous)
        raw_s = run_raw(folder / "raw.db", args.lifecycles, args.synchronous, lengths)
        actions = args.lifecycles * ACTIONS_PER_LIFECYCLE
        print(f"task JSON per version: {', '.join(f'{n:,}' for n in lengths)} bytes")
        print(f"service:     {actions / service_s:>10,.0f} actions/s ({service_s:.2f} s)")
        print(f"raw sqlite3: {actions / raw_s:>10,.0f} writes/s ({raw_s:.2f} s)")
        print(f"ratio: the service takes {service_s / raw_s:.1f}x the time of raw sqlite3")

        path = folder / "inbox.db"
        built = build(path, args.tasks)
        size = path.stat().st_size / 1e6
        print(
            f"reads: {args.tasks:,} stored tasks (80 % closed), built with executemany in "
            f"{built:.1f} s, database {size:,.0f} MB"
        )
        rng = random.Random(7)
        for side, companies in (("supplier", SUPPLIER_COMPANIES), ("buyer", BUYER_COMPANIES)):
            actors = [
                tf.Actor(
                    f"u{rng.randrange(USERS_PER_COMPANY)}", _company(side, rng.randrange(companies))
                )
                for _ in range(args.queries)
            ]
            figures = time_inboxes(path, actors)
            print(
                f"inbox of a {side} user: {figures['cold']:.2f} ms per query cold, "
                f"{figures['warm']:.2f} ms warm, SQL alone {figures['sql']:.2f} ms "
                f"({figures['tasks']:.1f} tasks per inbox, mean of {args.queries} users)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
