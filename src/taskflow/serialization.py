"""Turn tasks, domain events and history entries into JSON-ready data and back, with cattrs.

A dump holds only dicts, lists, str, int, float, bool and None, so `json.dumps` takes it as
it is. Times are ISO 8601 strings with their UTC offset (a +02:00 time stays +02:00; a named
zone such as Europe/Paris comes back as its fixed offset at that instant); dates are ISO
strings; enums are their values; tuples are lists; frozensets are sorted lists, so the same
task always gives the same JSON. Every field is written, defaults included.

`Task.data` and every payload are typed `Any` on the entity; the registry says what they
really are: a task's data is its kind's `data_type`; the payload of the first history entry
(`open`) is a `NewTask` whose data is that type; any other entry's or event's payload is the
payload class of the kind's transition of that name (None when it takes none). A history
entry's `facts` are an object keyed by field name, each value typed by that `Task` field's type
(`data` by the kind's `data_type`; an appended fact by the field's tuple type too). A kind the
host registers is therefore serialized with no change here.

Workflow versions: a task carries the `workflow_version` it was stored under. Loading one
older than its kind's `workflow.version` runs the kind's `upgrades` on a copy of the document,
one version after the other, before structuring; a newer one is refused. Events and entries
loaded on their own are read at their stored shape (they do not say which version wrote them).

Loading is strict: a wrong type, a missing field, an unknown key, an unknown kind or action,
a naive time, or a value the entity's own validators refuse all raise one
`DeserializationError` whose message lists each problem with its path
(`history[2].payload.file.media_type: ...`) and whose `.path` is the first one's.
Dumping refuses what it could not read back (a naive time, a payload of another type than
the action's) with `InvalidPayload`, and a task of an unregistered kind with `UnknownKind`.

Schema versions: every dumped task, event and history entry carries `"schema"` at top level
(history entries inside a task do not; the task's schema covers them). Loading refuses data
with no schema or a schema newer than `SCHEMA_VERSION`. When the stored shape has to change,
schema 2 is added like this, and so on for every later step:

1. set `SCHEMA_VERSION = 2` and change the classes (or the hooks) to the new shape;
2. write `_upgrade_1_to_2(document, kind, data) -> data`, which takes one schema-1 document
   ("task", "event" or "entry"; `kind` names the task kind) as plain data and returns it in
   the schema-2 shape, for example renaming a key or filling a new field's value;
3. register it as `_UPGRADES = {1: _upgrade_1_to_2}`.

`_upgrade` then runs every step from the version found up to the current one, in order,
before structuring, so data written by any older taskflow still loads. Old steps are never
edited: stored data still goes through them.

Schema 2 added the entries' `facts` and `appended` and the task's `workflow_version`.
`_upgrade_1_to_2` marks a schema-1 entry's facts null; a task holding such entries gets its
facts derived once on load by replaying it with `apply` (`_derive_facts`), and is refused,
naming the entry, if that replay fails or disagrees with what was stored. A schema-1 entry on
its own cannot be given facts and is refused.
"""

from __future__ import annotations

import copy
import enum
import functools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from itertools import repeat
from typing import Any, get_args, get_origin

import attrs
import cattrs
from cattrs.cols import (
    is_abstract_set,
    is_any_set,
    is_frozenset,
    is_mapping,
    is_mutable_sequence,
    is_sequence,
)
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.fns import identity
from cattrs.gen import (
    make_dict_structure_fn,
    make_dict_unstructure_fn,
    mapping_structure_factory,
    override,
)

from taskflow.domain import engine
from taskflow.domain.erasure import ERASE_PERSONAL_DATA, ErasePersonalData
from taskflow.domain.registry import Registry, TaskKind
from taskflow.domain.task import (
    FACT_FIELDS,
    OPEN,
    OPEN_FACTS,
    TASK_FIELDS,
    Cause,
    DomainEvent,
    HistoryEntry,
    NewTask,
    Task,
)
from taskflow.domain.values import Actor, aware
from taskflow.domain.workflow import Workflow
from taskflow.errors import DeserializationError, InvalidPayload, TaskflowError, UnknownKind

__all__ = ["SCHEMA_VERSION", "Serializer"]

SCHEMA_VERSION: int = 2
"""The version of the stored shape that this taskflow writes, and the newest it reads."""

_Upgrade = Callable[[str, str, dict[str, Any]], dict[str, Any]]


def _entry_1_to_2(entry: Any) -> Any:
    # Schema 1 recorded no facts: null tells the loader to derive them (see `_derive_facts`).
    return {**entry, "facts": None, "appended": []} if isinstance(entry, Mapping) else entry


