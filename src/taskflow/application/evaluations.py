"""The evaluation application service (SP4): the evaluations a supplier received, filtered."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from taskflow.application.service import TaskService
from taskflow.domain.query import TaskQuery, check_states, check_time_range
from taskflow.domain.task import Task
from taskflow.domain.values import Actor, CompanyId
from taskflow.kinds.evaluation import EVALUATION

__all__ = ["Evaluations"]


class Evaluations:
    """The evaluation calls, built on a `TaskService`."""

    def __init__(self, service: TaskService) -> None:
        self.service = service

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
        workflow = self.service.registry[EVALUATION.name].workflow
        wanted = check_states("received evaluations", states, workflow)
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
        return self.service.find(actor, query)
