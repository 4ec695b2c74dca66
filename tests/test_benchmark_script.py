"""The engine benchmark script runs, reports every figure, and its baseline does the engine's work."""

import gc
import importlib.util
import platform
import sys
from pathlib import Path
from types import ModuleType

import pytest

from taskflow.domain.engine import apply, open_task
from taskflow.domain.task import NewTask
from taskflow.domain.values import PDF, Actor, FileRef
from taskflow.errors import ActionNotAllowed, InvalidPayload, PermissionDenied

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_engine.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_engine", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # NamedTuple classes look their module up in sys.modules while the script is executed.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench = _load()


def test_quick_run_prints_rates_ratios_memory_and_summary(capsys):
    status = bench.main(["--quick"])

    out = capsys.readouterr().out
    lines = out.splitlines()
    assert status == 0
    assert lines[0].startswith("taskflow engine benchmark, ")
    assert lines[1].startswith("python: ")
    assert platform.python_version() in lines[1]
    assert "2,000 document-request lifecycles per run" in out
    assert "best of 1" in out
    for side in ("baseline", "engine"):
        assert any(line.startswith(f"{side}:") and "lifecycles/s" in line for line in lines), side
        assert any(
            line.startswith(f"{side}:") and "bytes per live task" in line for line in lines
        ), side
    assert any(line.startswith("speed: engine is ") and "x slower" in line for line in lines)
    assert any(line.startswith("data:") and "bytes per task" in line for line in lines)
    assert any(line.startswith("memory ratio: engine task is ") for line in lines)
    summary = [line for line in lines if line.startswith("summary: ")]
    assert len(summary) == 1
    assert "speed PASS" in summary[0] or "speed FAIL" in summary[0]
    assert "memory PASS" in summary[0] or "memory FAIL" in summary[0]


def test_quick_flag_can_be_overridden_by_explicit_counts(capsys):
    bench.main(["--quick", "--lifecycles", "300", "--memory-tasks", "50"])

    out = capsys.readouterr().out
    assert "300 document-request lifecycles per run" in out
    assert "50 live finished tasks" in out
    assert "by cpu time, gc on" in out


def test_no_gc_run_with_wall_clock_says_so_and_turns_the_collector_back_on(capsys):
    args = ["--lifecycles", "200", "--repeat", "1", "--memory-tasks", "20"]
    bench.main([*args, "--no-gc", "--clock", "wall"])

    out = capsys.readouterr().out
    assert "by wall time, gc off" in out
    assert gc.isenabled()


def test_non_positive_lifecycle_count_is_refused():
    with pytest.raises(SystemExit):
        bench.main(["--lifecycles", "0"])


def test_lifecycles_have_distinct_ids_numbers_files_and_reasons():
    lifecycles = list(bench.make_lifecycles(300))

    for field in ("task_id", "number", "reason"):
        assert len({getattr(lc, field) for lc in lifecycles}) == 300, field
    digests = [lc.first_file.digest for lc in lifecycles] + [
        lc.second_file.digest for lc in lifecycles
    ]
    keys = [lc.first_file.storage_key for lc in lifecycles] + [
        lc.second_file.storage_key for lc in lifecycles
    ]
    assert len(set(digests)) == 600
    assert len(set(keys)) == 600
    assert all(lc.first_file.media_type == PDF for lc in lifecycles)
    assert all(
        lc.opened_at < lc.uploaded_at < lc.rejected_at < lc.reuploaded_at < lc.accepted_at
        for lc in lifecycles
    )
    assert [lc.opened_at for lc in lifecycles] == sorted(lc.opened_at for lc in lifecycles)


def test_engine_and_baseline_end_every_lifecycle_in_the_same_task():
    lifecycles = list(bench.make_lifecycles(40))

    engine = bench.run_engine(lifecycles)
    baseline = bench.run_baseline(lifecycles)

    assert list(engine) == list(baseline) == [lc.task_id for lc in lifecycles]
    for task_id, task in engine.items():
        view = bench.engine_view(task)
        assert view == bench.baseline_view(baseline[task_id])
        assert view.state == "accepted"
        assert view.version == 5
        assert len(view.history) == bench.HISTORY_PER_LIFECYCLE
        assert view.ball is None
        assert len(view.file_keys) == 2


def test_engine_and_baseline_emit_the_same_events_per_lifecycle():
    lc = next(bench.make_lifecycles(1))
    engine_out: list = []
    baseline_out: list = []

    bench.engine_lifecycle({}, lc, bench.engine_actors(), engine_out)
    bench.baseline_lifecycle({}, lc, list(bench.ACTOR_POOL), baseline_out)

    engine_events = [bench.engine_event_view(e) for e in engine_out]
    assert engine_events == [bench.baseline_event_view(e) for e in baseline_out]
    assert [e[0] for e in engine_events] == [
        "opened",
        "document_uploaded",
        "document_rejected",
        "document_uploaded",
        "document_accepted",
    ]


