"""What every benchmark shares: the clocks, timed runs with the sides interleaved, the report's head.

A benchmark times *sides* (taskflow and a hand-written baseline doing the same job) in one
process: `best_times` runs every side once per round, one after the other, so machine noise
hits them alike, and keeps each side's best round. A side is a factory that prepares its
state (a fresh service, say) outside the clock and returns the callable that is timed.

    best = best_times({"taskflow": lambda: job, "baseline": lambda: floor}, repeat=3)
    print(f"{best['taskflow'] / best['baseline']:.1f}x the baseline")

Scripts import it as their neighbour (`import _runner`): run from the repository root
(`python benchmarks/bench_x.py`) the script's folder is on the path; the tests put
`benchmarks/` on it (pyproject's pytest `pythonpath`).
"""

from __future__ import annotations

import gc
import os
import platform
import time
from collections.abc import Callable, Mapping

__all__ = [
    "CLOCKS",
    "Side",
    "best_times",
    "cpu_count",
    "load",
    "machine",
    "per_second",
    "time_run",
]

CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}
"""The clocks a run is timed by: CPU time (steady on a busy machine) or wall time."""

Side = Callable[[], Callable[[], object]]
"""A benchmark side: prepares its state (untimed) and returns the callable that is timed."""


def time_run(run: Callable[[], object], *, clock: str = "wall", collect: bool = True) -> float:
    """Return the seconds `run()` takes by `clock`; gc runs before, and is off during it unless `collect`.

    What `run` returns is dropped after the clock stopped, so freeing it is not timed.
    """
    now = CLOCKS[clock]
    gc.collect()
    if not collect:
        gc.disable()
    try:
        started = now()
        result = run()
        elapsed = now() - started
    finally:
        gc.enable()
    del result
    return elapsed


def best_times(
    sides: Mapping[str, Side], repeat: int = 1, *, clock: str = "wall", collect: bool = True
) -> dict[str, float]:
    """Return each side's best seconds over `repeat` rounds, every side run once in every round."""
    if repeat < 1:
        msg = f"best_times needs at least one round, got repeat={repeat}"
        raise ValueError(msg)
    best = dict.fromkeys(sides, float("inf"))
    for _ in range(repeat):
        for name, side in sides.items():
            best[name] = min(best[name], time_run(side(), clock=clock, collect=collect))
    return best


def per_second(count: float, seconds: float) -> float:
    """Return how many units of work per second `count` in `seconds` is (infinite for no time)."""
    return count / seconds if seconds > 0 else float("inf")


def cpu_count() -> int:
    """Return the CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def machine(*extras: str) -> str:
    """Return the Python version and platform line a report starts with, `extras` appended."""
    line = (
        f"python: {platform.python_implementation()} {platform.python_version()} on "
        f"{platform.platform()} ({platform.machine()}, {cpu_count()} CPUs)"
    )
    return ", ".join((line, *extras))


def load() -> str:
    """Return the machine's load averages (1, 5, 15 minutes), or 'unknown'."""
    if not hasattr(os, "getloadavg"):
        return "unknown"
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
