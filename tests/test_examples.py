import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(name, capsys):
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return capsys.readouterr().out


def test_document_request_story_runs_the_whole_sp1_cycle(capsys):
    out = _run("document_request.py", capsys)
    assert "refused (InvalidPayload): 'upload' on task ACME-TASK-1 accepts only PDF" in out
    assert "needs an expiry date after 2026-11-23" in out
    expected_states = [
        "ACME-TASK-1 is 'requested' (v1); in the inbox of: samuel@supco",
        "ACME-TASK-1 is 'uploaded' (v3); in the inbox of: beatrice@acme",
        "ACME-TASK-1 is 'rejected' (v4); in the inbox of: samuel@supco",
        "ACME-TASK-1 is 'uploaded' (v5); in the inbox of: beatrice@acme",
        "ACME-TASK-1 is 'accepted' (v6); in the inbox of: nobody (closed)",
        "ACME-TASK-2 is 'requested' (v1); in the inbox of: nobody yet: it waits in the Teambox",
        "ACME-TASK-2 is 'declined' (v3); in the inbox of: beatrice@acme",
        "ACME-TASK-2 is 'requested' (v4); in the inbox of: susan@supco",
        "ACME-TASK-2 is 'accepted' (v6); in the inbox of: nobody (closed)",
    ]
    positions = [out.index(line) for line in expected_states]
    assert positions == sorted(positions)
    assert "Where is the new scan" not in out.split("== What the buyer sees ==")[1]
    assert "As it stood after the rejection: 'rejected'" in out


@pytest.mark.parametrize("name", ["custom_kind.py"])
def test_other_examples_run(name, capsys):
    out = _run(name, capsys)
    assert "'received' after 2 shipments" in out
