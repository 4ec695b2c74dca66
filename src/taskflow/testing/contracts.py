"""Contract suites for the ports: subclass one, implement its factory hook, and pytest runs it.

    class TestSqliteRepository(RepositoryContract):
        def make_repository(self) -> TaskRepository:
            return SqliteRepository(":memory:", self.registry)

Each suite checks what the port promises (the docstrings in `taskflow.ports`), never how an
adapter keeps its data, so the same suite runs against the in-memory adapters and a host's own.
The helpers (`make_task`, `act`, `upload`, ...) build real tasks through the engine. The tasks
are of `contract_registry()`'s kinds: the built-in ones, with indexed fields on the two
document kinds, and `PROBE`, whose one indexed value a test sets; a repository that needs a
registry is built with `RepositoryContract.registry`.
"""

from __future__ import annotations

import abc
import itertools
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from taskflow.domain import engine
from taskflow.domain.common import ASSIGN, COMMENT, EDIT, AddComment, Assign, Edit
from taskflow.domain.notifications import Notification
from taskflow.domain.outbox import OutboxEntry, OutboxMessage
from taskflow.domain.query import (
    Between,
    Cursor,
    IndexValue,
    TaskQuery,
    index_values,
    sort_key,
)
from taskflow.domain.registry import Registry, TaskKind
from taskflow.domain.task import NewTask, Task
from taskflow.domain.values import (
    PDF,
    Actor,
    CompanyId,
    FileRef,
    Side,
    TaskId,
    UserId,
    UserRef,
    Visibility,
)
from taskflow.errors import (
    ConcurrencyConflict,
    InvalidPayload,
    MarkTaken,
    TaskflowError,
    TaskNotFound,
    ViewNotSaveable,
)
from taskflow.kinds import BUILTIN_KINDS, default_registry
from taskflow.kinds.document import (
    ACCEPT,
    DECLINE,
    DOCUMENT_REQUEST,
    DOCUMENT_WORKFLOW,
    PRODUCT_DOCUMENT_REQUEST,
    REJECT,
    UPLOAD,
    Decline,
    DocumentRequest,
    ProductDocumentRequest,
    Reject,
    UploadDocument,
)
from taskflow.ports import Changeset, Clock, IdFactory, Notifier, TaskRepository
from taskflow.testing.strategies import aware_datetimes
from taskflow.testing.strategies import tasks as generated_tasks

__all__ = [
    "ACME",
    "BUYER",
    "BUYER_COLLEAGUE",
    "GLOBEX",
    "OTHER_SUPPLIER",
    "OTHER_SUPPLIER_COLLEAGUE",
    "PROBE",
    "SAMPLE_PDF",
    "SUPCO",
    "SUPPLIER",
    "SUPPLIER_COLLEAGUE",
    "T0",
    "ClockContract",
    "IdFactoryContract",
    "NotifierContract",
    "Probe",
    "RepositoryContract",
    "accept",
    "act",
    "assign",
    "contract_registry",
    "decline",
    "make_task",
    "reject",
    "set_due",
    "upload",
]

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)

ACME = CompanyId("acme")
SUPCO = CompanyId("supco")
GLOBEX = CompanyId("globex")
_STRANGER = CompanyId("initech")

BUYER = Actor(UserId("bea"), ACME)
BUYER_COLLEAGUE = Actor(UserId("bob"), ACME)
SUPPLIER = Actor(UserId("sam"), SUPCO)
SUPPLIER_COLLEAGUE = Actor(UserId("sue"), SUPCO)
OTHER_SUPPLIER = Actor(UserId("oli"), GLOBEX)
OTHER_SUPPLIER_COLLEAGUE = Actor(UserId("ola"), GLOBEX)

SAMPLE_PDF = FileRef("certificate.pdf", PDF, 48_213, "sha256:" + "ab" * 32, "files/certificate.pdf")

_DOC = DOCUMENT_REQUEST.name
_PRODUCT_DOC = PRODUCT_DOCUMENT_REQUEST.name


# --- the kinds of the contract's tasks -----------------------------------------------------


def _document_type(task: Task) -> str:
    return str(task.data.document_type)


def _file_count(task: Task) -> int:
    return len(task.files)


def _has_files(task: Task) -> bool:
    return bool(task.files)


def _deadline(task: Task) -> datetime | None:
    return task.due_at


def _product(task: Task) -> str:
    return str(task.data.product)


@attrs.frozen
class Probe:
    """Data of the `PROBE` kind: one value of any type, indexed as it is (a test picks it)."""

    value: Any = None


def _probe(task: Task) -> Any:
    return task.data.value


PROBE = TaskKind(
    "index_probe",
    Probe,
    DOCUMENT_WORKFLOW,
    "A task whose indexed field 'probe' is its data's value, right or wrong (contract suites)",
    indexed={"probe": _probe},
)
"""A kind whose indexed value a test sets, to check that a wrong one is refused."""

# "files" is a number on document requests and a flag on product-document requests, so the
# suite checks that values of different types never match each other (1 is not True).
_INDEXED_KINDS = (
    attrs.evolve(
        DOCUMENT_REQUEST,
        indexed={"document_type": _document_type, "files": _file_count, "deadline": _deadline},
    ),
    attrs.evolve(
        PRODUCT_DOCUMENT_REQUEST,
        indexed={
            "document_type": _document_type,
            "product": _product,
            "files": _has_files,
            "deadline": _deadline,
        },
    ),
    PROBE,
)


def contract_registry() -> Registry:
    """Return a registry of the contract's kinds: the built-in ones, document kinds indexed, and `PROBE`."""
    indexed = {kind.name: kind for kind in _INDEXED_KINDS}
    return Registry([*(indexed.pop(kind.name, kind) for kind in BUILTIN_KINDS), *indexed.values()])


_REGISTRY = contract_registry()


def _values(task: Task) -> dict[str, IndexValue]:
    return index_values(_REGISTRY[task.kind], task)


# --- helpers that build tasks through the engine -------------------------------------------


def _default_data(kind: str) -> Any:
    if kind == _PRODUCT_DOC:
        return ProductDocumentRequest("Safety data sheet", "Widget 3000")
    return DocumentRequest("ISO 9001")


def make_task(
    task_id: str,
    *,
    kind: str = _DOC,
    requester: Actor = BUYER,
    recipient: str = SUPCO,
    created_at: datetime = T0,
    due_at: datetime | None = None,
    assignees: Iterable[UserRef] = (),
    data: Any = None,
    subject: str = "Send us your certificate",
) -> Task:
    """Open a task of a `contract_registry()` kind as `requester` through the engine: version 1, ready to `add`."""
    task_kind = _REGISTRY[kind]
    draft = NewTask(
        subject,
        CompanyId(recipient),
        data if data is not None else _default_data(kind),
        assignees=tuple(assignees),
        due_at=due_at,
    )
    number = f"{requester.company.upper()}-TASK-{task_id}"
    return engine.open_task(
        task_kind.workflow,
        kind,
        draft,
        requester,
        created_at,
        TaskId(task_id),
        number,
        data_type=task_kind.data_type,
    ).task


def act(
    task: Task, actor: Actor, action: str, payload: Any = None, *, at: datetime | None = None
) -> Task:
    """Take `action` on `task` through the engine; return the next version, ready to `save`."""
    if at is None:
        last = task.history[-1].at if task.history else task.created_at
        at = last + timedelta(minutes=1)
    workflow = _REGISTRY[task.kind].workflow
    return engine.apply(workflow, task, action, actor, at, payload).task


def upload(task: Task, actor: Actor, *, at: datetime | None = None) -> Task:
    """Upload `SAMPLE_PDF` as the recipient: the task becomes 'uploaded', the ball goes back."""
    return act(task, actor, UPLOAD, UploadDocument(SAMPLE_PDF, date(2030, 1, 1)), at=at)


def decline(task: Task, actor: Actor, *, at: datetime | None = None) -> Task:
    """Decline the request as the recipient, with a reason: the task goes back to the requester."""
    return act(task, actor, DECLINE, Decline("We do not have it"), at=at)


def accept(task: Task, actor: Actor, *, at: datetime | None = None) -> Task:
    """Accept the uploaded document as the requester: the task becomes final ('accepted')."""
    return act(task, actor, ACCEPT, at=at)


def reject(
    task: Task, actor: Actor, reason: str = "Out of date", *, at: datetime | None = None
) -> Task:
    """Reject the uploaded document as the requester: back to the recipient as 'rejected'."""
    return act(task, actor, REJECT, Reject(reason), at=at)


def assign(task: Task, actor: Actor, *users: UserRef, at: datetime | None = None) -> Task:
    """Make `users` (of the actor's company) that company's assignees on `task`."""
    return act(task, actor, ASSIGN, Assign(users), at=at)


def set_due(task: Task, actor: Actor, due_at: datetime, *, at: datetime | None = None) -> Task:
    """Move the due date of `task` as its requester."""
    return act(task, actor, EDIT, Edit(due_at=due_at), at=at)


def _ids(found: Iterable[Task]) -> list[str]:
    return [t.id for t in found]


def _brute_force(tasks: Iterable[Task], query: TaskQuery) -> tuple[list[Task], list[Task]]:
    matching = sorted((t for t in tasks if query.matches(t, _values(t))), key=sort_key)
    limited = matching if query.limit is None else matching[: query.limit]
    return matching, limited


def _check_queries(
    repo: TaskRepository, tasks: Sequence[Task], queries: Iterable[TaskQuery]
) -> None:
    for query in queries:
        matching, expected = _brute_force(tasks, query)
        found = repo.query(query)
        assert _ids(found) == _ids(expected), query
        assert found == expected, query
        counts = dict(Counter((t.kind, t.state) for t in matching))
        assert repo.count(query) == counts, query


# --- the repository contract ---------------------------------------------------------------

# The tasks of `_add_world`, as (id, kind, state, requester, recipient, assignees, due, created):
#   t-2 product_document_request  accepted   acme  -> supco   bea sue   T0+5d   T0
#   t-0 document_request          requested  supco -> acme    sam bea   T0+5d   T0+1h
#   t-3 document_request          requested  acme  -> supco   bea sam   T0+10d  T0+1h
#   t-4 document_request          requested  globex-> supco   oli sam   T0+20d  T0+2h
#   t-1 document_request          uploaded   acme  -> globex  bea oli   (none)  T0+3h
# They are added in the order t-3, t-1, t-2, t-4, t-0, so insertion order, id order and
# creation order all differ; t-0 and t-3 share a creation time, so the id breaks the tie.
# Their indexed fields (files: a number on document requests, a flag on the product one):
#   t-2 document_type 'Safety data sheet', product 'Widget 3000', files True, deadline T0+5d
#   t-0 document_type 'ISO 9001',  files 0, deadline T0+5d
#   t-3 document_type 'ISO 14001', files 0, deadline T0+10d
#   t-4 document_type 'ISO 9001',  files 0, deadline T0+20d
#   t-1 document_type 'ISO 9001',  files 1, no deadline
_ALL = ["t-2", "t-0", "t-3", "t-4", "t-1"]
_MINUS_FIVE = timezone(timedelta(hours=-5))
_MICRO = timedelta(microseconds=1)

