"""Write docs/workflows/<workflow>.md, docs/workflows/index.md and docs/reference.md from the code.

    python scripts/gen_docs.py           # write the pages that changed
    python scripts/gen_docs.py --check   # write nothing; exit 1 and name the stale pages

The workflow pages come from the built-in task kinds; docs/reference.md (every public service
call and repository port method) from scripts/reference.py.

Everything above the marker line of a page is hand-written and kept as it is; everything below
it is made by `taskflow.diagrams`. A page that does not exist yet is created with a short intro.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs

from taskflow.diagrams import GENERATED_MARKER, index_page, workflow_page, workflows_of
from taskflow.domain.registry import TaskKind
from taskflow.domain.workflow import Workflow
from taskflow.errors import InvalidWorkflow
from taskflow.kinds import default_registry
from taskflow.kinds.crm_task import CrmConfig, crm_task_kind
from taskflow.kinds.ticket import ticket_kind
from taskflow.sla import SlaPolicies, SlaPolicy

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "workflows"
INDEX = "index.md"
REFERENCE = ROOT / "docs" / "reference.md"


def load_reference() -> Any:
    """Return scripts/reference.py as a module (it sits beside this script, not in the package)."""
    name = "taskflow_docs_reference"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("reference.py"))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def reference_is_stale(path: Path = REFERENCE) -> bool:
    """Tell whether the reference page differs from what the generator would write."""
    text: str = load_reference().reference_page()
    return not path.exists() or path.read_text(encoding="utf-8") != text


def write_reference(path: Path = REFERENCE) -> bool:
    """Write the reference page if it changed; tell whether it did."""
    if not reference_is_stale(path):
        return False
    path.write_text(load_reference().reference_page(), encoding="utf-8", newline="\n")
    return True


_PAGE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")

# The intro a page starts with when it is first created; after that the page's own text rules.
INTROS: dict[str, str] = {
    "document_request": """\
# Document requests

A company asks a business partner (usually a supplier) for one document: a certificate, a
declaration, a data sheet. The `document_request` kind asks for a document of the partner
company itself; the `product_document_request` kind asks for a document about one of the
partner's products and names that product. Both follow the same workflow (capability SP1 of
`DOMAIN.md`, from the supplier-portal article, seed 001).

**The states, and whose turn it is.** A new request is *Requested*: the supplier (the
recipient) must act. It may answer in two ways:

- `upload`: send the document. Only a PDF is accepted (`application/pdf`). Where the document
  type needs an expiry date (`requires_expiry` on the task's data), the upload must carry one;
  any expiry date given must lie after the day of the upload, so an already expired document is
  refused at the door. The task moves to *Uploaded* and the requester must act.
- `decline`: "I don't have this document", with an explanation for the requester. The task
  moves to *Not available* and the requester must act.

The requester then decides:

- on an upload, `accept` ends the cycle (*Accepted*), or `reject` with a reason sends the task
  back to the supplier as *Rejected*; from there the supplier uploads a new file or declines,
  exactly as from *Requested*;
- on a decline, `acknowledge` ends the cycle (*Acknowledged*), or `request_again` puts the
  task back in the supplier's inbox as *Requested*.

**Common actions.** Either side may `comment` at any time, even after the cycle ended: a public
comment is read by the partner, an internal one only by the writer's own company. In this
workflow a comment does not change whose turn it is. While the task is open, each company may
`assign` its own users, any colleague may `claim` the task from the Teambox, and `edit` changes
the task's fields: the requester may change all editable fields, the supplier only the tags,
so that the original request stays as it was sent.

The diagram, the action and state tables below are generated from the workflow's definition
in `taskflow.kinds.document`.

""",
}


# The SLA-governed kinds are drawn as built with an SLA, so their pages show the system-only
# `sla_escalate` action; the policy itself does not change the workflow, only that there is one.
DOCS_SLA = SlaPolicies((SlaPolicy("docs", resolution=timedelta(hours=8)),), default="docs")
SLA_NOTE = (
    "Shown as built with an SLA ({build}): such a build adds the system-only "
    "`sla_escalate` action, which the SLA scheduler (`SlaService.apply_due`) takes to fire "
    "warnings and escalation levels; a build without an SLA has no such action."
)
SLA_BUILDS: dict[str, str] = {
    "crm_task": "`crm_task_kind(CrmConfig(sla=...))`",
    "ticket": "`ticket_kind(sla)`, `sla_governed(kind, sla)`",
}


def documented_kinds() -> tuple[TaskKind, ...]:
    """Return the built-in kinds as the pages show them: SLA-governable kinds built with an SLA."""
    crm = crm_task_kind(CrmConfig(sla=DOCS_SLA))
    tickets = ticket_kind(DOCS_SLA).workflow  # one governed workflow for both ticket kinds
    kinds = []
    for kind in default_registry():
        if kind.name == crm.name:
            kind = crm
        elif kind.workflow.name == tickets.name:
            kind = ticket_kind(DOCS_SLA, base=kind)
            kind = attrs.evolve(kind, workflow=tickets)
        kinds.append(kind)
    return tuple(kinds)


def page_notes(workflow: Workflow) -> tuple[str, ...]:
    """Return the generator's notes for a workflow's page (how an SLA-governed build was made)."""
    build = SLA_BUILDS.get(workflow.name)
    return () if build is None else (SLA_NOTE.format(build=build),)


def page_name(workflow: Workflow) -> str:
    """Return the file name of a workflow's page, refusing names that are not plain file names."""
    if not _PAGE_NAME.match(workflow.name):
        msg = f"workflow name {workflow.name!r} cannot be a page file name; rename the workflow"
        raise InvalidWorkflow(msg)
    return f"{workflow.name}.md"


def default_intro(workflow: Workflow) -> str:
    """Return the hand-written intro a new page starts with."""
    known = INTROS.get(workflow.name)
    if known is not None:
        return known
    title = workflow.name.replace("_", " ").capitalize()
    about = f"{workflow.description}\n\n" if workflow.description else ""
    return f"# {title}\n\n{about}"


def expected_pages(docs: Path = DOCS, kinds: Iterable[TaskKind] | None = None) -> dict[Path, str]:
    """Return every page as the generator would write it, by path."""
    chosen = documented_kinds() if kinds is None else tuple(kinds)
    pages: dict[Path, str] = {}
    for workflow, users in workflows_of(chosen):
        path = docs / page_name(workflow)
        current = path.read_text(encoding="utf-8") if path.exists() else default_intro(workflow)
        pages[path] = workflow_page(workflow, users, current, page_notes(workflow))
    pages[docs / INDEX] = index_page(chosen)
    return pages


def _orphans(docs: Path, pages: dict[Path, str]) -> list[Path]:
    """Return generated pages of workflows that no kind uses any more."""
    if not docs.is_dir():
        return []
    return [
        path
        for path in sorted(docs.glob("*.md"))
        if path not in pages and GENERATED_MARKER in path.read_text(encoding="utf-8")
    ]


def stale_pages(docs: Path = DOCS, kinds: Iterable[TaskKind] | None = None) -> list[Path]:
    """Return the pages that differ from what the generator would write, or should not exist."""
    pages = expected_pages(docs, kinds)
    stale = [
        path
        for path, text in pages.items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    return stale + _orphans(docs, pages)


def write_pages(docs: Path = DOCS, kinds: Iterable[TaskKind] | None = None) -> list[Path]:
    """Write the pages that changed; return them."""
    written = []
    for path, text in expected_pages(docs, kinds).items():
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    return written


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the generator; with --check, return 1 if any page is stale."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 when stale")
    parser.add_argument("--docs", type=Path, default=DOCS, help="the workflows docs folder")
    parser.add_argument("--reference", type=Path, default=REFERENCE, help="the reference page")
    args = parser.parse_args(argv)
    docs: Path = args.docs
    reference: Path = args.reference
    if args.check:
        stale = stale_pages(docs) + ([reference] if reference_is_stale(reference) else [])
        for path in stale:
            print(f"stale: {_shown(path)}", file=sys.stderr)
        if stale:
            print("run `python scripts/gen_docs.py` to regenerate", file=sys.stderr)
            return 1
        print("docs are up to date")
        return 0
    for path in write_pages(docs):
        print(f"wrote {_shown(path)}")
    if write_reference(reference):
        print(f"wrote {_shown(reference)}")
    pages = expected_pages(docs)
    for path in _orphans(docs, pages):
        print(f"no workflow uses {_shown(path)} any more; delete it by hand", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
