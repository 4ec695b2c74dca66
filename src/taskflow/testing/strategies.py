"""Hypothesis strategies for taskflow values and for tasks of any registered kind.

Strategies for a kind's data and payloads come from a `KindStrategies` table: the built-in
kinds are in `builtin_strategies()`; a host adds its own kinds' types with `with_types`.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import attrs
from hypothesis import strategies as st

from taskflow.domain import engine
from taskflow.domain.common import AddComment, Assign, Edit
from taskflow.domain.registry import Registry, TaskKind
from taskflow.domain.task import NewTask, Task
from taskflow.domain.values import (
    PDF,
    Actor,
    Comment,
    CompanyId,
    FileRef,
    Priority,
    TaskId,
    UserId,
    UserRef,
    Visibility,
)
from taskflow.errors import TaskflowError
from taskflow.kinds.document import (
    Decline,
    DocumentRequest,
    ProductDocumentRequest,
    Reject,
    UploadDocument,
)

__all__ = [
    "KindStrategies",
    "Parties",
    "actors",
    "aware_datetimes",
    "builtin_strategies",
    "comments",
    "company_ids",
    "file_refs",
    "new_tasks",
    "parties",
    "pdf_files",
    "tasks",
    "texts",
    "user_refs",
]

# Times stay in a window where every generated due or expiry date is still representable.
_START = datetime(2020, 1, 1, tzinfo=UTC)
_END = datetime(2040, 1, 1, tzinfo=UTC)


def texts(min_size: int = 1, max_size: int = 40) -> st.SearchStrategy[str]:
    """Generate non-blank single-line text."""
    alphabet = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp"))
    return st.text(alphabet, min_size=min_size, max_size=max_size).filter(lambda s: s.strip())


def _slugs() -> st.SearchStrategy[str]:
    return st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=8)


def company_ids() -> st.SearchStrategy[CompanyId]:
    """Generate company ids."""
    return _slugs().map(CompanyId)


def user_refs(company: CompanyId | None = None) -> st.SearchStrategy[UserRef]:
    """Generate users, of `company` when given."""
    companies = st.just(company) if company is not None else company_ids()
    return st.builds(UserRef, companies, _slugs().map(UserId))


def actors(
    company: CompanyId | None = None, roles: st.SearchStrategy[frozenset[str]] | None = None
) -> st.SearchStrategy[Actor]:
    """Generate actors, of `company` when given, with roles drawn from `roles`."""
    companies = st.just(company) if company is not None else company_ids()
    role_sets = roles if roles is not None else st.frozensets(st.sampled_from(["admin", "buyer"]))
    return st.builds(Actor, _slugs().map(UserId), companies, role_sets)


def aware_datetimes(
    min_value: datetime = _START, max_value: datetime = _END
) -> st.SearchStrategy[datetime]:
    """Generate timezone-aware datetimes (UTC and fixed offsets) between the bounds."""
    zones = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))])
    naive = st.datetimes(min_value.replace(tzinfo=None), max_value.replace(tzinfo=None))
    return st.builds(lambda dt, tz: dt.replace(tzinfo=UTC).astimezone(tz), naive, zones)


_MEDIA = st.sampled_from([PDF, "image/png", "image/jpeg", "text/plain", "application/zip"])


def file_refs(media_types: st.SearchStrategy[str] = _MEDIA) -> st.SearchStrategy[FileRef]:
    """Generate file references (never bytes), of the given media types."""
    return st.builds(
        FileRef,
        name=texts(max_size=20),
        media_type=media_types,
        size=st.integers(0, 2**40),
        digest=st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: f"sha256:{h}"),
        storage_key=_slugs().map(lambda s: f"files/{s}"),
    )


def pdf_files() -> st.SearchStrategy[FileRef]:
    """Generate references to PDF files."""
    return file_refs(st.just(PDF))


def comments(author: UserRef | None = None) -> st.SearchStrategy[Comment]:
    """Generate comments, by `author` when given."""
    authors = st.just(author) if author is not None else user_refs()
    return st.builds(Comment, authors, aware_datetimes(), texts(), st.sampled_from(Visibility))


@attrs.frozen
class Parties:
    """Two companies and their users, for driving tasks between a requester and a recipient."""

    requesters: tuple[Actor, ...]
    recipients: tuple[Actor, ...]
    outsider: Actor

    @property
    def everyone(self) -> tuple[Actor, ...]:
        """Return every actor: both companies' users and the outsider."""
        return (*self.requesters, *self.recipients, self.outsider)


def _company_actors(company: str, roles: frozenset[str], n: int) -> tuple[Actor, ...]:
    first = Actor(UserId(f"{company}-1"), CompanyId(company), roles)
    rest = [Actor(UserId(f"{company}-{i}"), CompanyId(company)) for i in range(2, n + 1)]
    return (first, *rest)


@st.composite
def parties(draw: st.DrawFn, roles: frozenset[str] = frozenset({"admin"})) -> Parties:
    """Generate a requester company and a recipient company (two or three users each)."""
    n = draw(st.integers(2, 3))
    m = draw(st.integers(2, 3))
    return Parties(
        _company_actors("req", roles, n),
        _company_actors("rcp", roles, m),
        Actor(UserId("eve"), CompanyId("other"), roles),
    )


