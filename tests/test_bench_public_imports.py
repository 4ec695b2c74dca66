"""The benchmarks use taskflow's public names only: no `from taskflow... import _private`."""

import ast
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parent.parent / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.name)
def test_a_benchmark_imports_no_private_taskflow_name(path):
    private = [
        f"{node.module}.{alias.name} (line {node.lineno})"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "taskflow"
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert private == []


def test_the_benchmarks_are_found():
    assert "bench_bookings.py" in [p.name for p in BENCHMARKS]
