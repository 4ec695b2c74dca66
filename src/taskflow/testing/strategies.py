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
from hypothesis import reject
from hypothesis import strategies as st

from taskflow.domain import engine
from taskflow.domain.common import AddComment, Assign, Edit
from taskflow.domain.registry import Registry, TaskKind
from taskflow.domain.task import Cause, NewTask, Task
from taskflow.domain.values import (
    DEFAULT_CATEGORIES,
    PDF,
    Actor,
    ActorType,
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
from taskflow.kinds.agreement import Agreement, RejectSigned, ReplaceDocument, UploadSigned
from taskflow.kinds.audit import AddFiles, Audit, RequestMore
from taskflow.kinds.booking import (
    TIED_ACTIONS,
    BookingAction,
    BookingMade,
    BookingTask,
    ChangeAction,
    MarkResolved,
)
from taskflow.kinds.booking_request import (
    AcceptOffer,
    BookingOffer,
    BookingRequest,
    Broadcast,
    Confirm,
    OfferAccepted,
    Place,
    Rate,
    TimeWindow,
)
from taskflow.kinds.contact import NOT_APPLICABLE, Contact, ContactRequest
from taskflow.kinds.corrective_action import CorrectiveAction, Reopen, Resolve
from taskflow.kinds.crm_task import (
    AddDocument,
    Bill,
    CrmEdit,
    CrmTask,
    Document,
    Regarding,
    TrackerLinked,
    WorkType,
)
from taskflow.kinds.document import (
    Decline,
    DocumentRequest,
    ProductDocumentRequest,
    Reject,
    UploadDocument,
)
from taskflow.kinds.evaluation import Criterion, Evaluation
from taskflow.kinds.general import AskAgain, GeneralRequest, UploadAnswer
from taskflow.kinds.question import (
    ACCEPTED,
    ANSWERED,
    SENT_BACK,
    UNANSWERED,
    Answer,
    Delegate,
    Question,
    QuestionType,
    SendBack,
)
from taskflow.kinds.questionnaire import AttachQuestions, QuestionChange, Questionnaire
from taskflow.kinds.ticket import ComplaintTicket, Severity, SupportTicket

__all__ = [
    "KindStrategies",
    "Parties",
    "actors",
    "aware_datetimes",
    "builtin_strategies",
    "causes",
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
    types = st.sampled_from(ActorType)
    return st.builds(Actor, _slugs().map(UserId), companies, role_sets, type=types)


def causes() -> st.SearchStrategy[Cause]:
    """Generate causes: a request from outside (depth 0) or a handler's change of an event."""
    outside = st.builds(Cause, _slugs())
    event_ids = st.builds(lambda t, v, n: f"{t}@{v}/{n}", _slugs(), st.integers(1, 99), _slugs())
    handled = st.builds(Cause, _slugs(), event_ids, st.integers(1, 5))
    return outside | handled


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
            return _edits(parties)
        if payload_type is CrmEdit and payload_type not in self.types:
            return _crm_edits(parties)
        return self.for_type(payload_type)


def _edits(parties: Parties) -> st.SearchStrategy[Edit]:
    # A few fields at a time (none, now and then), so each side's edit rights meet both
    # fields they allow and fields they do not; watchers may include the outsider.
    everyone = [a.ref for a in parties.everyone]
    values: dict[str, st.SearchStrategy[Any]] = {
        "subject": texts(),
        "body": st.text(max_size=40),
        "category": texts(max_size=20),
        "priority": st.sampled_from(Priority),
        "tags": st.frozensets(_slugs(), max_size=3),
        "due_at": aware_datetimes(),
        "watchers": st.lists(st.sampled_from(everyone), max_size=2),
    }
    chosen = st.sets(st.sampled_from(sorted(values)), max_size=3)
    return chosen.flatmap(
        lambda names: st.fixed_dictionaries({n: values[n] for n in sorted(names)}).map(
            lambda fields: Edit(**fields)
        )
    )


_HOURS = st.decimals(0, 1000, places=2, allow_nan=False, allow_infinity=False)


@st.composite
def crm_tasks(draw: st.DrawFn) -> CrmTask:
    """Generate valid CRM task data: billed only when billable, not complete, no tracker link yet."""
    work_type = draw(st.sampled_from(WorkType))
    start = draw(st.none() | aware_datetimes())
    planned = work_type is WorkType.TASK and start is not None
    return CrmTask(
        regarding=draw(st.builds(Regarding, st.sampled_from(["account", "user"]), _slugs())),
        work_type=work_type,
        start=draw(st.none() | st.dates(date(2020, 1, 1), date(2040, 1, 1))),
        percent_complete=draw(st.integers(0, 99)),
        estimated_hours=draw(st.none() | _HOURS),
        billable=draw(st.booleans()),
        notice_on_change=draw(st.booleans()),
        notice_on_complete=draw(st.booleans()),
        save_to_tracker=draw(st.booleans()),
        entered_by_name=draw(st.none() | texts(max_size=20)),
        price=draw(st.none() | _HOURS),
        planned_start=start if planned else None,
        planned_end=start + timedelta(days=draw(st.integers(0, 30))) if start and planned else None,
    )


def _crm_edits(parties: Parties) -> st.SearchStrategy[CrmEdit]:
    # A few fields at a time, so portal rights meet allowed and refused fields, and the data's
    # rules (billed needs billable, 100 % needs complete, tickets have no plan) are met or broken.
    everyone = [a.ref for a in parties.everyone]
    values: dict[str, st.SearchStrategy[Any]] = {
        "subject": texts(),
        "body": st.text(max_size=40),
        "category": _mostly(st.sampled_from(DEFAULT_CATEGORIES), texts(max_size=20)),
        "priority": st.sampled_from(Priority),
        "tags": st.frozensets(_slugs(), max_size=3),
        "due_at": aware_datetimes(),
        "watchers": st.lists(st.sampled_from(everyone), max_size=2),
        "percent_complete": st.integers(0, 100),
        "actual_hours": _HOURS,
        "billable": st.booleans(),
        "billed": st.booleans(),
        "notice_on_change": st.booleans(),
        "notice_on_complete": st.booleans(),
        "entered_by_phone": texts(max_size=12),
        "mileage": _HOURS,
        "planned_start": aware_datetimes(),
    }
    chosen = st.sets(st.sampled_from(sorted(values)), max_size=3)
    return chosen.flatmap(
        lambda names: st.fixed_dictionaries({n: values[n] for n in sorted(names)}).map(
            lambda fields: CrmEdit(**fields)
        )
    )


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


def _mostly_pdf() -> st.SearchStrategy[FileRef]:
    return _mostly(pdf_files(), file_refs())


@st.composite
def _evaluations(draw: st.DrawFn) -> Evaluation:
    # Valid on a drawn scale: half points, criterion names unique as Evaluation compares them.
    low, high = draw(st.sampled_from([(0, 100), (1, 5), (0, 10)]))
    scores = st.integers(low * 2, high * 2).map(lambda n: n / 2)
    criteria = st.lists(
        st.builds(Criterion, texts(max_size=20), scores, st.text(max_size=30)),
        max_size=4,
        unique_by=lambda c: c.name.strip().casefold(),
    )
    return Evaluation(draw(scores), tuple(draw(criteria)), draw(st.text(max_size=40)), low, high)


def _emails() -> st.SearchStrategy[str]:
    return st.builds(lambda user, domain: f"{user}@{domain}.example", _slugs(), _slugs())


def _phones() -> st.SearchStrategy[str]:
    return st.integers(100, 10**12).map(lambda n: f"+49 {n}")


def _contacts() -> st.SearchStrategy[Contact]:
    # A named person, or '-' in both names (a hotline); always reachable by email or phone.
    words = texts(max_size=15).filter(lambda s: s.strip() != NOT_APPLICABLE)
    reach = st.sampled_from(["email", "phone", "both"]).flatmap(
        lambda r: st.tuples(
            _emails() if r != "phone" else st.just(NOT_APPLICABLE),
            _phones() if r != "email" else st.just(NOT_APPLICABLE),
        )
    )
    person = st.tuples(words, words, words)
    hotline = st.tuples(
        st.just(NOT_APPLICABLE), st.just(NOT_APPLICABLE), st.just(NOT_APPLICABLE) | words
    )
    return st.builds(lambda who, how: Contact(*who, *how), person | hotline, reach)


# Questions choose among these options, and the question ids a questionnaire attaches are these,
# so that generated answers and tracked changes fit a generated task now and then.
_OPTIONS = ("Red", "Green", "Blue")
_QUESTION_IDS = (TaskId("q1"), TaskId("q2"), TaskId("q3"))


def _good_questions() -> st.SearchStrategy[Question]:
    def build(kind: QuestionType, text: str, n: int, required: bool) -> Question:
        options = _OPTIONS[:n] if kind.has_options else ()
        return Question(text, kind, options, required)

    return st.builds(
        build, st.sampled_from(QuestionType), texts(), st.integers(2, 3), st.booleans()
    )


def _questions() -> st.SearchStrategy[Question]:
    # Bad ones: options where none belong, one option only, a blank text.
    bad = st.builds(
        Question,
        st.sampled_from(["", "  ", "Colour?"]),
        st.sampled_from(QuestionType),
        st.sampled_from([(), ("Red",), ("Red", "red"), _OPTIONS]),
    )
    return _mostly(_good_questions(), bad)


def _answers() -> st.SearchStrategy[Answer]:
    # Of every type, so some fit the question at hand; a few blank, a few with a wrong option.
    choices = st.lists(st.sampled_from((*_OPTIONS, "Purple")), max_size=3)
    return st.one_of(
        st.builds(Answer, text=texts()),
        st.builds(Answer, choices=choices),
        st.builds(Answer, yes_no=st.booleans()),
        st.builds(Answer, number=st.integers(-(10**6), 10**6) | st.sampled_from(["2.50", "1e3"])),
        st.builds(Answer, day=st.dates(date(1990, 1, 1), date(2040, 1, 1))),
        st.builds(Answer, file=file_refs()),
        st.just(Answer()),
    )


def _delegates() -> st.SearchStrategy[Delegate]:
    # Mostly a user of the recipient the kit uses ("rcp"); sometimes one of another company.
    colleague = st.integers(1, 4).map(lambda i: UserRef(CompanyId("rcp"), UserId(f"rcp-{i}")))
    return st.builds(Delegate, _mostly(colleague, user_refs()), st.text(max_size=20))


def _questionnaires() -> st.SearchStrategy[Questionnaire]:
    # Short ones mostly, so that random changes of their questions complete them now and then.
    questions = st.lists(_good_questions(), min_size=1, max_size=3)
    return st.builds(Questionnaire, texts(), _mostly(questions.map(lambda q: q[:2]), questions))


def _attachments() -> st.SearchStrategy[AttachQuestions]:
    # Mostly the first ids in order, a count that fits a short questionnaire often.
    ordered = st.integers(1, 2).map(lambda n: _QUESTION_IDS[:n])
    shuffled = st.permutations(_QUESTION_IDS).flatmap(
        lambda ids: st.integers(1, len(ids)).map(lambda n: ids[:n])
    )
    return st.builds(AttachQuestions, _mostly(ordered, shuffled))


def _question_changes() -> st.SearchStrategy[QuestionChange]:
    ids = st.sampled_from((_QUESTION_IDS[0], *_QUESTION_IDS))
    states = st.sampled_from([ANSWERED, ANSWERED, ACCEPTED, SENT_BACK, UNANSWERED])
    return st.builds(QuestionChange, ids, states)


def _booking_refs() -> st.SearchStrategy[str]:
    return st.integers(1000, 9999).map(lambda n: f"BK-{n}")


def _service_names() -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(
        st.sampled_from(["cleaning", "ironing", "windows", "garden"]), min_size=1, max_size=3
    ).map(tuple)


def _places() -> st.SearchStrategy[Place]:
    return st.builds(Place, st.sampled_from(["Home", "Office"]), st.floats(45, 46), st.floats(7, 8))


def _windows() -> st.SearchStrategy[TimeWindow]:
    return st.builds(
        lambda start, hours: TimeWindow(start, start + timedelta(hours=hours)),
        aware_datetimes(),
        st.integers(1, 8),
    )


def _booking_tasks() -> st.SearchStrategy[BookingTask]:
    # Always a task that may be opened: a tied action names a booking, a standalone one its
    # customer (existing or new).
    tied = st.builds(
        lambda action, ref: BookingTask(action=action, booking_ref=ref),
        st.sampled_from(BookingAction),
        _booking_refs(),
    )
    untied = st.sampled_from([a for a in BookingAction if a not in TIED_ACTIONS])
    existing = st.builds(
        lambda action, customer: BookingTask(action=action, customer_id=customer),
        untied,
        _slugs(),
    )
    new = st.builds(
        lambda action, name: BookingTask(action=action, customer_name=name),
        untied,
        texts(max_size=20),
    )
    return tied | existing | new


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
            Agreement: st.builds(
                Agreement,
                st.sampled_from(["NDA", "Framework agreement", "Code of conduct"]),
                pdf_files(),  # tasks() opens drafts unchecked: data must always be valid
                _mostly(st.just(True), st.just(False)),  # signing has more states to visit
            ),
            UploadSigned: st.builds(UploadSigned, _mostly_pdf()),
            RejectSigned: st.builds(RejectSigned, texts()),
            ReplaceDocument: st.builds(ReplaceDocument, _mostly_pdf(), st.text(max_size=20)),
            Audit: st.builds(
                Audit,
                st.sampled_from(["Quality audit", "Environmental audit", "Social audit"]),
                st.none() | st.dates(date(2020, 1, 1), date(2040, 1, 1)),
                # The responsible user belongs to the requester: "req" in tasks() and the machine.
                st.none() | user_refs(CompanyId("req")),
                st.text(max_size=20),
            ),
            AddFiles: st.builds(
                AddFiles,
                _mostly(
                    st.lists(pdf_files(), min_size=1, max_size=3, unique=True),
                    st.lists(file_refs(), min_size=1, max_size=3, unique=True),
                ),
            ),
            RequestMore: st.builds(RequestMore, texts()),
            Evaluation: _evaluations(),
            GeneralRequest: st.just(GeneralRequest()),
            UploadAnswer: st.builds(UploadAnswer, _mostly_pdf()),
            AskAgain: st.builds(AskAgain, texts()),
            CorrectiveAction: st.builds(CorrectiveAction, texts(), st.none() | texts(max_size=12)),
            Resolve: st.builds(Resolve, texts(), st.none() | texts()),
            Reopen: st.builds(Reopen, texts()),
            ContactRequest: st.builds(ContactRequest, texts(max_size=20)),
            Contact: _contacts(),
            SupportTicket: st.builds(
                SupportTicket,
                name=texts(max_size=20),
                email=_emails(),
                description=texts(),
                phone=st.none() | _phones(),
                product=st.none() | texts(max_size=20),
                order_reference=st.none() | _slugs(),
            ),
            ComplaintTicket: st.builds(
                ComplaintTicket,
                name=texts(max_size=20),
                email=_emails(),
                description=texts(),
                product=texts(max_size=20),
                severity=st.sampled_from(Severity),
                phone=st.none() | _phones(),
                order_reference=st.none() | _slugs(),
            ),
            Question: _questions(),
            Questionnaire: _questionnaires(),
            Answer: _answers(),
            Delegate: _delegates(),
            SendBack: st.builds(SendBack, texts()),
            AttachQuestions: _attachments(),
            QuestionChange: _question_changes(),
            CrmTask: crm_tasks(),
            AddDocument: st.builds(
                AddDocument,
                st.builds(
                    Document, file_refs(), texts(max_size=12), st.booleans(), st.text(max_size=20)
                ),
            ),
            TrackerLinked: st.builds(TrackerLinked, _slugs().map(lambda s: f"BUG-{s}")),
            Bill: st.builds(Bill, billed=st.booleans(), actual_hours=st.none() | _HOURS),
            BookingTask: _booking_tasks(),
            ChangeAction: st.builds(
                ChangeAction, st.sampled_from(BookingAction), st.none() | _booking_refs()
            ),
            MarkResolved: st.builds(
                MarkResolved, st.none() | texts(max_size=20), st.none() | _booking_refs()
            ),
            BookingMade: st.builds(BookingMade, _booking_refs()),
            BookingRequest: st.builds(
                BookingRequest,
                customer_id=_slugs(),
                services=_service_names(),
                place=_places(),
                window=_windows(),
            ),
            BookingOffer: st.builds(
                BookingOffer,
                request_id=_slugs(),
                provider_id=_slugs(),
                services=_service_names(),
                place=_places(),
                window=_windows(),
                # After the machine's clock (which stays before 2040): the workflow refuses an
                # accept at or after expires_at, which allowed_actions (no time) cannot foresee.
                expires_at=aware_datetimes(
                    datetime(2041, 1, 1, tzinfo=UTC), datetime(2045, 1, 1, tzinfo=UTC)
                ),
            ),
            Confirm: st.builds(
                Confirm,
                _slugs(),
                _slugs().map(CompanyId),
                st.integers(0, 100),
                st.sampled_from(["match", "alternative"]),
            ),
            # Mostly expiring after the machine's clock (which stays before 2040).
            Broadcast: st.builds(
                Broadcast,
                st.lists(_slugs(), max_size=3),
                aware_datetimes(datetime(2041, 1, 1, tzinfo=UTC), datetime(2045, 1, 1, tzinfo=UTC))
                | aware_datetimes(),
            ),
            OfferAccepted: st.builds(OfferAccepted, _slugs(), _slugs(), _slugs().map(CompanyId)),
            AcceptOffer: st.just(AcceptOffer()),
            Rate: st.builds(Rate, st.integers(1, 5), st.text(max_size=20)),
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
    # A rule of the requester company acts now and then too (it is no assignee, C4).
    rule = Actor.system("rule", who.requesters[0].company, named | {"admin"})
    maybe_cause = st.none() | causes()
    at = draw(aware_datetimes(max_value=datetime(2026, 6, 1, tzinfo=UTC)))
    draft = draw(new_tasks(task_kind, who.recipients[0].company, table))
    opener = draw(st.sampled_from((who.requesters[0], rule)))
    draft = attrs.evolve(draft, assignees=(who.recipients[0].ref,))
    try:
        task = engine.open_task(
            task_kind.workflow,
            task_kind.name,
            draft,
            opener,
            at,
            TaskId(draw(_slugs())),
            f"REQ-TASK-{draw(st.integers(1, 10_000))}",
            cause=draw(maybe_cause),
        ).task
    except TaskflowError:
        # The table may generate drafts a kind refuses (to test refusals); no task comes of them.
        reject()
    for _ in range(draw(st.integers(0, max_steps))):
        actor = draw(st.sampled_from((*who.requesters, *who.recipients, rule)))
        allowed = engine.allowed_actions(task_kind.workflow, task, actor)
        if not allowed:
            continue
        action = draw(st.sampled_from(allowed))
        transition = task_kind.workflow.transition(action)
        assert transition is not None  # allowed_actions names only declared transitions
        payload = draw(table.payload(transition.payload, task, who))
        at = at + draw(st.timedeltas(timedelta(0), timedelta(days=30)))
        try:
            cause = draw(maybe_cause)
            task = engine.apply(
                task_kind.workflow, task, action, actor, at, payload, cause=cause
            ).task
        except TaskflowError:
            continue
    return task
