"""The storage sweep, for a backend that keeps persistent storage away from this machine (the Kubernetes backend's
claims): the storage no Space owns any more (``delete_space_storage``, a Space deleted) is deleted for good, at
once after a storage change (the Hub's ``storage_changed`` notice), at start and every
``runtime.storage_check_interval`` seconds (a claim a pass made from a read just before the deletion is found by the
next sweep). The local backend's storage monitor does the same for its disks, and measures them.

The backend says what it holds (``storage_names()``, listed before the database is read: storage is made only after
its key was committed, so a name the read misses was deleted) and deletes one (``delete_storage(name)``).
"""

from __future__ import annotations

import logging
from typing import Any

from spacehub.runtime.periodic import PeriodicCheck
from spacehub.runtime.space_storage import owned_storage
from spacehub.storage.db import Database

log = logging.getLogger("spacehub.runtime.storage")


class StorageSweep(PeriodicCheck):
    def __init__(self, db: Database, backend: Any, interval: float) -> None:
        super().__init__()
        self.db, self.backend, self.interval = db, backend, interval

    def failed(self, e: Exception) -> None:  # the cluster away: the next sweep tries again
        log.warning("storage sweep failed: %s", e)

    def check(self) -> list[str]:
        """Delete the storage no Space owns; answers the names deleted."""
        held = set(self.backend.storage_names())  # first: see the module's docstring
        gone = sorted(held - set(owned_storage(self.db)))
        for name in gone:
            log.info("deleting storage %s (no Space owns it)", name)
            self.backend.delete_storage(name)
        return gone
