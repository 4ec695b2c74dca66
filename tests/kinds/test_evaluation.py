"""Evaluations (SP4): validated results, acknowledged by the supplier; the received-evaluations page."""

import json
import math
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings

import taskflow as tf
from taskflow import (
    ActionNotAllowed,
    Actor,
    InvalidPayload,
    NewTask,
    PermissionDenied,
    Registry,
    TaskNotFound,
    UnknownKind,
)
from taskflow.diagrams import to_mermaid
from taskflow.domain.query import TaskQuery
from taskflow.kinds.document import DOCUMENT_REQUEST, DocumentRequest
from taskflow.kinds.evaluation import EVALUATION, EVALUATION_WORKFLOW, Criterion, Evaluation
from taskflow.serialization import Serializer
from taskflow.testing.stateful import workflow_machine
from taskflow.testing.strategies import builtin_strategies

START = datetime(2026, 5, 4, 8, 30, tzinfo=UTC)
BUYER = Actor("bea", "acme")
OTHER_BUYER = Actor("olga", "bigco")
SUPPLIER = Actor("sam", "supco")
COLLEAGUE = Actor("sue", "supco")
STRANGER = Actor("eve", "other")
REGISTRY = Registry([EVALUATION, DOCUMENT_REQUEST])
RESULTS = Evaluation(
    82,
    (
        Criterion("Quality", 90, "No defects in 2025"),
        Criterion("Delivery", 70, "Three late deliveries"),
        Criterion("Price", 85),
    ),
    "A reliable supplier; delivery must improve.",
)


def _service():
    return tf.TaskService(
        registry=REGISTRY,
        repository=tf.InMemoryRepository(),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )


def _send(service, data=RESULTS, requester=BUYER, recipient="supco", subject="Evaluation 2025"):
    draft = NewTask(
        subject, recipient, data, assignees=[SUPPLIER.ref] if recipient == "supco" else []
    )
    return service.open(requester, "evaluation", draft).task.id


def _inboxes(service, task_id):
    return [a.user for a in (BUYER, SUPPLIER) if task_id in {t.id for t in service.inbox(a)}]


# --- the results ---------------------------------------------------------------------------


def test_evaluation_carries_score_criteria_and_comments_to_the_supplier():
    service = _service()
    task = service.get(SUPPLIER, _send(service))
    data = task.data
    assert (data.score, data.min_score, data.max_score) == (82.0, 0.0, 100.0)
    assert [(c.name, c.score, c.comment) for c in data.criteria] == [
        ("Quality", 90.0, "No defects in 2025"),
        ("Delivery", 70.0, "Three late deliveries"),
        ("Price", 85.0, ""),
    ]
    assert data.comments == "A reliable supplier; delivery must improve."
    assert data.criterion("  delivery ").score == 70.0
    assert data.criterion("Safety") is None


def test_scores_may_use_a_declared_scale_and_fractions():
    data = Evaluation(
        4.5, (Criterion("Service", 5), Criterion("Quality", 1)), min_score=1, max_score=5
    )
    assert (data.score, data.criteria[1].score) == (4.5, 1.0)