_QUERY_CASES = [
    pytest.param(TaskQuery(), _ALL, id="everything"),
    pytest.param(TaskQuery(kind=_DOC), ["t-0", "t-3", "t-4", "t-1"], id="kind"),
    pytest.param(TaskQuery(kind=_PRODUCT_DOC), ["t-2"], id="other-kind"),
    pytest.param(TaskQuery(kind="no_such_kind"), [], id="unknown-kind"),
    pytest.param(TaskQuery(states="requested"), ["t-0", "t-3", "t-4"], id="one-state"),
    pytest.param(TaskQuery(states={"uploaded", "accepted"}), ["t-2", "t-1"], id="two-states"),
    pytest.param(TaskQuery(states=frozenset()), [], id="no-state"),
    pytest.param(TaskQuery(company=ACME), ["t-2", "t-0", "t-3", "t-1"], id="company"),
    pytest.param(TaskQuery(company=GLOBEX), ["t-4", "t-1"], id="company-either-side"),
    pytest.param(TaskQuery(company=_STRANGER), [], id="stranger"),
    pytest.param(
        TaskQuery(company=ACME, side=Side.REQUESTER), ["t-2", "t-3", "t-1"], id="requester-side"
    ),
    pytest.param(TaskQuery(company=ACME, side=Side.RECIPIENT), ["t-0"], id="recipient-side"),
    pytest.param(
        TaskQuery(company=SUPCO, side=Side.RECIPIENT), ["t-2", "t-3", "t-4"], id="supplier-side"
    ),
    pytest.param(TaskQuery(assignee=SUPPLIER.ref), ["t-0", "t-3", "t-4"], id="assignee"),
    pytest.param(TaskQuery(assignee=BUYER.ref), ["t-2", "t-0", "t-3", "t-1"], id="opener"),
    pytest.param(TaskQuery(assignee=UserRef(SUPCO, UserId("nobody"))), [], id="no-assignee"),
    pytest.param(TaskQuery(ball_company=ACME), ["t-0", "t-1"], id="ball"),
    pytest.param(TaskQuery(ball_company=SUPCO), ["t-3", "t-4"], id="ball-supplier"),
    pytest.param(TaskQuery(ball_company=GLOBEX), [], id="ball-moved-away"),
    pytest.param(TaskQuery(open=True), ["t-0", "t-3", "t-4", "t-1"], id="open"),
    pytest.param(TaskQuery(open=False), ["t-2"], id="closed"),
    pytest.param(TaskQuery(due_before=T0 + 5 * _DAY), [], id="due-before-is-strict"),
    pytest.param(
        TaskQuery(due_before=T0 + 5 * _DAY + timedelta(seconds=1)), ["t-2", "t-0"], id="due"
    ),
    pytest.param(
        TaskQuery(
            due_before=(T0 + 5 * _DAY + timedelta(seconds=1)).astimezone(
                timezone(timedelta(hours=-5))
            )
        ),
        ["t-2", "t-0"],
        id="due-in-other-zone",
    ),
    pytest.param(TaskQuery(due_before=T0 + 10 * _DAY), ["t-2", "t-0"], id="due-strict-again"),
    pytest.param(
        TaskQuery(due_before=T0 + 365 * _DAY), ["t-2", "t-0", "t-3", "t-4"], id="no-due-never"
    ),
    pytest.param(TaskQuery(ball_company=SUPCO, assignee=SUPPLIER.ref), ["t-3", "t-4"], id="inbox"),
    pytest.param(TaskQuery(ball_company=ACME, assignee=BUYER.ref), ["t-0", "t-1"], id="inbox-2"),
    pytest.param(
        TaskQuery(ball_company=ACME, assignee=BUYER_COLLEAGUE.ref), [], id="inbox-unassigned"
    ),
    pytest.param(
        TaskQuery(company=SUPCO, side=Side.RECIPIENT, open=True), ["t-3", "t-4"], id="teambox"
    ),
    pytest.param(
        TaskQuery(kind=_DOC, states="requested", company=ACME), ["t-0", "t-3"], id="kind-state"
    ),
    pytest.param(TaskQuery(open=True, due_before=T0 + 6 * _DAY), ["t-0"], id="overdue"),
    pytest.param(
        TaskQuery(company=ACME, side=Side.REQUESTER, ball_company=ACME), ["t-1"], id="side-ball"
    ),
    pytest.param(TaskQuery(assignee=OTHER_SUPPLIER.ref, states="uploaded"), ["t-1"], id="mix"),
    pytest.param(
        TaskQuery(company=GLOBEX, side=Side.RECIPIENT, kind=_PRODUCT_DOC), [], id="mix-none"
    ),
    pytest.param(TaskQuery(limit=0), [], id="limit-0"),
    pytest.param(TaskQuery(limit=2), ["t-2", "t-0"], id="limit-cuts-after-ordering"),
    pytest.param(TaskQuery(limit=99), _ALL, id="limit-above-count"),
    pytest.param(TaskQuery(company=SUPCO, limit=2), ["t-2", "t-0"], id="company-limit"),
    pytest.param(TaskQuery(open=True, limit=1), ["t-0"], id="open-limit"),
    # the requester's and the recipient's company
    pytest.param(TaskQuery(requester_company=ACME), ["t-2", "t-3", "t-1"], id="requester"),
    pytest.param(TaskQuery(recipient_company=SUPCO), ["t-2", "t-3", "t-4"], id="recipient"),
    pytest.param(
        TaskQuery(requester_company=GLOBEX, recipient_company=SUPCO), ["t-4"], id="both-parties"
    ),
    pytest.param(TaskQuery(requester_company=ACME, recipient_company=ACME), [], id="internal"),
    pytest.param(
        TaskQuery(company=ACME, side=Side.REQUESTER, requester_company=SUPCO), [], id="side-clash"
    ),
    pytest.param(
        TaskQuery(company=SUPCO, requester_company=ACME), ["t-2", "t-3"], id="company-requester"
    ),
    pytest.param(TaskQuery(recipient_company=_STRANGER), [], id="recipient-stranger"),
    # creation times, both ends included
    pytest.param(TaskQuery(created_from=T0 + _HOUR), ["t-0", "t-3", "t-4", "t-1"], id="from"),
    pytest.param(TaskQuery(created_until=T0 + _HOUR), ["t-2", "t-0", "t-3"], id="until"),
    pytest.param(
        TaskQuery(created_from=T0 + _HOUR, created_until=T0 + 2 * _HOUR),
        ["t-0", "t-3", "t-4"],
        id="from-until",
    ),
    pytest.param(TaskQuery(created_from=T0 + _HOUR + _MICRO), ["t-4", "t-1"], id="from-edge"),
    pytest.param(TaskQuery(created_until=T0 - _MICRO), [], id="until-edge"),
    pytest.param(
        TaskQuery(
            created_from=(T0 + _HOUR).astimezone(_MINUS_FIVE),
            created_until=(T0 + _HOUR).astimezone(_MINUS_FIVE),
        ),
        ["t-0", "t-3"],
        id="created-in-other-zone",
    ),
    pytest.param(
        TaskQuery(recipient_company=SUPCO, created_from=T0 + _HOUR, limit=1),
        ["t-3"],
        id="recipient-from-limit",
    ),
    # after a cursor: strictly after (creation time, id)
    pytest.param(
        TaskQuery(after=Cursor(T0, TaskId("t-2"))), ["t-0", "t-3", "t-4", "t-1"], id="after"
    ),
    pytest.param(
        TaskQuery(after=Cursor(T0 + _HOUR, TaskId("t-0"))), ["t-3", "t-4", "t-1"], id="after-tie"
    ),
    pytest.param(
        TaskQuery(after=Cursor(T0 + _HOUR, TaskId("t-1"))), ["t-3", "t-4", "t-1"], id="after-id"
    ),
    pytest.param(TaskQuery(after=Cursor(T0 + 3 * _HOUR, TaskId("t-1"))), [], id="after-last"),
    pytest.param(TaskQuery(after=Cursor(T0 - _DAY, TaskId("z"))), _ALL, id="after-before-all"),
    pytest.param(
        TaskQuery(after=Cursor((T0 + _HOUR).astimezone(_MINUS_FIVE), TaskId("t-0"))),
        ["t-3", "t-4", "t-1"],
        id="after-in-other-zone",
    ),
    pytest.param(
        TaskQuery(after=Cursor(T0, TaskId("t-2")), limit=2), ["t-0", "t-3"], id="after-limit"
    ),
    pytest.param(
        TaskQuery(company=SUPCO, after=Cursor(T0 + _HOUR, TaskId("t-0"))),
        ["t-3", "t-4"],
        id="after-company",
    ),
    pytest.param(
        TaskQuery(ball_company=SUPCO, after=Cursor(T0 + _HOUR, TaskId("t-3"))),
        ["t-4"],
        id="after-ball",
    ),
    # indexed fields: equality and inclusive ranges, never across types
    pytest.param(
        TaskQuery(where={"document_type": "ISO 9001"}), ["t-0", "t-4", "t-1"], id="where-text"
    ),
    pytest.param(
        TaskQuery(where={"document_type": Between("ISO 1", "ISO 2")}), ["t-3"], id="text-range"
    ),
    pytest.param(TaskQuery(where={"document_type": Between("S")}), ["t-2"], id="text-from"),
    pytest.param(TaskQuery(where={"files": 0}), ["t-0", "t-3", "t-4"], id="where-int"),
    pytest.param(TaskQuery(where={"files": 1}), ["t-1"], id="int-is-not-bool"),
    pytest.param(TaskQuery(where={"files": True}), ["t-2"], id="bool-is-not-int"),
    pytest.param(TaskQuery(where={"files": Between(1)}), ["t-1"], id="int-range"),
    pytest.param(TaskQuery(where={"files": "1"}), [], id="text-is-not-int"),
    pytest.param(TaskQuery(where={"deadline": T0 + 5 * _DAY}), ["t-2", "t-0"], id="where-time"),
    pytest.param(
        TaskQuery(where={"deadline": (T0 + 5 * _DAY).astimezone(_MINUS_FIVE)}),
        ["t-2", "t-0"],
        id="time-in-other-zone",
    ),
    pytest.param(
        TaskQuery(where={"deadline": Between(T0 + 5 * _DAY, T0 + 10 * _DAY)}),
        ["t-2", "t-0", "t-3"],
        id="time-range-inclusive",
    ),
    pytest.param(
        TaskQuery(where={"deadline": Between(None, T0 + 5 * _DAY - _MICRO)}), [], id="time-edge"
    ),
    pytest.param(
        TaskQuery(where={"deadline": Between(T0 + 10 * _DAY)}), ["t-3", "t-4"], id="time-from"
    ),
    pytest.param(
        TaskQuery(where={"deadline": Between(T0 - 365 * _DAY)}),
        ["t-2", "t-0", "t-3", "t-4"],
        id="none-is-not-indexed",
    ),
    pytest.param(TaskQuery(where={"product": "Widget 3000"}), ["t-2"], id="one-kind-field"),
    pytest.param(
        TaskQuery(where={"document_type": "ISO 9001", "files": 0}), ["t-0", "t-4"], id="two-fields"
    ),
    pytest.param(
        TaskQuery(where={"document_type": "ISO 9001"}, company=SUPCO, side=Side.RECIPIENT),
        ["t-4"],
        id="field-and-side",
    ),
    pytest.param(
        TaskQuery(where={"files": 0}, after=Cursor(T0 + _HOUR, TaskId("t-0")), limit=1),
        ["t-3"],
        id="field-after-limit",
    ),
    pytest.param(
        TaskQuery(kind=_PRODUCT_DOC, where={"product": "Gadget"}), [], id="field-no-match"
    ),
]


def _add_world(repo: TaskRepository) -> dict[str, Task]:
    t3 = make_task(
        "t-3",
        created_at=T0 + _HOUR,
        due_at=T0 + 10 * _DAY,
        assignees=[SUPPLIER.ref],
        data=DocumentRequest("ISO 14001"),
    )
    t1 = make_task(
        "t-1", recipient=GLOBEX, created_at=T0 + 3 * _HOUR, assignees=[OTHER_SUPPLIER.ref]
    )
    t2 = make_task(
        "t-2", kind=_PRODUCT_DOC, due_at=T0 + 5 * _DAY, assignees=[SUPPLIER_COLLEAGUE.ref]
    )
    t4 = make_task(
        "t-4",
        requester=OTHER_SUPPLIER,
        created_at=T0 + 2 * _HOUR,
        due_at=T0 + 20 * _DAY,
        assignees=[SUPPLIER.ref],
    )
    # Created an hour later than T0 but given in UTC+2, so its wall-clock time reads 12:00.
    t0 = make_task(
        "t-0",
        requester=SUPPLIER,
        recipient=ACME,
        created_at=(T0 + _HOUR).astimezone(timezone(timedelta(hours=2))),
        due_at=T0 + 5 * _DAY,
        assignees=[BUYER.ref],
    )
    for task in (t3, t1, t2, t4, t0):
        repo.add(task)
    t1_uploaded = upload(t1, OTHER_SUPPLIER)
    repo.save(t1_uploaded, t1.version)
    t2_uploaded = upload(t2, SUPPLIER_COLLEAGUE)
    repo.save(t2_uploaded, t2.version)
    t2_accepted = accept(t2_uploaded, BUYER)
    repo.save(t2_accepted, t2_uploaded.version)
    return {"t-0": t0, "t-1": t1_uploaded, "t-2": t2_accepted, "t-3": t3, "t-4": t4}


