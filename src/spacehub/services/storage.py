"""A Space's persistent storage and volumes, as the API changes them: ``request_space_storage`` and
``delete_space_storage`` (clients up to 1.33), ``set_space_volumes`` and ``delete_space_volumes`` (1.10 and later),
``storageTier`` and ``volumes`` at create and duplicate (`create_hook`), and their part of the runtime document.

The tier is ``spaces.storage_tier``; ``space_storage`` holds the key that names the storage folder (new after each
deletion, so deleted data is never seen again), the volumes, and what the runtime measured. A change only writes
these rows: the runtime sees a new release (the storage is part of its identity) and restarts the app.
"""

from __future__ import annotations

import json
import posixpath
import secrets
from typing import Any

from sqlalchemy.orm import Session

from spacehub.errors import BadRequest
from spacehub.services import accounts, repos, spaces
from spacehub.services.accounts import ANONYMOUS, Principal
from spacehub.services.context import HubContext
from spacehub.services.formats import iso
from spacehub.storage.db import utcnow
from spacehub.storage.models import Repo, Space, SpaceStorage

TIERS = ("small", "medium", "large")  # in growing order: no way down but deleting
VOLUME_TYPES = ("model", "dataset", "space")
VOLUME_KEYS = {"type", "source", "mountPath", "revision", "readOnly", "path"}
MAX_VOLUMES = 32
MASK = "****/******"  # a private source, to viewers who may not read it (as the Hub shows it)
# Mount paths that would hide the system from the app (these are also the host's folders: mount points are made
# there). /data is the persistent storage's.
SYSTEM_PATHS = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run", "/sbin",
                "/sys", "/tmp", "/usr", "/var")  # fmt: skip


def storage_row(s: Session, repo: Repo) -> SpaceStorage:
    row = s.get(SpaceStorage, repo.id)
    if row is None:
        row = SpaceStorage(repo_id=repo.id)
        s.add(row)
        s.flush()
    return row


def _static(repo: Repo, what: str) -> None:
    if repo.sdk == "static":
        raise BadRequest(f"Static Spaces have no app to give {what} to")


# ---- persistent storage -----------------------------------------------------------------------------------------
def request_storage(settings: Any, s: Session, repo: Repo, tier: object) -> bool:
    """Give the Space ``tier`` (or upgrade it); answers whether anything changed.

    Raises: BadRequest (unknown tier, a smaller tier than the current one, a static Space)."""
    if not isinstance(tier, str) or tier not in TIERS:
        raise BadRequest(f"Invalid storage tier {tier!r}: use one of {', '.join(TIERS)}")
    _static(repo, "storage")
    space, row = spaces.space_row(s, repo), storage_row(s, repo)
    current = space.storage_tier if row.key else None
    if current == tier:
        return False
    if current is not None and TIERS.index(tier) < TIERS.index(current):
        raise BadRequest(f"The Space has {current} storage and a tier cannot be decreased: delete the storage first "
                         f"(delete_space_storage, which deletes its data for good), then request {tier}")  # fmt: skip
    if current is None:
        row.key, row.used_bytes, row.measured_at = secrets.token_hex(4), None, None
    space.storage_tier, space.updated_at = tier, utcnow()
    row.limit_bytes, row.stopped_reason, row.updated_at = settings.runtime.storage_tier_bytes(tier), None, utcnow()
    spaces.under_way(s, repo, building=False)
    return True


def delete_storage(s: Session, repo: Repo) -> bool:
    """Take the storage away; the runtime deletes its data for good. Answers whether the Space had storage."""
    space, row = spaces.space_row(s, repo), s.get(SpaceStorage, repo.id)
    had = space.storage_tier is not None or (row is not None and row.key is not None)
    space.storage_tier, space.updated_at = None, utcnow()
    if row is not None:
        row.key = row.used_bytes = row.limit_bytes = row.enforcement = row.stopped_reason = row.measured_at = None
        row.updated_at = utcnow()
    if had:
        spaces.under_way(s, repo, building=False)
    return had


