"""Intake channels (C14): email, chat, CSV import, manual entry and web forms into one model."""

from taskflow.domain.intake import INTAKE_INDEXED
from taskflow.intake.chat import CUSTOMER, ChatLine, Transcript
from taskflow.intake.csvimport import ColumnMapping
from taskflow.intake.files import FileStorage, InMemoryFileStorage
from taskflow.intake.forms import SUPPORT_FORM, FieldType, FormField, FormSchema
from taskflow.intake.mail import ParsedEmail, html_to_text, parse_email
from taskflow.intake.model import (
    Channel,
    Contacts,
    Disposition,
    FollowUp,
    InMemoryContacts,
    IntakeResult,
    Message,
    Sender,
)
from taskflow.intake.service import FOLLOW_UP_OF, ImportReport, Intake, ticket_data

__all__ = [
    "CUSTOMER",
    "FOLLOW_UP_OF",
    "INTAKE_INDEXED",
    "SUPPORT_FORM",
    "Channel",
    "ChatLine",
    "ColumnMapping",
    "Contacts",
    "Disposition",
    "FieldType",
    "FileStorage",
    "FollowUp",
    "FormField",
    "FormSchema",
    "ImportReport",
    "InMemoryContacts",
    "InMemoryFileStorage",
    "Intake",
    "IntakeResult",
    "Message",
    "ParsedEmail",
    "Sender",
    "Transcript",
    "html_to_text",
    "parse_email",
    "ticket_data",
]
