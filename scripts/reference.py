"""docs/reference.md, made from the code: every public service call and repository port method.

Each call is shown with its signature (from `inspect`), the first line of its docstring and
the errors it raises. The errors come from the declared table `RAISES` below (see
docs/decisions.md, "The API reference is generated"): one entry per call, naming classes of
`taskflow.errors`. tests/test_reference.py fails when the page is stale, when a public call has
no docstring or no entry here, when an entry names no error class, and when a call's own code
(or a helper of its module it calls) raises a class its entry does not name.

`scripts/gen_docs.py` writes the page; this module only makes its text.
"""

from __future__ import annotations

import enum
import importlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import attrs

REFERENCE_MARKER = "<!-- generated: scripts/gen_docs.py (scripts/reference.py); do not edit -->"


@attrs.frozen
class Section:
    """One class of the reference: where it lives, and what the page says about it first."""

    module: str
    name: str
    about: str

    @property
    def cls(self) -> type[Any]:
        """Return the class itself."""
        found: type[Any] = getattr(importlib.import_module(self.module), self.name)
        return found


SECTIONS: tuple[Section, ...] = (
    Section(
        "taskflow.application.service",
        "TaskService",
        "The service a host app calls for every task: open, act, read, deliver.",
    ),
    Section(
        "taskflow.application.unit_of_work",
        "UnitOfWork",
        "Several calls stored in one atomic commit (`TaskService.unit_of_work()`).",
    ),
    Section(
        "taskflow.application.questionnaires",
        "Questionnaires",
        "Questionnaires and their question tasks (supplier portal).",
    ),
    Section(
        "taskflow.application.crm",
        "CrmTasks",
        "CRM tasks: account defaults and the tracker port (seed 003).",
    ),
    Section(
        "taskflow.application.sla",
        "SlaService",
        "The SLA scheduler's calls: due SLA events, firing them, the SLA state of a task.",
    ),
    Section(
        "taskflow.application.bookings",
        "Bookings",
        "Booking tasks, broadcast requests and offers, provider ratings.",
    ),
    Section(
        "taskflow.intake.service",
        "Intake",
        "Tickets from e-mail, web forms, CSV imports and chat transcripts.",
    ),
    Section(
        "taskflow.automation.service",
        "Automation",
        "Rules that act on events and on time triggers.",
    ),
    Section(
        "taskflow.ports",
        "TaskRepository",
        "The storage port every adapter (in-memory, SQLite, PostgreSQL) implements.",
    ),
    Section(
        "taskflow.ports",
        "Outbox",
        "The outbox part of every repository: messages kept until delivered.",
    ),
)

# --- the errors each call raises -------------------------------------------------------------
#
# Groups of errors many calls share. Every call checks its arguments by type first
# (`InvalidPayload`, naming the argument); every call that touches storage may meet
# `StorageError` (a closed repository, a locked or full database).

_ARGS = ("InvalidPayload",)
_STORE = ("StorageError",)
_READ = (*_ARGS, "TaskNotFound", "DeserializationError", *_STORE)
_LIST = (*_ARGS, *_STORE)
_OPEN = (*_ARGS, "LimitExceeded", "UnknownKind", "PermissionDenied", *_STORE)
_ACT = (
    *_ARGS,
    "LimitExceeded",
    "TaskNotFound",
    "ActionNotAllowed",
    "PermissionDenied",
    "ConcurrencyConflict",
    "DeserializationError",
    *_STORE,
)
_SETUP = ("InvalidPayload", "InvalidWorkflow")

