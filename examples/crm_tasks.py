"""CRM tasks with an SLA (seed 003, issue 13): account defaults, pause, a warning, a breach, task complete.

The account "acme" has two support staff and 8 SLA hours on a Monday-Friday 09:00-17:00
calendar in Europe/Berlin, with Monday 7 December 2026 a holiday. Its customer opens a task
on Friday at 16:00: the support staff become its assignees and it is due (CS5) on Tuesday at
16:00, the next business day after the holiday (1 business hour on Friday, 7 on Tuesday).
The SLA's resolution clock (8 business hours, warning at 80 %) stops while the task waits on
the customer over the weekend. The host's scheduler calls `SlaService.apply_due()`: on
Tuesday evening it fires the target's warning (the assignees hear of it), on Wednesday the
ladder's breach level, which escalates to the team lead. Then "task complete" notifies the
assignees and the notify list.

Run: .venv/bin/python examples/crm_tasks.py
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import taskflow as tf
from taskflow.application.crm import Account, CrmTasks, InMemoryAccounts
from taskflow.application.sla import SlaService
from taskflow.kinds.crm_task import CrmConfig, CrmEdit, CrmTask, Regarding, crm_task_kind
from taskflow.sla import (
    BusinessCalendar,
    Escalate,
    EscalationLevel,
    SlaPolicies,
    SlaPolicy,
    Target,
    TargetState,
)

BERLIN = ZoneInfo("Europe/Berlin")
HOLIDAY = date(2026, 12, 7)  # a Monday
CALENDAR = BusinessCalendar.weekdays("Europe/Berlin", holidays=[HOLIDAY], name="acme-office")
ANN, BOB = tf.Actor("ann", "desk"), tf.Actor("bob", "desk")
LEAD = tf.UserRef("desk", "lee")
CUSTOMER = tf.Actor("cora", "acme")
WATCHER = tf.UserRef("acme", "wendy")

ACME = Account("acme", (ANN.ref, BOB.ref), timedelta(hours=8), CALENDAR)
SLA = SlaPolicies(
    (
        SlaPolicy(
            "acme-8h",
            calendar=CALENDAR,
            resolution=timedelta(hours=8),
            warning_percent=80,  # each target's warning: it tells the assignees
            ladder=(EscalationLevel("escalate-lead", 100, notify_assignees=False, notify=(LEAD,)),),
        ),
    ),
    default="acme-8h",
)
KIND = crm_task_kind(CrmConfig(sla=SLA))


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """Return a local Berlin time in December 2026."""
    return datetime(2026, 12, day, hour, minute, tzinfo=BERLIN)


def show(moment: datetime | None) -> str:
    """Return an instant as a Berlin wall-clock time with its weekday."""
    return "-" if moment is None else f"{moment.astimezone(BERLIN):%a %d %b %H:%M}"


def fired_text(escalation: Escalate) -> str:
    """Return what one fired SLA event was: a target's warning, or a ladder level and its stage."""
    if escalation.warning:
        return f"warning of {escalation.target.value}"
    return f"{escalation.level} ({'breach' if escalation.breach else 'before the breach'})"


def run_scheduler(sla: SlaService, clock: tf.FixedClock, moments: list[datetime]) -> None:
    """Call the SLA scheduler at each of `moments`, as the host's scheduler would; say what fired."""
    for moment in moments:
        clock.set(moment)
        run = sla.apply_due()
        fired = [fired_text(f.escalation) for f in run.fired]
        print(f"{show(moment)}: fired {fired or 'nothing'}")


def resolution_at(
    sla: SlaService, actor: tf.Actor, task_id: tf.TaskId, moment: datetime
) -> TargetState:
    """Return where the task's resolution target stood at `moment`."""
    state = sla.state(actor, task_id, moment)
    assert state is not None
    return state[Target.RESOLUTION]


def main() -> None:
    """Tell the story step by step."""
    registry = tf.Registry([KIND])
    clock = tf.FixedClock(at(4, 16))  # Friday 16:00
    notifier = tf.RecordingNotifier()
    service = tf.TaskService(
        registry=registry,
        repository=tf.InMemoryRepository(registry=registry),
        notifier=notifier,
        clock=clock,
        ids=tf.SequentialIds(),
    )
    crm = CrmTasks(service, accounts=InMemoryAccounts([ACME]))
    sla = SlaService(service, {"crm_task": SLA})

    print("== Friday 16:00: the customer opens a task ==")
    data = CrmTask(regarding=Regarding.account("acme"), notice_on_complete=True)
    draft = tf.NewTask("Invoices do not print", "desk", data, watchers=[WATCHER])
    task = crm.open(CUSTOMER, draft).task
    print(f"{task.number}: assignees {[str(u) for u in task.assignees_of('desk')]}")
    print(f"  start {task.data.start}, due (CS5) {show(task.due_at)}")

    print("\n== Friday 16:30: Ann asks for the printer model; waiting on the customer ==")
    clock.set(at(4, 16, 30))
    service.comment(ANN, task.id, "Which printer model is it?")
    service.act(ANN, task.id, "set_waiting_on_customer")
    resolution = resolution_at(sla, ANN, task.id, at(7, 12))
    print(
        f"over the weekend and the holiday: paused={resolution.paused}, used {resolution.used}, "
        f"remaining {resolution.remaining}"
    )

    print("\n== Tuesday 11:00: the customer answers; Ann works on it ==")
    clock.set(at(8, 11))
    service.comment(CUSTOMER, task.id, "It is a LaserJet 4.")
    service.act(ANN, task.id, "set_in_progress")
    service.edit(ANN, task.id, CrmEdit(percent_complete=40, actual_hours=Decimal("1.5")))
    print(f"resolution SLA due {show(resolution_at(sla, ANN, task.id, at(8, 11)).due)}")

    print("\n== The scheduler runs ==")
    run_scheduler(sla, clock, [at(8, 15), at(8, 17), at(9, 9, 30), at(9, 11)])
    for note in notifier.sent:
        if note.event == "sla_escalated":
            print(f"  told {note.recipient}: {note.message}")
    resolution = resolution_at(sla, ANN, task.id, at(9, 11))
    print(
        f"{'at ' + show(at(9, 11))}: warning={resolution.warning} ({show(resolution.warned_at)}), "
        f"breached={resolution.breached} ({show(resolution.breached_at)}), level {resolution.level}"
    )

    print("\n== Wednesday 12:00: task complete ==")
    clock.set(at(9, 12))
    before = len(notifier.sent)
    done = service.act(ANN, task.id, "complete").task
    print(
        f"{done.number} is {done.state}: {done.data.percent_complete} %, completed {show(done.data.completed_at)}"
    )
    for note in notifier.sent[before:]:
        print(f"  told {note.recipient}: {note.event}")
    print(f"next SLA event due: {sla.due(at(31, 12)) or 'none'}")


if __name__ == "__main__":
    main()
