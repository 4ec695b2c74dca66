"""Rules as data: triggers, conditions, actions, their checks, matching order and storage."""

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

import taskflow as tf
from taskflow.automation import (
    SLA_BREACH,
    SLA_WARNING,
    AddTag,
    AddWatcher,
    AssignTo,
    Condition,
    Notify,
    On,
    PostComment,
    RemoveTag,
    Rule,
    RuleBook,
    SetField,
    TakeAction,
    Trigger,
    dump_rules,
    load_rules,
)
from taskflow.automation.rules import plan, render, resolve_path
from taskflow.kinds.ticket import SupportTicket, ticket_kind
from taskflow.sla import ESCALATE, EscalationLevel, SlaPolicies, SlaPolicy, due_escalations

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CUSTOMER = tf.Actor("carl", "cust")


def _ticket(**more):
    draft = tf.NewTask(
        "Printer jam",
        "acme",
        SupportTicket(name="Carl", email="carl@cust.example", description="It jams"),
        **more,
    )
    return tf.open_task(
        tf.default_registry()["support_ticket"].workflow,
        "support_ticket",
        draft,
        CUSTOMER,
        AT,
        tf.TaskId("t-1"),
        "CUST-TASK-7",
    )


def _opened():
    outcome = _ticket(tags={"printer"}, priority="low")
    return outcome.task, outcome.events[0]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Trigger(On.ACTION), "needs the name of the action"),
        (lambda: Trigger(On.OPENED, "x"), "takes no name"),
        (lambda: Trigger("soon"), "Trigger.on must be one of"),
        (lambda: Condition("nearly", "task.state", "x"), "Condition.op 'nearly' is unknown"),
        (lambda: Condition.eq("task.colour", "red"), "is not a path this rule can read"),
        (lambda: Condition.eq("task.state.name", "x"), "has no parts to name"),
        (lambda: Condition("in", "task.state", "open"), "needs a list value"),
        (lambda: Condition("matches", "task.subject", "("), "is no regular expression"),
        (lambda: Condition("not"), "needs exactly one term"),
        (lambda: Condition("eq", "task.state", {"a": 1}), "must be text, a number"),
        (lambda: Condition("changed", "priority"), "names a task field"),
        (lambda: SetField("state", "done"), "cannot be set by a rule"),
        (lambda: SetField("priority", "urgent"), "priority must be one of"),
        (lambda: SetField("due_at", "tomorrow"), "ISO 8601"),
        (lambda: PostComment("Hello $customer"), "names $customer"),
        (lambda: PostComment("100$"), "not a valid template"),
        (lambda: Notify("x"), "needs recipients"),
        (lambda: Notify("x", to={"boss"}), "Notify.to must name recipients"),
        (lambda: AssignTo(()), "at least one user"),
        (lambda: Rule("bad name", Trigger(On.OPENED), (AddTag("x"),)), "Rule.name must be"),
        (lambda: Rule("r", Trigger(On.OPENED), ()), "Rule.actions must be one or more"),
        (lambda: Rule("r", "opened", (AddTag("x"),)), "Rule.trigger must be a Trigger"),
        (lambda: RuleBook([Rule("r", Trigger(On.ANY), (AddTag("x"),))] * 2), "twice: ['r']"),
    ],
)
def test_bad_rule_data_is_refused_when_built_naming_what_is_allowed(build, message):
    with pytest.raises(tf.InvalidWorkflow, match=re.escape(message)):
        build()


def test_paths_read_task_fields_kind_data_event_payload_and_what_changed():
    task, event = _opened()
    assert resolve_path("task.priority", task, event) == "low"
    assert resolve_path("task.tags", task, event) == ["printer"]
    assert resolve_path("task.requester", task, event) == "carl@cust"
    assert resolve_path("task.requester.company", task, event) == "cust"
    assert resolve_path("task.data.email", task, event) == "carl@cust.example"
    assert resolve_path("task.data.nothing", task, event) is None
    assert resolve_path("event.action", task, event) == "open"
    assert resolve_path("event.actor.company", task, event) == "cust"
    assert resolve_path("event.actor.system", task, event) is False
    assert resolve_path("event.payload.subject", task, event) == "Printer jam"
    assert resolve_path("event.depth", task, event) == 0
    assert resolve_path("task.comments", task, event) == 0
    commented = tf.apply(
        tf.default_registry()["support_ticket"].workflow,
        task,
        "comment",
        tf.Actor("ann", "acme"),
        AT,
        tf.AddComment("On it"),
    )
    assert resolve_path("event.changed", commented.task, commented.events[0]) == [
        "assignees",  # whoever answers for a company with no assignee becomes its assignee
        "comments",
        "ball",
    ]


