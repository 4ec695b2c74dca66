"""Small attrs validators and converters that refuse bad input with `InvalidPayload`.

Every public value and payload class of taskflow uses them, and a kind of your own can too
(they are re-exported from `taskflow`). Each error names the class and the field, says what
was wrong and what is allowed, and quotes at most a short excerpt of the bad value.
"""

from __future__ import annotations

import enum
import re
import reprlib
import types
import typing
import unicodedata
from collections import abc
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import Any, TypeVar

import attrs

from taskflow.errors import InvalidPayload

__all__ = [
    "EXCERPT_LENGTH",
    "ID_LENGTH",
    "aware",
    "blank_to_none",
    "check_actor",
    "check_aware",
    "check_id",
    "check_instance",
    "check_limit",
    "check_version",
    "excerpt",
    "frozenset_of",
    "identifier",
    "instance_of",
    "max_length",
    "member_or_value",
    "not_blank",
    "one_of",
    "optional_text",
    "text",
    "tuple_of",
    "typed",
    "typed_fields",
    "whole_number",
]

_E = TypeVar("_E", bound=enum.Enum)

EXCERPT_LENGTH = 60
"""How many characters of a bad value an error message quotes at most."""

ID_LENGTH = 200
"""How long a company or user id may be."""

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]

_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxtuple = _REPR.maxlist = _REPR.maxdict = _REPR.maxset = _REPR.maxfrozenset = 4
_REPR.maxstring = _REPR.maxlong = _REPR.maxother = EXCERPT_LENGTH


def excerpt(value: Any, limit: int = EXCERPT_LENGTH) -> str:
    """Return a short `repr` of `value` for an error message: at most `limit` characters.

    Safe for any value: a deeply nested one, a huge one, or one whose `repr` raises.
    """
    try:
        shown = _REPR.repr(value)
    except (RecursionError, MemoryError, Exception):
        shown = f"<{type(value).__name__}>"
    if len(shown) > limit:
        shown = shown[: max(limit - 3, 0)] + "..."
    return shown


def _got(value: Any) -> str:
    if isinstance(value, str):  # the quotes say it is a str
        return excerpt(value)
    return f"{type(value).__name__} {excerpt(value)}"


def _where(instance: Any, attribute: attrs.Attribute[Any] | None) -> tuple[str, str]:
    owner = type(instance).__name__ if instance is not None else "value"
    name = attribute.name.lstrip("_") if attribute is not None else "value"
    return f"{owner}.{name}", name


def _refuse(instance: Any, attribute: attrs.Attribute[Any] | None, wanted: str, value: Any) -> None:
    where, field = _where(instance, attribute)
    msg = f"{where} must be {wanted}, got {_got(value)}"
    raise InvalidPayload(msg, field=field)


