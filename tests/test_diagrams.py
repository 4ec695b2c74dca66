import os
import re
import runpy
import subprocess
import sys
import unicodedata
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskflow import (
    ANY_STATE,
    BOTH_SIDES,
    OPEN_STATES,
    InvalidWorkflow,
    Side,
    State,
    TaskKind,
    Transition,
    Workflow,
    common_actions,
)
from taskflow.diagrams import (
    GENERATED_MARKER,
    describe,
    handwritten_part,
    index_page,
    to_dot,
    to_mermaid,
    workflow_page,
    workflows_of,
)
from taskflow.kinds import default_registry
from taskflow.kinds.document import (
    DOCUMENT_REQUEST,
    DOCUMENT_WORKFLOW,
    PRODUCT_DOCUMENT_REQUEST,
    DocumentRequest,
)

ROOT = Path(__file__).resolve().parent.parent
GEN_DOCS = runpy.run_path(str(ROOT / "scripts" / "gen_docs.py"))
R, Q = Side.REQUESTER, Side.RECIPIENT


# ---------------------------------------------------------------- reading the output back


def _visible(text):
    kept = "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cs") or c.isspace())
    return " ".join(kept.split())


def _mermaid_decode(text):
    return re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), text)


MERMAID_STATE = re.compile(r'^    state "([^"\n]*)" as ([A-Za-z_][A-Za-z0-9_]*)$')
MERMAID_EDGE = re.compile(r"^    (\[\*\]|\w+) --> (\[\*\]|\w+)(?: : (.+))?$")


def _mermaid(text):
    """Return (states as (id, label), edges as (source, target, label), note lines)."""
    lines = text.splitlines()
    assert lines[0] == "stateDiagram-v2"
    states, edges, notes, in_note = [], [], [], False
    for line in lines[1:]:
        if in_note:
            if line == "    end note":
                in_note = False
            else:
                notes.append(_mermaid_decode(line.strip()))
        elif line.startswith("    note left of "):
            in_note = True
        elif m := MERMAID_STATE.match(line):
            states.append((m.group(2), _mermaid_decode(m.group(1))))
        elif m := MERMAID_EDGE.match(line):
            label = None if m.group(3) is None else _mermaid_decode(m.group(3))
            edges.append((m.group(1), m.group(2), label))
        else:
            assert re.match(r"^    acc(Title|Descr): [^\n]+$", line), line
    assert not in_note
    return states, edges, notes


DOT_STRING = r'"((?:[^"\\\n]|\\.)*)"'
DOT_NODE = re.compile(rf"^    {DOT_STRING} \[(.*)\];$")
DOT_EDGE = re.compile(rf"^    {DOT_STRING} -> {DOT_STRING}(?: \[label={DOT_STRING}\])?;$")
DOT_LABEL = re.compile(rf"label={DOT_STRING}")


def _dot_decode(text):
    # Label escapes: \n, \l and \r end a line; any other backslash pair stands for its second char.
    unescaped = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) in "nlr" else m.group(1), text)
    return unescaped.replace("&amp;", "&")


def _dot(text):
    """Check the DOT text's shape; return (state nodes as (id, label), edges, graph label)."""
    lines = text.splitlines()
    assert re.match(rf"^digraph {DOT_STRING} \{{$", lines[0])
    assert lines[-1] == "}"
    nodes, edges, graph_label = [], [], ""
    for line in lines[1:-1]:
        if m := DOT_EDGE.match(line):
            label = None if m.group(3) is None else _dot_decode(m.group(3))
            edges.append((m.group(1), m.group(2), label))
        elif m := DOT_NODE.match(line):
            attrs = m.group(2)
            if "shape=point" not in attrs and "shape=doublecircle" not in attrs:
                label = DOT_LABEL.search(attrs)
                assert label is not None
                nodes.append((m.group(1), _dot_decode(label.group(1))))
        elif line.startswith("    label="):
            graph_label = _dot_decode(DOT_LABEL.match(line.strip()).group(1))
        else:
            assert re.match(r"^    (labelloc=t|labeljust=l|(node|edge) \[.*\]);$", line), line
    return nodes, edges, graph_label


def _braces_balance(text):
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{}":
            depth += 1 if ch == "{" else -1
            if depth < 0:
                return False
    return depth == 0 and not in_string


