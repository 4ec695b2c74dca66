"""Automation after commits: rules act as system actors, once per task per unit of work, to depth 10."""

import logging
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import taskflow as tf
from taskflow.automation import (
    AddTag,
    AssignTo,
    Automation,
    Condition,
    InMemoryDueTasks,
    Notify,
    On,
    OverdueTasks,
    PostComment,
    RemoveTag,
    Rule,
    SetField,
    TakeAction,
    Trigger,
    rule_actor,
)
from taskflow.kinds.document import DocumentRequest
from taskflow.kinds.ticket import SupportTicket

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CUSTOMER = tf.Actor("carl", "cust")
ANN = tf.Actor("ann", "acme")


@attrs.frozen
class Chore:
    """Data of a host's own kind: an internal chore."""

    area: str = "office"


CHORE_WORKFLOW = tf.Workflow(
    name="chore",
    initial="todo",
    states=(tf.State("todo", waiting_on=tf.Side.RECIPIENT), tf.State("done", final=True)),
    transitions=(
        tf.Transition("finish", "todo", "done", tf.Side.RECIPIENT),
        *tf.common_actions(),
        tf.Transition("system_note", tf.OPEN_STATES, None, tf.BOTH_SIDES, system_only=True),
    ),
)
CHORE = tf.TaskKind("chore", Chore, CHORE_WORKFLOW)


PEOPLE = Condition.eq("event.actor.system", False)  # not a rule's own change


def _service(repository=None):
    registry = tf.default_registry(CHORE)
    return tf.TaskService(
        registry=registry,
        repository=repository
        if repository is not None
        else tf.InMemoryRepository(registry=registry),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )


def _ticket(service, subject="Printer jam", **more):
    data = SupportTicket(name="Carl", email="carl@cust.example", description="It jams")
    return service.open(CUSTOMER, "support_ticket", tf.NewTask(subject, "acme", data, **more)).task


def _stored(service, task_id):
    return service.repository.get(task_id)


def test_a_rule_acts_as_its_system_actor_with_the_triggering_correlation_id():
    service = _service()
    Automation(
        service,
        [Rule("auto-assign", Trigger(On.OPENED), (AssignTo(("ann", "bob"), rotate=True),))],
        company="acme",
    )
    first, second = _ticket(service), _ticket(service)
    for task, user in ((first, "ann"), (second, "bob")):
        stored = _stored(service, task.id)
        opened, assigned = stored.history
        assert assigned.actor == rule_actor("auto-assign", "acme")
        assert str(assigned.actor) == "system:rule:auto-assign@acme"
        assert assigned.cause.correlation_id == opened.cause.correlation_id
        assert assigned.cause.event_id == f"{task.id}@1/opened"
        assert stored.assignees_of("acme") == (tf.UserRef("acme", user),)
    assert [t.number for t in service.inbox(tf.Actor("bob", "acme"))] == [second.number]


def test_rules_apply_to_every_kind_built_in_or_the_hosts_own():
    service = _service()
    Automation(service, [Rule("tag-all", Trigger(On.OPENED), (AddTag("seen"),))], company="acme")
    ticket = _ticket(service)
    chore = service.open(ANN, "chore", tf.NewTask("Water plants", "acme", Chore())).task
    request = service.open(
        ANN, "document_request", tf.NewTask("ISO", "supco", DocumentRequest("ISO"))
    ).task
    for task in (ticket, chore, request):
        assert "seen" in _stored(service, task.id).tags, task.kind


def test_a_rules_action_goes_through_the_same_checks_and_a_refusal_is_recorded(caplog):
    service = _service()
    automation = Automation(
        service,
        [
            Rule(
                "rename",
                Trigger(On.OPENED),
                (AddTag("first"), SetField("subject", "Renamed"), AddTag("never")),
            ),
            Rule("later", Trigger(On.OPENED), (AddTag("second"),), order=5),
        ],
        company="acme",
    )
    with caplog.at_level(logging.WARNING, logger="taskflow.automation"):
        task = _ticket(service)
    stored = _stored(service, task.id)
    # The ticket's business side may not edit the subject: the rule stops there, the next runs.
    assert stored.subject == "Printer jam"
    assert stored.tags == {"first", "second"}
    (warning,) = automation.warnings
    assert (warning.rule, warning.task_number, warning.action) == ("rename", task.number, "edit")
    assert "may not edit ['subject']" in warning.reason
    assert "rule 'rename' stopped on task CUST-TASK-1" in caplog.text


