"""The SQLite benchmark script runs with tiny sizes and reports every figure."""

import importlib.util
import platform
import sqlite3
import sys
from contextlib import closing
from pathlib import Path
from types import ModuleType

import taskflow as tf
from taskflow.adapters.sqlite import SqliteRepository

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_sqlite.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_sqlite", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench = _load()


def test_tiny_run_prints_write_rates_their_ratio_and_inbox_times(capsys, tmp_path):
    status = bench.main(
        ["--lifecycles", "4", "--tasks", "400", "--queries", "2", "--dir", str(tmp_path)]
    )

    out = capsys.readouterr().out
    lines = out.splitlines()
    assert status == 0
    assert lines[0].startswith("taskflow SQLite benchmark, ")
    assert platform.python_version() in lines[1]
    assert "4 lifecycles x 5 actions" in out
    assert "WAL mode, synchronous=NORMAL" in out
    assert any(line.startswith("service:") and "actions/s" in line for line in lines)
    assert any(line.startswith("raw sqlite3:") and "writes/s" in line for line in lines)
    assert any(line.startswith("ratio: the service takes ") for line in lines)
    assert "400 stored tasks" in out
    assert "built with executemany" in out
    for side in ("supplier", "buyer"):
        (line,) = [line for line in lines if line.startswith(f"inbox of a {side} user: ")]
        assert "ms per query cold" in line
        assert "SQL alone" in line
        assert "mean of 2 users" in line
    assert list(tmp_path.iterdir()) == []  # the scratch databases are removed


def test_raw_side_writes_bodies_as_long_as_the_service_s(tmp_path):
    elapsed, lengths = bench.run_service(tmp_path / "service.db", 2, "NORMAL")
    assert elapsed > 0
    assert len(lengths) == 5
    assert lengths == sorted(lengths)  # every action adds to the task
    bench.run_raw(tmp_path / "raw.db", 2, "NORMAL", lengths)
    with closing(sqlite3.connect(tmp_path / "raw.db")) as conn:
        rows = conn.execute("SELECT state, version, length(body) FROM tasks").fetchall()
    assert rows == [("accepted", 5, lengths[-1])] * 2


def test_built_rows_load_as_tasks_that_their_columns_and_assignee_rows_find(tmp_path):
    path = tmp_path / "inbox.db"
    bench.build(path, 300)
    with SqliteRepository(path, tf.default_registry()) as repository:
        assert repository.broken_rows() == []
        tasks = repository.query(tf.TaskQuery())
        assert len(tasks) == 300
        assert {t.state for t in tasks} == {"requested", "uploaded", "accepted"}
        for task in tasks[:60]:
            same = tf.TaskQuery(states=task.state, company=task.recipient, side=tf.Side.RECIPIENT)
            assert task in repository.query(same)
            if task.ball_company is not None:
                for user in task.assignees_of(task.ball_company):
                    inbox = tf.TaskQuery(ball_company=task.ball_company, assignee=user)
                    assert task in repository.query(inbox)
