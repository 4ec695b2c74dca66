"""The service's fast paths build what the checked paths build, and still refuse what they refuse."""

from __future__ import annotations

import json

import attrs
import pytest

from taskflow.application.unit_of_work import notification_message
from taskflow.domain.notifications import Notification
from taskflow.domain.outbox import NOTIFICATION_TOPIC, OutboxMessage
from taskflow.domain.values import CompanyId, TaskId, UserId, UserRef
from taskflow.errors import InvalidPayload

SAM = UserRef(CompanyId("supco"), UserId("sam"))


def test_a_notification_message_is_the_message_the_checked_constructor_makes() -> None:
    note = Notification(SAM, TaskId("t-1"), "ACME-TASK-1", "document_uploaded", "ACME-TASK-1 'x'")
    message = notification_message(note, 3)
    checked = OutboxMessage(
        NOTIFICATION_TOPIC,
        message.key,
        dict(message.payload),
        task_id=TaskId("t-1"),
        task_version=3,
    )
    assert message == checked
    assert message.key == "t-1@3/document_uploaded/sam@supco"
    assert message.body == checked.body
    assert json.loads(message.body)["recipient"] == {"company": "supco", "user": "sam"}


def test_a_notification_whose_message_is_not_json_ready_is_still_refused() -> None:
    # A host's policy may build a Notification with anything in it (it has no validators).
    note = attrs.evolve(Notification(SAM, TaskId("t-1"), "N-1", "e", "m"), message=object())
    with pytest.raises(InvalidPayload) as raised:
        notification_message(note, 1)
    assert raised.value.field == "payload"


def test_a_delivered_notification_is_never_encoded_in_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import taskflow as tf
    from taskflow.domain import outbox
    from taskflow.kinds.document import DocumentRequest

    encoded: list[object] = []
    real = outbox._encode
    monkeypatch.setattr(outbox, "_encode", lambda p: encoded.append(p) or real(p))
    notifier = tf.RecordingNotifier()
    service = tf.TaskService(
        registry=tf.default_registry(),
        repository=tf.InMemoryRepository(),
        notifier=notifier,
        clock=tf.FixedClock(),
        ids=tf.SequentialIds(),
    )
    draft = tf.NewTask(
        "ISO 9001", CompanyId("supco"), DocumentRequest("ISO 9001"), assignees=(SAM,)
    )
    service.open(tf.Actor(UserId("bea"), CompanyId("acme")), "document_request", draft)
    assert [n.recipient for n in notifier.sent] == [SAM]
    assert encoded == []
    assert service.repository.pending() == []
