"""examples/crm_tasks.py calls the SLA scheduler and reads the SLA state in one place each."""

import ast
from pathlib import Path

SOURCE = (Path(__file__).resolve().parent.parent / "examples" / "crm_tasks.py").read_text()


def _calls(name: str) -> list[str]:
    """Return the functions of the example that call `<something>.name(...)`."""
    found = []
    for function in ast.walk(ast.parse(SOURCE)):
        if not isinstance(function, ast.FunctionDef):
            continue
        found += [
            function.name
            for node in ast.walk(function)
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == name
        ]
    return found


def test_the_scheduler_is_called_from_one_function():
    assert _calls("apply_due") == ["run_scheduler"]


def test_the_sla_state_is_read_in_one_function():
    assert _calls("state") == ["resolution_at"]
