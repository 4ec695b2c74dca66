"""CSV import through a column mapping: each good row becomes a message; a bad row names its line."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from taskflow.domain._frozen import FrozenMap
from taskflow.errors import InvalidPayload
from taskflow.intake.model import Channel, Message, Sender

__all__ = ["ColumnMapping", "read_rows"]


def _columns(value: Mapping[str, str]) -> FrozenMap[str, str]:
    return FrozenMap(value)


@attrs.frozen
class ColumnMapping:
    """Which CSV column holds what: subject and sender address are required, the rest optional.

    `fields` maps names the kind's data reads (`product`, `severity`, ...) to columns;
    `message_id` names a column with the row's own id, else a digest of its values is used,
    so importing the same file again creates nothing.
    """

    subject: str
    sender: str
    body: str | None = None
    sender_name: str | None = None
    message_id: str | None = None
    fields: Mapping[str, str] = attrs.field(factory=FrozenMap, converter=_columns)

    def columns(self) -> tuple[str, ...]:
        """Return every column the mapping reads."""
        named = (self.subject, self.sender, self.body, self.sender_name, self.message_id)
        return (*(c for c in named if c), *self.fields.values())


def read_rows(text: str, mapping: ColumnMapping) -> Iterator[tuple[int, Message | InvalidPayload]]:
    """Yield each data row's line number with its message, or with the error that refuses it.

    A header that lacks a mapped column refuses the whole file (`InvalidPayload`).
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        msg = "the CSV file is empty: it needs a header row naming its columns"
        raise InvalidPayload(msg, field="header") from None
    missing = [c for c in mapping.columns() if c not in header]
    if missing:
        msg = f"the CSV header has no column {missing[0]!r}; its columns: {', '.join(header)}"
        raise InvalidPayload(msg, field="header")
    position = {name: i for i, name in enumerate(header)}
    line = reader.line_num
    for row in reader:
        start, line = line + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        yield start, _message(row, header, position, mapping, start)


def _message(
    row: list[str], header: list[str], position: dict[str, int], mapping: ColumnMapping, line: int
) -> Message | InvalidPayload:
    if len(row) != len(header):
        msg = f"line {line}: the row has {len(row)} cells, the header names {len(header)} columns"
        return InvalidPayload(msg, field="row")

    def cell(column: str | None) -> str:
        return "" if column is None else row[position[column]].strip()

    subject, sender = cell(mapping.subject), cell(mapping.sender)
    for column, value in ((mapping.subject, subject), (mapping.sender, sender)):
        if not value:
            msg = f"line {line}: column {column!r} is empty; it is required"
            return InvalidPayload(msg, field=column)
    values: dict[str, Any] = {name: cell(column) for name, column in mapping.fields.items()}
    own = cell(mapping.message_id)
    if not own:
        digest = hashlib.sha256(json.dumps(row, ensure_ascii=False).encode()).hexdigest()
        own = f"row:{digest}"
    return Message(
        Channel.IMPORT,
        own,
        Sender(sender, cell(mapping.sender_name)),
        subject=subject,
        body=cell(mapping.body),
        fields=values,
    )
