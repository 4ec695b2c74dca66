"""docs/reference.md is generated from the code and kept fresh; every public call is documented.

The errors of each call come from the declared table in scripts/reference.py; this test checks
the table against the code: every call has an entry, every entry names error classes, and every
error class a call's own code raises (directly, or in a helper of its module it calls) is named.
"""

import ast
import importlib.util
import inspect
import sys
import textwrap
from pathlib import Path

import pytest

import taskflow.errors as errors_module
from taskflow.errors import TaskflowError

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str, path: Path):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


GEN_DOCS = _load("taskflow_docs_gen", ROOT / "scripts" / "gen_docs.py")
REFERENCE = GEN_DOCS.load_reference()
CALLS = REFERENCE.all_calls()
ERRORS = {
    name: value
    for name, value in vars(errors_module).items()
    if isinstance(value, type) and issubclass(value, TaskflowError)
}


def test_committed_reference_is_not_stale():
    assert not GEN_DOCS.reference_is_stale(), "run `python scripts/gen_docs.py`"


def test_the_reference_covers_every_section_asked_for():
    names = {s.name for s in REFERENCE.SECTIONS}
    wanted = {"TaskService", "UnitOfWork", "Bookings", "SlaService", "CrmTasks", "Intake"}
    wanted |= {"Questionnaires", "Automation", "TaskRepository", "Outbox"}
    assert wanted <= names
    page = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    for call in CALLS:
        assert f"`{call.signature}`" in page


@pytest.mark.parametrize("call", CALLS, ids=lambda c: c.qualname)
def test_every_public_call_has_a_docstring(call):
    assert call.summary, f"{call.qualname} has no docstring; give it a one-line one"


def test_every_public_call_has_an_errors_entry_and_every_entry_a_call():
    qualnames = {c.qualname for c in CALLS}
    table = set(REFERENCE.RAISES)
    assert sorted(qualnames - table) == [], "add these calls to RAISES in scripts/reference.py"
    assert sorted(table - qualnames) == [], "these RAISES entries name no public call"


def test_every_entry_names_error_classes_of_taskflow_errors():
    for qualname, names in REFERENCE.RAISES.items():
        for name in names:
            assert name in ERRORS, f"{qualname}: {name!r} is not a class of taskflow.errors"


def _raised_by(tree: ast.Module, cls_name: str, member: str) -> set[str]:
    """Return the taskflow error classes a method raises itself or in module helpers it calls."""
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    klass = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls_name)
    methods = {n.name: n for n in klass.body if isinstance(n, ast.FunctionDef)}
    found: set[str] = set()
    seen: set[str] = set()
    todo = [methods[member]]
    while todo:
        node = todo.pop()
        for n in ast.walk(node):
            if isinstance(n, ast.Raise) and n.exc is not None:
                exc = n.exc.func if isinstance(n.exc, ast.Call) else n.exc
                if isinstance(exc, ast.Name) and exc.id in ERRORS:
                    found.add(exc.id)
            elif isinstance(n, ast.Call):
                f = n.func
                if isinstance(f, ast.Name) and f.id in functions and f.id not in seen:
                    seen.add(f.id)
                    todo.append(functions[f.id])
                elif (
                    isinstance(f, ast.Attribute)
                    and isinstance(f.value, ast.Name)
                    and f.value.id == "self"
                    and f.attr in methods
                    and "self." + f.attr not in seen
                ):
                    seen.add("self." + f.attr)
                    todo.append(methods[f.attr])
    return found


def _covered(raised: str, declared: tuple[str, ...]) -> bool:
    return any(issubclass(ERRORS[raised], ERRORS[name]) for name in declared)


def test_every_error_a_call_raises_in_its_own_code_is_declared():
    missing = []
    for section in REFERENCE.SECTIONS:
        module = sys.modules[section.module]
        tree = ast.parse(inspect.getsource(module))
        for call in REFERENCE.calls_of(section):
            klass = next(
                n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == section.name
            )
            if call.member not in {n.name for n in klass.body if isinstance(n, ast.FunctionDef)}:
                continue  # a property or an inherited constructor
            declared = REFERENCE.RAISES.get(call.qualname, ())
            raised = sorted(_raised_by(tree, section.name, call.member))
            missing += [f"{call.qualname} raises {r}" for r in raised if not _covered(r, declared)]
    assert missing == [], "declare them in RAISES in scripts/reference.py"


def test_the_guard_sees_a_raise_in_a_helper_of_the_module():
    source = textwrap.dedent(
        """
        def helper():
            raise UnknownKind("x")

        class Service:
            def call(self):
                self._inner()

            def _inner(self):
                helper()
        """
    )
    assert _raised_by(ast.parse(source), "Service", "call") == {"UnknownKind"}


def test_check_flags_a_stale_reference_and_writing_fixes_it(tmp_path, capsys):
    page = tmp_path / "reference.md"
    page.write_text("old\n", encoding="utf-8")
    assert GEN_DOCS.main(["--check", "--reference", str(page)]) == 1
    assert "reference.md" in capsys.readouterr().err
    assert GEN_DOCS.main(["--reference", str(page)]) == 0
    assert GEN_DOCS.main(["--check", "--reference", str(page)]) == 0
    assert page.read_text(encoding="utf-8") == REFERENCE.reference_page()


def test_a_call_without_a_docstring_is_shown_as_such():
    section = REFERENCE.Section(__name__, "_Undocumented", "a class of this test")
    calls = list(REFERENCE.calls_of(section))
    assert [c.qualname for c in calls] == ["_Undocumented.run"]
    assert calls[0].summary is None
    assert calls[0].signature == "run(x: int) -> str"


class _Undocumented:
    def run(self, x: int) -> str:
        return str(x)
