"""Benchmark: the PostgreSQL repository with 1, 4 and 16 client processes, against raw psycopg and SQLite.

Run from the repository root::

    .venv/bin/python benchmarks/bench_postgres.py [--dsn DSN] [--lifecycles N] [--clients 1,4,16]
        [--tasks N] [--queries Q] [--messages M] [--workers W]
    .venv/bin/python benchmarks/bench_postgres.py --quick
    .venv/bin/python benchmarks/bench_postgres.py --writes-only --rounds 3 --baseline-src OLD/src

`--baseline-src` names another checkout's `src` (e.g. `git worktree add /tmp/old e92affd`): its
service is measured in the same rounds as this one's and the raw baseline, side after side,
so a before/after comparison sees the same load; `--rounds` gives medians.

Without `--dsn` (or TASKFLOW_TEST_PG) it starts a throwaway server (taskflow.testing.postgres:
unix socket, fsync off, so the figures are of the client and the server's CPU, not of a disk).

Part 1, writes: each of P client processes (P in `--clients`) runs N document-request
lifecycles (open, upload, reject, upload, accept: five actions) on tasks of its own, through
`TaskService` on a `PostgresRepository` with a pool of its own, as separate app servers would;
against raw psycopg doing the equivalent writes in the same processes: one transaction per
action that inserts the task row (open) or updates it with `WHERE id = ... AND version = ...`
(every other action), with a jsonb body of the same length, in the same table. The service also
loads the task, runs the workflow, serializes, appends the history rows, keeps the assignee
rows and the notification outbox, and delivers. The same two sides then run on one SQLite file
(WAL) for comparison. Figures are actions per second over all processes, from the moment all
are ready to the moment the last is done.

Part 2, reads: `--tasks` stored tasks (default 1,000,000) are written with COPY straight into
the tables (not through the service); then the inbox of `--queries` users per side is read
through `TaskService.inbox` on a new repository (cold: every task deserialized) and again
(warm: the cache answers), and the same SQL alone.

Part 3, delivery: `--messages` outbox messages are queued, then `--workers` processes claim
(batches of 100, `FOR UPDATE SKIP LOCKED`, a lease) and complete them until none is left;
every message must be delivered exactly once.

The script reports; it never fails on a slow figure. Figures: docs/storage.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import _runner
import psycopg

import taskflow as tf
from taskflow.adapters.postgres import PostgresRepository
from taskflow.adapters.sqlite import SqliteRepository
from taskflow.kinds.document import DocumentRequest, Reject, UploadDocument
from taskflow.serialization import Serializer
from taskflow.testing.postgres import throwaway_server

DEFAULT_LIFECYCLES = 100
DEFAULT_CLIENTS = (1, 4, 16)
DEFAULT_TASKS = 1_000_000
DEFAULT_QUERIES = 20
DEFAULT_MESSAGES = 20_000
DEFAULT_WORKERS = 4
QUICK = {"lifecycles": 20, "tasks": 20_000, "queries": 5, "messages": 2_000}
ACTIONS_PER_LIFECYCLE = 5
START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
SCRIPT = Path(__file__).resolve()

BUYER_COMPANIES = 50
SUPPLIER_COMPANIES = 2_000
USERS_PER_COMPANY = 3

BUYER = tf.Actor("bea", "acme")
SUPPLIER = tf.Actor("sam", "supco")
_STEPS = (
    ("uploaded", "acme", True),
    ("rejected", "supco", True),
    ("uploaded", "acme", True),
    ("accepted", None, False),
)


def machine(dsn: str) -> str:
    """Return the Python, platform and server line the report starts with."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    server = row[0] if row else "?"
    return _runner.machine(
        f"PostgreSQL {server}",
        f"psycopg {psycopg.__version__}",
        f"SQLite {sqlite3.sqlite_version}",
    )


# --- part 1: writes, in client processes ------------------------------------------------------


def _pdf(n: int) -> UploadDocument:
    file = tf.FileRef(f"certificate-{n}.pdf", tf.PDF, 48_000 + n, f"sha256:{n:064x}", f"s3/{n}")
    return UploadDocument(file, date(2030, 6, 30))


def _lifecycle(service: tf.TaskService, clock: tf.FixedClock, n: int) -> str:
    draft = tf.NewTask(
        f"ISO 9001 certificate {n}",
        "supco",
        DocumentRequest("ISO 9001 certificate", requires_expiry=True),
        assignees=[SUPPLIER.ref],
        due_at=START + timedelta(days=14),
    )
    task_id = service.open(BUYER, "document_request", draft).task.id
    for actor, action, payload in (
        (SUPPLIER, "upload", _pdf(2 * n)),
        (BUYER, "reject", Reject("This is the 2019 certificate")),
        (SUPPLIER, "upload", _pdf(2 * n + 1)),
        (BUYER, "accept", None),
    ):
        clock.advance(timedelta(seconds=1))
        service.act(actor, task_id, action, payload)
    return task_id


