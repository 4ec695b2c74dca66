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


def test_the_store_is_built_in_one_bulk_load_kept_and_reused(capsys, tmp_path, monkeypatch):
    bench = _load()
    loads = []
    real = bench.SqliteRepository.add_all

    def counting(self, tasks, **options):
        loads.append(options)
        return real(self, tasks, **options)

    monkeypatch.setattr(bench.SqliteRepository, "add_all", counting)
    store = tmp_path / "kept.db"
    argv = ["--skip-state", "--stored", "300", "--queries", "1", "--store", str(store)]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    assert "SLA state" not in out
    assert "due SLA events: 300 stored tasks (built in" in out
    assert "one transaction" in out
    assert len(loads) == 1  # the whole store in one add_all: one transaction
    assert bench.stored_count(store) == 300
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    assert "(reused the kept store)" in out
    assert "SlaService.due_tasks (limit 100, 4 found)" in out
    assert len(loads) == 1
    assert bench.main([*argv[:2], "400", *argv[3:]]) == 0  # another size: built anew
    assert bench.stored_count(store) == 400
    assert len(loads) == 2


def test_the_full_sizes_of_the_issue_are_the_defaults():
    args = _load()._parse([])
    assert (args.state_tasks, args.distinct, args.stored) == (100_000, 0, 1_000_000)
