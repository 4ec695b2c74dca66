"""Help-desk benchmark: automation rules per second and emails parsed and threaded per second.

Part 1 evaluates 100 rules over many events (default 100,000) with `RuleBook.matching` (rules
indexed by trigger, conditions compiled), against a hand-written baseline that checks every
rule's trigger and condition with plain `if`s, in the same run; both must find the same rules.
Part 2 takes emails in through `Intake` (parse with the standard `email` package, dedupe,
thread, open or append, commit) against a floor that only parses them with `email` and
threads by a dict, in the same run. The sides run interleaved in every round (`--repeat`),
each side's best round counts (`_runner`).

Run: .venv/bin/python benchmarks/bench_desk.py [--events N] [--rules N] [--emails N] [--repeat N]
"""

from __future__ import annotations

import argparse
import email
import email.policy
import platform
import random
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import _runner

import taskflow as tf
from taskflow.automation import AddTag, Condition, On, Rule, RuleBook, Trigger
from taskflow.intake import InMemoryContacts, Intake
from taskflow.kinds.ticket import SupportTicket

DEFAULT_EVENTS = 100_000
DEFAULT_RULES = 100
DEFAULT_EMAILS = 2_000
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_FIELDS = ("priority", "tags", "category", "due_at", "watchers")
_ACTIONS = ("comment", "edit", "assign", "resolve", "reopen")
_TAGS = ("vip", "printer", "billing", "spam")


def _rules(count: int, rnd: random.Random) -> list[tuple[Rule, tuple[Any, ...]]]:
    """Return rules and, for the baseline, the same rule as a plain tuple."""
    out = []
    for i in range(count):
        pick = rnd.randrange(5)
        if pick == 0:
            trigger, plain_trigger = Trigger(On.ANY), ("any", None)
        elif pick == 1:
            name = rnd.choice(_FIELDS)
            trigger, plain_trigger = Trigger(On.FIELD_CHANGED, name), ("field", name)
        elif pick == 2:
            name = rnd.choice(_ACTIONS)
            trigger, plain_trigger = Trigger(On.ACTION, name), ("action", name)
        elif pick == 3:
            trigger, plain_trigger = Trigger(On.COMMENTED), ("action", "comment")
        else:
            trigger, plain_trigger = Trigger(On.STATE_ENTERED, "resolved"), ("state", "resolved")
        tag = rnd.choice(_TAGS)
        priority = rnd.choice(("high", "normal", "low"))
        condition = Condition.all_of(
            Condition.contains("task.tags", tag), Condition.ne("task.priority", priority)
        )
        out.append(
            (Rule(f"r{i:03}", trigger, (AddTag("x"),), condition), (*plain_trigger, tag, priority))
        )
    return out


def _events(rnd: random.Random) -> list[tuple[tf.Task, tf.DomainEvent, tuple[str, ...]]]:
    workflow = tf.default_registry()["support_ticket"].workflow
    carl, ann = tf.Actor("carl", "cust"), tf.Actor("ann", "acme")
    pool = []
    for i in range(50):
        data = SupportTicket(name="C", email="c@cust.example", description="x")
        tags = set(rnd.sample(_TAGS, rnd.randrange(3)))
        outcome = tf.open_task(
            workflow,
            "support_ticket",
            tf.NewTask("S", "acme", data, tags=tags),
            carl,
            START,
            tf.TaskId(f"t{i}"),
            f"CUST-TASK-{i}",
        )
        steps = [
            ("comment", carl, tf.AddComment("hello")),
            ("edit", ann, tf.Edit(priority=rnd.choice(list(tf.Priority)))),
            ("edit", ann, tf.Edit(tags=tags | {"printer"})),
            ("resolve", ann, None),
        ]
        task = outcome.task
        pool.append((task, outcome.events[0], ()))
        for action, actor, payload in steps:
            outcome = tf.apply(workflow, task, action, actor, START, payload)
            task = outcome.task
            pool.append((task, outcome.events[0], task.history[-1].changed))
    return pool


def _baseline(
    plain: list[tuple[Rule, tuple[Any, ...]]],
    task: tf.Task,
    event: tf.DomainEvent,
    changed: tuple[str, ...],
) -> list[str]:
    """Check every rule with plain ifs: the floor the rule book is measured against."""
    found = []
    tags, priority = task.tags, task.priority.value
    for rule, (on, name, tag, not_priority) in plain:
        if on == "action":
            hit = event.action == name
        elif on == "field":
            hit = name in changed
        elif on == "state":
            hit = event.to_state == name and event.from_state != name
        else:
            hit = True
        if hit and tag in tags and priority != not_priority:
            found.append(rule.name)
    return found