def _open(store: str, where: str, schema: str) -> Any:
    registry = tf.default_registry()
    if store == "postgres":
        return PostgresRepository(where, registry, schema=schema, pool_size=1)
    return SqliteRepository(where, registry)


def _service_client(store: str, where: str, schema: str, index: int, lifecycles: int) -> float:
    """Run `lifecycles` lifecycles through the service once told to start; return seconds."""
    registry = tf.default_registry()
    clock = tf.FixedClock(START)
    notifier = tf.RecordingNotifier()
    with _open(store, where, schema) as repository:
        service = tf.TaskService(
            registry=registry,
            repository=repository,
            notifier=notifier,
            clock=clock,
            ids=tf.SequentialIds(f"p{index}-"),
        )
        _lifecycle(service, clock, -1)  # warm up: the first call generates code
        _ready()
        started = time.perf_counter()
        for n in range(lifecycles):
            _lifecycle(service, clock, n)
            notifier.clear()
        return time.perf_counter() - started


def _raw_client(
    store: str, where: str, schema: str, index: int, lifecycles: int, lengths: Sequence[int]
) -> float:
    """Make the equivalent raw writes once told to start: one transaction per action; return seconds."""
    bodies = [json.dumps({"pad": "x" * max(n - 11, 0)}) for n in lengths]
    created = START
    if store == "postgres":
        conn: Any = psycopg.connect(where, autocommit=True)
        table = f'"{schema}".tasks'
        insert = (
            f"INSERT INTO {table} (id, kind, state, requester_company, recipient_company, "
            "ball_company, is_open, due_at, created_at, number, version, schema, body, "
            "history_len, comments_len) VALUES "
            "(%s, 'document_request', 'requested', 'acme', 'supco', 'supco', true, %s, %s, %s, "
            "1, 2, %s::jsonb, 0, 0)"
        )
        update = (
            f"UPDATE {table} SET state = %s, ball_company = %s, is_open = %s, version = %s, "
            "body = %s::jsonb WHERE id = %s AND version = %s"
        )
        begin, commit = conn.transaction, None
    else:
        conn = sqlite3.connect(where, isolation_level=None, timeout=60)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        insert = (
            "INSERT INTO tasks (id, kind, state, requester_company, recipient_company, "
            "ball_company, is_open, due_at, created_at, number, version, body) VALUES "
            "(?, 'document_request', 'requested', 'acme', 'supco', 'supco', 1, ?, ?, ?, 1, ?)"
        )
        update = (
            "UPDATE tasks SET state = ?, ball_company = ?, is_open = ?, version = ?, body = ? "
            "WHERE id = ? AND version = ?"
        )
        begin, commit = None, "COMMIT"
    micros = int(START.timestamp() * 1_000_000)
    _ready()
    started = time.perf_counter()
    for n in range(lifecycles):
        task_id = f"raw-{index}-{n}"
        if begin is not None:
            due, at = created + timedelta(days=14), created + timedelta(microseconds=n)
            with begin():
                conn.execute(insert, (task_id, due, at, f"ACME-TASK-{n}", bodies[0]))
            for version, (state, ball, is_open) in enumerate(_STEPS, start=2):
                with begin():
                    params = (state, ball, is_open, version, bodies[version - 1], task_id)
                    changed = conn.execute(update, (*params, version - 1)).rowcount
                assert changed == 1
        else:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                insert,
                (task_id, micros + 14 * 86_400_000_000, micros + n, f"ACME-TASK-{n}", bodies[0]),
            )
            conn.execute(commit)
            for version, (state, ball, is_open) in enumerate(_STEPS, start=2):
                conn.execute("BEGIN IMMEDIATE")
                params = (state, ball, int(is_open), version, bodies[version - 1], task_id)
                changed = conn.execute(update, (*params, version - 1)).rowcount
                conn.execute(commit)
                assert changed == 1
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def _delivery_client(where: str, schema: str, index: int) -> float:
    """Claim and complete outbox messages until none is left; print how many; return seconds."""
    with _open("postgres", where, schema) as repository:
        _ready()
        started = time.perf_counter()
        delivered = 0
        while batch := repository.claim(
            f"worker-{index}", START, lease=timedelta(minutes=5), limit=100
        ):
            repository.complete(batch)
            delivered += len(batch)
        elapsed = time.perf_counter() - started
    print(f"delivered {delivered}", flush=True)
    return elapsed


