import attrs
import pytest

from taskflow import InvalidWorkflow, Registry, Side, State, TaskKind, Transition, Workflow


@attrs.frozen
class Data:
    count: int = 0


def _workflow(version):
    return Workflow(
        name="demo",
        initial="todo",
        version=version,
        states=(State("todo", waiting_on=Side.RECIPIENT), State("done", final=True)),
        transitions=(Transition("finish", "todo", "done", Side.RECIPIENT),),
    )


def _same(document):
    return document


def test_kind_of_workflow_version_one_needs_no_upgrades():
    kind = TaskKind("demo", Data, _workflow(1))
    assert dict(kind.upgrades) == {}
    assert Registry([kind])["demo"] is kind


def test_kind_declares_one_upgrade_per_older_workflow_version():
    kind = TaskKind("demo", Data, _workflow(3), upgrades={1: _same, 2: _same})
    assert sorted(kind.upgrades) == [1, 2]
    hash(kind)  # upgrades are not part of the hash, so a kind stays hashable


@pytest.mark.parametrize(
    ("version", "upgrades", "words"),
    [
        (
            3,
            {1: _same},
            r"upgrades must map each version from 1 to 2 to a function; missing: \[2\], not allowed: none",
        ),
        (2, {}, r"upgrades must map version 1 to a function; missing: \[1\]"),
        (
            1,
            {1: _same},
            r"upgrades must map no version \(version 1 needs none\) to a function; missing: none, not allowed: \[1\]",
        ),
        (2, {1: _same, 0: _same}, r"upgrades.*not allowed: \[0\]"),
        (2, {1: "rename"}, r"upgrades.*missing: none, not allowed: \[1\]"),
    ],
)
def test_upgrades_must_cover_every_older_workflow_version(version, upgrades, words):
    with pytest.raises(
        InvalidWorkflow,
        match=rf"task kind 'demo': workflow 'demo' is version {version}, so {words}",
    ):
        TaskKind("demo", Data, _workflow(version), upgrades=upgrades)
