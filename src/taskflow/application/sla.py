"""The SLA scheduler's service call: find the tasks whose next SLA event is due, and fire it.

The core reads no clock: every SLA-governed kind indexes each task's next SLA event time
(`sla_next_event`), and the host's scheduler calls `SlaService.apply_due(at)` now and then.
The call asks the repository's index for the open tasks whose next event is at or before
`at` (never a scan of all tasks), and fires each escalation level reached and not fired yet
by the system actor `system:sla@<recipient>` through `sla_escalate`, which history records;
the save recomputes the task's next event. Two schedulers calling at once fire each level
once: each action names the version it was planned on, and a loser reloads and plans again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from taskflow.application.service import TaskService
from taskflow.domain.query import Between, TaskQuery
from taskflow.domain.task import Task
from taskflow.domain.values import Actor, TaskId
from taskflow.errors import ConcurrencyConflict, InvalidPayload, TaskflowError
from taskflow.sla.policy import (
    ESCALATE,
    SLA_NEXT_EVENT,
    Escalate,
    SlaPolicies,
    SlaState,
    due_escalations,
    state_of,
)

__all__ = ["SlaFired", "SlaRun", "SlaService"]


@attrs.frozen
class SlaFired:
    """One escalation level the scheduler fired: on which task, what, and when."""

    task_id: TaskId
    number: str
    escalation: Escalate
    at: datetime


@attrs.frozen
class SlaRun:
    """What one `apply_due` call did: the tasks it found due, the levels fired, the retries."""

    at: datetime
    found: tuple[TaskId, ...]
    fired: tuple[SlaFired, ...]
    conflicts: int
    skipped: tuple[tuple[TaskId, str], ...] = ()


def _check_at(at: Any, call: str) -> datetime:
    if not isinstance(at, datetime) or at.utcoffset() is None:
        msg = f"SlaService.{call}: at must be a timezone-aware datetime, got {at!r:.80}"
        raise InvalidPayload(msg, field="at")
    return at


def _check_limit(limit: Any, call: str) -> None:
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        msg = f"SlaService.{call}: limit must be a whole number >= 1 or None, got {limit!r:.80}"
        raise InvalidPayload(msg, field="limit")


class SlaService:
    """Time triggers of the SLA engine over a `TaskService`: due events, firing them, SLA state.

    `policies` maps each SLA-governed kind to its policies (the ones its kind was built with).
    It also serves as a `DueTasks` for `Automation.run_due` (`due`).
    """

    def __init__(
        self,
        service: TaskService,
        policies: Mapping[str, SlaPolicies],
        *,
        actor_name: str = "sla",
        attempts: int = 5,
    ) -> None:
        if not isinstance(policies, Mapping) or not policies:
            msg = "SlaService: policies must map at least one kind name to its SlaPolicies"
            raise InvalidPayload(msg, field="policies")
        for kind, sla in policies.items():
            if kind not in service.registry:
                msg = f"SlaService: kind '{kind}' is not registered; kinds: {list(service.registry.names)}"
                raise InvalidPayload(msg, field="policies")
            if not isinstance(sla, SlaPolicies):
                msg = f"SlaService: policies['{kind}'] must be SlaPolicies, got {sla!r:.80}"
                raise InvalidPayload(msg, field="policies")
            if SLA_NEXT_EVENT not in service.registry[kind].indexed:
                msg = (
                    f"SlaService: kind '{kind}' does not index '{SLA_NEXT_EVENT}'; build it with "
                    "an SLA (crm_task_kind(CrmConfig(sla=...)), ticket_kind(sla), sla_governed)"
                )
                raise InvalidPayload(msg, field="policies")
        if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
            msg = f"SlaService: attempts must be a whole number >= 1, got {attempts!r}"
            raise InvalidPayload(msg, field="attempts")
        self.service = service
        self.policies = dict(policies)
        self.actor_name = actor_name
        self.attempts = attempts

    def actor_for(self, task: Task) -> Actor:
        """Return the system actor that fires escalations on `task` (for the business side)."""
        return Actor.system(self.actor_name, task.recipient)

    def due_tasks(self, at: datetime, *, limit: int | None = None) -> list[Task]:
        """Return the open SLA-governed tasks whose next SLA event is at or before `at` (index lookup)."""
        _check_at(at, "due")
        _check_limit(limit, "due")
        found: list[Task] = []
        for kind in self.policies:
            left = None if limit is None else limit - len(found)
            if left == 0:
                break
            query = TaskQuery(
                kind=kind, open=True, limit=left, where={SLA_NEXT_EVENT: Between(None, at)}
            )
            found += self.service.repository.query(query)
        return found

    def due(self, at: datetime) -> Sequence[TaskId]:
        """Return the ids of the tasks whose next SLA event is due at `at` (the `DueTasks` port)."""
        return [task.id for task in self.due_tasks(at)]

    def apply_due(self, at: datetime | None = None, *, limit: int | None = None) -> SlaRun:
        """Fire every escalation level reached by `at` (default: the service clock's now) and not fired yet.

        Levels are fired at the service clock's time, which must not be before `at`; each is
        fired once even when several schedulers call at the same moment.
        """
        at = self.service.clock.now() if at is None else _check_at(at, "apply_due")
        due = self.due_tasks(at, limit=limit)
        fired: list[SlaFired] = []
        skipped: list[tuple[TaskId, str]] = []
        conflicts = 0
        for task in due:
            done, lost, problem = self._apply_task(task, at)
            fired += done
            conflicts += lost
            if problem is not None:
                skipped.append((task.id, problem))
        return SlaRun(at, tuple(t.id for t in due), tuple(fired), conflicts, tuple(skipped))

    def _apply_task(self, task: Task, at: datetime) -> tuple[list[SlaFired], int, str | None]:
        fired: list[SlaFired] = []
        conflicts = 0
        policy = self.policies[task.kind].for_task(task)
        actor = self.actor_for(task)
        while policy is not None and task.is_open:
            pending = due_escalations(task, policy, at)
            if not pending:
                break
            escalation = pending[0]
            try:
                outcome = self.service.act(
                    actor, task.id, ESCALATE, escalation, expected_version=task.version
                )
            except ConcurrencyConflict:
                conflicts += 1
                if conflicts >= self.attempts:
                    return fired, conflicts, f"gave up after {conflicts} conflicts"
                task = self.service.repository.get(task.id)
                policy = self.policies[task.kind].for_task(task)
                continue
            except TaskflowError as exc:  # refused on the current task: leave it for the host
                return fired, conflicts, str(exc)
            task = self.service.repository.get(task.id)
            fired.append(SlaFired(task.id, task.number, escalation, outcome.task.history[-1].at))
        return fired, conflicts, None

    def state(self, actor: Actor, task_id: TaskId, at: datetime) -> SlaState | None:
        """Return the SLA state of a task at `at`, as it stood then (None: no SLA or not opened yet)."""
        _check_at(at, "state")
        past = self.service.task_at(actor, task_id, at)
        if past is None or past.kind not in self.policies:
            return None
        return state_of(self.policies[past.kind], past, at)

    def states(
        self, actor: Actor, task_ids: Iterable[TaskId], at: datetime
    ) -> list[SlaState | None]:
        """Return the SLA state at `at` of each task of `task_ids`, in order."""
        return [self.state(actor, task_id, at) for task_id in task_ids]
