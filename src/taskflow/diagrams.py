"""Diagrams, reference tables and doc pages made from a workflow's definition alone (pure, no I/O).

`to_mermaid` and `to_dot` draw one edge per (source state, target) of each transition that moves
the task. Actions that keep the task where it is, and actions declared for every state (comment,
assign, claim, edit), would put an edge on every state; they are listed once instead, in a note
on the initial state (Mermaid) or in the graph's label (DOT).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator

from taskflow.domain.registry import TaskKind
from taskflow.domain.values import Side
from taskflow.domain.workflow import ANY_STATE, State, Transition, Workflow
from taskflow.errors import InvalidWorkflow

__all__ = [
    "GENERATED_MARKER",
    "describe",
    "handwritten_part",
    "index_page",
    "to_dot",
    "to_mermaid",
    "workflow_page",
    "workflows_of",
]

GENERATED_MARKER = "<!-- generated below: scripts/gen_docs.py; do not edit -->"

_INDENT = "    "


# ---------------------------------------------------------------- what the diagrams show


def _who(t: Transition) -> str:
    sides = [s.value for s in Side if s in t.by]
    who = "either side" if len(sides) > 1 else sides[0]
    if t.roles:
        who += " with role " + " or ".join(sorted(t.roles))
    if t.system_only:
        who += ", system only"
    return who


def _action_label(t: Transition) -> str:
    return f"{t.name} ({_who(t)})"


def _state_order(workflow: Workflow) -> dict[str, int]:
    return {name: i for i, name in enumerate(workflow.state_names)}


def _sources(workflow: Workflow, t: Transition) -> list[str]:
    # Sources are a frozenset: sort by declaration so the text never depends on hash order.
    order = _state_order(workflow)
    return sorted(t.sources, key=order.__getitem__)


def _edges(workflow: Workflow) -> Iterator[tuple[str, str, Transition]]:
    for t in workflow.transitions:
        if t.everywhere or t.target is None:
            continue
        for source in _sources(workflow, t):
            yield source, t.target, t


def _off_edge_lines(workflow: Workflow) -> list[str]:
    """Return one line per group of actions that are not drawn as edges."""
    groups: dict[tuple[str, str, str | None], list[str]] = {}
    for t in workflow.transitions:
        if not t.everywhere and t.target is not None:
            continue  # drawn as an edge
        if t.sources == ANY_STATE:
            where = "In every state"
        elif t.everywhere:
            where = "In open states"
        else:
            titles = (workflow.state(s).title for s in _sources(workflow, t))
            where = "In " + ", ".join(titles)
        groups.setdefault((where, _who(t), t.target), []).append(t.name)
    lines = []
    for (where, who, target), names in groups.items():
        line = f"{where} ({who}): {', '.join(names)}"
        if target is not None:
            line += f" -> {workflow.state(target).title}"
        lines.append(line)
    return lines


_PLAIN_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _is_plain_id(name: str) -> bool:
    return _PLAIN_ID.fullmatch(name) is not None


def _free_id(base: str, taken: set[str]) -> str:
    candidate = base
    while candidate in taken:
        candidate += "_"
    return candidate


def _node_ids(workflow: Workflow, safe: Callable[[str], bool]) -> dict[str, str]:
    """Map each state name to a node id: the name itself where `safe`, else `state_<n>`."""
    ids = {s.name: s.name for s in workflow.states if safe(s.name)}
    taken = set(ids)
    for n, state in enumerate(workflow.states):
        if state.name not in ids:
            ids[state.name] = _free_id(f"state_{n}", taken)
            taken.add(ids[state.name])
    return ids


def _visible(text: str) -> str:
    """Return text on one line, without control characters that no diagram can draw."""
    kept = "".join(
        ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cs") or ch.isspace()
    )
    return " ".join(kept.split())


def _waiting(state: State) -> str:
    return "" if state.waiting_on is None else f"waiting on {state.waiting_on.value}"


# ---------------------------------------------------------------- Mermaid


# Characters a Mermaid label may hold as they are; every other one becomes an entity (#123;),
# which Mermaid swaps out before parsing, so no label can end a statement or open a comment.
_MERMAID_PLAIN = frozenset(" .,()'!?/@+*=_-")
# Words the Mermaid state-diagram lexer acts on wherever they appear on a line.
_MERMAID_TRIGGERS = re.compile(r"direction|end note|style|classDef", re.IGNORECASE)
_MERMAID_RESERVED = frozenset(
    {
        "accdescr",
        "acctitle",
        "class",
        "click",
        "direction",
        "end",
        "note",
        "scale",
        "state",
        "statediagram",
    }
)


def _entity(ch: str) -> str:
    return f"#{ord(ch)};"


def _mermaid_text(text: str, plain_too: str = "") -> str:
    flat = _visible(text)
    keep = _MERMAID_PLAIN | frozenset(plain_too)
    plain = "".join(ch if ch.isalnum() or ch in keep else _entity(ch) for ch in flat)
    return _MERMAID_TRIGGERS.sub(lambda m: _entity(m.group()[0]) + m.group()[1:], plain)


def _mermaid_id_is_safe(name: str) -> bool:
    low = name.lower()
    return (
        _is_plain_id(name)
        and low not in _MERMAID_RESERVED
        and not low.startswith("default")
        and not _MERMAID_TRIGGERS.search(name)
    )


def _mermaid_state_label(state: State) -> str:
    waiting = _waiting(state)
    return f"{state.title} ({waiting})" if waiting else state.title


def to_mermaid(workflow: Workflow) -> str:
    """Return the workflow as Mermaid `stateDiagram-v2` text: same workflow, same bytes."""
    ids = _node_ids(workflow, _mermaid_id_is_safe)
    lines = ["stateDiagram-v2"]
    # An empty accessible title would make Mermaid read the next line as the title.
    title = _mermaid_text(workflow.name)
    if title:
        lines.append(f"{_INDENT}accTitle: {title}")
    about = _mermaid_text(workflow.description)
    if about:
        lines.append(f"{_INDENT}accDescr: {about}")
    for s in workflow.states:
        label = _mermaid_text(_mermaid_state_label(s)) or ids[s.name]
        lines.append(f'{_INDENT}state "{label}" as {ids[s.name]}')
    lines.append(f"{_INDENT}[*] --> {ids[workflow.initial]}")
    lines += [
        f"{_INDENT}{ids[source]} --> {ids[target]} : {_mermaid_text(_action_label(t))}"
        for source, target, t in _edges(workflow)
    ]
    lines += [f"{_INDENT}{ids[s.name]} --> [*]" for s in workflow.states if s.final]
    notes = _off_edge_lines(workflow)
    if notes:
        lines.append(f"{_INDENT}note left of {ids[workflow.initial]}")
        # A multi-line note ends only at "end note", so its text may keep its colons.
        lines += [f"{_INDENT * 2}{_mermaid_text(note, plain_too=':')}" for note in notes]
        lines.append(f"{_INDENT}end note")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- Graphviz DOT


def _dot_id(name: str) -> str:
    """Quote an id so that distinct names stay distinct and nothing ends the string early."""
    out = []
    for ch in name:
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(f"\\x{ord(ch):04x}")
    return '"' + "".join(out) + '"'


def _dot_text(text: str) -> str:
    """Escape text for inside a quoted DOT label: backslashes, quotes and `&` are literal."""
    out = []
    for ch in _visible(text):
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch == "&":
            out.append("&amp;")
        else:
            out.append(ch)
    return "".join(out)


def to_dot(workflow: Workflow) -> str:
    """Return the workflow as Graphviz DOT `digraph` text: same workflow, same bytes."""
    # Graphviz treats some names specially (a leading '%' marks an anonymous object), so only
    # plain identifiers are used as they are; any other state gets a made-up id.
    nodes = _node_ids(workflow, _is_plain_id)
    taken = set(nodes.values())
    ids = {name: _dot_id(node) for name, node in nodes.items()}
    start = _dot_id(_free_id("__start__", taken))
    end = _dot_id(_free_id("__end__", taken))
    lines = [f"digraph {_dot_id(workflow.name)} {{"]
    notes = _off_edge_lines(workflow)
    if notes:
        label = "".join(_dot_text(note) + "\\l" for note in notes)
        lines += [f'{_INDENT}label="{label}";', f"{_INDENT}labelloc=t;", f"{_INDENT}labeljust=l;"]
    lines += [
        f'{_INDENT}node [shape=box, style=rounded, fontname="Helvetica"];',
        f'{_INDENT}edge [fontname="Helvetica", fontsize=10];',
        f'{_INDENT}{start} [shape=point, width=0.2, label=""];',
    ]
    for s in workflow.states:
        waiting = _waiting(s)
        title = _dot_text(s.title) or nodes[s.name]
        label = title + (f"\\n{_dot_text(waiting)}" if waiting else "")
        extra = ", peripheries=2" if s.final else ""
        lines.append(f'{_INDENT}{ids[s.name]} [label="{label}"{extra}];')
    if workflow.final_states:
        lines.append(f'{_INDENT}{end} [shape=doublecircle, width=0.15, label="", style=filled];')
    lines.append(f"{_INDENT}{start} -> {ids[workflow.initial]};")
    lines += [
        f'{_INDENT}{ids[source]} -> {ids[target]} [label="{_dot_text(_action_label(t))}"];'
        for source, target, t in _edges(workflow)
    ]
    lines += [f"{_INDENT}{ids[s.name]} -> {end};" for s in workflow.states if s.final]
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- Markdown tables

# Backslash-escaping these keeps a cell from turning into markup, a link or a new column.
_MD_SPECIAL = frozenset("\\`*_[]<>|~&")


def _md(text: str) -> str:
    flat = " ".join(text.split())
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in flat)


_MD_BLOCK_START = re.compile(r"(\d*)([#>+=.)-])")


def _md_paragraph(text: str) -> str:
    """Escape text for a paragraph of its own: nothing at its start may open a heading or list."""
    escaped = _md(text)
    # "1. x" is a list, "# x" a heading: escape the punctuation that makes them so.
    found = _MD_BLOCK_START.match(escaped)
    if found is None:
        return escaped
    return f"{found[1]}\\{found[2]}{escaped[found.end() :]}"


def _code(name: str) -> str:
    if "`" in name or not name.strip():
        return _md(name) or "(blank)"
    return "`" + " ".join(name.split()).replace("|", "\\|") + "`"


def _from(workflow: Workflow, t: Transition) -> str:
    if t.sources == ANY_STATE:
        return "any state"
    if t.everywhere:
        return "any open state"
    return ", ".join(_code(s) for s in _sources(workflow, t))


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _action_row(workflow: Workflow, t: Transition) -> str:
    return _row(
        (
            _code(t.name),
            _from(workflow, t),
            "(stays)" if t.target is None else _code(t.target),
            _md(_who(t)),
            "none" if t.payload is None else _code(t.payload.__name__),
            ", ".join(_code(e) for e in t.event_names),
            _md(t.description),
        )
    )


def describe(workflow: Workflow) -> str:
    """Return Markdown tables of the workflow's actions and of its states."""
    lines = [
        "### Actions",
        "",
        _row(("action", "from", "to", "who", "payload", "events", "description")),
        _row(("---",) * 7),
    ]
    lines += [_action_row(workflow, t) for t in workflow.transitions]
    lines += [
        "",
        "### States",
        "",
        _row(("state", "label", "final", "waiting on")),
        _row(("---",) * 4),
    ]
    for s in workflow.states:
        name = _code(s.name) + (" (initial)" if s.name == workflow.initial else "")
        waiting = "-" if s.waiting_on is None else s.waiting_on.value
        lines.append(_row((name, _md(s.title), "yes" if s.final else "no", waiting)))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- pages


