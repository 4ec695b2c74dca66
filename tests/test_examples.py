import runpy
import sys
from pathlib import Path

import pytest

import taskflow as tf
from taskflow.adapters.sqlite import SqliteRepository

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


def test_document_request_story_runs_the_same_on_a_sqlite_file(capsys, monkeypatch, tmp_path):
    db = tmp_path / "story.db"
    monkeypatch.setattr(sys, "argv", ["document_request.py", "--sqlite", str(db)])
    out = _run("document_request.py", capsys)
    monkeypatch.setattr(sys, "argv", ["document_request.py"])
    in_memory = _run("document_request.py", capsys)
    assert out == in_memory + f"The tasks are stored in {db}.\n"
    with SqliteRepository(db, tf.default_registry()) as stored:
        tasks = stored.query(tf.TaskQuery())
        assert [(t.number, t.state, t.version) for t in tasks] == [
            ("ACME-TASK-1", "accepted", 6),
            ("ACME-TASK-2", "accepted", 6),
        ]
        assert stored.pending() == []


@pytest.mark.parametrize("name", ["custom_kind.py"])
def test_other_examples_run(name, capsys):
    out = _run(name, capsys)
    assert "'received' after 2 shipments" in out


def test_supplier_portal_story_runs_every_supplier_portal_kind(capsys):
    out = _run("supplier_portal.py", capsys)
    for kind in ("agreement", "audit", "evaluation", "corrective_action", "contact", "general"):
        assert f"({kind})" in out
    assert "corrective action history: open -> resolve -> reopen -> resolve -> close" in out
    assert "refused: 'answer' on task ACME-TASK-10: number question 'Number of employees'" in out
    progress = [
        line.split(": ")[-1] for line in out.splitlines() if "received questionnaire" in line
    ]
    assert progress == [
        "0/5 (unanswered)",
        "3/5 (in_progress)",
        "4/5 (in_progress)",
        "5/5 (complete)",
        "4/5 (in_progress)",
        "5/5 (accepted)",
    ]
    assert "inbox of susan@supco: ACME-TASK-13:unanswered" in out
    assert "inbox of samuel@supco: ACME-TASK-10:sent_back" in out
    assert out.rstrip().endswith("('questionnaire', 'accepted'): 1}")


def test_bookings_story_tells_both_seeds_step_by_step(capsys):
    out = _run("bookings.py", capsys)
    assert "standalone question for a new customer" in out
    assert "refused: task TOURS-TASK-2 is 'open'; 'mark_resolved' needs booking BK-1042" in out
    assert "resolved by hand -> resolved" in out
    assert "made BK-2001 -> resolved, linked to BK-2001, by system:bookings@tours" in out
    assert "ignored and parked; active tasks page: []" in out
    assert "resolved without action -> resolved" in out
    assert "notifications sent for booking tasks: 0" in out
    assert "(A) 100 % match julia confirmed -> confirmed" in out
    assert "(B) operator picked mark -> alternative" in out
    assert "mark accepted first -> confirmed; withdrawn: prov-julia, prov-nina" in out
    assert "julia too late: task HOMEOPS-TASK-4 is 'withdrawn'" in out
    assert "weekly series over four weeks: Mon 01 Jun, Mon 08 Jun, Mon 15 Jun, Mon 22 Jun" in out
    assert "generated again: 0 new" in out
    assert "julia's average rating: 5.0 over 1 booking(s)" in out


def test_help_desk_story_runs_intake_rules_the_loop_stop_and_a_digest(capsys):
    out = _run("help_desk.py", capsys)
    for line in (
        "email: opened -> CUSTOMERS-TASK-1",
        "reply: appended -> CUSTOMERS-TASK-1",
        "redelivered reply: duplicate -> CUSTOMERS-TASK-1",
        "auto-reply: ignored (auto-reply (Auto-Submitted: auto-replied))",
        "web form: opened -> CUSTOMERS-TASK-2",
        "csv refused: line 3: column 'title' is empty",
        "csv again: duplicate",
        "CUSTOMERS-TASK-2 'Screen flickers': assignees ['bob@acme'] by system:rule:auto-assign@acme",
        "CUSTOMERS-TASK-1: priority high, tags ['escalated']",
        "rule hops taken: 20, deepest 10; stopped chains: 2",
        "digests sent after the 09:00-10:00 period: 1",
        "4 update(s) until 2026-03-02T10:00:00+00:00:",
        "CUSTOMERS-TASK-1 resolved by ann@acme: state resolved",
        "reply to the resolved ticket: reopened -> CUSTOMERS-TASK-1 "
        "(the customer's reply reopened CUSTOMERS-TASK-1)",
        "CUSTOMERS-TASK-1: state reopened, reason 'the customer replied: It jams again.', "
        "last comment 'It jams again.'",
    ):
        assert line in out
    assert "the SLA engine, called by the host's scheduler" in out
    assert out.index("reply to the resolved ticket") > out.index("== Digest ==")


def test_crm_tasks_story_runs_defaults_pause_warning_breach_and_task_complete(capsys):
    out = _run("crm_tasks.py", capsys)
    for line in (
        "ACME-TASK-1: assignees ['ann@desk', 'bob@desk']",
        "start 2026-12-04, due (CS5) Tue 08 Dec 16:00",  # after the Monday holiday
        "paused=True, used 0:30:00, remaining 7:30:00",
        "resolution SLA due Wed 09 Dec 10:30",
        "Tue 08 Dec 15:00: fired nothing",
        "Tue 08 Dec 17:00: fired ['warning of resolution']",  # the target's own warning
        "Wed 09 Dec 11:00: fired ['escalate-lead (breach)']",
        "told lee@desk: ACME-TASK-1 'Invoices do not print': sla escalated by system:sla@desk",
        "warning=True (Tue 08 Dec 16:54), breached=True (Wed 09 Dec 10:30), level escalate-lead",
        "ACME-TASK-1 is complete: 100 %, completed Wed 09 Dec 12:00",
        "told wendy@acme: task_completed",
        "next SLA event due: none",
    ):
        assert line in out
    assert out.count("fired ['") == 2  # one warning, one breach


def test_document_request_story_runs_the_same_on_postgres(capsys, monkeypatch, pg_dsn):
    monkeypatch.setattr(sys, "argv", ["document_request.py"])
    in_memory = _run("document_request.py", capsys)
    monkeypatch.setattr(sys, "argv", ["document_request.py", "--postgres", pg_dsn])
    out = _run("document_request.py", capsys)
    # The same story, step by step, on the throwaway server (tests/conftest.py starts it).
    assert out.startswith(in_memory)