def not_blank(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Attrs validator: refuse anything but a non-blank string with `InvalidPayload`."""
    if not isinstance(value, str) or not value.strip():
        _refuse(instance, attribute, "a non-blank string", value)


def text(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Attrs validator: refuse anything but a string (which may be empty) with `InvalidPayload`."""
    if not isinstance(value, str):
        _refuse(instance, attribute, "text (a str)", value)


def optional_text(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Attrs validator: accept a string or None, refuse anything else with `InvalidPayload`."""
    if value is not None and not isinstance(value, str):
        _refuse(instance, attribute, "text or None", value)


def aware(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Attrs validator: refuse a naive datetime, a date or another type with `InvalidPayload`.

    None passes only where the field's default is None (an optional time).
    """
    if value is None and attribute.default is None:
        return
    if not isinstance(value, datetime) or value.utcoffset() is None:
        _refuse(instance, attribute, "a timezone-aware datetime", value)


def whole_number(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Attrs validator: accept an int >= 0 (not a bool, not a float); refuse anything else."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        _refuse(instance, attribute, "a whole number >= 0", value)


def blank_to_none(value: Any) -> Any:
    """Attrs converter: an empty or blank string (a form's empty optional field) becomes None."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _names(types: tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in types)


def instance_of(*types: type, optional: bool = False) -> Validator:
    """Return an attrs validator that refuses a value of any other type (None if `optional`)."""
    wanted = _names(types) + (" or None" if optional else "")

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None and optional:
            return
        if not isinstance(value, types):
            _refuse(instance, attribute, f"a {wanted}", value)

    return check


def max_length(limit: int) -> Validator:
    """Return an attrs validator that refuses a string or collection longer than `limit`."""

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and len(value) > limit:
            where, field = _where(instance, attribute)
            msg = f"{where} may be at most {limit} long, got {len(value)}"
            raise InvalidPayload(msg, field=field)

    return check


def _control(value: str) -> bool:
    # A printable string holds none of these (isprintable refuses every C* and Z* but the
    # space), so the per-character scan runs only for the rare string that is not.
    if value.isprintable():
        return False
    return any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value)


def _id_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"must be a str, got {_got(value)}"
    if not value.strip():
        return f"must be a non-blank id, got {excerpt(value)}"
    if value != value.strip():
        return f"must not start or end with spaces, got {excerpt(value)}"
    if len(value) > ID_LENGTH:
        return f"may be at most {ID_LENGTH} characters long, got {len(value)}"
    if _control(value):
        return f"must not contain control characters, got {excerpt(value)}"
    return None


def identifier(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Attrs validator for a company or user id: no surrounding spaces, no control characters.

    It must be a str of at most `ID_LENGTH` characters.
    """
    problem = _id_problem(value)
    if problem is not None:
        where, field = _where(instance, attribute)
        raise InvalidPayload(f"{where} {problem}", field=field)


def _split(where: str) -> str:
    return where.rsplit(".", 1)[-1]


def one_of(enum_type: type[_E], value: Any, where: str) -> _E:
    """Return `value` as a member of `enum_type`; refuse it listing the allowed values.

    For an attrs converter: `def _priority(v): return one_of(Priority, v, "Edit.priority")`.
    `where` names the class and field ("Class.field") for the message.
    """
    if isinstance(value, enum_type):
        return value
    # Only a str or an int can be a member's value: anything else (a list, a deep value whose
    # repr would recurse) is refused here, before the enum's own message quotes it whole.
    member = _member(enum_type, value)
    if member is not None:
        return member
    allowed = ", ".join(repr(m.value) for m in enum_type)
    msg = f"{where} must be one of {allowed}, got {_got(value)}"
    raise InvalidPayload(msg, field=_split(where))


def member_or_value(enum_type: type[_E], value: Any) -> Any:
    """Attrs converter helper: the member of `enum_type` whose value `value` is, else `value` as given.

    For a field whose validator refuses a non-member listing the allowed values; unlike calling
    the enum, it never quotes (or recurses into) a value that cannot be a member's.
    """
    member = _member(enum_type, value)
    return value if member is None else member


def _member(enum_type: type[_E], value: Any) -> _E | None:
    # A dict look-up, not `enum_type(value)`: the enum's own error quotes the value whole (slow
    # for a 10 MB text) or recurses into a deep one; only a str or an int can be a value.
    if isinstance(value, enum_type):
        return value
    if isinstance(value, str | int) and not isinstance(value, bool):
        return typing.cast("_E | None", enum_type._value2member_map_.get(value))
    return None


def _items(value: Any, item: type | tuple[type, ...], where: str) -> list[Any]:
    types = item if isinstance(item, tuple) else (item,)
    field = _split(where)
    wanted = f"a collection of {_names(types)}"
    if isinstance(value, (str, bytes, bytearray, Mapping)) or not isinstance(value, Iterable):
        msg = f"{where} must be {wanted} (a str is not a collection), got {_got(value)}"
        raise InvalidPayload(msg, field=field)
    try:
        items = list(value)
    except InvalidPayload:
        raise
    except Exception:
        msg = f"{where} must be {wanted}, got {_got(value)}"
        raise InvalidPayload(msg, field=field) from None
    for i, each in enumerate(items):
        if not isinstance(each, types):
            msg = f"{where}[{i}] must be a {_names(types)}, got {_got(each)}"
            raise InvalidPayload(msg, field=f"{field}[{i}]")
    return items


def tuple_of(
    item: type | tuple[type, ...], value: Any, where: str, *, unique: bool = False
) -> tuple[Any, ...]:
    """Return `value` as a tuple of `item`s; a str is never taken as a collection.

    For an attrs converter (`where` is "Class.field"); with `unique`, repeats are dropped.
    """
    if type(value) is tuple:
        if not value:
            return value
        if all(isinstance(v, item) for v in value) and (
            not unique or len(value) == 1 or len(set(value)) == len(value)
        ):
            return value
    items = _items(value, item, where)
    return tuple(dict.fromkeys(items)) if unique else tuple(items)


def frozenset_of(item: type | tuple[type, ...], value: Any, where: str) -> frozenset[Any]:
    """Return `value` as a frozenset of `item`s; a str is never taken as a collection."""
    if type(value) is frozenset and (not value or all(isinstance(v, item) for v in value)):
        return value
    return frozenset(_items(value, item, where))


# --- checks derived from a field's annotation -------------------------------------------------

_HINTS: dict[type, dict[str, Any]] = {}
_UNIONS = (typing.Union, types.UnionType)


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # an unresolvable annotation is not checked
            hints = {}
        _HINTS[cls] = hints
    return hints


def _shown(hint: Any) -> str:
    if hint is type(None):
        return "None"
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in hint)
    if hint is datetime:
        return "a timezone-aware datetime"
    if isinstance(hint, type):
        return f"a {hint.__name__}"
    if isinstance(hint, typing.NewType):
        return _shown(hint.__supertype__)
    return re.sub(r"(?:\w+\.)+(\w+)", r"\1", str(hint))


def _collection(hint: Any) -> bool:
    options = typing.get_args(hint) if typing.get_origin(hint) in _UNIONS else (hint,)
    return any(typing.get_origin(o) in (tuple, frozenset, set, abc.Set) for o in options)


def _bad_item(value: Any, hint: Any) -> tuple[int, Any, Any] | None:
    """Find the first wrong item of a collection whose hint is `tuple[X, ...]`/`frozenset[X]`."""
    for option in typing.get_args(hint) if typing.get_origin(hint) in _UNIONS else (hint,):
        origin, args = typing.get_origin(option), typing.get_args(option)
        homogeneous = (origin is tuple and len(args) == 2 and args[1] is Ellipsis) or (
            origin in (frozenset, set, abc.Set) and len(args) == 1
        )
        if homogeneous and isinstance(value, (tuple, list, frozenset, set)):
            for i, item in enumerate(value):
                if not _conforms(item, args[0]):
                    return i, item, args[0]
    return None


def _conforms(value: Any, hint: Any) -> bool:
    if hint is Any or isinstance(hint, typing.TypeVar):
        return True
    if hint is None or hint is type(None):
        return value is None
    if isinstance(hint, typing.NewType):
        return _conforms(value, hint.__supertype__)
    origin = typing.get_origin(hint)
    if origin is None:
        if not isinstance(hint, type):
            return True
        if hint is bool:
            return isinstance(value, bool)
        if hint is int:
            return isinstance(value, int) and not isinstance(value, bool)
        if hint is float:
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if hint is datetime:
            return isinstance(value, datetime) and value.utcoffset() is not None
        if hint is date:
            return isinstance(value, date) and not isinstance(value, datetime)
        return isinstance(value, hint)
    args = typing.get_args(hint)
    if origin in _UNIONS:
        return any(_conforms(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_conforms(v, args[0]) for v in value)
        return len(args) == len(value) and all(map(_conforms, value, args))
    if origin in (frozenset, set, abc.Set):
        return isinstance(value, (frozenset, set)) and (
            not args or all(_conforms(v, args[0]) for v in value)
        )
    if origin in (dict, abc.Mapping):
        return isinstance(value, abc.Mapping)
    if isinstance(origin, type):
        return (isinstance(value, origin) and not isinstance(value, str)) or origin is str
    return True


# A check compiled from a hint: True when a value conforms. None: every value conforms.
_Conforms = Callable[[Any], bool]


def _always(value: Any) -> bool:
    return True


def _plain(hint: type) -> _Conforms:
    """Return the check of a plain class hint, with the same rules as `_conforms`."""
    if hint is bool:
        return lambda v: v is True or v is False
    if hint is int:
        return lambda v: type(v) is int or (isinstance(v, int) and not isinstance(v, bool))
    if hint is float:
        return lambda v: (
            type(v) is float or (isinstance(v, (int, float)) and not isinstance(v, bool))
        )
    if hint is datetime:
        return lambda v: isinstance(v, datetime) and v.utcoffset() is not None
    if hint is date:
        return lambda v: isinstance(v, date) and not isinstance(v, datetime)
    return lambda v: type(v) is hint or isinstance(v, hint)


def _compile(hint: Any) -> _Conforms:
    """Return a function telling what `_conforms(value, hint)` tells, with the hint read once."""
    if hint is Any or isinstance(hint, typing.TypeVar):
        return _always
    if hint is None or hint is type(None):
        return lambda v: v is None
    if isinstance(hint, typing.NewType):
        return _compile(hint.__supertype__)
    origin = typing.get_origin(hint)
    if origin is None:
        return _plain(hint) if isinstance(hint, type) else _always
    args = typing.get_args(hint)
    if origin in _UNIONS:
        options = [_compile(arg) for arg in args]
        optional = type(None) in args
        rest = [c for c, a in zip(options, args, strict=True) if a is not type(None)]
        if optional and len(rest) == 1:
            (one,) = rest
            return lambda v: v is None or one(v)
        return lambda v: any(c(v) for c in options)
    if origin is typing.Literal:
        return lambda v: v in args
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = _compile(args[0])
            if item is _always:
                return lambda v: isinstance(v, tuple)
            return lambda v: isinstance(v, tuple) and all(map(item, v))
        items = [_compile(a) for a in args]
        return lambda v: (
            isinstance(v, tuple)
            and len(v) == len(items)
            and all(c(x) for c, x in zip(items, v, strict=True))
        )
    if origin in (frozenset, set, abc.Set):
        member = _compile(args[0]) if args else _always
        return lambda v: isinstance(v, (frozenset, set)) and all(map(member, v))
    if origin in (dict, abc.Mapping):
        return lambda v: isinstance(v, abc.Mapping)
    if isinstance(origin, type):
        if origin is str:
            return _always
        return lambda v: isinstance(v, origin) and not isinstance(v, str)
    return _always


# The compiled check of each (class, field) that `typed` has seen; None: the field has no hint.
_CHECKS: dict[tuple[type, str], _Conforms | None] = {}


def _check_of(cls: type, name: str) -> _Conforms | None:
    key = (cls, name)
    try:
        return _CHECKS[key]
    except KeyError:
        hint = _hints(cls).get(name)
        check = None if hint is None else _compile(hint)
        _CHECKS[key] = check
        return check


def typed(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Attrs validator: refuse a value that does not match the field's annotation.

    Understands str, int (no bool), float, bool, Decimal, date, aware datetime, enums, classes,
    `X | None`, `tuple[X, ...]`, `frozenset[X]` and mappings; a str is never a collection.
    """
    conforms = _check_of(type(instance), attribute.name)
    if conforms is not None and not conforms(value):
        hint = _hints(type(instance))[attribute.name]
        where, field = _where(instance, attribute)
        bad = _bad_item(value, hint)
        if bad is not None:
            i, item, item_hint = bad
            msg = f"{where}[{i}] must be {_shown(item_hint)}, got {_got(item)}"
            raise InvalidPayload(msg, field=f"{field}[{i}]")
        extra = (
            " (a str is not a collection)" if isinstance(value, str) and _collection(hint) else ""
        )
        msg = f"{where} must be {_shown(hint)}{extra}, got {_got(value)}"
        raise InvalidPayload(msg, field=field)


def typed_fields(cls: type, fields: list[attrs.Attribute[Any]]) -> list[attrs.Attribute[Any]]:
    """Attrs field transformer: check every field with no validator/converter by its annotation.

    Use it as `@attrs.frozen(field_transformer=typed_fields)`; a field with a validator or a
    converter of its own keeps it alone (which must refuse a value of the wrong type itself,
    quoting it with `excerpt`).
    """
    return [
        f if f.validator is not None or f.converter is not None else f.evolve(validator=_typed())
        for f in fields
    ]


def _typed() -> Validator:
    """Return a validator that does what `typed` does, keeping its field's check per class."""
    checks: dict[type, _Conforms | None] = {}

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        cls = type(instance)
        try:
            conforms = checks[cls]
        except KeyError:
            conforms = checks[cls] = _check_of(cls, attribute.name)
        if conforms is not None and not conforms(value):
            typed(instance, attribute, value)  # refuses it, naming what is allowed

    return check


# --- checks of a call's arguments (service and repository boundaries) -----------------------


def check_instance(call: str, field: str, value: Any, *types: type) -> None:
    """Raise `InvalidPayload` unless `value` (argument `field` of `call`) is one of `types`."""
    if not isinstance(value, types):
        msg = f"{call}: {field} must be a {_names(types)}, got {_got(value)}"
        raise InvalidPayload(msg, field=field)


def check_actor(call: str, actor: Any) -> None:
    """Raise `InvalidPayload` unless `actor` is a taskflow `Actor`."""
    global _actor_type  # imported once: taskflow.domain.values imports this module
    if _actor_type is None:
        from taskflow.domain.values import Actor

        _actor_type = Actor
    if type(actor) is not _actor_type:
        check_instance(call, "actor", actor, _actor_type)


_actor_type: type | None = None


def check_id(call: str, field: str, value: Any) -> None:
    """Raise `InvalidPayload` unless `value` is a well-formed id (see `identifier`)."""
    problem = _id_problem(value)
    if problem is not None:
        raise InvalidPayload(f"{call}: {field} {problem}", field=field)


def check_limit(call: str, value: Any, *, field: str = "limit") -> None:
    """Raise `InvalidPayload` unless `value` is None or a whole number >= 0 (no bool)."""
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        msg = f"{call}: {field} must be None or a whole number >= 0, got {excerpt(value)}"
        raise InvalidPayload(msg, field=field)


def check_version(call: str, value: Any, *, field: str = "expected_version") -> None:
    """Raise `InvalidPayload` unless `value` is None or a version number (an int >= 1, no bool)."""
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        msg = f"{call}: {field} must be a whole number >= 1 or None, got {_got(value)}"
        raise InvalidPayload(msg, field=field)


def check_aware(call: str, field: str, value: Any) -> None:
    """Raise `InvalidPayload` unless `value` is a timezone-aware datetime (not a date, not None)."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        kind = "a date" if isinstance(value, date) and not isinstance(value, datetime) else ""
        got = kind or _got(value)
        msg = f"{call}: {field} must be a timezone-aware datetime, got {got}"
        raise InvalidPayload(msg, field=field)
