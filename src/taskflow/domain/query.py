"""What a repository can be asked for, and the rule every repository applies to answer it.

A kind may declare *indexed fields*: values computed from each of its tasks that queries can
filter on (`TaskKind(..., indexed={"booking_ref": booking_ref})`); `index_values` computes
them, repositories store them, and `TaskQuery.where` filters on them. Results come ordered by
creation time, then id; `after` (a `Cursor`) and `limit` cut them into pages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeAlias

import attrs

from taskflow.domain._frozen import FrozenMap
from taskflow.domain.task import Task
from taskflow.domain.validators import excerpt, one_of, tuple_of, typed_fields
from taskflow.domain.values import CompanyId, Side, TaskId, UserRef, aware, not_blank
from taskflow.domain.workflow import Workflow
from taskflow.errors import InvalidPayload, InvalidWorkflow, TaskflowError

__all__ = [
    "QUERY_FIELDS",
    "Between",
    "Cursor",
    "IndexValue",
    "IndexedField",
    "Page",
    "TaskQuery",
    "check_indexed",
    "check_states",
    "check_time_range",
    "index_tag",
    "index_values",
    "sort_key",
]

IndexValue: TypeAlias = str | int | bool | datetime | None
"""A value a task is found by: text, a whole number (64 bits), a flag or an aware time; None: none."""

IndexedField: TypeAlias = Callable[[Task], IndexValue]
"""How a kind computes one indexed value from a task (pure: the same task, the same value)."""

_SMALLEST = -(2**63)
_LARGEST = 2**63 - 1
_ALLOWED = "a str, a whole number from -2**63 to 2**63 - 1, a bool or a timezone-aware datetime"


def index_tag(value: object) -> str | None:
    """Return the type an index value is stored and compared as ('bool', 'int', 'text', 'time'), or None if it is not one.

    Values of different types never match each other: `True` is not `1`, `"7"` is not `7`.
    """
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if _SMALLEST <= value <= _LARGEST else None
    if isinstance(value, str):
        return "text"
    if isinstance(value, datetime):
        return "time" if value.utcoffset() is not None else None
    return None


def _plain(value: Any) -> Any:
    # A str or int subclass (a StrEnum, an IntEnum) is stored as the plain value it stands for.
    if isinstance(value, bool) or type(value) in (str, int):
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    return value


class IndexedKind(Protocol):
    """What `index_values` reads of a kind (`TaskKind` is one): its name and indexed fields."""

    @property
    def name(self) -> str:
        """Return the kind's name."""
        ...

    @property
    def indexed(self) -> Mapping[str, IndexedField]:
        """Return the kind's indexed fields by name."""
        ...


class KindLookup(Protocol):
    """What `check_indexed` reads of a registry (`Registry` is one): its kinds by name."""

    def __contains__(self, name: object) -> bool: ...

    def __getitem__(self, name: str) -> IndexedKind: ...

    def __iter__(self) -> Iterator[IndexedKind]: ...


def index_values(kind: IndexedKind, task: Task) -> dict[str, IndexValue]:
    """Compute the indexed fields `kind` declares for `task`; a field whose value is None is left out.

    A value of another type raises `InvalidPayload` naming the kind, the field and the value; a
    field function that fails raises `InvalidWorkflow` (the declaration is at fault).
    """
    values: dict[str, IndexValue] = {}
    for name, compute in kind.indexed.items():
        try:
            value = compute(task)
        except TaskflowError:
            raise
        except Exception as exc:
            msg = (
                f"task kind '{kind.name}': indexed field '{name}' failed on task "
                f"{task.number}: {exc!r}"
            )
            raise InvalidWorkflow(msg) from exc
        if value is None:
            continue
        if index_tag(value) is None:
            msg = (
                f"task kind '{kind.name}': indexed field '{name}' of task {task.number} is "
                f"{excerpt(value)} ({type(value).__name__}); an index value is {_ALLOWED}, or None "
                "for a task that has none"
            )
            raise InvalidPayload(msg, field=name)
        values[name] = _plain(value)
    return values


def _compare(low: Any, value: Any, high: Any) -> bool:
    return (low is None or low <= value) and (high is None or value <= high)