def _expected_edges(workflow):
    """Return (source, target, action) for each drawn edge: one per source of a moving action."""
    return sorted(
        (source, t.target, t.name)
        for t in workflow.transitions
        if not t.everywhere and t.target is not None
        for source in t.sources
    )


def _off_edge(workflow):
    return [t for t in workflow.transitions if t.everywhere or t.target is None]


# ---------------------------------------------------------------- random workflows

# Workflows take only identifiers as state and action names; labels are free text.
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,11}", fullmatch=True).filter(lambda s: s != "open")
# Identifiers that mean something to Mermaid or Graphviz.
reserved = st.sampled_from(
    ["default", "Defaultish", "note", "NOTE", "state", "stateDiagram", "end", "direction", "node"]
)
free_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12
).filter(_visible)
nasty = st.sampled_from(
    ['say "hi"', "a;b", "50%", "%%", "#1", "x: y", "end note", "direction TB", "[[fork]]", "\\n"]
)
sides = st.sampled_from([R, Q, BOTH_SIDES])


@st.composite
def workflows(draw):
    state_names = draw(st.lists(names | reserved, min_size=2, max_size=5, unique=True))
    labels = st.sampled_from([""]) | free_text | nasty
    *middle, last = state_names
    states = [State(n, waiting_on=draw(st.sampled_from(Side)), label=draw(labels)) for n in middle]
    states.append(State(last, final=True, label=draw(labels)))
    action_names = draw(
        st.lists(names | reserved, min_size=len(state_names) + 3, max_size=len(state_names) + 3)
        .map(lambda xs: list(dict.fromkeys(xs)))
        .filter(lambda xs: len(xs) >= len(state_names) + 2)
    )
    # A chain through every state keeps the workflow valid; the rest is drawn at random.
    chain = [
        Transition(action_names[i], state_names[i], state_names[i + 1], draw(sides))
        for i in range(len(state_names) - 1)
    ]
    extra = [
        Transition(
            name,
            draw(
                st.sampled_from([ANY_STATE, OPEN_STATES])
                | st.sets(st.sampled_from(state_names), min_size=1).map(frozenset)
            ),
            draw(st.none() | st.sampled_from(state_names)),
            draw(sides),
            roles=draw(st.frozensets(names, max_size=2)),
        )
        for name in action_names[len(chain) :]
    ]
    return Workflow(
        name=draw(names),
        states=states,
        transitions=[*chain, *extra],
        initial=state_names[0],
        description=draw(st.sampled_from([""]) | names | nasty),
    )


# ---------------------------------------------------------------- properties


@given(workflows())
def test_mermaid_draws_one_edge_per_source_of_each_moving_action(workflow):
    states, edges, notes = _mermaid(to_mermaid(workflow))
    ids = {state.name: node for state, (node, _) in zip(workflow.states, states, strict=True)}
    drawn = sorted(
        (source, target, label) for source, target, label in edges if "[*]" not in (source, target)
    )
    expected = _expected_edges(workflow)
    assert [(s, t) for s, t, _ in drawn] == sorted((ids[s], ids[t]) for s, t, _ in expected)
    for source, target, action in expected:
        assert any(
            (s, t) == (ids[source], ids[target]) and label.startswith(_visible(action) + " (")
            for s, t, label in drawn
        )
    assert ("[*]", ids[workflow.initial], None) in edges
    finals = [(ids[s.name], "[*]", None) for s in workflow.states if s.final]
    assert [e for e in edges if e[1] == "[*]"] == finals
    listed = " ".join(notes)
    assert all(_visible(t.name) in listed for t in _off_edge(workflow))
    assert bool(notes) == bool(_off_edge(workflow))


@given(workflows())
def test_dot_draws_one_edge_per_source_of_each_moving_action(workflow):
    text = to_dot(workflow)
    assert _braces_balance(text)
    nodes, edges, graph_label = _dot(text)
    ids = {state.name: node for state, (node, _) in zip(workflow.states, nodes, strict=True)}
    assert len(set(ids.values())) == len(workflow.states)
    labelled = sorted((s, t, label) for s, t, label in edges if label is not None)
    expected = _expected_edges(workflow)
    assert [(s, t) for s, t, _ in labelled] == sorted((ids[s], ids[t]) for s, t, _ in expected)
    for source, target, action in expected:
        assert any(
            (s, t) == (ids[source], ids[target]) and label.startswith(_visible(action) + " (")
            for s, t, label in labelled
        )
    unlabelled = [(s, t) for s, t, label in edges if label is None]
    assert len(unlabelled) == 1 + len(workflow.final_states)
    assert all(_visible(t.name) in graph_label for t in _off_edge(workflow))


