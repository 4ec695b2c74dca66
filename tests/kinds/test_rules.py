from datetime import UTC, datetime

import pytest

from taskflow import (
    PDF,
    Actor,
    FileRef,
    InvalidPayload,
    NewTask,
    TaskId,
    open_task,
)
from taskflow.kinds.document import DOCUMENT_WORKFLOW, DocumentRequest
from taskflow.kinds.rules import require_pdf

TASK = open_task(
    DOCUMENT_WORKFLOW,
    "document_request",
    NewTask("s", "supco", DocumentRequest("ISO")),
    Actor("bea", "acme"),
    datetime(2026, 1, 1, tzinfo=UTC),
    TaskId("t"),
    "ACME-TASK-1",
).task


def _file(name, media_type=PDF):
    return FileRef(name, media_type, 1, "sha256:1", f"k/{name}")


def test_require_pdf_accepts_only_pdfs():
    require_pdf(TASK, "upload", _file("a.pdf"))
    require_pdf(TASK, "add_files", [_file("a.pdf"), _file("b.pdf")])
    require_pdf(TASK, "add_files", [])


def test_require_pdf_names_the_single_wrong_file():
    with pytest.raises(
        InvalidPayload, match=r"'upload' on task ACME-TASK-1 accepts only PDF"
    ) as caught:
        require_pdf(TASK, "upload", _file("a.png", "image/png"))
    assert "'a.png' is image/png" in str(caught.value)
    assert caught.value.field == "file.media_type"


def test_require_pdf_names_every_wrong_file_of_several():
    files = [_file("a.pdf"), _file("b.png", "image/png"), _file("c.txt", "text/plain")]
    with pytest.raises(InvalidPayload) as caught:
        require_pdf(TASK, "add_files", files, field="files")
    assert "'b.png' is image/png, 'c.txt' is text/plain" in str(caught.value)
    assert caught.value.field == "files[1].media_type"
    assert caught.value.action == "add_files"