@attrs.frozen
class Between:
    """An inclusive range over an indexed field, `low <= value <= high`; a None end is open.

    Both ends are of one index type; the `TaskQuery` it is given to checks them.
    """

    low: IndexValue = None
    high: IndexValue = None

    @property
    def tag(self) -> str | None:
        """Return the index type of the range's ends (see `index_tag`)."""
        return index_tag(self.low if self.low is not None else self.high)

    def contains(self, value: IndexValue) -> bool:
        """Tell whether `value` is of the ends' type and lies between them, both included."""
        return (
            value is not None
            and index_tag(value) == self.tag
            and _compare(self.low, value, self.high)
        )


@attrs.frozen(field_transformer=typed_fields)
class Cursor:
    """Where a page ended: the creation time and id of its last task; the next page starts after it."""

    created_at: datetime = attrs.field(validator=aware)
    task_id: TaskId = attrs.field(validator=not_blank)

    @classmethod
    def of(cls, task: Task) -> Cursor:
        """Return the cursor just after `task` in the order of query results."""
        return cls(task.created_at, task.id)

    def key(self) -> tuple[datetime, str]:
        """Return the position as a `sort_key`: results after the cursor have a greater one."""
        return (self.created_at, self.task_id)


# --- TaskQuery's converters and validators ----------------------------------------------------


def _optional_names(value: Any) -> frozenset[str] | None:
    if isinstance(value, str):
        return frozenset({value})
    if value is None:
        return None
    items = tuple_of(object, value, "TaskQuery.states")  # a collection (a str is one name)
    wrong = [i for i in items if not isinstance(i, str)]
    if wrong:
        msg = f"TaskQuery.states must be state names (strings), got {excerpt(wrong[0])}"
        raise InvalidPayload(msg, field="states")
    return frozenset(items)