@attrs.frozen
class KindStrategies:
    """Which strategy generates each data and payload type; types without one use `st.builds`."""

    types: Mapping[type, st.SearchStrategy[Any]] = attrs.field(factory=dict)

    def with_types(self, extra: Mapping[type, st.SearchStrategy[Any]]) -> KindStrategies:
        """Return a table that also knows `extra` (a host's own data and payload types)."""
        return KindStrategies({**self.types, **extra})

    def for_type(self, kind: type) -> st.SearchStrategy[Any]:
        """Return the strategy for values of `kind`."""
        found = self.types.get(kind)
        return found if found is not None else st.builds(kind)

    def payload(
        self, payload_type: type | None, task: Task, parties: Parties
    ) -> st.SearchStrategy[Any]:
        """Return payloads for an action on `task`: mostly valid ones, sometimes not."""
        if payload_type is None:
            return st.none()
        if payload_type is Assign:
            everyone = [a.ref for a in parties.everyone]
            return st.builds(Assign, st.lists(st.sampled_from(everyone), min_size=1, max_size=2))
        if payload_type is Edit:
            return st.builds(
                Edit,
                subject=st.none() | texts(),
                priority=st.none() | st.sampled_from(Priority),
                tags=st.none() | st.frozensets(_slugs(), max_size=3),
                due_at=st.none() | aware_datetimes(),
            )
        return self.for_type(payload_type)


def _mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # Three draws in four are good, so random walks get past the checks and reach later states.
    return st.integers(0, 3).flatmap(lambda n: good if n else bad)


def _upload_payloads() -> st.SearchStrategy[UploadDocument]:
    good = st.builds(UploadDocument, pdf_files(), st.dates(date(2027, 1, 1), date(2045, 1, 1)))
    bad = st.builds(
        UploadDocument,
        file=file_refs(),
        expires_on=st.none() | st.dates(date(2015, 1, 1), date(2045, 1, 1)),
    )
    return _mostly(good, bad)


def builtin_strategies() -> KindStrategies:
    """Return the strategy table for every built-in kind's data and payloads."""
    doc_types = st.sampled_from(["ISO 9001", "Safety data sheet", "Insurance", "Tax form"])
    return KindStrategies(
        {
            DocumentRequest: st.builds(DocumentRequest, doc_types, st.booleans()),
            ProductDocumentRequest: st.builds(
                ProductDocumentRequest, doc_types, texts(max_size=20), st.booleans()
            ),
            UploadDocument: _upload_payloads(),
            Decline: st.builds(Decline, texts()),
            Reject: st.builds(Reject, texts()),
            AddComment: st.builds(AddComment, texts(), st.sampled_from(Visibility)),
        }
    )


def new_tasks(
    kind: TaskKind, recipient: CompanyId, table: KindStrategies | None = None
) -> st.SearchStrategy[NewTask]:
    """Generate drafts that open a task of `kind` for `recipient`."""
    table = table if table is not None else builtin_strategies()
    return st.builds(
        NewTask,
        subject=texts(),
        recipient=st.just(recipient),
        data=table.for_type(kind.data_type),
        body=st.text(max_size=80),
        priority=st.sampled_from(Priority),
        tags=st.frozensets(_slugs(), max_size=3),
        due_at=st.none() | aware_datetimes(),
    )


@st.composite
def tasks(
    draw: st.DrawFn,
    registry: Registry,
    kind: str | None = None,
    table: KindStrategies | None = None,
    max_steps: int = 8,
) -> Task:
    """Generate a task of `kind` (any registered kind when None) after random accepted actions."""
    table = table if table is not None else builtin_strategies()
    task_kind = registry[kind] if kind is not None else draw(st.sampled_from(list(registry)))
    workflow = task_kind.workflow
    # The first user of each company holds every role the workflow names, so that
    # role-restricted actions are reachable; the others hold none.
    named = frozenset().union(*(t.roles for t in workflow.transitions), workflow.open_roles)
    who = draw(parties(named | {"admin"}))
    at = draw(aware_datetimes(max_value=datetime(2026, 6, 1, tzinfo=UTC)))
    draft = draw(new_tasks(task_kind, who.recipients[0].company, table))
    opener = who.requesters[0]
    draft = attrs.evolve(draft, assignees=(who.recipients[0].ref,))
    task = engine.open_task(
        task_kind.workflow,
        task_kind.name,
        draft,
        opener,
        at,
        TaskId(draw(_slugs())),
        f"REQ-TASK-{draw(st.integers(1, 10_000))}",
    ).task
    for _ in range(draw(st.integers(0, max_steps))):
        actor = draw(st.sampled_from((*who.requesters, *who.recipients)))
        allowed = engine.allowed_actions(task_kind.workflow, task, actor)
        if not allowed:
            continue
        action = draw(st.sampled_from(allowed))
        transition = task_kind.workflow.transition(action)
        assert transition is not None  # allowed_actions names only declared transitions
        payload = draw(table.payload(transition.payload, task, who))
        at = at + draw(st.timedeltas(timedelta(0), timedelta(days=30)))
        try:
            task = engine.apply(task_kind.workflow, task, action, actor, at, payload).task
        except TaskflowError:
            continue
    return task
