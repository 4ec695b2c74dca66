"""taskflow: immutable tasks and declarative workflows for the work businesses exchange."""

import importlib
import warnings
from typing import TYPE_CHECKING, Any

from taskflow.adapters.bookings import InMemoryBookings, InMemoryProviders
from taskflow.adapters.memory import (
    FixedClock,
    InMemoryRepository,
    RecordingNotifier,
    SequentialIds,
)
from taskflow.adapters.system import SystemClock, UuidIds
from taskflow.application.bookings import (
    BOOKING_MADE_TOPIC,
    AcceptedOffer,
    Bookings,
    Broadcasted,
    ProviderRating,
)
from taskflow.application.digests import deliver_digests
from taskflow.application.evaluations import Evaluations
from taskflow.application.questionnaires import (
    Questionnaires,
    QuestionnaireSummary,
    SentQuestionnaire,
    questionnaire_handlers,
)
from taskflow.application.service import (
    DEPTH_LIMIT,
    Dashboard,
    Sender,
    TaskService,
    default_company_code,
    retry_on_conflict,
)
from taskflow.application.unit_of_work import Committed, Handler, Subscription, UnitOfWork
from taskflow.booking_ports import BookingLookup, BookingRecord, BookingStatus, ProviderDirectory
from taskflow.diagrams import describe, to_dot, to_mermaid
from taskflow.domain.authorization import (
    ALLOW,
    ANY_KIND,
    DEFAULT_AUTHORIZER,
    Authorizer,
    Decision,
    DefaultAuthorizer,
    Operation,
    RoleMatrix,
    is_system_actor,
    operation_of,
)
from taskflow.domain.common import (
    DEFAULT_EDITABLE,
    AddComment,
    Assign,
    Edit,
    common_actions,
)
from taskflow.domain.engine import (
    Change,
    Outcome,
    allowed_actions,
    apply,
    changes,
    open_task,
    replay,
    task_at,
)
from taskflow.domain.erasure import DataSubject, ErasePersonalData
from taskflow.domain.limits import DEFAULT_LIMITS, Limits
from taskflow.domain.matrix import (
    SEED_DEFAULTS,
    InMemoryPreferences,
    MatrixEntry,
    NotificationMatrix,
    Preferences,
    build_digests,
    digest_window,
)
from taskflow.domain.notifications import (
    Notification,
    NotificationPolicy,
    Recipient,
    default_policy,
    recipients_of,
)
from taskflow.domain.outbox import (
    DIGEST_TOPIC,
    EVENT_TOPIC,
    NOTIFICATION_TOPIC,
    DeadLetter,
    DeliveryReport,
    OutboxEntry,
    OutboxMessage,
    RetryPolicy,
)
from taskflow.domain.query import (
    Between,
    Cursor,
    IndexedField,
    IndexValue,
    Page,
    TaskQuery,
    check_indexed,
    index_tag,
    index_values,
)
from taskflow.domain.registry import Registry, TaskKind
from taskflow.domain.task import Cause, DomainEvent, HistoryEntry, NewTask, Task
from taskflow.domain.validators import (
    aware,
    blank_to_none,
    excerpt,
    frozenset_of,
    identifier,
    instance_of,
    max_length,
    not_blank,
    one_of,
    optional_text,
    text,
    tuple_of,
    typed,
    typed_fields,
    whole_number,
)
from taskflow.domain.values import (
    DEFAULT_CATEGORIES,
    PDF,
    Actor,
    ActorType,
    Comment,
    CompanyId,
    FileRef,
    Link,
    Priority,
    Side,
    TaskId,
    UserId,
    UserRef,
    Visibility,
)
from taskflow.domain.workflow import (
    ANY_STATE,
    BOTH_SIDES,
    OPEN_STATES,
    Audience,
    State,
    Transition,
    Workflow,
)
from taskflow.errors import (
    ActionNotAllowed,
    AlreadyTaken,
    BookingUnchanged,
    ConcurrencyConflict,
    DeserializationError,
    InvalidAnswers,
    InvalidForm,
    InvalidPayload,
    InvalidQuestionnaire,
    InvalidRows,
    InvalidWorkflow,
    LimitExceeded,
    MarkTaken,
    MissingExtra,
    OfferExpired,
    PermissionDenied,
    StorageError,
    TaskflowError,
    TaskNotFound,
    UnknownKind,
    ViewNotSaveable,
)
from taskflow.kinds import BUILTIN_KINDS, default_registry
from taskflow.ports import Changeset, Clock, IdFactory, Notifier, Outbox, TaskRepository
from taskflow.serialization import SCHEMA_VERSION, Serializer

