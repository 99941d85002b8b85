"""The storage monitor of the local backend: every ``runtime.storage_check_interval`` seconds (and at once after a
storage change) it

- measures each Space's persistent storage (``storageUsage`` in the runtime): the filesystem's counts for an image,
  a walk of the tree for a folder;
- stops a Space whose *folder* storage holds more than its tier (an image needs no monitor: writes past its size
  fail), by pausing it with the reason, which the runtime shows as ``errorMessage``; ``restart_space`` starts it
  again, and it is stopped again at the next check while it is still over;
- deletes for good the storage no Space owns any more (``delete_space_storage``, deleted Spaces), and the volume
  checkouts no instance uses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spacehub.runtime.backends import local_disks, local_volumes
from spacehub.runtime.periodic import PeriodicCheck
from spacehub.runtime.space_storage import owned_storage, storage_name
from spacehub.storage.db import Database, utcnow
from spacehub.storage.models import Space, SpaceStorage

log = logging.getLogger("spacehub.runtime.storage")
IMAGE_ENFORCEMENT = "ext4 image (loop device): writes past the tier's size fail with 'No space left on device'"


def over_limit_reason(used: int, limit: int) -> str:
    return (
        f"Stopped: the Space's storage holds {used / 1e9:.3g} GB, more than its tier's {limit / 1e9:.3g} GB. Delete "
        "files (or the storage: delete_space_storage), or request a larger tier, then restart the Space."
    )


class StorageMonitor(PeriodicCheck):
    def __init__(self, settings: Any, db: Database, kick: Callable[[str], None]) -> None:
        super().__init__()
        self.settings, self.db, self.kick = settings, db, kick
        self.root: Path = settings.data_dir / "storage"
        self.volumes_root: Path = settings.data_dir / "runtime" / "volumes"
        self.instances_root: Path = settings.data_dir / "runtime" / "instances"
        self.interval = float(settings.runtime.storage_check_interval)

    def failed(self, e: Exception) -> None:
        log.exception("storage check failed")

    # ---- one check -------------------------------------------------------------------------------------------
    def check(self) -> None:
        on_disk = local_disks.names(self.root)  # listed before reading who owns what: see `_owned`
        owned = self._owned()
        for name in sorted(on_disk - set(owned)):
            log.info("deleting storage %s (no Space owns it)", name)
            local_disks.remove(self.root, name)
        for name, (repo_id, tier) in owned.items():
            self._measure(name, repo_id, self.settings.runtime.storage_tier_bytes(tier))
        local_volumes.prune(self.volumes_root, self.instances_root.glob("*/launch.json"))

    def _owned(self) -> dict[str, tuple[str, str]]:
        """storage name → (Space id, tier). A name is on disk only after its key was committed, so storage listed
        before this read and missing from it was deleted."""
        return owned_storage(self.db)

    def _measure(self, name: str, repo_id: str, limit: int) -> None:
        usage = local_disks.usage(self.root, name)
        if usage is None:
            return
        image = local_disks.image_size(self.root, name) is not None
        if image:
            enforcement = IMAGE_ENFORCEMENT
        else:
            why = ("runtime.storage_enforcement is monitor" if self.settings.runtime.storage_enforcement == "monitor"
                   else local_disks.images_supported(self.root) or "the storage was made as a folder")  # fmt: skip
            enforcement = f"usage monitor every {self.interval:g} s, the Space is stopped when over ({why})"
        stopped = False
        with self.db.transaction() as s:
            row, space = s.get(SpaceStorage, repo_id), s.get(Space, repo_id)
            if row is None or space is None or storage_name(repo_id, row.key or "") != name:
                return  # deleted or replaced meanwhile
            row.used_bytes, row.limit_bytes, row.enforcement = usage.used, limit, enforcement[:128]
            row.measured_at = utcnow()
            if not image and usage.used > limit:
                if not space.paused:
                    space.paused, stopped = True, True
                    row.stopped_reason = over_limit_reason(usage.used, limit)[:512]
            elif row.stopped_reason:
                row.stopped_reason = None
        if stopped:
            log.info("stopping Space %s: its storage is over its tier (%d > %d bytes)", repo_id, usage.used, limit)
            self.kick(repo_id)
