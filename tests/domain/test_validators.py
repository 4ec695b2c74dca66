"""The shared validators: typed errors naming the field, never a raw TypeError or ValueError."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from taskflow.domain.common import AddComment, Assign, Edit
from taskflow.domain.task import NewTask
from taskflow.domain.validators import excerpt
from taskflow.domain.values import Actor, CompanyId, FileRef, UserId, UserRef
from taskflow.errors import InvalidPayload
from taskflow.kinds.document import UploadDocument

FILE = FileRef("a.pdf", "application/pdf", 1, "d", "k")
SAM = UserRef(CompanyId("acme"), UserId("sam"))


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: UploadDocument(FILE, "2030-06-30"), "expires_on"),
        (lambda: UploadDocument("a.pdf"), "file"),
        (lambda: AddComment("hi", "secret"), "visibility"),
        (lambda: Edit(priority="urgent"), "priority"),
        (lambda: Edit(body=123), "body"),
        (lambda: Edit(tags="urgent"), "tags"),
        (lambda: NewTask("s", CompanyId("b"), None, assignees="sam"), "assignees"),
        (lambda: NewTask("s", CompanyId("b"), None, body=None), "body"),
        (lambda: NewTask("s", CompanyId("b"), None, links=["x"]), "links[0]"),
        (lambda: NewTask("s", CompanyId("b"), None, tags="urgent"), "tags"),
        (lambda: NewTask("s", CompanyId("b"), None, priority="urgent"), "priority"),
        (lambda: NewTask("s", CompanyId("b "), None), "recipient"),
        (lambda: Assign(["sue"]), "users[0]"),
        (lambda: Actor(UserId("sam"), CompanyId("acme"), "admin"), "roles"),
        (lambda: Actor(UserId("sam"), CompanyId("acme "), ()), "company"),
        (lambda: Actor(UserId("sa\x00m"), CompanyId("acme"), ()), "user"),
        (lambda: Actor(UserId("s" * 10_000), CompanyId("acme"), ()), "user"),
    ],
)
def test_malformed_value_is_invalid_payload_naming_the_field(build, field):
    with pytest.raises(InvalidPayload) as caught:
        build()
    assert caught.value.field == field
    assert len(str(caught.value)) < 300


def test_enum_error_lists_the_allowed_values():
    with pytest.raises(InvalidPayload, match="'high', 'normal', 'low'"):
        Edit(priority="urgent")
    with pytest.raises(InvalidPayload, match="'public', 'internal'"):
        AddComment("hi", "secret")


def test_a_string_is_never_taken_as_a_collection():
    with pytest.raises(InvalidPayload, match="a str is not a collection"):
        Edit(tags="urgent")


def test_excerpt_is_bounded_and_safe_for_deep_and_huge_values():
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    assert len(excerpt(deep)) <= 60
    assert len(excerpt("x" * 10_000_000)) <= 60
    assert len(excerpt(10**5000)) <= 60


def test_date_where_an_aware_datetime_belongs_is_refused():
    with pytest.raises(InvalidPayload, match="timezone-aware"):
        Edit(due_at=date(2030, 1, 1))
    with pytest.raises(InvalidPayload, match="timezone-aware"):
        Edit(due_at=datetime(2030, 1, 1))
    assert Edit(due_at=datetime(2030, 1, 1, tzinfo=UTC)).due_at is not None
