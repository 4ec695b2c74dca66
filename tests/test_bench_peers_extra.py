"""benchmarks/peers_extra.py: taskflow's entries for ../shared/bench/peers.py run and refuse."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import peers_extra

from taskflow import TaskflowError


def test_both_entries_run_whole_lifecycles():
    peers_extra.run_engine(3)
    peers_extra.run_service(3)


def test_the_service_entry_refuses_what_peers_asks_it_to():
    assert peers_extra.service_refusals() == ["accept in requested", "non-PDF upload"]


def test_the_engine_entry_refuses_a_wrong_state_action_and_a_non_pdf_upload():
    task = peers_extra.open_one("1")
    with pytest.raises(TaskflowError):
        peers_extra.engine_act(task, "accept", "bob")
    with pytest.raises(TaskflowError):
        peers_extra.engine_act(task, "upload", "alice", filename="scan.txt")
    task = peers_extra.engine_act(task, "upload", "alice", filename="scan.pdf")
    assert task.state == "uploaded"
