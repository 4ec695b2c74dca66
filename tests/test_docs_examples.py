"""The code examples of README.md and docs/**/*.md run, and print what they say they print.

Every fenced ```python block is collected (not docs/workflows/, which is generated). The blocks
of one page run in order in one fresh namespace, so a page builds on its earlier blocks, with a
temporary directory as the working directory (the SQLite examples write files).

A block with `>>>` prompts is a doctest: its printed output is checked too. An expected error
is written as the interpreter prints it, without the traceback and without the module path
(an exception group as its tree of members):

    >>> svc.act(buyer, task.id, "accept")
    ActionNotAllowed: task ACME-TASK-1 is 'requested'; 'accept' needs 'uploaded'; ...

Opting out: a block that is deliberately not runnable (a signature listing, pseudo-code) has an
HTML comment on the line just before its fence, saying why; it stays visible in the Markdown
source and out of the rendered page:

    <!-- no-run: a signature listing, not a call -->
    ```python

A block that raises, or prints something else than its doctest says, fails the page's test
with the file and line of the block.
"""

from __future__ import annotations

import builtins
import copy
import doctest
import io
import re
import sys
import traceback
import types
from pathlib import Path

import attrs
import pytest

import taskflow

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "docs" / "workflows"

_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_NO_RUN = re.compile(r"^<!--\s*no-run\b:?(?P<reason>.*?)-->\s*$")
_PROMPT = re.compile(r"^\s*>>>", re.MULTILINE)
# The first line of a doctest's expected output when it is an error as the interpreter shows
# it: `Name: message`, or `  | Name: message` for an exception group.
_ERROR_SHOWN = re.compile(r"^(?:  \| )?(?P<name>[A-Za-z_]\w*)(?::|$)")


class DocsError(Exception):
    """A page's Markdown breaks the conventions above (an opt-out without a reason, ...)."""


@attrs.frozen
class Block:
    """One fenced python block: where it is, its code, and why it does not run (if it does not)."""

    path: Path
    line: int  # the line of the block's first line of code, counted from 1
    source: str
    no_run: str | None = None

    @property
    def where(self) -> str:
        return f"{_relative(self.path)}:{self.line}"

    @property
    def is_doctest(self) -> bool:
        return _PROMPT.search(self.source) is not None


def _relative(path: Path) -> str:
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def pages() -> list[Path]:
    """Return README.md and every page under docs/ except the generated ones."""
    docs = sorted(p for p in (ROOT / "docs").rglob("*.md") if GENERATED not in p.parents)
    return [ROOT / "README.md", *docs]


def blocks_of(path: Path, text: str | None = None) -> list[Block]:
    """Return the python blocks of one Markdown page, in order."""
    lines = (path.read_text(encoding="utf-8") if text is None else text).splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        marker = _NO_RUN.match(lines[i])
        if marker and not (
            i + 1 < len(lines)
            and (fence := _FENCE.match(lines[i + 1]))
            and fence["info"].strip() == "python"
        ):
            msg = (
                f"{_relative(path)}:{i + 1}: a no-run comment must be just before a ```python fence"
            )
            raise DocsError(msg)
        if opening is None:
            i += 1
            continue
        fence, info = opening["fence"], opening["info"].strip()
        end = i + 1
        while end < len(lines) and not _closes(lines[end], fence):
            end += 1
        if info.split(" ", 1)[0] == "python":
            if info != "python":
                msg = (
                    f"{_relative(path)}:{i + 1}: write ```python without flags; opt a block out "
                    f"with <!-- no-run: why --> on the line before it"
                )
                raise DocsError(msg)
            reason = None
            before = _NO_RUN.match(lines[i - 1]) if i > 0 else None
            if before is not None:
                reason = before["reason"].strip()
                if not reason:
                    msg = f"{_relative(path)}:{i}: say why the block does not run: <!-- no-run: why -->"
                    raise DocsError(msg)
            source = "\n".join(lines[i + 1 : end]) + "\n"
            blocks.append(Block(path, i + 2, source, reason))
        i = end + 1
    return blocks


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    indent = len(line) - len(line.lstrip(" "))
    return indent <= 3 and stripped.startswith(fence) and set(stripped) == {fence[0]}


# --- running -------------------------------------------------------------------------------


