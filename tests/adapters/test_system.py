"""The production clock and ids: they keep the ports' contracts and the promises their docs make."""

import ast
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import taskflow as tf
from taskflow.adapters import system
from taskflow.adapters.system import SystemClock, UuidIds, uuid7
from taskflow.ports import Clock, IdFactory
from taskflow.testing.contracts import ClockContract, IdFactoryContract


class TestSystemClock(ClockContract):
    def make_clock(self) -> Clock:
        return SystemClock()


class TestUuidIds(IdFactoryContract):
    def make_ids(self) -> IdFactory:
        return UuidIds()


def test_system_clock_tells_utc_close_to_the_real_time():
    now = SystemClock().now()
    assert now.tzinfo is UTC
    assert abs(datetime.now(UTC) - now) < timedelta(minutes=1)


def test_system_clock_never_goes_back_when_the_system_clock_steps_back(monkeypatch):
    clock = SystemClock()
    first = clock.now()

    class SteppedBack(datetime):
        @classmethod
        def now(cls, tz=None):
            return first - timedelta(hours=1)

    monkeypatch.setattr(system, "datetime", SteppedBack)
    assert clock.now() == first


def test_uuid_ids_are_version_7_uuids_in_canonical_form():
    task_id = UuidIds().new_task_id()
    parsed = uuid.UUID(task_id)
    assert str(parsed) == task_id
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122


def test_uuid_ids_of_one_factory_increase_strictly_even_within_one_millisecond(monkeypatch):
    monkeypatch.setattr(system.time, "time_ns", lambda: 1_700_000_000_000_000_000)
    ids = UuidIds()
    taken = [ids.new_task_id() for _ in range(500)]
    assert taken == sorted(taken)
    assert len(set(taken)) == 500
    assert all(uuid.UUID(t).version == 7 for t in taken)


def test_uuid_ids_carry_the_time_they_were_made_in_their_first_48_bits():
    before = datetime.now(UTC)
    value = uuid.UUID(UuidIds().new_task_id()).int >> 80
    made = datetime.fromtimestamp(value / 1000, UTC)
    assert before - timedelta(seconds=1) <= made <= datetime.now(UTC) + timedelta(seconds=1)


def test_uuid_ids_of_threads_never_meet():
    ids = UuidIds()
    taken: list[str] = []

    def work() -> None:
        mine = [ids.new_task_id() for _ in range(2_000)]
        taken.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(taken)) == 8_000


def test_uuid_ids_of_two_processes_and_a_restart_never_meet():
    # SequentialIds gives 'task-1' in each of them; UuidIds must not.
    code = (
        "from taskflow.adapters.system import UuidIds\n"
        "ids = UuidIds()\n"
        "print('\\n'.join(ids.new_task_id() for _ in range(1000)))\n"
    )
    workers = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    got = [w.communicate(timeout=120)[0].split() for w in workers]
    restarted = [UuidIds().new_task_id() for _ in range(1_000)]
    everything = [*got[0], *got[1], *restarted]
    assert len(everything) == 3_000
    assert len(set(everything)) == 3_000


def test_uuid7_is_a_version_7_uuid():
    assert uuid7().version == 7


def test_the_top_level_exports_the_production_adapters():
    assert tf.SystemClock is SystemClock
    assert tf.UuidIds is UuidIds


# Calls that read the clock or the random source; only taskflow.adapters.system may make them.
_IMPURE_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "time_ns"),
    ("os", "urandom"),
    ("uuid", "uuid1"),
    ("uuid", "uuid4"),
}
_IMPURE_MODULES = {"random", "secrets"}
_ALLOWED = {"taskflow/adapters/system.py"}
# Modules for tests and benchmarks (hypothesis draws, lease timing of contract suites).
_TOOLS = ("taskflow/testing/",)


def _impure_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) in _IMPURE_CALLS:
                found.append(f"{node.value.id}.{node.attr} (line {node.lineno})")
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name in _IMPURE_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module in _IMPURE_MODULES:
            found.append(node.module)
    return found


def test_only_the_system_module_reads_the_clock_or_the_random_source():
    src = Path(tf.__file__).resolve().parent
    offenders = {}
    for path in sorted(src.rglob("*.py")):
        name = path.relative_to(src.parent).as_posix()
        if name in _ALLOWED or name.startswith(_TOOLS):
            continue
        uses = _impure_uses(path)
        if uses:
            offenders[name] = uses
    assert offenders == {}


def test_the_impurity_check_finds_a_clock_read(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("import random\nfrom datetime import datetime\nx = datetime.now()\n")
    assert _impure_uses(path) == ["random", "datetime.now (line 3)"]