def workflows_of(kinds: Iterable[TaskKind]) -> tuple[tuple[Workflow, tuple[TaskKind, ...]], ...]:
    """Group kinds by the workflow they use, ordered by workflow name; one page per group."""
    groups: dict[int, tuple[Workflow, list[TaskKind]]] = {}
    for kind in kinds:
        groups.setdefault(id(kind.workflow), (kind.workflow, []))[1].append(kind)
    by_name: dict[str, tuple[Workflow, tuple[TaskKind, ...]]] = {}
    for workflow, users in groups.values():
        other = by_name.get(workflow.name)
        if other is not None:
            msg = (
                f"kinds {[k.name for k in other[1]]} and {[k.name for k in users]} use two "
                f"different workflows both named '{workflow.name}'; give one of them its own name"
            )
            raise InvalidWorkflow(msg)
        by_name[workflow.name] = (workflow, tuple(sorted(users, key=lambda k: k.name)))
    return tuple(by_name[name] for name in sorted(by_name))


def handwritten_part(page: str) -> str:
    """Return the part of a page above the generated-part marker line (all of it if none)."""
    kept: list[str] = []
    for line in page.splitlines(keepends=True):
        if line.strip() == GENERATED_MARKER:
            break
        kept.append(line)
    text = "".join(kept)
    return text if not text or text.endswith("\n") else text + "\n"


