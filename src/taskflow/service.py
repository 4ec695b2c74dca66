"""The application service a host app calls: load, check, apply the workflow, save, notify."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar, cast

import attrs

from taskflow import questionnaires as _questionnaires
from taskflow.domain import engine
from taskflow.domain.common import ASSIGN, CLAIM, COMMENT, EDIT, AddComment, Assign, Edit
from taskflow.domain.engine import Outcome
from taskflow.domain.notifications import NotificationPolicy, default_policy
from taskflow.domain.query import TaskQuery, check_time_range
from taskflow.domain.registry import Registry
from taskflow.domain.task import NewTask, Task
from taskflow.domain.values import Actor, CompanyId, TaskId, UserRef, Visibility
from taskflow.errors import ConcurrencyConflict, InvalidPayload, TaskNotFound
from taskflow.kinds.evaluation import EVALUATION
from taskflow.outbox import DeliveryReport, OutboxEntry
from taskflow.ports import Clock, IdFactory, Notifier, OutboxRepository, TaskRepository

__all__ = ["Dashboard", "TaskService", "default_company_code", "retry_on_conflict"]

_T = TypeVar("_T")

# Pending notifications read per outbox query while delivering: a long backlog (after the
# notifier was down) is sent in steps and never read whole.
_DELIVERY_BATCH = 100


def default_company_code(company: CompanyId) -> str:
    """Return the code task numbers of `company` start with: its id in upper case."""
    return str(company).upper()


@attrs.frozen
class Dashboard:
    """How many of a company's tasks are in each state, per kind (C13)."""

    company: CompanyId
    counts: dict[tuple[str, str], int]

    def total(self, kind: str | None = None) -> int:
        """Return the number of tasks, of one kind or of all."""
        return sum(n for (k, _), n in self.counts.items() if kind is None or k == kind)


