"""Benchmark: the core seams in one run: engine, service in memory, and the service on SQLite.

Run from the repository root::

    .venv/bin/python benchmarks/bench_core.py [--lifecycles N] [--actions A] [--long N]
        [--repeat R] [--clock cpu|wall] [--dir DIR] [--json PATH]
    .venv/bin/python benchmarks/bench_core.py --quick

0. The bare floor: a mutable dict per task and a transition table doing the same five steps,
   refusing a wrong-state action and a non-PDF upload, with a history tuple per step and no
   other field: the least any implementation of this workload does.
1. The document-request lifecycles of bench_engine.py (open, upload, reject, upload, accept)
   through the engine against bench_engine's hand-written dict baseline.
2. The same lifecycles through `TaskService` with `InMemoryRepository`, `RecordingNotifier`,
   `FixedClock` (set to each step's time) and `SequentialIds`.
3. One comment through `TaskService` on a `SqliteRepository` file (WAL mode) on a task with
   5 history entries and on one with `--long` entries (it keeps growing), and the raw sqlite3
   floor of bench_sqlite.py for the same body lengths.

Every round runs every side, one after the other, so machine noise hits them alike; each
side's best round counts. The script reports; it never fails on a missed target.
Figures and what they mean: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import _runner
import bench_engine
import bench_sqlite
from bench_engine import (
    ACCEPT,
    KIND,
    REJECT,
    UPLOAD,
    WORKFLOW,
    Lifecycle,
    Reject,
    document_draft,
    engine_actors,
    make_lifecycles,
    upload_payload,
)

import taskflow
from taskflow import (
    Actor,
    AddComment,
    FixedClock,
    InMemoryRepository,
    RecordingNotifier,
    SequentialIds,
    SqliteRepository,
    Task,
    TaskId,
    TaskService,
    apply,
    default_registry,
)
from taskflow.domain.common import COMMENT
from taskflow.ports import Changeset

# Targets from the "core seams" issue: the engine no worse than today's 5.3x of the baseline;
# one action on SQLite costs the same (within 1.5x) for 5 and for 5,000 history entries.
SPEED_TARGET = 5.3
STORAGE_TARGET = 1.5
# Targets from the performance issue, against the bare floor of part 0.
FLOOR_ENGINE_TARGET = 12.0
FLOOR_SERVICE_TARGET = 30.0

DEFAULT_LIFECYCLES = bench_engine.DEFAULT_LIFECYCLES  # as many as the 5.3x was measured with
DEFAULT_ACTIONS = 100
DEFAULT_REPEAT = bench_engine.DEFAULT_REPEAT
DEFAULT_LONG = 5_000
QUICK_LIFECYCLES = bench_engine.QUICK_LIFECYCLES
QUICK_ACTIONS = 10
QUICK_REPEAT = 1

SHORT = bench_engine.HISTORY_PER_LIFECYCLE  # history entries of a finished lifecycle
SYNCHRONOUS = "NORMAL"
STEP = timedelta(minutes=1)  # between two comments on SQLite


# --------------------------------------------------------------------------------------------
# 2. The service side: bench_engine's lifecycles through TaskService on the in-memory adapters.
# --------------------------------------------------------------------------------------------


def memory_service() -> tuple[TaskService, InMemoryRepository, RecordingNotifier]:
    """Return a service on fresh in-memory adapters, with its repository and notifier."""
    repository = InMemoryRepository()
    notifier = RecordingNotifier()
    service = TaskService(
        registry=default_registry(),
        repository=repository,
        notifier=notifier,
        clock=FixedClock(bench_engine.START),
        ids=SequentialIds("bench"),
    )
    return service, repository, notifier


def service_lifecycle(service: TaskService, lc: Lifecycle, actors: Sequence[Actor]) -> TaskId:
    """Run one document request through the service at the engine's times; return its id."""
    buyer = actors[lc.requester]
    supplier = actors[lc.supplier]
    # The prepared lifecycles overlap in time (each opens 37 s after the last and runs two
    # days) and a FixedClock only moves forward, so each lifecycle gets its own clock, set
    # to each step's time: the service acts at exactly the engine's times.
    clock = FixedClock(lc.opened_at)
    service.clock = clock
    task_id = service.open(buyer, KIND, document_draft(lc, supplier)).task.id
    clock.set(lc.uploaded_at)
    service.act(supplier, task_id, UPLOAD, upload_payload(lc.first_file, lc.first_expiry))
    clock.set(lc.rejected_at)
    service.act(buyer, task_id, REJECT, Reject(lc.reason))
    clock.set(lc.reuploaded_at)
    service.act(supplier, task_id, UPLOAD, upload_payload(lc.second_file, lc.second_expiry))
    clock.set(lc.accepted_at)
    service.act(buyer, task_id, ACCEPT)
    return task_id