RAISES: dict[str, tuple[str, ...]] = {
    # TaskService
    "TaskService.__init__": _SETUP,
    "TaskService.unit_of_work": (),
    "TaskService.open": _OPEN,
    "TaskService.act": _ACT,
    "TaskService.comment": _ACT,
    "TaskService.assign": _ACT,
    "TaskService.claim": _ACT,
    "TaskService.edit": _ACT,
    "TaskService.erase_personal_data": _ACT,
    "TaskService.act_with_retry": _ACT,
    "TaskService.get": _READ,
    "TaskService.allowed_actions": _READ,
    "TaskService.task_at": _READ,
    "TaskService.inbox": _LIST,
    "TaskService.teambox": _LIST,
    "TaskService.dashboard": _LIST,
    "TaskService.find": _LIST,
    "TaskService.may_see": (),
    "TaskService.subscribe": ("InvalidWorkflow",),
    "TaskService.add_subscription": ("InvalidWorkflow",),
    "TaskService.subscriptions": (),
    "TaskService.add_sender": ("InvalidWorkflow",),
    "TaskService.topics": (),
    "TaskService.deliver": _LIST,
    "TaskService.after_commit": _LIST,
    "TaskService.dead_letters": _LIST,
    "TaskService.retry_dead_letters": _LIST,
    "TaskService.drop_dead_letters": _LIST,
    "TaskService.check_open": ("InvalidPayload", "LimitExceeded", "PermissionDenied"),
    "TaskService.task_number": _STORE,
    "TaskService.run_open": ("InvalidPayload", "LimitExceeded", "PermissionDenied"),
    "TaskService.run_action": (
        "InvalidPayload",
        "LimitExceeded",
        "ActionNotAllowed",
        "PermissionDenied",
    ),
    "TaskService.run_erasure": ("InvalidPayload", "PermissionDenied"),
    "TaskService.notifications": (),
    "TaskService.subscriptions_for": (),
    "TaskService.event_message": (),
    # UnitOfWork
    "UnitOfWork.__init__": (),
    "UnitOfWork.cause": (),
    "UnitOfWork.service": (),
    "UnitOfWork.get": _READ,
    "UnitOfWork.open": _OPEN,
    "UnitOfWork.act": _ACT,
    "UnitOfWork.erase": _ACT,
    "UnitOfWork.enqueue": _ARGS,
    "UnitOfWork.mark": _ARGS,
    "UnitOfWork.marked": _LIST,
    "UnitOfWork.events": (),
    "UnitOfWork.commit": (*_ARGS, "ConcurrencyConflict", "MarkTaken", "TaskNotFound", *_STORE),
    "UnitOfWork.carried": (),
    # Questionnaires
    "Questionnaires.__init__": (),
    "Questionnaires.send_questionnaire": (*_OPEN, "InvalidQuestionnaire"),
    "Questionnaires.questions_of": _READ,
    "Questionnaires.answer_question": _ACT,
    "Questionnaires.answer_questions": (*_ACT, "InvalidAnswers"),
    "Questionnaires.delegate_question": _ACT,
    "Questionnaires.accept_answer": _ACT,
    "Questionnaires.send_back_question": _ACT,
    "Questionnaires.sync_questionnaire": _ACT,
    "Questionnaires.received_questionnaires": _LIST,
    "Questionnaires.sent_questionnaires": _LIST,
    # CrmTasks
    "CrmTasks.__init__": _ARGS,
    "CrmTasks.defaults": _ARGS,
    "CrmTasks.open": _OPEN,
    "CrmTasks.pending_requests": _STORE,
    # SlaService
    "SlaService.__init__": _ARGS,
    "SlaService.actor_for": (),
    "SlaService.due_tasks": _LIST,
    "SlaService.due": _LIST,
    "SlaService.apply_due": _LIST,
    "SlaService.state": _READ,
    "SlaService.states": _READ,
    # Bookings
    "Bookings.__init__": (),
    "Bookings.booking_made": _ACT,
    "Bookings.booking_made_message": (),
    "Bookings.resolve_task": (*_ACT, "BookingUnchanged"),
    "Bookings.tasks_page": _LIST,
    "Bookings.booking_tasks": _LIST,
    "Bookings.request_booking": _OPEN,
    "Bookings.find_providers": _READ,
    "Bookings.confirm": _ACT,
    "Bookings.broadcast": (*_ACT, "UnknownKind"),
    "Bookings.accept_offer": (*_ACT, "AlreadyTaken", "OfferExpired"),
    "Bookings.decline_offer": _ACT,
    "Bookings.expire_broadcasts": _LIST,
    "Bookings.offers_of": _READ,
    "Bookings.complete": _ACT,
    "Bookings.rate": _ACT,
    "Bookings.provider_rating": _LIST,
    "Bookings.customer_bookings": _LIST,
    "Bookings.upcoming": _LIST,
    "Bookings.series_bookings": _LIST,
    "Bookings.history": _READ,
    "Bookings.generate_series": _OPEN,
    # Intake
    "Intake.__init__": _SETUP,
    "Intake.receive_email": _OPEN,
    "Intake.submit_form": (*_OPEN, "InvalidForm"),
    "Intake.import_csv": (*_OPEN, "InvalidRows"),
    "Intake.receive_chat": _OPEN,
    "Intake.receive": _OPEN,
    "Intake.reply": _ACT,
    # Automation
    "Automation.__init__": _SETUP,
    "Automation.rules": (),
    "Automation.actor": (),
    "Automation.team": (),
    "Automation.handle": _LIST,
    "Automation.dry_run": _READ,
    "Automation.run_due": _LIST,
    "Automation.stopped_chains": _STORE,
    "Automation.prune_marks": ("InvalidPayload", *_STORE),
    # TaskRepository
    "TaskRepository.get": ("TaskNotFound", "DeserializationError", *_STORE),
    "TaskRepository.commit": (
        "InvalidPayload",
        "ViewNotSaveable",
        "ConcurrencyConflict",
        "MarkTaken",
        "TaskNotFound",
        *_STORE,
    ),
    "TaskRepository.marked": _STORE,
    "TaskRepository.marks": ("InvalidPayload", *_STORE),
    "TaskRepository.drop_marks": _STORE,
    "TaskRepository.add": ("InvalidPayload", "ViewNotSaveable", "ConcurrencyConflict", *_STORE),
    "TaskRepository.save": (
        "InvalidPayload",
        "ViewNotSaveable",
        "ConcurrencyConflict",
        "TaskNotFound",
        *_STORE,
    ),
    "TaskRepository.query": ("InvalidPayload", *_STORE),
    "TaskRepository.count": ("InvalidPayload", *_STORE),
    "TaskRepository.next_number": ("InvalidPayload", *_STORE),
    "TaskRepository.check": _STORE,
    # Outbox
    "Outbox.claim": _STORE,
    "Outbox.complete": _STORE,
    "Outbox.retry": _STORE,
    "Outbox.bury": _STORE,
    "Outbox.pending": _STORE,
    "Outbox.dead_letters": _STORE,
    "Outbox.revive": _STORE,
    "Outbox.drop_dead_letters": _STORE,
}