def test_conditions_compare_by_type_and_combine_with_all_any_not():
    task, event = _opened()
    book = RuleBook([])

    def holds(condition):
        return book.holds(Rule("r", Trigger(On.ANY), (AddTag("x"),), condition), task, event)

    assert holds(Condition.eq("task.priority", tf.Priority.LOW))
    assert not holds(Condition.eq("task.version", "1"))  # text is not a number
    assert not holds(Condition.eq("event.actor.system", 0))  # a number is not false
    assert holds(Condition.one_of("task.state", ["submitted", "reopened"]))
    assert holds(Condition("not_in", "task.state", ["resolved"]))
    assert holds(Condition.contains("task.tags", "printer"))
    assert holds(Condition.contains("task.subject", "jam"))
    assert holds(Condition("not_contains", "task.tags", "vip"))
    assert holds(Condition("gt", "task.created_at", "2026-03-01T00:00:00+00:00"))
    assert not holds(Condition("lt", "task.created_at", "not a time"))
    assert holds(Condition("le", "task.version", 1))
    assert not holds(Condition("gt", "task.version", 1))
    assert holds(Condition("ge", "task.subject", "P"))
    assert holds(Condition("exists", "task.tags"))
    assert holds(Condition("exists", "task.due_at", False))
    assert holds(Condition("matches", "task.subject", r"^Printer\b"))
    assert not holds(Condition.changed("task.priority"))
    assert holds(
        Condition.all_of(
            Condition.eq("task.kind", "support_ticket"), Condition.ne("task.priority", "high")
        )
    )
    assert holds(
        Condition.any_of(
            Condition.eq("task.priority", "high"), Condition.eq("event.action", "open")
        )
    )
    assert holds(Condition.negate(Condition.eq("task.priority", "high")))


_LEAVES = st.sampled_from(
    [
        Condition.eq("task.priority", "low"),
        Condition.eq("task.priority", "high"),
        Condition.contains("task.tags", "printer"),
        Condition.eq("event.action", "comment"),
        Condition("exists", "task.due_at"),
    ]
)
_CONDITIONS = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda ts: Condition("all", terms=ts)),
        st.lists(inner, min_size=1, max_size=3).map(lambda ts: Condition("any", terms=ts)),
        inner.map(Condition.negate),
    ),
    max_leaves=8,
)


def _reference(condition, task, event):
    """The meaning of a condition tree, written plainly."""
    if condition.op == "all":
        return all(_reference(t, task, event) for t in condition.terms)
    if condition.op == "any":
        return any(_reference(t, task, event) for t in condition.terms)
    if condition.op == "not":
        return not _reference(condition.terms[0], task, event)
    value = resolve_path(condition.field, task, event)
    if condition.op == "eq":
        return value == condition.value
    if condition.op == "contains":
        return condition.value in value
    return value is not None


@given(_CONDITIONS)
def test_a_compiled_condition_means_what_its_tree_says(condition):
    task, event = _opened()
    rule = Rule("r", Trigger(On.ANY), (AddTag("x"),), condition)
    assert RuleBook([rule]).holds(rule, task, event) == _reference(condition, task, event)
    # NOT of a condition always holds exactly when the condition does not.
    negated = Rule("n", Trigger(On.ANY), (AddTag("x"),), Condition.negate(condition))
    assert RuleBook([negated]).holds(negated, task, event) != _reference(condition, task, event)


def test_rules_fire_in_order_then_name_and_only_for_their_trigger():
    task, event = _opened()
    tag = (AddTag("x"),)
    book = RuleBook(
        [
            Rule("b", Trigger(On.OPENED), tag),
            Rule("a", Trigger(On.OPENED), tag),
            Rule("first", Trigger(On.ANY), tag, order=-1),
            Rule("off", Trigger(On.OPENED), tag, enabled=False),
            Rule("on-comment", Trigger(On.COMMENTED), tag),
            Rule("entered", Trigger(On.STATE_ENTERED, "submitted"), tag),
            Rule("opened-action", Trigger(On.ACTION, "open"), tag),
            Rule("vip", Trigger(On.OPENED), tag, Condition.contains("task.tags", "vip")),
            Rule("timer", Trigger(On.TIME), tag),
        ]
    )
    names = [r.name for r in book.matching(event, task)]
    assert names == ["first", "a", "b", "entered", "opened-action"]
    assert [r.name for r in book.timed] == ["timer"]
    assert book["a"].name == "a"
    with pytest.raises(tf.InvalidWorkflow, match="no rule named 'zz'"):
        book["zz"]


def test_sla_rules_fire_from_the_sla_engines_recorded_escalations_by_stage():
    levels = (EscalationLevel("warn", 50), EscalationLevel("late", 100))
    policies = SlaPolicies(
        (SlaPolicy("p", first_response=timedelta(hours=2), ladder=levels, warning_events=False),),
        default="p",
    )
    workflow = ticket_kind(policies).workflow
    task = _ticket().task
    scheduler = tf.Actor.system("sla", "acme")
    warn, late = due_escalations(task, policies.policy("p"), AT + timedelta(hours=3))
    assert (warn.breach, late.breach) == (False, True)
    warned = tf.apply(workflow, task, ESCALATE, scheduler, AT + timedelta(hours=3), warn)
    breached = tf.apply(workflow, warned.task, ESCALATE, scheduler, AT + timedelta(hours=3), late)
    book = RuleBook(
        [
            Rule("escalate", Trigger(On.SLA_BREACH), (AddTag("escalated"),)),
            Rule("warn", Trigger(On.SLA_WARNING), (AddTag("warned"),)),
        ]
    )
    assert [r.name for r in book.matching(warned.events[0], warned.task)] == ["warn"]
    assert [r.name for r in book.matching(breached.events[0], breached.task)] == ["escalate"]
    assert tf.allowed_actions(workflow, task, tf.Actor("ann", "acme")).count(ESCALATE) == 0
    assert (On.SLA_WARNING.value, On.SLA_BREACH.value) == (SLA_WARNING, SLA_BREACH)


