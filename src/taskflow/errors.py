"""The one exception hierarchy of taskflow: every error a caller can catch is a `TaskflowError`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Self

__all__ = [
    "ActionNotAllowed",
    "AlreadyTaken",
    "BookingUnchanged",
    "ConcurrencyConflict",
    "DeserializationError",
    "InvalidAnswers",
    "InvalidForm",
    "InvalidPayload",
    "InvalidQuestionnaire",
    "InvalidRows",
    "InvalidWorkflow",
    "LimitExceeded",
    "MarkTaken",
    "MissingExtra",
    "OfferExpired",
    "PermissionDenied",
    "StorageError",
    "TaskNotFound",
    "TaskflowError",
    "UnknownKind",
    "ViewNotSaveable",
]


_SHOWN = 60  # characters of a caller's value a message quotes at most


def _short(value: object) -> str:
    """Return `value` as text of at most `_SHOWN` characters (a 10 MB id is never echoed whole)."""
    shown = value if isinstance(value, str) else f"<{type(value).__name__}>"
    return shown if len(shown) <= _SHOWN else shown[: _SHOWN - 3] + "..."


def _names(items: Iterable[str]) -> str:
    listed = ", ".join(f"'{item}'" for item in items)
    return listed or "(none)"


class TaskflowError(Exception):
    """Root of every error taskflow raises on purpose."""


class ActionNotAllowed(TaskflowError):
    """The action does not exist for the task's kind or cannot be taken in its current state."""

    def __init__(
        self,
        task: str,
        state: str,
        action: str,
        allowed: Iterable[str],
        *,
        needs: Iterable[str] = (),
        reason: str = "",
        final: bool = False,
    ) -> None:
        self.task = task
        self.state = state
        self.action = action
        self.allowed = tuple(allowed)
        self.needs = tuple(needs)
        self.reason = reason
        self.final = final
        super().__init__(self._message())

    def _message(self) -> str:
        if self.reason:
            why = self.reason
        elif self.needs:
            why = f"'{self.action}' needs {' or '.join(repr(s) for s in self.needs)}"
        else:
            why = f"'{_short(self.action)}' is not an action of this task"
        final = self.final
        now = _names(self.allowed) if self.allowed else ("(none, final)" if final else "(none)")
        return f"task {self.task} is '{self.state}'; {why}; allowed now: {now}"

    def allowing(self, allowed: Iterable[str]) -> ActionNotAllowed:
        """Return this refusal saying which actions are allowed now (for a refusal raised without knowing them)."""
        self.allowed = tuple(allowed)
        self.args = (self._message(), *self.args[1:])
        return self


class AlreadyTaken(ActionNotAllowed):
    """A broadcast booking request was confirmed by another provider's offer first (first accept wins)."""

    def __init__(self, offer: str, state: str, request: str, *, winner: str = "") -> None:
        self.offer = offer
        self.request = request
        self.winner = winner
        by = f" by {winner}" if winner else ""
        reason = (
            f"'accept' is too late: booking request {request} was already taken{by}; "
            "the first provider to accept gets the booking"
        )
        super().__init__(offer, state, "accept", (), reason=reason, final=True)


class OfferExpired(ActionNotAllowed):
    """A booking offer is past the time its broadcast set for answers, so it can no longer be accepted."""

    def __init__(self, offer: str, state: str, expires_at: str) -> None:
        self.offer = offer
        self.expires_at = expires_at
        reason = (
            f"'accept' is too late: the offer expired at {expires_at}; the request returns "
            "to the operator"
        )
        super().__init__(offer, state, "accept", (), reason=reason, final=state != "offered")


class BookingUnchanged(ActionNotAllowed):
    """The host's booking lookup says the booking was not changed, cancelled or refunded as the task asks."""

    def __init__(self, task: str, state: str, booking: str, needed: str, found: str) -> None:
        self.booking = booking
        self.needed = needed
        self.found = found
        reason = (
            f"'mark_resolved' needs booking {booking} to be {needed} first, but the booking "
            f"lookup says it is {found}; change the booking, then resolve the task"
        )
        super().__init__(task, state, "mark_resolved", (), reason=reason)


class PermissionDenied(TaskflowError, PermissionError):
    """The actor's company side or roles do not allow what was asked."""

    def __init__(self, message: str, *, task: str = "", action: str = "") -> None:
        self.task = task
        self.action = action
        super().__init__(message)


class InvalidPayload(TaskflowError, ValueError):
    """The data given with an action or a new task is missing, malformed or not allowed."""

    def __init__(self, message: str, *, field: str = "", action: str = "") -> None:
        self.field = field
        self.action = action
        super().__init__(message)


