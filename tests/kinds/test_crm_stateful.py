"""Stateful checks of CRM tasks' own rules (default and host statuses) under random actions."""

from hypothesis import settings
from hypothesis.stateful import invariant, run_state_machine_as_test
from tests.kinds.test_crm_task import HOST_KIND, HOST_STATUSES

import taskflow as tf
from taskflow.kinds.crm_task import DEFAULT_STATUSES, CrmTask, StatusCategory, WorkType
from taskflow.testing.stateful import workflow_machine

# The status categories of both configurations, by status name (the names do not clash).
CATEGORIES = {s.name: s.category for s in (*DEFAULT_STATUSES, *HOST_STATUSES)}


def crm_rules_broken(task: tf.Task) -> list[str]:
    """Return the CRM rules `task` breaks (C6, C18, seed 004)."""
    data: CrmTask = task.data
    category = CATEGORIES[task.state]
    problems = []
    if (data.percent_complete == 100) != (data.completed_at is not None):
        problems.append("100 % exactly when completed")
    if (data.completed_at is not None) != (category is StatusCategory.COMPLETE):
        problems.append("completed exactly in a complete status")
    if data.billed and not data.billable:
        problems.append("billed only when billable")
    if data.work_type is WorkType.TICKET and (data.planned_start or data.planned_end):
        problems.append("no planned schedule on a ticket")
    if category.final == task.is_open:
        problems.append("final statuses close the task")
    return problems


def crm_machine(registry: tf.Registry) -> type:
    base = workflow_machine(registry, "crm_task")

    class CrmMachine(base):
        @invariant()
        def crm_rules_hold(self) -> None:
            for task_id in self.opened:
                task = self.repository.get(task_id)
                assert not crm_rules_broken(task), (task.number, crm_rules_broken(task))

    return CrmMachine


SETTINGS = settings(max_examples=40, stateful_step_count=30, deadline=None)


def test_default_crm_tasks_keep_their_rules_under_random_actions():
    run_state_machine_as_test(crm_machine(tf.default_registry()), settings=SETTINGS)


def test_host_configured_crm_tasks_keep_their_rules_under_random_actions():
    run_state_machine_as_test(crm_machine(tf.Registry([HOST_KIND])), settings=SETTINGS)
