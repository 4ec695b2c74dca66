"""SLA benchmark: SLA state of many tasks, and the due-SLA-events query over a large SQLite store.

Part 1 computes the SLA state (`sla_state`: every target's used time, pause, warning, breach,
ladder) of `--state-tasks` CRM tasks (default 100,000) with 10 history entries each (open,
comments, status moves including a pause), on a 24x7 calendar, against a hand-written loop
over the same histories that sums the unpaused time and compares it with the thresholds, in
the same run. The tasks are built with the engine: `--distinct` different histories (default
all of them), each state computed `state-tasks / distinct` times (no cache is involved).

Part 2 stores `--stored` SLA-governed CRM tasks (default 1,000,000) in a SQLite file with
`SqliteRepository.add_all`, the repository's bulk loader: one transaction for the whole store
through its own write path (every task has its rows and its `sla_next_event` index row),
fed by a generator so the tasks are never all in memory. The build rate is printed. Then it
asks `SlaService.due_tasks(at, limit=100)` for
tasks whose next SLA event is due (about 1 % of the store is due), against the same question
asked with raw `sqlite3`: an indexed query on the field table joined to the task rows,
fetching their bodies. The query plan of the service's SQL is printed (it must search the
field index, not scan the tasks). Building the store is not timed as part of the figure.
With `--store PATH` the file is kept at PATH, and a later run with the same PATH and
`--stored` reuses it instead of building it again.

Run: .venv/bin/python benchmarks/bench_sla.py [--state-tasks N] [--distinct N] [--stored N]
     [--store PATH] [--skip-state] [--skip-due]
Full sizes (the defaults): 100,000 SLA states of 10-entry tasks; 1,000,000 stored tasks.
The script reports; it never fails on a slow figure. Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import platform
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs

import taskflow as tf
from taskflow.adapters.sqlite import SqliteRepository
from taskflow.application.sla import SlaService
from taskflow.kinds.crm_task import CrmConfig, CrmTask, Regarding, crm_task_kind
from taskflow.sla import EscalationLevel, SlaPolicies, SlaPolicy, sla_state

START = datetime(2026, 1, 5, 9, tzinfo=UTC)
H = timedelta(hours=1)
POLICY = SlaPolicy(
    "bench",
    first_response=4 * H,
    resolution=48 * H,
    ladder=(EscalationLevel("warn", 80), EscalationLevel("breach", 100)),
)
POLICIES = SlaPolicies((POLICY,), default="bench")
KIND = crm_task_kind(CrmConfig(sla=POLICIES))
REGISTRY = tf.Registry([KIND])
AGENT = tf.Actor("ann", "desk")
CUSTOMER = tf.Actor("cora", "acme")
_STEPS = (
    (AGENT, "set_in_progress"),
    (CUSTOMER, "comment"),
    (AGENT, "set_waiting_on_customer"),
    (CUSTOMER, "comment"),
    (AGENT, "set_in_progress"),
    (AGENT, "comment"),
    (CUSTOMER, "comment"),
    (AGENT, "set_waiting_on_customer"),
    (AGENT, "set_in_progress"),
)


def machine() -> str:
    """Describe the interpreter and SQLite version the figures were taken on."""
    return f"CPython {platform.python_version()}, SQLite {sqlite3.sqlite_version}, {platform.machine()}"


def _task(n: int, steps: int, opened: datetime) -> tf.Task:
    """Return a CRM task opened at `opened` with `steps` more entries, minutes to hours apart."""
    workflow = KIND.workflow
    draft = tf.NewTask(f"Task {n}", "desk", CrmTask(regarding=Regarding.account("acme")))
    task = tf.open_task(
        workflow, "crm_task", draft, CUSTOMER, opened, tf.TaskId(f"t{n:07d}"), f"ACME-TASK-{n}",
        data_type=CrmTask,
    ).task  # fmt: skip
    at = opened
    for i, (actor, action) in enumerate(_STEPS[:steps]):
        at += timedelta(minutes=7 + (n * 13 + i * 29) % 170)
        payload = tf.AddComment(f"note {i}") if action == "comment" else None
        task = tf.apply(workflow, task, action, actor, at, payload).task
    return task


def _bare_state(task: tf.Task, at: datetime, pausing: frozenset[str], limits: list[timedelta]):
    """The hand-written floor: unpaused time from opening to `at`, compared with each threshold."""
    used = timedelta(0)
    last = None
    paused = False
    for entry in task.history:
        if last is not None and not paused:
            used += entry.at - last
        paused = entry.to_state in pausing
        last = entry.at
    if last is not None and not paused and at > last:
        used += at - last
    return used, [used >= limit for limit in limits]


def run_state(count: int, distinct: int) -> dict[str, float]:
    """Time `count` SLA states (engine and bare loop) over `distinct` tasks of 10 entries."""
    tasks = [_task(n, 9, START + timedelta(minutes=n % 5000)) for n in range(distinct)]
    assert all(len(t.history) == 10 for t in tasks)
    at = START + 30 * H
    rounds = max(count // distinct, 1)
    limits = [limit * p / 100 for limit in POLICY.limits.values() for p in (80, 100)]
    t0 = time.perf_counter()
    for _ in range(rounds):
        for task in tasks:
            _bare_state(task, at, POLICY.pausing, limits)
    t1 = time.perf_counter()
    for _ in range(rounds):
        for task in tasks:
            sla_state(task, POLICY, at)
    t2 = time.perf_counter()
    return {"computed": rounds * distinct, "bare": t1 - t0, "engine": t2 - t1}


def _clone(template: tf.Task, n: int, opened: datetime) -> tf.Task:
    """Return the freshly opened `template` as task number `n`, opened at `opened`."""
    entry = attrs.evolve(template.history[0], at=opened)
    return attrs.evolve(
        template, id=tf.TaskId(f"t{n:07d}"), number=f"ACME-TASK-{n}", created_at=opened,
        history=(entry,),
    )  # fmt: skip


def due_instant(count: int) -> datetime:
    """Return the instant at which about 1 % of `count` stored tasks have their next SLA event due."""
    # Opened one minute apart: each one's first-response warning (80 % of 4 h) is due 3h12m
    # after it opened, so those opened in the first 1 % of the minutes are due.
    return START + timedelta(minutes=max(count // 100, 1)) + 4 * H * 0.8


def build_store(path: Path, count: int) -> tuple[float, datetime]:
    """Store `count` open CRM tasks with the repository's bulk loader; return seconds and a due instant."""
    started = time.perf_counter()
    template = _task(0, 0, START)
    clones = (_clone(template, n, START + timedelta(minutes=n)) for n in range(count))
    with SqliteRepository(path, REGISTRY, cache_size=0) as repository:
        stored = repository.add_all(clones, chunk=5_000)  # one transaction for the whole store
    assert stored == count, (stored, count)
    return time.perf_counter() - started, due_instant(count)