class TaskService:
    """Runs tasks for a host app; the host passes every adapter in (one composition point)."""

    def __init__(
        self,
        *,
        registry: Registry,
        repository: TaskRepository,
        notifier: Notifier,
        clock: Clock,
        ids: IdFactory,
        policy: NotificationPolicy = default_policy,
        company_code: Callable[[CompanyId], str] = default_company_code,
    ) -> None:
        self.registry = registry
        self.repository = repository
        self.notifier = notifier
        self.clock = clock
        self.ids = ids
        self.policy = policy
        self.company_code = company_code
        # One delivery round at a time, so two threads never send the same pending notification.
        self._delivery_lock = threading.Lock()

    def open(self, actor: Actor, kind: str, draft: NewTask) -> Outcome:
        """Open a task of `kind` from `draft`; `actor` becomes its requester."""
        task_kind = self.registry[kind]
        at = self.clock.now()
        # Check everything before a number is taken, so a refused draft leaves no gap.
        engine.open_task(
            task_kind.workflow,
            kind,
            draft,
            actor,
            at,
            TaskId("-"),
            "-",
            data_type=task_kind.data_type,
        )
        number = (
            f"{self.company_code(actor.company)}-TASK-{self.repository.next_number(actor.company)}"
        )
        outcome = engine.open_task(
            task_kind.workflow,
            kind,
            draft,
            actor,
            at,
            self.ids.new_task_id(),
            number,
            data_type=task_kind.data_type,
        )
        self._write(None, outcome)
        return Outcome(outcome.task.visible_to(actor.company), outcome.events)

    def act(
        self,
        actor: Actor,
        task_id: TaskId,
        action: str,
        payload: Any = None,
        *,
        expected_version: int | None = None,
    ) -> Outcome:
        """Take `action` on a task; with `expected_version`, only if nobody changed it since."""
        task = self._load(actor, task_id)
        if expected_version is not None and task.version != expected_version:
            raise ConcurrencyConflict(task.number, expected_version, task.version)
        workflow = self.registry[task.kind].workflow
        outcome = engine.apply(workflow, task, action, actor, self.clock.now(), payload)
        self._write(task, outcome)
        return Outcome(outcome.task.visible_to(actor.company), outcome.events)

    def comment(
        self,
        actor: Actor,
        task_id: TaskId,
        text: str,
        visibility: Visibility = Visibility.PUBLIC,
    ) -> Outcome:
        """Comment on a task, public to the partner or internal to the actor's company."""
        return self.act(actor, task_id, COMMENT, AddComment(text, visibility))

    def assign(self, actor: Actor, task_id: TaskId, users: Iterable[UserRef]) -> Outcome:
        """Make `users` (of the actor's company) the company's assignees on a task."""
        return self.act(actor, task_id, ASSIGN, Assign(tuple(users)))

    def claim(self, actor: Actor, task_id: TaskId) -> Outcome:
        """Take a task from the Teambox: the actor becomes the company's only assignee."""
        return self.act(actor, task_id, CLAIM)

    def edit(self, actor: Actor, task_id: TaskId, edit: Edit) -> Outcome:
        """Change editable fields of an open task, as far as the actor's side may."""
        return self.act(actor, task_id, EDIT, edit)

    def get(self, actor: Actor, task_id: TaskId) -> Task:
        """Return a task as the actor may see it; a stranger's task is not found."""
        return self._load(actor, task_id).visible_to(actor.company)

    def allowed_actions(self, actor: Actor, task_id: TaskId) -> tuple[str, ...]:
        """Return the actions the actor may take on a task now."""
        task = self._load(actor, task_id)
        return engine.allowed_actions(self.registry[task.kind].workflow, task, actor)

    def task_at(self, actor: Actor, task_id: TaskId, at: datetime) -> Task | None:
        """Return a task as it stood at `at`, rebuilt from its history (None if not yet opened)."""
        task = self._load(actor, task_id)
        past = engine.task_at(self.registry[task.kind].workflow, task, at)
        return None if past is None else past.visible_to(actor.company)

    def inbox(self, actor: Actor) -> list[Task]:
        """Return the open tasks waiting on the actor's company that the actor is assigned to."""
        query = TaskQuery(ball_company=actor.company, assignee=actor.ref)
        return [t.visible_to(actor.company) for t in self.repository.query(query)]

    def teambox(self, actor: Actor) -> list[Task]:
        """Return all open tasks waiting on the actor's company, whoever is assigned (C4)."""
        query = TaskQuery(ball_company=actor.company)
        return [t.visible_to(actor.company) for t in self.repository.query(query)]

    def dashboard(self, actor: Actor) -> Dashboard:
        """Count the tasks the actor's company is a party to, per kind and state (C13)."""
        counts = self.repository.count(TaskQuery(company=actor.company))
        return Dashboard(actor.company, counts)

    def find(self, actor: Actor, query: TaskQuery) -> list[Task]:
        """Return the tasks that match `query` among those the actor's company is a party to."""
        if query.company is not None and query.company != actor.company:
            return []
        scoped = attrs.evolve(query, company=actor.company)
        return [t.visible_to(actor.company) for t in self.repository.query(scoped)]

    def received_evaluations(
        self,
        actor: Actor,
        *,
        requester: CompanyId | None = None,
        states: str | Iterable[str] | None = None,
        received_from: datetime | None = None,
        received_until: datetime | None = None,
    ) -> list[Task]:
        """Return the evaluations the actor's company received, oldest first, filtered (SP4, C13).

        `requester` keeps one evaluating company's; `states` keeps tasks in those states; a task
        is kept when it was created between `received_from` and `received_until`, both included.
        """
        workflow = self.registry[EVALUATION.name].workflow
        wanted = (
            None if states is None else frozenset({states} if isinstance(states, str) else states)
        )
        unknown = sorted(wanted - set(workflow.state_names)) if wanted is not None else []
        if unknown:
            msg = (
                f"received evaluations cannot be filtered by state {unknown}; "
                f"states of '{workflow.name}': {workflow.state_names}"
            )
            raise InvalidPayload(msg, field="states")
        start, end = check_time_range(
            ("received_from", "received_until"), received_from, received_until
        )
        query = TaskQuery(
            kind=EVALUATION.name,
            states=wanted,
            recipient_company=actor.company,
            requester_company=requester,
            created_from=start,
            created_until=end,
        )
        return [t.visible_to(actor.company) for t in self.repository.query(query)]

    # --- retry on conflict, and the notification outbox (issue 4) ----------------------------

    def act_with_retry(
        self,
        actor: Actor,
        task_id: TaskId,
        action: str,
        payload: Any = None,
        *,
        attempts: int = 3,
    ) -> Outcome:
        """Take `action`, reloading the task and applying it again after a `ConcurrencyConflict`.

        At most `attempts` tries; when all of them meet a conflict, the last one is raised.
        Any other refusal (the action is no longer allowed on the reloaded task) is raised at once.
        """
        return retry_on_conflict(
            lambda: self.act(actor, task_id, action, payload), attempts=attempts
        )

    def deliver_notifications(self, limit: int | None = None) -> DeliveryReport:
        """Send pending outbox notifications, oldest first, and mark them delivered.

        Stops at the first notifier failure: that notification and the later ones stay pending,
        in order, for the next round. The service runs a round after every write; call this to
        retry (from a timer, say). A repository without an outbox has nothing pending.
        """
        if limit is not None and (
            not isinstance(limit, int) or isinstance(limit, bool) or limit < 0
        ):
            msg = f"deliver_notifications: limit must be None or a whole number >= 0, got {limit!r}"
            raise InvalidPayload(msg, field="limit")
        outbox = self._outbox()
        if outbox is None:
            return DeliveryReport()
        failed: OutboxEntry | None = None
        error: Exception | None = None
        count = 0
        with self._delivery_lock:
            while failed is None and (limit is None or count < limit):
                size = _DELIVERY_BATCH if limit is None else min(_DELIVERY_BATCH, limit - count)
                entries = outbox.pending_notifications(size)
                delivered: list[int] = []
                for entry in entries:
                    try:
                        self.notifier.notify(entry.notification)
                    except Exception as exc:  # any notifier failure: the entry stays pending
                        failed, error = entry, exc
                        break
                    delivered.append(entry.id)
                if delivered:
                    outbox.mark_delivered(delivered)
                count += len(delivered)
                if len(entries) < size:
                    break
        if failed is not None:
            note = failed.notification
            _log().warning(
                "task %s: notification %d (%s to %s) was not delivered and stays pending: %r",
                note.task_number,
                failed.id,
                note.event,
                note.recipient,
                error,
                exc_info=error,
            )
        return DeliveryReport(count, failed, error)

    def _outbox(self) -> OutboxRepository | None:
        repository = self.repository
        if callable(getattr(repository, "pending_notifications", None)) and callable(
            getattr(repository, "mark_delivered", None)
        ):
            return cast(OutboxRepository, repository)
        return None

    def _write(self, before: Task | None, outcome: Outcome) -> None:
        """Store an outcome; with an outbox, queue its notifications in the same write, then send."""
        outbox = self._outbox()
        if outbox is None:
            # A host's repository without an outbox: notify directly after the write, as before.
            if before is None:
                self.repository.add(outcome.task)
            else:
                self.repository.save(outcome.task, before.version)
            self._notify(before, outcome)
            return
        workflow = self.registry[outcome.task.kind].workflow
        notifications = tuple(self.policy(workflow, before, outcome.task, outcome.events))
        if before is None:
            outbox.add(outcome.task, notifications=notifications)
        else:
            outbox.save(outcome.task, before.version, notifications=notifications)
        try:
            self.deliver_notifications()
        except Exception as exc:  # the write stands; a failed delivery round is only logged
            _log().warning(
                "task %s: saved, but the delivery round after it failed: %r",
                outcome.task.number,
                exc,
                exc_info=exc,
            )

    def _load(self, actor: Actor, task_id: TaskId) -> Task:
        task = self.repository.get(task_id)
        if not task.is_party(actor.company):
            raise TaskNotFound(task_id)
        return task

    def _notify(self, before: Task | None, outcome: Outcome) -> None:
        workflow = self.registry[outcome.task.kind].workflow
        for notification in self.policy(workflow, before, outcome.task, outcome.events):
            self.notifier.notify(notification)

    # --- questionnaires (Q1-Q4, issue 3): each call is the function of the same name in
    # --- taskflow.questionnaires, which documents it in full ---------------------------------

    def send_questionnaire(self, actor: Actor, draft: NewTask) -> _questionnaires.SentQuestionnaire:
        """Send a questionnaire (`draft.data`) to `draft.recipient`: one question task per question."""
        return _questionnaires.send_questionnaire(self, actor, draft)

    def questions_of(self, actor: Actor, questionnaire_id: TaskId) -> list[Task]:
        """Return the question tasks of a questionnaire in order, as the actor sees them."""
        return _questionnaires.questions_of(self, actor, questionnaire_id)

    def answer_question(
        self,
        actor: Actor,
        question_id: TaskId,
        value: Any,
        *,
        expected_version: int | None = None,
    ) -> Outcome:
        """Answer one question task; `value` is parsed for the question's type."""
        return _questionnaires.answer_question(
            self, actor, question_id, value, expected_version=expected_version
        )

    def answer_questions(
        self, actor: Actor, questionnaire_id: TaskId, answers: Mapping[Any, Any]
    ) -> tuple[Outcome, ...]:
        """Answer several questions (by position or task id) at once; raise `InvalidAnswers` for the refused."""
        return _questionnaires.answer_questions(self, actor, questionnaire_id, answers)

    def delegate_question(
        self,
        actor: Actor,
        question_id: TaskId,
        user: UserRef,
        note: str = "",
        *,
        expected_version: int | None = None,
    ) -> Outcome:
        """Hand a question to a colleague of the actor's company, who becomes its only assignee."""
        return _questionnaires.delegate_question(
            self, actor, question_id, user, note, expected_version=expected_version
        )

    def accept_answer(
        self, actor: Actor, question_id: TaskId, *, expected_version: int | None = None
    ) -> Outcome:
        """Accept a question's answer: the question is done for good."""
        return _questionnaires.accept_answer(
            self, actor, question_id, expected_version=expected_version
        )

    def send_back_question(
        self,
        actor: Actor,
        question_id: TaskId,
        reason: str,
        *,
        expected_version: int | None = None,
    ) -> Outcome:
        """Send a question back to the supplier with a reason, to be answered again."""
        return _questionnaires.send_back_question(
            self, actor, question_id, reason, expected_version=expected_version
        )

    def sync_questionnaire(self, actor: Actor, questionnaire_id: TaskId) -> Task:
        """Record on a questionnaire every question whose state changed unrecorded; return it."""
        return _questionnaires.sync_questionnaire(self, actor, questionnaire_id)

    def received_questionnaires(
        self,
        actor: Actor,
        *,
        requester: CompanyId | None = None,
        states: str | Iterable[str] | None = None,
        received_from: datetime | None = None,
        received_until: datetime | None = None,
    ) -> list[_questionnaires.QuestionnaireSummary]:
        """List the questionnaires the actor's company received, with answered vs total (Q4)."""
        return _questionnaires.received_questionnaires(
            self,
            actor,
            requester=requester,
            states=states,
            received_from=received_from,
            received_until=received_until,
        )

    def sent_questionnaires(
        self,
        actor: Actor,
        *,
        recipient: CompanyId | None = None,
        states: str | Iterable[str] | None = None,
        sent_from: datetime | None = None,
        sent_until: datetime | None = None,
    ) -> list[_questionnaires.QuestionnaireSummary]:
        """List the questionnaires the actor's company sent, with answered vs total."""
        return _questionnaires.sent_questionnaires(
            self,
            actor,
            recipient=recipient,
            states=states,
            sent_from=sent_from,
            sent_until=sent_until,
        )


def retry_on_conflict(fn: Callable[[], _T], *, attempts: int = 3) -> _T:
    """Call `fn` until it ends without `ConcurrencyConflict`, at most `attempts` times.

    `fn` must load what it changes each time (as `TaskService.act` does). The last conflict is
    raised when every attempt met one; any other error is raised at once.
    """
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
        msg = f"retry_on_conflict: attempts must be a whole number >= 1, got {attempts!r}"
        raise InvalidPayload(msg, field="attempts")
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except ConcurrencyConflict:
            if attempt == attempts:
                raise
    msg = "retry_on_conflict: unreachable"  # pragma: no cover - the loop returns or raises
    raise AssertionError(msg)  # pragma: no cover


def _log() -> logging.Logger:
    # Looked up when needed: importing taskflow configures and creates nothing.
    return logging.getLogger("taskflow.service")