def _ready() -> None:
    """Tell the parent this client is ready, and wait for its word to start."""
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        raise SystemExit(1)


def _clients(commands: list[list[str]], src: Path | None = None) -> tuple[float, list[str]]:
    """Start client processes, start them at once, wait for all; return seconds and outputs.

    The seconds are the longest any client took from the word to start to its last write, as
    it timed itself: the processes' start-up and exit are not counted. With `src`, the clients
    import taskflow from that folder (another checkout's `src`) instead of this one.
    """
    env = None
    if src is not None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]),
        }
    with ExitStack() as stack:
        processes = [
            stack.enter_context(
                subprocess.Popen(
                    [sys.executable, str(SCRIPT), "--client", *command],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    env=env,
                )
            )
            for command in commands
        ]
        for process in processes:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            if line != "ready":
                msg = f"a client process did not start: {line!r}"
                raise RuntimeError(msg)
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        outputs = []
        for process in processes:
            out, _ = process.communicate(timeout=3600)
            if process.returncode != 0:
                msg = f"a client process failed with exit status {process.returncode}"
                raise RuntimeError(msg)
            outputs.append(out)
        elapsed = max(float(out.split("elapsed")[-1]) for out in outputs)
        return elapsed, outputs


def _body_lengths() -> list[int]:
    """Return the length of the task JSON after each action of one lifecycle."""
    registry = tf.default_registry()
    clock = tf.FixedClock(START)
    repository = tf.InMemoryRepository()
    service = tf.TaskService(
        registry=registry,
        repository=repository,
        notifier=tf.RecordingNotifier(),
        clock=clock,
        ids=tf.SequentialIds(),
    )
    task = repository.get(tf.TaskId(_lifecycle(service, clock, 0)))
    serializer = Serializer(registry)
    workflow = registry[task.kind].workflow
    lengths = []
    for entry in task.history:
        past = tf.task_at(workflow, task, entry.at)
        assert past is not None
        lengths.append(len(json.dumps(serializer.dump_task(past), separators=(",", ":"))))
    return lengths


def run_writes(
    dsn: str,
    folder: Path,
    lifecycles: int,
    clients: Sequence[int],
    *,
    baseline: Path | None = None,
    rounds: int = 1,
) -> dict[tuple[str, str, int], float]:
    """Return actions per second for (store, side, client processes), the median of `rounds`.

    The sides are `raw`, `service` and, with `baseline` (another checkout's `src`), `baseline`:
    the service of that code, measured in the same rounds, one side after the other, so a
    before/after comparison sees the same load on the machine.
    """
    lengths = _body_lengths()
    sides = ("raw", "service", "baseline") if baseline is not None else ("service", "raw")
    runs: dict[tuple[str, str, int], list[float]] = {}
    for _ in range(rounds):
        for store in ("postgres", "sqlite"):
            for count in clients:
                for side in sides:
                    schema = f"bench_{side}_{count}"
                    if store == "postgres":
                        where = dsn
                        with psycopg.connect(dsn, autocommit=True) as conn:
                            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                    else:
                        where = str(folder / f"{schema}.db")
                        for leftover in folder.glob(f"{schema}.db*"):
                            leftover.unlink()
                    _open(store, where, schema).close()  # the tables, as the repository makes them
                    role = "raw" if side == "raw" else "service"
                    commands = [
                        [role, store, where, schema, str(i), str(lifecycles), json.dumps(lengths)]
                        for i in range(count)
                    ]
                    src = baseline if side == "baseline" else None
                    elapsed, _ = _clients(commands, src)
                    rate = count * lifecycles * ACTIONS_PER_LIFECYCLE / elapsed
                    runs.setdefault((store, side, count), []).append(rate)
    return {key: statistics.median(rates) for key, rates in runs.items()}


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


