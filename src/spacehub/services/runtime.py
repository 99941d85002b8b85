"""The front door to the runtime, as the Hub's services see it: the `Runtime` protocol.

Services own this protocol and never import the runtime: the composition root (`spacehub.wiring`) hands them an
implementation in ``HubContext.runtime`` (`runtime.front.FrontDoor` for a reconciler in this process,
`NoRuntime` when Spaces do not run here). Every call is a notice, safe from any thread, that returns at once: the
runtime acts on it in its own time, reading the committed state of the database, so a front door that forwards
notices to a controller in another process fits the same protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class LogStream(Protocol):
    """One of a Space's logs ("build" or "run"): lines are (ISO timestamp, text)."""

    def backlog(self) -> list[tuple[str, str]]:
        """What is kept now; `more` goes on from there."""

    def more(self) -> list[tuple[str, str]]:
        """The whole lines written since the last call (none: nothing new)."""

    def live(self) -> bool:
        """Whether the Space may still write to it (a follower stops when it may not)."""


class GpuFigures(Protocol):
    """What one GPU a Space holds is doing now (`runtime.backends.base.GpuUsage` is one)."""

    @property
    def utilization(self) -> int: ...  # percent

    @property
    def memory_used_bytes(self) -> int: ...

    @property
    def memory_total_bytes(self) -> int: ...


class Usage(Protocol):
    """What a Space's running instance uses now, as counters (`runtime.backends.base.ResourceUsage` is one): CPU
    seconds and network bytes grow, memory is current; a counter the runtime cannot measure is None. ``gpus``: the
    figures of the GPUs the instance was given, by device id (none: it holds none, or they cannot be read)."""

    cpu_seconds: float
    memory_bytes: int
    rx_bytes: int | None
    tx_bytes: int | None

    @property
    def gpus(self) -> Mapping[str, GpuFigures]: ...


class _NoLog:
    def backlog(self) -> list[tuple[str, str]]:
        return []

    def more(self) -> list[tuple[str, str]]:
        return []

    def live(self) -> bool:
        return False


class Runtime(Protocol):
    def space_changed(self, space_id: str) -> None:
        """What a Space should be (code, settings, hardware, storage, paused) changed and has committed: act on it."""

    def wake(self, space_id: str) -> None:
        """A visit, a restart or a hardware change: a sleeping Space wakes, and its idle clock starts again."""

    def storage_changed(self, space_id: str) -> None:
        """A Space's storage tier or volumes changed: measure its usage soon (a smaller tier may now be exceeded)."""

    def stage(self, space_id: str) -> str | None:
        """The stage the runtime holds for a Space now (fresher than its saved status), or None when it has none."""

    def logs(self, space_id: str, kind: str) -> LogStream:
        """A Space's "build" or "run" log, to read and follow."""

    def usage(self, space_id: str) -> Usage | None:
        """What the instance serving a Space uses now (None: nothing runs, or it cannot be measured)."""


class NoRuntime:
    """No Spaces run here (``runtime.backend = "none"``): notices go nowhere, no stage is known."""

    def space_changed(self, space_id: str) -> None:
        return None

    def wake(self, space_id: str) -> None:
        return None

    def storage_changed(self, space_id: str) -> None:
        return None

    def stage(self, space_id: str) -> str | None:
        return None

    def logs(self, space_id: str, kind: str) -> LogStream:
        return _NoLog()

    def usage(self, space_id: str) -> Usage | None:
        return None
