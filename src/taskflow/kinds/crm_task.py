"""CRM tasks and tickets (seeds 003 and 004): configurable statuses, effort, billing, documents.

A CRM task is regarding an account/lead or a user; its statuses are the host's, each mapped onto
one of the five CS4 categories (not started, in progress, waiting on customer, complete,
cancelled), and the workflow is built from that configuration and checked like any other.
"Task complete" (C18) is one action; a portal user (the requester's company) edits only a
configurable subset of fields, the business edits all (C10); work notes are public or internal
comments (C7); an optional SLA (`taskflow.sla`) adds the system-only escalation action and the
`sla_next_event` index. A ticket (for talking with customers) and a task (planned work, with a
planned schedule) are the same kind told apart by `work_type` (seed 004).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

import attrs

from taskflow.domain.common import EDIT, common_actions
from taskflow.domain.intake import INTAKE_INDEXED
from taskflow.domain.matrix import MatrixEntry
from taskflow.domain.notifications import Notification
from taskflow.domain.registry import TaskKind
from taskflow.domain.task import EDITABLE_FIELDS, OPEN, DomainEvent, NewTask, Task
from taskflow.domain.validators import excerpt, frozenset_of, one_of, tuple_of, typed_fields
from taskflow.domain.values import (
    DEFAULT_CATEGORIES,
    Actor,
    FileRef,
    Priority,
    Side,
    UserRef,
    aware,
    blank_to_none,
    not_blank,
    optional_text,
)
from taskflow.domain.workflow import (
    OPEN_STATES,
    Audience,
    Operation,
    State,
    Transition,
    Workflow,
)
from taskflow.errors import InvalidPayload, InvalidWorkflow
from taskflow.sla.policy import (
    SLA_ESCALATED,
    SLA_NEXT_EVENT,
    Escalate,
    SlaPolicies,
    escalation_action,
    next_sla_event,
)

__all__ = [
    "ADD_DOCUMENT",
    "BILL",
    "COMPLETE",
    "CRM_EDIT_FIELDS",
    "CRM_TASK",
    "DEFAULT_STATUSES",
    "LINK_TRACKER",
    "PORTAL_EDITABLE",
    "REOPEN",
    "AddDocument",
    "Bill",
    "CrmConfig",
    "CrmEdit",
    "CrmStatus",
    "CrmTask",
    "Document",
    "Regarding",
    "StatusCategory",
    "TrackerLinked",
    "WorkType",
    "crm_matrix",
    "crm_policy",
    "crm_task_kind",
    "status_action",
]

COMPLETE = "complete"
REOPEN = "reopen"
ADD_DOCUMENT = "add_document"
LINK_TRACKER = "link_tracker"
BILL = "bill"
COMPLETED = "task_completed"


class StatusCategory(enum.StrEnum):
    """The five CRM status categories (CS4) every configured status maps onto."""

    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    WAITING_ON_CUSTOMER = "waiting_on_customer"
    COMPLETE = "complete"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        """Tell whether a status of this category ends the task."""
        return self in (StatusCategory.COMPLETE, StatusCategory.CANCELLED)


class WorkType(enum.StrEnum):
    """A ticket talks with a customer; a task is planned work with a planned schedule (seed 004)."""

    TICKET = "ticket"
    TASK = "task"


class RegardingType(enum.StrEnum):
    """What a CRM task is about: an account (or lead), or a user."""

    ACCOUNT = "account"
    USER = "user"


def _regarding_type(value: Any) -> RegardingType:
    return one_of(RegardingType, value, "Regarding.type")


def _work_type(value: Any) -> WorkType:
    return one_of(WorkType, value, "CrmTask.work_type")


def _status_category(value: Any) -> StatusCategory:
    return one_of(StatusCategory, value, "CrmStatus.category")


@attrs.frozen(field_transformer=typed_fields)
class Regarding:
    """What the task is regarding: an account/lead or a user, by the host's id."""

    type: RegardingType = attrs.field(converter=_regarding_type)
    id: str = attrs.field(validator=not_blank)

    @classmethod
    def account(cls, account_id: str) -> Regarding:
        """Return a reference to an account (or lead)."""
        return cls(RegardingType.ACCOUNT, account_id)

    @classmethod
    def user(cls, user_id: str) -> Regarding:
        """Return a reference to a user."""
        return cls(RegardingType.USER, user_id)