class LimitExceeded(InvalidPayload):
    """A text, a count or a nesting is larger than the host's `Limits` allow; nothing was stored."""

    def __init__(
        self, field: str, limit: int, size: int, *, unit: str = "characters", action: str = ""
    ) -> None:
        self.limit = limit
        self.size = size
        on = f" ('{action}')" if action else ""
        msg = (
            f"{field}{on} is too large: {size} {unit}, the limit is {limit} "
            "(the host's Limits; shorten it or split it up)"
        )
        super().__init__(msg, field=field, action=action)


class TaskNotFound(TaskflowError, LookupError):
    """No task with that id exists, or the actor's company is not a party to it."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self.field = "task_id"
        msg = f"no task with id '{_short(task_id)}' is visible here"
        super().__init__(msg)


class ConcurrencyConflict(TaskflowError):
    """Someone saved the task since it was loaded; reload and try again."""

    def __init__(
        self,
        task: str,
        expected: int,
        actual: int | None,
        *,
        exists: bool = False,
        because: str = "",
    ) -> None:
        self.task = task
        self.expected = expected
        self.actual = actual
        if because:
            msg = (
                f"task {task} could not be saved at version {expected}: {because}; "
                "reload the task and apply the action again"
            )
        elif exists:
            msg = (
                f"task {task} cannot be added: a task with its id is already stored "
                f"(version {actual}); every task needs a new id"
            )
        else:
            found = "it is not stored" if actual is None else f"the stored version is {actual}"
            msg = (
                f"task {task} was changed by someone else: expected version {expected}, "
                f"but {found}; reload the task and apply the action again"
            )
        super().__init__(msg)


class MarkTaken(ConcurrencyConflict):
    """A commit claimed a once-only mark that an earlier commit stored: what it stands for was done."""

    def __init__(self, mark: str) -> None:
        self.mark = mark
        self.task = ""
        self.expected = 0
        self.actual = None
        msg = (
            f"mark '{mark}' is already stored: what it stands for was done already (by another "
            "process or an earlier try); nothing of this commit was written"
        )
        TaskflowError.__init__(self, msg)


class UnknownKind(TaskflowError, LookupError):
    """No task kind of that name is registered."""

    def __init__(self, kind: str, known: Iterable[str]) -> None:
        self.kind = kind
        self.known = tuple(sorted(known))
        self.field = "kind"
        msg = f"unknown task kind '{_short(kind)}'; registered kinds: {_names(self.known)}"
        super().__init__(msg)


class InvalidWorkflow(TaskflowError, ValueError):
    """A workflow or task-kind definition is inconsistent; raised when it is built."""


class StorageError(TaskflowError):
    """The storage cannot be used: a newer schema, a file that is no database, a closed repository."""

    def __init__(self, message: str, *, database: str = "") -> None:
        self.database = database
        super().__init__(message)


class MissingExtra(TaskflowError, ImportError):
    """A feature needs an optional dependency that is not installed; the message names the extra."""

    def __init__(self, feature: str, extra: str, package: str) -> None:
        self.feature = feature
        self.extra = extra
        self.package = package
        msg = (
            f"{feature} needs the optional package '{package}', which is not installed; "
            f"install it with: pip install 'taskflow[{extra}]'"
        )
        super().__init__(msg, name=package)


class DeserializationError(TaskflowError, ValueError):
    """Stored or received data cannot be turned back into a task, event or history entry."""

    def __init__(self, message: str, *, path: str = "", task_id: str = "") -> None:
        self.path = path
        self.task_id = task_id
        super().__init__(message)


class InvalidQuestionnaire(TaskflowError, ExceptionGroup[InvalidPayload]):
    """Questions of a questionnaire break the rules: one `InvalidPayload` member per bad question.

    Each member carries a note naming its question (`questions[2] 'Colour?'`); `indexes` lists
    their positions (from 0), in the members' order. Nothing was sent.
    """

    indexes: tuple[int, ...]

    def __new__(
        cls, message: str, exceptions: Sequence[InvalidPayload], *, indexes: Iterable[int] = ()
    ) -> Self:
        """Make the group; `indexes` are the bad questions' positions, one per member."""
        group = super().__new__(cls, message, exceptions)
        group.indexes = tuple(indexes)
        return group

    def __init__(
        self, message: str, exceptions: Sequence[InvalidPayload], *, indexes: Iterable[int] = ()
    ) -> None:
        super().__init__(message, exceptions)

    # `except*` passes only members of this group, so the narrower signature holds in practice.
    def derive(self, excs: Sequence[InvalidPayload]) -> InvalidQuestionnaire:  # type: ignore[override]
        """Return a group of `excs` (a part of this one, as `except*` splits it) of the same class."""
        index_of = {id(e): i for e, i in zip(self.exceptions, self.indexes, strict=False)}
        return InvalidQuestionnaire(
            self.message, excs, indexes=[index_of.get(id(e), -1) for e in excs]
        )