def test_a_system_only_action_is_taken_by_a_rule_and_a_bad_payload_is_refused():
    service = _service()
    automation = Automation(
        service,
        [
            Rule(
                "breach-now",
                Trigger(On.ACTION, "finish"),
                (TakeAction("comment", {"text": "Done: $number"}),),
            ),
            Rule("sla-note", Trigger(On.OPENED), (TakeAction("system_note"),)),
            Rule("broken", Trigger(On.FIELD_CHANGED, "tags"), (TakeAction("comment", {"txt": 1}),)),
        ],
        company="acme",
    )
    chore = service.open(ANN, "chore", tf.NewTask("Water plants", "acme", Chore())).task
    assert _stored(service, chore.id).history[-1].action == "system_note"
    assert tf.Actor("ann", "acme").is_system is False
    with pytest.raises(tf.PermissionDenied):
        service.act(ANN, chore.id, "system_note")
    service.edit(ANN, chore.id, tf.Edit(tags={"x"}))
    service.act(ANN, chore.id, "finish")
    assert _stored(service, chore.id).comments[-1].text == "Done: $number"  # payloads are data
    (warning,) = automation.warnings
    assert warning.rule == "broken"
    assert "does not make a AddComment" in warning.reason


def test_a_rule_fires_once_per_task_per_triggering_unit_of_work():
    service = _service()
    Automation(
        service,
        [Rule("count", Trigger(On.ANY), (PostComment("seen $event"),), PEOPLE)],
        company="acme",
    )
    with service.unit_of_work() as uow:
        task = uow.open(
            CUSTOMER,
            "support_ticket",
            tf.NewTask(
                "Printer", "acme", SupportTicket(name="C", email="c@cust.example", description="x")
            ),
        ).task
        uow.act(CUSTOMER, task.id, "comment", tf.AddComment("more"))
        uow.act(CUSTOMER, task.id, "comment", tf.AddComment("and more"))
    stored = _stored(service, task.id)
    assert [c.text for c in stored.comments if c.author.user.startswith("rule:")] == ["seen opened"]
    # A new request is a new triggering unit of work.
    service.comment(CUSTOMER, task.id, "again")
    assert [c.text for c in _stored(service, task.id).comments][-1] == "seen commented"


def test_a_notify_only_rule_also_fires_once_per_unit_of_work():
    service = _service()
    Automation(
        service,
        [Rule("tell", Trigger(On.ANY), (Notify("$number: $event", to={"requester"}),))],
        company="acme",
    )
    with service.unit_of_work() as uow:
        task = uow.open(
            ANN,
            "chore",
            tf.NewTask("Plants", "acme", Chore(), watchers=[tf.UserRef("acme", "lea")]),
        ).task
        uow.act(ANN, task.id, "comment", tf.AddComment("one"))
    told = [n for n in service.notifier.sent if n.event == "rule:tell"]
    assert [(n.recipient.user, n.message) for n in told] == [("ann", f"{task.number}: opened")]


def test_a_rule_pair_that_would_loop_stops_at_the_depth_limit_with_a_recorded_warning(caplog):
    service = _service()
    automation = Automation(
        service,
        [
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
        ],
        company="acme",
    )
    chore = service.open(ANN, "chore", tf.NewTask("Plants", "acme", Chore())).task
    with caplog.at_level(logging.WARNING, logger="taskflow.service"):
        service.edit(ANN, chore.id, tf.Edit(tags={"ping"}))
    stored = _stored(service, chore.id)
    by_rules = [e for e in stored.history if e.actor.is_system]
    assert max(e.cause.depth for e in by_rules) == tf.DEPTH_LIMIT
    assert {e.cause.correlation_id for e in by_rules} == {stored.history[1].cause.correlation_id}
    # Linear, not branching: the two edits of the last hop are the two events left unhandled.
    assert len(by_rules) == 2 * tf.DEPTH_LIMIT
    stopped = automation.stopped_chains()
    assert [d.task_version for d in stopped] == [stored.version - 1, stored.version]
    assert all(
        "reached the depth limit of 10" in d.reason and "'automation'" in d.reason for d in stopped
    )
    assert "depth limit" in caplog.text
    assert service.repository.pending() == []