def _upgrade_1_to_2(document: str, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """Add schema 2's keys: each entry's `facts` (null: derive them) and the task's `workflow_version`."""
    if document == "entry":
        upgraded: dict[str, Any] = _entry_1_to_2(data)
        return upgraded
    if document != "task":
        return data  # events did not change
    # Every task stored before workflows had versions was written under version 1.
    upgraded = {**data, "workflow_version": 1}
    history = data.get("history")
    if isinstance(history, list):
        upgraded["history"] = [_entry_1_to_2(entry) for entry in history]
    return upgraded


# One step per version: _UPGRADES[n] turns schema-n data into schema n + 1 (see the docstring).
_UPGRADES: Mapping[int, _Upgrade] = {1: _upgrade_1_to_2}

_StructureFn = Callable[[Any, Any], Any]
_UnstructureFn = Callable[[Any], Any]

# How many problems one error message lists before it says how many more there are.
_MAX_LISTED = 10


class _Refused(ValueError):
    """A value the serializer refuses; `field` extends the path when it names a sub-field."""

    def __init__(self, message: str, *, field: str = "") -> None:
        self.field = field
        super().__init__(message)


def _describe(value: Any) -> str:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{shown} ({type(value).__name__})"


# --- hooks for the leaves: strict, so a number never becomes a string by accident ----------


def _structure_str(value: Any, cl: Any) -> Any:
    if not isinstance(value, str):
        msg = f"expected a string, got {_describe(value)}"
        raise _Refused(msg)
    if cl is str:
        return value
    if isinstance(cl, type) and issubclass(cl, enum.Enum):
        return _structure_enum(value, cl)
    return cl(value)


def _structure_int(value: Any, cl: Any) -> Any:
    if not isinstance(value, int) or isinstance(value, bool):
        msg = f"expected a whole number, got {_describe(value)}"
        raise _Refused(msg)
    if cl is int:
        return value
    if isinstance(cl, type) and issubclass(cl, enum.Enum):
        return _structure_enum(value, cl)
    return cl(value)


def _structure_float(value: Any, cl: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        msg = f"expected a number, got {_describe(value)}"
        raise _Refused(msg)
    return float(value)


def _structure_bool(value: Any, cl: Any) -> bool:
    if not isinstance(value, bool):
        msg = f"expected true or false, got {_describe(value)}"
        raise _Refused(msg)
    return value


def _structure_enum(value: Any, cl: type[enum.Enum]) -> enum.Enum:
    try:
        member = cl._value2member_map_.get(value)
    except TypeError:  # an unhashable value is no member's
        member = None
    if member is not None and type(member.value) is type(value):
        return member
    for member in cl:
        if member.value == value and type(member.value) is type(value):
            return member
    allowed = ", ".join(repr(m.value) for m in cl)
    msg = f"expected one of {allowed}, got {_describe(value)}"
    raise _Refused(msg)


def _unstructure_enum(value: enum.Enum) -> Any:
    return value.value


def _unstructure_str(value: str) -> Any:
    # A str subclass (a `(str, Enum)` member, say) is written as the plain string it holds.
    if type(value) is str:
        return value
    return value.value if isinstance(value, enum.Enum) else str.__str__(value)


def _unstructure_int(value: int) -> Any:
    if type(value) is int:
        return value
    return value.value if isinstance(value, enum.Enum) else int(value)


def _unstructure_bool(value: bool) -> bool:
    return value


def _unstructure_datetime(value: datetime) -> str:
    if value.utcoffset() is None:
        msg = (
            f"cannot serialize the naive datetime {value.isoformat()}: "
            "taskflow stores only timezone-aware times"
        )
        raise InvalidPayload(msg)
    return value.isoformat()


def _structure_datetime(value: Any, cl: Any) -> datetime:
    if not isinstance(value, str):
        msg = f"expected an ISO 8601 date and time string, got {_describe(value)}"
        raise _Refused(msg)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        msg = (
            "expected an ISO 8601 date and time with a UTC offset, "
            f"like '2024-05-01T09:30:00+02:00', got {value!r}"
        )
        raise _Refused(msg) from None
    if parsed.utcoffset() is None:
        msg = (
            f"{value!r} is a naive time (no UTC offset); taskflow stores only "
            "timezone-aware times: add an offset such as '+00:00'"
        )
        raise _Refused(msg)
    return parsed


def _unstructure_date(value: date) -> str:
    if isinstance(value, datetime):
        msg = f"cannot serialize {value.isoformat()} as a date: it is a datetime"
        raise InvalidPayload(msg)
    return value.isoformat()


def _structure_date(value: Any, cl: Any) -> date:
    if not isinstance(value, str):
        msg = f"expected an ISO 8601 date string, got {_describe(value)}"
        raise _Refused(msg)
    try:
        return date.fromisoformat(value)
    except ValueError:
        msg = f"expected an ISO 8601 date like '2024-05-01', got {value!r}"
        raise _Refused(msg) from None


def _unstructure_decimal(value: Decimal) -> str:
    # Money and hours stay exact: a decimal is written as its string, never as a float.
    if not value.is_finite():
        msg = f"cannot serialize the decimal {value}: only finite amounts are stored"
        raise InvalidPayload(msg)
    return str(value)


def _structure_decimal(value: Any, cl: Any) -> Decimal:
    if not isinstance(value, str):
        msg = f"expected a decimal number as a string like '12.50', got {_describe(value)}"
        raise _Refused(msg)
    try:
        parsed = Decimal(value)
    except InvalidOperation:
        parsed = Decimal("NaN")
    if not parsed.is_finite():
        msg = f"expected a decimal number as a string like '12.50', got {value!r}"
        raise _Refused(msg)
    return parsed


def _unstructure_timedelta(value: timedelta) -> float:
    return value.total_seconds()


def _structure_timedelta(value: Any, cl: Any) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"expected a duration in seconds, got {_describe(value)}"
        raise _Refused(msg)
    return timedelta(seconds=value)


def _json_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _sorted(items: list[Any]) -> list[Any]:
    try:
        return sorted(items)
    except TypeError:
        # Elements that do not compare (unstructured attrs values, mixed types) sort by their JSON.
        return sorted(items, key=_json_key)


def _is_homogeneous_collection(cl: Any) -> bool:
    return is_sequence(cl) or is_any_set(cl)


def _is_fixed_tuple(cl: Any) -> bool:
    return get_origin(cl) is tuple and ... not in get_args(cl)


def _dict_type(cl: Any) -> type:
    origin = get_origin(cl) or cl
    return origin if isinstance(origin, type) and issubclass(origin, dict) else dict


def _structure_each(
    cl: Any, value: Sequence[Any], hooks: Iterable[tuple[_StructureFn, Any]]
) -> list[Any]:
    """Structure each item with its hook; one error group names every index that failed."""
    # `hooks` may be endless (the same hook repeated), so zip stops at the last item.
    pairs = list(zip(value, hooks, strict=False))
    with suppress(Exception):  # the slower loop below then names every item that fails
        return [hook(item, item_type) for item, (hook, item_type) in pairs]
    items: list[Any] = []
    errors: list[Exception] = []
    for index, (item, (hook, item_type)) in enumerate(pairs):
        try:
            items.append(hook(item, item_type))
        except Exception as exc:
            exc.add_note(
                IterableValidationNote(f"Structuring {cl} @ index {index}", index, item_type)
            )
            errors.append(exc)
    if errors:
        msg = f"While structuring {cl!r}"
        raise IterableValidationError(msg, errors, cl)
    return items


def _passthrough(value: Any, cl: Any) -> Any:
    return value


def _mapping_only(fn: _StructureFn, cl: type) -> _StructureFn:
    """Wrap a generated attrs structure function so a non-mapping gets a clear message."""

    def structure(value: Any, target: Any) -> Any:
        if type(value) is not dict and not isinstance(value, Mapping):
            fields = "an object" if cl is dict else f"an object with the fields of {cl.__name__}"
            msg = f"expected {fields}, got {_describe(value)}"
            raise _Refused(msg)
        return fn(value, target)

    return structure


def _make_converter() -> cattrs.Converter:
    """Build the value converter: strict leaves, ISO times, sorted sets, lists for tuples."""
    converter = cattrs.Converter(
        detailed_validation=True,
        forbid_extra_keys=True,
        omit_if_default=False,
        # Fixed-length tuples (tuple[int, str]) are written as lists like every other sequence.
        unstruct_collection_overrides={tuple: list},
    )
    for cl, structure in (
        (str, _structure_str),
        (int, _structure_int),
        (float, _structure_float),
        (bool, _structure_bool),
        (datetime, _structure_datetime),
        (date, _structure_date),
        (Decimal, _structure_decimal),
        (timedelta, _structure_timedelta),
    ):
        converter.register_structure_hook(cl, structure)
    converter.register_unstructure_hook(str, _unstructure_str)
    converter.register_unstructure_hook(int, _unstructure_int)
    converter.register_unstructure_hook(bool, _unstructure_bool)
    converter.register_unstructure_hook(datetime, _unstructure_datetime)
    converter.register_unstructure_hook(date, _unstructure_date)
    converter.register_unstructure_hook(Decimal, _unstructure_decimal)
    converter.register_unstructure_hook(timedelta, _unstructure_timedelta)
    # StrEnum and IntEnum are registered by name too: their MRO puts str or int before Enum.
    for base in (enum.Enum, enum.StrEnum, enum.IntEnum):
        converter.register_structure_hook(base, _structure_enum)
        converter.register_unstructure_hook(base, _unstructure_enum)

    def unstructure_collection(cl: Any) -> _UnstructureFn:
        args = get_args(cl)
        handler = converter.get_unstructure_hook(args[0]) if args else converter.unstructure
        if is_any_set(cl):
            return lambda value: _sorted([handler(item) for item in value])
        return lambda value: [handler(item) for item in value]

    def structure_collection(cl: Any) -> _StructureFn:
        args = get_args(cl)
        elem = args[0] if args else Any
        handler = _passthrough if elem is Any else converter.get_structure_hook(elem)
        target: Callable[[list[Any]], Any]
        if is_frozenset(cl) or is_abstract_set(cl):
            target = frozenset
        elif is_any_set(cl):
            target = set
        elif is_mutable_sequence(cl):
            target = list
        else:
            target = tuple

        plain_text = handler is _structure_str and elem is str

        def structure(value: Any, _: Any) -> Any:
            if not isinstance(value, list | tuple):
                msg = f"expected a list, got {_describe(value)}"
                raise _Refused(msg)
            if plain_text and all(type(item) is str for item in value):
                return target(value)  # the common case, checked without a hook call per item
            with suppress(Exception):  # the loop of `_structure_each` then names each failure
                return target([handler(item, elem) for item in value])
            return target(_structure_each(cl, value, repeat((handler, elem))))

        return structure

    converter.register_unstructure_hook_factory(_is_homogeneous_collection, unstructure_collection)
    converter.register_structure_hook_factory(_is_homogeneous_collection, structure_collection)

    def structure_fixed_tuple(cl: Any) -> _StructureFn:
        types = get_args(cl)
        handlers = [converter.get_structure_hook(t) for t in types]

        def structure(value: Any, _: Any) -> tuple[Any, ...]:
            if not isinstance(value, list | tuple) or len(value) != len(types):
                msg = f"expected a list of {len(types)} items, got {_describe(value)}"
                raise _Refused(msg)
            return tuple(_structure_each(cl, value, zip(handlers, types, strict=True)))

        return structure

    converter.register_structure_hook_factory(_is_fixed_tuple, structure_fixed_tuple)
    converter.register_structure_hook_factory(
        is_mapping,
        lambda cl: _mapping_only(mapping_structure_factory(cl, converter, _dict_type(cl)), dict),
    )
    converter.register_structure_hook_factory(
        attrs.has, lambda cl: _mapping_only(converter.gen_structure_attrs_fromdict(cl), cl)
    )
    return converter


# --- per kind and per action: what an `Any` field really holds --------------------------------


@attrs.frozen
class _Tagged:
    """How one `Any` field (task data, a payload) is read and written for one kind or action."""

    expected: type | None
    draft_data: type | None  # for the `open` entry: the type of the draft's data
    structure: Callable[[Any], Any]
    unstructure: Callable[[Any], Any]

    def problem(self, value: Any) -> str | None:
        """Say why `value` cannot be written here, or None if it can."""
        if self.expected is None:
            return None if value is None else f"takes no payload, got {type(value).__name__}"
        if not isinstance(value, self.expected):
            got = "nothing" if value is None else type(value).__name__
            return f"needs a {self.expected.__name__}, got {got}"
        data = getattr(value, "data", None)
        if self.draft_data is not None and not isinstance(data, self.draft_data):
            return f"needs draft data of type {self.draft_data.__name__}, got {type(data).__name__}"
        return None


@attrs.frozen
class _KindCodec:
    """How the data, the payloads and the recorded facts of one task kind are read and written."""

    kind: TaskKind
    data: _Tagged
    payloads: Mapping[str, _Tagged]
    # By Task field name; `data` is the kind's data type, the rest the Task field's own type.
    facts: Mapping[str, _Tagged]


@attrs.frozen
class _LegacyEntry:
    """A history entry as schema 1 stored it: no facts; they are derived on load."""

    action: str
    actor: Actor
    at: datetime = attrs.field(validator=aware)
    from_state: str | None
    to_state: str
    payload: Any = None
    changed: tuple[str, ...] = ()
    cause: Cause | None = None


@attrs.frozen
class _EntityHooks:
    """The generated cattrs functions of an entity whose `Any` fields the caller fills in."""

    cl: type
    order: Mapping[str, int]
    structure_fn: _StructureFn
    unstructure_fn: Callable[[Any], dict[str, Any]]

    def structure(self, value: Mapping[str, Any], **fields: Callable[[Any], Any]) -> Any:
        """Structure `value`, each named `Any` field with its own hook, reporting all errors."""
        errors: list[Exception] = []
        given = dict(value)
        for name, hook in fields.items():
            if name in value:
                try:
                    given[name] = hook(value[name])
                except Exception as exc:
                    note = f"Structuring class {self.cl.__name__} @ attribute {name}"
                    exc.add_note(AttributeValidationNote(note, name, Any))
                    errors.append(exc)
        try:
            result = self.structure_fn(given, self.cl)
        except ClassValidationError as exc:
            if not errors:
                raise
            errors += exc.exceptions
        if errors:
            errors.sort(key=self._position)
            msg = f"While structuring {self.cl.__name__}"
            raise ClassValidationError(msg, errors, self.cl)
        return result

    def unstructure(self, obj: Any, **values: Any) -> dict[str, Any]:
        """Unstructure `obj`, with the named `Any` fields already written by the caller."""
        result = self.unstructure_fn(obj)
        result.update(values)  # the keys are there already, so the field order is kept
        return result

    def with_fields(self, **tagged: _Tagged) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
        """Return structure and unstructure functions that fill the named fields with `tagged`."""
        hooks = {name: t.structure for name, t in tagged.items()}

        def structure(value: Any) -> Any:
            return self.structure(_mapping(value, self.cl), **hooks)

        def unstructure(obj: Any) -> dict[str, Any]:
            values = {name: t.unstructure(getattr(obj, name)) for name, t in tagged.items()}
            return self.unstructure(obj, **values)

        return structure, unstructure

    def _position(self, exc: Exception) -> int:
        for note in getattr(exc, "__notes__", ()):
            if isinstance(note, AttributeValidationNote):
                return self.order.get(note.name, len(self.order))
        return len(self.order)


def _entity_hooks(
    converter: cattrs.Converter, cl: type, *tagged: str, omitted: tuple[str, ...] = ()
) -> _EntityHooks:
    """Generate the functions of `cl`; its `tagged` fields pass through, typed by the caller.

    `omitted` fields are neither written nor read (they keep their default).
    """
    attrs.resolve_types(cl)
    passing: dict[str, Any] = {name: override(struct_hook=_passthrough) for name in tagged}
    identities: dict[str, Any] = {name: override(unstruct_hook=identity) for name in tagged}
    for name in omitted:
        passing[name] = identities[name] = override(omit=True)
    return _EntityHooks(
        cl,
        {a.name: i for i, a in enumerate(attrs.fields(cl))},
        make_dict_structure_fn(cl, converter, **passing),
        make_dict_unstructure_fn(cl, converter, **identities),
    )


def _mapping(value: Any, cl: type) -> Mapping[str, Any]:
    if type(value) is not dict and not isinstance(value, Mapping):
        msg = f"expected an object with the fields of {cl.__name__}, got {_describe(value)}"
        raise _Refused(msg)
    return value


def _structure_nothing(value: Any) -> None:
    if value is not None:
        msg = f"this action takes no payload (null), got {_describe(value)}"
        raise _Refused(msg)


# --- errors: cattrs' exception groups become one message with paths --------------------------


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _note_path(exc: BaseException, path: str) -> str:
    for note in getattr(exc, "__notes__", ()):
        if isinstance(note, AttributeValidationNote):
            return _join(path, note.name)
        if isinstance(note, IterableValidationNote):
            index = note.index if isinstance(note.index, int) else repr(note.index)
            return f"{path}[{index}]"
    return path


def _problems(exc: BaseException, path: str) -> list[tuple[str, str]]:
    """Return (path, what is wrong) for every leaf of a cattrs validation error."""
    if isinstance(exc, ClassValidationError | IterableValidationError):
        found: list[tuple[str, str]] = []
        for sub in exc.exceptions:
            found += _problems(sub, _note_path(sub, path))
        return found
    if isinstance(exc, ForbiddenExtraKeysError):
        fields = ", ".join(a.name for a in attrs.fields(exc.cl)) if attrs.has(exc.cl) else ""
        return [
            (_join(path, key), f"unknown field; {exc.cl.__name__} has only: {fields}")
            for key in sorted(exc.extra_fields)
        ]
    if isinstance(exc, KeyError):
        return [(path, "required field is missing")]
    field = getattr(exc, "field", "")
    if isinstance(exc, _Refused | InvalidPayload) and field:
        # A validator that raised while the object was built names the field it checked.
        return [(_join(path, field), str(exc))]
    if isinstance(exc, TaskflowError | _Refused):
        return [(path, str(exc))]
    return [(path, f"{type(exc).__name__}: {exc}")]


def _translate(exc: BaseException, what: str, task_id: str) -> DeserializationError:
    problems = _problems(exc, "") or [("", str(exc))]
    listed = [f"{p}: {m}" if p else m for p, m in problems[:_MAX_LISTED]]
    if len(problems) > _MAX_LISTED:
        listed.append(f"and {len(problems) - _MAX_LISTED} more")
    count = f" ({len(problems)} problems)" if len(problems) > 1 else ""
    msg = f"cannot load {what}{count}: " + "; ".join(listed)
    return DeserializationError(msg, path=problems[0][0], task_id=task_id)


def _cause(exc: BaseException) -> BaseException:
    # A refusal raised because of another taskflow error (UnknownKind) chains that error.
    if isinstance(exc, _Refused) and isinstance(exc.__cause__, TaskflowError):
        return exc.__cause__
    return exc


def _read_str(data: Any, key: str) -> str:
    value = data.get(key) if isinstance(data, Mapping) else None
    return value if isinstance(value, str) else ""


def _upgrade(document: str, kind: str, data: dict[str, Any], found: int) -> dict[str, Any]:
    for version in range(found, SCHEMA_VERSION):
        data = _UPGRADES[version](document, kind, data)
    return data


def _body(data: Any, document: str, kind: str, what: str, task_id: str) -> dict[str, Any]:
    """Check the schema version of a stored document; return its fields in the current shape."""
    if not isinstance(data, Mapping):
        msg = f"cannot load {what}: expected an object (mapping), got {_describe(data)}"
        raise DeserializationError(msg, task_id=task_id)
    if "schema" not in data:
        msg = (
            f"cannot load {what}: schema: missing; every stored {document} carries its "
            f"schema version (this taskflow reads up to {SCHEMA_VERSION})"
        )
        raise DeserializationError(msg, path="schema", task_id=task_id)
    found = data["schema"]
    if not isinstance(found, int) or isinstance(found, bool) or found < 1:
        msg = (
            f"cannot load {what}: schema: expected a whole number from 1 to {SCHEMA_VERSION}, "
            f"got {_describe(found)}"
        )
        raise DeserializationError(msg, path="schema", task_id=task_id)
    if found > SCHEMA_VERSION:
        msg = (
            f"cannot load {what}: schema: version {found} is newer than the newest this "
            f"taskflow reads ({SCHEMA_VERSION}); upgrade taskflow to read it"
        )
        raise DeserializationError(msg, path="schema", task_id=task_id)
    body = {key: value for key, value in data.items() if key != "schema"}
    return _upgrade(document, kind, body, found)


class Serializer:
    """Reads and writes the tasks, domain events and history entries of a registry's kinds.

    Make one per registry and keep it: it generates its cattrs functions when it is made
    (and once for each kind registered later), never per call.
    """

    __slots__ = (
        "_codecs",
        "_converter",
        "_draft",
        "_entry",
        "_event",
        "_facts",
        "_legacy_entry",
        "_registry",
        "_task",
    )

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._converter = converter = _make_converter()
        self._codecs: dict[str, _KindCodec] = {}
        # One generated function pair per entity; its `Any` fields are filled in per kind.
        # `view_of` marks a filtered view in memory only: what is stored is never a view.
        self._task = _entity_hooks(converter, Task, "data", "history", omitted=("view_of",))
        self._draft = _entity_hooks(converter, NewTask, "data")
        self._entry = _entity_hooks(converter, HistoryEntry, "payload", "facts")
        self._legacy_entry = _entity_hooks(converter, _LegacyEntry, "payload")
        self._event = _entity_hooks(converter, DomainEvent, "payload")
        # Facts are typed by the Task field they set (its data by the kind: see `_build_codec`).
        types = {a.name: a.type for a in attrs.fields(Task)}
        self._facts = {name: self._typed(types[name]) for name in FACT_FIELDS - {"data"}}
        # Tasks and events inside other values (a host's own classes) go through their kind too.
        converter.register_unstructure_hook(Task, self._unstructure_task)
        converter.register_structure_hook(Task, self._structure_task)
        converter.register_unstructure_hook(DomainEvent, self._unstructure_event)
        converter.register_structure_hook(DomainEvent, self._structure_event)
        for kind in registry:
            self._codec(kind.name)

    @property
    def converter(self) -> cattrs.Converter:
        """Return the cattrs converter, for values and payload classes (and tasks, events)."""
        return self._converter

    def dump_task(self, task: Task) -> dict[str, Any]:
        """Return `task` as JSON-ready data tagged with the schema version and its kind."""
        return {"schema": SCHEMA_VERSION, **self._unstructure_task(task)}

    def load_task(self, data: Mapping[str, Any]) -> Task:
        """Return the task `data` holds; raise `DeserializationError` naming every problem."""
        task_id = _read_str(data, "id")
        what = f"task '{task_id}'" if task_id else "task"
        body = _body(data, "task", _read_str(data, "kind"), what, task_id)
        try:
            return self._structure_task(body, Task)
        except Exception as exc:
            raise _translate(exc, what, task_id) from _cause(exc)

    def dump_event(self, event: DomainEvent) -> dict[str, Any]:
        """Return `event` as JSON-ready data tagged with the schema version and its kind."""
        return {"schema": SCHEMA_VERSION, **self._unstructure_event(event)}

    def load_event(self, data: Mapping[str, Any]) -> DomainEvent:
        """Return the domain event `data` holds; raise `DeserializationError` if it cannot."""
        task_id = _read_str(data, "task_id")
        name = _read_str(data, "name")
        what = f"event '{name}' of task '{task_id}'" if task_id else "event"
        body = _body(data, "event", _read_str(data, "kind"), what, task_id)
        try:
            return self._structure_event(body, DomainEvent)
        except Exception as exc:
            raise _translate(exc, what, task_id) from _cause(exc)

    def dump_entry(self, kind: str, entry: HistoryEntry) -> dict[str, Any]:
        """Return a history entry of a `kind` task as JSON-ready data with the schema version."""
        codec = self._codec(kind)
        return {"schema": SCHEMA_VERSION, **self._unstructure_entry(codec, entry)}

    def load_entry(self, kind: str, data: Mapping[str, Any]) -> HistoryEntry:
        """Return the history entry of a `kind` task that `data` holds, or raise."""
        what = f"history entry of a '{kind}' task"
        body = _body(data, "entry", kind, what, "")
        try:
            codec = self._codec(kind)
        except UnknownKind as unknown:
            msg = f"cannot load {what}: {unknown}"
            raise DeserializationError(msg) from unknown
        try:
            return self._structure_entry(codec, body)
        except Exception as exc:
            raise _translate(exc, what, "") from _cause(exc)

    # --- the kind-aware hooks ------------------------------------------------------------

    def _codec(self, name: str) -> _KindCodec:
        kind = self._registry[name]
        codec = self._codecs.get(name)
        if codec is None or codec.kind is not kind:
            codec = self._build_codec(kind)
            self._codecs[name] = codec
        return codec

    def _build_codec(self, kind: TaskKind) -> _KindCodec:
        data = self._tagged(kind.data_type)
        draft_structure, draft_unstructure = self._draft.with_fields(data=data)
        payloads = {OPEN: _Tagged(NewTask, kind.data_type, draft_structure, draft_unstructure)}
        for transition in kind.workflow.transitions:
            payloads[transition.name] = self._tagged(transition.payload)
        # Every kind's history may hold an erasure, which no workflow declares.
        payloads.setdefault(ERASE_PERSONAL_DATA, self._tagged(ErasePersonalData))
        return _KindCodec(kind, data, payloads, {**self._facts, "data": data})

    def _typed(self, field_type: Any) -> _Tagged:
        hook = self._converter.get_structure_hook(field_type)

        def structure(value: Any) -> Any:
            return hook(value, field_type)

        return _Tagged(None, None, structure, self._converter.get_unstructure_hook(field_type))

    def _tagged(self, expected: type | None) -> _Tagged:
        if expected is None:
            return _Tagged(None, None, _structure_nothing, identity)
        hook = self._converter.get_structure_hook(expected)
        payload_type = expected

        def structure(value: Any) -> Any:
            return hook(value, payload_type)

        return _Tagged(expected, None, structure, self._converter.get_unstructure_hook(expected))

    def _kind_of(self, value: Mapping[str, Any]) -> _KindCodec:
        name = value.get("kind")
        if not isinstance(name, str):
            msg = (
                "required field is missing"
                if name is None
                else f"expected a string, got {_describe(name)}"
            )
            raise _Refused(msg, field="kind")
        try:
            return self._codec(name)
        except UnknownKind as unknown:
            raise _Refused(str(unknown), field="kind") from unknown

    def _action_of(self, codec: _KindCodec, value: Mapping[str, Any]) -> _Tagged:
        action = value.get("action")
        if not isinstance(action, str):
            msg = (
                "required field is missing"
                if action is None
                else f"expected a string, got {_describe(action)}"
            )
            raise _Refused(msg, field="action")
        payload = codec.payloads.get(action)
        if payload is None:
            kind = codec.kind
            actions = ", ".join(repr(a) for a in (OPEN, *kind.workflow.action_names))
            msg = (
                f"'{action}' is not an action of task kind '{kind.name}' "
                f"(workflow '{kind.workflow.name}'); its actions: {actions}"
            )
            raise _Refused(msg, field="action")
        return payload

    def _writable(self, codec: _KindCodec, action: str, value: Any, what: str) -> _Tagged:
        payload = codec.payloads.get(action)
        if payload is None:
            problem: str | None = f"'{action}' is not an action of this kind"
        else:
            problem = payload.problem(value)
        if problem is not None or payload is None:
            msg = f"cannot serialize {what} '{action}' of a '{codec.kind.name}' task: {problem}"
            raise InvalidPayload(msg, field="payload", action=action)
        return payload

    def _structure_task(self, value: Any, _: Any) -> Task:
        mapping = _mapping(value, Task)
        codec = self._kind_of(mapping)
        mapping = _upgrade_kind(codec.kind, mapping)
        if _is_legacy(mapping.get("history")):
            return self._structure_legacy_task(codec, mapping)

        def history(items: Any) -> tuple[HistoryEntry, ...]:
            if not isinstance(items, list | tuple):
                msg = f"expected a list of history entries, got {_describe(items)}"
                raise _Refused(msg)
            hook = (lambda item, _: self._structure_entry(codec, item), HistoryEntry)
            return tuple(_structure_each(tuple[HistoryEntry, ...], items, repeat(hook)))

        task: Task = self._task.structure(mapping, data=codec.data.structure, history=history)
        return task

    def _structure_legacy_task(self, codec: _KindCodec, mapping: Mapping[str, Any]) -> Task:
        """Load a task whose entries hold no facts (schema 1): derive them by the old replay."""

        def history(items: Any) -> tuple[_LegacyEntry, ...]:
            hook = (lambda item, _: self._structure_legacy_entry(codec, item), _LegacyEntry)
            return tuple(_structure_each(tuple[_LegacyEntry, ...], items, repeat(hook)))

        # Task does not check what its history holds: the legacy entries are replaced below.
        stored: Task = self._task.structure(mapping, data=codec.data.structure, history=history)
        return _derive_facts(codec.kind, stored)

    def _structure_legacy_entry(self, codec: _KindCodec, value: Any) -> _LegacyEntry:
        mapping = _mapping(value, HistoryEntry)
        payload = self._action_of(codec, mapping)
        # Every entry's facts are derived again, so any an entry does hold are left out.
        mapping = {k: v for k, v in mapping.items() if k not in ("facts", "appended")}
        entry: _LegacyEntry = self._legacy_entry.structure(mapping, payload=payload.structure)
        return entry

    def _unstructure_task(self, task: Task) -> dict[str, Any]:
        codec = self._codec(task.kind)
        problem = codec.data.problem(task.data)
        if problem is not None:
            msg = f"cannot serialize task {task.number}: its '{task.kind}' data {problem}"
            raise InvalidPayload(msg, field="data")
        return self._task.unstructure(
            task,
            data=codec.data.unstructure(task.data),
            history=[self._unstructure_entry(codec, entry) for entry in task.history],
        )

    def _structure_event(self, value: Any, _: Any) -> DomainEvent:
        mapping = _mapping(value, DomainEvent)
        payload = self._action_of(self._kind_of(mapping), mapping)
        event: DomainEvent = self._event.structure(mapping, payload=payload.structure)
        return event

    def _unstructure_event(self, event: DomainEvent) -> dict[str, Any]:
        codec = self._codec(event.kind)
        payload = self._writable(codec, event.action, event.payload, f"event '{event.name}'")
        return self._event.unstructure(event, payload=payload.unstructure(event.payload))

    def _structure_entry(self, codec: _KindCodec, value: Any) -> HistoryEntry:
        mapping = _mapping(value, HistoryEntry)
        payload = self._action_of(codec, mapping)
        if "facts" in mapping and mapping["facts"] is None:
            msg = (
                "null: this entry was stored by schema 1, before entries recorded the values "
                "they set, which only the whole task can give back: load the task it belongs to"
            )
            raise _Refused(msg, field="facts")
        names = _fact_names(mapping)

        def facts(raw: Any) -> tuple[Any, ...]:
            return _structure_facts(codec, raw, names)

        entry: HistoryEntry = self._entry.structure(mapping, payload=payload.structure, facts=facts)
        return entry

    def _unstructure_entry(self, codec: _KindCodec, entry: HistoryEntry) -> dict[str, Any]:
        payload = self._writable(codec, entry.action, entry.payload, "history entry")
        facts: dict[str, Any] = {}
        for name, value in zip(entry.fact_fields, entry.facts, strict=True):
            tagged = codec.facts.get(name)
            problem = (
                f"'{name}' is not a field a history entry records"
                if tagged is None
                else codec.data.problem(value)
                if name == "data"
                else None
            )
            if tagged is None or problem is not None:
                msg = (
                    f"cannot serialize history entry '{entry.action}' of a "
                    f"'{codec.kind.name}' task: its fact {name} {problem}"
                )
                raise InvalidPayload(msg, field="facts", action=entry.action)
            facts[name] = tagged.unstructure(value)
        return self._entry.unstructure(
            entry, payload=payload.unstructure(entry.payload), facts=facts
        )


def _fact_names(mapping: Mapping[str, Any]) -> tuple[str, ...] | None:
    """Return the fields a stored entry's facts must name, or None if its `changed` is malformed."""
    if mapping.get("action") == OPEN:
        return OPEN_FACTS
    changed = mapping.get("changed", [])
    if isinstance(changed, list) and all(isinstance(name, str) for name in changed):
        return tuple(changed)
    return None  # structuring `changed` reports the problem


def _structure_facts(codec: _KindCodec, raw: Any, names: tuple[str, ...] | None) -> tuple[Any, ...]:
    """Structure an entry's facts, each typed by the Task field it sets, in the order of `names`."""
    if not isinstance(raw, Mapping):
        msg = f"expected an object of field names and values, got {_describe(raw)}"
        raise _Refused(msg)
    if names is not None and set(raw) != set(names):
        msg = (
            f"expected a value for each field the entry records {list(names)} "
            f"(the 'open' entry records {list(OPEN_FACTS)}, the others their 'changed'), "
            f"got {list(raw)}"
        )
        raise _Refused(msg)
    values: list[Any] = []
    errors: list[Exception] = []
    for name in names if names is not None else tuple(raw):
        tagged = codec.facts.get(name)
        try:
            if tagged is None:
                msg = (
                    f"not a field a history entry records; it records only: "
                    f"{', '.join(f for f in TASK_FIELDS if f in FACT_FIELDS)}"
                )
                raise _Refused(msg)
            values.append(tagged.structure(raw[name]))
        except Exception as exc:
            exc.add_note(AttributeValidationNote(f"Structuring facts @ {name}", name, Any))
            errors.append(exc)
    if errors:
        msg = "While structuring facts"
        raise ClassValidationError(msg, errors, dict)
    return tuple(values)


def _is_legacy(history: Any) -> bool:
    """Tell whether a stored history holds no facts (schema 1): some entry's facts are null."""
    return isinstance(history, list | tuple) and any(
        isinstance(entry, Mapping) and "facts" in entry and entry["facts"] is None
        for entry in history
    )


def _upgrade_kind(kind: TaskKind, mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    """Bring a stored task written under an older workflow version to the kind's current one."""
    found = mapping.get("workflow_version", 1)
    current = kind.workflow.version
    if not isinstance(found, int) or isinstance(found, bool) or found == current or found < 1:
        return mapping  # the same version, or a bad value that structuring reports
    if found > current:
        msg = (
            f"stored under version {found} of kind '{kind.name}', but the registered "
            f"workflow '{kind.workflow.name}' is version {current}; register the kind's newer "
            "workflow (with its upgrades) to read it"
        )
        raise _Refused(msg, field="workflow_version")
    document = copy.deepcopy(dict(mapping))  # the caller's data stays as it was
    for version in range(found, current):
        try:
            document = kind.upgrades[version](document)
        except Exception as exc:
            msg = (
                f"the upgrade of kind '{kind.name}' from workflow version {version} to "
                f"{version + 1} failed: {type(exc).__name__}: {exc}"
            )
            raise _Refused(msg, field="workflow_version") from exc
        if not isinstance(document, dict):
            msg = (
                f"the upgrade of kind '{kind.name}' from workflow version {version} to "
                f"{version + 1} must return the task as a dict, got {_describe(document)}"
            )
            raise _Refused(msg, field="workflow_version")
        document["workflow_version"] = version + 1
    return document


@functools.lru_cache(maxsize=64)
def _legacy_workflow(workflow: Workflow) -> Workflow:
    """Return `workflow` with the rules schema-1 histories were made by.

    Rules added since are off (`assign_answerer`), and a transition whose effect changed since
    runs its `schema_1_effect`.
    """
    old = tuple(
        t if t.schema_1_effect is None else attrs.evolve(t, effect=t.schema_1_effect)
        for t in workflow.transitions
    )
    if not workflow.assign_answerer and old == workflow.transitions:
        return workflow
    return attrs.evolve(workflow, assign_answerer=False, transitions=old)


def _derive_facts(kind: TaskKind, stored: Task) -> Task:
    """Rebuild a schema-1 task's history with facts by the old replay: `apply` over each entry.

    Runs the kind's workflow (guards, checks, permissions, effects) once, on load, with the
    rules of schema 1's time (`_legacy_workflow`), else with today's (a history that lost some
    facts since); the rebuilt task must be the stored one, entry for entry, or the task does
    not load, and the error of the rules of its time is raised.
    """
    then = _legacy_workflow(kind.workflow)
    try:
        return _derive_with(then, kind, stored)
    except _Refused:
        if then is kind.workflow:
            raise
        with suppress(_Refused):
            return _derive_with(kind.workflow, kind, stored)
        raise


def _derive_with(workflow: Workflow, kind: TaskKind, stored: Task) -> Task:
    """Replay `stored`'s schema-1 history with `workflow`; raise `_Refused` if it differs."""
    legacy: tuple[_LegacyEntry, ...] = stored.history  # type: ignore[assignment]
    first = legacy[0] if legacy else None
    if first is None or first.action != OPEN:
        msg = (
            f"a history stored by schema 1 must start with an '{OPEN}' entry to derive its "
            "facts from"
        )
        raise _Refused(msg, field="history")
    task: Task | None = None
    for index, old in enumerate(legacy):
        try:
            if task is None:
                draft = old.payload
                task = engine.open_task(
                    workflow, kind.name, draft, old.actor, old.at, stored.id, stored.number,
                    cause=old.cause,
                ).task  # fmt: skip
            else:
                task = engine.apply(
                    workflow, task, old.action, old.actor, old.at, old.payload, cause=old.cause
                ).task
        except TaskflowError as exc:
            why = f"fails: {type(exc).__name__}: {exc}"
            msg = _legacy_problem(workflow.name, old, why)
            raise _Refused(msg, field=f"history[{index}]") from exc
        new = task.history[-1]
        if (new.from_state, new.to_state, new.changed) != (
            old.from_state,
            old.to_state,
            old.changed,
        ):
            got = f"'{new.from_state}' -> '{new.to_state}' changing {list(new.changed)}"
            want = f"'{old.from_state}' -> '{old.to_state}' changing {list(old.changed)}"
            msg = _legacy_problem(workflow.name, old, f"gives {got}, stored: {want}")
            raise _Refused(msg, field=f"history[{index}]")
    assert task is not None  # the history starts with its 'open' entry
    differ = [
        name
        for name in TASK_FIELDS
        if name != "history" and getattr(task, name) != getattr(stored, name)
    ]
    if differ:
        msg = (
            f"replaying its schema-1 history with workflow '{workflow.name}' gives other "
            f"{differ} than stored; it cannot be rebuilt with facts"
        )
        raise _Refused(msg, field="history")
    return task


def _legacy_problem(workflow: str, entry: _LegacyEntry, problem: str) -> str:
    return (
        f"entry '{entry.action}' by {entry.actor} at {entry.at.isoformat()} was stored by "
        f"schema 1 without facts; deriving them by replaying it with workflow '{workflow}' "
        f"{problem}"
    )
