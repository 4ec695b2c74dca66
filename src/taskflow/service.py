"""The application service a host app calls: load, check, apply the workflow, save, notify."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import attrs

from taskflow.domain import engine
from taskflow.domain.common import ASSIGN, CLAIM, COMMENT, EDIT, AddComment, Assign, Edit
from taskflow.domain.engine import Outcome
from taskflow.domain.notifications import NotificationPolicy, default_policy
from taskflow.domain.query import TaskQuery
from taskflow.domain.registry import Registry
from taskflow.domain.task import NewTask, Task
from taskflow.domain.values import Actor, CompanyId, TaskId, UserRef, Visibility
from taskflow.errors import ConcurrencyConflict, TaskNotFound
from taskflow.ports import Clock, IdFactory, Notifier, TaskRepository

__all__ = ["Dashboard", "TaskService", "default_company_code"]


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
        self.repository.add(outcome.task)
        self._notify(None, outcome)
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
        self.repository.save(outcome.task, task.version)
        self._notify(task, outcome)
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

    def _load(self, actor: Actor, task_id: TaskId) -> Task:
        task = self.repository.get(task_id)
        if not task.is_party(actor.company):
            raise TaskNotFound(task_id)
        return task

    def _notify(self, before: Task | None, outcome: Outcome) -> None:
        workflow = self.registry[outcome.task.kind].workflow
        for notification in self.policy(workflow, before, outcome.task, outcome.events):
            self.notifier.notify(notification)
