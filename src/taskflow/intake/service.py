"""Intake: messages from the five channels open tickets or tasks, or join the one they answer.

    intake = Intake(service, kind="support_ticket", recipient="acme", contacts=contacts,
                    storage=files)
    intake.receive_email(raw_bytes)          # opens a ticket, threads a reply, ignores a bounce

Every message is taken in as one unit of work whose correlation id is
`intake:<channel>:<message id>`, so the history says which message caused each change, and
which stores the message's thread mark (`thread_mark`: this message went into that task)
with the change. A reply threads by any message taken into a task, the opening one or any
reply; a message seen before creates nothing, on every repository, even when two deliveries
race. The kind (a parameter) must declare `INTAKE_INDEXED`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import attrs

from taskflow.application.service import TaskService
from taskflow.domain.common import COMMENT, AddComment
from taskflow.domain.intake import (
    INTAKE_MESSAGE_FIELD,
    TASK_NUMBER_FIELD,
    intake_correlation,
    opening_mark,
    thread_mark,
    thread_prefix,
    threaded_task,
)
from taskflow.domain.query import TaskQuery
from taskflow.domain.task import NewTask, Task
from taskflow.domain.values import Actor, CompanyId, Link, TaskId, UserId, Visibility
from taskflow.errors import (
    InvalidPayload,
    InvalidRows,
    InvalidWorkflow,
    MarkTaken,
    TaskflowError,
    TaskNotFound,
)
from taskflow.intake.chat import CUSTOMER, Transcript
from taskflow.intake.csvimport import ColumnMapping, read_rows
from taskflow.intake.files import FileStorage
from taskflow.intake.forms import FormSchema
from taskflow.intake.mail import parse_email
from taskflow.intake.model import (
    Channel,
    Contacts,
    Disposition,
    FollowUp,
    IntakeResult,
    Message,
    Sender,
)

__all__ = ["FOLLOW_UP_OF", "DataFactory", "ImportReport", "Intake", "ticket_data"]

FOLLOW_UP_OF = "follow_up_of"
"""The relation of the link from a follow-up to the closed task it follows."""

# Fields of a kind's data that belong to one ticket's reopen rounds, reset on a follow-up's copy.
_ROUND_FIELDS = ("reopen_reason", "reopen_count")

DataFactory = Callable[[Message], Any]
"""Return the kind data for a task a message opens (a ticket's form, a task's schedule)."""

_NUMBER = re.compile(r"\[([A-Z0-9][A-Z0-9_.-]*-TASK-\d+)\]")


def ticket_data(data_type: type) -> DataFactory:
    """Return a factory making ticket data (`SupportTicket`, `ComplaintTicket`) from a message.

    The form's name and email come from the sender, the description from the body (or the
    subject when the body is empty); other form fields from the message's `fields`.
    """
    known = getattr(data_type, "FORM_FIELDS", None)
    if known is None:
        msg = f"{data_type.__name__} has no FORM_FIELDS: pass data=... to say how a message becomes its data"
        raise InvalidWorkflow(msg)

    def make(message: Message) -> Any:
        form = {k: v for k, v in message.fields.items() if k in known}
        form.setdefault("name", message.sender.name or message.sender.address)
        form.setdefault("email", message.sender.address)
        form.setdefault("description", message.body.strip() or message.subject or "(no text)")
        return data_type.from_form(form)  # type: ignore[attr-defined]

    return make


@attrs.frozen
class ImportReport:
    """What an import did: each row's line and result, and the refused rows' errors."""

    results: tuple[tuple[int, IntakeResult], ...]
    errors: tuple[TaskflowError, ...] = ()

    @property
    def created(self) -> int:
        """Return how many rows opened or changed a task."""
        return sum(1 for _, r in self.results if r.created)

    def raise_errors(self) -> None:
        """Raise `InvalidRows` (one member per refused row, a note naming its line) if any row was refused."""
        if self.errors:
            lines = [getattr(e, "line", 0) for e in self.errors]
            msg = f"{len(self.errors)} row(s) were refused, at lines {', '.join(map(str, lines))}"
            raise InvalidRows(msg, list(self.errors), lines=lines)


class Intake:
    """Takes in messages of every channel for one kind (a ticket kind or a task kind the host picks)."""

    def __init__(
        self,
        service: TaskService,
        *,
        kind: str,
        recipient: CompanyId,
        contacts: Contacts,
        data: DataFactory | None = None,
        storage: FileStorage | None = None,
        max_attachment_bytes: int | None = 25_000_000,
        attach_action: str | None = None,
        follow_up: FollowUp = FollowUp.REOPEN,
        reopen_action: str = "reopen",
    ) -> None:
        self.service = service
        task_kind = service.registry[kind]
        missing = [
            f for f in (INTAKE_MESSAGE_FIELD, TASK_NUMBER_FIELD) if f not in task_kind.indexed
        ]
        if missing:
            msg = (
                f"task kind '{kind}' cannot take intake: it must declare the indexed fields "
                f"{INTAKE_MESSAGE_FIELD!r} and {TASK_NUMBER_FIELD!r} "
                "(TaskKind(..., indexed={**INTAKE_INDEXED, ...}) from taskflow.domain.intake)"
            )
            raise InvalidWorkflow(msg)
        if attach_action is not None and task_kind.workflow.transition(attach_action) is None:
            msg = f"task kind '{kind}' has no action {attach_action!r} to attach files with"
            raise InvalidWorkflow(msg)
        self.kind = kind
        self.recipient = CompanyId(recipient)
        self.contacts = contacts
        self.data = data if data is not None else ticket_data(task_kind.data_type)
        self.storage = storage
        self.max_attachment_bytes = max_attachment_bytes
        self.attach_action = attach_action
        try:
            self.follow_up = FollowUp(follow_up)
        except ValueError:
            allowed = ", ".join(repr(f.value) for f in FollowUp)
            msg = f"Intake.follow_up must be one of {allowed}, got {follow_up!r}"
            raise InvalidPayload(msg, field="follow_up") from None
        if not isinstance(reopen_action, str) or not reopen_action.strip():
            msg = f"Intake.reopen_action must name an action, got {reopen_action!r}"
            raise InvalidPayload(msg, field="reopen_action")
        self.reopen_action = reopen_action

    # --- channels -------------------------------------------------------------------------------

    def receive_email(self, raw: bytes) -> IntakeResult:
        """Take in one email given as raw RFC 5322 bytes; auto-replies and bounces open nothing."""
        if not isinstance(raw, bytes | bytearray):
            msg = f"receive_email needs the raw bytes of the email, got {type(raw).__name__}"
            raise InvalidPayload(msg, field="raw")
        parsed = parse_email(
            bytes(raw), storage=self.storage, max_attachment_bytes=self.max_attachment_bytes
        )
        if parsed.automatic is not None:
            return IntakeResult(
                Disposition.IGNORED, parsed.message.message_id, reason=parsed.automatic
            )
        return self.receive(parsed.message)

    def submit_form(
        self, schema: FormSchema, values: dict[str, Any], *, submission_id: str
    ) -> IntakeResult:
        """Take in a filled-in web form (checked by `schema`: `InvalidForm` names each bad field)."""
        checked = schema.validate(values)
        fields = {k: v for k, v in checked.items() if v is not None}
        message = Message(
            Channel.WEB_FORM,
            submission_id,
            Sender(
                str(checked.get(schema.email) or ""), str(checked.get(schema.sender_name) or "")
            ),
            subject=str(checked.get(schema.subject) or ""),
            body=str(checked.get(schema.body) or ""),
            fields=fields,
        )
        return self.receive(message)

    def import_csv(self, text: str, mapping: ColumnMapping) -> ImportReport:
        """Take in every good row of a CSV text; a refused row is reported with its line number.

        Rows already imported (by id, or by the same values) create nothing again.
        """
        results: list[tuple[int, IntakeResult]] = []
        errors: list[TaskflowError] = []
        for line, row in read_rows(text, mapping):
            try:
                if isinstance(row, TaskflowError):
                    raise row
                results.append((line, self.receive(row)))
            except TaskflowError as error:
                error.add_note(f"line {line}")
                error.line = line  # type: ignore[attr-defined]
                errors.append(error)
        return ImportReport(tuple(results), tuple(errors))

    def receive_chat(self, transcript: Transcript) -> IntakeResult:
        """Open one ticket from a chat: the first customer line is its body, the others comments."""
        lines = transcript.lines
        first = next(i for i, line in enumerate(lines) if line.author == CUSTOMER)
        message = Message(
            Channel.CHAT,
            transcript.conversation_id,
            transcript.customer,
            subject=transcript.subject or _headline(lines[first].text),
            body=lines[first].text,
        )
        seen = self._seen(message)
        if seen is not None:
            return seen
        customer = self.contacts.actor_for(message.sender)
        if customer is None:
            return self._unknown(message)
        try:
            with self.service.unit_of_work(correlation_id=intake_correlation(message.key)) as uow:
                task = uow.open(customer, self.kind, self._draft(message)).task
                self._took_in(uow, task.id, message, opened=True)
                for i, line in enumerate(lines):
                    if i == first:
                        continue
                    author = (
                        customer
                        if line.author == CUSTOMER
                        else Actor(UserId(line.author), self.recipient)
                    )
                    uow.act(author, task.id, COMMENT, AddComment(line.text, Visibility.PUBLIC))
        except MarkTaken as taken:
            return self._raced(message, taken)
        return IntakeResult(Disposition.OPENED, message.message_id, task.id, task.number)

    # --- the one intake path --------------------------------------------------------------------

    def receive(self, message: Message) -> IntakeResult:
        """Open a task from `message`, or append it to the task it answers; a seen message creates nothing."""
        if not isinstance(message, Message):
            msg = f"receive needs a Message, got {type(message).__name__}"
            raise InvalidPayload(msg, field="message")
        seen = self._seen(message)
        if seen is not None:
            return seen
        actor = self.contacts.actor_for(message.sender)
        if actor is None:
            return self._unknown(message)
        correlation = intake_correlation(message.key)
        thread = self._thread(message, actor)
        if thread is not None:
            if any(
                e.cause is not None and e.cause.correlation_id == correlation
                for e in thread.history
            ):
                return IntakeResult(
                    Disposition.DUPLICATE, message.message_id, thread.id, thread.number,
                    "this message was taken in before",
                )  # fmt: skip
            try:
                return self._answer(actor, thread, self._text(message), message, correlation)
            except MarkTaken as taken:
                return self._raced(message, taken)
        try:
            with self.service.unit_of_work(correlation_id=correlation) as uow:
                task = uow.open(actor, self.kind, self._draft(message)).task
                self._took_in(uow, task.id, message, opened=True)
                self._attach(uow, actor, task.id, message)
        except MarkTaken as taken:
            return self._raced(message, taken)
        return IntakeResult(Disposition.OPENED, message.message_id, task.id, task.number)

    def reply(
        self,
        actor: Actor,
        task_id: TaskId,
        text: str,
        visibility: Visibility = Visibility.PUBLIC,
    ) -> IntakeResult:
        """Comment from the portal: a customer's public reply to a resolved task reopens it (`follow_up`).

        On an open task, an internal note, or a reply by the business side it is a comment.
        """
        task = self.service.get(actor, task_id)
        if visibility is not Visibility.PUBLIC:
            self.service.comment(actor, task_id, text, visibility)
            return IntakeResult(Disposition.APPENDED, f"portal:{task.id}", task.id, task.number)
        return self._answer(actor, task, text, None, None)

    # --- internals ------------------------------------------------------------------------------

    def _answer(
        self,
        actor: Actor,
        thread: Task,
        text: str,
        message: Message | None,
        correlation: str | None,
    ) -> IntakeResult:
        """Add a reply to `thread`; a customer's reply to a closed one reopens it or follows it up."""
        said = message.message_id if message is not None else f"portal:{thread.id}@{thread.version}"
        customer = actor.company == thread.requester.company
        comment = AddComment(text, Visibility.PUBLIC)
        if thread.is_open or not customer or self.follow_up is FollowUp.APPEND:
            with self.service.unit_of_work(correlation_id=correlation) as uow:
                uow.act(actor, thread.id, COMMENT, comment)
                self._took_in(uow, thread.id, message)
                self._attach(uow, actor, thread.id, message)
            return IntakeResult(Disposition.APPENDED, said, thread.id, thread.number)
        if self.follow_up is FollowUp.REOPEN:
            payload = self._reopen_payload(actor, thread, text)
            if payload is not _CANNOT:
                with self.service.unit_of_work(correlation_id=correlation) as uow:
                    uow.act(actor, thread.id, self.reopen_action, payload)
                    uow.act(actor, thread.id, COMMENT, comment)
                    self._took_in(uow, thread.id, message)
                    self._attach(uow, actor, thread.id, message)
                return IntakeResult(
                    Disposition.REOPENED, said, thread.id, thread.number,
                    f"the customer's reply reopened {thread.number}",
                )  # fmt: skip
        draft = self._follow_up(thread, text, message)
        with self.service.unit_of_work(correlation_id=correlation) as uow:
            task = uow.open(actor, draft[0], draft[1]).task
            self._took_in(uow, task.id, message, opened=True)
            self._attach(uow, actor, task.id, message)
        return IntakeResult(
            Disposition.OPENED, said, task.id, task.number, f"follow-up of {thread.number}"
        )

    def _reopen_payload(self, actor: Actor, thread: Task, text: str) -> Any:
        """Return the payload of the reopen action for `actor` now, or `_CANNOT`."""
        if self.reopen_action not in self.service.allowed_actions(actor, thread.id):
            return _CANNOT
        workflow = self.service.registry[thread.kind].workflow
        transition = workflow.transition(self.reopen_action)
        kind = None if transition is None else transition.payload
        if kind is None:
            return None
        names = {a.name for a in attrs.fields(kind)} if attrs.has(kind) else set()
        if "reason" not in names:
            return _CANNOT  # a payload intake cannot fill in: follow up instead
        reason = f"the customer replied: {_headline(text) or '(no text)'}"
        try:
            return kind(reason=reason)
        except (TaskflowError, TypeError):
            return _CANNOT

    def _follow_up(self, thread: Task, text: str, message: Message | None) -> tuple[str, NewTask]:
        """Return the kind and draft of a follow-up of the closed `thread`, linked to it."""
        link = Link(FOLLOW_UP_OF, thread.id)
        if message is not None:
            base = self._draft(message)
            return self.kind, attrs.evolve(base, links=(link,))
        data = thread.data
        if attrs.has(type(data)):
            fresh = {
                a.name: a.default
                for a in attrs.fields(type(data))
                if a.name in _ROUND_FIELDS and a.default is not attrs.NOTHING
            }
            data = attrs.evolve(data, **fresh)
        subject = f"Follow-up: {thread.subject}"[:200]
        return thread.kind, NewTask(subject, thread.recipient, data, body=text, links=(link,))

    def _seen(self, message: Message) -> IntakeResult | None:
        taken = self._taken_into(message.key)
        if taken is not None:
            return IntakeResult(
                Disposition.DUPLICATE, message.message_id, taken.id, taken.number,
                "this message was taken in before",
            )  # fmt: skip
        found = self.service.repository.query(
            TaskQuery(where={INTAKE_MESSAGE_FIELD: message.key}, limit=1)
        )
        if not found:
            return None
        task = found[0]
        return IntakeResult(
            Disposition.DUPLICATE, message.message_id, task.id, task.number,
            "this message opened the task before",
        )  # fmt: skip

    def _taken_into(self, key: str) -> Task | None:
        """Return the task the message with `key` was taken into (by its thread mark), if any."""
        marks = self.service.repository.marks(thread_prefix(key), limit=1)
        if not marks:
            return None
        try:
            return self.service.repository.get(threaded_task(marks[0]))
        except TaskNotFound:
            return None

    def _took_in(
        self, uow: Any, task_id: TaskId, message: Message | None, *, opened: bool = False
    ) -> None:
        """Record with `uow` that `message` went into task `task_id` (and `opened` it), so replies to it thread."""
        if message is None:
            return
        uow.mark(thread_mark(message.key, task_id))
        if opened:
            uow.mark(opening_mark(message.key))

    def _raced(self, message: Message, taken: MarkTaken) -> IntakeResult:
        """Answer a delivery that lost the race to another delivery of the same message."""
        ours = taken.mark == opening_mark(message.key)
        if not ours and not taken.mark.startswith(thread_prefix(message.key)):
            raise taken
        seen = self._seen(message)
        if seen is None:  # pragma: no cover - the mark that was taken names the task
            raise taken
        return seen

    def _unknown(self, message: Message) -> IntakeResult:
        who = message.sender.address or "no sender address"
        return IntakeResult(
            Disposition.IGNORED, message.message_id, reason=f"unknown sender ({who})"
        )

    def _thread(self, message: Message, actor: Actor) -> Task | None:
        """Return the task `message` answers (by references, then by a number in the subject)."""
        repository = self.service.repository
        keys = [f"{message.channel.value}:{ref}" for ref in message.references]
        candidates: list[Task] = []
        for key in keys:
            # Any message taken into a task (its thread mark), else the one that opened it
            # (the indexed field: tasks taken in before thread marks were kept).
            taken = self._taken_into(key)
            if taken is not None:
                candidates.append(taken)
                continue
            candidates += repository.query(TaskQuery(where={INTAKE_MESSAGE_FIELD: key}, limit=1))
        for number in _NUMBER.findall(message.subject):
            candidates += repository.query(TaskQuery(where={TASK_NUMBER_FIELD: number}, limit=1))
        # A stranger quoting a number joins nothing: only a party's message threads. An open
        # task comes first: a reply quoting a closed ticket and its follow-up joins the follow-up.
        seen = [task for task in candidates if self.service.may_see(actor, task)]
        return next((t for t in seen if t.is_open), seen[0] if seen else None)

    def _draft(self, message: Message) -> NewTask:
        subject = " ".join(message.subject.split()) or _headline(message.body) or "(no subject)"
        return NewTask(subject[:200], self.recipient, self.data(message), body=self._text(message))

    def _text(self, message: Message) -> str:
        parts = [message.body.strip() or "(no text)"]
        if message.attachments and self.attach_action is None:
            listed = "\n".join(
                f"- {f.name} ({f.media_type}, {f.size} bytes, {f.storage_key})"
                for f in message.attachments
            )
            parts.append(f"Attachments:\n{listed}")
        if message.notes:
            parts.append("\n".join(f"[{note}]" for note in message.notes))
        return "\n\n".join(parts)

    def _attach(self, uow: Any, actor: Actor, task_id: Any, message: Message | None) -> None:
        if self.attach_action is None or message is None or not message.attachments:
            return
        from taskflow.kinds.payloads import AddFiles

        uow.act(actor, task_id, self.attach_action, AddFiles(message.attachments))


_CANNOT = object()  # no reopen payload can be made: follow up instead


def _headline(text: str) -> str:
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first[:80]