def test_actions_plan_the_workflow_action_they_become_and_nothing_when_already_so():
    task, event = _opened()
    rule = Rule("r", Trigger(On.ANY), (AddTag("x"),))
    step = plan(rule, SetField("priority", "high"), task, event, "acme")
    assert (step.action, step.payload) == ("edit", tf.Edit(priority=tf.Priority.HIGH))
    assert plan(rule, SetField("priority", "low"), task, event, "acme") is None
    assert plan(rule, AddTag("printer"), task, event, "acme") is None
    assert plan(rule, RemoveTag("printer"), task, event, "acme").payload == tf.Edit(
        tags=frozenset()
    )
    assert plan(rule, RemoveTag("nope"), task, event, "acme") is None
    watcher = tf.UserRef("acme", "lea")
    assert plan(rule, AddWatcher(watcher), task, event, "acme").payload == tf.Edit(
        watchers=(watcher,)
    )
    due = plan(rule, SetField("due_at", "2026-03-03T09:00:00+00:00"), task, event, "acme")
    assert due.payload.due_at == datetime(2026, 3, 3, 9, tzinfo=UTC)
    # Task number 7 of three users: the 7th in turn is the first again.
    rotated = plan(rule, AssignTo(("ann", "bob", "cy"), rotate=True), task, event, "acme")
    assert rotated.payload == tf.Assign((tf.UserRef("acme", "ann"),))
    comment = plan(rule, PostComment("$number is $state ($rule)", "public"), task, event, "acme")
    assert comment.payload == tf.AddComment("CUST-TASK-7 is submitted (r)", tf.Visibility.PUBLIC)
    assert plan(rule, TakeAction("resolve"), task, event, "acme").action == "resolve"
    assert (
        render("$$5 for $subject by $actor", task, event, "r") == "$5 for Printer jam by carl@cust"
    )


_RULES = [
    Rule(
        "auto-assign",
        Trigger(On.OPENED),
        (AssignTo(("ann", "bob"), rotate=True), PostComment("Got it: $number", "public")),
        Condition.all_of(
            Condition.one_of("task.kind", ["support_ticket", "complaint_ticket"]),
            Condition.negate(Condition.contains("task.tags", "spam")),
        ),
        order=1,
        description="Share new tickets out",
    ),
    Rule(
        "escalate",
        Trigger(On.SLA_BREACH),
        (
            SetField("priority", "high"),
            AddWatcher(tf.UserRef("acme", "lead")),
            RemoveTag("calm"),
            TakeAction("reopen", {"reason": "breach"}),
            Notify(
                "SLA breach on $number",
                to={"assignees", "team"},
                users=(tf.UserRef("acme", "boss"),),
            ),
        ),
    ),
    Rule(
        "later",
        Trigger(On.TIME),
        (AddTag("overdue"),),
        Condition("gt", "task.due_at", "2026-01-01T00:00:00+00:00"),
    ),
]


def test_rules_round_trip_through_json_ready_data_with_the_converter():
    document = dump_rules(_RULES)
    assert document["schema"] == 1
    actions = document["rules"][1]["actions"]
    assert [a["type"] for a in actions] == [
        "set_field",
        "add_watcher",
        "remove_tag",
        "action",
        "notify",
    ]
    assert load_rules(json.loads(json.dumps(document))) == tuple(_RULES)
    assert load_rules(document)[1].actions[3].payload == {"reason": "breach"}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"schema": 2, "rules": []}, "schema 2 is not one"),
        ({"schema": 1}, "a list of 'rules'"),
        (
            {
                "schema": 1,
                "rules": [
                    {
                        "name": "x",
                        "trigger": {"on": "opened", "name": None},
                        "actions": [{"type": "explode"}],
                    }
                ],
            },
            "rule action type 'explode' is unknown",
        ),
        (
            {
                "schema": 1,
                "rules": [
                    {
                        "name": "x",
                        "trigger": {"on": "opened", "name": None},
                        "actions": [{"type": "add_tag", "tag": ""}],
                    }
                ],
            },
            r"rules\[0\] 'x'",
        ),
        ({"schema": 1, "rules": [{"name": "x"}]}, r"rules\[0\] 'x' cannot be read"),
    ],
)
def test_a_bad_rules_document_is_refused_naming_the_rule(document, message):
    with pytest.raises(tf.DeserializationError, match=message):
        load_rules(document)
