"""Volumes of local Spaces: repos (models, datasets, Spaces) checked out at a commit and bound read-only in the app.

A checkout is made like a build's (`runtime.checkout`: LFS files are hard links to the blob store, so a 5 GB model
costs no disk) into ``{root}/volumes/<repo id>-<commit>/``, written into a temporary folder and renamed, so it exists
whole or not at all. One checkout serves every Space that mounts that commit. Checkouts no running instance names
are removed by `prune` once they are older than a grace period (a start may be about to use them).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from spacehub.runtime.backends.base import BuildFailed, VolumeMount
from spacehub.runtime.backends.local_build import file_lock
from spacehub.runtime.checkout import RepoFiles

PRUNE_AFTER = 600.0  # seconds an unused checkout is kept


def materialize(root: Path, vol: VolumeMount, repos: RepoFiles) -> Path:
    """The host folder to bind at ``vol.mount_path``: the checkout of ``vol.revision`` (made on first use), or its
    ``path`` folder. Raises: BuildFailed (unreadable revision, missing LFS object, no such folder)."""
    name = f"{vol.repo_id}-{vol.revision}"
    final = root / name
    with file_lock(root / ".locks" / name):
        if not final.is_dir():
            tmp = root / f".tmp-{name}-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                repos.write(vol.repo_id, vol.revision, tmp, lambda line: None)
                tmp.rename(final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        os.utime(final)  # recently used: kept by `prune`
    src = final / vol.path if vol.path else final
    if not src.is_dir() or not src.resolve().is_relative_to(final.resolve()):
        raise BuildFailed(f"Volume {vol.mount_path}: {vol.path!r} is not a folder of the repo at {vol.revision}")
    return src


def prune(root: Path, launch_files: Iterable[Path], older_than: float = PRUNE_AFTER) -> list[str]:
    """Remove checkouts that no instance's launch.json names and that were not used for ``older_than`` seconds."""
    if not root.is_dir():
        return []
    used: set[str] = set()
    for launch in launch_files:
        try:
            data = json.loads(launch.read_text())
        except (OSError, ValueError):
            continue
        for v in data.get("volumes") or []:
            used.add(Path(v["checkout"]).name)
    removed = []
    now = time.time()
    for d in root.iterdir():
        if d.name.startswith(".") or d.name in used or not d.is_dir():
            continue
        with file_lock(root / ".locks" / d.name):
            try:
                if now - d.stat().st_mtime < older_than:
                    continue
            except FileNotFoundError:
                continue
            shutil.rmtree(d, ignore_errors=True)
        (root / ".locks" / d.name).unlink(missing_ok=True)
        removed.append(d.name)
    return removed
