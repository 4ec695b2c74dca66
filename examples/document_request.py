"""The supplier-portal document request (SP1) told end to end, as seed 001 describes it.

A buyer at ACME asks its supplier SupCo for an ISO 9001 certificate. The supplier's first
file is refused (not a PDF), the next one is rejected by the buyer, the third is accepted.
A second request is declined ("I don't have this document"), requested again, then answered.

Run: .venv/bin/python examples/document_request.py
On a SQLite file instead of in memory: .venv/bin/python examples/document_request.py --sqlite story.db
On PostgreSQL: .venv/bin/python examples/document_request.py --postgres DSN
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from datetime import UTC, date, datetime, timedelta

import taskflow as tf
from taskflow import (
    PDF,
    Actor,
    FileRef,
    NewTask,
    TaskflowError,
    TaskId,
    Visibility,
)
from taskflow.adapters.sqlite import SqliteRepository
from taskflow.kinds.document import Decline, DocumentRequest, Reject, UploadDocument

BUYER = Actor("beatrice", "acme", {"buyer"})
SUPPLIER = Actor("samuel", "supco")
COLLEAGUE = Actor("susan", "supco")
PEOPLE = (BUYER, SUPPLIER, COLLEAGUE)


def build_service(
    notifier: tf.RecordingNotifier,
    clock: tf.FixedClock,
    sqlite: str | None = None,
    postgres: str | None = None,
) -> tf.TaskService:
    """Compose the service from the embedded adapters (the one composition point)."""
    registry = tf.default_registry()
    # The one line that chooses the storage: in memory, or durable in a SQLite file.
    repository = tf.InMemoryRepository() if sqlite is None else SqliteRepository(sqlite, registry)
    if postgres is not None:  # a schema of its own, so the story starts afresh
        from taskflow.adapters.postgres import PostgresRepository

        schema = f"document_request_{uuid.uuid4().hex[:8]}"
        repository = PostgresRepository(postgres, registry, schema=schema)
    return tf.TaskService(
        registry=registry,
        repository=repository,
        notifier=notifier,
        clock=clock,
        ids=tf.SequentialIds("doc"),
    )


def upload(name: str, media_type: str, n: int, expires: date | None) -> UploadDocument:
    # The host stores the bytes and hands taskflow a reference with a digest and a storage key.
    file = FileRef(name, media_type, 48_000 + n, f"sha256:{n:064x}", f"s3://supco/{n}")
    return UploadDocument(file, expires)


class Story:
    """Prints every step, the task's state and whose inbox the task is in now."""

    def __init__(
        self, service: tf.TaskService, notifier: tf.RecordingNotifier, clock: tf.FixedClock
    ) -> None:
        self.service = service
        self.notifier = notifier
        self.clock = clock
        self.step = 0

    def show(self, task_id: TaskId, what: str) -> None:
        self.step += 1
        task = self.service.get(BUYER, task_id)
        holders = [str(p) for p in PEOPLE if any(t.id == task_id for t in self.service.inbox(p))]
        if holders:
            inbox = ", ".join(holders)
        elif task.is_open:
            inbox = f"nobody yet: it waits in the Teambox of {task.ball_company}"
        else:
            inbox = "nobody (closed)"
        print(f"{self.step:>2}. {what}")
        print(f"    {task.number} is '{task.state}' (v{task.version}); in the inbox of: {inbox}")
        for note in self.notifier.sent:
            print(f"    -> notify {note.recipient}: {note.message}")
        self.notifier.clear()

    def act(self, actor: Actor, task_id: TaskId, action: str, payload: object, what: str) -> None:
        self.clock.advance(timedelta(hours=3))
        self.service.act(actor, task_id, action, payload)
        self.show(task_id, what)

    def refused(self, actor: Actor, task_id: TaskId, action: str, payload: object) -> None:
        try:
            self.service.act(actor, task_id, action, payload)
        except TaskflowError as error:
            self.step += 1
            print(f"{self.step:>2}. refused ({type(error).__name__}): {error}")
        else:  # pragma: no cover - the story depends on this refusal
            raise SystemExit("the wrong file was accepted")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--sqlite", metavar="PATH", help="store the tasks in this new SQLite file")
    parser.add_argument("--postgres", metavar="DSN", help="store the tasks in PostgreSQL")
    # Known arguments only: a test runner's own arguments may be in sys.argv.
    options, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    if options.sqlite is not None and os.path.exists(options.sqlite):
        raise SystemExit(f"{options.sqlite} exists; name a new file so the story starts afresh")
    notifier = tf.RecordingNotifier()
    clock = tf.FixedClock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    service = build_service(notifier, clock, options.sqlite, options.postgres)
    story = Story(service, notifier, clock)
    expiry = date(2029, 6, 30)

    print("== Request 1: an ISO 9001 certificate, which needs an expiry date ==")
    draft = NewTask(
        subject="ISO 9001 certificate",
        recipient="supco",
        data=DocumentRequest("ISO 9001 certificate", requires_expiry=True),
        assignees=[SUPPLIER.ref],
        due_at=datetime(2026, 12, 7, 17, 0, tzinfo=UTC),
    )
    task_id = service.open(BUYER, "document_request", draft).task.id
    story.show(task_id, f"{BUYER} requests the certificate from SupCo")
    print(f"    {SUPPLIER} may now: {', '.join(service.allowed_actions(SUPPLIER, task_id))}")
    story.refused(SUPPLIER, task_id, "upload", upload("iso.jpg", "image/jpeg", 1, expiry))
    story.refused(SUPPLIER, task_id, "upload", upload("iso.pdf", PDF, 2, None))
    service.comment(SUPPLIER, task_id, "Susan, where is the new scan?", Visibility.INTERNAL)
    story.show(task_id, f"{SUPPLIER} asks a colleague in an internal comment")
    story.act(SUPPLIER, task_id, "upload", upload("iso-2019.pdf", PDF, 3, expiry), "upload a PDF")
    story.act(BUYER, task_id, "reject", Reject("This is the 2019 certificate"), "buyer rejects")
    story.act(SUPPLIER, task_id, "upload", upload("iso-2026.pdf", PDF, 4, expiry), "upload again")
    story.act(BUYER, task_id, "accept", None, "buyer accepts: the cycle ends")

    print("\n== Request 2: a REACH declaration the supplier does not have ==")
    draft = NewTask("REACH declaration", "supco", DocumentRequest("REACH declaration"))
    second = service.open(BUYER, "document_request", draft).task.id
    story.show(second, "request sent with nobody assigned at SupCo: it waits in the Teambox")
    service.claim(COLLEAGUE, second)
    story.show(second, f"{COLLEAGUE} takes it from the Teambox")
    story.act(COLLEAGUE, second, "decline", Decline("We have not filed one yet"), "decline")
    story.act(BUYER, second, "request_again", None, "buyer requests it again")
    story.act(COLLEAGUE, second, "upload", upload("reach.pdf", PDF, 5, None), "upload")
    story.act(BUYER, second, "accept", None, "buyer accepts")

    print("\n== What the buyer sees ==")
    task = service.get(BUYER, task_id)
    print(f"{task.number} history (the supplier's internal comment is not shown):")
    for entry in task.history:
        print(f"  {entry.at:%d %b %H:%M} {entry.actor}: {entry.action} -> {entry.to_state}")
    then = service.task_at(BUYER, task_id, task.history[2].at)
    assert then is not None
    print(f"As it stood after the rejection: '{then.state}', reason: {then.data.reject_reason!r}")
    print(f"Dashboard of acme: {service.dashboard(BUYER).counts}")
    if isinstance(service.repository, SqliteRepository):
        service.repository.close()
        print(f"The tasks are stored in {options.sqlite}.")


if __name__ == "__main__":
    main()
