"""`FrontDoor`: the runtime of this process behind the Hub's `services.runtime.Runtime` protocol.

The Hub's services and handlers reach the reconciler and the storage monitor only through it (never through
``app.state``), and only with notices: what to do is read from the committed database by the reconciler's pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spacehub.runtime.reconciler import Reconciler
    from spacehub.runtime.storage_monitor import StorageMonitor


class FrontDoor:
    def __init__(self, reconciler: Reconciler, storage_monitor: StorageMonitor | None = None) -> None:
        self.reconciler, self.storage_monitor = reconciler, storage_monitor

    def space_changed(self, space_id: str) -> None:
        self.reconciler.kick_threadsafe(space_id)

    def wake(self, space_id: str) -> None:
        self.reconciler.touch(space_id)

    def storage_changed(self, space_id: str) -> None:
        if self.storage_monitor is not None:
            self.storage_monitor.check_soon()

    def stage(self, space_id: str) -> str | None:
        run = self.reconciler.runs.get(space_id)
        return run.stage if run is not None else None