def _optional_date(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, date) or isinstance(value, datetime)):
        msg = f"{type(instance).__name__}.{attribute.name} must be a date or None, got {excerpt(value)}"
        raise InvalidPayload(msg, field=attribute.name)


def _validity(instance: Document, attribute: attrs.Attribute[Any], value: Any) -> None:
    _optional_date(instance, attribute, value)
    if value is not None and instance.valid_from is not None and value < instance.valid_from:
        msg = (
            f"Document.valid_until ({value}) must not be before valid_from ({instance.valid_from})"
        )
        raise InvalidPayload(msg, field="valid_until")


@attrs.frozen(field_transformer=typed_fields)
class Document:
    """A document reference on a task (C8): the file and its metadata, never its bytes."""

    file: FileRef
    category: str = attrs.field(default="General", validator=not_blank)
    active: bool = True
    description: str = ""
    long_description: str = ""
    document_date: date | None = attrs.field(default=None, validator=_optional_date)
    valid_from: date | None = attrs.field(default=None, validator=_optional_date)
    valid_until: date | None = attrs.field(default=None, validator=_validity)


def _decimal(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        msg = (
            f"{type(instance).__name__}.{attribute.name} must be a Decimal >= 0 (for example "
            f"Decimal('12.50')) or None, got {excerpt(value)}"
        )
        raise InvalidPayload(msg, field=attribute.name)


def _percent(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None and type(instance) is not CrmTask:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100:
        msg = f"{type(instance).__name__}.percent_complete must be a whole number from 0 to 100, got {excerpt(value)}"
        raise InvalidPayload(msg, field="percent_complete")


def _flag(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool) and not (value is None and type(instance) not in _NO_NONE):
        msg = f"{type(instance).__name__}.{attribute.name} must be True or False, got {excerpt(value)}"
        raise InvalidPayload(msg, field=attribute.name)


def _text(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    optional_text(instance, attribute, value)


def _planned_end(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    aware(instance, attribute, value)
    start = instance.planned_start
    if value is not None and start is not None and value < start:
        msg = (
            f"{type(instance).__name__}.planned_end ({value.isoformat()}) must not be before "
            f"planned_start ({start.isoformat()})"
        )
        raise InvalidPayload(msg, field="planned_end")


def _documents(value: Iterable[Document]) -> tuple[Document, ...]:
    return tuple_of(Document, value, "CrmTask.documents")


def _task_rules(instance: CrmTask, attribute: attrs.Attribute[Any], value: Any) -> None:
    # Runs last, when every field is set: the rules that tie fields together.
    if instance.billed and not instance.billable:
        msg = "billed can be set only on a billable task; set billable first (or leave billed off)"
        raise InvalidPayload(msg, field="billed")
    if instance.percent_complete == 100 and instance.completed_at is None:
        msg = (
            "percent_complete is 100 only when the task is complete: take 'complete' (task "
            "complete), or give 0 to 99"
        )
        raise InvalidPayload(msg, field="percent_complete")
    if instance.work_type is WorkType.TICKET and (
        instance.planned_start is not None or instance.planned_end is not None
    ):
        field = "planned_start" if instance.planned_start is not None else "planned_end"
        msg = f"{field} is only for tasks (work_type 'task'); a ticket has no planned schedule"
        raise InvalidPayload(msg, field=field)


@attrs.frozen(kw_only=True, field_transformer=typed_fields)
class CrmTask:
    """Data of a CRM task or ticket (seed 003): regarding, effort, billing, extras, documents.

    The shared task fields hold the rest: `subject` and `body` (short and long description),
    `category`, `priority`, `assignees`, `watchers` (the notify list), `due_at`, `links`
    (related tasks) and `tags`; the status is the task's state. `start` None means the day
    the task was opened (`start_of`).
    """

    regarding: Regarding
    work_type: WorkType = attrs.field(default=WorkType.TASK, converter=_work_type)
    start: date | None = attrs.field(default=None, validator=_optional_date)
    completed_at: datetime | None = attrs.field(default=None, validator=aware)
    percent_complete: int = attrs.field(default=0, validator=_percent)
    estimated_hours: Decimal | None = attrs.field(default=None, validator=_decimal)
    actual_hours: Decimal | None = attrs.field(default=None, validator=_decimal)
    billable: bool = attrs.field(default=False, validator=_flag)
    billed: bool = attrs.field(default=False, validator=_flag)
    notice_on_change: bool = attrs.field(default=False, validator=_flag)
    notice_on_complete: bool = attrs.field(default=False, validator=_flag)
    save_to_tracker: bool = attrs.field(default=False, validator=_flag)
    tracker_link: str | None = attrs.field(default=None, converter=blank_to_none, validator=_text)
    entered_by_name: str | None = attrs.field(
        default=None, converter=blank_to_none, validator=_text
    )
    entered_by_email: str | None = attrs.field(
        default=None, converter=blank_to_none, validator=_text
    )
    entered_by_phone: str | None = attrs.field(
        default=None, converter=blank_to_none, validator=_text
    )
    quantity: Decimal | None = attrs.field(default=None, validator=_decimal)
    price: Decimal | None = attrs.field(default=None, validator=_decimal)
    expenses: Decimal | None = attrs.field(default=None, validator=_decimal)
    mileage: Decimal | None = attrs.field(default=None, validator=_decimal)
    documents: tuple[Document, ...] = attrs.field(default=(), converter=_documents)
    planned_start: datetime | None = attrs.field(default=None, validator=aware)
    planned_end: datetime | None = attrs.field(default=None, validator=_planned_end)
    _rules: None = attrs.field(default=None, init=False, validator=_task_rules)

    @property
    def account(self) -> str | None:
        """Return the id of the account the task is regarding (None: it is regarding a user).

        SLA rules on the account (`SlaRule(accounts=...)`) look at this account.
        """
        return self.regarding.id if self.regarding.type is RegardingType.ACCOUNT else None

    def start_of(self, task: Task) -> date:
        """Return the task's start date: the one given, else the day it was opened (UTC)."""
        return self.start if self.start is not None else task.created_at.date()


# The data fields `edit` may change, beside the shared editable fields (`EDITABLE_FIELDS`).
_DATA_EDIT_FIELDS: tuple[str, ...] = (
    "start",
    "percent_complete",
    "estimated_hours",
    "actual_hours",
    "billable",
    "billed",
    "notice_on_change",
    "notice_on_complete",
    "entered_by_name",
    "entered_by_email",
    "entered_by_phone",
    "quantity",
    "price",
    "expenses",
    "mileage",
    "planned_start",
    "planned_end",
)
CRM_EDIT_FIELDS: frozenset[str] = EDITABLE_FIELDS | frozenset(_DATA_EDIT_FIELDS)
"""Every field the CRM `edit` action can change: the shared ones and the CRM task's own."""

PORTAL_EDITABLE: frozenset[str] = frozenset(
    {"watchers", "notice_on_change", "notice_on_complete", "entered_by_email", "entered_by_phone"}
)
"""What a portal user may change after submitting a task by default (C10): the submission stays."""


def _optional_priority(value: Any) -> Priority | None:
    return None if value is None else one_of(Priority, value, "CrmEdit.priority")


def _optional_set(value: Any) -> frozenset[str] | None:
    return None if value is None else frozenset_of(str, value, "CrmEdit.tags")


def _optional_refs(value: Any) -> tuple[UserRef, ...] | None:
    return None if value is None else tuple_of(UserRef, value, "CrmEdit.watchers", unique=True)


@attrs.frozen(kw_only=True, field_transformer=typed_fields)
class CrmEdit:
    """Payload of the CRM `edit`: the fields to change; a field left None stays as it is."""

    EDITABLE_FIELDS: ClassVar[frozenset[str]] = CRM_EDIT_FIELDS

    subject: str | None = None
    body: str | None = None
    category: str | None = None
    priority: Priority | None = attrs.field(default=None, converter=_optional_priority)
    tags: frozenset[str] | None = attrs.field(default=None, converter=_optional_set)
    due_at: datetime | None = attrs.field(default=None, validator=aware)
    watchers: tuple[UserRef, ...] | None = attrs.field(default=None, converter=_optional_refs)
    start: date | None = attrs.field(default=None, validator=_optional_date)
    percent_complete: int | None = attrs.field(default=None, validator=_percent)
    estimated_hours: Decimal | None = attrs.field(default=None, validator=_decimal)
    actual_hours: Decimal | None = attrs.field(default=None, validator=_decimal)
    billable: bool | None = attrs.field(default=None, validator=_flag)
    billed: bool | None = attrs.field(default=None, validator=_flag)
    notice_on_change: bool | None = attrs.field(default=None, validator=_flag)
    notice_on_complete: bool | None = attrs.field(default=None, validator=_flag)
    entered_by_name: str | None = attrs.field(default=None, validator=_text)
    entered_by_email: str | None = attrs.field(default=None, validator=_text)
    entered_by_phone: str | None = attrs.field(default=None, validator=_text)
    quantity: Decimal | None = attrs.field(default=None, validator=_decimal)
    price: Decimal | None = attrs.field(default=None, validator=_decimal)
    expenses: Decimal | None = attrs.field(default=None, validator=_decimal)
    mileage: Decimal | None = attrs.field(default=None, validator=_decimal)
    planned_start: datetime | None = attrs.field(default=None, validator=aware)
    planned_end: datetime | None = attrs.field(default=None, validator=aware)

    def fields(self) -> dict[str, Any]:
        """Return the fields this edit sets, by name."""
        return {
            a.name: getattr(self, a.name)
            for a in attrs.fields(CrmEdit)
            if getattr(self, a.name) is not None
        }


@attrs.frozen(field_transformer=typed_fields)
class AddDocument:
    """Payload of `add_document`: a document reference with its metadata (C8)."""

    document: Document


@attrs.frozen(kw_only=True, field_transformer=typed_fields)
class Bill:
    """Payload of `bill`: accounting marks the task billed (or not) and may record its actual hours.

    Unlike `edit`, `bill` is offered on a complete or cancelled task too: accounting bills the
    work once it is done (seed 003).
    """

    billed: bool = attrs.field(default=True, validator=_flag)
    actual_hours: Decimal | None = attrs.field(default=None, validator=_decimal)


@attrs.frozen(field_transformer=typed_fields)
class TrackerLinked:
    """Payload of `link_tracker`: the item the tracker opened for the task (C16)."""

    link: str = attrs.field(validator=not_blank)


def _status_name(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value.isidentifier():
        msg = (
            f"CrmStatus.name must be a Python identifier (letters, digits, _), got {excerpt(value)}"
        )
        raise InvalidWorkflow(msg)


@attrs.frozen(field_transformer=typed_fields)
class CrmStatus:
    """A host's status: its name (the workflow state), its CS4 category and its label."""

    name: str = attrs.field(validator=_status_name)
    category: StatusCategory = attrs.field(converter=_status_category)
    label: str = ""


DEFAULT_STATUSES: tuple[CrmStatus, ...] = (
    CrmStatus("not_started", StatusCategory.NOT_STARTED, "Not Started"),
    CrmStatus("in_progress", StatusCategory.IN_PROGRESS, "In Progress"),
    CrmStatus("waiting_on_customer", StatusCategory.WAITING_ON_CUSTOMER, "Waiting on Customer"),
    CrmStatus("complete", StatusCategory.COMPLETE, "Complete"),
    CrmStatus("cancelled", StatusCategory.CANCELLED, "Cancelled"),
)
"""The CS4 statuses, one per category."""


def _statuses(value: Iterable[CrmStatus]) -> tuple[CrmStatus, ...]:
    return tuple_of(CrmStatus, value, "CrmConfig.statuses")


def _categories(value: Iterable[str]) -> tuple[str, ...]:
    return tuple_of(str, value, "CrmConfig.categories")


def _portal_editable(value: Iterable[str]) -> frozenset[str]:
    return frozenset_of(str, value, "CrmConfig.portal_editable")


def _check_config(instance: CrmConfig, attribute: attrs.Attribute[Any], value: Any) -> None:
    problems: list[str] = []
    names = [s.name for s in instance.statuses]
    problems += [
        f"status '{n}' is declared twice" for n in sorted(set(names)) if names.count(n) > 1
    ]
    have = {s.category for s in instance.statuses}
    problems += [
        f"no status is in category '{c.value}'"
        for c in (StatusCategory.NOT_STARTED, StatusCategory.IN_PROGRESS, StatusCategory.COMPLETE)
        if c not in have
    ]
    if not instance.categories or any(
        not isinstance(c, str) or not c.strip() for c in instance.categories
    ):
        problems.append("categories must be a non-empty list of non-blank names")
    unknown = sorted(instance.portal_editable - CRM_EDIT_FIELDS)
    if unknown:
        problems.append(
            f"portal_editable names {unknown}, which edit cannot change; choose from "
            f"{sorted(CRM_EDIT_FIELDS)}"
        )
    problems += _pausing_problems(instance)
    if problems:
        msg = f"CRM task configuration {excerpt(instance.kind)} is invalid: " + "; ".join(problems)
        raise InvalidWorkflow(msg)


def _pausing_problems(config: CrmConfig) -> list[str]:
    # A policy that pauses in no configured status would never pause (the default names the
    # CS4 status 'waiting_on_customer', which a host may have renamed): say which to name.
    if config.sla is None:
        return []
    names = {s.name for s in config.statuses}
    waiting = sorted(
        s.name for s in config.statuses if s.category is StatusCategory.WAITING_ON_CUSTOMER
    )
    problems: list[str] = []
    for policy in config.sla.policies:
        if not policy.pausing or policy.pausing & names:
            continue
        if waiting:
            hint = f"give pausing={set(waiting)} (the statuses waiting on the customer)"
        else:
            hint = "no status waits on the customer"
        problems.append(
            f"SLA policy '{policy.name}' pauses in {sorted(policy.pausing)}, none of which is a "
            f"status; {hint}, or pausing=frozenset() never to pause"
        )
    return problems


@attrs.frozen(field_transformer=typed_fields)
class CrmConfig:
    """What a host configures of CRM tasks: statuses, categories, portal rights and SLA policies."""

    statuses: tuple[CrmStatus, ...] = attrs.field(default=DEFAULT_STATUSES, converter=_statuses)
    categories: tuple[str, ...] = attrs.field(default=DEFAULT_CATEGORIES, converter=_categories)
    portal_editable: frozenset[str] = attrs.field(
        default=PORTAL_EDITABLE, converter=_portal_editable
    )
    sla: SlaPolicies | None = None
    kind: str = "crm_task"
    _checked: None = attrs.field(default=None, init=False, validator=_check_config)

    def status(self, name: str) -> CrmStatus:
        """Return the status called `name`."""
        for status in self.statuses:
            if status.name == name:
                return status
        msg = f"CRM tasks have no status '{name}'; statuses: {[s.name for s in self.statuses]}"
        raise InvalidPayload(msg, field="status")

    def first_of(self, category: StatusCategory) -> CrmStatus:
        """Return the first configured status of `category`."""
        return next(s for s in self.statuses if s.category is category)


def status_action(config: CrmConfig, status: CrmStatus) -> str:
    """Return the name of the action that sets `status` (the first complete status: 'complete')."""
    if status == config.first_of(StatusCategory.COMPLETE):
        return COMPLETE
    if status.category is StatusCategory.COMPLETE:
        return f"complete_as_{status.name}"
    return f"set_{status.name}"


def _check_category(categories: Sequence[str], category: str | None, action: str) -> None:
    if category is not None and category not in categories:
        msg = (
            f"category {excerpt(category)} is not one of the CRM task categories; choose from "
            f"{', '.join(categories)}"
        )
        raise InvalidPayload(msg, field="category", action=action)


def _open_check(config: CrmConfig) -> Any:
    def check(draft: NewTask, actor: Actor, at: datetime) -> None:
        _check_category(config.categories, draft.category, OPEN)
        data = draft.data
        if data.completed_at is not None or data.percent_complete == 100:
            msg = "a new CRM task is not complete yet: leave completed_at unset and percent_complete below 100"
            raise InvalidPayload(msg, field="data.completed_at", action=OPEN)
        if data.tracker_link is not None or data.billed:
            field = "tracker_link" if data.tracker_link is not None else "billed"
            msg = f"a new CRM task cannot carry {field}: it is set after the task is opened"
            raise InvalidPayload(msg, field=f"data.{field}", action=OPEN)

    return check


def _edited_data(task: Task, payload: CrmEdit) -> tuple[dict[str, Any], Any]:
    wanted = payload.fields()
    shared = {k: v for k, v in wanted.items() if k in EDITABLE_FIELDS}
    own = {k: v for k, v in wanted.items() if k not in EDITABLE_FIELDS}
    return shared, attrs.evolve(task.data, **own) if own else task.data


def _edit_check(config: CrmConfig) -> Any:
    def check(task: Task, payload: CrmEdit, actor: Actor, at: datetime) -> None:
        wanted = payload.fields()
        if not wanted:
            msg = f"'{EDIT}' on task {task.number} names no field to change"
            raise InvalidPayload(msg, action=EDIT)
        if payload.subject is not None and not payload.subject.strip():
            msg = f"subject of task {task.number} must not be blank"
            raise InvalidPayload(msg, field="subject", action=EDIT)
        _check_category(config.categories, payload.category, EDIT)
        parties = (task.requester.company, task.recipient)
        strangers = [str(r) for r in wanted.get("watchers", ()) if r.company not in parties]
        if strangers:
            msg = f"the notify list of task {task.number} may name users of {parties} only; not: {strangers}"
            raise InvalidPayload(msg, field="watchers", action=EDIT)
        _edited_data(
            task, payload
        )  # the data's own rules (billed, 100 %, planned dates) refuse here

    return check


def _edit(task: Task, payload: CrmEdit, actor: Actor, at: datetime) -> dict[str, Any]:
    shared, data = _edited_data(task, payload)
    return {**shared, "data": data} if data is not task.data else shared


def _complete(task: Task, payload: None, actor: Actor, at: datetime) -> dict[str, Any]:
    # Task complete (C18): status (the transition's target), completed now, 100 %.
    return {"data": attrs.evolve(task.data, completed_at=at, percent_complete=100)}


def _reopen(task: Task, payload: None, actor: Actor, at: datetime) -> dict[str, Any]:
    data = task.data
    percent = min(data.percent_complete, 99)
    return {"data": attrs.evolve(data, completed_at=None, percent_complete=percent)}


def _add_document(task: Task, payload: AddDocument, actor: Actor, at: datetime) -> dict[str, Any]:
    return {"data": attrs.evolve(task.data, documents=(*task.data.documents, payload.document))}


def _billed_data(task: Task, payload: Bill) -> Any:
    hours = task.data.actual_hours if payload.actual_hours is None else payload.actual_hours
    return attrs.evolve(task.data, billed=payload.billed, actual_hours=hours)


def _bill_check(task: Task, payload: Bill, actor: Actor, at: datetime) -> None:
    _billed_data(task, payload)  # the data's rule (billed needs billable) refuses here


def _bill(task: Task, payload: Bill, actor: Actor, at: datetime) -> dict[str, Any]:
    return {"data": _billed_data(task, payload)}


def _not_linked(task: Task, actor: Actor) -> str | None:
    if task.data.tracker_link is not None:
        return f"task {task.number} is linked to tracker item {task.data.tracker_link} already"
    return None


def _link(task: Task, payload: TrackerLinked, actor: Actor, at: datetime) -> dict[str, Any]:
    return {"data": attrs.evolve(task.data, tracker_link=payload.link)}


CUSTOMER = Side.REQUESTER
BUSINESS = Side.RECIPIENT


def crm_workflow(config: CrmConfig) -> Workflow:
    """Return the CRM workflow the configuration describes, checked like any workflow."""
    states = tuple(
        State(
            s.name,
            final=s.category.final,
            waiting_on=None
            if s.category.final
            else CUSTOMER
            if s.category is StatusCategory.WAITING_ON_CUSTOMER
            else BUSINESS,
            label=s.label,
        )
        for s in config.statuses
    )
    open_names = frozenset(s.name for s in config.statuses if not s.category.final)
    final_names = frozenset(s.name for s in config.statuses if s.category.final)
    moves: list[Transition] = []
    for status in config.statuses:
        sources = open_names - {status.name}
        if not sources:
            continue
        completes = status.category is StatusCategory.COMPLETE
        moves.append(
            Transition(
                status_action(config, status),
                sources,
                status.name,
                BUSINESS,
                effect=_complete if completes else None,
                events=(COMPLETED,) if completes else ("status_changed",),
                notify=Audience.EVERYONE,
                description=(
                    "Task complete: status, completed time, 100 % and the notifications"
                    if completes
                    else f"Set the status to {status.label or status.name}"
                ),
            )
        )
    if final_names:
        moves.append(
            Transition(
                REOPEN,
                final_names,
                config.first_of(StatusCategory.IN_PROGRESS).name,
                BUSINESS,
                effect=_reopen,
                events=("task_reopened",),
                notify=Audience.EVERYONE,
                description="Reopen a complete or cancelled task: back in progress",
            )
        )
    editable = {CUSTOMER: config.portal_editable, BUSINESS: CRM_EDIT_FIELDS}
    shared = [t for t in common_actions() if t.name != EDIT]
    extra: list[Transition] = [
        Transition(
            EDIT,
            OPEN_STATES,
            None,
            {CUSTOMER, BUSINESS},
            payload=CrmEdit,
            check=_edit_check(config),
            effect=_edit,
            events=("edited",),
            notify=Audience.EVERYONE,
            description="Change the task's fields: portal users a configured subset, the business all",
            editable=editable,
        ),
        Transition(
            ADD_DOCUMENT,
            OPEN_STATES,
            None,
            {CUSTOMER, BUSINESS},
            payload=AddDocument,
            effect=_add_document,
            events=("document_added",),
            notify=Audience.EVERYONE,
            description="Attach a document reference with its metadata",
        ),
        Transition(
            BILL,
            frozenset({"*"}),
            None,
            BUSINESS,
            payload=Bill,
            check=_bill_check,
            effect=_bill,
            events=("billed",),
            notify=Audience.EVERYONE,
            description="Mark the task billed (or not) and record its actual hours, done or not",
            operation=Operation.MODIFY,
        ),
        Transition(
            LINK_TRACKER,
            frozenset({"*"}),
            None,
            BUSINESS,
            payload=TrackerLinked,
            guard=_not_linked,
            effect=_link,
            events=("tracker_linked",),
            notify=Audience.NOBODY,
            description="Store the tracker item opened for the task (system only)",
            system_only=True,
        ),
    ]
    if config.sla is not None:
        extra.append(escalation_action(config.sla, {BUSINESS}))
    return Workflow(
        name=config.kind,
        description=(
            "A CRM task or ticket regarding an account or a user: the business works it through "
            "the configured statuses; 'complete' is task complete in one step."
        ),
        initial=config.first_of(StatusCategory.NOT_STARTED).name,
        open_check=_open_check(config),
        states=states,
        transitions=(*moves, *shared, *extra),
    )


def _audience(task: Task, event: DomainEvent) -> list[UserRef]:
    if event.name == SLA_ESCALATED and isinstance(event.payload, Escalate):
        return list(event.payload.notify)
    if event.actor.is_system:
        return []
    users = list(task.assignees)
    data = task.data
    if data.notice_on_complete if event.name == COMPLETED else data.notice_on_change:
        users += task.watchers
    return users


def crm_policy(
    workflow: Workflow, before: Task | None, after: Task, events: Sequence[DomainEvent]
) -> tuple[Notification, ...]:
    """Notify per C12: every save the assignees; the notify list on change or on completion as set.

    Never the actor, never a stranger; an internal work note reaches only the writer's company;
    an SLA escalation reaches the users its level names.
    """
    out: list[Notification] = []
    for event in events:
        private = getattr(event.payload, "visible_to_company", None)
        seen: set[UserRef] = set()
        what = event.name.replace("_", " ")
        message = f"{after.number} '{after.subject}': {what} by {event.actor}"
        for user in _audience(after, event):
            if user in seen or user == event.actor.ref or not after.is_party(user.company):
                continue
            if private is not None and not private(event.actor.company, user.company):
                continue
            seen.add(user)
            out.append(Notification(user, after.id, after.number, event.name, message))
    return tuple(out)


def _indexes(config: CrmConfig) -> dict[str, Any]:
    indexed: dict[str, Any] = {
        "regarding": lambda task: f"{task.data.regarding.type.value}:{task.data.regarding.id}",
        "work_type": lambda task: task.data.work_type.value,
        # Tasks come in through the five channels as tickets do (seed 004): `Intake` needs these.
        **INTAKE_INDEXED,
    }
    sla = config.sla
    if sla is not None:

        def next_event(task: Task) -> datetime | None:
            return next_sla_event(task, sla.for_task(task))

        indexed[SLA_NEXT_EVENT] = next_event
    return indexed


def _notice_on_change(task: Task) -> bool:
    return bool(task.data.notice_on_change)


def _notice_on_complete(task: Task) -> bool:
    return bool(task.data.notice_on_complete)


def crm_matrix(workflow: Workflow) -> tuple[MatrixEntry, ...]:
    """Return seed 003's notification matrix rows for a CRM workflow (the kind declares them).

    Every save a person makes tells the assignees and, with "notice on change", the notify list;
    completing tells the notify list with "notice on complete". Events of system actors, the
    tracker link and SLA escalations are left to `crm_policy`.
    """
    names = {"opened"} | {e for t in workflow.transitions if not t.system_only for e in t.events}
    rows: list[MatrixEntry] = []
    for name in sorted(names - {SLA_ESCALATED}):
        notice = _notice_on_complete if name == COMPLETED else _notice_on_change
        rows.append(MatrixEntry(workflow.name, name, {"assignees"}, by_system=False))
        rows.append(MatrixEntry(workflow.name, name, {"watchers"}, when=notice, by_system=False))
    return tuple(rows)


def crm_task_kind(config: CrmConfig | None = None) -> TaskKind:
    """Return the CRM task kind a configuration describes (statuses, categories, portal rights, SLA)."""
    config = CrmConfig() if config is None else config
    workflow = crm_workflow(config)
    return TaskKind(
        config.kind,
        CrmTask,
        workflow,
        "A CRM task or ticket regarding an account or a user, with effort, billing and SLA (seed 003)",
        policy=crm_policy,
        matrix=crm_matrix(workflow),
        indexed=_indexes(config),
    )


CRM_TASK = crm_task_kind()
"""The CRM task kind with the CS4 statuses, the seed's categories and no SLA."""


# Classes whose flags are never optional (an edit's `None` means "leave it as it is").
_NO_NONE: tuple[type, ...] = (CrmTask, Bill)