# --- reading the code ------------------------------------------------------------------------


@attrs.frozen
class Call:
    """One public call of a section: its qualified name, signature text, docstring and errors."""

    qualname: str
    member: str
    signature: str
    doc: str | None
    kind: str  # "constructor", "method", "property", "class method", "static method"

    @property
    def summary(self) -> str | None:
        """Return the docstring's first line (None: no docstring)."""
        if not self.doc or not self.doc.strip():
            return None
        return self.doc.strip().splitlines()[0].strip()


def _annotation(value: Any) -> str:
    if value is inspect.Parameter.empty:
        return ""
    if isinstance(value, str):
        return value
    return inspect.formatannotation(value)


def signature_text(name: str, function: Callable[..., Any], *, drop_self: bool = True) -> str:
    """Return `name(parameters) -> result`, annotations as written in the source."""
    sig = inspect.signature(function, eval_str=False)
    parts: list[str] = []
    seen_keyword_only = False
    params = list(sig.parameters.values())
    if drop_self and params and params[0].name in ("self", "cls"):
        params = params[1:]
    for i, p in enumerate(params):
        if p.kind is p.KEYWORD_ONLY and not seen_keyword_only:
            parts.append("*")
            seen_keyword_only = True
        text = p.name
        if p.kind is p.VAR_POSITIONAL:
            text, seen_keyword_only = "*" + p.name, True
        elif p.kind is p.VAR_KEYWORD:
            text = "**" + p.name
        note = _annotation(p.annotation)
        if note:
            text += f": {note}"
        if p.default is not p.empty:
            text += (" = " if note else "=") + _default(p.default)
        parts.append(text)
        if p.kind is p.POSITIONAL_ONLY and (
            i + 1 == len(params) or params[i + 1].kind is not p.POSITIONAL_ONLY
        ):
            parts.append("/")
    result = _annotation(sig.return_annotation)
    return f"{name}({', '.join(parts)})" + (f" -> {result}" if result else "")