@pytest.mark.parametrize(
    ("build", "field", "message"),
    [
        (lambda: Evaluation(101), "score", r"Evaluation\.score 101 is outside the scale 0\.\.100"),
        (lambda: Evaluation(-1), "score", r"Evaluation\.score -1 is outside the scale 0\.\.100"),
        (
            lambda: Evaluation(3, min_score=1, max_score=5, criteria=(Criterion("Price", 0),)),
            "criteria[0].score",
            r"Evaluation criterion 'Price' scores 0, outside the scale 1\.\.5",
        ),
        (
            lambda: Evaluation(50, (Criterion("Quality", 1), Criterion(" quality ", 2))),
            "criteria[1].name",
            r"Evaluation names criterion 'quality' twice \(criteria\[0\] and criteria\[1\]\)",
        ),
        (
            lambda: Evaluation(5, min_score=5, max_score=5),
            "max_score",
            r"Evaluation scale 5\.\.5 is empty: min_score must be below max_score",
        ),
        (lambda: Evaluation("82"), "score", r"Evaluation\.score must be a number, got '82'"),
        (lambda: Evaluation(True), "score", r"Evaluation\.score must be a number, got True"),
        (
            lambda: Evaluation(math.nan),
            "score",
            r"Evaluation\.score must be a finite number, got nan",
        ),
        (
            lambda: Evaluation(10**400),
            "score",
            r"Evaluation\.score must be a finite number, got 1000",
        ),
        (
            lambda: Evaluation(1, max_score=math.inf),
            "max_score",
            r"Evaluation\.max_score must be a finite number",
        ),
        (lambda: Criterion("Price", None), "score", r"Criterion\.score must be a number, got None"),
        (lambda: Criterion("  ", 3), "name", r"Criterion\.name must be a non-blank string"),
        (
            lambda: Evaluation(1, ("Quality",)),
            "criteria[0]",
            r"Evaluation\.criteria\[0\] must be a Criterion, got str",
        ),
        (
            lambda: Evaluation(1, Criterion("Quality", 1)),
            "criteria",
            r"Evaluation\.criteria must be a tuple of Criterion",
        ),
        (lambda: Evaluation(1, 3), "criteria", r"must be a tuple of Criterion, got int"),
    ],
)
def test_invalid_results_are_refused_naming_the_field(build, field, message):
    with pytest.raises(InvalidPayload, match=message) as caught:
        build()
    assert caught.value.field == field


# --- acknowledging ------------------------------------------------------------------------


def test_supplier_acknowledging_the_results_ends_the_evaluation():
    service = _service()
    task_id = _send(service)
    assert _inboxes(service, task_id) == ["sam"]
    assert service.allowed_actions(SUPPLIER, task_id)[0] == "acknowledge"
    task = service.act(SUPPLIER, task_id, "acknowledge").task
    assert (task.state, task.is_open, task.resolved_at) == ("done", False, START)
    assert _inboxes(service, task_id) == []


def test_acknowledging_notifies_the_requester_and_sending_notifies_the_supplier():
    service = _service()
    task_id = _send(service)
    assert [(n.recipient.user, n.event) for n in service.notifier.sent] == [("sam", "opened")]
    service.notifier.clear()
    service.act(SUPPLIER, task_id, "acknowledge")
    assert [(n.recipient.user, n.event) for n in service.notifier.sent] == [
        ("bea", "evaluation_acknowledged")
    ]


@pytest.mark.parametrize(
    ("done", "actor", "payload", "error", "message"),
    [
        (
            False,
            BUYER,
            None,
            PermissionDenied,
            r"'acknowledge' on task ACME-TASK-1 is for the recipient \(supco\); bea@acme is the requester",
        ),
        (
            True,
            COLLEAGUE,
            None,
            ActionNotAllowed,
            r"task ACME-TASK-1 is 'done'; 'acknowledge' needs 'sent'; allowed now: 'comment'",
        ),
        (
            False,
            SUPPLIER,
            Criterion("x", 1),
            InvalidPayload,
            "'acknowledge' on task ACME-TASK-1 takes no payload, got Criterion",
        ),
    ],
)
def test_wrong_side_state_or_payload_is_refused(done, actor, payload, error, message):
    service = _service()
    task_id = _send(service)
    if done:
        service.act(SUPPLIER, task_id, "acknowledge")
    with pytest.raises(error, match=message):
        service.act(actor, task_id, "acknowledge", payload)


def test_stranger_cannot_see_or_acknowledge_an_evaluation():
    service = _service()
    task_id = _send(service)
    with pytest.raises(TaskNotFound):
        service.act(STRANGER, task_id, "acknowledge")


# --- received evaluations -------------------------------------------------------------------


