"""Web forms the host defines (the portal form of CS1): checked per field, exported as JSON Schema."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

import attrs

from taskflow.domain.values import not_blank
from taskflow.errors import InvalidForm, InvalidPayload, InvalidWorkflow

__all__ = ["SUPPORT_FORM", "FieldType", "FormField", "FormSchema"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ()./-]{5,30}$")


class FieldType(enum.StrEnum):
    """What a form field holds."""

    TEXT = "text"
    TEXTAREA = "textarea"
    EMAIL = "email"
    PHONE = "phone"
    NUMBER = "number"
    SELECT = "select"
    CHECKBOX = "checkbox"
    DATE = "date"


def _field_type(value: Any) -> FieldType:
    try:
        return FieldType(value)
    except ValueError:
        allowed = ", ".join(repr(t.value) for t in FieldType)
        msg = f"FormField.type must be one of {allowed}, got {value!r}"
        raise InvalidWorkflow(msg) from None


def _identifier(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value.isidentifier():
        msg = f"FormField.name must be an identifier, got {value!r}"
        raise InvalidWorkflow(msg)


@attrs.frozen
class FormField:
    """One field of a form: its name, type, label, whether it is required, and its limits."""

    name: str = attrs.field(validator=_identifier)
    type: FieldType = attrs.field(default=FieldType.TEXT, converter=_field_type)
    label: str = ""
    required: bool = False
    max_length: int | None = None
    choices: tuple[str, ...] = attrs.field(default=(), converter=tuple)

    def __attrs_post_init__(self) -> None:
        if (self.type is FieldType.SELECT) != bool(self.choices):
            msg = f"form field '{self.name}': a select field, and only one, lists its choices"
            raise InvalidWorkflow(msg)

    def check(self, value: Any) -> Any:
        """Return `value` as this field keeps it (stripped, converted), or raise `InvalidPayload`."""
        label = self.label or self.name
        if isinstance(value, str):
            value = value.strip()
        empty = value is None or value == ""
        if empty:
            if self.required:
                msg = f"'{label}' is required"
                raise InvalidPayload(msg, field=self.name)
            return False if self.type is FieldType.CHECKBOX else None
        kind = self.type
        if kind is FieldType.CHECKBOX:
            if not isinstance(value, bool):
                msg = f"'{label}' must be true or false, got {value!r:.40}"
                raise InvalidPayload(msg, field=self.name)
            return value
        if kind is FieldType.NUMBER:
            try:
                number = float(value) if not isinstance(value, bool) else None
            except (TypeError, ValueError):
                number = None
            if number is None:
                msg = f"'{label}' must be a number, got {value!r:.40}"
                raise InvalidPayload(msg, field=self.name)
            return int(number) if number.is_integer() else number
        if not isinstance(value, str):
            msg = f"'{label}' must be text, got {type(value).__name__}"
            raise InvalidPayload(msg, field=self.name)
        if self.max_length is not None and len(value) > self.max_length:
            msg = f"'{label}' may hold at most {self.max_length} characters, got {len(value)}"
            raise InvalidPayload(msg, field=self.name)
        if kind is FieldType.EMAIL and not _EMAIL.match(value):
            msg = f"'{label}' must be an email address (name@example.com), got {value!r:.40}"
            raise InvalidPayload(msg, field=self.name)
        if kind is FieldType.PHONE and not _PHONE.match(value):
            msg = (
                f"'{label}' must be a phone number (digits, spaces, + ( ) . / -), got {value!r:.40}"
            )
            raise InvalidPayload(msg, field=self.name)
        if kind is FieldType.SELECT and value not in self.choices:
            msg = f"'{label}' must be one of {', '.join(self.choices)}, got {value!r:.40}"
            raise InvalidPayload(msg, field=self.name)
        if kind is FieldType.DATE:
            try:
                date.fromisoformat(value)
            except ValueError:
                msg = f"'{label}' must be a date (YYYY-MM-DD), got {value!r:.40}"
                raise InvalidPayload(msg, field=self.name) from None
        return value

    def json_schema(self) -> dict[str, Any]:
        """Return this field's JSON Schema."""
        kind = self.type
        schema: dict[str, Any] = {"title": self.label or self.name}
        if kind is FieldType.CHECKBOX:
            schema["type"] = "boolean"
        elif kind is FieldType.NUMBER:
            schema["type"] = "number"
        else:
            schema["type"] = "string"
            if self.max_length is not None:
                schema["maxLength"] = self.max_length
            if self.required:
                schema["minLength"] = 1
            fmt = {FieldType.EMAIL: "email", FieldType.DATE: "date"}.get(kind)
            if fmt:
                schema["format"] = fmt
            if kind is FieldType.PHONE:
                schema["pattern"] = _PHONE.pattern
            if kind is FieldType.SELECT:
                schema["enum"] = list(self.choices)
            if kind is FieldType.TEXTAREA:
                schema["x-multiline"] = True
        return schema


