"""Rules several kinds share, for built-in and host-defined kinds alike."""

from __future__ import annotations

from collections.abc import Iterable

from taskflow.domain.task import Task
from taskflow.domain.values import PDF, FileRef
from taskflow.errors import InvalidPayload

__all__ = ["require_pdf"]


def require_pdf(task: Task, action: str, files: Iterable[FileRef], field: str = "file") -> None:
    """Raise `InvalidPayload` naming every file of `files` that is not a PDF."""
    files = tuple(files)
    wrong = [(i, f) for i, f in enumerate(files) if f.media_type != PDF]
    if not wrong:
        return
    if len(files) == 1:
        (_, file), path = wrong[0], f"{field}.media_type"
        named = f"'{file.name}' is {file.media_type}"
    else:
        path = f"{field}[{wrong[0][0]}].media_type"
        named = ", ".join(f"'{f.name}' (#{i + 1}) is {f.media_type}" for i, f in wrong)
    msg = f"'{action}' on task {task.number} accepts only PDF ({PDF}); {named}"
    raise InvalidPayload(msg, field=path, action=action)