def run_service(lifecycles: Iterable[Lifecycle]) -> dict[str, Task]:
    """Run every lifecycle through the service; return the stored final tasks by lifecycle id."""
    service, repository, notifier = memory_service()
    actors = engine_actors()
    ids: list[tuple[str, TaskId]] = []
    for lc in lifecycles:
        ids.append((lc.task_id, service_lifecycle(service, lc, actors)))
        notifier.clear()  # where a host's notifier would send them on
    return {key: repository.get(task_id) for key, task_id in ids}


# --------------------------------------------------------------------------------------------
# 0. The bare floor: the least code that runs the same five steps with the same two refusals.
# --------------------------------------------------------------------------------------------

FLOOR_TABLE: dict[tuple[str, str], str] = {
    ("requested", UPLOAD): "uploaded",
    ("rejected", UPLOAD): "uploaded",
    ("uploaded", REJECT): "rejected",
    ("uploaded", ACCEPT): "accepted",
}


class FloorRefused(Exception):
    """A step the bare floor refuses: a wrong-state action or a file that is not a PDF."""


def floor_act(task: dict[str, Any], action: str, who: str, arg: Any = None) -> None:
    """Take one step on a mutable dict task: table lookup, the PDF check, a history tuple."""
    state = task["state"]
    target = FLOOR_TABLE.get((state, action))
    if target is None:
        msg = f"{action} not allowed in {state}"
        raise FloorRefused(msg)
    if action == UPLOAD:
        if arg.media_type != bench_engine.PDF:
            msg = "upload needs a PDF"
            raise FloorRefused(msg)
        task["file"] = arg
    elif action == REJECT:
        task["reason"] = arg
    task["state"] = target
    task["history"].append((who, action, state, target))


def run_floor(lifecycles: Iterable[Lifecycle]) -> dict[str, dict[str, Any]]:
    """Run every lifecycle on bare mutable dicts (no fields beyond state, answer and history)."""
    tasks: dict[str, dict[str, Any]] = {}
    for lc in lifecycles:
        task: dict[str, Any] = {"state": "requested", "history": []}
        buyer, supplier = ACTOR_POOL_USERS[lc.requester], ACTOR_POOL_USERS[lc.supplier]
        floor_act(task, UPLOAD, supplier, lc.first_file)
        floor_act(task, REJECT, buyer, lc.reason)
        floor_act(task, UPLOAD, supplier, lc.second_file)
        floor_act(task, ACCEPT, buyer)
        tasks[lc.task_id] = task
    return tasks


ACTOR_POOL_USERS: tuple[str, ...] = tuple(user for user, _ in bench_engine.ACTOR_POOL)


def check_floor() -> None:
    """Prove the floor refuses what taskflow refuses: a wrong-state action and a non-PDF upload."""
    lc = next(make_lifecycles(1))
    for steps in (
        [(ACCEPT, None)],
        [(UPLOAD, lc.first_file._replace(media_type="image/png"))],
    ):
        task: dict[str, Any] = {"state": "requested", "history": []}
        try:
            for action, arg in steps:
                floor_act(task, action, "sam", arg)
        except FloorRefused:
            continue
        msg = f"the bare floor accepted {steps}"
        raise AssertionError(msg)


SIDES: dict[str, bench_engine.Runner] = {
    "floor": run_floor,
    "baseline": bench_engine.run_baseline,
    "engine": bench_engine.run_engine,
    "service": run_service,
}


# --------------------------------------------------------------------------------------------
# 3. The service on SQLite: one comment on a short and on a long task.
# --------------------------------------------------------------------------------------------