def _form_fields(value: Iterable[FormField]) -> tuple[FormField, ...]:
    fields = tuple(value)
    names = [f.name for f in fields]
    twice = sorted({n for n in names if names.count(n) > 1})
    if not fields or twice:
        msg = f"a form needs fields with unique names; twice: {twice or 'none'}"
        raise InvalidWorkflow(msg)
    return fields


@attrs.frozen
class FormSchema:
    """A form the host defines: its fields, in order, and which of them intake reads."""

    name: str = attrs.field(validator=not_blank)
    fields: tuple[FormField, ...] = attrs.field(converter=_form_fields)
    subject: str = "subject"  # the field that becomes the subject
    body: str = "description"  # the field that becomes the body
    email: str = "email"  # the sender's address
    sender_name: str = "name"  # the sender's name

    def __attrs_post_init__(self) -> None:
        names = {f.name for f in self.fields}
        missing = [n for n in (self.body, self.email) if n not in names]
        if missing:
            msg = f"form '{self.name}' has no field {missing[0]!r} (fields: {sorted(names)})"
            raise InvalidWorkflow(msg)

    def validate(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Return the checked values of a filled-in form, or raise `InvalidForm` naming each bad field."""
        if not isinstance(data, Mapping):
            msg = f"form '{self.name}' needs a mapping of field values, got {type(data).__name__}"
            raise InvalidPayload(msg, field="form")
        problems: list[InvalidPayload] = []
        known = {f.name for f in self.fields}
        for name in sorted(set(data) - known, key=str):
            error = InvalidPayload(
                f"form '{self.name}' has no field {name!r}; its fields are "
                f"{', '.join(f.name for f in self.fields)}",
                field=str(name),
            )
            problems.append(error)
        values: dict[str, Any] = {}
        for field in self.fields:
            try:
                values[field.name] = field.check(data.get(field.name))
            except InvalidPayload as error:
                error.add_note(f"field '{field.name}'")
                problems.append(error)
        if problems:
            named = ", ".join(p.field for p in problems)
            msg = f"form '{self.name}': {len(problems)} field(s) need attention: {named}"
            raise InvalidForm(msg, problems)
        return values

    def json_schema(self) -> dict[str, Any]:
        """Return the form as a JSON Schema (draft 2020-12) for the host's form renderer."""
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": self.name,
            "type": "object",
            "properties": {f.name: f.json_schema() for f in self.fields},
            "required": [f.name for f in self.fields if f.required],
            "additionalProperties": False,
        }


SUPPORT_FORM = FormSchema(
    "support",
    (
        FormField("name", label="Your name", required=True, max_length=200),
        FormField("email", FieldType.EMAIL, "Email", required=True, max_length=320),
        FormField("subject", label="Subject", required=True, max_length=200),
        FormField("description", FieldType.TEXTAREA, "How can we help?", required=True),
        FormField("phone", FieldType.PHONE, "Phone"),
        FormField("product", label="Product"),
        FormField("order_reference", label="Order reference"),
    ),
)
"""The portal form of a support ticket (CS1): the `SupportTicket` fields plus a subject."""
