"""Fast builders for frozen slotted attrs classes, for the engine's hot path. Pure.

attrs' generated `__init__` converts and validates every field, and `attrs.evolve` runs it
again for all the fields a copy keeps. The engine knows which values are already valid (they
were checked when first set, or it made them itself), so it builds with these instead: one
straight-line function per class, generated once (as attrs generates its own methods), that
sets the slots and runs nothing else. What they skip must be checked by the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["copier", "evolver", "positional_builder"]


def _slot_setters(cls: type) -> tuple[list[str], dict[str, Any]]:
    names = [a.name for a in attrs.fields(cls)]
    scope: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    for i, name in enumerate(names):
        scope[f"_set{i}"] = cls.__dict__[name].__set__
    return names, scope


def positional_builder(cls: type) -> Callable[..., Any]:
    """Return `build(*values)` making a `cls` from one value per field, in order, unchecked."""
    names, scope = _slot_setters(cls)
    params = ", ".join(f"v{i}" for i in range(len(names)))
    lines = [f"def build({params}):", "    self = _new(_cls)"]
    lines += [f"    _set{i}(self, v{i})" for i in range(len(names))]
    lines.append("    return self")
    exec("\n".join(lines), scope)  # generated from attrs field names, as attrs does
    build: Callable[..., Any] = scope["build"]
    return build


def copier(cls: type) -> Callable[[Any], Any]:
    """Return `copy(obj)` making a new `cls` with the same field values as `obj`, unchecked."""
    names, scope = _slot_setters(cls)
    lines = ["def copy(obj):", "    self = _new(_cls)"]
    lines += [f"    _set{i}(self, obj.{name})" for i, name in enumerate(names)]
    lines.append("    return self")
    exec("\n".join(lines), scope)  # generated from attrs field names, as attrs does
    copy: Callable[[Any], Any] = scope["copy"]
    return copy


def evolver(cls: type) -> Callable[..., Any]:
    """Return `evolve(obj, **changes)`: a copy with `changes`, converting and validating only them.

    The same result as `attrs.evolve` for a value whose unchanged fields are valid, without
    running the validators of the fields that keep their value. An unknown field name raises
    the `TypeError` attrs' own `__init__` would.
    """
    copy = copier(cls)
    # Per field: its slot setter, converter, validator and attribute, looked up once.
    plan = {
        a.name: (cls.__dict__[a.name].__set__, a.converter, a.validator, a)
        for a in attrs.fields(cls)
    }

    def evolve(obj: Any, **changes: Any) -> Any:
        new = copy(obj)
        for name, value in changes.items():
            known = plan.get(name)
            if known is None:
                msg = f"{cls.__name__}.__init__() got an unexpected keyword argument '{name}'"
                raise TypeError(msg)
            converter = known[1]
            known[0](new, value if converter is None else converter(value))
        for name in changes:
            _, _, validator, field = plan[name]
            if validator is not None:
                validator(new, field, getattr(new, name))
        return new

    return evolve