@given(workflows())
def test_every_state_appears_with_its_label_in_both_formats(workflow):
    states, _, _ = _mermaid(to_mermaid(workflow))
    nodes, _, _ = _dot(to_dot(workflow))
    for state, (node, label), (dot_node, dot_label) in zip(
        workflow.states, states, nodes, strict=True
    ):
        waiting = "" if state.waiting_on is None else f"waiting on {state.waiting_on.value}"
        assert label == (_visible(f"{state.title} ({waiting})" if waiting else state.title) or node)
        title = _visible(state.title) or dot_node
        assert dot_label == (f"{title}\n{waiting}" if waiting else title)


@given(workflows())
def test_output_is_the_same_for_the_same_workflow(workflow):
    rebuilt = Workflow(
        name=workflow.name,
        states=list(workflow.states),
        transitions=list(workflow.transitions),
        initial=workflow.initial,
        description=workflow.description,
    )
    assert to_mermaid(rebuilt) == to_mermaid(workflow)
    assert to_dot(rebuilt) == to_dot(workflow)
    assert describe(rebuilt) == describe(workflow)


@given(workflows())
def test_mermaid_labels_hold_no_character_that_ends_or_comments_a_statement(workflow):
    text = to_mermaid(workflow)
    for line in text.splitlines()[1:]:
        body = re.sub(r"#\d+;", "~", line)
        if line.startswith("    state "):
            body = body.split('"')[1]
        elif " --> " in line and " : " in line:
            body = body.split(" : ", 1)[1]
        elif line.startswith("    acc"):
            body = body.split(": ", 1)[1]
        else:
            continue
        assert not set(body) & set('"#;:%<>[]{}`\\'), line
        assert not re.search(r"direction|end note|style|classdef", body, re.IGNORECASE), line


def test_output_does_not_depend_on_the_hash_seed():
    # Sources are frozensets; their iteration order changes with PYTHONHASHSEED.
    code = (
        "from taskflow.diagrams import to_mermaid, to_dot, describe;"
        "from taskflow.kinds.document import DOCUMENT_WORKFLOW as W;"
        "print(to_mermaid(W) + to_dot(W) + describe(W))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in range(4)
    }
    assert len(outputs) == 1


# ---------------------------------------------------------------- examples

QUOTED = Workflow(
    name='say "hi"',
    description='Tests "quotes"; 50% #1 | a\\b',
    initial="draft",
    states=(
        State("draft", waiting_on=R, label='Draft "v1"; 50% #1: a|b\\c'),
        State("done", final=True, label="Done & <dusted>"),
    ),
    transitions=(
        Transition("finish", "draft", "done", R, roles={"lead"}),
        Transition("poke", "draft", None, Q),
        *common_actions(),
    ),
)


def test_labels_with_quotes_and_separators_are_escaped_in_mermaid():
    text = to_mermaid(QUOTED)
    assert (
        'state "Draft #34;v1#34;#59; 50#37; #35;1#58; a#124;b#92;c (waiting on requester)" as draft'
        in text
    )
    assert 'state "Done #38; #60;dusted#62;" as done' in text
    assert "    accDescr: Tests #34;quotes#34;#59; 50#37; #35;1 #124; a#92;b\n" in text
    states, _, _ = _mermaid(text)
    assert states[0] == ("draft", 'Draft "v1"; 50% #1: a|b\\c (waiting on requester)')


def test_labels_with_quotes_and_backslashes_are_escaped_in_dot():
    text = to_dot(QUOTED)
    assert text.startswith('digraph "say \\"hi\\"" {\n')
    assert '    "draft" [label="Draft \\"v1\\"; 50% #1: a|b\\\\c\\nwaiting on requester"];' in text
    assert '    "done" [label="Done &amp; <dusted>", peripheries=2];' in text
    assert _braces_balance(text)
    nodes, _, _ = _dot(text)
    assert nodes[0] == ("draft", 'Draft "v1"; 50% #1: a|b\\c\nwaiting on requester')