@attrs.frozen
class _Add:
    task_id: str
    kind: str
    requester: Actor
    recipient: CompanyId
    created_at: datetime
    due_at: datetime | None
    assignees: tuple[UserRef, ...]
    document: str = "ISO 9001"
    product: str = "Widget 3000"


@attrs.frozen
class _Act:
    pick: int
    actor: int
    action: int
    due_at: datetime
    users: tuple[UserRef, ...]
    visibility: Visibility


@attrs.frozen
class _StaleSave:
    pick: int
    version: int
    actor: int
    action: int


_ACTORS = (
    BUYER,
    BUYER_COLLEAGUE,
    SUPPLIER,
    SUPPLIER_COLLEAGUE,
    OTHER_SUPPLIER,
    OTHER_SUPPLIER_COLLEAGUE,
)
_USERS = tuple(a.ref for a in _ACTORS)
_COMPANIES = (ACME, SUPCO, GLOBEX)
_ZONES = (UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5)))
_CREATED = tuple(T0 + h * _HOUR for h in range(4))
_DUES = tuple(T0 + d * _DAY for d in (1, 2, 3, 5, 8))
# Due dates themselves and one second either side, so the strict `<` is tested at the edge.
_DUE_BEFORE = tuple(d + s * timedelta(seconds=1) for d in _DUES for s in (-1, 0, 1))
# Creation times and a microsecond either side, for the inclusive ranges and the cursors.
_CREATED_EDGES = tuple(c + s * _MICRO for c in _CREATED for s in (-1, 0, 1))
_TASK_IDS = tuple(f"t{n}" for n in range(8))
_DOCUMENTS = ("ISO 9001", "ISO 14001", "Safety data sheet")
_PRODUCTS = ("Widget 3000", "Gadget")


def _moments(choices: Sequence[datetime]) -> st.SearchStrategy[datetime]:
    # The same instants in several zones: repositories must compare instants, not wall clocks.
    return st.builds(
        lambda at, tz: at.astimezone(tz), st.sampled_from(choices), st.sampled_from(_ZONES)
    )


