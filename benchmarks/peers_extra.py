"""taskflow's two entries for ../shared/bench/peers.py: the same five steps as its peers.

peers.py is run as it is, from outside this repository, with this directory on PYTHONPATH:

    cd /tmp/peers && PYTHONPATH=/path/to/taskflow/benchmarks .venv/bin/python \
        /path/to/shared/bench/peers.py --n 10000 --rounds 3 --no-memory \
        --extra peers_extra:run_engine --extra peers_extra:run_service

`run_engine` is `open_task` plus upload, reject, upload, accept on a document request;
`run_service` the same through `TaskService` on the in-memory adapters. `selfcheck` proves the
refusals peers.py asks of every implementation (wrong-state action, non-PDF upload).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from taskflow import (
    Actor,
    FixedClock,
    InMemoryRepository,
    NewTask,
    RecordingNotifier,
    SequentialIds,
    TaskflowError,
    TaskService,
)
from taskflow.domain.engine import apply, open_task
from taskflow.domain.task import Task
from taskflow.domain.values import PDF, CompanyId, FileRef, TaskId, UserId
from taskflow.kinds import default_registry
from taskflow.kinds.document import DOCUMENT_REQUEST, DocumentRequest, Reject, UploadDocument

BENCH_NOTES = "taskflow: permissions, payload types, events, a history entry per action"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
BUYER = Actor(UserId("bob"), CompanyId("buyer"))
SUPPLIER = Actor(UserId("alice"), CompanyId("supplier"))
FIRST = FileRef("scan.pdf", PDF, 1000, "d1", "k1")
SECOND = FileRef("scan-v2.pdf", PDF, 1000, "d2", "k2")
WORKFLOW = DOCUMENT_REQUEST.workflow
ACTORS = {"alice": SUPPLIER, "bob": BUYER}


def draft() -> NewTask:
    """Return the draft a buyer fills in to ask the supplier for a W-9."""
    return NewTask("W-9 form", SUPPLIER.company, DocumentRequest("W-9"), assignees=(SUPPLIER.ref,))


def open_one(task_id: str) -> Task:
    """Open one document request through the engine."""
    return open_task(
        WORKFLOW,
        DOCUMENT_REQUEST.name,
        draft(),
        BUYER,
        T0,
        TaskId(task_id),
        f"BUYER-TASK-{task_id}",
        data_type=DOCUMENT_REQUEST.data_type,
    ).task


def run_engine(n: int) -> None:
    """Run `n` lifecycles through the engine: open, upload, reject, upload, accept."""
    task = None
    for i in range(n):
        task = open_one(str(i + 1))
        task = apply(WORKFLOW, task, "upload", SUPPLIER, T0, UploadDocument(FIRST)).task
        task = apply(WORKFLOW, task, "reject", BUYER, T0, Reject("blurry")).task
        task = apply(WORKFLOW, task, "upload", SUPPLIER, T0, UploadDocument(SECOND)).task
        task = apply(WORKFLOW, task, "accept", BUYER, T0, None).task
    assert task is None or task.state == "accepted"


def memory_service() -> TaskService:
    """Return a service on fresh in-memory adapters."""
    return TaskService(
        registry=default_registry(),
        repository=InMemoryRepository(),
        notifier=RecordingNotifier(),
        clock=FixedClock(T0),
        ids=SequentialIds("p"),
    )


def run_service(n: int) -> None:
    """Run `n` lifecycles through `TaskService` with the in-memory repository."""
    service = memory_service()
    notifier = service.notifier
    state = "accepted"
    for _ in range(n):
        task_id = service.open(BUYER, "document_request", draft()).task.id
        service.act(SUPPLIER, task_id, "upload", UploadDocument(FIRST))
        service.act(BUYER, task_id, "reject", Reject("blurry"))
        service.act(SUPPLIER, task_id, "upload", UploadDocument(SECOND))
        state = service.act(BUYER, task_id, "accept").task.state
        if isinstance(notifier, RecordingNotifier):
            notifier.clear()  # where a host's notifier would send them on
    assert state == "accepted"


def engine_act(task: Task, action: str, who: str, **payload: Any) -> Task:
    """Take peers.py's uniform call (`filename=`, `reason=`) on a taskflow task."""
    body: Any = None
    if action == "upload":
        name = payload["filename"]
        body = UploadDocument(
            FileRef(name, PDF if name.endswith(".pdf") else "text/plain", 10, "d", "k")
        )
    elif action == "reject":
        body = Reject(payload["reason"])
    return apply(WORKFLOW, task, action, ACTORS[who], T0, body).task


def service_refusals() -> list[str]:
    """Return the steps the service refused: accept before an upload, a non-PDF upload."""
    service = memory_service()
    task_id = service.open(BUYER, "document_request", draft()).task.id
    text = FileRef("a.txt", "text/plain", 1, "d", "k")
    refused = []
    for name, step in (
        ("accept in requested", lambda: service.act(BUYER, task_id, "accept")),
        ("non-PDF upload", lambda: service.act(SUPPLIER, task_id, "upload", UploadDocument(text))),
    ):
        try:
            step()
        except TaskflowError:
            refused.append(name)
    return refused


def selfcheck() -> None:
    """Prove, at peers.py's start-up, the refusals it asks of every implementation."""
    import peers  # type: ignore[import-not-found]

    counter = iter(range(1, 10**9))
    peers.verify(
        "taskflow engine",
        peers.Driver(
            new=lambda: open_one(f"c{next(counter)}"), act=engine_act, state=lambda t: t.state
        ),
    )
    assert service_refusals() == ["accept in requested", "non-PDF upload"]