LC = next(bench.make_lifecycles(1))
AT = LC.uploaded_at


def _engine_upload(spec, expires_on):
    file = FileRef(spec.name, spec.media_type, spec.size, spec.digest, spec.storage_key)
    return bench.UploadDocument(file, expires_on)


def _baseline_upload(spec, expires_on):
    return {"file": bench._file_dict(spec), "expires_on": expires_on}


class Both:
    """One document request opened by the engine and by the baseline, from the same values."""

    def __init__(self):
        actors = bench.engine_actors()
        self.engine_actors = {
            "requester": actors[LC.requester],
            "supplier": actors[LC.supplier],
            "stranger": Actor("eve", "elsewhere"),
        }
        self.baseline_actors = {
            "requester": bench.ACTOR_POOL[LC.requester],
            "supplier": bench.ACTOR_POOL[LC.supplier],
            "stranger": ("eve", "elsewhere"),
        }
        self.engine_table: dict = {}
        self.baseline_table: dict = {}
        draft = NewTask(
            LC.subject,
            self.engine_actors["supplier"].company,
            bench.DocumentRequest(LC.document_type, requires_expiry=True),
            assignees=(self.engine_actors["supplier"].ref,),
        )
        outcome = open_task(
            bench.WORKFLOW,
            bench.KIND,
            draft,
            self.engine_actors["requester"],
            LC.opened_at,
            LC.task_id,
            LC.number,
        )
        self.engine_table[LC.task_id] = outcome.task
        supplier = self.baseline_actors["supplier"]
        draft_dict = {
            "subject": LC.subject,
            "recipient": supplier[1],
            "document_type": LC.document_type,
            "requires_expiry": True,
            "assignees": (supplier,),
        }
        bench.baseline_open(
            self.baseline_table,
            LC.task_id,
            LC.number,
            self.baseline_actors["requester"],
            draft_dict,
            LC.opened_at,
        )

    def engine(self, action, who, payload=None, at=AT):
        task = self.engine_table[LC.task_id]
        outcome = apply(bench.WORKFLOW, task, action, self.engine_actors[who], at, payload)
        self.engine_table[LC.task_id] = outcome.task
        return outcome

    def baseline(self, action, who, payload=None, at=AT):
        return bench.baseline_act(
            self.baseline_table, LC.task_id, action, self.baseline_actors[who], at, payload
        )

    def upload_both(self):
        self.engine("upload", "supplier", _engine_upload(LC.first_file, LC.first_expiry))
        self.baseline("upload", "supplier", _baseline_upload(LC.first_file, LC.first_expiry))


@pytest.mark.parametrize(
    ("file_changes", "expires_on"),
    [
        ({"media_type": "application/msword"}, LC.first_expiry),
        ({"digest": "  "}, LC.first_expiry),
        ({"storage_key": ""}, LC.first_expiry),
        ({"size": -1}, LC.first_expiry),
        ({}, AT.date()),
        ({}, None),
    ],
)
def test_baseline_refuses_the_uploads_the_engine_refuses(file_changes, expires_on):
    both = Both()
    spec = LC.first_file._replace(**file_changes)

    with pytest.raises(InvalidPayload):
        both.engine("upload", "supplier", _engine_upload(spec, expires_on))
    with pytest.raises(ValueError):  # noqa: PT011 - the baseline raises plain ValueErrors
        both.baseline("upload", "supplier", _baseline_upload(spec, expires_on))


@pytest.mark.parametrize("who", ["requester", "stranger"])
def test_baseline_refuses_an_upload_by_anyone_but_the_supplier(who):
    both = Both()

    with pytest.raises(PermissionDenied):
        both.engine("upload", who, _engine_upload(LC.first_file, LC.first_expiry))
    with pytest.raises(PermissionError):
        both.baseline("upload", who, _baseline_upload(LC.first_file, LC.first_expiry))


def test_baseline_refuses_accept_before_anything_was_uploaded():
    both = Both()

    with pytest.raises(ActionNotAllowed):
        both.engine("accept", "requester")
    with pytest.raises(ValueError, match="'accept' needs"):
        both.baseline("accept", "requester")


def test_baseline_refuses_accept_by_the_supplier():
    both = Both()
    both.upload_both()

    with pytest.raises(PermissionDenied):
        both.engine("accept", "supplier")
    with pytest.raises(PermissionError):
        both.baseline("accept", "supplier")


def test_baseline_refuses_a_blank_reject_reason():
    both = Both()
    both.upload_both()

    with pytest.raises(InvalidPayload):
        both.engine("reject", "requester", bench.Reject(" "))
    with pytest.raises(ValueError, match="non-blank reason"):
        both.baseline("reject", "requester", {"reason": " "})
