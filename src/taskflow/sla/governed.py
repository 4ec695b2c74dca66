"""Make any task kind SLA-governed: the system-only `sla_escalate` action and the `sla_next_event` index."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import attrs

from taskflow.domain.registry import TaskKind
from taskflow.domain.task import Task
from taskflow.errors import InvalidWorkflow
from taskflow.sla.policy import (
    ESCALATE,
    SLA_NEXT_EVENT,
    SlaPolicies,
    escalation_action,
    next_sla_event,
)

__all__ = ["next_event_field", "sla_governed"]


def next_event_field(policies: SlaPolicies) -> Any:
    """Return the indexed-field function giving a task's next SLA event under `policies` (None: none)."""

    def next_event(task: Task) -> datetime | None:
        return next_sla_event(task, policies.for_task(task))

    return next_event


def sla_governed(
    kind: TaskKind, policies: SlaPolicies, *, sides: Iterable[Any] | None = None
) -> TaskKind:
    """Return `kind` with the `sla_escalate` action and the `sla_next_event` index of `policies`.

    Tasks no policy applies to get no next event, so the SLA scheduler never finds them.
    """
    if not isinstance(policies, SlaPolicies):
        msg = f"task kind '{kind.name}': policies must be SlaPolicies, got {policies!r:.80}"
        raise InvalidWorkflow(msg)
    if any(t.name == ESCALATE for t in kind.workflow.transitions):
        msg = f"task kind '{kind.name}' has an '{ESCALATE}' action already (it is SLA-governed)"
        raise InvalidWorkflow(msg)
    workflow = kind.workflow.with_transitions(escalation_action(policies, sides))
    indexed = {**kind.indexed, SLA_NEXT_EVENT: next_event_field(policies)}
    return attrs.evolve(kind, workflow=workflow, indexed=indexed)