def _default(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if inspect.isfunction(value) or inspect.isbuiltin(value):
        return value.__name__
    text = repr(value)
    return text if len(text) <= 60 and " at 0x" not in text else f"<{type(value).__name__}>"


def calls_of(section: Section) -> Iterator[Call]:
    """Yield the public calls a class defines itself, in source order (constructor first)."""
    cls = section.cls
    own = dict(vars(cls))
    init = own.get("__init__")
    is_port = getattr(cls, "_is_protocol", False)  # a Protocol's __init__ is typing's own
    if init is not None and inspect.isfunction(init) and not is_port:
        yield Call(
            f"{section.name}.__init__",
            "__init__",
            signature_text(section.name, init),
            inspect.getdoc(cls),
            "constructor",
        )
    for member, value in own.items():
        if member.startswith("_"):
            continue
        qualname = f"{section.name}.{member}"
        if isinstance(value, property) and value.fget is not None:
            sig = inspect.signature(value.fget, eval_str=False)
            result = _annotation(sig.return_annotation)
            text = member + (f": {result}" if result else "")
            yield Call(qualname, member, text, value.fget.__doc__, "property")
        elif isinstance(value, staticmethod):
            function = value.__func__
            text = signature_text(member, function, drop_self=False)
            yield Call(qualname, member, text, function.__doc__, "static method")
        elif isinstance(value, classmethod):
            function = value.__func__
            yield Call(
                qualname, member, signature_text(member, function), function.__doc__, "class method"
            )
        elif inspect.isfunction(value):
            yield Call(qualname, member, signature_text(member, value), value.__doc__, "method")


def all_calls() -> list[Call]:
    """Return every call of every section, in page order."""
    return [call for section in SECTIONS for call in calls_of(section)]


# --- the page ------------------------------------------------------------------------------


def _import_line(section: Section) -> str:
    import taskflow

    if getattr(taskflow, section.name, None) is section.cls:
        return f"`from taskflow import {section.name}` (defined in `{section.module}`)"
    return f"`from {section.module} import {section.name}`"


def _errors_text(names: tuple[str, ...]) -> str:
    if not names:
        return "nothing of its own"
    return ", ".join(f"`{name}`" for name in dict.fromkeys(names))


def reference_page() -> str:
    """Return docs/reference.md as the generator writes it."""
    lines = [
        REFERENCE_MARKER,
        "",
        "# API reference",
        "",
        "Every public call of taskflow's services and of the repository ports: its signature, "
        "what it does (the first line of its docstring) and the errors it raises. The errors "
        "are all classes of `taskflow.errors`, rooted in `TaskflowError`; "
        "[errors.md](errors.md) describes each one and the limits. Every call checks its "
        "arguments by type first (`InvalidPayload`, naming the argument), and every call that "
        "touches storage may meet `StorageError`.",
        "",
        "The page is generated from the code by `python scripts/gen_docs.py` (signatures and "
        "docstrings by `inspect`, errors from the table in `scripts/reference.py`); the test "
        "suite fails while it is stale or while a public call has no docstring.",
        "",
        "## Contents",
        "",
    ]
    lines += [f"- [`{s.name}`](#{s.name.lower()}): {s.about}" for s in SECTIONS]
    for section in SECTIONS:
        doc = inspect.getdoc(section.cls) or ""
        first = doc.strip().splitlines()[0] if doc.strip() else ""
        lines += ["", f"## {section.name}", "", _import_line(section) + ".", ""]
        if first:
            lines += [first, ""]
        for call in calls_of(section):
            title = section.name if call.kind == "constructor" else call.qualname
            lines += [
                f"### `{title}`" + (" (constructor)" if call.kind == "constructor" else ""),
                "",
                f"`{call.signature}`"
                + (f" ({call.kind})" if call.kind not in ("method", "constructor") else ""),
                "",
            ]
            if call.kind != "constructor":
                lines += [call.summary or "(no docstring)", ""]
            lines += [f"Raises: {_errors_text(RAISES.get(call.qualname, ()))}.", ""]
    return "\n".join(lines).rstrip("\n") + "\n"