def comment_text(n: int) -> str:
    """Return the n-th comment's text: different every time, about 80 characters."""
    return (
        f"Comment {n}: please confirm the certificate also covers site {n % 17 + 1} (ref {n:06d})"
    )


def parties(task: Task) -> tuple[Actor, Actor]:
    """Return the requester and the recipient's first assignee of `task`, as actors."""
    buyer = task.requester
    supplier = next(r for r in task.assignees if r.company == task.recipient)
    return Actor(buyer.user, buyer.company), Actor(supplier.user, supplier.company)


def grown(task: Task, entries: int) -> Task:
    """Return `task` with public comments taken through the engine until it has `entries` entries."""
    people = parties(task)
    at = task.history[-1].at
    n = len(task.history)
    while n < entries:
        at += STEP
        task = apply(WORKFLOW, task, COMMENT, people[n % 2], at, AddComment(comment_text(n))).task
        n += 1
    return task


def finished_tasks(seed: int = 7) -> Iterator[Task]:
    """Yield bench_engine's lifecycles finished by the engine (accepted, 5 entries), one by one."""
    for lc in make_lifecycles(sys.maxsize, seed=seed):
        yield from bench_engine.run_engine([lc]).values()


class Storage(NamedTuple):
    """A service on a SQLite file, with what the timed loops need."""

    service: TaskService
    repository: SqliteRepository
    notifier: RecordingNotifier
    clock: FixedClock
    long_id: TaskId
    short_tasks: Iterator[Task]


@contextmanager
def storage(path: Path, long: int) -> Iterator[Storage]:
    """Open a service on a new SQLite file holding one task with `long` history entries."""
    registry = default_registry()
    # Finished lifecycles, 5 entries each, made by the engine as they are needed: the first
    # grows into the long task, the others are the short ones.
    short_tasks = finished_tasks()
    with SqliteRepository(path, registry, synchronous=SYNCHRONOUS) as repository:
        long_task = grown(next(short_tasks), long)
        repository.add(long_task)
        notifier = RecordingNotifier()
        # After every prepared time: the long task's last comment and the short tasks' steps.
        clock = FixedClock(max(long_task.history[-1].at, bench_engine.START) + timedelta(days=30))
        service = TaskService(
            registry=registry,
            repository=repository,
            notifier=notifier,
            clock=clock,
            ids=SequentialIds("bench"),
        )
        yield Storage(service, repository, notifier, clock, long_task.id, short_tasks)


class Timing(NamedTuple):
    """What one timed block took: CPU and wall seconds, and bytes written (None: unknown)."""

    cpu: float
    wall: float
    written: int | None


def _written() -> int | None:
    # Bytes this process passed to write() and pwrite() (Linux): SQLite's WAL frames and
    # checkpoints; nothing else writes while a block runs.
    try:
        with open("/proc/self/io") as io:
            for line in io:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def comment_on(store: Storage, targets: Sequence[tuple[Actor, TaskId]], first: int) -> Timing:
    """Time one `service.comment` per target, the clock advanced a minute before each."""
    service, clock = store.service, store.clock
    gc.collect()
    written = _written()
    cpu, wall = time.process_time(), time.perf_counter()
    for n, (actor, task_id) in enumerate(targets, start=first):
        clock.advance(STEP)
        service.comment(actor, task_id, comment_text(n))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    after = _written()
    store.notifier.clear()
    return Timing(cpu, wall, None if written is None or after is None else after - written)


def short_targets(store: Storage, count: int) -> list[tuple[Actor, TaskId]]:
    """Store `count` new finished lifecycles (5 entries each); return who comments on each."""
    tasks = [next(store.short_tasks) for _ in range(count)]
    store.repository.commit(Changeset(added=tasks))
    return [(parties(t)[n % 2], t.id) for n, t in enumerate(tasks)]


def long_targets(store: Storage, count: int) -> list[tuple[Actor, TaskId]]:
    """Return `count` comments on the long task, its requester and supplier taking turns."""
    people = parties(store.repository.get(store.long_id))
    return [(people[n % 2], store.long_id) for n in range(count)]


