"""The SLA benchmark script runs with tiny sizes and reports every figure against its baseline."""

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_sla.py"


def _load():
    spec = importlib.util.spec_from_file_location("bench_sla", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_tiny_run_reports_sla_state_and_due_query_against_their_baselines(capsys, tmp_path):
    bench = _load()
    argv = ["--state-tasks", "40", "--distinct", "20", "--stored", "300", "--queries", "2"]
    assert bench.main([*argv, "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "SLA state: 40 tasks x 10 history entries (20 distinct)" in out
    assert "due SLA events: 300 stored tasks" in out
    assert "SlaService.due_tasks (limit 100, 4 found)" in out
    assert out.count("x the baseline") == 2
    assert "SEARCH task_fields USING PRIMARY KEY" in out  # the index, never a scan of the tasks