def build(dsn: str, schema: str, count: int) -> float:
    """Store `count` tasks with COPY (history kept in the task's JSON); return seconds."""
    registry = tf.default_registry()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    PostgresRepository(dsn, registry, schema=schema, pool_size=1).close()
    templates = _templates(registry)
    ball = {"requested": "supplier", "uploaded": "buyer", "accepted": None}
    versions = {"requested": 1, "uploaded": 2, "accepted": 5}
    due = START + timedelta(days=14)
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        with conn.cursor() as cur:
            tasks = (
                f'COPY "{schema}".tasks (id, kind, state, requester_company, recipient_company, '
                "ball_company, is_open, due_at, created_at, number, version, schema, body, "
                "history_len, comments_len) FROM STDIN"
            )
            with cur.copy(tasks) as copy:
                for values, state in _rows(count):
                    in_court = None if ball[state] is None else values[ball[state]]
                    copy.write_row(
                        (values["id"], "document_request", state, values["buyer"],
                         values["supplier"], in_court, state != "accepted", due,
                         datetime.fromisoformat(values["created"]), values["number"],
                         versions[state], 2, templates[state] % values, 0, 0)
                    )  # fmt: skip
            assignees = f'COPY "{schema}".task_assignees (task_pk, company, user_id, ball_company) FROM STDIN'
            with cur.copy(assignees) as copy:
                for pk, (values, state) in enumerate(_rows(count), start=1):
                    in_court = None if ball[state] is None else values[ball[state]]
                    copy.write_row((pk, values["buyer"], values["buser"], in_court))
                    copy.write_row((pk, values["supplier"], values["suser"], in_court))
        conn.commit()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'VACUUM ANALYZE "{schema}".tasks')
        conn.execute(f'VACUUM ANALYZE "{schema}".task_assignees')
    return time.perf_counter() - started


def time_inboxes(dsn: str, schema: str, actors: Sequence[tf.Actor]) -> dict[str, float]:
    """Return mean milliseconds per inbox: cold and warm through the service, and SQL alone."""
    registry = tf.default_registry()
    sizes: list[int] = []
    cold: list[float] = []
    warm: list[float] = []
    sql: list[float] = []
    with PostgresRepository(dsn, registry, schema=schema, pool_size=1) as repository:
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
    inbox = (
        f'SELECT id, version, body::text FROM "{schema}".tasks WHERE pk IN (SELECT task_pk '
        f'FROM "{schema}".task_assignees WHERE company = %s AND user_id = %s AND '
        "ball_company = %s) AND ball_company = %s ORDER BY created_at, id"
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        for n, actor in enumerate(actors):
            params = (actor.company, actor.user, actor.company, actor.company)
            started = time.perf_counter()
            rows = conn.execute(inbox, params).fetchall()
            sql.append(time.perf_counter() - started)
            assert len(rows) == sizes[n]
    return {
        "tasks": statistics.mean(sizes),
        "cold": 1000 * statistics.mean(cold),
        "warm": 1000 * statistics.mean(warm),
        "sql": 1000 * statistics.mean(sql),
    }


# --- part 3: outbox delivery with several workers --------------------------------------------


def run_delivery(dsn: str, messages: int, workers: int) -> tuple[float, list[int]]:
    """Queue `messages`, drain them with `workers` processes; return messages/s and each one's count."""
    schema = "bench_outbox"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    with PostgresRepository(dsn, tf.default_registry(), schema=schema, pool_size=1) as repo:
        batch = 1_000
        for start in range(0, messages, batch):
            repo.commit(
                tf.Changeset(
                    messages=[
                        tf.OutboxMessage("webhook", f"m{n}", {"n": n, "text": "x" * 200})
                        for n in range(start, min(start + batch, messages))
                    ]
                )
            )
        elapsed, outputs = _clients([["deliver", dsn, schema, str(i)] for i in range(workers)])
        counts = [int(out.split("delivered")[-1].split()[0]) for out in outputs]
        assert repo.pending() == [], "messages left undelivered"
    if sum(counts) != messages:
        msg = f"{sum(counts)} deliveries of {messages} messages: some were taken twice or lost"
        raise RuntimeError(msg)
    return messages / elapsed, counts


# --- the report -------------------------------------------------------------------------------


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dsn", help="a PostgreSQL server (default: TASKFLOW_TEST_PG or a throwaway one)"
    )
    parser.add_argument(
        "--lifecycles", type=int, help=f"per client process (default {DEFAULT_LIFECYCLES})"
    )
    parser.add_argument("--clients", help="client process counts, comma-separated (default 1,4,16)")
    parser.add_argument(
        "--tasks", type=int, help=f"part 2 stored tasks (default {DEFAULT_TASKS:,})"
    )
    parser.add_argument(
        "--queries", type=int, help=f"inboxes read per side (default {DEFAULT_QUERIES})"
    )
    parser.add_argument(
        "--messages", type=int, help=f"part 3 messages (default {DEFAULT_MESSAGES:,})"
    )
    parser.add_argument(
        "--workers", type=int, default=DEFAULT_WORKERS, help="part 3 worker processes"
    )
    parser.add_argument("--dir", type=Path, help="where the SQLite files go (default: a temp dir)")
    parser.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK}")
    parser.add_argument(
        "--baseline-src",
        type=Path,
        help="another checkout's src folder: its service is measured too, in the same rounds",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="write rounds; each figure is their median"
    )
    parser.add_argument(
        "--writes-only", action="store_true", help="run part 1 only (no inbox, no delivery)"
    )
    args = parser.parse_args(argv)
    defaults = {
        "lifecycles": DEFAULT_LIFECYCLES,
        "tasks": DEFAULT_TASKS,
        "queries": DEFAULT_QUERIES,
        "messages": DEFAULT_MESSAGES,
    }
    for name, default in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, QUICK[name] if args.quick else default)
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.baseline_src is not None and not (args.baseline_src / "taskflow").is_dir():
        parser.error(f"--baseline-src must be a folder holding taskflow/, got {args.baseline_src}")
    try:
        args.clients = (
            DEFAULT_CLIENTS
            if args.clients is None
            else tuple(int(part) for part in args.clients.split(","))
        )
    except ValueError:
        parser.error(f"--clients must be whole numbers separated by commas, got {args.clients!r}")
    if not args.clients or min(args.clients) < 1:
        parser.error("--clients must name at least one count, each at least 1")
    return args


