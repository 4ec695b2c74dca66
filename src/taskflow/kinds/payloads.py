"""Payloads that several kinds share: one class each, whichever kind came first."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from taskflow.domain.validators import excerpt, typed_fields
from taskflow.domain.values import FileRef, not_blank
from taskflow.errors import InvalidPayload

__all__ = ["AddFiles", "AskAgain", "Reopen"]


def _file_tuple(value: Any) -> tuple[Any, ...]:
    if isinstance(value, FileRef):
        return (value,)
    if isinstance(value, str):
        msg = f"AddFiles.files must be FileRefs, got the string {excerpt(value)}"
        raise InvalidPayload(msg, field="files")
    if isinstance(value, bytes | bytearray | Mapping) or not isinstance(value, Iterable):
        msg = f"AddFiles.files must be a tuple of FileRefs, got {type(value).__name__}"
        raise InvalidPayload(msg, field="files")
    return tuple(value)


def _some_distinct_files(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not value:
        msg = "AddFiles.files must name at least one file"
        raise InvalidPayload(msg, field="files")
    for i, file in enumerate(value):
        if not isinstance(file, FileRef):
            msg = f"AddFiles.files[{i}] must be a FileRef, got {type(file).__name__}"
            raise InvalidPayload(msg, field=f"files[{i}]")
    for i, file in enumerate(value):
        if file in value[:i]:
            msg = f"AddFiles.files names '{file.name}' twice (at {value.index(file)} and {i})"
            raise InvalidPayload(msg, field=f"files[{i}]")


@attrs.frozen(field_transformer=typed_fields)
class AddFiles:
    """Payload of `add_files` (audits, corrective actions): one or more distinct files."""

    files: tuple[FileRef, ...] = attrs.field(converter=_file_tuple, validator=_some_distinct_files)


@attrs.frozen(field_transformer=typed_fields)
class AskAgain:
    """Payload of `ask_again` (general tasks, contacts): why the answer does not do."""

    reason: str = attrs.field(validator=not_blank)


@attrs.frozen(field_transformer=typed_fields)
class Reopen:
    """Payload of `reopen` (corrective actions, tickets): why it is not resolved yet."""

    reason: str = attrs.field(validator=not_blank)
