"""The custom kind of examples/custom_kind.py, checked with taskflow.testing as a host would."""

import importlib.util
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import taskflow as tf
from taskflow.serialization import Serializer
from taskflow.testing.stateful import workflow_machine
from taskflow.testing.strategies import builtin_strategies, tasks, texts

_PATH = Path(__file__).resolve().parent.parent / "examples" / "custom_kind.py"
_SPEC = importlib.util.spec_from_file_location("custom_kind_example", _PATH)
example = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = example
_SPEC.loader.exec_module(example)

REGISTRY = tf.default_registry(example.SAMPLE_REQUEST)
TABLE = builtin_strategies().with_types(
    {
        example.SampleRequest: st.builds(
            example.SampleRequest, texts(max_size=20), st.integers(1, 50)
        ),
        # Mostly known carriers with tracking numbers; sometimes an unknown carrier or a blank one.
        example.Ship: st.builds(
            example.Ship,
            st.sampled_from((*example.CARRIERS, "Pigeon")),
            st.text(max_size=12),
        ),
        example.ReportMissing: st.builds(example.ReportMissing, st.text(max_size=20)),
    }
)

TestSampleRequestWorkflow = workflow_machine(REGISTRY, "sample_request", TABLE).TestCase
TestSampleRequestWorkflow.settings = settings(
    TestSampleRequestWorkflow.settings, stateful_step_count=30
)


@settings(max_examples=150)
@given(tasks(REGISTRY, "sample_request", TABLE, max_steps=12))
def test_sample_request_tasks_round_trip_and_replay(task):
    serializer = Serializer(REGISTRY)
    assert serializer.load_task(serializer.dump_task(task)) == task
    assert tf.replay(example.SAMPLE_WORKFLOW, task) == task
    assert task.data.shipments <= example.MAX_SHIPMENTS


def test_generated_sample_requests_reach_every_state():
    seen = Counter()

    # Derandomized, so this coverage claim is the same on every run.
    @settings(max_examples=300, database=None, derandomize=True)
    @given(tasks(REGISTRY, "sample_request", TABLE, max_steps=12))
    def collect(task):
        seen[task.state] += 1

    collect()
    assert set(seen) == set(example.SAMPLE_WORKFLOW.state_names)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (example.Ship("Pigeon", "1"), "carrier 'Pigeon' is not one of"),
        (example.Ship("DHL", "  "), "a shipment needs a tracking number"),
    ],
)
def test_bad_shipment_is_refused(payload, message):
    service = tf.TaskService(
        registry=REGISTRY,
        repository=tf.InMemoryRepository(),
        notifier=tf.RecordingNotifier(),
        clock=tf.FixedClock(),
        ids=tf.SequentialIds(),
    )
    draft = tf.NewTask("Samples", "supco", example.SampleRequest("X"))
    task = service.open(tf.Actor("q", "acme"), "sample_request", draft).task
    with pytest.raises(tf.InvalidPayload, match=message):
        service.act(tf.Actor("s", "supco"), task.id, "ship", payload)
