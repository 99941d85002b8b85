"""Sleep policy: when an idle Space sleeps, how deeply, and which sleepers give their memory back under pressure.

A Space idle (no request through the proxy) for its sleep time goes to sleep. It is first *frozen* (cgroup freezer:
no CPU, memory kept, wakes in milliseconds), then *stopped* (memory freed, wakes by starting again) after
``runtime.deep_sleep_after`` more seconds, or earlier when this machine runs short of memory: below
``runtime.min_available_memory_mb`` of available memory, frozen Spaces are stopped one at a time, the longest idle
first, until there is enough again. Both count as asleep: the runtime says ``SLEEPING`` with ``sleepMode``
``frozen`` or ``stopped``, and no usage is metered.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from spacehub.runtime.types import SleepMode

MEMINFO = Path("/proc/meminfo")


def available_memory(path: Path = MEMINFO) -> int | None:
    """Bytes of memory available for new work (``MemAvailable``), or None where /proc/meminfo has no such line."""
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1]) * 1024
    return None


def sleep_mode(
    idle: float,
    sleep_time: float,
    deep_after: float,
    evicted: bool = False,
    *,
    visiting: bool = False,
    nothing_runs: bool = False,
    was_asleep: bool = False,
) -> SleepMode:
    """How deeply a Space idle for ``idle`` seconds sleeps (``sleep_time`` < 0: never). Awake whatever the idle
    time while a visitor waits for it (``visiting``: a start may take longer than the sleep time), and while nothing
    runs yet that could sleep (``nothing_runs``: its first build or start) unless it was asleep already."""
    if visiting or (nothing_runs and not was_asleep):
        return SleepMode.AWAKE
    if sleep_time < 0 or idle < sleep_time:
        return SleepMode.AWAKE
    return SleepMode.STOPPED if evicted or idle >= sleep_time + deep_after else SleepMode.FROZEN


def next_sleep_check(idle: float, sleep_time: float, deep_after: float, mode: SleepMode) -> float | None:
    """Seconds from now until a Space idle for ``idle`` seconds, asleep as deeply as ``mode``, may sleep deeper
    with no visit (``sleep_mode``'s answer changes with idle time alone): when its next pass is due. None when it
    never will (it never sleeps, or sleeps stopped already). Awake past its time (a visitor waits for it, its first
    start is under way): look again after a sleep time."""
    if sleep_time < 0 or mode is SleepMode.STOPPED:
        return None
    left = (sleep_time if mode is SleepMode.AWAKE else sleep_time + deep_after) - idle
    return left if left > 0 else max(sleep_time, 1.0)


def eviction_order(frozen: Iterable[tuple[str, float]]) -> list[str]:
    """Frozen Spaces as (space id, last activity), in the order they are stopped under memory pressure: the longest
    idle first (the least likely to be visited soon)."""
    return [space_id for space_id, _ in sorted(frozen, key=lambda x: (x[1], x[0]))]
