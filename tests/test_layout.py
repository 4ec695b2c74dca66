"""The package's layers: imports point inward, no module imports another in a circle, no I/O at import."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "taskflow"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Return the taskflow modules `path` imports at module level, type-checking imports included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    body = list(tree.body)
    while body:
        node = body.pop()
        if isinstance(node, ast.If):
            body += node.body + node.orelse
        elif isinstance(node, ast.Try):
            body += node.body + node.orelse + node.finalbody
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("taskflow")}
        elif (
            isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("taskflow")
        ):
            found.add(node.module)
            # `from taskflow.domain import engine` imports the module taskflow.domain.engine.
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: _imports(path) & set(modules) for name, path in modules.items()}


def test_no_module_imports_another_in_a_circle() -> None:
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if nxt == node or nxt == "taskflow":
                continue
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("taskflow.domain", ("taskflow.application", "taskflow.adapters", "taskflow.kinds")),
        ("taskflow.kinds", ("taskflow.application", "taskflow.adapters", "taskflow.serialization")),
        ("taskflow.application", ("taskflow.adapters",)),
        ("taskflow.adapters", ("taskflow.application",)),
        # The SLA engine is pure and knows no kind, so it merges apart from any of them.
        ("taskflow.sla", ("taskflow.application", "taskflow.adapters", "taskflow.kinds")),
    ],
)
def test_imports_point_inward(layer: str, forbidden: tuple[str, ...]) -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in _graph().items()
        if module.startswith(layer)
        for target in targets
        if target.startswith(forbidden)
    )
    assert wrong == []


def test_importing_taskflow_imports_no_adapter_that_does_io() -> None:
    code = "import taskflow, sys; print(sorted(m for m in ('sqlite3', 'taskflow.adapters.sqlite') if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_the_sqlite_repository_is_still_reached_from_the_top_level() -> None:
    import taskflow
    from taskflow.adapters.sqlite import SqliteRepository

    assert taskflow.SqliteRepository is SqliteRepository
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = taskflow.Nope


def test_a_kind_name_once_at_the_top_level_still_resolves_with_a_deprecation_warning() -> None:
    import taskflow
    from taskflow.kinds.document import Reject
    from taskflow.kinds.payloads import AddFiles

    with pytest.warns(DeprecationWarning, match=r"from taskflow\.kinds\.document import Reject"):
        assert taskflow.Reject is Reject
    with pytest.warns(DeprecationWarning, match=r"taskflow\.kinds\.payloads"):
        assert taskflow.AddFiles is AddFiles
    assert "Reject" not in taskflow.__all__