def body_length(path: Path, task_id: str) -> int:
    """Return the bytes of JSON the task is stored as: its row plus its history and comment rows."""
    query = (
        "SELECT length(CAST(body AS BLOB)) "
        "+ coalesce((SELECT sum(length(CAST(h.body AS BLOB))) FROM task_history h "
        "WHERE h.task_pk = t.pk), 0) "
        "+ coalesce((SELECT sum(length(CAST(c.body AS BLOB))) FROM task_comments c "
        "WHERE c.task_pk = t.pk), 0) FROM tasks t WHERE id = ?"
    )
    with closing(sqlite3.connect(path)) as conn:
        (length,) = conn.execute(query, (task_id,)).fetchone()
    return int(length)


def row_length(path: Path, task_id: str) -> int:
    """Return the bytes of the task's own row body: what one save rewrites (its rows are appended)."""
    query = "SELECT length(CAST(body AS BLOB)) FROM tasks WHERE id = ?"
    with closing(sqlite3.connect(path)) as conn:
        (length,) = conn.execute(query, (task_id,)).fetchone()
    return int(length)


def raw_floor(path: Path, writes: int, length: int) -> float:
    """Return bench_sqlite's raw sqlite3 seconds per write of a row with a `length`-byte body."""
    lifecycles = math.ceil(writes / bench_sqlite.ACTIONS_PER_LIFECYCLE)
    lengths = [length] * bench_sqlite.ACTIONS_PER_LIFECYCLE
    seconds = bench_sqlite.run_raw(path, lifecycles, SYNCHRONOUS, lengths)
    return seconds / (lifecycles * bench_sqlite.ACTIONS_PER_LIFECYCLE)


# --------------------------------------------------------------------------------------------
# The run.
# --------------------------------------------------------------------------------------------


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lifecycles",
        type=int,
        help=f"per side and round, parts 1-2 (default {DEFAULT_LIFECYCLES:,})",
    )
    parser.add_argument(
        "--actions",
        type=int,
        help=f"comments per task size and round, part 3 (default {DEFAULT_ACTIONS})",
    )
    parser.add_argument(
        "--long",
        type=int,
        default=DEFAULT_LONG,
        help=f"history entries of the long task (default {DEFAULT_LONG:,})",
    )
    parser.add_argument(
        "--repeat", type=int, help=f"rounds; the best counts (default {DEFAULT_REPEAT})"
    )
    parser.add_argument(
        "--clock",
        choices=sorted(bench_engine.CLOCKS),
        default="cpu",
        help="parts 1-2: cpu (default, steady on a busy machine) or wall; part 3 reports both",
    )
    parser.add_argument("--dir", type=Path, help="where the SQLite files go (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {QUICK_LIFECYCLES} lifecycles, {QUICK_ACTIONS} actions, {QUICK_REPEAT} round",
    )
    args = parser.parse_args(argv)
    quick = (QUICK_LIFECYCLES, QUICK_ACTIONS, QUICK_REPEAT)
    default = (DEFAULT_LIFECYCLES, DEFAULT_ACTIONS, DEFAULT_REPEAT)
    for name, value in zip(
        ("lifecycles", "actions", "repeat"), quick if args.quick else default, strict=True
    ):
        if getattr(args, name) is None:
            setattr(args, name, value)
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.long < SHORT:
        parser.error(f"--long must be at least {SHORT} (a finished lifecycle's entries)")
    return args