def test_a_dry_run_says_which_rules_would_fire_and_what_they_would_change_saving_nothing():
    service = _service()
    automation = Automation(
        service,
        [
            Rule(
                "triage",
                Trigger(On.COMMENTED),
                (SetField("priority", "high"), AddTag("urgent"), Notify("!", to={"requester"})),
                Condition.contains("event.payload.text", "urgent"),
            ),
            Rule(
                "calm",
                Trigger(On.COMMENTED),
                (AddTag("calm"),),
                Condition.negate(Condition.contains("event.payload.text", "urgent")),
            ),
            Rule("refused", Trigger(On.COMMENTED), (SetField("subject", "x"),), order=9),
        ],
        company="acme",
    )
    task = _ticket(service)
    # Taken without the automation seeing it: a unit of work committed by hand, no delivery.
    uow = service.unit_of_work()
    event = uow.act(CUSTOMER, task.id, "comment", tf.AddComment("urgent please")).events[0]
    uow.commit()
    before = _stored(service, task.id)
    pending = len(service.repository.pending())
    firings = automation.dry_run(event)
    assert [f.rule for f in firings] == ["triage", "refused"]
    triage, refused = firings
    assert [
        (s.action, [(c.field, c.before, c.after) for c in s.changes]) for s in triage.steps[:2]
    ] == [
        ("edit", [("priority", tf.Priority.NORMAL, tf.Priority.HIGH)]),
        ("edit", [("tags", frozenset(), frozenset({"urgent"}))]),
    ]
    assert triage.steps[2].notified == (CUSTOMER.ref,)
    assert refused.steps == ()
    assert "may not edit ['subject']" in refused.refused
    assert _stored(service, task.id) == before
    assert len(service.repository.pending()) == pending
    assert automation.warnings == []


def test_time_rules_fire_on_due_tasks_once_per_instant():
    service = _service()
    due = InMemoryDueTasks()
    automation = Automation(
        service,
        [
            Rule(
                "chase",
                Trigger(On.TIME),
                (PostComment("Still open: $number", "public"),),
                Condition.eq("task.state", "submitted"),
            )
        ],
        company="acme",
        due=due,
    )
    first, second = _ticket(service), _ticket(service)
    due.schedule(second.id, START + timedelta(hours=2))
    due.schedule(first.id, START + timedelta(hours=1))
    assert automation.run_due(START) == ()
    fired = automation.run_due(START + timedelta(hours=3))
    assert [f.task_number for f in fired] == [first.number, second.number]
    assert automation.run_due(START + timedelta(hours=3)) == ()  # the same instant again
    entry = _stored(service, first.id).history[-1]
    assert entry.cause.correlation_id == f"time:{(START + timedelta(hours=3)).isoformat()}"
    due.cancel(first.id)
    assert due.due(START + timedelta(days=1)) == [second.id]
    with pytest.raises(tf.InvalidPayload, match="needs a due-time port"):
        Automation(service, [], company="acme", name="other").run_due()


def test_overdue_tasks_answer_the_due_time_question_from_due_dates():
    service = _service()
    automation = Automation(
        service,
        [Rule("overdue", Trigger(On.TIME), (AddTag("overdue"),))],
        company="acme",
        due=OverdueTasks(service.repository, kind="support_ticket"),
    )
    late = _ticket(service)
    service.edit(ANN, late.id, tf.Edit(due_at=START + timedelta(hours=1)))
    _ticket(service)  # no due date
    fired = automation.run_due(START + timedelta(hours=2))
    assert [f.task_id for f in fired] == [late.id]
    assert "overdue" in _stored(service, late.id).tags


def test_other_companies_internal_notes_and_tasks_fire_nothing():
    service = _service()
    Automation(service, [Rule("any", Trigger(On.ANY), (AddTag("seen"),))], company="acme")
    other = service.open(
        tf.Actor("zed", "zeta"), "chore", tf.NewTask("Theirs", "zeta", Chore())
    ).task
    assert _stored(service, other.id).tags == frozenset()
    ticket = _ticket(service)
    service.edit(ANN, ticket.id, tf.Edit(tags=set()))
    version = _stored(service, ticket.id).version
    service.comment(CUSTOMER, ticket.id, "note to self", tf.Visibility.INTERNAL)
    assert _stored(service, ticket.id).version == version + 1  # the rule did not react