if TYPE_CHECKING:
    from taskflow.adapters.sqlite import STORAGE_VERSION, SqliteRepository

__version__ = "0.1.0"

# Kind names that were once exported here: reached through their kind's module now.
_MOVED: dict[str, str] = {
    "AGREEMENT": "taskflow.kinds.agreement",
    "AUDIT": "taskflow.kinds.audit",
    "AddFiles": "taskflow.kinds.payloads",
    "Agreement": "taskflow.kinds.agreement",
    "Answer": "taskflow.kinds.question",
    "AskAgain": "taskflow.kinds.payloads",
    "Audit": "taskflow.kinds.audit",
    "COMPLAINT_TICKET": "taskflow.kinds.ticket",
    "CONTACT": "taskflow.kinds.contact",
    "CORRECTIVE_ACTION": "taskflow.kinds.corrective_action",
    "ComplaintTicket": "taskflow.kinds.ticket",
    "Contact": "taskflow.kinds.contact",
    "ContactRequest": "taskflow.kinds.contact",
    "CorrectiveAction": "taskflow.kinds.corrective_action",
    "Criterion": "taskflow.kinds.evaluation",
    "DOCUMENT_REQUEST": "taskflow.kinds.document",
    "Decline": "taskflow.kinds.document",
    "Delegate": "taskflow.kinds.question",
    "DocumentRequest": "taskflow.kinds.document",
    "EVALUATION": "taskflow.kinds.evaluation",
    "Evaluation": "taskflow.kinds.evaluation",
    "GENERAL": "taskflow.kinds.general",
    "GeneralRequest": "taskflow.kinds.general",
    "PRODUCT_DOCUMENT_REQUEST": "taskflow.kinds.document",
    "ProductDocumentRequest": "taskflow.kinds.document",
    "QUESTION": "taskflow.kinds.question",
    "QUESTIONNAIRE": "taskflow.kinds.questionnaire",
    "Question": "taskflow.kinds.question",
    "QuestionType": "taskflow.kinds.question",
    "Questionnaire": "taskflow.kinds.questionnaire",
    "Reject": "taskflow.kinds.document",
    "RejectSigned": "taskflow.kinds.agreement",
    "Reopen": "taskflow.kinds.payloads",
    "ReplaceDocument": "taskflow.kinds.agreement",
    "RequestMore": "taskflow.kinds.audit",
    "Resolve": "taskflow.kinds.corrective_action",
    "SUPPORT_TICKET": "taskflow.kinds.ticket",
    "SendBack": "taskflow.kinds.question",
    "Severity": "taskflow.kinds.ticket",
    "SupportTicket": "taskflow.kinds.ticket",
    "UploadAnswer": "taskflow.kinds.general",
    "UploadDocument": "taskflow.kinds.document",
    "UploadSigned": "taskflow.kinds.agreement",
}

# The SQLite adapter does I/O: it is imported when first named, not by `import taskflow`.
_LAZY = {
    "SqliteRepository": "taskflow.adapters.sqlite",
    "STORAGE_VERSION": "taskflow.adapters.sqlite",
}


