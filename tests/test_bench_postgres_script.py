"""The PostgreSQL benchmark script runs with tiny sizes on the session's server and reports every figure."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_postgres.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_postgres", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench = _load()


def test_tiny_run_prints_write_rates_ratios_inbox_times_and_delivery(capsys, tmp_path, pg_dsn):
    status = bench.main(
        ["--dsn", pg_dsn, "--lifecycles", "2", "--clients", "1", "--tasks", "300",
         "--queries", "2", "--messages", "250", "--workers", "1", "--dir", str(tmp_path)]
    )  # fmt: skip

    out = capsys.readouterr().out
    lines = out.splitlines()
    assert status == 0
    assert lines[0].startswith("taskflow PostgreSQL benchmark, ")
    assert "PostgreSQL 1" in lines[1]
    assert "2 lifecycles x 5 actions per client process" in out
    for store, raw in (("PostgreSQL", "raw psycopg"), ("SQLite (one WAL file)", "raw sqlite3")):
        for count in (1,):
            (line,) = [x for x in lines if x.startswith(f"{store}, {count:>2} client processes:")]
            assert "actions/s" in line
            assert f"{raw} " in line
            assert "ratio " in line
    assert "300 stored tasks" in out
    for side in ("supplier", "buyer"):
        (line,) = [x for x in lines if x.startswith(f"inbox of a {side} user: ")]
        assert "ms per query cold" in line
        assert "SQL alone" in line
    (line,) = [
        x for x in lines if x.startswith("delivery: 250 outbox messages, 1 worker processes")
    ]
    assert "messages/s, each delivered once" in line
    assert list(tmp_path.iterdir()) == []  # the scratch SQLite files are removed


@pytest.mark.parametrize(
    "argv", [["--clients", "0"], ["--clients", "x"], ["--tasks", "0"], ["--workers", "0"]]
)
def test_bad_sizes_are_refused(capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        bench.main(argv)
    assert exit_.value.code == 2
    assert f"{argv[0]} must" in capsys.readouterr().err
