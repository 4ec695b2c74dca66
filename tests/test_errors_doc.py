"""docs/errors.md describes every error class and every limit, and hides no example from the runner.

Its python blocks run under tests/test_docs_examples.py (the UnknownKind example counts the
registered kinds there, so it cannot go stale); this file checks what that test cannot see.
"""

import re
from pathlib import Path

import attrs

import taskflow.errors as errors_module
from taskflow import DEFAULT_LIMITS, Limits
from taskflow.errors import TaskflowError

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
ERRORS = sorted(
    name
    for name, value in vars(errors_module).items()
    if isinstance(value, type) and issubclass(value, TaskflowError)
)
FENCE = re.compile(r"^(`{3,})(.*)$")


def _table_rows(header: str) -> dict[str, list[str]]:
    """Return the rows of the Markdown table whose header row starts with `header`, by first cell."""
    lines = PAGE.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_every_error_class_has_a_row_in_the_table():
    rows = _table_rows("| class |")
    assert sorted(set(ERRORS) - set(rows)) == []
    assert sorted(set(rows) - set(ERRORS)) == []


def test_every_error_class_raised_on_its_own_has_a_section():
    headings = "\n".join(line for line in PAGE.splitlines() if line.startswith("#"))
    missing = [name for name in ERRORS if name != "TaskflowError" and f"`{name}`" not in headings]
    assert missing == []


def test_the_limits_table_gives_every_limit_with_its_default():
    rows = _table_rows("| limit |")
    defaults = {f.name: f.default for f in attrs.fields(Limits)}
    assert set(rows) == set(defaults)
    for name, default in defaults.items():
        assert rows[name][0].replace(",", "") == str(default), name
    assert Limits() == DEFAULT_LIMITS


def test_no_doctest_hides_in_a_fence_the_runner_skips():
    hidden, fence = [], None
    for n, line in enumerate(PAGE.splitlines(), 1):
        found = FENCE.match(line)
        if found and fence is None:
            fence = found[2].strip()
        elif found and not found[2].strip():
            fence = None
        elif fence is not None and fence != "python" and line.lstrip().startswith(">>>"):
            hidden.append(n)
    assert hidden == [], "make these ```python blocks so that tests/test_docs_examples.py runs them"
