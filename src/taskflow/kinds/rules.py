"""Rules several kinds share, for built-in and host-defined kinds alike."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs

from taskflow.domain.task import Task
from taskflow.domain.values import PDF, Actor, FileRef
from taskflow.errors import InvalidPayload

__all__ = ["record_reopen", "require_pdf"]


def require_pdf(
    task: Task, action: str, files: FileRef | Sequence[FileRef], field: str = "file"
) -> None:
    """Raise `InvalidPayload` naming every file that is not a PDF (one file, or a sequence)."""
    if isinstance(files, FileRef):
        if files.media_type == PDF:
            return
        wrong, path = [files], f"{field}.media_type"
    else:
        wrong = [f for f in files if f.media_type != PDF]
        if not wrong:
            return
        path = f"{field}[{list(files).index(wrong[0])}].media_type"
    named = ", ".join(f"'{f.name}' is {f.media_type}" for f in wrong)
    msg = f"'{action}' on task {task.number} accepts only PDF ({PDF}); {named}"
    raise InvalidPayload(msg, field=path, action=action)


def record_reopen(task: Task, payload: Any, actor: Actor, at: datetime) -> dict[str, Any]:
    """Effect of a reopen: keep `payload.reason` and count the round on the task's data.

    For kinds whose data has `reopen_reason` and `reopen_count` fields.
    """
    data = attrs.evolve(
        task.data, reopen_reason=payload.reason, reopen_count=task.data.reopen_count + 1
    )
    return {"data": data}
