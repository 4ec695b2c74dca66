"""The benchmarks' shared runner: sides interleaved per round, the best round kept, one head line."""

import ast
import gc
import platform
from pathlib import Path

import _runner
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_every_round_runs_every_side_once_preparing_each_before_its_clock():
    calls = []

    def side(name):
        def prepare():
            calls.append(f"prepare {name}")
            return lambda: calls.append(f"run {name}")

        return prepare

    best = _runner.best_times({"a": side("a"), "b": side("b")}, repeat=3)
    assert set(best) == {"a", "b"}
    assert all(seconds >= 0 for seconds in best.values())
    assert calls == ["prepare a", "run a", "prepare b", "run b"] * 3


def test_the_best_round_counts():
    ticks = iter([0.0, 5.0, 10.0, 12.0, 20.0, 23.0])  # rounds of 5, 2 and 3 seconds
    _runner.CLOCKS["fake"] = lambda: next(ticks)
    try:
        assert _runner.best_times({"only": lambda: lambda: None}, 3, clock="fake") == {"only": 2.0}
    finally:
        del _runner.CLOCKS["fake"]


def test_a_run_without_collection_has_gc_off_and_gives_it_back():
    seen = []
    _runner.time_run(lambda: seen.append(gc.isenabled()), collect=False)
    _runner.time_run(lambda: seen.append(gc.isenabled()))
    assert seen == [False, True]
    assert gc.isenabled()


def test_no_round_is_refused_and_no_time_is_infinitely_fast():
    with pytest.raises(ValueError, match="at least one round"):
        _runner.best_times({"a": lambda: lambda: None}, 0)
    assert _runner.per_second(10, 0) == float("inf")
    assert _runner.per_second(10, 2) == 5


def test_the_machine_line_names_python_the_cpus_and_the_extras():
    line = _runner.machine("SQLite 3.45", "PostgreSQL 16")
    assert line.startswith(f"python: {platform.python_implementation()} ")
    assert platform.python_version() in line
    assert line.endswith(" CPUs), SQLite 3.45, PostgreSQL 16")
    assert _runner.load() == "unknown" or len(_runner.load().split()) == 3


def _names(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    timed = [
        n.lineno
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and n.attr in ("perf_counter", "process_time")
    ]
    return imported, timed


@pytest.mark.parametrize("script", ["bench_bookings.py", "bench_desk.py", "bench_engine.py"])
def test_the_side_by_side_benchmarks_time_through_the_shared_runner(script):
    imported, timed = _names(BENCHMARKS / script)
    assert "_runner" in imported
    assert timed == []  # no clock of their own


@pytest.mark.parametrize("script", ["bench_core.py", "bench_sqlite.py", "bench_postgres.py"])
def test_the_other_benchmarks_take_their_head_from_the_shared_runner(script):
    imported, _ = _names(BENCHMARKS / script)
    assert "_runner" in imported
