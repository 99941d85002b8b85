"""The runtime's clock: what the reconciler reads to decide (plan's ``now``, idle time for sleep, crash times).

``SystemClock`` in production; ``ManualClock`` in tests, which move time forward by hand, so that sleep after an
idle hour, a crash backoff or a start timeout is tested without waiting (kopf tests its timers the same way). Real
waits stay real: probes polling an app and a visitor waiting for a wake measure elapsed time with the event loop.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the epoch (plan's ``now``, build and instance timestamps)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (idle time, drain)."""


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """Starts at the system's time and moves only when told to (``advance``)."""

    def __init__(self) -> None:
        self._time, self._monotonic = time.time(), time.monotonic()

    def time(self) -> float:
        return self._time

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        self._time += seconds
        self._monotonic += seconds