def test_roles_and_sides_are_named_on_edges():
    assert "    draft --> done : finish (requester with role lead)\n" in to_mermaid(QUOTED)
    assert '"draft" -> "done" [label="finish (requester with role lead)"];' in to_dot(QUOTED)


def test_system_only_actions_say_so_on_edges():
    wf = attrs.evolve(
        QUOTED,
        transitions=(
            Transition("finish", "draft", "done", R, system_only=True),
            *QUOTED.transitions[1:],
        ),
    )
    assert "    draft --> done : finish (requester, system only)\n" in to_mermaid(wf)


def test_staying_and_everywhere_actions_are_listed_once_not_drawn():
    mermaid = to_mermaid(QUOTED)
    assert "poke" not in "".join(line for line in mermaid.splitlines() if "-->" in line)
    _, _, notes = _mermaid(mermaid)
    assert notes == [
        'In Draft "v1"; 50% #1: a|b\\c (recipient): poke',
        "In every state (either side): comment",
        "In open states (either side): assign, claim, edit",
    ]
    _, edges, graph_label = _dot(to_dot(QUOTED))
    assert [label for _, _, label in edges if label] == ["finish (requester with role lead)"]
    assert graph_label.splitlines() == notes


def test_document_workflow_edges_are_drawn_once_per_source():
    text = to_mermaid(DOCUMENT_WORKFLOW)
    assert "    requested --> uploaded : upload (recipient)\n" in text
    assert "    rejected --> uploaded : upload (recipient)\n" in text
    assert "    declined --> requested : request_again (requester)\n" in text
    assert text.count(" --> [*]") == 2
    assert "comment" not in "".join(line for line in text.splitlines() if "-->" in line)


@pytest.mark.parametrize("name", ["default", "Defaultish", "NOTE", "state", "stateDiagram"])
def test_state_names_mermaid_cannot_take_get_a_made_up_id(name):
    workflow = Workflow(
        name="w",
        initial=name,
        states=(State(name, waiting_on=R), State("state_0", final=True)),
        transitions=(Transition("go", name, "state_0", R),),
    )
    states, edges, _ = _mermaid(to_mermaid(workflow))
    assert [node for node, _ in states] == ["state_0_", "state_0"]
    assert ("state_0_", "state_0", "go (requester)") in edges


def test_describe_lists_every_action_and_state_in_table_rows():
    text = describe(DOCUMENT_WORKFLOW)
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    widths = {len(re.split(r"(?<!\\)\|", row)) for row in rows[: 2 + 10]}
    assert widths == {9}
    assert len(rows) == 2 + len(DOCUMENT_WORKFLOW.transitions) + 2 + len(DOCUMENT_WORKFLOW.states)
    assert (
        "| `upload` | `requested`, `rejected` | `uploaded` | recipient | `UploadDocument` "
        "| `document_uploaded` | Upload the document as a PDF |"
    ) in rows
    assert "| `comment` | any state | (stays) | either side | `AddComment` |" in text
    assert "| `claim` | any open state | (stays) | either side | none | `claimed` |" in text
    assert "| `requested` (initial) | Requested | no | recipient |" in rows
    assert "| `accepted` | Accepted | yes | - |" in rows


def test_describe_escapes_pipes_so_cells_stay_cells():
    text = describe(QUOTED)
    assert '| `draft` (initial) | Draft "v1"; 50% #1: a\\|b\\\\c | no | requester |' in text


# ---------------------------------------------------------------- pages


def test_kinds_that_share_a_workflow_get_one_page():
    groups = workflows_of(default_registry())
    document = [users for workflow, users in groups if workflow is DOCUMENT_WORKFLOW]
    assert document == [(DOCUMENT_REQUEST, PRODUCT_DOCUMENT_REQUEST)]
    page = workflow_page(DOCUMENT_WORKFLOW, document[0], "# Intro\n")
    assert "- `document_request`: " in page
    assert "- `product_document_request`: " in page


def test_two_workflows_with_one_name_are_refused():
    twin = DOCUMENT_WORKFLOW.with_transitions()
    other = TaskKind("twin", DocumentRequest, twin)
    with pytest.raises(InvalidWorkflow, match="both named 'document_request'"):
        workflows_of([DOCUMENT_REQUEST, other])


