"""The generated workflow pages show system-only actions, the SLA one of SLA-governed kinds too."""

import runpy
from pathlib import Path

from taskflow.diagrams import to_dot, to_mermaid, workflow_page
from taskflow.kinds import default_registry
from taskflow.sla import ESCALATE

ROOT = Path(__file__).resolve().parent.parent
GEN_DOCS = runpy.run_path(str(ROOT / "scripts" / "gen_docs.py"))
WORKFLOWS = ROOT / "docs" / "workflows"


def _kinds():
    return {k.name: k for k in GEN_DOCS["documented_kinds"]()}


def test_documented_sla_kinds_are_built_with_the_escalation_action():
    kinds = _kinds()
    for name in ("crm_task", "support_ticket", "complaint_ticket"):
        actions = {t.name: t for t in kinds[name].workflow.transitions}
        assert actions[ESCALATE].system_only
    # Both ticket kinds share one workflow, so they keep one page.
    assert kinds["support_ticket"].workflow is kinds["complaint_ticket"].workflow
    assert set(kinds) == set(default_registry().names)


def test_sla_escalate_is_drawn_as_system_only_on_the_sla_pages():
    for page in ("crm_task.md", "ticket.md"):
        text = (WORKFLOWS / page).read_text(encoding="utf-8")
        assert "(recipient, system only): sla_escalate" in text  # Mermaid note and DOT label
        assert "| `sla_escalate` | any open state | (stays) | recipient, system only |" in text
        assert "Shown as built with an SLA" in text
        assert "never by a user actor: " in text


def test_pages_without_sla_do_not_claim_one():
    text = (WORKFLOWS / "document_request.md").read_text(encoding="utf-8")
    assert "sla_escalate" not in text
    assert "Shown as built with an SLA" not in text


def test_a_page_names_its_system_only_actions_and_gives_the_notes():
    kind = _kinds()["crm_task"]
    page = workflow_page(kind.workflow, [kind], "# CRM\n", ["A note of *the generator*."])
    assert "\nA note of *the generator*.\n" in page
    assert "never by a user actor: `link_tracker`, `sla_escalate`." in page
    assert "sla_escalate (recipient, system only)" not in to_mermaid(kind.workflow)  # not an edge
    assert "sla_escalate" in to_dot(kind.workflow)