class InvalidAnswers(TaskflowError, ExceptionGroup[TaskflowError]):
    """Some answers of one call were refused, one member per refused question; the others were saved.

    Each member is the error that answer alone would have raised, with a note naming its
    question (`questions[1] 'How many employees?' (task ACME-TASK-3)`). `questions` holds the
    question task id (or the key given, when it names no question) of each member, in order;
    `saved` the `Outcome` of each answer that was saved; `questionnaire` the questionnaire's number.
    """

    questionnaire: str
    questions: tuple[str, ...]
    saved: tuple[Any, ...]

    def __new__(
        cls,
        message: str,
        exceptions: Sequence[TaskflowError],
        *,
        questionnaire: str = "",
        questions: Iterable[str] = (),
        saved: Iterable[Any] = (),
    ) -> Self:
        """Make the group; `questions` names each member's question, `saved` the saved answers."""
        group = super().__new__(cls, message, exceptions)
        group.questionnaire = questionnaire
        group.questions = tuple(questions)
        group.saved = tuple(saved)
        return group

    def __init__(
        self,
        message: str,
        exceptions: Sequence[TaskflowError],
        *,
        questionnaire: str = "",
        questions: Iterable[str] = (),
        saved: Iterable[Any] = (),
    ) -> None:
        super().__init__(message, exceptions)

    @property
    def refused(self) -> dict[str, TaskflowError]:
        """Return each refused question (task id, or the key given) with its error."""
        pairs = zip(self.questions, self.exceptions, strict=False)
        return {q: e for q, e in pairs if isinstance(e, TaskflowError)}

    # `except*` passes only members of this group, so the narrower signature holds in practice.
    def derive(self, excs: Sequence[TaskflowError]) -> InvalidAnswers:  # type: ignore[override]
        """Return a group of `excs` (a part of this one, as `except*` splits it) of the same class."""
        question_of = {id(e): q for e, q in zip(self.exceptions, self.questions, strict=False)}
        return InvalidAnswers(
            self.message,
            excs,
            questionnaire=self.questionnaire,
            questions=[question_of.get(id(e), "") for e in excs],
            saved=self.saved,
        )


class ViewNotSaveable(TaskflowError, ValueError):
    """A task as one company sees it (other companies' internal notes removed) was given to be stored."""

    def __init__(self, task: str, company: str) -> None:
        self.task = task
        self.company = company
        msg = (
            f"task {task} is a view for {company} (another company's internal notes are left "
            f"out), and a view is never stored; take actions through the service, or save the "
            f"task the repository returned"
        )
        super().__init__(msg)


class InvalidForm(TaskflowError, ExceptionGroup[InvalidPayload]):
    """A web form was filled in wrongly: one `InvalidPayload` member per bad field (`field` names it).

    `fields` lists the bad fields' names, in the members' order. Nothing was taken in.
    """

    fields: tuple[str, ...]

    def __new__(cls, message: str, exceptions: Sequence[InvalidPayload]) -> Self:
        """Make the group; each member's `field` names its form field."""
        group = super().__new__(cls, message, exceptions)
        group.fields = tuple(e.field for e in exceptions)
        return group

    def __init__(self, message: str, exceptions: Sequence[InvalidPayload]) -> None:
        super().__init__(message, exceptions)

    # `except*` passes only members of this group, so the narrower signature holds in practice.
    def derive(self, excs: Sequence[InvalidPayload]) -> InvalidForm:  # type: ignore[override]
        """Return a group of `excs` (a part of this one) of the same class."""
        return InvalidForm(self.message, excs)


class InvalidRows(TaskflowError, ExceptionGroup[TaskflowError]):
    """Rows of an import were refused, one member per bad row (a note names its line); the rest were imported.

    `lines` holds each member's line number (from 1, the header is line 1), in order.
    """

    lines: tuple[int, ...]

    def __new__(
        cls, message: str, exceptions: Sequence[TaskflowError], *, lines: Iterable[int] = ()
    ) -> Self:
        """Make the group; `lines` are the bad rows' line numbers, one per member."""
        group = super().__new__(cls, message, exceptions)
        group.lines = tuple(lines)
        return group

    def __init__(
        self, message: str, exceptions: Sequence[TaskflowError], *, lines: Iterable[int] = ()
    ) -> None:
        super().__init__(message, exceptions)

    # `except*` passes only members of this group, so the narrower signature holds in practice.
    def derive(self, excs: Sequence[TaskflowError]) -> InvalidRows:  # type: ignore[override]
        """Return a group of `excs` (a part of this one) of the same class."""
        line_of = {id(e): n for e, n in zip(self.exceptions, self.lines, strict=False)}
        return InvalidRows(self.message, excs, lines=[line_of.get(id(e), 0) for e in excs])