def _sometimes(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # A filter is set one time in four, so a query usually combines one to three filters.
    return st.one_of(st.none(), st.none(), st.none(), strategy)


def _adds() -> st.SearchStrategy[_Add]:
    return st.builds(
        _Add,
        task_id=st.sampled_from(_TASK_IDS),
        kind=st.sampled_from([_DOC, _PRODUCT_DOC]),
        requester=st.sampled_from(_ACTORS),
        recipient=st.sampled_from(_COMPANIES),
        created_at=_moments(_CREATED),
        due_at=st.none() | _moments(_DUES),
        assignees=st.lists(st.sampled_from(_USERS), max_size=3).map(tuple),
        document=st.sampled_from(_DOCUMENTS),
        product=st.sampled_from(_PRODUCTS),
    )


def _operations() -> st.SearchStrategy[_Add | _Act | _StaleSave]:
    acts = st.builds(
        _Act,
        pick=st.integers(0, 7),
        actor=st.integers(0, 5),
        action=st.integers(0, 9),
        due_at=_moments(_DUES),
        users=st.lists(st.sampled_from(_USERS), min_size=1, max_size=2).map(tuple),
        visibility=st.sampled_from(Visibility),
    )
    stale = st.builds(
        _StaleSave,
        pick=st.integers(0, 7),
        version=st.integers(0, 7),
        actor=st.integers(0, 5),
        action=st.integers(0, 9),
    )
    return st.one_of(_adds(), acts, acts, acts, stale)


def _query(
    *,
    kind: str | None,
    states: frozenset[str] | None,
    company: CompanyId | None,
    side: Side | None,
    assignee: UserRef | None,
    ball_company: CompanyId | None,
    open_: bool | None,
    due_before: datetime | None,
    limit: int | None,
    parties: tuple[CompanyId | None, CompanyId | None] = (None, None),
    created: tuple[datetime | None, datetime | None] = (None, None),
    where: dict[str, IndexValue | Between] | None = None,
    after: Cursor | None = None,
) -> TaskQuery:
    start, end = created
    if start is not None and end is not None and start > end:
        start, end = end, start
    if kind == _DOC and where:
        # A document request has no product: a query naming both is refused, not empty.
        where = {name: c for name, c in where.items() if name != "product"}
    return TaskQuery(
        kind=kind,
        states=states,
        company=company,
        side=side if company is not None else None,
        assignee=assignee,
        ball_company=ball_company,
        open=open_,
        due_before=due_before,
        limit=limit,
        requester_company=parties[0],
        recipient_company=parties[1],
        created_from=start,
        created_until=end,
        where=where,
        after=after,
    )


def _ranges(ends: st.SearchStrategy[Any]) -> st.SearchStrategy[Between]:
    # Either end may be open; the two are put in order, so the range is a valid one.
    def build(low: Any, high: Any) -> Between:
        if low is not None and high is not None and low > high:
            low, high = high, low
        return Between(low, high)

    return st.builds(build, st.none() | ends, ends) | st.builds(build, ends, st.none())


def _conditions(times: st.SearchStrategy[datetime]) -> st.SearchStrategy[dict[str, Any]]:
    files = st.integers(0, 2) | st.booleans()
    entries = st.one_of(
        st.tuples(
            st.just("document_type"),
            st.sampled_from(_DOCUMENTS) | _ranges(st.sampled_from(_DOCUMENTS)),
        ),
        st.tuples(st.just("product"), st.sampled_from(_PRODUCTS)),
        st.tuples(st.just("files"), files | _ranges(st.integers(0, 2)) | _ranges(st.booleans())),
        st.tuples(st.just("deadline"), times | _ranges(times)),
    )
    return st.lists(entries, max_size=2).map(dict)


def _queries(
    companies: Sequence[CompanyId],
    users: Sequence[UserRef],
    due_before: st.SearchStrategy[datetime],
    created: st.SearchStrategy[datetime] | None = None,
) -> st.SearchStrategy[TaskQuery]:
    created = created if created is not None else _moments(_CREATED_EDGES)
    cursors = st.builds(Cursor, created, st.sampled_from(_TASK_IDS))
    return st.builds(
        _query,
        kind=_sometimes(st.sampled_from([_DOC, _PRODUCT_DOC])),
        states=_sometimes(
            st.frozensets(st.sampled_from(DOCUMENT_WORKFLOW.state_names), max_size=3)
        ),
        company=_sometimes(st.sampled_from(companies)),
        side=st.none() | st.sampled_from(Side),
        assignee=_sometimes(st.sampled_from(users)),
        ball_company=_sometimes(st.sampled_from(companies)),
        open_=_sometimes(st.booleans()),
        due_before=_sometimes(due_before),
        limit=_sometimes(st.integers(0, 6)),
        parties=st.tuples(
            _sometimes(st.sampled_from(companies)), _sometimes(st.sampled_from(companies))
        ),
        created=st.tuples(_sometimes(created), _sometimes(created)),
        where=_sometimes(_conditions(due_before)),
        after=_sometimes(cursors),
    )


def _payload(action: str, actor: Actor, op: _Act | _StaleSave) -> Any:
    due_at = op.due_at if isinstance(op, _Act) else T0 + 4 * _DAY
    users = op.users if isinstance(op, _Act) else (actor.ref,)
    visibility = op.visibility if isinstance(op, _Act) else Visibility.PUBLIC
    payloads: dict[str, Any] = {
        UPLOAD: UploadDocument(SAMPLE_PDF, date(2030, 1, 1)),
        DECLINE: Decline("We do not have this document"),
        REJECT: Reject("Out of date"),
        COMMENT: AddComment("Noted", visibility),
        ASSIGN: Assign(tuple(u for u in users if u.company == actor.company) or (actor.ref,)),
        EDIT: Edit(due_at=due_at),
    }
    return payloads.get(action)


def _next_version(task: Task, op: _Act | _StaleSave) -> Task | None:
    parties = [a for a in _ACTORS if task.is_party(a.company)]
    actor = parties[op.actor % len(parties)]
    workflow = _REGISTRY[task.kind].workflow
    allowed = engine.allowed_actions(workflow, task, actor)
    if not allowed:
        return None
    action = allowed[op.action % len(allowed)]
    at = task.history[-1].at + timedelta(minutes=1)
    try:
        return engine.apply(workflow, task, action, actor, at, _payload(action, actor, op)).task
    except TaskflowError:
        # The engine refused the draw (a recipient editing the due date): nothing to save.
        return None


def _probes(versions: Iterable[Task]) -> list[TaskQuery]:
    # Queries built from every version's own values: the new ones must find the task, the old
    # ones must not (unless still true), so a stale index or column shows up at once.
    second = timedelta(seconds=1)
    probes: dict[TaskQuery, None] = {}
    for v in versions:
        found = [
            TaskQuery(states=v.state),
            TaskQuery(kind=v.kind, open=v.is_open),
            TaskQuery(company=v.recipient, side=Side.RECIPIENT),
            TaskQuery(company=v.requester.company, side=Side.REQUESTER, open=True),
            *(TaskQuery(assignee=a) for a in v.assignees),
            TaskQuery(requester_company=v.requester.company, recipient_company=v.recipient),
            TaskQuery(created_from=v.created_at, created_until=v.created_at),
            TaskQuery(after=Cursor(v.created_at - _MICRO, v.id), limit=1),
        ]
        for name, value in _values(v).items():
            found += [
                TaskQuery(where={name: value}),
                TaskQuery(where={name: Between(value, value)}, kind=v.kind),
            ]
        if v.ball_company is not None:
            found.append(TaskQuery(ball_company=v.ball_company))
            found += [
                TaskQuery(ball_company=v.ball_company, assignee=a)
                for a in v.assignees_of(v.ball_company)
            ]
        if v.due_at is not None:
            found += [
                TaskQuery(due_before=v.due_at),
                TaskQuery(due_before=v.due_at + second),
                TaskQuery(open=True, due_before=v.due_at + second),
            ]
        probes.update(dict.fromkeys(found))
    return list(probes)


def _run_add(repo: TaskRepository, model: dict[str, list[Task]], op: _Add) -> str | None:
    parties = {op.requester.company, op.recipient}
    data = (
        ProductDocumentRequest(op.document, op.product)
        if op.kind == _PRODUCT_DOC
        else DocumentRequest(op.document)
    )
    task = make_task(
        op.task_id,
        kind=op.kind,
        data=data,
        requester=op.requester,
        recipient=op.recipient,
        created_at=op.created_at,
        due_at=op.due_at,
        assignees=[u for u in op.assignees if u.company in parties],
    )
    if op.task_id in model:
        with pytest.raises(ConcurrencyConflict):
            repo.add(task)
        return op.task_id
    repo.add(task)
    model[op.task_id] = [task]
    return op.task_id


def _run_act(repo: TaskRepository, model: dict[str, list[Task]], op: _Act) -> str | None:
    versions = list(model.values())[op.pick % len(model)]
    task = versions[-1]
    new = _next_version(task, op)
    if new is None:
        return None
    repo.save(new, task.version)
    versions.append(new)
    return new.id


def _run_stale_save(
    repo: TaskRepository, model: dict[str, list[Task]], op: _StaleSave
) -> str | None:
    changed = [versions for versions in model.values() if len(versions) > 1]
    if not changed:
        return None
    versions = changed[op.pick % len(changed)]
    old = versions[op.version % (len(versions) - 1)]
    requester = Actor(old.requester.user, old.requester.company)
    new = _next_version(old, op) or act(old, requester, COMMENT, AddComment("Late news"))
    with pytest.raises(ConcurrencyConflict) as caught:
        repo.save(new, old.version)
    assert (caught.value.expected, caught.value.actual) == (old.version, versions[-1].version)
    return old.id


def _run(
    repo: TaskRepository, model: dict[str, list[Task]], op: _Add | _Act | _StaleSave
) -> str | None:
    if isinstance(op, _Add):
        return _run_add(repo, model, op)
    if isinstance(op, _Act):
        return _run_act(repo, model, op)
    return _run_stale_save(repo, model, op)


class RepositoryContract(abc.ABC):
    """What every `TaskRepository` must do: subclass it and implement `make_repository`.

    Override `make_sibling` to return a second repository on the same store (another
    connection to the same database file, say), so the concurrency tests use two doors.
    The tasks are of `registry`'s kinds: a repository that needs a registry is built with it.
    """

    registry: ClassVar[Registry] = _REGISTRY
    """The kinds of the suite's tasks (`contract_registry()`), for `make_repository` to use."""

    max_examples: ClassVar[int | None] = None
    """Examples per property test; None takes the loaded hypothesis profile's number."""

    @abc.abstractmethod
    def make_repository(self) -> TaskRepository:
        """Return a new, empty repository; called once per test and once per generated example."""

    def _examples(self) -> dict[str, Any]:
        return {} if self.max_examples is None else {"max_examples": self.max_examples}

    # get and add

    def test_repository_implements_the_port(self) -> None:
        """The repository has every method of `TaskRepository`."""
        assert isinstance(self.make_repository(), TaskRepository)

    def test_get_returns_an_equal_task_to_the_one_added(self) -> None:
        """`get` returns a task equal to the one `add` stored, whichever of several is asked."""
        repo = self.make_repository()
        first = make_task("t-1", due_at=T0 + _DAY, assignees=[SUPPLIER.ref])
        second = make_task("t-2", kind=_PRODUCT_DOC, requester=SUPPLIER, recipient=ACME)
        repo.add(first)
        repo.add(second)
        assert repo.get(TaskId("t-1")) == first
        assert repo.get(TaskId("t-2")) == second

    def test_get_of_an_unknown_id_raises_task_not_found(self) -> None:
        """`get` of an id never stored raises `TaskNotFound` naming that id."""
        repo = self.make_repository()
        repo.add(make_task("t-1"))
        with pytest.raises(TaskNotFound) as caught:
            repo.get(TaskId("t-404"))
        assert caught.value.task_id == "t-404"

    def test_add_of_a_taken_id_raises_conflict_and_keeps_the_stored_task(self) -> None:
        """`add` refuses an id already stored with `ConcurrencyConflict`; the first task stays."""
        repo = self.make_repository()
        original = make_task("t-1", due_at=T0 + _DAY)
        repo.add(original)
        impostor = make_task("t-1", requester=OTHER_SUPPLIER, recipient=ACME, due_at=T0 + 2 * _DAY)
        with pytest.raises(ConcurrencyConflict):
            repo.add(impostor)
        assert repo.get(original.id) == original
        assert repo.query(TaskQuery(company=GLOBEX)) == []
        assert repo.query(TaskQuery()) == [original]

    def test_add_of_a_taken_id_is_refused_after_the_task_was_saved(self) -> None:
        """A saved task's id stays taken: `add` of it again raises `ConcurrencyConflict`."""
        repo = self.make_repository()
        task = make_task("t-1", assignees=[SUPPLIER.ref])
        repo.add(task)
        saved = upload(task, SUPPLIER)
        repo.save(saved, task.version)
        with pytest.raises(ConcurrencyConflict):
            repo.add(task)
        assert repo.get(task.id) == saved

    # save: compare-and-set on the version

    def test_save_with_the_stored_version_replaces_the_task(self) -> None:
        """`save` with the stored version as expected replaces it, again and again."""
        repo = self.make_repository()
        task = make_task("t-1", assignees=[SUPPLIER.ref])
        repo.add(task)
        uploaded = upload(task, SUPPLIER)
        repo.save(uploaded, 1)
        assert repo.get(task.id) == uploaded
        accepted = accept(uploaded, BUYER)
        repo.save(accepted, 2)
        assert repo.get(task.id) == accepted
        assert repo.get(task.id).version == 3

    def test_save_with_a_stale_version_raises_conflict_naming_both_versions(self) -> None:
        """A save expecting an old version raises `ConcurrencyConflict` with expected and actual."""
        repo = self.make_repository()
        task = make_task("t-1", assignees=[SUPPLIER.ref])
        repo.add(task)
        first = upload(task, SUPPLIER)
        repo.save(first, task.version)
        late = set_due(task, BUYER, T0 + _DAY)
        with pytest.raises(ConcurrencyConflict) as caught:
            repo.save(late, task.version)
        assert (caught.value.expected, caught.value.actual) == (1, 2)
        assert repo.get(task.id) == first

    def test_save_expecting_a_version_ahead_of_the_stored_one_raises_conflict(self) -> None:
        """A save expecting a version the stored task has not reached raises `ConcurrencyConflict`."""
        repo = self.make_repository()
        task = make_task("t-1", assignees=[SUPPLIER.ref])
        repo.add(task)
        ahead = attrs.evolve(upload(task, SUPPLIER), version=4)
        with pytest.raises(ConcurrencyConflict) as caught:
            repo.save(ahead, 3)
        assert (caught.value.expected, caught.value.actual) == (3, 1)
        assert repo.get(task.id) == task

    def test_save_of_a_task_never_added_raises_task_not_found(self) -> None:
        """`save` does not create: a task that was never added raises `TaskNotFound`."""
        repo = self.make_repository()
        repo.add(make_task("t-1"))
        ghost = upload(make_task("t-2", assignees=[SUPPLIER.ref]), SUPPLIER)
        with pytest.raises(TaskNotFound):
            repo.save(ghost, 1)
        with pytest.raises(TaskNotFound):
            repo.get(ghost.id)
        assert _ids(repo.query(TaskQuery())) == ["t-1"]

    def test_save_of_a_version_not_above_the_expected_one_is_refused(self) -> None:
        """A task whose version is not above `expected_version` raises `InvalidPayload`; nothing changes."""
        repo = self.make_repository()
        task = make_task("t-1", assignees=[SUPPLIER.ref])
        repo.add(task)
        same = attrs.evolve(task, state="uploaded", ball=Side.REQUESTER)
        with pytest.raises(InvalidPayload):
            repo.save(same, 1)
        assert repo.get(task.id) == task
        uploaded = upload(task, SUPPLIER)
        repo.save(uploaded, 1)
        lower = attrs.evolve(accept(uploaded, BUYER), version=1)
        with pytest.raises(InvalidPayload):
            repo.save(lower, 2)
        assert repo.get(task.id) == uploaded
        assert _ids(repo.query(TaskQuery(open=False))) == []
        assert _ids(repo.query(TaskQuery(states="requested"))) == []

    def test_a_view_is_never_stored_by_save_add_or_commit(self) -> None:
        """A task as one company sees it (`visible_to` left notes out) raises `ViewNotSaveable`."""
        repo = self.make_repository()
        task = make_task("t-1", assignees=[SUPPLIER.ref])
        repo.add(task)
        noted = act(
            task, BUYER, COMMENT, AddComment("Their price is too high", Visibility.INTERNAL)
        )
        repo.save(noted, task.version)
        view = noted.visible_to(SUPCO)
        assert view.is_view
        assert view.comments == ()
        commented = act(view, SUPPLIER, COMMENT, AddComment("Here it comes"))
        edited = attrs.evolve(view, subject="Changed", version=view.version + 1)
        for refused in (commented, edited):
            with pytest.raises(ViewNotSaveable):
                repo.save(refused, noted.version)
            with pytest.raises(ViewNotSaveable):
                repo.commit(Changeset(saved=[(refused, noted.version)]))
        other = make_task("t-2", assignees=[SUPPLIER.ref])
        with pytest.raises(ViewNotSaveable):
            repo.commit(Changeset(added=[other, commented]))
        assert repo.get(task.id) == noted
        assert [c.text for c in repo.get(task.id).comments] == ["Their price is too high"]
        assert _ids(repo.query(TaskQuery())) == ["t-1"]

    # next_number

    def test_next_number_counts_one_two_three_per_company(self) -> None:
        """`next_number` gives a company 1, 2, 3 in turn."""
        repo = self.make_repository()
        assert [repo.next_number(ACME) for _ in range(3)] == [1, 2, 3]

    def test_next_number_of_each_company_is_independent(self) -> None:
        """Numbers taken by one company do not use up another's."""
        repo = self.make_repository()
        taken = [(c, repo.next_number(c)) for c in (ACME, SUPCO, ACME, GLOBEX, SUPCO, ACME)]
        assert taken == [(ACME, 1), (SUPCO, 1), (ACME, 2), (GLOBEX, 1), (SUPCO, 2), (ACME, 3)]

    def test_next_number_never_repeats(self) -> None:
        """Many numbers of one company are all different, with tasks added in between."""
        repo = self.make_repository()
        numbers: list[int] = []
        for n in range(200):
            numbers.append(repo.next_number(ACME))
            if n % 50 == 0:
                repo.add(make_task(f"t-{n}"))
        assert sorted(numbers) == list(range(1, 201))

    # query and count

    @pytest.mark.parametrize(("query", "expected"), _QUERY_CASES)
    def test_query_returns_matching_tasks_by_creation_time_then_id(
        self, query: TaskQuery, expected: list[str]
    ) -> None:
        """Each filter alone and combined finds exactly its tasks, in order, cut to the limit."""
        repo = self.make_repository()
        world = _add_world(repo)
        found = repo.query(query)
        assert _ids(found) == expected
        assert found == [world[task_id] for task_id in expected]

    def test_query_orders_by_instant_not_by_wall_clock_time(self) -> None:
        """Creation times in other zones sort by the instant they stand for."""
        repo = self.make_repository()
        plus_two = timezone(timedelta(hours=2))
        minus_five = timezone(timedelta(hours=-5))
        # 08:00 UTC written as 10:00+02:00 comes before 09:00 UTC and 05:00-05:00 (10:00 UTC).
        repo.add(make_task("t-a", created_at=(T0 + _HOUR).astimezone(minus_five)))
        repo.add(make_task("t-b", created_at=T0))
        repo.add(make_task("t-c", created_at=(T0 - _HOUR).astimezone(plus_two)))
        assert _ids(repo.query(TaskQuery())) == ["t-c", "t-b", "t-a"]

    def test_query_of_an_empty_repository_is_empty(self) -> None:
        """Nothing stored, nothing found."""
        repo = self.make_repository()
        assert repo.query(TaskQuery()) == []
        assert repo.query(TaskQuery(ball_company=ACME, assignee=BUYER.ref)) == []
        assert repo.query(TaskQuery(due_before=T0)) == []

    def test_count_gives_matching_tasks_per_kind_and_state_ignoring_the_limit(self) -> None:
        """`count` tallies the matching tasks per (kind, state), whatever the limit."""
        repo = self.make_repository()
        _add_world(repo)
        everything = {
            (_DOC, "requested"): 3,
            (_DOC, "uploaded"): 1,
            (_PRODUCT_DOC, "accepted"): 1,
        }
        assert repo.count(TaskQuery()) == everything
        assert repo.count(TaskQuery(limit=0)) == everything
        assert repo.count(TaskQuery(company=ACME, limit=1)) == {
            (_DOC, "requested"): 2,
            (_DOC, "uploaded"): 1,
            (_PRODUCT_DOC, "accepted"): 1,
        }
        assert repo.count(TaskQuery(ball_company=SUPCO, assignee=SUPPLIER.ref)) == {
            (_DOC, "requested"): 2
        }

    def test_count_with_nothing_matching_is_empty(self) -> None:
        """`count` of no matching task is `{}`, in an empty repository and a full one."""
        repo = self.make_repository()
        assert repo.count(TaskQuery()) == {}
        _add_world(repo)
        assert repo.count(TaskQuery(company=_STRANGER)) == {}
        assert repo.count(TaskQuery(states=frozenset())) == {}

    def test_count_answers_the_company_creation_and_indexed_filters(self) -> None:
        """`count` tallies what `query` finds for the party, creation-time and indexed filters."""
        repo = self.make_repository()
        _add_world(repo)
        assert repo.count(TaskQuery(requester_company=ACME)) == {
            (_DOC, "requested"): 1,
            (_DOC, "uploaded"): 1,
            (_PRODUCT_DOC, "accepted"): 1,
        }
        assert repo.count(TaskQuery(recipient_company=SUPCO, created_from=T0 + _HOUR)) == {
            (_DOC, "requested"): 2
        }
        assert repo.count(TaskQuery(where={"document_type": "ISO 9001"}, limit=1)) == {
            (_DOC, "requested"): 2,
            (_DOC, "uploaded"): 1,
        }
        assert repo.count(TaskQuery(company=ACME, where={"files": Between(0, 1)})) == {
            (_DOC, "requested"): 2,
            (_DOC, "uploaded"): 1,
        }
        assert repo.count(TaskQuery(after=Cursor(T0 + 2 * _HOUR, TaskId("t-4")))) == {
            (_DOC, "uploaded"): 1
        }

    # indexed fields: declared by the kinds, kept current, checked

    def test_saved_task_is_found_by_its_new_index_values_only(self) -> None:
        """After a save, indexed-field queries see the values computed from the new version."""
        repo = self.make_repository()
        task, bystander = self._two_tasks(repo)
        uploaded = upload(task, SUPPLIER)
        repo.save(uploaded, task.version)
        assert _ids(repo.query(TaskQuery(where={"files": 0}))) == ["t-b"]
        assert repo.query(TaskQuery(where={"files": 1})) == [uploaded]
        rejected = reject(uploaded, BUYER)
        repo.save(rejected, uploaded.version)
        again = upload(rejected, SUPPLIER)
        repo.save(again, rejected.version)
        assert _ids(repo.query(TaskQuery(where={"files": Between(1)}))) == ["t-a"]
        assert repo.query(TaskQuery(where={"files": 2})) == [again]
        assert _ids(repo.query(TaskQuery(where={"files": 1}))) == []
        moved = set_due(bystander, BUYER, T0 + 3 * _DAY)
        repo.save(moved, bystander.version)
        assert _ids(repo.query(TaskQuery(where={"deadline": T0 + 3 * _DAY}))) == ["t-b"]
        undated = attrs.evolve(moved, due_at=None, version=moved.version + 1)
        repo.save(undated, moved.version)
        assert _ids(repo.query(TaskQuery(where={"deadline": Between(T0 - 365 * _DAY)}))) == ["t-a"]
        assert _ids(repo.query(TaskQuery(where={"document_type": "ISO 9001"}))) == ["t-a", "t-b"]

    def test_query_on_a_field_no_kind_indexes_is_refused(self) -> None:
        """A field no registered kind declares, or one the queried kind lacks, raises `InvalidPayload`."""
        repo = self.make_repository()
        _add_world(repo)
        for query in (
            TaskQuery(where={"no_such_field": 1}),
            TaskQuery(kind=_DOC, where={"product": "Widget 3000"}),
        ):
            with pytest.raises(InvalidPayload, match="indexed field") as caught:
                repo.query(query)
            assert caught.value.field.startswith("where"), caught.value.field
            with pytest.raises(InvalidPayload, match="indexed field"):
                repo.count(query)

    @pytest.mark.parametrize(
        "value",
        # (A naive time in a task's data is refused by serializers already; index_values
        # refuses one computed from aware data, see tests/domain/test_query.py.)
        [1.5, 2**63, -(2**63) - 1, [1]],
        ids=["float", "too-big", "too-small", "list"],
    )
    def test_index_value_of_a_wrong_type_is_refused_and_nothing_is_written(
        self, value: Any
    ) -> None:
        """`add` or `save` of a task whose indexed value is of no index type raises `InvalidPayload`."""
        repo = self.make_repository()
        bad = make_task("t-bad", kind=PROBE.name, data=Probe(value))
        with pytest.raises(InvalidPayload) as caught:
            repo.add(bad)
        message = str(caught.value)
        assert PROBE.name in message, message
        assert "'probe'" in message, message
        assert repr(value) in message, message
        with pytest.raises(TaskNotFound):
            repo.get(bad.id)
        assert repo.query(TaskQuery()) == []
        good = make_task("t-good", kind=PROBE.name, data=Probe("fine"))
        repo.add(good)
        commented = act(good, BUYER, COMMENT, AddComment("Noted"))
        with pytest.raises(InvalidPayload, match="'probe'"):
            repo.save(attrs.evolve(commented, data=Probe(value)), good.version)
        assert repo.get(good.id) == good
        assert repo.query(TaskQuery(where={"probe": "fine"})) == [good]
        repo.save(commented, good.version)
        assert repo.query(TaskQuery(where={"probe": "fine"})) == [commented]

    def test_index_values_of_every_type_round_trip(self) -> None:
        """Texts, whole numbers at both 64-bit ends and flags are found by equality and by range."""
        repo = self.make_repository()
        values: list[IndexValue] = [
            "",
            "Zertifikat für Ø",
            0,
            -(2**63),
            2**63 - 1,
            False,
            True,
        ]
        tasks = [
            make_task(f"t-{n}", kind=PROBE.name, data=Probe(v), created_at=T0 + n * _HOUR)
            for n, v in enumerate(values)
        ]
        for task in tasks:
            repo.add(task)
        for task, value in zip(tasks, values, strict=True):
            assert repo.query(TaskQuery(where={"probe": value})) == [task], value
        assert _ids(repo.query(TaskQuery(where={"probe": Between(-1, 1)}))) == ["t-2"]
        assert _ids(repo.query(TaskQuery(where={"probe": Between(False)}))) == ["t-5", "t-6"]
        # Texts compare by code point, so capitals come before small letters.
        assert _ids(repo.query(TaskQuery(where={"probe": Between(high="a")}))) == ["t-0", "t-1"]

    # paging: a cursor after the last task seen

    def _page_through(
        self, repo: TaskRepository, query: TaskQuery, between: Any = None
    ) -> list[Task]:
        seen: list[Task] = []
        page: TaskQuery | None = query
        while page is not None:
            found = repo.query(page)
            assert len(found) <= (page.limit or 0)
            seen += found
            page = page.next_page(found)
            if between is not None and page is not None:
                between(seen)
        return seen

    @pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6])
    def test_paging_visits_every_matching_task_once_in_order(self, size: int) -> None:
        """Pages of `size`, each after the last task of the one before, add up to the whole answer."""
        repo = self.make_repository()
        world = _add_world(repo)
        for query in (
            TaskQuery(),
            TaskQuery(company=SUPCO),
            TaskQuery(where={"document_type": "ISO 9001"}),
            TaskQuery(open=True, created_from=T0 + _HOUR),
        ):
            whole, _ = _brute_force(world.values(), query)
            seen = self._page_through(repo, attrs.evolve(query, limit=size))
            assert seen == whole, (query, size)

    def test_paging_sees_tasks_added_between_pages_after_the_cursor_once(self) -> None:
        """Tasks added while paging are seen once if created after the cursor, else not at all."""
        repo = self.make_repository()
        world = _add_world(repo)
        added: list[Task] = []

        def add_some(seen: list[Task]) -> None:
            n = len(added)
            if n >= 6:  # three rounds: each adds two tasks after the cursor, as many as a page
                return
            late = make_task(f"t-late-{n}", created_at=T0 + (4 + n) * _HOUR)
            early = make_task(f"t-early-{n}", created_at=seen[-1].created_at - _MICRO)
            tie = make_task(f"{seen[-1].id}-{n}", created_at=seen[-1].created_at)
            for task in (late, early, tie):
                repo.add(task)
            added.extend((late, tie))
            # A change to a task already seen must not bring it back.
            first = repo.get(seen[0].id)
            repo.save(act(first, BUYER, COMMENT, AddComment("Seen")), first.version)

        seen = self._page_through(repo, TaskQuery(limit=2), between=add_some)
        assert [sort_key(t) for t in seen] == sorted({sort_key(t) for t in seen})
        expected = sorted([*world.values(), *added], key=sort_key)
        assert _ids(seen) == _ids(expected)

    def test_paging_with_random_adds_between_pages_never_misses_nor_repeats(self) -> None:
        """Whatever is added between pages, each task is seen at most once, in order, and none is missed."""

        @settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], **self._examples())
        @given(
            first=st.lists(_adds(), min_size=1, max_size=6, unique_by=lambda a: a.task_id),
            later=st.lists(_adds(), max_size=6),
            query=_queries([*_COMPANIES], _USERS, _moments(_DUE_BEFORE)),
            size=st.integers(1, 4),
        )
        def check(first: list[_Add], later: list[_Add], query: TaskQuery, size: int) -> None:
            repo = self.make_repository()
            model: dict[str, list[Task]] = {}
            for op in first:
                _run_add(repo, model, op)
            expected = {t.id for t in _brute_force([v[-1] for v in model.values()], query)[0]}
            pending = list(later)
            seen: list[Task] = []
            page: TaskQuery | None = attrs.evolve(query, limit=size)
            while page is not None:
                found = repo.query(page)
                seen += found
                page = page.next_page(found)
                while pending and page is not None:
                    op = pending.pop()
                    if op.task_id in model:
                        continue
                    _run_add(repo, model, op)
                    new = model[op.task_id][-1]
                    if page.after is not None and sort_key(new) > page.after.key():
                        expected |= {t.id for t in _brute_force([new], query)[0]}
                    break
            keys = [sort_key(t) for t in seen]
            assert keys == sorted(set(keys))
            assert {t.id for t in seen} == expected

        check()

    # a saved task is found by its new values, never by its old ones (stale indexes)

    def _two_tasks(self, repo: TaskRepository) -> tuple[Task, Task]:
        task = make_task("t-a", due_at=T0 + 10 * _DAY, assignees=[SUPPLIER.ref])
        bystander = make_task("t-b", created_at=T0 + _HOUR, assignees=[SUPPLIER.ref])
        repo.add(task)
        repo.add(bystander)
        return task, bystander

    def test_saved_task_is_found_by_its_new_state_and_ball_only(self) -> None:
        """After a save, state and ball queries see the new values, not the old ones."""
        repo = self.make_repository()
        task, _ = self._two_tasks(repo)
        uploaded = upload(task, SUPPLIER)
        repo.save(uploaded, task.version)
        assert _ids(repo.query(TaskQuery(states="requested"))) == ["t-b"]
        assert repo.query(TaskQuery(states="uploaded")) == [uploaded]
        assert _ids(repo.query(TaskQuery(ball_company=SUPCO))) == ["t-b"]
        assert _ids(repo.query(TaskQuery(ball_company=ACME))) == ["t-a"]
        assert _ids(repo.query(TaskQuery(ball_company=SUPCO, assignee=SUPPLIER.ref))) == ["t-b"]
        assert _ids(repo.query(TaskQuery(ball_company=ACME, assignee=BUYER.ref))) == ["t-a"]
        assert repo.count(TaskQuery()) == {(_DOC, "requested"): 1, (_DOC, "uploaded"): 1}

    def test_task_handed_back_and_forth_is_found_where_the_ball_is_now(self) -> None:
        """After several saves the task is in the court of its latest version only."""
        repo = self.make_repository()
        task, _ = self._two_tasks(repo)
        uploaded = upload(task, SUPPLIER)
        repo.save(uploaded, task.version)
        rejected = reject(uploaded, BUYER)
        repo.save(rejected, uploaded.version)
        assert _ids(repo.query(TaskQuery(ball_company=ACME))) == []
        assert _ids(repo.query(TaskQuery(ball_company=SUPCO))) == ["t-a", "t-b"]
        assert _ids(repo.query(TaskQuery(states={"uploaded", "requested"}))) == ["t-b"]
        assert repo.query(TaskQuery(states="rejected")) == [rejected]

    def test_closed_task_leaves_open_and_ball_queries(self) -> None:
        """A task saved in a final state is no longer open nor in anyone's court."""
        repo = self.make_repository()
        task, _ = self._two_tasks(repo)
        uploaded = upload(task, SUPPLIER)
        repo.save(uploaded, task.version)
        accepted = accept(uploaded, BUYER)
        repo.save(accepted, uploaded.version)
        assert _ids(repo.query(TaskQuery(open=True))) == ["t-b"]
        assert repo.query(TaskQuery(open=False)) == [accepted]
        assert _ids(repo.query(TaskQuery(ball_company=ACME))) == []
        assert _ids(repo.query(TaskQuery(ball_company=SUPCO))) == ["t-b"]
        # Closed tasks keep their due date: due_before does not look at the state.
        assert _ids(repo.query(TaskQuery(due_before=T0 + 11 * _DAY))) == ["t-a"]
        assert _ids(repo.query(TaskQuery(open=True, due_before=T0 + 11 * _DAY))) == []

    def test_reassigned_task_is_found_by_its_new_assignee_only(self) -> None:
        """After a reassignment, assignee queries (and the inbox) see the new assignee."""
        repo = self.make_repository()
        task, _ = self._two_tasks(repo)
        reassigned = assign(task, SUPPLIER, SUPPLIER_COLLEAGUE.ref)
        repo.save(reassigned, task.version)
        assert _ids(repo.query(TaskQuery(assignee=SUPPLIER.ref))) == ["t-b"]
        assert repo.query(TaskQuery(assignee=SUPPLIER_COLLEAGUE.ref)) == [reassigned]
        assert _ids(repo.query(TaskQuery(assignee=BUYER.ref))) == ["t-a", "t-b"]
        inbox = TaskQuery(ball_company=SUPCO, assignee=SUPPLIER_COLLEAGUE.ref)
        assert _ids(repo.query(inbox)) == ["t-a"]
        old_inbox = TaskQuery(ball_company=SUPCO, assignee=SUPPLIER.ref)
        assert _ids(repo.query(old_inbox)) == ["t-b"]

    def test_moved_due_date_is_found_by_its_new_value_only(self) -> None:
        """After the due date moves, earlier or later, due_before sees the new date."""
        repo = self.make_repository()
        task, bystander = self._two_tasks(repo)
        earlier = set_due(task, BUYER, T0 + 3 * _DAY)
        repo.save(earlier, task.version)
        assert _ids(repo.query(TaskQuery(due_before=T0 + 5 * _DAY))) == ["t-a"]
        later = set_due(earlier, BUYER, T0 + 30 * _DAY)
        repo.save(later, earlier.version)
        assert _ids(repo.query(TaskQuery(due_before=T0 + 5 * _DAY))) == []
        assert _ids(repo.query(TaskQuery(due_before=T0 + 11 * _DAY))) == []
        assert repo.query(TaskQuery(due_before=T0 + 31 * _DAY)) == [later]
        dated = set_due(bystander, BUYER, T0 + 2 * _DAY)
        repo.save(dated, bystander.version)
        assert _ids(repo.query(TaskQuery(due_before=T0 + 5 * _DAY))) == ["t-b"]

    def test_task_whose_due_date_was_removed_never_matches_due_before(self) -> None:
        """A task saved without a due date leaves every due_before query."""
        repo = self.make_repository()
        task, _ = self._two_tasks(repo)
        undated = attrs.evolve(task, due_at=None, version=task.version + 1)
        repo.save(undated, task.version)
        assert repo.query(TaskQuery(due_before=T0 + 365 * _DAY)) == []

    def test_refused_saves_leave_every_query_answer_unchanged(self) -> None:
        """A stale or malformed save changes no query answer."""
        repo = self.make_repository()
        task, _ = self._two_tasks(repo)
        first = upload(task, SUPPLIER)
        repo.save(first, task.version)
        stale = set_due(assign(task, SUPPLIER, SUPPLIER_COLLEAGUE.ref), BUYER, T0 + _DAY)
        with pytest.raises(ConcurrencyConflict):
            repo.save(stale, task.version)
        malformed = attrs.evolve(stale, version=first.version)
        with pytest.raises(InvalidPayload):
            repo.save(malformed, first.version)
        assert repo.get(task.id) == first
        assert _ids(repo.query(TaskQuery(due_before=T0 + 2 * _DAY))) == []
        assert _ids(repo.query(TaskQuery(assignee=SUPPLIER_COLLEAGUE.ref))) == []
        assert _ids(repo.query(TaskQuery(assignee=SUPPLIER.ref))) == ["t-a", "t-b"]
        assert _ids(repo.query(TaskQuery(states="uploaded"))) == ["t-a"]
        assert _ids(repo.query(TaskQuery(ball_company=SUPCO))) == ["t-b"]

    def test_the_health_check_reports_nothing_for_tasks_written_through_the_port(self) -> None:
        """`check` finds every index entry in agreement after adds, saves and refused saves."""
        repo = self.make_repository()
        assert repo.check() == []
        world = _add_world(repo)
        moved = set_due(assign(world["t-3"], SUPPLIER, SUPPLIER_COLLEAGUE.ref), BUYER, T0 + _DAY)
        repo.save(moved, world["t-3"].version)
        with pytest.raises(ConcurrencyConflict):
            repo.save(upload(world["t-3"], SUPPLIER), world["t-3"].version)
        problems = repo.check()
        assert problems == [], "\n".join(str(p) for p in problems)

    # every answer agrees with a brute-force filter

    def test_query_and_count_agree_with_brute_force_after_random_adds_and_saves(self) -> None:
        """After every step of random adds, saves and stale saves, answers match a brute force."""

        # Settings are built here, not at import, so they extend the profile the host loaded.
        @settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], **self._examples())
        @given(
            first=st.lists(_adds(), min_size=1, max_size=6),
            then=st.lists(_operations(), min_size=2, max_size=25),
            queries=st.lists(
                _queries([*_COMPANIES, _STRANGER], _USERS, _moments(_DUE_BEFORE)), max_size=6
            ),
        )
        def check(
            first: list[_Add], then: list[_Add | _Act | _StaleSave], queries: list[TaskQuery]
        ) -> None:
            repo = self.make_repository()
            model: dict[str, list[Task]] = {}
            for op in [*first, *then]:
                touched = _run(repo, model, op)
                latest = [versions[-1] for versions in model.values()]
                probes = _probes(model[touched]) if touched is not None else []
                _check_queries(repo, latest, [TaskQuery(), *queries, *probes])
            every_version = [v for versions in model.values() for v in versions]
            _check_queries(repo, latest, _probes(every_version))
            for task in latest:
                assert repo.get(task.id) == task

        check()

    def test_generated_tasks_come_back_equal_and_queries_agree_with_brute_force(self) -> None:
        """Tasks from the hypothesis strategies are stored as they are and found as `matches` says."""
        registry = default_registry()
        companies = [CompanyId(c) for c in ("req", "rcp", "other")]
        users = [UserRef(c, UserId(f"{c}-{n}")) for c in companies for n in (1, 2, 3)]

        @settings(
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            **self._examples(),
        )
        @given(
            tasks=st.lists(generated_tasks(registry), max_size=5, unique_by=lambda t: t.id),
            queries=st.lists(
                _queries(companies, users, aware_datetimes(), aware_datetimes()), max_size=8
            ),
        )
        def check(tasks: list[Task], queries: list[TaskQuery]) -> None:
            repo = self.make_repository()
            for task in tasks:
                repo.add(task)
            for task in tasks:
                assert repo.get(task.id) == task
            _check_queries(repo, tasks, [TaskQuery(), *queries])

        check()

    # commit: one atomic write of several tasks and messages

    def test_commit_writes_every_task_and_message_and_returns_the_message_ids(self) -> None:
        """A commit adds and saves several tasks and queues its messages, ids rising in order."""
        repo = self.make_repository()
        first = make_task("t-1", assignees=[SUPPLIER.ref])
        repo.add(first)
        second = make_task("t-2", assignees=[SUPPLIER.ref])
        uploaded = upload(first, SUPPLIER)
        messages = _messages(3)
        ids = repo.commit(Changeset(added=[second], saved=[(uploaded, 1)], messages=messages))
        assert repo.get(TaskId("t-1")) == uploaded
        assert repo.get(TaskId("t-2")) == second
        assert len(ids) == 3
        assert list(ids) == sorted(set(ids))
        pending = repo.pending()
        assert [e.id for e in pending] == list(ids)
        assert [e.message for e in pending] == list(messages)
        assert [e.message.payload for e in pending] == [m.payload for m in messages]

    def test_commit_with_one_stale_task_writes_nothing_at_all(self) -> None:
        """A stale version anywhere in a commit refuses all of it: no task, no message."""
        repo = self.make_repository()
        first = make_task("t-1", assignees=[SUPPLIER.ref])
        other = make_task("t-2", assignees=[SUPPLIER.ref])
        repo.add(first)
        repo.add(other)
        repo.save(upload(other, SUPPLIER), 1)
        new = make_task("t-3")
        with pytest.raises(ConcurrencyConflict):
            repo.commit(
                Changeset(
                    added=[new],
                    saved=[(upload(first, SUPPLIER), 1), (upload(other, SUPPLIER), 1)],
                    messages=_messages(2),
                )
            )
        assert repo.get(TaskId("t-1")) == first
        assert repo.get(TaskId("t-2")).version == 2
        with pytest.raises(TaskNotFound):
            repo.get(TaskId("t-3"))
        assert repo.pending() == []

    @pytest.mark.parametrize("problem", ["taken", "unknown", "twice", "version"])
    def test_every_refused_commit_writes_nothing(self, problem: str) -> None:
        """A taken id, an unknown task, a task named twice or a version not above: nothing is written."""
        repo = self.make_repository()
        task = make_task("t-1", assignees=[SUPPLIER.ref])
        repo.add(task)
        fresh = make_task("t-9")
        bad: Changeset
        error: type[Exception]
        if problem == "taken":
            bad, error = Changeset(added=[fresh, task]), ConcurrencyConflict
        elif problem == "unknown":
            stranger = upload(make_task("t-2", assignees=[SUPPLIER.ref]), SUPPLIER)
            bad, error = Changeset(added=[fresh], saved=[(stranger, 1)]), TaskNotFound
        elif problem == "twice":
            bad, error = Changeset(added=[fresh, fresh]), InvalidPayload
        else:
            bad, error = Changeset(added=[fresh], saved=[(task, 1)]), InvalidPayload
        with pytest.raises(error):
            repo.commit(attrs.evolve(bad, messages=_messages(2)))
        assert repo.get(TaskId("t-1")) == task
        with pytest.raises(TaskNotFound):
            repo.get(TaskId("t-9"))
        assert repo.pending() == []
        assert repo.next_number(ACME) == 1

    def test_commit_refuses_a_payload_that_is_not_json_ready(self) -> None:
        """A message whose payload cannot be stored as JSON is refused before anything is written."""
        with pytest.raises(InvalidPayload):
            OutboxMessage("webhook", "k-1", {"when": T0})
        repo = self.make_repository()
        assert repo.commit(Changeset()) == ()
        assert repo.pending() == []

    # the outbox: claim with a lease, complete, retry, dead letters

    def test_claim_leases_ready_messages_oldest_first_and_counts_attempts(self) -> None:
        """A claim takes ready messages in order, leased to the worker, attempts one higher."""
        repo = self.make_repository()
        ids = repo.commit(Changeset(messages=_messages(3)))
        taken = repo.claim("w1", T0, lease=_HOUR, limit=2)
        assert [e.id for e in taken] == list(ids[:2])
        assert all(e.attempts == 1 and e.claimed_by == "w1" for e in taken)
        # Leased messages are not claimed again while the lease lasts; the third one is.
        again = repo.claim("w2", T0 + _HOUR / 2, lease=_HOUR)
        assert [e.id for e in again] == [ids[2]]
        assert repo.claim("w3", T0 + _HOUR / 2, lease=_HOUR) == []
        # After the lease ends, another worker may take them over.
        later = repo.claim("w3", T0 + 2 * _HOUR, lease=_HOUR)
        assert [e.id for e in later] == list(ids)
        assert [e.attempts for e in later] == [2, 2, 2]

    def test_complete_removes_only_messages_whose_claim_is_still_held(self) -> None:
        """Completing removes a message; a claim that was taken over since completes nothing."""
        repo = self.make_repository()
        ids = repo.commit(Changeset(messages=_messages(2)))
        first, second = repo.claim("w1", T0, lease=_HOUR)
        repo.complete([first])
        assert [e.id for e in repo.pending()] == [ids[1]]
        (taken_over,) = repo.claim("w2", T0 + 2 * _HOUR, lease=_HOUR)
        repo.complete([second])  # w1's lease ended: w2 holds the message now
        assert [e.id for e in repo.pending()] == [ids[1]]
        repo.complete([taken_over])
        assert repo.pending() == []

    def test_retry_gives_a_message_back_for_later_with_its_error(self) -> None:
        """A retried message is claimed again only from its not-before time, with the error kept."""
        repo = self.make_repository()
        (message_id,) = repo.commit(Changeset(messages=_messages(1)))
        (entry,) = repo.claim("w1", T0, lease=_HOUR)
        repo.retry(entry, not_before=T0 + _DAY, error="boom")
        assert repo.claim("w1", T0 + _HOUR * 2, lease=_HOUR) == []
        (again,) = repo.claim("w1", T0 + _DAY, lease=_HOUR)
        assert (again.id, again.attempts, again.last_error) == (message_id, 2, "boom")

    def test_a_message_not_before_a_time_waits_until_then(self) -> None:
        """A message queued with `not_before` is not claimed before that time, and is after."""
        repo = self.make_repository()
        late = OutboxMessage("webhook", "late", {"n": 1}, not_before=T0 + _DAY)
        soon = OutboxMessage("webhook", "soon", {"n": 2})
        repo.commit(Changeset(messages=[late, soon]))
        (soon_entry,) = repo.claim("w", T0, lease=_HOUR)
        assert soon_entry.message.key == "soon"
        repo.complete([soon_entry])
        assert [e.message.key for e in repo.claim("w", T0 + _DAY, lease=_HOUR)] == ["late"]

    def test_claim_by_topic_and_by_id_narrows_the_choice(self) -> None:
        """`topics` and `ids` keep a claim to those messages; the others stay ready."""
        repo = self.make_repository()
        ids = repo.commit(
            Changeset(
                messages=[
                    OutboxMessage("a", "1", {}),
                    OutboxMessage("b", "2", {}),
                    OutboxMessage("a", "3", {}),
                ]
            )
        )
        assert [e.id for e in repo.claim("w", T0, lease=_HOUR, topics=["b"])] == [ids[1]]
        assert [e.id for e in repo.claim("w", T0, lease=_HOUR, ids=[ids[2], 10_000])] == [ids[2]]
        assert repo.claim("w", T0, lease=_HOUR, topics=[]) == []
        assert [e.id for e in repo.claim("w", T0, lease=_HOUR)] == [ids[0]]

    def test_buried_messages_are_dead_letters_with_their_reason_and_never_claimed(self) -> None:
        """A buried message leaves the outbox for the dead letters, reason and attempts kept; revive requeues it."""
        repo = self.make_repository()
        ids = repo.commit(Changeset(messages=_messages(2)))
        first, _ = repo.claim("w", T0, lease=_HOUR)
        repo.bury(first, reason="no such user", at=T0)
        (dead,) = repo.dead_letters()
        assert (dead.id, dead.reason, dead.attempts, dead.buried_at) == (
            ids[0],
            "no such user",
            1,
            T0,
        )
        assert (dead.topic, dead.key) == (first.message.topic, first.message.key)
        assert [e.id for e in repo.pending()] == [ids[1]]
        assert repo.claim("w", T0 + _DAY, lease=_HOUR)[0].id == ids[1]
        assert repo.revive([ids[0], 10_000], now=T0 + _DAY) == 1
        assert repo.dead_letters() == []
        (revived,) = [e for e in repo.pending() if e.message.key == first.message.key]
        assert revived.id > max(ids)
        assert revived.message.payload == first.message.payload

    def test_dropped_dead_letters_are_gone_and_the_others_stay(self) -> None:
        """`drop_dead_letters` deletes the named dead letters for good and counts only those it found."""
        repo = self.make_repository()
        ids = repo.commit(Changeset(messages=_messages(3)))
        for entry in repo.claim("w", T0, lease=_HOUR):
            repo.bury(entry, reason="no such user", at=T0)
        assert repo.drop_dead_letters([]) == 0
        assert repo.drop_dead_letters([ids[0], ids[2], 10_000]) == 2
        assert [d.id for d in repo.dead_letters()] == [ids[1]]
        assert repo.drop_dead_letters([ids[0]]) == 0
        assert repo.revive([ids[0], ids[2]], now=T0) == 0
        assert repo.pending() == []

    def test_outbox_ids_are_never_reused_after_delivery(self) -> None:
        """A message queued after others were completed gets a higher id than any before it."""
        repo = self.make_repository()
        old = repo.commit(Changeset(messages=_messages(2)))
        repo.complete(repo.claim("w", T0, lease=_HOUR))
        (new,) = repo.commit(Changeset(messages=_messages(1)))
        assert new > max(old)

    def test_the_outbox_agrees_with_a_model_under_random_operations(self) -> None:
        """Random commits, claims, completions, retries, burials and revivals, against a plain model.

        After every step: pending messages, their order and attempts, and the dead letters
        match the model; no claim returns a message another worker holds under a live lease.
        """
        make = self.make_repository
        examples = self.max_examples
        if examples is None:
            profile = settings.default
            examples = 100 if profile is None else profile.max_examples
        run_state_machine_as_test(
            _outbox_machine(make),
            settings=settings(
                max_examples=max(5, examples // 4),
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )

    @pytest.mark.parametrize(
        ("worker", "lease", "limit", "field"),
        [("", _HOUR, 1, "worker"), ("w", timedelta(0), 1, "lease"), ("w", _HOUR, -1, "limit")],
    )
    def test_a_bad_claim_is_refused_naming_the_argument(
        self, worker: str, lease: timedelta, limit: int, field: str
    ) -> None:
        """A blank worker, a lease that is not positive or a negative limit is refused by name."""
        repo = self.make_repository()
        with pytest.raises(InvalidPayload) as refused:
            repo.claim(worker, T0, lease=lease, limit=limit)
        assert refused.value.field == field

    # once-only marks (a notifying rule's fired-marker)

    def test_a_mark_is_stored_with_its_commit_and_a_second_commit_of_it_writes_nothing(
        self,
    ) -> None:
        """A commit stores its marks; one naming a stored mark raises MarkTaken with nothing written."""
        repo = self.make_repository()
        assert not repo.marked("rule:a/t-1/x")
        repo.commit(Changeset(messages=_messages(1), marks=["rule:a/t-1/x"]))
        assert repo.marked("rule:a/t-1/x")
        assert not repo.marked("rule:a/t-1/y")
        before = len(repo.pending())
        with pytest.raises(MarkTaken) as taken:
            repo.commit(
                Changeset(
                    added=[make_task("t-9")],
                    messages=_messages(2),
                    marks=["rule:a/t-1/y", "rule:a/t-1/x"],
                )
            )
        assert taken.value.mark == "rule:a/t-1/x"
        assert isinstance(taken.value, ConcurrencyConflict)  # retried like any conflict
        assert len(repo.pending()) == before
        assert not repo.marked("rule:a/t-1/y")
        with pytest.raises(TaskNotFound):
            repo.get(TaskId("t-9"))

    @pytest.mark.parametrize("marks", [[""], ["  "], ["m", "m"]])
    def test_a_blank_or_repeated_mark_is_refused_before_anything_is_written(
        self, marks: list[str]
    ) -> None:
        """Marks are distinct non-blank strings; others are refused with the field named."""
        repo = self.make_repository()
        with pytest.raises(InvalidPayload) as refused:
            repo.commit(Changeset(messages=_messages(1), marks=marks))
        assert refused.value.field == "marks"
        assert repo.pending() == []

    def test_threads_committing_one_mark_through_two_doors_land_it_once(self) -> None:
        """Threads racing to commit the same mark (with a message each): exactly one lands."""
        repo, other = self._pair()
        start = threading.Barrier(4)

        def work(door: TaskRepository, n: int) -> bool:
            start.wait()
            try:
                door.commit(
                    Changeset(
                        messages=[OutboxMessage("webhook", f"m{n}", {"n": n})], marks=["once"]
                    )
                )
            except MarkTaken:
                return False
            return True

        with ThreadPoolExecutor(4) as pool:
            doors = (repo, other) * 2
            landed = [f.result() for f in [pool.submit(work, d, n) for n, d in enumerate(doors)]]
        assert landed.count(True) == 1
        assert len(repo.pending()) == 1
        assert other.marked("once")

    def test_marks_are_listed_by_prefix_in_order_and_paged_after_a_mark(self) -> None:
        """`marks(prefix)` lists the stored marks that start with it, in code-point order; `after` and `limit` page."""
        repo = self.make_repository()
        stored = ["rule:a/r/t-2/x", "rule:a/r/t-1/y", "rule:b/r/t-1/x", "rule:a/r/t-1/x", "rule:a"]
        stored += ["thread:email:<m1@x>\nt-1", "rule:a/\u00e9", "rule:a/\U0001f600"]
        repo.commit(Changeset(messages=_messages(1), marks=stored[:3]))
        repo.commit(Changeset(marks=stored[3:]))
        assert repo.marks() == sorted(stored)
        mine = sorted(m for m in stored if m.startswith("rule:a/"))
        assert repo.marks("rule:a/") == mine
        assert repo.marks("rule:a/r/t-1/") == ["rule:a/r/t-1/x", "rule:a/r/t-1/y"]
        assert repo.marks("rule:a/", limit=2) == mine[:2]
        assert repo.marks("rule:a/", after=mine[1], limit=2) == mine[2:4]
        assert repo.marks("rule:a/", after=mine[-1]) == []
        assert repo.marks("rule:a/", after="a") == mine  # an `after` below the prefix
        assert repo.marks("rule:a/", limit=0) == []
        assert repo.marks("thread:email:<m1@x>\n") == ["thread:email:<m1@x>\nt-1"]
        assert repo.marks("nothing") == []

    def test_dropped_marks_are_gone_for_good_and_may_be_stored_again(self) -> None:
        """`drop_marks` deletes the named marks, counts those that were stored, and frees them."""
        repo = self.make_repository()
        repo.commit(Changeset(marks=["m-1", "m-2", "m-3"]))
        assert repo.drop_marks(["m-1", "m-3", "m-9", "m-1"]) == 2
        assert repo.marks() == ["m-2"]
        assert not repo.marked("m-1")
        assert repo.marked("m-2")
        assert repo.drop_marks([]) == 0
        repo.commit(Changeset(marks=["m-1"]))
        assert repo.marked("m-1")
        assert repo.drop_marks(iter(["m-1", "m-2"])) == 2
        assert repo.marks() == []

    @pytest.mark.parametrize(
        ("call", "field"),
        [
            (lambda r: r.marks(7), "prefix"),
            (lambda r: r.marks("x", after=3), "after"),
            (lambda r: r.marks("x", limit=-1), "limit"),
            (lambda r: r.marks("x", limit=True), "limit"),
            (lambda r: r.drop_marks("m-1"), "marks"),
            (lambda r: r.drop_marks([1]), "marks"),
        ],
    )
    def test_a_bad_marks_listing_or_drop_is_refused_naming_the_argument(
        self, call: Callable[[Any], object], field: str
    ) -> None:
        """A prefix or `after` that is not a str, a bad limit, or a str given as the marks to drop is refused."""
        repo = self.make_repository()
        repo.commit(Changeset(marks=["m-1"]))
        with pytest.raises(InvalidPayload) as refused:
            call(repo)
        assert refused.value.field == field
        assert repo.marked("m-1")

    # erasure: a rewritten history is stored exactly

    def test_an_erased_history_is_stored_as_erased_and_replays(self) -> None:
        """A save of a task whose history an erasure rewrote stores every rewritten entry.

        The earlier comment rows and history entries change in place (not only appended), and
        the task read back (through a second door too) equals the erased one and replays to it.
        """
        from taskflow.domain.erasure import TOMBSTONE, DataSubject, erase_personal_data

        repo = self.make_repository()
        task = make_task("t-erase", assignees=[SUPPLIER.ref])
        repo.add(task)
        commented = act(task, SUPPLIER, COMMENT, AddComment("Call me on +44 20 7946 0958"))
        repo.save(commented, 1)
        answered = act(commented, BUYER, COMMENT, AddComment("Sam: +44 20 7946 0958 is noted"))
        repo.save(answered, 2)
        person = DataSubject(SUPPLIER.ref, frozenset({"+44 20 7946 0958"}))
        at = answered.history[-1].at + _DAY
        erased, _ = erase_personal_data(answered, person, BUYER, at, "GDPR request #7")
        repo.save(erased, 3)
        sibling = self.make_sibling(repo)
        for door in (repo, sibling) if sibling is not None else (repo,):
            stored = door.get(TaskId("t-erase"))
            assert stored == erased
            assert [c.text for c in stored.comments] == [TOMBSTONE, f"Sam: {TOMBSTONE} is noted"]
            assert "7946" not in repr(stored)
            assert engine.replay(None, stored) == stored
            assert [e.action for e in stored.history][-1] == "erase_personal_data"

    # concurrency: threads on one repository, and two repositories on one store

    def make_sibling(self, repo: TaskRepository) -> TaskRepository | None:
        """Return another repository on the same store as `repo` (None: the store has no second door)."""
        return None

    def _pair(self) -> tuple[TaskRepository, TaskRepository]:
        repo = self.make_repository()
        sibling = self.make_sibling(repo)
        return repo, repo if sibling is None else sibling

    def test_two_writers_of_one_version_one_wins_and_the_other_conflicts(self) -> None:
        """Two commits from the same version, through two doors of one store: exactly one lands."""
        repo, other = self._pair()
        task = make_task("t-1", assignees=[SUPPLIER.ref])
        repo.add(task)
        seen = other.get(TaskId("t-1"))
        repo.commit(Changeset(saved=[(upload(task, SUPPLIER), 1)], messages=_messages(1)))
        with pytest.raises(ConcurrencyConflict):
            other.commit(Changeset(saved=[(decline(seen, SUPPLIER), 1)], messages=_messages(1)))
        assert other.get(TaskId("t-1")).state == "uploaded"
        assert len(other.pending()) == 1

    def test_threads_racing_on_one_task_land_each_version_once(self) -> None:
        """Threads commit against one task with retries: versions are gapless, every winner lands once."""
        repo, other = self._pair()
        repo.add(make_task("t-1", assignees=[SUPPLIER.ref]))
        rounds = 10

        def work(door: TaskRepository, name: str) -> int:
            won = 0
            for i in range(rounds):
                while True:
                    current = door.get(TaskId("t-1"))
                    changed = act(current, SUPPLIER, COMMENT, AddComment(f"{name}-{i}"))
                    try:
                        door.commit(
                            Changeset(
                                saved=[(changed, current.version)],
                                messages=[OutboxMessage("webhook", f"{name}-{i}", {"n": i})],
                            )
                        )
                    except ConcurrencyConflict:
                        continue
                    won += 1
                    break
            return won

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(work, door, f"w{n}") for n, door in enumerate((repo, other) * 2)]
            won = sum(f.result() for f in futures)
        final = repo.get(TaskId("t-1"))
        assert won == 4 * rounds
        assert final.version == 1 + won
        assert len(final.comments) == won
        assert len(repo.pending()) == won

    def test_two_workers_never_hold_the_same_message_at_once(self) -> None:
        """Workers claiming concurrently through two doors split the messages: none taken twice."""
        repo, other = self._pair()
        ids = repo.commit(Changeset(messages=_messages(60)))

        def drain(door: TaskRepository, worker: str) -> list[int]:
            taken: list[int] = []
            while batch := door.claim(worker, T0, lease=_DAY, limit=3):
                taken += [e.id for e in batch]
            return taken

        with ThreadPoolExecutor(4) as pool:
            futures = [
                pool.submit(drain, door, f"w{n}") for n, door in enumerate((repo, other) * 2)
            ]
            taken = [i for f in futures for i in f.result()]
        assert sorted(taken) == list(ids)


@attrs.define
class _Modelled:
    """The model's view of one stored message."""

    key: str
    attempts: int = 0
    holder: str | None = None
    lease_until: datetime | None = None
    not_before: datetime | None = None


def _outbox_machine(make: Any) -> type[RuleBasedStateMachine]:
    """Return a state machine that drives a new repository's outbox and a model side by side."""

    class OutboxMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.repo: TaskRepository = make()
            self.now = T0
            self.model: dict[int, _Modelled] = {}
            self.dead: dict[int, str] = {}
            self.held: dict[int, OutboxEntry] = {}
            self.keys = itertools.count()

        @rule(count=st.integers(0, 3), wait=st.sampled_from([None, _HOUR, _DAY]))
        def commit(self, count: int, wait: timedelta | None) -> None:
            not_before = None if wait is None else self.now + wait
            messages = [
                OutboxMessage("webhook", f"k{next(self.keys)}", {"n": n}, not_before=not_before)
                for n in range(count)
            ]
            ids = self.repo.commit(Changeset(messages=messages))
            assert len(ids) == count
            assert all(i not in self.model and i not in self.dead for i in ids)
            for message_id, message in zip(ids, messages, strict=True):
                self.model[message_id] = _Modelled(message.key, not_before=not_before)

        @rule(worker=st.sampled_from(["w1", "w2"]), limit=st.integers(0, 4))
        def claim(self, worker: str, limit: int) -> None:
            ready = [
                i
                for i, m in sorted(self.model.items())
                if (m.not_before is None or m.not_before <= self.now)
                and (m.lease_until is None or m.lease_until <= self.now)
            ][:limit]
            taken = self.repo.claim(worker, self.now, lease=_HOUR, limit=limit)
            assert [e.id for e in taken] == ready
            for entry in taken:
                m = self.model[entry.id]
                m.attempts += 1
                m.holder, m.lease_until = worker, self.now + _HOUR
                assert (entry.attempts, entry.message.key) == (m.attempts, m.key)
                self.held[entry.id] = entry

        @rule(data=st.data(), action=st.sampled_from(["complete", "retry", "bury"]))
        def finish(self, data: st.DataObject, action: str) -> None:
            if not self.held:
                return
            entry = self.held.pop(data.draw(st.sampled_from(sorted(self.held))))
            m = self.model.get(entry.id)
            # A claim counts only while it is still the message's latest one.
            current = (
                m is not None and m.attempts == entry.attempts and m.holder == entry.claimed_by
            )
            if action == "complete":
                self.repo.complete([entry])
                if current:
                    del self.model[entry.id]
            elif action == "retry":
                self.repo.retry(entry, not_before=self.now + _HOUR, error="boom")
                if current and m is not None:
                    m.holder, m.lease_until, m.not_before = None, None, self.now + _HOUR
            else:
                self.repo.bury(entry, reason="gave up", at=self.now)
                if current:
                    del self.model[entry.id]
                    self.dead[entry.id] = "gave up"

        @rule()
        def revive_all(self) -> None:
            dead = sorted(self.dead)
            keys = {d.id: d.key for d in self.repo.dead_letters()}
            revived = self.repo.revive(dead, now=self.now)
            assert revived == len(dead)
            self.dead.clear()
            newest = [e for e in self.repo.pending() if e.id not in self.model]
            assert sorted(e.message.key for e in newest) == sorted(keys.values())
            for entry in newest:
                self.model[entry.id] = _Modelled(entry.message.key, not_before=self.now)

        @rule(step=st.sampled_from([timedelta(minutes=30), _HOUR, _DAY]))
        def advance(self, step: timedelta) -> None:
            self.now += step

        @invariant()
        def pending_and_dead_letters_match_the_model(self) -> None:
            pending = self.repo.pending()
            assert [e.id for e in pending] == sorted(self.model)
            assert [(e.message.key, e.attempts) for e in pending] == [
                (self.model[i].key, self.model[i].attempts) for i in sorted(self.model)
            ]
            assert {d.id: d.reason for d in self.repo.dead_letters()} == self.dead

    return OutboxMachine


def _messages(count: int) -> tuple[OutboxMessage, ...]:
    return tuple(
        OutboxMessage("webhook", f"m-{i}", {"n": i, "text": f"message {i}", "ok": True})
        for i in range(count)
    )


# --- the other ports -----------------------------------------------------------------------


def _notifications() -> tuple[Notification, ...]:
    number = "ACME-TASK-7"
    return (
        Notification(SUPPLIER.ref, TaskId("t-7"), number, "opened", f"{number}: opened by bea"),
        Notification(BUYER.ref, TaskId("t-7"), number, "document_uploaded", "Zertifikat für Ø"),
        Notification(BUYER_COLLEAGUE.ref, TaskId("t-8"), "ACME-TASK-8", "commented", "x" * 2000),
    )


class NotifierContract(abc.ABC):
    """What every `Notifier` must do: subclass it and implement `make_notifier`."""

    @abc.abstractmethod
    def make_notifier(self) -> Notifier:
        """Return a new notifier; called once per test."""

    def test_notifier_implements_the_port(self) -> None:
        """The notifier has the method of `Notifier`."""
        assert isinstance(self.make_notifier(), Notifier)

    def test_notify_accepts_notifications_for_several_users_and_events(self) -> None:
        """`notify` takes each `Notification` without raising."""
        notifier = self.make_notifier()
        for notification in _notifications():
            notifier.notify(notification)

    def test_notify_accepts_the_same_notification_twice(self) -> None:
        """Sending one notification again is the host's choice, not an error."""
        notifier = self.make_notifier()
        first = _notifications()[0]
        notifier.notify(first)
        notifier.notify(first)


class ClockContract(abc.ABC):
    """What every `Clock` must do: subclass it and implement `make_clock`."""

    @abc.abstractmethod
    def make_clock(self) -> Clock:
        """Return a new clock; called once per test."""

    def test_clock_implements_the_port(self) -> None:
        """The clock has the method of `Clock`."""
        assert isinstance(self.make_clock(), Clock)

    def test_now_is_timezone_aware(self) -> None:
        """`now` returns a datetime that knows its offset from UTC."""
        now = self.make_clock().now()
        assert isinstance(now, datetime)
        assert now.utcoffset() is not None

    def test_now_never_goes_backwards(self) -> None:
        """Each call to `now` returns a time no earlier than the call before."""
        clock = self.make_clock()
        times = [clock.now() for _ in range(1_000)]
        assert all(a <= b for a, b in itertools.pairwise(times))


class IdFactoryContract(abc.ABC):
    """What every `IdFactory` must do: subclass it and implement `make_ids`."""

    @abc.abstractmethod
    def make_ids(self) -> IdFactory:
        """Return a new id factory; called once per test."""

    def test_id_factory_implements_the_port(self) -> None:
        """The id factory has the method of `IdFactory`."""
        assert isinstance(self.make_ids(), IdFactory)

    def test_a_thousand_ids_are_distinct_non_blank_strings(self) -> None:
        """1,000 ids in a row are all different, and each is a non-blank string."""
        ids = self.make_ids()
        taken = [ids.new_task_id() for _ in range(1_000)]
        assert all(isinstance(task_id, str) and task_id.strip() for task_id in taken)
        assert len(set(taken)) == len(taken)
