"""What intake records on a task, and the indexed fields that find it again (pure).

A task opened from an intake message (an email, a chat, a CSV row, a web form) records the
message in its history: the unit of work that opened it carries the correlation id
`intake:<channel>:<message id>`. A kind that takes intake declares `INTAKE_INDEXED` among
its indexed fields, so a repository finds a task by the message that opened it
(`intake_message`) and by its number (`task_number`, for `[ACME-TASK-12]` in a subject).

Every message taken into a task (the one that opened it and every reply appended) is also
recorded as a once-only mark, `thread_mark(key, task_id)`, stored with the unit of work that
took it in: a reply naming any of them (In-Reply-To, References) finds the task by
`TaskRepository.marks(thread_prefix(key))`. A message that opens a task also stores
`opening_mark(key)`, so two deliveries of it at once open one task (two deliveries of a
reply meet on its thread mark, which names the same task).
"""

from __future__ import annotations

from collections.abc import Mapping

from taskflow.domain.query import IndexedField
from taskflow.domain.task import Task
from taskflow.domain.values import TaskId

__all__ = [
    "INTAKE_INDEXED",
    "INTAKE_MESSAGE_FIELD",
    "INTAKE_PREFIX",
    "TASK_NUMBER_FIELD",
    "THREAD_MARK_PREFIX",
    "intake_correlation",
    "opened_by_message",
    "opening_mark",
    "task_number",
    "thread_mark",
    "thread_prefix",
    "threaded_task",
]

INTAKE_PREFIX = "intake:"
"""How the correlation id of a unit of work that took in a message starts."""

INTAKE_MESSAGE_FIELD = "intake_message"
"""The indexed field holding the key of the message a task was opened from."""

TASK_NUMBER_FIELD = "task_number"
"""The indexed field holding a task's number."""


THREAD_MARK_PREFIX = "intake-thread:"
"""How the mark of a message taken into a task starts: `intake-thread:<key>\\n<task id>`."""


def thread_prefix(key: str) -> str:
    """Return how the thread marks of the message with `key` start (a message id has no line break)."""
    return f"{THREAD_MARK_PREFIX}{key}\n"


def thread_mark(key: str, task_id: TaskId) -> str:
    """Return the mark recording that the message with `key` was taken into task `task_id`."""
    return f"{thread_prefix(key)}{task_id}"


def opening_mark(key: str) -> str:
    """Return the once-only mark of the message with `key` opening a task (at most one task)."""
    return f"intake-opened:{key}"


def threaded_task(mark: str) -> TaskId:
    """Return the task id a thread mark names (the part after its line break)."""
    return TaskId(mark.split("\n", 1)[1])


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