# ---- volumes ------------------------------------------------------------------------------------------------------
def set_volumes(ctx: HubContext, s: Session, p: Principal, repo: Repo, volumes: object) -> None:
    """Replace the Space's volumes. Every source must be readable by the caller.

    Raises: BadRequest (malformed item, bad mount path, static Space), RepoNotFound / Forbidden (a source the caller
    may not read), RevisionNotFound."""
    if not isinstance(volumes, list):
        raise BadRequest("'volumes' must be a list of {type, source, mountPath, revision?, readOnly?, path?}")
    if len(volumes) > MAX_VOLUMES:
        raise BadRequest(f"At most {MAX_VOLUMES} volumes")
    _static(repo, "volumes")
    items = [_volume(ctx, s, p, i, v) for i, v in enumerate(volumes)]
    paths = sorted(v["mountPath"] for v in items)
    for i, a in enumerate(paths):
        for b in paths[i + 1 :]:
            if b == a or b.startswith(a + "/"):
                raise BadRequest(f"Volumes overlap: {a} and {b}")
    row = storage_row(s, repo)
    row.volumes, row.updated_at = (json.dumps(items) if items else None), utcnow()
    spaces.under_way(s, repo, building=False)


def delete_volumes(s: Session, repo: Repo) -> None:
    """Raises: BadRequest when the Space has no volumes (as the Hub answers)."""
    row = s.get(SpaceStorage, repo.id)
    if row is None or not row.volumes:
        raise BadRequest("The Space has no volumes")
    row.volumes, row.updated_at = None, utcnow()
    spaces.under_way(s, repo, building=False)


def _volume(ctx: HubContext, s: Session, p: Principal, i: int, v: object) -> dict[str, Any]:
    where = f"volumes[{i}]"
    v, mount, sub = _volume_shape(where, v)
    src = repos.get_repo(s, p, v["type"], v["source"])  # RepoNotFound / Forbidden, as any read
    revision = v.get("revision")
    sha = ctx.git.resolve(src.id, revision or "main")  # RevisionNotFound
    if sub is not None:
        entry = ctx.git.entry(src.id, sha, sub)
        if entry is None or entry.type != "directory":
            raise BadRequest(f"{where}.path: {sub!r} is not a folder of {src.full_name} at {revision or 'main'}")
    out = {"type": v["type"], "source": src.full_name, "repoId": src.id, "mountPath": mount}
    return out | ({"revision": revision} if revision else {}) | ({"path": sub} if sub else {})


def _volume_shape(where: str, v: object) -> tuple[dict[str, Any], str, str | None]:
    """The checks that need no database: keys, types, mount path, sub-path. Raises: BadRequest."""
    if not isinstance(v, dict):
        raise BadRequest(f"{where} must be an object")
    unknown = set(v) - VOLUME_KEYS
    if unknown:
        raise BadRequest(f"{where}: unknown keys: {', '.join(sorted(unknown))}")
    for key in ("type", "source", "mountPath"):
        if not isinstance(v.get(key), str) or not v[key]:
            raise BadRequest(f"{where}.{key} is required (a string)")
    for key in ("revision", "path"):
        if v.get(key) is not None and (not isinstance(v[key], str) or not v[key]):
            raise BadRequest(f"{where}.{key} must be a non-empty string")
    if v.get("readOnly") is not None and not isinstance(v["readOnly"], bool):
        raise BadRequest(f"{where}.readOnly must be a boolean")
    if v["type"] not in VOLUME_TYPES:
        extra = " (buckets are not supported by this server)" if v["type"] == "bucket" else ""
        raise BadRequest(f"{where}.type must be one of {', '.join(VOLUME_TYPES)}{extra}")
    if "/" not in v["source"]:
        raise BadRequest(f"{where}.source must be a repo id: namespace/name")
    return v, _mount_path(where, v["mountPath"]), _sub_path(where, v.get("path"))


