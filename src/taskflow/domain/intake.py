"""What intake records on a task, and the indexed fields that find it again (pure).

A task opened from an intake message (an email, a chat, a CSV row, a web form) records the
message in its history: the unit of work that opened it carries the correlation id
`intake:<channel>:<message id>`. A kind that takes intake declares `INTAKE_INDEXED` among
its indexed fields, so a repository finds a task by the message that opened it
(`intake_message`) and by its number (`task_number`, for `[ACME-TASK-12]` in a subject).
"""

from __future__ import annotations

from collections.abc import Mapping

from taskflow.domain.query import IndexedField
from taskflow.domain.task import Task

__all__ = [
    "INTAKE_INDEXED",
    "INTAKE_MESSAGE_FIELD",
    "INTAKE_PREFIX",
    "TASK_NUMBER_FIELD",
    "intake_correlation",
    "opened_by_message",
    "task_number",
]

INTAKE_PREFIX = "intake:"
"""How the correlation id of a unit of work that took in a message starts."""

INTAKE_MESSAGE_FIELD = "intake_message"
"""The indexed field holding the key of the message a task was opened from."""

TASK_NUMBER_FIELD = "task_number"
"""The indexed field holding a task's number."""


def intake_correlation(key: str) -> str:
    """Return the correlation id of the unit of work that takes in the message with `key`."""
    return f"{INTAKE_PREFIX}{key}"


def opened_by_message(task: Task) -> str | None:
    """Return the key (`<channel>:<message id>`) of the message that opened `task`, if one did."""
    if not task.history:
        return None
    cause = task.history[0].cause
    if cause is None or cause.depth or cause.event_id is not None:
        return None  # opened by a handler: part of another task's story, not the message's
    if not cause.correlation_id.startswith(INTAKE_PREFIX):
        return None
    return cause.correlation_id[len(INTAKE_PREFIX) :]


def task_number(task: Task) -> str:
    """Return the task's number, to find it by the number a reply quotes."""
    return task.number


INTAKE_INDEXED: Mapping[str, IndexedField] = {
    INTAKE_MESSAGE_FIELD: opened_by_message,
    TASK_NUMBER_FIELD: task_number,
}
"""The indexed fields a kind declares to take intake: `TaskKind(..., indexed=INTAKE_INDEXED)`."""