def _fenced(language: str, body: str) -> list[str]:
    return [f"```{language}", body.rstrip("\n"), "```"]


def workflow_page(
    workflow: Workflow, kinds: Iterable[TaskKind], handwritten: str, notes: Iterable[str] = ()
) -> str:
    """Return a workflow's doc page: `handwritten` (up to any marker line) as-is, then generated.

    `notes` are Markdown paragraphs of the generator's own (for example how the shown build was
    made), placed as they are after the list of kinds.
    """
    users = tuple(kinds)
    strangers = [k.name for k in users if k.workflow is not workflow]
    if strangers:
        msg = f"kinds {strangers} do not use workflow '{workflow.name}'; list only kinds that do"
        raise InvalidWorkflow(msg)
    lines = [
        GENERATED_MARKER,
        "",
        f"## The {_code(workflow.name)} workflow",
        "",
    ]
    if workflow.description:
        lines += [_md_paragraph(workflow.description), ""]
    lines += ["Task kinds that use it:", ""]
    lines += [
        f"- {_code(k.name)}" + (f": {_md(k.description)}" if k.description else "") for k in users
    ]
    for note in notes:
        lines += ["", " ".join(note.split())]
    system = [t.name for t in workflow.transitions if t.system_only]
    if system:
        lines += [
            "",
            "System-only actions, marked *system only* in the diagrams and tables, are taken only by "
            "system actors (`Actor.system`: the SLA scheduler, the questionnaire sync, the "
            "outbox), never by a user actor: " + ", ".join(_code(name) for name in system) + ".",
        ]
    lines += [
        "",
        "Actions that keep the task in its state, and actions offered in every state (or every "
        "open state), are listed once in the note (Mermaid) or the graph label (DOT) instead of "
        "being drawn on every state.",
        "",
        "### Diagram (Mermaid)",
        "",
        *_fenced("mermaid", to_mermaid(workflow)),
        "",
        "### Diagram (Graphviz DOT)",
        "",
        *_fenced("dot", to_dot(workflow)),
        "",
        describe(workflow).rstrip("\n"),
    ]
    return handwritten_part(handwritten) + "\n".join(lines) + "\n"


def index_page(kinds: Iterable[TaskKind]) -> str:
    """Return the generated index of workflows: each one's page, kinds, states and actions."""
    lines = [
        "<!-- generated: scripts/gen_docs.py; do not edit -->",
        "",
        "# Workflows",
        "",
        "One page per workflow, with its diagram and its tables of actions and states. "
        "Regenerate with `python scripts/gen_docs.py`; the test suite fails while a page is stale.",
        "",
        _row(("workflow", "kinds", "states", "actions", "description")),
        _row(("---",) * 5),
    ]
    for workflow, users in workflows_of(kinds):
        lines.append(
            _row(
                (
                    f"[{_code(workflow.name)}]({workflow.name}.md)",
                    ", ".join(_code(k.name) for k in users),
                    str(len(workflow.states)),
                    str(len(workflow.transitions)),
                    _md(workflow.description),
                )
            )
        )
    return "\n".join(lines) + "\n"