def _mount_path(where: str, path: str) -> str:
    if not path.startswith("/") or "\0" in path or len(path) > 256:
        raise BadRequest(f"{where}.mountPath must be an absolute path, e.g. /models")
    norm = posixpath.normpath(path)
    if norm != (path.rstrip("/") or "/") or norm.startswith("//"):
        raise BadRequest(f"{where}.mountPath must be a normalized path (no '.', '..' or '//'): {path!r}")
    if norm == "/" or norm == "/data" or norm.startswith("/data/"):
        raise BadRequest(f"{where}.mountPath {norm} collides with /data, the persistent storage's")
    if any(norm == sp or norm.startswith(sp + "/") for sp in SYSTEM_PATHS):
        raise BadRequest(f"{where}.mountPath {norm} would hide system files: choose e.g. /models or /datasets")
    return norm


def _sub_path(where: str, path: str | None) -> str | None:
    if path is None:
        return None
    norm = posixpath.normpath(path.strip("/"))
    if norm in (".", "") or norm.startswith("..") or "\0" in norm:
        raise BadRequest(f"{where}.path must be a folder of the repo, e.g. 'weights'")
    return norm


# ---- create and duplicate -----------------------------------------------------------------------------------------
def create_check(ctx: HubContext, repo_type: str, body: dict[str, Any]) -> None:
    """Refuse a bad ``storageTier`` or ``volumes`` before anything is written (sources are checked by the hook).
    Raises: BadRequest."""
    if repo_type != "space":
        return
    tier = body.get("storageTier")
    if tier is not None and (not isinstance(tier, str) or tier not in TIERS):
        raise BadRequest(f"Invalid storage tier {tier!r}: use one of {', '.join(TIERS)}")
    volumes = body.get("volumes")
    if volumes is not None:
        if not isinstance(volumes, list) or len(volumes) > MAX_VOLUMES:
            raise BadRequest(f"'volumes' must be a list of at most {MAX_VOLUMES} volumes")
        for i, v in enumerate(volumes):
            _volume_shape(f"volumes[{i}]", v)


def create_hook(ctx: HubContext, s: Session, p: Principal, repo: Repo, body: dict[str, Any]) -> None:
    """``storageTier`` and ``volumes`` of ``create_repo`` and of a duplicate (the source's are not copied)."""
    if repo.type != "space":
        return
    if body.get("storageTier") is not None:
        request_storage(ctx.settings, s, repo, body["storageTier"])
    if body.get("volumes") is not None:
        set_volumes(ctx, s, p, repo, body["volumes"])


# ---- the runtime document -----------------------------------------------------------------------------------------
def runtime_fields(s: Session, repo: Repo, viewer: Principal | None) -> dict[str, Any]:
    """``volumes`` (private sources masked for ``viewer``), ``storageUsage`` and the monitor's ``errorMessage``."""
    return fields_of(s, repo, s.get(SpaceStorage, repo.id), viewer)


def fields_of(s: Session, repo: Repo, row: SpaceStorage | None, viewer: Principal | None) -> dict[str, Any]:
    """`runtime_fields` from the Space's storage row ``row`` (None: it has none), read by the caller."""
    out: dict[str, Any] = {"volumes": None}
    if row is None:
        return out
    if row.volumes:
        out["volumes"] = [_shown(s, v, viewer or ANONYMOUS) for v in json.loads(row.volumes)]
    space = s.get(Space, repo.id)
    if space is not None and space.storage_tier and row.key and row.limit_bytes is not None:
        out["storageUsage"] = {
            "used": row.used_bytes,
            "limit": row.limit_bytes,
            "enforcement": row.enforcement,
            "measuredAt": iso(row.measured_at) if row.measured_at else None,
        }
    if row.stopped_reason and space is not None and space.paused:
        out["errorMessage"] = row.stopped_reason
    return out


def _shown(s: Session, v: dict[str, Any], viewer: Principal) -> dict[str, Any]:
    src = s.get(Repo, v["repoId"])
    visible = src is not None and accounts.can_read(viewer, src)
    out = {"type": v["type"], "source": src.full_name if visible and src else MASK, "mountPath": v["mountPath"]}
    out["readOnly"] = True
    return out | {k: v[k] for k in ("revision", "path") if v.get(k)}
