"""The core benchmark runs and reports every section, and its sides do the same work."""

import importlib
import json
import platform
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import attrs
import pytest

from taskflow import TaskId

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
SCRIPT = BENCHMARKS / "bench_core.py"


def _load() -> ModuleType:
    # bench_core imports bench_engine and bench_sqlite as its neighbours, as when it is run.
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module("bench_core")


bench = _load()
engine_bench = sys.modules["bench_engine"]


def test_quick_run_exits_0_and_prints_every_section(tmp_path):
    figures = tmp_path / "figures.json"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    args = ["--quick", "--long", "200", "--dir", str(scratch), "--json", str(figures)]

    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("taskflow core benchmark, ")
    assert lines[1].startswith("python: ")
    assert platform.python_version() in lines[1]
    assert "CPUs" in lines[1]
    assert lines[2] == f"taskflow: {ROOT / 'src' / 'taskflow' / '__init__.py'}"
    for start in (
        "0-1. engine against the bare floor and the dict baseline: 2,000 document-request",
        "floor: ",
        "baseline: ",
        "engine: ",
        "2. the same lifecycles through TaskService + InMemoryRepository",
        "service + memory: ",
        "3. one comment through TaskService + SqliteRepository",
        "short task (5 entries): ",
        "long task (200 to 210 entries): ",
        "long/short: ",
        "raw sqlite3 floor ",
        "summary: ",
    ):
        assert any(line.startswith(start) for line in lines), start
    rates = [line for line in lines if "lifecycles/s" in line]
    assert len(rates) == 4
    assert any(line.startswith("engine: ") and "the baseline's time" in line for line in lines)
    assert any("the baseline's time" in line and "the engine's" in line for line in lines)
    assert any(line.startswith("engine: ") and "the bare floor's time" in line for line in lines)
    (summary,) = [line for line in lines if line.startswith("summary: ")]
    assert summary.count(" met") + summary.count(" missed") == 4
    report = json.loads(figures.read_text())
    assert set(report["lifecycles_per_s"]) == {"floor", "baseline", "engine", "service"}
    assert report["engine_vs_floor"] > 0
    assert report["service_vs_floor"] > 0
    assert report["sqlite"]["long"]["entries"] == [200, 210]
    assert report["sqlite"]["long"]["body_bytes"] > report["sqlite"]["short"]["body_bytes"]
    assert {t["verdict"] for t in report["targets"].values()} <= {"met", "missed"}
    assert list(scratch.iterdir()) == []  # the scratch database is removed


def _without_ids_and_causes(task, task_id):
    history = tuple(attrs.evolve(entry, cause=None) for entry in task.history)
    return attrs.evolve(task, id=task_id, history=history)


def test_service_ends_every_lifecycle_in_the_engine_s_task():
    lifecycles = list(engine_bench.make_lifecycles(40))

    engine = engine_bench.run_engine(lifecycles)
    service = bench.run_service(lifecycles)
    baseline = engine_bench.run_baseline(lifecycles)

    assert list(service) == list(engine) == [lc.task_id for lc in lifecycles]
    for n, lc in enumerate(lifecycles, start=1):
        stored = service[lc.task_id]
        assert stored.id == f"bench-{n}"  # the service's own ids
        assert all(entry.cause is not None for entry in stored.history)
        same = _without_ids_and_causes(stored, lc.task_id)
        assert same == engine[lc.task_id]
        assert engine_bench.engine_view(same) == engine_bench.baseline_view(baseline[lc.task_id])
        assert same.state == "accepted"
        assert len(same.history) == bench.SHORT


def test_service_lifecycle_delivers_its_notifications():
    service, repository, notifier = bench.memory_service()
    lc = next(engine_bench.make_lifecycles(1))

    task_id = bench.service_lifecycle(service, lc, engine_bench.engine_actors())

    assert repository.get(task_id).version == 5
    assert notifier.sent
    assert repository.pending() == []


def test_long_task_has_the_asked_entries_and_each_timed_comment_adds_one(tmp_path):
    with bench.storage(tmp_path / "core.db", 30) as store:
        long_task = store.repository.get(store.long_id)
        assert len(long_task.history) == 30
        assert len(long_task.comments) == 30 - bench.SHORT

        timing = bench.comment_on(store, bench.long_targets(store, 3), 0)

        grown = store.repository.get(store.long_id)
        assert len(grown.history) == 33
        assert grown.version == long_task.version + 3
        assert [e.action for e in grown.history[-3:]] == ["comment"] * 3
        assert {e.actor.company for e in grown.history[-2:]} == {
            grown.requester.company,
            grown.recipient,
        }
        assert timing.cpu > 0
        assert timing.wall > 0
        assert timing.written is None or timing.written > 0


def test_each_short_task_has_five_entries_when_it_is_commented_on(tmp_path):
    with bench.storage(tmp_path / "core.db", bench.SHORT) as store:
        targets = bench.short_targets(store, 4)
        ids = [task_id for _, task_id in targets]
        assert len(set(ids)) == 4
        assert store.long_id not in ids
        assert [len(store.repository.get(TaskId(i)).history) for i in ids] == [bench.SHORT] * 4

        bench.comment_on(store, targets, 0)

        assert [len(store.repository.get(TaskId(i)).history) for i in ids] == [6] * 4
        assert bench.body_length(tmp_path / "core.db", ids[0]) > 0


def test_floor_refuses_a_wrong_state_action_and_a_non_pdf_upload():
    bench = _load()
    bench.check_floor()
    lc = next(bench.make_lifecycles(1))
    task = {"state": "requested", "history": []}
    with pytest.raises(bench.FloorRefused):
        bench.floor_act(task, bench.ACCEPT, "bea")
    with pytest.raises(bench.FloorRefused):
        bench.floor_act(task, bench.UPLOAD, "sam", lc.first_file._replace(media_type="text/plain"))
    assert task == {"state": "requested", "history": []}


def test_floor_runs_the_five_steps_of_every_lifecycle():
    bench = _load()
    lifecycles = list(bench.make_lifecycles(3))
    tasks = bench.run_floor(lifecycles)
    assert set(tasks) == {lc.task_id for lc in lifecycles}
    for task in tasks.values():
        assert task["state"] == "accepted"
        assert [step[1:] for step in task["history"]] == [
            ("upload", "requested", "uploaded"),
            ("reject", "uploaded", "rejected"),
            ("upload", "rejected", "uploaded"),
            ("accept", "uploaded", "accepted"),
        ]
