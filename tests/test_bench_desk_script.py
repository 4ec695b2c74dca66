"""The help-desk benchmark script runs with tiny sizes and reports every figure."""

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_desk.py"


def _load():
    spec = importlib.util.spec_from_file_location("bench_desk", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_tiny_run_reports_rule_and_email_rates_against_their_baselines(capsys):
    bench = _load()
    assert bench.main(["--events", "300", "--rules", "20", "--emails", "20"]) == 0
    out = capsys.readouterr().out
    assert "rules: 20 rules x 300 events" in out
    assert "RuleBook.matching:" in out
    assert "hand-written ifs:" in out
    assert "emails: 20 (half of them replies)" in out
    assert out.count("x the baseline") == 2