def test_once_per_unit_of_work_holds_on_sqlite_where_it_is_read_from_history(tmp_path):
    registry = tf.default_registry(CHORE)
    repository = tf.SqliteRepository(tmp_path / "desk.db", registry)
    service = _service(repository)
    Automation(
        service,
        [Rule("count", Trigger(On.ANY), (PostComment("seen $event"),), PEOPLE)],
        company="acme",
    )
    with service.unit_of_work() as uow:
        task = uow.open(ANN, "chore", tf.NewTask("Plants", "acme", Chore())).task
        uow.act(ANN, task.id, "comment", tf.AddComment("one"))
    stored = repository.get(task.id)
    assert [c.text for c in stored.comments] == ["one", "seen opened"]
    repository.close()


# --- property: random rule sets over random events terminate, deterministically ----------------

_TAGS = ("a", "b", "c")
_ACTIONS = st.one_of(
    st.sampled_from(_TAGS).map(AddTag),
    st.sampled_from(_TAGS).map(RemoveTag),
    st.sampled_from(["low", "normal", "high"]).map(lambda p: SetField("priority", p)),
    st.just(PostComment("rule on $event")),
    st.just(AssignTo(("ann", "bob"), rotate=True)),
    st.just(Notify("$number", to={"assignees"})),
)
_TRIGGERS = st.sampled_from(
    [
        Trigger(On.ANY),
        Trigger(On.OPENED),
        Trigger(On.COMMENTED),
        Trigger(On.FIELD_CHANGED, "tags"),
        Trigger(On.FIELD_CHANGED, "priority"),
        Trigger(On.ACTION, "edit"),
    ]
)
_CONDITIONS = st.one_of(
    st.none(),
    st.sampled_from(_TAGS).map(lambda t: Condition.contains("task.tags", t)),
    st.sampled_from(_TAGS).map(lambda t: Condition.negate(Condition.contains("task.tags", t))),
    st.sampled_from(["low", "high"]).map(lambda p: Condition.eq("task.priority", p)),
)
_RULE_SETS = st.lists(
    st.tuples(
        _TRIGGERS, st.lists(_ACTIONS, min_size=1, max_size=3), _CONDITIONS, st.integers(-2, 2)
    ),
    max_size=5,
).map(
    lambda specs: [
        Rule(f"r{i}", trigger, tuple(actions), condition, order=order)
        for i, (trigger, actions, condition, order) in enumerate(specs)
    ]
)
_REQUESTS = st.lists(
    st.one_of(
        st.sampled_from(_TAGS).map(lambda t: ("tags", t)),
        st.sampled_from(["low", "high"]).map(lambda p: ("priority", p)),
        st.just(("comment", "hello")),
    ),
    max_size=3,
)


def _run(rules, requests):
    service = _service()
    Automation(service, rules, company="acme")
    chore = service.open(ANN, "chore", tf.NewTask("Plants", "acme", Chore())).task
    for what, value in requests:
        if what == "comment":
            service.comment(ANN, chore.id, value)
        elif what == "tags":
            service.edit(ANN, chore.id, tf.Edit(tags={value}))
        else:
            service.edit(ANN, chore.id, tf.Edit(priority=value))
    stored = service.repository.get(chore.id)
    return stored, service


@settings(max_examples=15)
@given(_RULE_SETS, _REQUESTS)
def test_random_rule_sets_over_random_events_terminate_and_give_the_same_result(rules, requests):
    first, service = _run(rules, requests)
    second, _ = _run(rules, requests)
    assert first == second
    assert service.repository.pending() == []  # every chain ended (or was stopped)
    for entry in first.history:
        assert entry.cause.depth <= tf.DEPTH_LIMIT
    # Each rule acted at most once per task per triggering unit of work.
    seen = set()
    for entry in first.history:
        if entry.actor.is_system:
            key = (entry.actor, entry.cause.event_id)
            assert key not in seen or entry.cause.event_id is not None
            seen.add(key)