def _show_error(error: BaseException) -> None:
    """Print an error as the interpreter would, without traceback, chain or module paths."""
    text = "".join(traceback.format_exception(error, limit=0, chain=False))
    for cls in _classes(error):
        if cls.__module__ not in ("builtins", "__main__"):
            text = text.replace(f"{cls.__module__}.{cls.__qualname__}", cls.__qualname__)
    print(text, end="")


def _classes(error: BaseException) -> set[type]:
    found = {type(error)}
    for member in getattr(error, "exceptions", ()):
        found |= _classes(member)
    return found


def _is_error_name(name: str, namespace: dict) -> bool:
    found = namespace.get(name, getattr(taskflow, name, getattr(builtins, name, None)))
    return isinstance(found, type) and issubclass(found, BaseException)


class _DocsParser(doctest.DocTestParser):
    """Doctests whose expected output is an error shown as the interpreter shows it."""

    def __init__(self, namespace: dict) -> None:
        self.namespace = namespace

    def parse(self, string: str, name: str = "<string>") -> list:
        pieces = super().parse(string, name)
        for piece in pieces:
            if not isinstance(piece, doctest.Example) or piece.exc_msg is not None:
                continue
            shown = _ERROR_SHOWN.match(piece.want)
            if shown and _is_error_name(shown["name"], self.namespace):
                # Caught inside the example itself, so that what it prints is compared like any
                # output. (Indenting changes nothing but a multi-line string, which no example has.)
                body = "".join(f"    {line}\n" for line in piece.source.splitlines())
                piece.as_written = piece.source
                piece.source = (
                    f"try:\n{body}except Exception as _docs_error:\n"
                    "    __show_error__(_docs_error)\n"
                )
        return pieces


class _Runner(doctest.DocTestRunner):
    """Reports a failed example as the page writes it, not as `_DocsParser` wrapped it."""

    def report_failure(self, out, test, example, got):
        as_written = getattr(example, "as_written", None)
        if as_written is not None:
            example = copy.copy(example)
            example.source = as_written
        super().report_failure(out, test, example, got)


def run_block(block: Block, namespace: dict) -> None:
    """Run one block in `namespace`; fail the test naming the block's file and line."""
    if block.is_doctest:
        _run_doctest(block, namespace)
    else:
        _run_code(block, namespace)


def _run_code(block: Block, namespace: dict) -> None:
    filename = str(block.path)
    # Padded so that a traceback's line numbers are the page's.
    code = compile("\n" * (block.line - 1) + block.source, filename, "exec")
    try:
        exec(code, namespace)
    except Exception as exc:
        error = exc
    else:
        return
    frames = traceback.extract_tb(error.__traceback__)
    line = next((f.lineno for f in reversed(frames) if f.filename == filename), block.line)
    # The traceback from the page's own frame on: the harness's exec is no news.
    shown = "".join(traceback.format_exception(error.with_traceback(error.__traceback__.tb_next)))
    msg = (
        f"{_relative(block.path)}:{line}: the block at line {block.line} raised "
        f"{type(error).__name__}: {error}\n\n{shown}"
    )
    pytest.fail(msg, pytrace=False)


def _run_doctest(block: Block, namespace: dict) -> None:
    namespace["__show_error__"] = _show_error
    test = _DocsParser(namespace).get_doctest(
        block.source, namespace, block.where, _relative(block.path), block.line - 1
    )
    runner = _Runner(optionflags=doctest.FAIL_FAST)
    out = io.StringIO()
    runner.run(test, out=out.write, clear_globs=False)
    if runner.failures:
        msg = f"{block.where}: an example of the doctest block failed\n{out.getvalue()}"
        pytest.fail(msg, pytrace=False)


def run_page(path: Path, monkeypatch: pytest.MonkeyPatch, workdir: Path) -> list[Block]:
    """Run every runnable block of a page in order, in one fresh module; return the blocks."""
    blocks = blocks_of(path)
    name = "docs_example_" + re.sub(r"\W", "_", _relative(path))
    module = types.ModuleType(name)
    # A real module, so that classes a page defines have a module attrs and cattrs can find.
    monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.chdir(workdir)
    for block in blocks:
        if block.no_run is None:
            run_block(block, module.__dict__)
    return blocks


# --- the tests -------------------------------------------------------------------------------


PAGES = [p for p in pages() if blocks_of(p)]


@pytest.mark.parametrize("path", PAGES, ids=_relative)
def test_the_python_examples_of_a_page_run(path, monkeypatch, tmp_path):
    run_page(path, monkeypatch, tmp_path)


