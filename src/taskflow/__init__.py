"""taskflow: immutable tasks and declarative workflows for the work businesses exchange."""

import importlib
from typing import TYPE_CHECKING, Any

from taskflow.adapters.memory import (
    FixedClock,
    InMemoryRepository,
    RecordingNotifier,
    SequentialIds,
)
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
from taskflow.domain.notifications import Notification, NotificationPolicy, default_policy
from taskflow.domain.outbox import (
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
    ConcurrencyConflict,
    DeserializationError,
    InvalidAnswers,
    InvalidPayload,
    InvalidQuestionnaire,
    InvalidWorkflow,
    PermissionDenied,
    StorageError,
    TaskflowError,
    TaskNotFound,
    UnknownKind,
)
from taskflow.kinds import BUILTIN_KINDS, default_registry
from taskflow.kinds.agreement import (
    AGREEMENT,
    Agreement,
    RejectSigned,
    ReplaceDocument,
    UploadSigned,
)
from taskflow.kinds.audit import AUDIT, AddFiles, Audit, RequestMore
from taskflow.kinds.contact import CONTACT, Contact, ContactRequest
from taskflow.kinds.corrective_action import CORRECTIVE_ACTION, CorrectiveAction, Reopen, Resolve
from taskflow.kinds.document import (
    DOCUMENT_REQUEST,
    PRODUCT_DOCUMENT_REQUEST,
    Decline,
    DocumentRequest,
    ProductDocumentRequest,
    Reject,
    UploadDocument,
)
from taskflow.kinds.evaluation import EVALUATION, Criterion, Evaluation
from taskflow.kinds.general import GENERAL, AskAgain, GeneralRequest, UploadAnswer
from taskflow.kinds.question import QUESTION, Answer, Delegate, Question, QuestionType, SendBack
from taskflow.kinds.questionnaire import QUESTIONNAIRE, Questionnaire
from taskflow.kinds.ticket import (
    COMPLAINT_TICKET,
    SUPPORT_TICKET,
    ComplaintTicket,
    Severity,
    SupportTicket,
)
from taskflow.ports import Changeset, Clock, IdFactory, Notifier, Outbox, TaskRepository
from taskflow.serialization import SCHEMA_VERSION, Serializer

if TYPE_CHECKING:
    from taskflow.adapters.sqlite import STORAGE_VERSION, SqliteRepository

__version__ = "0.1.0"

# The SQLite adapter does I/O: it is imported when first named, not by `import taskflow`.
_LAZY = {
    "SqliteRepository": "taskflow.adapters.sqlite",
    "STORAGE_VERSION": "taskflow.adapters.sqlite",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'taskflow' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AGREEMENT",
    "ALLOW",
    "ANY_KIND",
    "ANY_STATE",
    "AUDIT",
    "BOTH_SIDES",
    "BUILTIN_KINDS",
    "COMPLAINT_TICKET",
    "CONTACT",
    "CORRECTIVE_ACTION",
    "DEFAULT_AUTHORIZER",
    "DEFAULT_CATEGORIES",
    "DEFAULT_EDITABLE",
    "DEPTH_LIMIT",
    "DOCUMENT_REQUEST",
    "EVALUATION",
    "EVENT_TOPIC",
    "GENERAL",
    "NOTIFICATION_TOPIC",
    "OPEN_STATES",
    "PDF",
    "PRODUCT_DOCUMENT_REQUEST",
    "QUESTION",
    "QUESTIONNAIRE",
    "SCHEMA_VERSION",
    "STORAGE_VERSION",
    "SUPPORT_TICKET",
    "ActionNotAllowed",
    "Actor",
    "ActorType",
    "AddComment",
    "AddFiles",
    "Agreement",
    "Answer",
    "AskAgain",
    "Assign",
    "Audience",
    "Audit",
    "Authorizer",
    "Between",
    "Cause",
    "Change",
    "Changeset",
    "Clock",
    "Comment",
    "Committed",
    "CompanyId",
    "ComplaintTicket",
    "ConcurrencyConflict",
    "Contact",
    "ContactRequest",
    "CorrectiveAction",
    "Criterion",
    "Cursor",
    "Dashboard",
    "DeadLetter",
    "Decision",
    "Decline",
    "DefaultAuthorizer",
    "Delegate",
    "DeliveryReport",
    "DeserializationError",
    "DocumentRequest",
    "DomainEvent",
    "Edit",
    "Evaluation",
    "Evaluations",
    "FileRef",
    "FixedClock",
    "GeneralRequest",
    "Handler",
    "HistoryEntry",
    "IdFactory",
    "InMemoryRepository",
    "IndexValue",
    "IndexedField",
    "InvalidAnswers",
    "InvalidPayload",
    "InvalidQuestionnaire",
    "InvalidWorkflow",
    "Link",
    "NewTask",
    "Notification",
    "NotificationPolicy",
    "Notifier",
    "Operation",
    "Outbox",
    "OutboxEntry",
    "OutboxMessage",
    "Outcome",
    "Page",
    "PermissionDenied",
    "Priority",
    "ProductDocumentRequest",
    "Question",
    "QuestionType",
    "Questionnaire",
    "QuestionnaireSummary",
    "Questionnaires",
    "RecordingNotifier",
    "Registry",
    "Reject",
    "RejectSigned",
    "Reopen",
    "ReplaceDocument",
    "RequestMore",
    "Resolve",
    "RetryPolicy",
    "RoleMatrix",
    "SendBack",
    "Sender",
    "SentQuestionnaire",
    "SequentialIds",
    "Serializer",
    "Severity",
    "Side",
    "SqliteRepository",
    "State",
    "StorageError",
    "Subscription",
    "SupportTicket",
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
    "UploadAnswer",
    "UploadDocument",
    "UploadSigned",
    "UserId",
    "UserRef",
    "Visibility",
    "Workflow",
    "__version__",
    "allowed_actions",
    "apply",
    "changes",
    "check_indexed",
    "common_actions",
    "default_company_code",
    "default_policy",
    "default_registry",
    "describe",
    "index_tag",
    "index_values",
    "is_system_actor",
    "open_task",
    "operation_of",
    "questionnaire_handlers",
    "replay",
    "retry_on_conflict",
    "task_at",
    "to_dot",
    "to_mermaid",
]
