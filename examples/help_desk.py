"""A help desk (seed 004): intake through several channels, automation rules, a digest.

An email opens a ticket, its reply threads onto it, a redelivery and an auto-reply create
nothing; a web form and a CSV import (one bad row) open more tickets. Rules assign new tickets
in turn, escalate an SLA breach, and a rule pair that would loop is stopped at the depth
limit. A supervisor who chose hourly digests gets one message for the hour. Last, the
customer answers his own earlier reply after the ticket was resolved: the reply threads by
that reply's Message-ID and reopens the ticket.

The desk's tickets are SLA-governed (`taskflow.sla`, a 4-hour first response around the
clock): the host's scheduler calls `SlaService.apply_due()`, which finds the tickets whose
next SLA event is due through the `sla_next_event` index and fires the breach level as the
system actor; that recorded escalation fires the `On.SLA_BREACH` rule.

Run: .venv/bin/python examples/help_desk.py
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import taskflow as tf
from taskflow.application.sla import SlaService
from taskflow.automation import (
    AddTag,
    AssignTo,
    Automation,
    Condition,
    On,
    PostComment,
    RemoveTag,
    Rule,
    SetField,
    Trigger,
)
from taskflow.domain.intake import INTAKE_INDEXED
from taskflow.intake import (
    SUPPORT_FORM,
    ColumnMapping,
    InMemoryContacts,
    InMemoryFileStorage,
    Intake,
    IntakeResult,
)
from taskflow.kinds.ticket import SUPPORT_TICKET, SupportTicket
from taskflow.sla import EscalationLevel, SlaPolicies, SlaPolicy, sla_governed

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DESK = "acme"
ANN, LEAD = tf.Actor("ann", DESK), tf.UserRef(DESK, "lead")

# The desk's SLA: a first answer within 4 hours, around the clock; the lead hears of a breach.
DESK_SLA = SlaPolicies(
    (
        SlaPolicy(
            "desk",
            first_response=timedelta(hours=4),
            ladder=(EscalationLevel("breach", 100, notify_assignees=False, notify=(LEAD,)),),
        ),
    ),
    default="desk",
)
# The desk's ticket: the support ticket, SLA-governed (escalation action, next-event index).
DESK_TICKET = sla_governed(
    tf.TaskKind(
        "desk_ticket",
        SupportTicket,
        SUPPORT_TICKET.workflow,
        "A support ticket of the help desk",
        indexed=INTAKE_INDEXED,
    ),
    DESK_SLA,
    sides={tf.Side.RECIPIENT},
)

RULES = [
    Rule(
        "auto-assign",
        Trigger(On.OPENED),
        (
            AssignTo(("ann", "bob"), rotate=True),
            PostComment("Thanks, we are on $number.", "public"),
        ),
    ),
    Rule(
        "escalate-breach",
        Trigger(On.SLA_BREACH),
        (
            SetField("priority", "high"),
            AddTag("escalated"),
            PostComment("SLA breached on $number: escalated."),
        ),
    ),
    # A pair that would loop forever: each undoes the other's tag.
    Rule(
        "ping",
        Trigger(On.FIELD_CHANGED, "tags"),
        (AddTag("ping"), RemoveTag("pong")),
        Condition.contains("task.tags", "pong"),
    ),
    Rule(
        "pong",
        Trigger(On.FIELD_CHANGED, "tags"),
        (AddTag("pong"), RemoveTag("ping")),
        Condition.contains("task.tags", "ping"),
    ),
]


def _email(subject: str, body: str, msgid: str, **headers: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Carl Customer <carl@cust.example>"
    message["To"] = "help@acme.example"
    message["Subject"] = subject
    message["Message-ID"] = msgid
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message.as_bytes()


CSV = """id,title,email,name,details
R1,Invoice missing,dora@cust.example,Dora,Where is March's invoice?
R2,,erik@cust.example,Erik,(no title)
R3,Password reset,fay@cust.example,Fay,Locked out
"""


def main() -> None:
    registry = tf.default_registry(DESK_TICKET)
    prefs = tf.InMemoryPreferences()
    prefs.digest(LEAD, timedelta(hours=1))
    entries = [*tf.SEED_DEFAULTS, tf.MatrixEntry("desk_ticket", "opened", {"team"})]
    service = tf.TaskService(
        registry=registry,
        repository=tf.InMemoryRepository(registry=registry),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
        policy=tf.NotificationMatrix(entries, preferences=prefs, team=lambda task: [LEAD]),
    )
    automation = Automation(service, RULES, company=DESK)
    contacts = InMemoryContacts(default_company="customers")
    intake = Intake(
        service,
        kind="desk_ticket",
        recipient=DESK,
        contacts=contacts,
        storage=InMemoryFileStorage(),
    )

    def show(label: str, result: IntakeResult) -> None:
        where = f" -> {result.task_number}" if result.task_number else ""
        why = f" ({result.reason})" if result.reason else ""
        print(f"{label}: {result.disposition}{where}{why}")

    print("== Intake ==")
    first = intake.receive_email(_email("Printer jam", "It jams on page 2.", "<m1@cust.example>"))
    show("email", first)
    show(
        "reply",
        intake.receive_email(
            _email(
                "Re: Printer jam",
                "Still jamming.",
                "<m2@cust.example>",
                In_Reply_To="<m1@cust.example>",
            )
        ),
    )
    show(
        "redelivered reply",
        intake.receive_email(
            _email(
                "Re: Printer jam",
                "Still jamming.",
                "<m2@cust.example>",
                In_Reply_To="<m1@cust.example>",
            )
        ),
    )
    show(
        "auto-reply",
        intake.receive_email(
            _email(
                "Out of office", "Back Monday.", "<m3@cust.example>", Auto_Submitted="auto-replied"
            )
        ),
    )
    form = {
        "name": "Gus",
        "email": "gus@cust.example",
        "subject": "Screen flickers",
        "description": "Since Monday",
    }
    show("web form", intake.submit_form(SUPPORT_FORM, form, submission_id="form-1"))
    report = intake.import_csv(
        CSV,
        ColumnMapping(
            subject="title", sender="email", body="details", sender_name="name", message_id="id"
        ),
    )
    for line, result in report.results:
        show(f"csv line {line}", result)
    for error in report.errors:
        print(f"csv refused: {error} ({', '.join(error.__notes__)})")
    show(
        "csv again",
        intake.import_csv(
            CSV, ColumnMapping(subject="title", sender="email", message_id="id")
        ).results[0][1],
    )

    print("\n== Auto-assign ==")
    for task in service.repository.query(tf.TaskQuery(kind="desk_ticket")):
        stored = service.repository.get(task.id)
        by = stored.history[1]
        print(
            f"{stored.number} '{stored.subject}': assignees {[str(u) for u in stored.assignees_of(DESK)]} by {by.actor}"
        )

    print("\n== SLA breach (the SLA engine, called by the host's scheduler) ==")
    service.clock.set(START + timedelta(hours=5))
    run = SlaService(service, {"desk_ticket": DESK_SLA}).apply_due()
    print(
        f"SLA events fired (each target warns at 80 %, then breaches): {[(service.repository.get(f.task_id).number, f.escalation.level) for f in run.fired]}"
    )
    breached = service.repository.get(first.task_id)
    print(f"{breached.number}: priority {breached.priority}, tags {sorted(breached.tags)}")
    print(
        f"  last entry: {breached.history[-1].action} by {breached.history[-1].actor}: {breached.comments[-1].text}"
    )

    print("\n== A rule pair that would loop ==")
    service.edit(ANN, first.task_id, tf.Edit(tags={"ping"}))
    looped = service.repository.get(first.task_id)
    hops = [e.cause.depth for e in looped.history if e.actor.user in ("rule:ping", "rule:pong")]
    print(
        f"rule hops taken: {len(hops)}, deepest {max(hops)}; stopped chains: {len(automation.stopped_chains())}"
    )
    print(f"  warning: {automation.stopped_chains()[0].reason}")

    print("\n== Digest ==")
    print(f"digests sent after the 09:00-10:00 period: {tf.deliver_digests(service)}")
    digest = service.notifier.for_user(LEAD)[-1]
    print(digest.message)

    print("\n== A reply to a resolved ticket ==")
    service.act(ANN, first.task_id, "resolve")
    resolved = service.repository.get(first.task_id)
    print(f"{resolved.number} resolved by {ANN}: state {resolved.state}")
    # It answers Carl's own earlier reply (m2), not the opening email, with no References.
    late = intake.receive_email(
        _email(
            "Re: Printer jam",
            "It jams again.",
            "<m4@cust.example>",
            In_Reply_To="<m2@cust.example>",
        )
    )
    show("reply to the resolved ticket", late)
    reopened = service.repository.get(first.task_id)
    print(
        f"{reopened.number}: state {reopened.state}, reason '{reopened.data.reopen_reason}', "
        f"last comment '{reopened.comments[-1].text}'"
    )


if __name__ == "__main__":
    main()
