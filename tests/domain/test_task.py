from datetime import UTC, datetime

import pytest

from taskflow import Actor, Cause, CompanyId, DomainEvent, InvalidPayload, TaskId, UserId

T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)


def test_cause_of_an_outside_request_has_no_event_and_depth_zero():
    cause = Cause("req-1")
    assert (cause.correlation_id, cause.event_id, cause.depth) == ("req-1", None, 0)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"correlation_id": " "}, "correlation_id must be a non-blank string"),
        ({"correlation_id": "r", "depth": -1}, "depth must be a whole number >= 0"),
        ({"correlation_id": "r", "depth": True}, "depth must be a whole number >= 0"),
    ],
)
def test_cause_refuses_a_blank_correlation_or_a_negative_depth(fields, words):
    with pytest.raises(InvalidPayload, match=words):
        Cause(**fields)


def test_event_id_names_task_version_and_event():
    actor = Actor(UserId("bea"), CompanyId("acme"))
    event = DomainEvent(
        "uploaded", TaskId("t1"), "ACME-TASK-1", "doc", "upload", actor, T0, "a", "b", 3
    )
    assert event.id == "t1@3/uploaded"
    assert event.cause is None
