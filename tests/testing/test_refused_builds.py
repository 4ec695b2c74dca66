"""The stateful kit counts a payload its own class refuses as a refused input, not a crash."""

from __future__ import annotations

import attrs
from hypothesis import settings
from hypothesis import strategies as st

from taskflow import Registry, Side, State, TaskKind, Transition, Workflow, not_blank
from taskflow.testing.stateful import workflow_machine
from taskflow.testing.strategies import builtin_strategies


@attrs.frozen
class Sample:
    """Kind data whose name may not be blank."""

    name: str = attrs.field(validator=not_blank)


@attrs.frozen
class Ship:
    """A payload whose tracking number may not be blank."""

    tracking: str = attrs.field(validator=not_blank)


WORKFLOW = Workflow(
    name="sample",
    description="A sample is asked for and shipped.",
    initial="asked",
    states=(State("asked", waiting_on=Side.RECIPIENT), State("shipped", final=True)),
    transitions=(Transition("ship", "asked", "shipped", Side.RECIPIENT, payload=Ship),),
)
REGISTRY = Registry([TaskKind("sample", Sample, WORKFLOW, "Samples")])
# st.builds with st.text() makes blank values the classes refuse while being built.
TABLE = builtin_strategies().with_types(
    {Sample: st.builds(Sample, st.text(max_size=3)), Ship: st.builds(Ship, st.text(max_size=3))}
)

TestRefusedBuilds = workflow_machine(REGISTRY, "sample", TABLE).TestCase
TestRefusedBuilds.settings = settings(max_examples=20, stateful_step_count=10, deadline=None)