def report(dsn: str, args: argparse.Namespace) -> None:
    """Run the three parts on the server `dsn` and print the figures."""
    print(f"taskflow PostgreSQL benchmark, {date.today().isoformat()}")
    print(machine(dsn))
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        print(
            f"writes: {args.lifecycles:,} lifecycles x {ACTIONS_PER_LIFECYCLE} actions per client "
            "process, one transaction per action, each process with its own connection"
        )
        rates = run_writes(
            dsn,
            Path(scratch),
            args.lifecycles,
            args.clients,
            baseline=args.baseline_src,
            rounds=args.rounds,
        )
    if args.rounds > 1:
        print(f"each figure: the median of {args.rounds} rounds")
    for store, raw in (("postgres", "raw psycopg"), ("sqlite", "raw sqlite3")):
        name = "PostgreSQL" if store == "postgres" else "SQLite (one WAL file)"
        for count in args.clients:
            service, plain = rates[(store, "service", count)], rates[(store, "raw", count)]
            line = (
                f"{name}, {count:>2} client processes: service {service:>8,.0f} actions/s, "
                f"{raw} {plain:>8,.0f} writes/s, ratio {plain / service:.1f}x"
            )
            if args.baseline_src is not None:
                before = rates[(store, "baseline", count)]
                line += f"; baseline service {before:>8,.0f} actions/s, ratio {plain / before:.1f}x"
            print(line)
    if args.writes_only:
        return
    schema = "bench_inbox"
    built = build(dsn, schema, args.tasks)
    print(f"reads: {args.tasks:,} stored tasks (80 % closed), built with COPY in {built:.1f} s")
    rng = random.Random(7)
    for side, companies in (("supplier", SUPPLIER_COMPANIES), ("buyer", BUYER_COMPANIES)):
        actors = [
            tf.Actor(
                f"u{rng.randrange(USERS_PER_COMPANY)}", _company(side, rng.randrange(companies))
            )
            for _ in range(args.queries)
        ]
        figures = time_inboxes(dsn, schema, actors)
        print(
            f"inbox of a {side} user: {figures['cold']:.2f} ms per query cold, "
            f"{figures['warm']:.2f} ms warm, SQL alone {figures['sql']:.2f} ms "
            f"({figures['tasks']:.1f} tasks per inbox, mean of {args.queries} users)"
        )
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    rate, counts = run_delivery(dsn, args.messages, args.workers)
    print(
        f"delivery: {args.messages:,} outbox messages, {args.workers} worker processes: "
        f"{rate:,.0f} messages/s, each delivered once (per worker: {', '.join(map(str, counts))})"
    )


def client(argv: Sequence[str]) -> int:
    """Run one client process of part 1 or part 3 (the parent starts these)."""
    role = argv[0]
    if role == "deliver":
        elapsed = _delivery_client(argv[1], argv[2], int(argv[3]))
    else:
        store, where, schema = argv[1], argv[2], argv[3]
        index, lifecycles = int(argv[4]), int(argv[5])
        if role == "service":
            elapsed = _service_client(store, where, schema, index, lifecycles)
        else:
            elapsed = _raw_client(store, where, schema, index, lifecycles, json.loads(argv[6]))
    print(f"elapsed {elapsed:.6f}", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its report; return the exit status (0: reporting only)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--client"]:
        return client(argv[1:])
    args = _parse(argv)
    dsn = args.dsn or os.environ.get("TASKFLOW_TEST_PG")
    if dsn:
        report(dsn, args)
        return 0
    with throwaway_server() as started:
        report(started, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