def stored_count(path: Path) -> int | None:
    """Return how many tasks a kept store at `path` holds (None: no store there)."""
    if not path.exists():
        return None
    conn = sqlite3.connect(path)
    try:
        (count,) = conn.execute("SELECT COUNT(*) FROM tasks").fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return int(count)


_RAW = (
    "SELECT t.body FROM task_fields f JOIN tasks t ON t.pk = f.task_pk "
    "WHERE f.name = 'sla_next_event' AND f.type = 'time' AND f.value <= ? AND t.is_open = 1 "
    "ORDER BY t.created_at, t.id LIMIT ?"
)


def run_due(path: Path, due_at: datetime, queries: int, limit: int) -> dict[str, object]:
    """Time `queries` due-event queries through SlaService and with raw sqlite3, same file."""
    micros = (due_at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    conn = sqlite3.connect(path)
    plan = [row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + _RAW, (micros, limit))]
    t0 = time.perf_counter()
    for _ in range(queries):
        raw = conn.execute(_RAW, (micros, limit)).fetchall()
    t1 = time.perf_counter()
    conn.close()
    with SqliteRepository(path, REGISTRY, cache_size=0) as repository:
        service = tf.TaskService(
            registry=REGISTRY, repository=repository, notifier=tf.RecordingNotifier(),
            clock=tf.FixedClock(due_at), ids=tf.SequentialIds(),
        )  # fmt: skip
        sla = SlaService(service, {"crm_task": POLICIES})
        t2 = time.perf_counter()
        for _ in range(queries):
            found = sla.due_tasks(due_at, limit=limit)
        t3 = time.perf_counter()
        service_plan = repository.query_plan(
            tf.TaskQuery(
                kind="crm_task",
                open=True,
                limit=limit,
                where={"sla_next_event": tf.Between(None, due_at)},
            )
        )
    assert len(found) == len(raw), (len(found), len(raw))
    return {
        "found": len(found),
        "raw": (t1 - t0) / queries,
        "service": (t3 - t2) / queries,
        "raw_plan": plan,
        "service_plan": service_plan,
    }


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--state-tasks", type=int, default=100_000, help="SLA states computed")
    parser.add_argument("--distinct", type=int, default=0, help="distinct tasks (0: all)")
    parser.add_argument("--stored", type=int, default=1_000_000, help="tasks in the SQLite file")
    parser.add_argument("--queries", type=int, default=20, help="due queries timed")
    parser.add_argument("--limit", type=int, default=100, help="tasks per due query")
    parser.add_argument("--dir", type=Path, default=None, help="where the SQLite file goes")
    parser.add_argument(
        "--store", type=Path, default=None, help="keep the SQLite file here; reuse it if it fits"
    )
    parser.add_argument("--skip-state", action="store_true", help="skip part 1 (SLA state)")
    parser.add_argument("--skip-due", action="store_true", help="skip part 2 (the due query)")
    return parser.parse_args(argv)


