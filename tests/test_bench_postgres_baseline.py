"""The PostgreSQL benchmark compares this tree's service with another checkout's in the same rounds."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_postgres.py"


def _load():
    spec = importlib.util.spec_from_file_location("bench_postgres_baseline", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench = _load()


def test_a_baseline_tree_is_measured_in_the_same_rounds(capsys, tmp_path, pg_dsn):
    status = bench.main(
        ["--dsn", pg_dsn, "--lifecycles", "1", "--clients", "1", "--rounds", "2",
         "--writes-only", "--baseline-src", str(ROOT / "src"), "--dir", str(tmp_path)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0
    assert "each figure: the median of 2 rounds" in out
    for store in ("PostgreSQL", "SQLite (one WAL file)"):
        (line,) = [x for x in out.splitlines() if x.startswith(f"{store},  1 client processes:")]
        assert "; baseline service " in line
        assert line.count("ratio ") == 2
    assert "inbox of a" not in out  # --writes-only
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("argv", "said"),
    [(["--rounds", "0"], "--rounds must"), (["--baseline-src", "/nonexistent"], "--baseline-src")],
)
def test_bad_comparison_options_are_refused(capsys, argv, said):
    with pytest.raises(SystemExit) as exit_:
        bench.main(argv)
    assert exit_.value.code == 2
    assert said in capsys.readouterr().err
