"""The built-in task kinds, and a registry that holds them."""

from __future__ import annotations

from taskflow.domain.registry import Registry, TaskKind
from taskflow.kinds.agreement import AGREEMENT
from taskflow.kinds.audit import AUDIT
from taskflow.kinds.booking import BOOKING_TASK
from taskflow.kinds.booking_request import BOOKING_OFFER, BOOKING_REQUEST
from taskflow.kinds.contact import CONTACT
from taskflow.kinds.corrective_action import CORRECTIVE_ACTION
from taskflow.kinds.crm_task import CRM_TASK
from taskflow.kinds.document import DOCUMENT_REQUEST, PRODUCT_DOCUMENT_REQUEST
from taskflow.kinds.evaluation import EVALUATION
from taskflow.kinds.general import GENERAL
from taskflow.kinds.question import QUESTION
from taskflow.kinds.questionnaire import QUESTIONNAIRE
from taskflow.kinds.ticket import COMPLAINT_TICKET, SUPPORT_TICKET

__all__ = ["BUILTIN_KINDS", "default_registry"]

BUILTIN_KINDS: tuple[TaskKind, ...] = (
    DOCUMENT_REQUEST,
    PRODUCT_DOCUMENT_REQUEST,
    AGREEMENT,
    AUDIT,
    EVALUATION,
    CORRECTIVE_ACTION,
    CONTACT,
    GENERAL,
    QUESTIONNAIRE,
    QUESTION,
    SUPPORT_TICKET,
    COMPLAINT_TICKET,
    CRM_TASK,
    BOOKING_TASK,
    BOOKING_REQUEST,
    BOOKING_OFFER,
)


def default_registry(*extra: TaskKind) -> Registry:
    """Return a new registry with every built-in kind, plus `extra` kinds of the host's own."""
    return Registry((*BUILTIN_KINDS, *extra))
