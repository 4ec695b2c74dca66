"""Limits: oversized texts, too many comments or files, deep payloads are refused at the boundary."""

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

import taskflow as tf
from taskflow import PDF, Actor, FileRef, LimitExceeded, Limits, NewTask
from taskflow.adapters.sqlite import SqliteRepository
from taskflow.kinds.audit import AddFiles, Audit
from taskflow.kinds.document import DocumentRequest, Reject

BUYER = Actor("bea", "acme")
SUPPLIER = Actor("sam", "supco")
START = datetime(2026, 5, 4, 8, 30, tzinfo=UTC)


def _service(limits=None, repository=None):
    registry = tf.default_registry()
    extra = {} if limits is None else {"limits": limits}
    return tf.TaskService(
        registry=registry,
        repository=repository if repository is not None else tf.InMemoryRepository(),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
        **extra,
    )


def _open(service, subject="ISO 9001 certificate", body=""):
    draft = NewTask(subject, "supco", DocumentRequest("ISO 9001"), body=body)
    return service.open(BUYER, "document_request", draft).task


def test_a_subject_longer_than_the_limit_is_refused_before_a_number_is_taken():
    service = _service()
    with pytest.raises(LimitExceeded) as raised:
        _open(service, subject="x" * 256)
    error = raised.value
    assert (error.field, error.limit, error.size) == ("subject", 255, 256)
    assert str(error) == (
        "subject is too large: 256 characters, the limit is 255 "
        "(the host's Limits; shorten it or split it up)"
    )
    assert isinstance(error, tf.InvalidPayload)
    assert _open(service).number == "ACME-TASK-1"  # the refused draft took no number


def test_a_body_at_the_limit_is_taken_and_one_over_it_refused():
    service = _service(Limits(body=100))
    assert _open(service, body="b" * 100).body == "b" * 100
    with pytest.raises(LimitExceeded, match="body is too large: 101 characters, the limit is 100"):
        _open(service, body="b" * 101)


def test_a_long_comment_is_refused_and_nothing_is_stored(tmp_path):
    service = _service(
        Limits(comment=10), SqliteRepository(tmp_path / "t.db", tf.default_registry())
    )
    task = _open(service)
    with pytest.raises(LimitExceeded) as raised:
        service.comment(SUPPLIER, task.id, "c" * 11)
    assert (raised.value.field, raised.value.action) == ("payload.text", "comment")
    stored = service.get(BUYER, task.id)
    assert (stored.version, stored.comments) == (1, ())
    assert service.repository.pending() == []  # nothing queued either


def test_the_comments_limit_counts_the_comments_of_a_task():
    service = _service(Limits(comments=2))
    task = _open(service)
    service.comment(SUPPLIER, task.id, "one")
    service.comment(BUYER, task.id, "two")
    with pytest.raises(LimitExceeded, match=r"comments .'comment'. is too large: 3 comments"):
        service.comment(SUPPLIER, task.id, "three")
    assert len(service.get(BUYER, task.id).comments) == 2


def _pdf(n):
    return FileRef(f"r{n}.pdf", PDF, 1000, f"sha256:{n:064x}", f"files/{n}")


def test_the_files_limit_counts_the_files_of_a_task():
    service = _service(Limits(files=2))
    draft = NewTask(
        "Audit", "supco", Audit("Quality audit", date(2026, 6, 1), BUYER.ref, "Plant 2")
    )
    task = service.open(BUYER, "audit", draft).task
    with pytest.raises(LimitExceeded) as raised:
        service.act(SUPPLIER, task.id, "add_files", AddFiles((_pdf(1), _pdf(2), _pdf(3))))
    assert (raised.value.field, raised.value.limit, raised.value.size) == ("files", 2, 3)
    assert service.get(BUYER, task.id).files == ()


def test_other_texts_of_a_payload_are_held_to_the_text_limit():
    service = _service(Limits(text=20))
    task = _open(service)
    with pytest.raises(LimitExceeded, match=r"payload\.reason \('reject'\) is too large: 21"):
        service.act(BUYER, task.id, "reject", Reject("r" * 21))


def test_kind_data_texts_are_held_to_the_text_limit():
    service = _service(Limits(text=5))
    with pytest.raises(LimitExceeded) as raised:
        _open(service)  # DocumentRequest("ISO 9001"): 8 characters
    assert raised.value.field == "data.document_type"


def test_a_deeply_nested_value_is_refused_by_its_depth_not_a_recursion_error():
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(LimitExceeded) as raised:
        Limits().check_payload("comment", deep)
    assert (raised.value.limit, raised.value.size) == (20, 21)
    assert "levels" in str(raised.value)


def test_a_cyclic_value_is_refused_by_its_depth():
    cycle: list = []
    cycle.append(cycle)
    with pytest.raises(LimitExceeded):
        Limits(depth=5).check_payload("x", cycle)


def test_the_default_limits_take_every_built_in_payload_of_a_normal_story():
    service = _service()
    task = _open(service, body="Please send your certificate.")
    service.comment(SUPPLIER, task.id, "Will do")
    assert service.get(BUYER, task.id).version == 2


@pytest.mark.parametrize(
    "field", ["subject", "body", "comment", "text", "files", "comments", "depth"]
)
@pytest.mark.parametrize("value", [0, -1, True, 1.5, "10"])
def test_limits_must_be_whole_numbers_of_at_least_one(field, value):
    with pytest.raises(tf.InvalidPayload) as raised:
        Limits(**{field: value})
    assert raised.value.field == field


def test_the_service_takes_only_a_limits_value():
    with pytest.raises(tf.InvalidPayload, match="limits must be a Limits"):
        _service({"subject": 10})


@given(size=st.integers(0, 300), limit=st.integers(1, 300))
def test_a_text_is_refused_exactly_when_it_is_longer_than_its_limit(size, limit):
    limits = Limits(comment=limit)
    payload = tf.AddComment("x" * size) if size else None
    if size > limit:
        with pytest.raises(LimitExceeded) as raised:
            limits.check_payload("comment", payload)
        assert (raised.value.limit, raised.value.size) == (limit, size)
    else:
        limits.check_payload("comment", payload)


@given(depth=st.integers(1, 40), limit=st.integers(1, 30))
def test_a_nesting_is_refused_exactly_when_it_is_deeper_than_the_limit(depth, limit):
    value: object = "leaf"
    for _ in range(depth):
        value = [value]
    if depth > limit:
        with pytest.raises(LimitExceeded):
            Limits(depth=limit).check_payload("x", value)
    else:
        Limits(depth=limit).check_payload("x", value)