def _verdict(ratio: float, target: float) -> str:
    return "met" if ratio <= target else "missed"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its report; return the exit status (0: reporting only)."""
    args = _parse(argv)
    print(f"taskflow core benchmark, {date.today().isoformat()}")
    print(f"{bench_engine.machine()}, SQLite {sqlite3.sqlite_version}")
    print(f"taskflow: {taskflow.__file__}")
    print(f"load average at start: {_runner.load()}")
    print(
        f"rounds: best of {args.repeat}, every side in every round; parts 1-2 by {args.clock} "
        "time, gc on; part 3 by wall time (CPU time beside it)"
    )
    check_floor()
    lifecycles = list(make_lifecycles(args.lifecycles))
    for run in SIDES.values():
        run(lifecycles[:200])  # warm up

    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        folder = Path(scratch)
        path = folder / "core.db"
        with storage(path, args.long) as store:
            # Warm up the path (the serializer generates its code on first use) on a short
            # task, so the long one has exactly --long entries when the first round starts.
            comment_on(store, short_targets(store, 2), 0)
            best: dict[str, float] = dict.fromkeys(SIDES, math.inf)
            short: list[Timing] = []
            long: list[Timing] = []
            floor: dict[str, float] = {"short": math.inf, "long": math.inf}
            lengths = {"short": 0, "long": 0, "short_row": 0, "long_row": 0}
            for round_ in range(args.repeat):
                for name, run in SIDES.items():
                    elapsed = bench_engine.time_run(run, lifecycles, args.clock)
                    best[name] = min(best[name], elapsed)
                first = 1 + round_ * args.actions
                targets = short_targets(store, args.actions)
                short.append(comment_on(store, targets, first))
                lengths["short"] = body_length(path, targets[-1][1])
                lengths["short_row"] = row_length(path, targets[-1][1])
                long.append(comment_on(store, long_targets(store, args.actions), first))
                lengths["long"] = body_length(path, store.long_id)
                lengths["long_row"] = row_length(path, store.long_id)
                for size in ("short", "long"):
                    raw = raw_floor(
                        folder / f"raw-{round_}-{size}.db", args.actions, lengths[f"{size}_row"]
                    )
                    floor[size] = min(floor[size], raw)
            entries = len(store.repository.get(store.long_id).history)
    del lifecycles

    figures = _report(args, best, short, long, floor, lengths, entries)
    print(f"load average at end: {_runner.load()}")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"figures written to {args.json}")
    return 0


def _best(timings: Sequence[Timing], actions: int) -> dict[str, Any]:
    fastest = min(timings, key=lambda t: t.wall)
    written = [t.written for t in timings]
    known = [w for w in written if w is not None]
    return {
        "ms_per_action_wall": 1000 * fastest.wall / actions,
        "ms_per_action_cpu": 1000 * min(t.cpu for t in timings) / actions,
        # Every round's, not the fastest's: the long task is larger in each round.
        "bytes_written_per_action": (
            sum(known) / (len(known) * actions) if known and len(known) == len(written) else None
        ),
    }


def _report(
    args: argparse.Namespace,
    best: dict[str, float],
    short_timings: Sequence[Timing],
    long_timings: Sequence[Timing],
    floor: dict[str, float],
    lengths: dict[str, int],
    entries: int,
) -> dict[str, Any]:
    n = args.lifecycles
    rate = {name: n / seconds for name, seconds in best.items()}
    print()
    print(
        f"0-1. engine against the bare floor and the dict baseline: {n:,} document-request lifecycles per side and "
        f"round (open + 4 actions, {SHORT} history entries each)"
    )
    for name in ("floor", "baseline", "engine"):
        print(f"{name + ':':<17} {rate[name]:>9,.0f} lifecycles/s (best {best[name]:.3f} s)")
    engine = best["engine"] / best["baseline"]
    engine_floor = best["engine"] / best["floor"]
    service_floor = best["service"] / best["floor"]
    print(
        f"engine: {engine_floor:.1f}x the bare floor's time (a mutable dict table doing the same "
        f"five steps and two refusals; target <= {FLOOR_ENGINE_TARGET}x): "
        f"{_verdict(engine_floor, FLOOR_ENGINE_TARGET)}"
    )
    engine_ok = _verdict(engine, SPEED_TARGET)
    print(
        f"engine: {engine:.2f}x the baseline's time (target: no worse than {SPEED_TARGET}x): {engine_ok}"
    )

    print()
    print(
        "2. the same lifecycles through TaskService + InMemoryRepository "
        "(RecordingNotifier, FixedClock, SequentialIds)"
    )
    print(
        f"{'service + memory:':<17} {rate['service']:>9,.0f} lifecycles/s (best {best['service']:.3f} s)"
    )
    print(
        f"service + memory: {best['service'] / best['baseline']:.2f}x the baseline's time, "
        f"{best['service'] / best['engine']:.2f}x the engine's"
    )
    print(
        f"service + memory: {service_floor:.1f}x the bare floor's time "
        f"(target <= {FLOOR_SERVICE_TARGET}x): {_verdict(service_floor, FLOOR_SERVICE_TARGET)}"
    )

    short = _best(short_timings, args.actions)
    long = _best(long_timings, args.actions)
    print()
    print(
        f"3. one comment through TaskService + SqliteRepository (WAL file, synchronous={SYNCHRONOUS}), "
        f"{args.actions} per task size and round"
    )
    last = args.long + args.repeat * args.actions
    for label, figures, size in (
        (f"short task ({SHORT} entries):", short, "short"),
        (f"long task ({args.long:,} to {last:,} entries):", long, "long"),
    ):
        written = figures["bytes_written_per_action"]
        print(
            f"{label:<36} {figures['ms_per_action_wall']:>8.2f} ms per action "
            f"(CPU {figures['ms_per_action_cpu']:.2f} ms); stored JSON {lengths[size]:,} B; "
            f"written {'unknown' if written is None else f'{written:,.0f} B'} per action"
        )
    growth = long["ms_per_action_wall"] / short["ms_per_action_wall"]
    growth_cpu = long["ms_per_action_cpu"] / short["ms_per_action_cpu"]
    growth_ok = _verdict(growth, STORAGE_TARGET)
    print(
        f"long/short: {growth:.2f}x per action (CPU {growth_cpu:.2f}x) "
        f"(target: within {STORAGE_TARGET}x): {growth_ok}"
    )
    print(
        f"raw sqlite3 floor (bench_sqlite.run_raw, wall): {1000 * floor['short']:.3f} ms per "
        f"write of the short task's {lengths['short_row']:,} B row, {1000 * floor['long']:.3f} ms "
        f"of the long task's {lengths['long_row']:,} B row (what one save rewrites)"
    )
    print()
    print(
        f"summary: engine {engine_floor:.1f}x the floor (target <= {FLOOR_ENGINE_TARGET}x) "
        f"{_verdict(engine_floor, FLOOR_ENGINE_TARGET)}, service {service_floor:.1f}x the floor "
        f"(target <= {FLOOR_SERVICE_TARGET}x) {_verdict(service_floor, FLOOR_SERVICE_TARGET)}; "
        f"engine {engine:.2f}x the baseline (target <= {SPEED_TARGET}x) {engine_ok}; "
        f"SQLite long/short {growth:.2f}x (target <= {STORAGE_TARGET}x) {growth_ok}"
    )
    return {
        "date": date.today().isoformat(),
        "machine": bench_engine.machine(),
        "sqlite_version": sqlite3.sqlite_version,
        "taskflow": taskflow.__file__,
        "options": {
            "lifecycles": n,
            "actions": args.actions,
            "long": args.long,
            "repeat": args.repeat,
            "clock": args.clock,
        },
        "lifecycles_per_s": rate,
        "engine_vs_baseline": engine,
        "engine_vs_floor": engine_floor,
        "service_vs_floor": service_floor,
        "service_vs_baseline": best["service"] / best["baseline"],
        "service_vs_engine": best["service"] / best["engine"],
        "sqlite": {
            "short": {
                "entries": SHORT,
                "body_bytes": lengths["short"],
                "row_bytes": lengths["short_row"],
                **short,
            },
            "long": {
                "entries": [args.long, entries],
                "body_bytes": lengths["long"],
                "row_bytes": lengths["long_row"],
                **long,
            },
            "long_vs_short": growth,
            "long_vs_short_cpu": growth_cpu,
            "raw_ms_per_write": {size: 1000 * s for size, s in floor.items()},
        },
        "targets": {
            "engine_vs_floor": {
                "target": FLOOR_ENGINE_TARGET,
                "verdict": _verdict(engine_floor, FLOOR_ENGINE_TARGET),
            },
            "service_vs_floor": {
                "target": FLOOR_SERVICE_TARGET,
                "verdict": _verdict(service_floor, FLOOR_SERVICE_TARGET),
            },
            "engine_vs_baseline": {"target": SPEED_TARGET, "verdict": engine_ok},
            "long_vs_short": {"target": STORAGE_TARGET, "verdict": growth_ok},
        },
    }


if __name__ == "__main__":
    sys.exit(main())
