"""Task kinds (a data class plus a workflow) and the registry that names them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import attrs

from taskflow.domain.notifications import NotificationPolicy
from taskflow.domain.values import not_blank
from taskflow.domain.workflow import Workflow
from taskflow.errors import InvalidWorkflow, UnknownKind

__all__ = ["Registry", "TaskKind"]


@attrs.frozen
class TaskKind:
    """A kind of task: its name, the type of its kind-specific data, and its workflow.

    `policy` decides who hears of the kind's events; None falls back to the service's policy.
    """

    name: str = attrs.field(validator=not_blank)
    data_type: type
    workflow: Workflow
    description: str = ""
    policy: NotificationPolicy | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if not attrs.has(self.data_type):
            msg = f"task kind '{self.name}': data type {self.data_type!r} must be an attrs class"
            raise InvalidWorkflow(msg)


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
