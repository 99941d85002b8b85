"""`FrontDoor`: the runtime of this process behind the Hub's `services.runtime.Runtime` protocol, and what the proxy
needs of it (`RouteState`, the `Runs` protocol).

The Hub's services and handlers reach the reconciler and the storage monitor only through it (never through
``app.state``), and only with notices: what to do is read from the committed database by the reconciler's pass.
The proxy reads where each Space's traffic goes now (`Runs.state`), records visits (`touch`) and wakes a sleeping
Space (`serve`). In one process `FrontDoor` answers all of it from the reconciler's memory; with HTTP workers in
other processes, `runtime.control.ControllerClient` answers the same from the controller (`runtime.control`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from spacehub.runtime.backends.base import ResourceUsage
from spacehub.runtime.gpu_usage import GpuSampler
from spacehub.runtime.logs import FileLogStream, SpaceLogs
from spacehub.runtime.types import InstanceState

if TYPE_CHECKING:
    from spacehub.runtime.reconciler import Reconciler, SpaceRun


@dataclass(frozen=True, slots=True)
class RouteState:
    """Where a Space's traffic goes now, as the runtime sees it: its stage, the address of the app that serves it
    (``upstream``: an instance that is ready) and, for a static Space served from git with no app, the revision."""

    stage: str
    upstream: tuple[str, int] | None = None
    static_revision: str | None = None

    def to_json(self) -> list[Any]:
        return [self.stage, list(self.upstream) if self.upstream else None, self.static_revision]

    @classmethod
    def from_json(cls, value: list[Any]) -> RouteState:
        stage, upstream, static = value
        return cls(str(stage), (str(upstream[0]), int(upstream[1])) if upstream else None, static)


def route_state(run: SpaceRun) -> RouteState:
    upstream = None
    if run.serving is not None:
        inst = run.instances.get(run.serving)
        ep = run.endpoints.get(run.serving)
        if inst is not None and inst.state is InstanceState.READY and ep is not None:
            upstream = (ep.host, ep.port)
    static = run.static_revision if run.serving is None else None
    return RouteState(str(getattr(run.stage, "value", run.stage)), upstream, static)


class Runs(Protocol):
    """What the proxy needs of the runtime (`proxy.space_routes.RuntimeRouteTable`)."""

    def state(self, space_id: str) -> RouteState | None:
        """Where the Space's traffic goes now (None: the runtime holds nothing for it: it sleeps). A dict read."""

    def touch(self, space_id: str) -> None:
        """A request reached the Space (its idle clock starts again). Cheap: it runs on every request."""

    async def serve(self, space_id: str, timeout: float) -> RouteState | None:  # noqa: ASYNC109
        """Wake the Space and wait until it serves (or cannot: paused, an error, ``timeout``); its state then."""


class FrontDoor:
    """``check_storage`` measures every Space's storage soon (the local backend's storage monitor), if any;
    ``gpus`` reads this machine's GPUs for the metrics of the Spaces that hold some (None: no GPU figures)."""

    def __init__(
        self,
        reconciler: Reconciler,
        check_storage: Callable[[], None] | None = None,
        gpus: GpuSampler | None = None,
    ) -> None:
        self.reconciler, self.check_storage, self.gpus = reconciler, check_storage, gpus

    # ---- services.runtime.Runtime ------------------------------------------------------------------------------
    def space_changed(self, space_id: str) -> None:
        self.reconciler.kick_threadsafe(space_id)

    def wake(self, space_id: str) -> None:
        self.reconciler.touch(space_id)

    def storage_changed(self, space_id: str) -> None:
        if self.check_storage is not None:
            self.check_storage()

    def stage(self, space_id: str) -> str | None:
        run = self.reconciler.runs.get(space_id)
        return run.stage if run is not None else None

    def usage(self, space_id: str) -> ResourceUsage | None:
        """The usage of the release serving the Space now, measured by its backend, with the figures of the GPUs
        that release was given (and no other)."""
        run = self.reconciler.runs.get(space_id)
        if run is None or run.serving is None:
            return None
        serving = run.serving
        usage = self.reconciler.d.backend.usage(serving)
        devices = run.devices.get(serving, ())
        if usage is None or not devices or self.gpus is None:
            return usage
        figures = self.gpus.figures(devices)
        return replace(usage, gpus=figures) if figures else usage

    def logs(self, space_id: str, kind: str) -> FileLogStream:
        path = SpaceLogs(self.reconciler.logs_root, space_id).path(kind)
        return FileLogStream(path, kind, lambda: self.stage(space_id))

    # ---- Runs --------------------------------------------------------------------------------------------------
    def state(self, space_id: str) -> RouteState | None:
        run = self.reconciler.runs.get(space_id)
        return route_state(run) if run is not None else None

    def touch(self, space_id: str) -> None:
        self.reconciler.touch(space_id)

    async def serve(self, space_id: str, timeout: float) -> RouteState | None:  # noqa: ASYNC109
        await self.reconciler.wake(space_id, timeout=timeout)
        return self.state(space_id)