def _received(service):
    # Three evaluations received by supco over three days (one acknowledged), one it sent,
    # and a document request it received: only the three evaluations are "received".
    first = _send(service, subject="acme 2025")
    service.clock.advance(timedelta(days=1))
    second = _send(service, requester=OTHER_BUYER, subject="bigco 2025")
    service.act(SUPPLIER, second, "acknowledge")
    service.clock.advance(timedelta(days=1))
    third = _send(service, subject="acme Q1 2026")
    _send(service, requester=SUPPLIER, recipient="acme", subject="supco rates acme")
    draft = NewTask("ISO", "supco", DocumentRequest("ISO 9001"))
    service.open(BUYER, "document_request", draft)
    return first, second, third


def _subjects(tasks):
    return [t.subject for t in tasks]


def test_received_evaluations_lists_every_evaluation_the_company_received_oldest_first():
    service = _service()
    _received(service)
    for actor in (SUPPLIER, COLLEAGUE):
        assert _subjects(tf.Evaluations(service).received_evaluations(actor)) == [
            "acme 2025",
            "bigco 2025",
            "acme Q1 2026",
        ]
    assert _subjects(tf.Evaluations(service).received_evaluations(BUYER)) == ["supco rates acme"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"requester": "acme"}, ["acme 2025", "acme Q1 2026"]),
        ({"requester": "bigco"}, ["bigco 2025"]),
        ({"requester": "nobody"}, []),
        ({"states": "sent"}, ["acme 2025", "acme Q1 2026"]),
        ({"states": ["done"]}, ["bigco 2025"]),
        ({"states": ("sent", "done")}, ["acme 2025", "bigco 2025", "acme Q1 2026"]),
        ({"received_from": START + timedelta(days=1)}, ["bigco 2025", "acme Q1 2026"]),
        ({"received_until": START + timedelta(days=1)}, ["acme 2025", "bigco 2025"]),
        (
            {
                "received_from": START + timedelta(hours=1),
                "received_until": START + timedelta(days=1),
            },
            ["bigco 2025"],
        ),
        ({"received_from": START, "received_until": START}, ["acme 2025"]),
        (
            {"requester": "acme", "states": "sent", "received_from": START + timedelta(hours=1)},
            ["acme Q1 2026"],
        ),
    ],
)
def test_received_evaluations_filter_by_requester_state_and_dates(filters, expected):
    service = _service()
    _received(service)
    assert _subjects(tf.Evaluations(service).received_evaluations(SUPPLIER, **filters)) == expected


class _Recording(tf.InMemoryRepository):
    """Keeps every query it is asked, so a test sees what the service left to the repository."""

    def __init__(self):
        super().__init__()
        self.asked: list[TaskQuery] = []

    def query(self, query):
        self.asked.append(query)
        return super().query(query)


def test_received_evaluations_leave_every_filter_to_the_repository():
    repository = _Recording()
    service = tf.TaskService(
        registry=REGISTRY,
        repository=repository,
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )
    _received(service)
    since, until = START + timedelta(hours=1), START + timedelta(days=9)
    found = tf.Evaluations(service).received_evaluations(
        SUPPLIER, requester="acme", states="sent", received_from=since, received_until=until
    )
    assert _subjects(found) == ["acme Q1 2026"]
    assert repository.asked[-1] == TaskQuery(
        kind="evaluation",
        states="sent",
        company="supco",  # the service scopes every find to the actor's company
        recipient_company="supco",
        requester_company="acme",
        created_from=since,
        created_until=until,
    )


def test_received_evaluations_date_range_compares_instants_across_time_zones():
    service = _service()
    _received(service)
    # 10:30 in Paris is 08:30 UTC: the second evaluation arrived at that very instant.
    paris = datetime(2026, 5, 5, 10, 30, tzinfo=timezone(timedelta(hours=2)))
    assert _subjects(
        tf.Evaluations(service).received_evaluations(SUPPLIER, received_from=paris)
    ) == [
        "bigco 2025",
        "acme Q1 2026",
    ]


