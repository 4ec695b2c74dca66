"""The bookings broadcast benchmark runs with tiny sizes and reports its ratio."""

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_bookings.py"


def test_tiny_run_reports_broadcast_rates_against_the_baseline(capsys):
    spec = importlib.util.spec_from_file_location("bench_bookings", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    spec.loader.exec_module(bench)
    assert bench.main(["--requests", "5", "--offers", "3"]) == 0
    out = capsys.readouterr().out
    assert "5 requests x 3 offers" in out
    assert out.count("x the baseline") == 1