def test_page_for_a_kind_of_another_workflow_is_refused():
    with pytest.raises(InvalidWorkflow, match=r"\['document_request'\] do not use workflow"):
        workflow_page(QUOTED, [DOCUMENT_REQUEST], "")


def test_page_keeps_the_handwritten_part_as_it_is():
    hand = "# Title\n\nSome *words*.\n\n\n"
    page = workflow_page(DOCUMENT_WORKFLOW, [DOCUMENT_REQUEST], hand)
    assert page.startswith(hand + GENERATED_MARKER + "\n")
    assert handwritten_part(page) == hand
    assert workflow_page(DOCUMENT_WORKFLOW, [DOCUMENT_REQUEST], page) == page
    assert "```mermaid\n" + to_mermaid(DOCUMENT_WORKFLOW) + "```\n" in page
    assert "```dot\n" + to_dot(DOCUMENT_WORKFLOW) + "```\n" in page
    assert describe(DOCUMENT_WORKFLOW) in page


def test_page_text_from_the_definition_cannot_open_a_heading_or_list():
    workflow = Workflow(
        name="w",
        description="# 1. not a heading",
        initial="a",
        states=(State("a", waiting_on=R), State("b", final=True)),
        transitions=(Transition("go", "a", "b", R),),
    )
    page = workflow_page(workflow, [], "")
    assert "\n\\# 1. not a heading\n" in page
    assert "\n# " not in page


def test_handwritten_part_of_a_page_without_marker_is_the_whole_page():
    assert handwritten_part("# Notes\nno newline at end") == "# Notes\nno newline at end\n"
    assert handwritten_part("") == ""


def test_index_lists_each_workflow_once_with_its_kinds():
    text = index_page(default_registry())
    row = [line for line in text.splitlines() if "(document_request.md)" in line]
    assert row == [
        "| [`document_request`](document_request.md) | `document_request`, "
        "`product_document_request` | 6 | 10 | The requester asks for a document; the supplier "
        "uploads a PDF or declines. |"
    ]


# ---------------------------------------------------------------- the generator script


def test_committed_workflow_docs_are_not_stale():
    stale = GEN_DOCS["stale_pages"]()
    assert stale == [], f"run `python scripts/gen_docs.py`; stale: {stale}"


def test_committed_document_page_starts_with_its_handwritten_intro():
    page = (ROOT / "docs" / "workflows" / "document_request.md").read_text(encoding="utf-8")
    intro = handwritten_part(page)
    assert intro.startswith("# Document requests\n")
    assert "PDF" in intro
    assert GENERATED_MARKER not in intro


def test_check_names_stale_pages_and_writing_fixes_them(tmp_path, capsys):
    main = GEN_DOCS["main"]
    assert main(["--check", "--docs", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "document_request.md" in err
    assert "index.md" in err
    assert list(tmp_path.iterdir()) == []  # --check writes nothing

    assert main(["--docs", str(tmp_path)]) == 0
    page = tmp_path / "document_request.md"
    assert page.read_text(encoding="utf-8").startswith(GEN_DOCS["INTROS"]["document_request"])
    assert main(["--check", "--docs", str(tmp_path)]) == 0

    text = page.read_text(encoding="utf-8")
    page.write_text("# My own intro\n\n" + text.replace("upload (recipient)", "upload"))
    capsys.readouterr()
    assert main(["--check", "--docs", str(tmp_path)]) == 1
    assert "document_request.md" in capsys.readouterr().err
    assert main(["--docs", str(tmp_path)]) == 0
    fixed = page.read_text(encoding="utf-8")
    assert fixed.startswith("# My own intro\n\n# Document requests\n")
    assert "requested --> uploaded : upload (recipient)\n" in fixed


def test_check_flags_a_generated_page_no_workflow_uses(tmp_path, capsys):
    main = GEN_DOCS["main"]
    assert main(["--docs", str(tmp_path)]) == 0
    orphan = tmp_path / "gone.md"
    orphan.write_text(f"# Gone\n{GENERATED_MARKER}\nold\n")
    (tmp_path / "notes.md").write_text("# Hand-written only\n")
    capsys.readouterr()
    assert main(["--check", "--docs", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "gone.md" in err
    assert "notes.md" not in err