def test_a_stranger_receives_no_evaluations():
    service = _service()
    _received(service)
    assert tf.Evaluations(service).received_evaluations(STRANGER) == []
    assert tf.Evaluations(service).received_evaluations(STRANGER, requester="acme") == []


def test_received_evaluations_hide_the_requesters_internal_comments():
    service = _service()
    first, _, _ = _received(service)
    service.comment(BUYER, first, "Do not renew their contract", tf.Visibility.INTERNAL)
    (task,) = [t for t in tf.Evaluations(service).received_evaluations(SUPPLIER) if t.id == first]
    assert task.comments == ()


@pytest.mark.parametrize(
    ("filters", "error", "message"),
    [
        (
            {"states": ["acknowledged"]},
            InvalidPayload,
            r"received evaluations cannot be filtered by state \['acknowledged'\]; "
            r"states of 'evaluation': \('sent', 'done'\)",
        ),
        (
            {"received_from": datetime(2026, 5, 4)},
            InvalidPayload,
            "received_from must be a timezone-aware datetime, got datetime.datetime",
        ),
        (
            {"received_until": date(2026, 5, 4)},
            InvalidPayload,
            r"received_until must be a timezone-aware datetime, got datetime.date\(2026, 5, 4\)",
        ),
        (
            {"received_from": START, "received_until": START - timedelta(seconds=1)},
            InvalidPayload,
            r"received_from 2026-05-04T08:30:00\+00:00 is after received_until 2026-05-04T08:29:59\+00:00",
        ),
    ],
)
def test_bad_received_evaluations_filters_are_refused(filters, error, message):
    service = _service()
    with pytest.raises(error, match=message):
        tf.Evaluations(service).received_evaluations(SUPPLIER, **filters)


def test_received_evaluations_need_the_evaluation_kind_registered():
    service = tf.TaskService(
        registry=Registry([DOCUMENT_REQUEST]),
        repository=tf.InMemoryRepository(),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(START),
        ids=tf.SequentialIds(),
    )
    with pytest.raises(UnknownKind, match="unknown task kind 'evaluation'"):
        tf.Evaluations(service).received_evaluations(SUPPLIER)


# --- history, serialization, diagram, stateful -----------------------------------------------


def test_evaluation_round_trips_through_json_with_its_criteria():
    service = _service()
    task_id = _send(service)
    service.act(SUPPLIER, task_id, "acknowledge")
    task = service.repository.get(task_id)
    serializer = Serializer(REGISTRY)
    loaded = serializer.load_task(json.loads(json.dumps(serializer.dump_task(task))))
    assert loaded == task
    assert loaded.data.criteria[1] == Criterion("Delivery", 70.0, "Three late deliveries")
    assert [(e.action, e.to_state) for e in loaded.history] == [
        ("open", "sent"),
        ("acknowledge", "done"),
    ]


@settings(max_examples=30)
@given(builtin_strategies().for_type(Evaluation))
def test_generated_evaluations_round_trip_through_json(data):
    serializer = Serializer(REGISTRY)
    task = tf.open_task(
        EVALUATION_WORKFLOW,
        "evaluation",
        NewTask("E", "supco", data),
        BUYER,
        START,
        "t1",
        "ACME-TASK-1",
    ).task
    assert serializer.load_task(json.loads(json.dumps(serializer.dump_task(task)))) == task


def test_evaluation_workflow_draws_as_mermaid():
    assert "sent --> done : acknowledge (recipient)" in to_mermaid(EVALUATION_WORKFLOW)


TestEvaluationWorkflow = workflow_machine(Registry([EVALUATION]), "evaluation").TestCase
TestEvaluationWorkflow.settings = settings(
    TestEvaluationWorkflow.settings, stateful_step_count=20, deadline=None
)
