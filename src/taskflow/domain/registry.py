"""Task kinds (a data class plus a workflow) and the registry that names them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from taskflow.domain._frozen import FrozenMap
from taskflow.domain.matrix import MatrixEntry, kind_rows
from taskflow.domain.notifications import NotificationPolicy
from taskflow.domain.query import QUERY_FIELDS, IndexedField
from taskflow.domain.validators import excerpt
from taskflow.domain.values import not_blank
from taskflow.domain.workflow import Workflow
from taskflow.errors import InvalidWorkflow, UnknownKind

__all__ = ["Registry", "TaskKind", "Upgrade"]

Upgrade = Callable[[dict[str, Any]], dict[str, Any]]
"""Turn the JSON document of a task stored under workflow version n into the version n + 1 shape."""


def _upgrades(value: Mapping[int, Upgrade]) -> Mapping[int, Upgrade]:
    return MappingProxyType(dict(value))


def _rows(value: Iterable[MatrixEntry]) -> tuple[MatrixEntry, ...]:
    return tuple(value)


def _frozen(value: Mapping[str, IndexedField]) -> Mapping[str, IndexedField]:
    return FrozenMap(value) if isinstance(value, Mapping) else value


def _indexed(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Mapping):
        msg = (
            f"task kind '{instance.name}': indexed must map field names to functions of the "
            f"task, got {excerpt(value)}"
        )
        raise InvalidWorkflow(msg)
    for name, compute in value.items():
        if not isinstance(name, str) or not name.isidentifier() or name in QUERY_FIELDS:
            msg = (
                f"task kind '{instance.name}': indexed field name {excerpt(name)} is not allowed; a "
                "name is an identifier other than TaskQuery's own fields "
                f"({', '.join(sorted(QUERY_FIELDS))})"
            )
            raise InvalidWorkflow(msg)
        if not callable(compute):
            msg = (
                f"task kind '{instance.name}': indexed field '{name}' must be a function of "
                f"the task returning its value, got {compute!r}"
            )
            raise InvalidWorkflow(msg)


@attrs.frozen
class TaskKind:
    """A kind of task: its name, the type of its kind-specific data, and its workflow.

    `policy` decides who hears of the kind's events; None falls back to the service's policy.
    `matrix` are the kind's own notification matrix rows (who hears of which event by default);
    they come before `policy`, and a host's `NotificationMatrix` entries naming the kind override
    them (taskflow.domain.matrix).

    `upgrades[n]` brings a task stored under workflow version n to version n + 1 on load;
    they must cover every version from 1 to `workflow.version - 1`.

    `indexed` names the values its tasks are found by (`TaskQuery.where`), each computed from
    the task: `{"booking_ref": lambda task: task.data.booking_ref}`; see `index_values`.

    `personal_fields` names the data fields that hold the requester's personal data, each with
    the value it is replaced by when that person's data is erased (`erase_personal_data`).
    """

    name: str = attrs.field(validator=not_blank)
    data_type: type
    workflow: Workflow
    description: str = ""
    policy: NotificationPolicy | None = attrs.field(default=None, kw_only=True)
    matrix: tuple[MatrixEntry, ...] = attrs.field(default=(), converter=_rows, kw_only=True)
    upgrades: Mapping[int, Upgrade] = attrs.field(
        factory=dict, converter=_upgrades, hash=False, kw_only=True
    )
    indexed: Mapping[str, IndexedField] = attrs.field(
        factory=FrozenMap, converter=_frozen, validator=_indexed, kw_only=True
    )
    # The data fields holding the personal data of the person who opened the task (a ticket's
    # name, email and phone), each with the value it takes once erased (valid for its field).
    personal_fields: Mapping[str, Any] = attrs.field(
        factory=FrozenMap, converter=_frozen, hash=False, kw_only=True
    )

    def __attrs_post_init__(self) -> None:
        if not attrs.has(self.data_type):
            msg = f"task kind '{self.name}': data type {self.data_type!r} must be an attrs class"
            raise InvalidWorkflow(msg)
        kind_rows(self.name, self.matrix)
        fields = {a.name for a in attrs.fields(self.data_type)}
        unknown = sorted(set(self.personal_fields) - fields)
        if unknown:
            msg = (
                f"task kind '{self.name}': personal_fields names {unknown}, which "
                f"{self.data_type.__name__} does not have; its fields are {sorted(fields)}"
            )
            raise InvalidWorkflow(msg)
        version = self.workflow.version
        needed = set(range(1, version))
        wrong = [n for n, f in self.upgrades.items() if n not in needed or not callable(f)]
        if set(self.upgrades) != needed or wrong:
            missing = sorted(needed - set(self.upgrades))
            msg = (
                f"task kind '{self.name}': workflow '{self.workflow.name}' is version {version}, "
                f"so upgrades must map {_span(version)} to a function; "
                f"missing: {missing or 'none'}, not allowed: {sorted(wrong, key=repr) or 'none'}"
            )
            raise InvalidWorkflow(msg)


def _span(version: int) -> str:
    if version == 1:
        return "no version (version 1 needs none)"
    return "version 1" if version == 2 else f"each version from 1 to {version - 1}"


class Registry:
    """The task kinds a host application uses, by name; serialization and the service read it."""

    __slots__ = ("_kinds",)

    def __init__(self, kinds: Iterable[TaskKind] = ()) -> None:
        self._kinds: dict[str, TaskKind] = {}
        for kind in kinds:
            self.register(kind)

    def register(self, kind: TaskKind) -> TaskKind:
        """Add `kind`; a second kind of the same name is refused."""
        if kind.name in self._kinds:
            msg = f"a task kind named '{kind.name}' is already registered"
            raise InvalidWorkflow(msg)
        self._kinds[kind.name] = kind
        return kind

    def __getitem__(self, name: str) -> TaskKind:
        try:
            return self._kinds[name]
        except KeyError:
            raise UnknownKind(name, self._kinds) from None

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def __iter__(self) -> Iterator[TaskKind]:
        return iter(self._kinds.values())

    def __len__(self) -> int:
        return len(self._kinds)

    @property
    def names(self) -> tuple[str, ...]:
        """Return the registered kind names, in registration order."""
        return tuple(self._kinds)

    def __repr__(self) -> str:
        return f"Registry({list(self._kinds)!r})"