def _limit(instance: Any, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        msg = f"TaskQuery.limit must be None or a whole number >= 0, got {excerpt(value)}"
        raise InvalidPayload(msg, field="limit")


def _name(instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        msg = f"TaskQuery.{attribute.name} must be None or a non-blank string, got {excerpt(value)}"
        raise InvalidPayload(msg, field=attribute.name)


def _states(instance: Any, attribute: attrs.Attribute[Any], value: frozenset[Any] | None) -> None:
    wrong = sorted(repr(s) for s in value or () if not isinstance(s, str))
    if wrong:
        msg = f"TaskQuery.states must be state names (strings), got {', '.join(wrong)}"
        raise InvalidPayload(msg, field="states")


def _side(value: Any) -> Side | None:
    return None if value is None else one_of(Side, value, "TaskQuery.side")


def _instance(kind: type, what: str) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and not isinstance(value, kind):
            msg = f"TaskQuery.{attribute.name} must be None or {what}, got {excerpt(value)}"
            raise InvalidPayload(msg, field=attribute.name)

    return check


def _condition(name: str, condition: Any) -> IndexValue | Between:
    field = f"where.{name}"
    if isinstance(condition, Between):
        tags = {index_tag(end) for end in (condition.low, condition.high) if end is not None}
        if not tags or None in tags:
            got = "no end" if not tags else f"{excerpt(condition)}"
            msg = (
                f"TaskQuery.where['{name}']: a Between needs at least one end, each {_ALLOWED}; "
                f"got {got}"
            )
            raise InvalidPayload(msg, field=field)
        if len(tags) > 1:
            msg = (
                f"TaskQuery.where['{name}']: both ends of {excerpt(condition)} must be of one type "
                f"(got {' and '.join(sorted(str(t) for t in tags))})"
            )
            raise InvalidPayload(msg, field=field)
        low, high = _plain(condition.low), _plain(condition.high)
        if low is not None and high is not None and low > high:
            msg = f"TaskQuery.where['{name}']: the low end {excerpt(low)} is above the high end {excerpt(high)}"
            raise InvalidPayload(msg, field=field)
        return Between(low, high)
    if index_tag(condition) is None:
        what = (
            "None matches nothing: a task without the value is not indexed"
            if condition is None
            else f"got {excerpt(condition)}"
        )
        msg = (
            f"TaskQuery.where['{name}'] must be an index value ({_ALLOWED}) or a Between of "
            f"two; {what}"
        )
        raise InvalidPayload(msg, field=field)
    plain: IndexValue = _plain(condition)
    return plain


def _where(value: Mapping[str, IndexValue | Between] | None) -> Mapping[str, IndexValue | Between]:
    if value is None:
        return FrozenMap()
    if not isinstance(value, Mapping):
        msg = f"TaskQuery.where must be a mapping of indexed field names to values, got {excerpt(value)}"
        raise InvalidPayload(msg, field="where")
    conditions: dict[str, IndexValue | Between] = {}
    for name, condition in value.items():
        if not isinstance(name, str) or not name.isidentifier() or name in QUERY_FIELDS:
            msg = (
                f"TaskQuery.where: {excerpt(name)} is not an indexed field name; names are "
                f"identifiers other than TaskQuery's own fields ({', '.join(sorted(QUERY_FIELDS))})"
            )
            raise InvalidPayload(msg, field="where")
        conditions[name] = _condition(name, condition)
    return FrozenMap(conditions)


@attrs.frozen(field_transformer=typed_fields)
class TaskQuery:
    """A filter over stored tasks; every field left None (or empty) matches everything.

    Results are ordered by creation time, then task id, start after `after` and are cut to
    `limit`; `next_page` gives the query for the page after a result.
    """

    kind: str | None = attrs.field(default=None, validator=_name)
    states: frozenset[str] | None = attrs.field(
        default=None, converter=_optional_names, validator=_states
    )
    company: CompanyId | None = attrs.field(default=None, validator=_name)
    side: Side | None = attrs.field(default=None, converter=_side)
    assignee: UserRef | None = attrs.field(default=None, validator=_instance(UserRef, "a UserRef"))
    ball_company: CompanyId | None = attrs.field(default=None, validator=_name)
    open: bool | None = attrs.field(default=None, validator=_instance(bool, "True or False"))
    due_before: datetime | None = attrs.field(default=None, validator=aware)
    limit: int | None = attrs.field(default=None, validator=_limit)
    requester_company: CompanyId | None = attrs.field(default=None, validator=_name, kw_only=True)
    recipient_company: CompanyId | None = attrs.field(default=None, validator=_name, kw_only=True)
    created_from: datetime | None = attrs.field(default=None, validator=aware, kw_only=True)
    created_until: datetime | None = attrs.field(default=None, validator=aware, kw_only=True)
    where: Mapping[str, IndexValue | Between] = attrs.field(
        default=None, converter=_where, kw_only=True
    )
    after: Cursor | None = attrs.field(
        default=None, validator=_instance(Cursor, "a Cursor"), kw_only=True
    )

    def __attrs_post_init__(self) -> None:
        if self.side is not None and self.company is None:
            msg = "TaskQuery.side needs TaskQuery.company: it says on which side that company is"
            raise InvalidPayload(msg, field="side")
        start, end = self.created_from, self.created_until
        if start is not None and end is not None and start > end:
            msg = (
                f"TaskQuery.created_from {start.isoformat()} is after TaskQuery.created_until "
                f"{end.isoformat()}; the range includes both ends, so from must not be after until"
            )
            raise InvalidPayload(msg, field="created_until")

    def matches(self, task: Task, values: Mapping[str, IndexValue] | None = None) -> bool:
        """Tell whether `task` passes every filter of this query (the limit aside).

        `values` are the task's `index_values`; a query with `where` needs them.
        """
        if self.kind is not None and task.kind != self.kind:
            return False
        if self.states is not None and task.state not in self.states:
            return False
        if self.company is not None:
            sides = task.sides_of(self.company)
            if not sides or (self.side is not None and self.side not in sides):
                return False
        if self.requester_company is not None and task.requester.company != self.requester_company:
            return False
        if self.recipient_company is not None and task.recipient != self.recipient_company:
            return False
        if self.assignee is not None and self.assignee not in task.assignees:
            return False
        if self.ball_company is not None and task.ball_company != self.ball_company:
            return False
        if self.open is not None and task.is_open != self.open:
            return False
        if self.due_before is not None and (
            task.due_at is None or not task.due_at < self.due_before
        ):
            return False
        if not _compare(self.created_from, task.created_at, self.created_until):
            return False
        if self.after is not None and not sort_key(task) > self.after.key():
            return False
        return not self.where or self._where_matches(values)

    def _where_matches(self, values: Mapping[str, IndexValue] | None) -> bool:
        if values is None:
            msg = (
                f"TaskQuery.matches: this query filters indexed fields ({', '.join(self.where)}); "
                "pass the task's index_values(kind, task) as `values`"
            )
            raise InvalidPayload(msg, field="where")
        for name, condition in self.where.items():
            value = values.get(name)
            if isinstance(condition, Between):
                if not condition.contains(value):
                    return False
            elif value is None or index_tag(value) != index_tag(condition) or value != condition:
                return False
        return True

    def next_page(self, results: Sequence[Task]) -> TaskQuery | None:
        """Return the query for the page after `results` (this query's answer), or None if it was the last.

        A page is this query with a `limit`; one that came back full may have a successor.
        """
        if self.limit is None:
            return None
        if self.limit == 0:
            msg = "TaskQuery.next_page needs a limit of 1 or more (the page size), got 0"
            raise InvalidPayload(msg, field="limit")
        if len(results) > self.limit:
            msg = (
                f"TaskQuery.next_page got {len(results)} results for a page of {self.limit}; "
                "pass the answer to this very query"
            )
            raise InvalidPayload(msg, field="limit")
        if len(results) < self.limit:
            return None
        return attrs.evolve(self, after=Cursor.of(results[-1]))


QUERY_FIELDS: frozenset[str] = frozenset(a.name for a in attrs.fields(TaskQuery))
"""`TaskQuery`'s own field names: no kind may name an indexed field so."""


def _tasks(value: Iterable[Task]) -> tuple[Task, ...]:
    return tuple(value)


@attrs.frozen
class Page:
    """One page of a query's answer, and the query for the page after it (None after the last)."""

    tasks: tuple[Task, ...] = attrs.field(converter=_tasks)
    next: TaskQuery | None = None

    @classmethod
    def of(cls, query: TaskQuery, results: Iterable[Task]) -> Page:
        """Return the page `results` (the answer to `query`) make, with the query for the next."""
        tasks = tuple(results)
        return cls(tasks, query.next_page(tasks))


def sort_key(task: Task) -> tuple[datetime, str]:
    """Return the key every repository orders query results by: creation time, then id."""
    return (task.created_at, task.id)


def check_indexed(query: TaskQuery, registry: KindLookup | None, answerer: str) -> None:
    """Refuse (`InvalidPayload`) a query on indexed fields that `registry`'s kinds do not declare.

    `answerer` names the repository in the message; without a registry every indexed field is
    refused, since then no kind's declarations are known.
    """
    if not query.where:
        return
    names = ", ".join(f"'{name}'" for name in query.where)
    if registry is None:
        msg = (
            f"{answerer} cannot filter by indexed field {names}: it was built without a "
            "registry, so it knows no kind's indexed fields; build it with registry="
        )
        raise InvalidPayload(msg, field="where")
    if query.kind is not None and query.kind in registry:
        declared = registry[query.kind].indexed
        missing = [name for name in query.where if name not in declared]
        if missing:
            msg = (
                f"task kind '{query.kind}' has no indexed field "
                f"{', '.join(repr(n) for n in missing)}; its indexed fields: "
                f"{', '.join(repr(n) for n in declared) or '(none)'}"
            )
            raise InvalidPayload(msg, field=f"where.{missing[0]}")
        return
    known = {name for kind in registry for name in kind.indexed}
    missing = [name for name in query.where if name not in known]
    if missing:
        msg = (
            f"no kind registered with {answerer} has an indexed field "
            f"{', '.join(repr(n) for n in missing)}; indexed fields: "
            f"{', '.join(repr(n) for n in sorted(known)) or '(none)'}"
        )
        raise InvalidPayload(msg, field=f"where.{missing[0]}")


def check_states(
    what: str, states: str | Iterable[str] | None, workflow: Workflow
) -> frozenset[str] | None:
    """Return the states a listing of `what` is filtered by (None: all), or refuse unknown ones.

    `states` is one state name or several; the error names the unknown ones and the
    workflow's states.
    """
    if states is None:
        return None
    wanted = frozenset({states} if isinstance(states, str) else states)
    unknown = sorted(str(s) for s in wanted - set(workflow.state_names))
    if unknown:
        msg = (
            f"{what} cannot be filtered by state {unknown}; "
            f"states of '{workflow.name}': {workflow.state_names}"
        )
        raise InvalidPayload(msg, field="states")
    return wanted


def check_time_range(
    names: tuple[str, str], start: datetime | None, end: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """Refuse a range bound that is not an aware datetime, or a start after the end; return both.

    `names` are the caller's parameter names, so the error says which one was wrong.
    """
    for name, value in zip(names, (start, end), strict=True):
        if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
            msg = f"{name} must be a timezone-aware datetime, got {excerpt(value)}"
            raise InvalidPayload(msg, field=name)
    if start is not None and end is not None and start > end:
        msg = f"{names[0]} {start.isoformat()} is after {names[1]} {end.isoformat()}"
        raise InvalidPayload(msg, field=names[1])
    return start, end