def _report_state(args: argparse.Namespace) -> None:
    distinct = args.distinct or args.state_tasks
    state = run_state(args.state_tasks, distinct)
    per = state["engine"] / state["computed"] * 1e6
    bare = state["bare"] / state["computed"] * 1e6
    print(f"SLA state: {state['computed']:,} tasks x 10 history entries ({distinct:,} distinct)")
    print(f"  sla_state: {state['engine']:.2f} s, {per:.1f} us per task")
    print(f"  hand-written loop: {state['bare']:.2f} s, {bare:.2f} us per task")
    print(f"  {state['engine'] / state['bare']:.1f}x the baseline")


def _report_due(args: argparse.Namespace, path: Path) -> None:
    if stored_count(path) == args.stored:
        due_at = due_instant(args.stored)
        built = "reused the kept store"
    else:
        path.unlink(missing_ok=True)
        seconds, due_at = build_store(path, args.stored)
        rate = args.stored / seconds if seconds else 0.0
        built = f"built in {seconds:.0f} s, {rate:,.0f} tasks/s, one transaction"
    print(f"due SLA events: {args.stored:,} stored tasks ({built})")
    due = run_due(path, due_at, args.queries, args.limit)
    print(
        f"  SlaService.due_tasks (limit {args.limit}, {due['found']} found): {due['service'] * 1e3:.2f} ms"
    )  # type: ignore[operator]
    print(f"  raw sqlite3 indexed query: {due['raw'] * 1e3:.2f} ms")  # type: ignore[operator]
    print(f"  {due['service'] / due['raw']:.1f}x the baseline")  # type: ignore[operator]
    print(f"  plan (service): {'; '.join(due['service_plan'])}")  # type: ignore[arg-type]
    print(f"  plan (raw): {'; '.join(due['raw_plan'])}")  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> int:
    """Run both parts (or the one not skipped) and print the figures with their baselines."""
    args = _parse(argv)
    print(machine())
    if not args.skip_state:
        _report_state(args)
    if args.skip_due:
        return 0
    if args.store is not None:
        _report_due(args, args.store)
        return 0
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        _report_due(args, Path(tmp) / "sla.db")
    return 0


if __name__ == "__main__":
    sys.exit(main())