def __getattr__(name: str) -> Any:
    moved = _MOVED.get(name)
    if moved is not None:
        msg = (
            f"taskflow.{name} is deprecated and will be removed: kinds' names live in their "
            f"kind's module; import it with `from {moved} import {name}`"
        )
        warnings.warn(msg, DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(moved), name)
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'taskflow' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ALLOW",
    "ANY_KIND",
    "ANY_STATE",
    "BOOKING_MADE_TOPIC",
    "BOTH_SIDES",
    "BUILTIN_KINDS",
    "DEFAULT_AUTHORIZER",
    "DEFAULT_CATEGORIES",
    "DEFAULT_EDITABLE",
    "DEFAULT_LIMITS",
    "DEPTH_LIMIT",
    "DIGEST_TOPIC",
    "EVENT_TOPIC",
    "NOTIFICATION_TOPIC",
    "OPEN_STATES",
    "PDF",
    "SCHEMA_VERSION",
    "SEED_DEFAULTS",
    "STORAGE_VERSION",
    "AcceptedOffer",
    "ActionNotAllowed",
    "Actor",
    "ActorType",
    "AddComment",
    "AlreadyTaken",
    "Assign",
    "Audience",
    "Authorizer",
    "Between",
    "BookingLookup",
    "BookingRecord",
    "BookingStatus",
    "BookingUnchanged",
    "Bookings",
    "Broadcasted",
    "Cause",
    "Change",
    "Changeset",
    "Clock",
    "Comment",
    "Committed",
    "CompanyId",
    "ConcurrencyConflict",
    "Cursor",
    "Dashboard",
    "DataSubject",
    "DeadLetter",
    "Decision",
    "DefaultAuthorizer",
    "DeliveryReport",
    "DeserializationError",
    "DomainEvent",
    "Edit",
    "ErasePersonalData",
    "Evaluations",
    "FileRef",
    "FixedClock",
    "Handler",
    "HistoryEntry",
    "IdFactory",
    "InMemoryBookings",
    "InMemoryPreferences",
    "InMemoryProviders",
    "InMemoryRepository",
    "IndexValue",
    "IndexedField",
    "InvalidAnswers",
    "InvalidForm",
    "InvalidPayload",
    "InvalidQuestionnaire",
    "InvalidRows",
    "InvalidWorkflow",
    "LimitExceeded",
    "Limits",
    "Link",
    "MarkTaken",
    "MatrixEntry",
    "MissingExtra",
    "NewTask",
    "Notification",
    "NotificationMatrix",
    "NotificationPolicy",
    "Notifier",
    "OfferExpired",
    "Operation",
    "Outbox",
    "OutboxEntry",
    "OutboxMessage",
    "Outcome",
    "Page",
    "PermissionDenied",
    "Preferences",
    "Priority",
    "ProviderDirectory",
    "ProviderRating",
    "QuestionnaireSummary",
    "Questionnaires",
    "Recipient",
    "RecordingNotifier",
    "Registry",
    "RetryPolicy",
    "RoleMatrix",
    "Sender",
    "SentQuestionnaire",
    "SequentialIds",
    "Serializer",
    "Side",
    "SqliteRepository",
    "State",
    "StorageError",
    "Subscription",
    "SystemClock",
    "Task",
    "TaskId",
    "TaskKind",
    "TaskNotFound",
    "TaskQuery",
    "TaskRepository",
    "TaskService",
    "TaskflowError",
    "Transition",
    "UnitOfWork",
    "UnknownKind",
    "UserId",
    "UserRef",
    "UuidIds",
    "ViewNotSaveable",
    "Visibility",
    "Workflow",
    "__version__",
    "allowed_actions",
    "apply",
    "aware",
    "blank_to_none",
    "build_digests",
    "changes",
    "check_indexed",
    "common_actions",
    "default_company_code",
    "default_policy",
    "default_registry",
    "deliver_digests",
    "describe",
    "digest_window",
    "excerpt",
    "frozenset_of",
    "identifier",
    "index_tag",
    "index_values",
    "instance_of",
    "is_system_actor",
    "max_length",
    "not_blank",
    "one_of",
    "open_task",
    "operation_of",
    "optional_text",
    "questionnaire_handlers",
    "recipients_of",
    "replay",
    "retry_on_conflict",
    "task_at",
    "text",
    "to_dot",
    "to_mermaid",
    "tuple_of",
    "typed",
    "typed_fields",
    "whole_number",
]
