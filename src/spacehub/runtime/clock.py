"""The runtime's clock: what the reconciler reads to decide (plan's ``now``, idle time for sleep, crash times) and
what its timers run on (a plan's ``requeue_after``, a temporary error's retry delay, the periodic sweep, the crash
monitor).

``SystemClock`` in production; ``ManualClock`` in tests, which move time forward by hand (``advance``), so that sleep
after an idle hour, a crash backoff, a start timeout or a periodic pass is tested without waiting (kopf tests its
timers the same way). Real waits stay real: probes polling an app, a visitor waiting for a wake and the drain of
requests in flight measure elapsed time with the event loop.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the epoch (plan's ``now``, build and instance timestamps)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (idle time)."""

    def call_later(self, delay: float, callback: Callable[[], object]) -> None:
        """Call ``callback`` (in the event loop, from which this is called) once ``delay`` seconds have passed."""

    async def sleep(self, seconds: float) -> None:
        """Return once ``seconds`` have passed."""


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def call_later(self, delay: float, callback: Callable[[], object]) -> None:
        asyncio.get_running_loop().call_later(delay, callback)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """Starts at the system's time and moves only when told to (``advance``), which runs the timers that fall due
    (in order, in the caller's event loop): time passes for the reconciler only when a test says so."""

    def __init__(self) -> None:
        self._time, self._monotonic = time.time(), time.monotonic()
        self._timers: list[tuple[float, int, Callable[[], object]]] = []  # (due, order, callback): a heap
        self._order = itertools.count()

    def time(self) -> float:
        return self._time

    def monotonic(self) -> float:
        return self._monotonic

    def call_later(self, delay: float, callback: Callable[[], object]) -> None:
        heapq.heappush(self._timers, (self._monotonic + max(delay, 0.0), next(self._order), callback))

    async def sleep(self, seconds: float) -> None:
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.call_later(seconds, lambda: woken.done() or woken.set_result(None))
        await woken

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and run every timer due by then (call it from the event loop)."""
        self._time += seconds
        self._monotonic += seconds
        while self._timers and self._timers[0][0] <= self._monotonic:
            _, _, callback = heapq.heappop(self._timers)
            callback()
