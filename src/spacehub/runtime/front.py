"""`FrontDoor`: the runtime of this process behind the Hub's `services.runtime.Runtime` protocol.

The Hub's services and handlers reach the reconciler and the storage monitor only through it (never through
``app.state``), and only with notices: what to do is read from the committed database by the reconciler's pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from spacehub.runtime.backends.base import ResourceUsage
from spacehub.runtime.logs import FileLogStream, SpaceLogs

if TYPE_CHECKING:
    from spacehub.runtime.reconciler import Reconciler


class FrontDoor:
    """``check_storage`` measures every Space's storage soon (the local backend's storage monitor), if any."""

    def __init__(self, reconciler: Reconciler, check_storage: Callable[[], None] | None = None) -> None:
        self.reconciler, self.check_storage = reconciler, check_storage

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
        """The usage of the release serving the Space now, measured by its backend."""
        run = self.reconciler.runs.get(space_id)
        if run is None or run.serving is None:
            return None
        return self.reconciler.d.backend.usage(run.serving)

    def logs(self, space_id: str, kind: str) -> FileLogStream:
        path = SpaceLogs(self.reconciler.logs_root, space_id).path(kind)
        return FileLogStream(path, kind, lambda: self.stage(space_id))
