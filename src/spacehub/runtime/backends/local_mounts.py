"""What one local instance mounts, as ``launch.json`` fields the supervisor acts on: the Space's persistent storage
at /data (a loop-mounted image or a folder, `local_disks`), or a scratch folder of the instance's own when it has no
storage, and its volumes read-only (`local_volumes`).

The supervisor binds them in a private mount namespace (root only): ``data_dir`` or ``ephemeral_data`` on /data, each
``volumes[i].src`` on ``volumes[i].dst``. A Space without storage thus gets a /data of its own that is lost when the
instance stops (HF's ephemeral disk), never the host's /data nor another Space's. Without root the app gets
``SPACE_DATA_DIR`` and ``SPACE_VOLUMES`` (JSON: mount path → host folder) instead, and the status says so.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spacehub.runtime.backends.base import ReleaseSpec
from spacehub.runtime.backends.local_disks import choose_mode, prepare
from spacehub.runtime.backends.local_volumes import materialize
from spacehub.runtime.checkout import RepoFiles

NEEDS_ROOT = "a private mount namespace needs root"


def mounts_for(
    spec: ReleaseSpec,
    data_dir: Path | None,
    inst: Path,
    repos: Callable[[], RepoFiles],
    volumes_root: Path,
    enforcement: str,
    busy: Callable[[], bool],
) -> dict[str, Any]:
    """Prepare the storage (``data_dir``: where ``spec.storage`` lives) and volumes of ``spec`` (create, mount or
    grow the image; check the volumes out) and answer the launch.json fields that describe them. Raises:
    BuildFailed."""
    root = os.geteuid() == 0
    out: dict[str, Any] = {}
    if data_dir is not None and spec.data_limit_bytes is not None:  # without a limit: a plain folder
        mode, why = choose_mode(enforcement, data_dir.parent)
        ready = prepare(data_dir.parent, data_dir.name, spec.data_limit_bytes, mode, busy)
        out["storage"] = {"mode": ready.mode, "limit": spec.data_limit_bytes, "why_folder": why, "note": ready.note}
    elif root:
        out["ephemeral_data"] = str(inst / "ephemeral-data")  # made by the supervisor
    if spec.volumes:
        out["volumes"] = [
            {"src": str(src), "dst": v.mount_path, "checkout": str(volumes_root / f"{v.repo_id}-{v.revision}")}
            for v in spec.volumes
            for src in [materialize(volumes_root, v, repos())]
        ]
    if out.get("ephemeral_data") or out.get("volumes") or data_dir is not None:
        out["data_mode"] = "mount" if root else "env"
        out["data_reason"] = NEEDS_ROOT
    return out


def add_container_volumes(command: list[str], volumes: list[dict[str, Any]]) -> None:
    """docker/podman: the volumes as read-only bind mounts (before the image, the last argument)."""
    for v in volumes:
        command[-1:-1] = ["-v", f"{v['src']}:{v['dst']}:ro"]
