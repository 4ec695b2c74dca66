"""Size limits a host sets on what its users send: text sizes, files and comments per task, nesting.

`TaskService(limits=Limits(...))` checks every draft and payload at the boundary, before a
task number is taken or anything is stored, and raises `LimitExceeded` (an `InvalidPayload`)
naming the field, the limit and the size found. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import attrs

from taskflow.domain.task import NewTask, Task
from taskflow.domain.validators import excerpt, typed_fields
from taskflow.errors import InvalidPayload, LimitExceeded

__all__ = ["DEFAULT_LIMITS", "Limits"]


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        msg = f"Limits.{attribute.name} must be a whole number >= 1, got {excerpt(value)}"
        raise InvalidPayload(msg, field=attribute.name)


# The payload fields whose text is a comment (AddComment.text) or the task's subject and body
# (NewTask, Edit); every other text is held to `text`.
_COMMENT_FIELDS = frozenset({"text"})
_TASK_TEXT = {"subject": "subject", "body": "body"}


@attrs.frozen(field_transformer=typed_fields)
class Limits:
    """The largest texts, counts and nesting a task may hold; defaults a real portal would choose.

    Sizes are in characters. `text` holds every other text of a payload or of kind data (a
    reason, an answer, a form field); `depth` the nesting of payloads and kind data (objects,
    lists and mappings inside each other; a flat payload has depth 1).
    """

    subject: int = attrs.field(default=255, validator=_positive)
    body: int = attrs.field(default=50_000, validator=_positive)
    comment: int = attrs.field(default=20_000, validator=_positive)
    text: int = attrs.field(default=20_000, validator=_positive)
    files: int = attrs.field(default=500, validator=_positive)
    comments: int = attrs.field(default=10_000, validator=_positive)
    depth: int = attrs.field(default=20, validator=_positive)

    def check_draft(self, draft: NewTask) -> None:
        """Raise `LimitExceeded` if a draft's subject, body or data is larger than allowed."""
        self._size("subject", len(draft.subject), self.subject)
        self._size("body", len(draft.body), self.body)
        self._walk("data", draft.data)

    def check_payload(self, action: str, payload: Any) -> None:
        """Raise `LimitExceeded` if an action's payload holds a text or a nesting larger than allowed."""
        if payload is None:
            return
        self._walk("payload", payload, action=action)

    def check_task(self, task: Task, action: str = "") -> None:
        """Raise `LimitExceeded` if a task (as an action left it) holds more comments or files than allowed."""
        self._size("comments", len(task.comments), self.comments, action, unit="comments")
        self._size("files", len(task.files), self.files, action, unit="files")
        self._size("subject", len(task.subject), self.subject, action)
        self._size("body", len(task.body), self.body, action)

    # --- internals ---------------------------------------------------------------------------

    def _size(
        self, field: str, size: int, limit: int, action: str = "", *, unit: str = "characters"
    ) -> None:
        if size > limit:
            raise LimitExceeded(field, limit, size, unit=unit, action=action)

    def _walk(self, root: str, value: Any, *, action: str = "") -> None:
        # Iterative, so a deep value is refused by its depth, never by a RecursionError. Each
        # item's place is kept as (parent place, label) and spelled out only for an error.
        stack: list[tuple[Any, int, _Place]] = [(value, 1, root)]
        pop, push = stack.pop, stack.append
        while stack:
            item, depth, place = pop()
            cls = type(item)
            if cls in _LEAVES:
                continue
            if isinstance(item, str):
                size, limit = len(item), self._text_limit_at(place)
                if size > limit:
                    self._size(_spelled(place), size, limit, action)
                continue
            labels = _attrs_labels(cls)
            if labels is not None:
                if depth > self.depth:
                    raise LimitExceeded(
                        _spelled(place), self.depth, depth, unit="levels", action=action
                    )
                for name, label in labels:
                    push((getattr(item, name), depth + 1, (place, label)))
                continue
            children = _children(item)
            if children is None:
                continue
            if depth > self.depth:
                raise LimitExceeded(
                    _spelled(place), self.depth, depth, unit="levels", action=action
                )
            stack.extend((v, depth + 1, (place, label)) for label, v in children)

    def _text_limit_at(self, place: _Place) -> int:
        # A text right in a field of the payload itself ("payload.text") may have its own limit.
        if type(place) is tuple and place[0] == "payload":
            label = place[1]
            if type(label) is str and label.startswith("."):
                name = label[1:]
                if name in _COMMENT_FIELDS:
                    return self.comment
                if name in _TASK_TEXT:
                    return self.subject if name == "subject" else self.body
        return self.text


DEFAULT_LIMITS = Limits()
"""The limits `TaskService` applies unless the host passes its own."""


# Where an item sits: the root's name, or (the parent's place, a label): ".name" for a field,
# "[key]" for a mapping's key, an int for a position in a sequence.
_Place = str | tuple[Any, str | int]

# Types that never hold a text or other values: skipped without looking further.
_LEAVES: frozenset[type] = frozenset(
    {int, float, bool, type(None), Decimal, date, datetime, time, timedelta, bytes}
)
# Each attrs class's field names with their labels, read once per class (None: not attrs).
_LABELS: dict[type, tuple[tuple[str, str], ...] | None] = {}


def _attrs_labels(cls: type) -> tuple[tuple[str, str], ...] | None:
    try:
        return _LABELS[cls]
    except KeyError:
        labels = (
            tuple((a.name, f".{a.name}") for a in attrs.fields(cls)) if attrs.has(cls) else None
        )
        if len(_LABELS) < 4096:
            _LABELS[cls] = labels
        return labels


def _spelled(place: _Place) -> str:
    """Return the path of a place as error messages give it: "payload.files[2].name"."""
    parts: list[str] = []
    while type(place) is tuple:
        place, label = place
        parts.append(label if type(label) is str else f"[{label}]")
    parts.append(str(place))
    return "".join(reversed(parts))


def _children(item: Any) -> list[tuple[str | int, Any]] | None:
    if isinstance(item, Mapping):
        return [(f"[{k!r:.40}]", v) for k, v in item.items()]
    if isinstance(item, list | tuple | set | frozenset):
        return list(enumerate(item))
    return None
