"""Rules as JSON-ready data, written and read with taskflow's converter (hosts store and edit them)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import cattrs
from cattrs.gen import make_dict_unstructure_fn

from taskflow.automation.rules import ACTION_TYPES, Rule
from taskflow.errors import DeserializationError, TaskflowError
from taskflow.serialization import Serializer

__all__ = ["RULES_SCHEMA", "dump_rules", "load_rules", "rule_converter"]

RULES_SCHEMA = 1
"""The version of the rule document's shape; `load_rules` refuses a newer one."""


def rule_converter(converter: cattrs.Converter | None = None) -> cattrs.Converter:
    """Return `converter` (default: taskflow's value converter) able to read and write rules.

    A rule action is written with its `type` (`set_field`, `assign`, `comment`, ...).
    """
    if converter is None:
        from taskflow.domain.registry import Registry

        converter = Serializer(Registry()).converter
    plain: dict[type, Callable[[Any], Any]] = {
        cls: make_dict_unstructure_fn(cls, converter) for cls in ACTION_TYPES.values()
    }
    build: dict[str, Callable[[Any, Any], Any]] = {
        name: converter.gen_structure_attrs_fromdict(cls) for name, cls in ACTION_TYPES.items()
    }

    def unstructure_action(action: Any) -> dict[str, Any]:
        cls = type(action)
        data: dict[str, Any] = plain[cls](action)
        return {"type": cls.type, **data}

    def structure_action(data: Any, _: Any) -> Any:
        if not isinstance(data, Mapping):
            msg = f"a rule action must be an object with a 'type', got {type(data).__name__}"
            raise DeserializationError(msg, path="type")
        kind = data.get("type")
        cls = ACTION_TYPES.get(kind) if isinstance(kind, str) else None
        if cls is None:
            msg = f"rule action type {kind!r} is unknown; types: {', '.join(sorted(ACTION_TYPES))}"
            raise DeserializationError(msg, path="type")
        body = {k: v for k, v in data.items() if k != "type"}
        return build[str(kind)](body, cls)

    from taskflow.automation.rules import RuleAction

    for cls in ACTION_TYPES.values():
        converter.register_unstructure_hook(cls, unstructure_action)
    converter.register_unstructure_hook(RuleAction, unstructure_action)
    converter.register_structure_hook(RuleAction, structure_action)
    return converter


_CONVERTER: list[cattrs.Converter] = []


def _converter() -> cattrs.Converter:
    if not _CONVERTER:  # made on first use: importing taskflow builds no converter
        _CONVERTER.append(rule_converter())
    return _CONVERTER[0]


def dump_rules(rules: Iterable[Rule]) -> dict[str, Any]:
    """Return `rules` as one JSON-ready document (`{"schema": 1, "rules": [...]}`)."""
    converter = _converter()
    return {"schema": RULES_SCHEMA, "rules": [converter.unstructure(r, Rule) for r in rules]}


def load_rules(document: Mapping[str, Any]) -> tuple[Rule, ...]:
    """Return the rules a `dump_rules` document holds; raise `DeserializationError` naming the rule."""
    if not isinstance(document, Mapping) or not isinstance(document.get("rules"), Sequence):
        msg = "a rules document is an object with 'schema' and a list of 'rules'"
        raise DeserializationError(msg, path="rules")
    schema = document.get("schema")
    if schema != RULES_SCHEMA:
        msg = f"rules document schema {schema!r} is not one this taskflow reads ({RULES_SCHEMA})"
        raise DeserializationError(msg, path="schema")
    converter = _converter()
    out: list[Rule] = []
    for i, data in enumerate(document["rules"]):
        name = data.get("name") if isinstance(data, Mapping) else None
        try:
            out.append(converter.structure(data, Rule))
        except DeserializationError as exc:
            msg = f"rules[{i}] {name!r}: {exc}"
            raise DeserializationError(msg, path=f"rules[{i}].{exc.path}") from exc
        except TaskflowError as exc:
            msg = f"rules[{i}] {name!r}: {exc}"
            raise DeserializationError(msg, path=f"rules[{i}]") from exc
        except Exception as exc:
            details = "; ".join(_messages(exc)) or str(exc)
            msg = f"rules[{i}] {name!r} cannot be read: {details}"
            raise DeserializationError(msg, path=f"rules[{i}]") from exc
    return tuple(out)


def _messages(exc: BaseException) -> list[str]:
    if isinstance(exc, BaseExceptionGroup):
        found: list[str] = []
        for member in exc.exceptions:
            notes = "; ".join(getattr(member, "__notes__", ()))
            inner = _messages(member)
            found.extend(f"{notes}: {m}" if notes else m for m in inner)
        return found
    return [str(exc)]