def test_examples_are_collected_from_readme_and_docs_but_not_generated_pages():
    collected = {_relative(p) for p in PAGES}
    assert {"README.md", "docs/errors.md", "docs/extending.md"} <= collected
    assert not any(p.startswith("docs/workflows/") for p in collected)


def test_few_blocks_are_opted_out():
    # A ceiling, raised on purpose when a new signature listing earns its place: an example
    # that can run should run.
    skipped = [b.where for p in PAGES for b in blocks_of(p) if b.no_run is not None]
    assert len(skipped) <= 3, skipped


def _page(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "page.md"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_raising_block_fails_naming_its_file_and_line(tmp_path, monkeypatch):
    path = _page(tmp_path, "# Page\n\n```python\nx = 1\n\nraise ValueError('stale')\n```\n")
    with pytest.raises(pytest.fail.Exception, match=r"page\.md:6: the block at line 4 raised"):
        run_page(path, monkeypatch, tmp_path)


def test_blocks_of_a_page_share_one_namespace_and_doctests_check_output(tmp_path, monkeypatch):
    text = "```python\nx = 2\n```\n\n```python\n>>> x * 3\n7\n```\n"
    path = _page(tmp_path, text)
    with pytest.raises(
        pytest.fail.Exception, match=r"page\.md:6: an example of the doctest block failed"
    ) as failed:
        run_page(path, monkeypatch, tmp_path)
    assert "line 6" in str(failed.value)
    assert "Expected:\n    7\nGot:\n    6" in str(failed.value)


def test_a_doctest_may_expect_an_error_as_the_interpreter_shows_it(tmp_path, monkeypatch):
    text = (
        "```python\n"
        ">>> tf = __import__('taskflow')\n"
        ">>> tf.kinds.document.Decline('  ')\n"
        "InvalidPayload: Decline.explanation must be a non-blank string, got '  '\n"
        ">>> raise ExceptionGroup('two', [ValueError('a'), KeyError('b')])\n"
        "  | ExceptionGroup: two (2 sub-exceptions)\n"
        "  +-+---------------- 1 ----------------\n"
        "    | ValueError: a\n"
        "    +---------------- 2 ----------------\n"
        "    | KeyError: 'b'\n"
        "    +------------------------------------\n"
        "```\n"
    )
    run_page(_page(tmp_path, text), monkeypatch, tmp_path)


def test_an_expected_error_that_is_not_raised_fails(tmp_path, monkeypatch):
    text = "```python\n>>> 1 + 1\nValueError: nope\n```\n"
    with pytest.raises(pytest.fail.Exception, match="Expected:\n    ValueError: nope\nGot:\n    2"):
        run_page(_page(tmp_path, text), monkeypatch, tmp_path)


def test_an_opted_out_block_does_not_run_and_must_say_why(tmp_path, monkeypatch):
    text = "<!-- no-run: pseudo-code -->\n```python\nservice.act(...)\n```\n"
    (block,) = run_page(_page(tmp_path, text), monkeypatch, tmp_path)
    assert block.no_run == "pseudo-code"
    with pytest.raises(DocsError, match="say why"):
        blocks_of(tmp_path / "x.md", "<!-- no-run -->\n```python\npass\n```\n")
    with pytest.raises(DocsError, match="without flags"):
        blocks_of(tmp_path / "x.md", "```python no-run\npass\n```\n")
    with pytest.raises(DocsError, match="just before"):
        blocks_of(tmp_path / "x.md", "<!-- no-run: why -->\n\n```python\npass\n```\n")


def test_python_inside_another_fence_is_not_collected(tmp_path):
    text = "````markdown\n```python\nraise SystemExit\n```\n````\n"
    assert blocks_of(tmp_path / "x.md", text) == []


def test_a_wrong_error_is_reported_with_the_example_as_the_page_writes_it(tmp_path, monkeypatch):
    text = "```python\n>>> import taskflow as tf\n>>> tf.kinds.document.Decline('  ')\nInvalidPayload: other\n```\n"
    with pytest.raises(pytest.fail.Exception) as failed:
        run_page(_page(tmp_path, text), monkeypatch, tmp_path)
    report = str(failed.value)
    assert "line 3" in report
    assert (
        "Failed example:\n    tf.kinds.document.Decline('  ')\nExpected:\n    InvalidPayload: other\n"
        in report
    )
    assert "try:" not in report
