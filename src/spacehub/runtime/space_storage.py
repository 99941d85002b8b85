"""A Space's persistent storage and volumes as the runtime needs them (`StorageReader`, called by desired.py): the
tier is ``spaces.storage_tier``; the storage folder's key and the volumes are in ``space_storage``.

The storage is named ``<space id>-<key>``; the backend keeps it (locally ``{data_dir}/storage/<name>``, see
`backends.local_disks`) outside every build and release, so it outlives restarts, rebuilds and hardware changes; a
deletion makes a new key, so new storage starts empty. Volumes name their source repo by database id (a rename
changes nothing) and a revision that is resolved to a commit each time the desired state is read: a new release (a
restart) mounts the newest commit of a branch, while a running app keeps the commit it started with (a commit to a
source never restarts the Spaces that mount it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from spacehub.errors import RevisionNotFound
from spacehub.runtime.backends.base import VolumeMount
from spacehub.storage.db import Database
from spacehub.storage.git import GitStore
from spacehub.storage.models import Repo, Space, SpaceStorage

HF_HOME = "/data/.huggingface"  # HF's advice for Spaces with storage: model caches survive restarts


@dataclass(frozen=True)
class StorageSpec:
    name: str | None = None  # the persistent storage's name (None: no persistent storage)
    limit_bytes: int | None = None
    volumes: tuple[VolumeMount, ...] = ()
    identity: tuple[Any, ...] = ()  # changes when the app must restart to see a change
    env: dict[str, str] = field(default_factory=dict)
    cold_start: bool = False  # the storage must grow: stop the running release before starting the new one
    problem: str | None = None  # a volume that cannot be mounted (its source is gone): a configuration error


def storage_name(repo_id: str, key: str) -> str:
    return f"{repo_id}-{key}"


def owned_storage(db: Database) -> dict[str, tuple[str, str]]:
    """storage name → (Space id, tier): the storage Spaces own now. Storage is made only after its key was committed,
    so a name a backend held before this read and missing from it was deleted (list first, then read this)."""
    with db.transaction() as s:
        rows = s.execute(
            select(SpaceStorage.repo_id, SpaceStorage.key, Space.storage_tier)
            .join(Space, Space.repo_id == SpaceStorage.repo_id)
            .where(SpaceStorage.key.is_not(None), Space.storage_tier.is_not(None))
        ).all()
    return {storage_name(r, k): (r, t) for r, k, t in rows}


def parse_volumes(text: str | None) -> list[dict[str, Any]]:
    return list(json.loads(text)) if text else []


class StorageReader:
    """``reader(session, repo)`` → the Space's `StorageSpec`, or None when it has neither storage nor volumes.
    ``provisioned(name)`` is the backend's `storage_size`: the size storage ``name`` has now."""

    def __init__(self, settings: Any, git: GitStore, provisioned: Callable[[str], int | None]) -> None:
        self.settings, self.git, self.provisioned = settings, git, provisioned

    def __call__(self, s: Session, repo: Repo) -> StorageSpec | None:
        space, row = s.get(Space, repo.id), s.get(SpaceStorage, repo.id)
        tier = space.storage_tier if space is not None else None
        volumes = parse_volumes(row.volumes if row is not None else None)
        if (not tier or row is None or not row.key) and not volumes:
            return None
        name, limit, cold, env = None, None, False, {}
        if tier and row is not None and row.key:
            name, limit = storage_name(repo.id, row.key), self.settings.runtime.storage_tier_bytes(tier)
            size = self.provisioned(name)
            cold, env = size is not None and size < limit, {"HF_HOME": HF_HOME}
        mounts = []
        for v in volumes:
            mount = self._mount(s, v)
            if isinstance(mount, str):
                return StorageSpec(problem=mount)
            mounts.append(mount)
        identity = (name, limit,
                    [(v["mountPath"], v["repoId"], v.get("revision"), v.get("path")) for v in volumes])  # fmt: skip
        return StorageSpec(name, limit, tuple(mounts), identity, env, cold)

    def _mount(self, s: Session, v: dict[str, Any]) -> VolumeMount | str:
        """The volume ready to mount, or why it cannot be."""
        src = s.get(Repo, v["repoId"])
        where = f"Volume {v['mountPath']}"
        if src is None:
            return f"{where}: the {v['type']} {v['source']} does not exist any more"
        try:
            sha = self.git.resolve(src.id, v.get("revision") or "main")
        except RevisionNotFound:
            return f"{where}: {src.full_name} has no revision {v.get('revision') or 'main'!r}"
        return VolumeMount(v["mountPath"], src.id, sha, v.get("path"))