def bench_rules(events: int, rules: int, repeat: int = 1) -> tuple[float, float]:
    """Return rule evaluations per second of `RuleBook.matching` and of the hand-written ifs."""
    rnd = random.Random(14)
    spec = _rules(rules, rnd)
    book = RuleBook(r for r, _ in spec)
    ordered = sorted(spec, key=lambda s: s[0].name)
    pool = _events(rnd)
    sample = [pool[i % len(pool)] for i in range(events)]
    for task, event, changed in pool:  # both must agree before they are timed
        assert [r.name for r in book.matching(event, task, changed)] == _baseline(
            ordered, task, event, changed
        )

    def matching() -> None:
        for task, event, changed in sample:
            book.matching(event, task, changed)

    def baseline() -> None:
        for task, event, changed in sample:
            _baseline(ordered, task, event, changed)

    best = _runner.best_times({"rules": lambda: matching, "baseline": lambda: baseline}, repeat)
    work = events * rules
    return _runner.per_second(work, best["rules"]), _runner.per_second(work, best["baseline"])


def _mails(count: int) -> list[bytes]:
    out = []
    for i in range(count):
        message = EmailMessage()
        message["From"] = f"User {i % 50} <u{i % 50}@cust.example>"
        message["Subject"] = f"Re: Question {i - 1}" if i % 2 else f"Question {i}"
        message["Message-ID"] = f"<m{i}@cust.example>"
        if i % 2:
            message["In-Reply-To"] = f"<m{i - 1}@cust.example>"
        message.set_content(f"Body of message {i}\n" * 5)
        out.append(message.as_bytes())
    return out


def bench_emails(count: int, repeat: int = 1) -> tuple[float, float]:
    """Return emails per second through `Intake` and through the bare parse-and-dict floor."""
    mails = _mails(count)
    best = _runner.best_times(
        {"intake": lambda: _intake_job(mails), "floor": lambda: lambda: _floor_job(mails)}, repeat
    )
    return _runner.per_second(count, best["intake"]), _runner.per_second(count, best["floor"])


def _intake_job(mails: list[bytes]) -> Callable[[], None]:
    """Return the timed intake of `mails` on a fresh service (prepared untimed)."""
    registry = tf.default_registry()
    service = tf.TaskService(
        registry=registry,
        repository=tf.InMemoryRepository(registry=registry),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )
    intake = Intake(
        service,
        kind="support_ticket",
        recipient="acme",
        contacts=InMemoryContacts(default_company="customers"),
    )

    def job() -> None:
        for raw in mails:
            intake.receive_email(raw)
        assert len(service.repository) == (len(mails) + 1) // 2

    return job


def _floor_job(mails: list[bytes]) -> dict[str, str]:
    """Parse `mails` with the standard `email` package and thread them by a dict: the floor."""
    threads: dict[str, str] = {}
    for raw in mails:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        body = msg.get_body(("plain",))
        _ = body.get_content() if body is not None else ""
        parent = str(msg.get("In-Reply-To", "")).strip("<>")
        mid = str(msg["Message-ID"]).strip("<>")
        threads[mid] = threads.get(parent, mid)
    return threads


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--events", type=int, default=DEFAULT_EVENTS, help=f"events (default {DEFAULT_EVENTS:,})"
    )
    parser.add_argument(
        "--rules", type=int, default=DEFAULT_RULES, help=f"rules (default {DEFAULT_RULES})"
    )
    parser.add_argument(
        "--emails", type=int, default=DEFAULT_EMAILS, help=f"emails (default {DEFAULT_EMAILS:,})"
    )
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the best counts")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    print("taskflow help-desk benchmark, automation rules and email intake")
    print(f"Python {platform.python_version()} on {platform.machine()}")
    rules, floor = bench_rules(args.events, args.rules, args.repeat)
    print(f"rules: {args.rules} rules x {args.events:,} events")
    print(f"  RuleBook.matching: {rules:,.0f} rule evaluations/s")
    print(f"  hand-written ifs:  {floor:,.0f} rule evaluations/s")
    print(f"  ratio: {rules / floor:.2f}x the baseline")
    mails, parse_floor = bench_emails(args.emails, args.repeat)
    print(f"emails: {args.emails:,} (half of them replies)")
    print(f"  Intake.receive_email: {mails:,.0f} emails/s parsed, threaded and committed")
    print(f"  email.message_from_bytes + dict: {parse_floor:,.0f} emails/s")
    print(f"  ratio: {mails / parse_floor:.2f}x the baseline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
