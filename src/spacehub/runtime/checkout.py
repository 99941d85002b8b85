"""Write the tree of one commit of a bare repository to a folder, with LFS pointer files replaced by their objects.

Objects are hard-linked from the LFS store when it is on the same filesystem (instant, no extra disk: a 5 GB model
costs nothing per build), copied otherwise. A pointer whose object is missing or has the wrong size fails the build
with a message that names the file.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pygit2

from spacehub.runtime.backends.base import BuildFailed
from spacehub.storage.blobs import MAX_POINTER_SIZE, parse_pointer

FileMode = pygit2.enums.FileMode


@dataclass
class CheckoutStats:
    files: int = 0
    lfs_files: int = 0
    lfs_bytes: int = 0
    copied: int = 0  # LFS objects copied because a hard link was not possible


def lfs_object_path(lfs_dir: Path, oid: str) -> Path:
    return lfs_dir / oid[:2] / oid[2:4] / oid


@dataclass(frozen=True)
class RepoFiles:
    """Where a backend on this machine reads repos (the git store's bare repositories and the LFS blob store), so
    that specs can name code by repo id and commit. Given to the local backend by the composition root; a cluster
    backend fetches snapshots from the Hub instead."""

    git_dir: Callable[[str], Path]  # repo id → its bare repository (`GitStore.path`)
    lfs_dir: Path

    def write(self, repo_id: str, revision: str, dest: Path, log: Callable[[str], None]) -> CheckoutStats:
        """Write ``revision`` of ``repo_id`` into ``dest`` (see `write_checkout`). Raises: BuildFailed."""
        return write_checkout(self.git_dir(repo_id), revision, self.lfs_dir, dest, log)


def write_checkout(
    git_dir: Path, revision: str, lfs_dir: Path, dest: Path, log: Callable[[str], None]
) -> CheckoutStats:
    """Write the tree of ``revision`` into ``dest`` (created, must not exist). Raises: BuildFailed."""
    try:
        repo = pygit2.Repository(str(git_dir))
        tree = repo.revparse_single(revision).peel(pygit2.Tree)
    except (KeyError, ValueError, pygit2.GitError) as e:
        raise BuildFailed(f"Revision {revision} cannot be read from the repository: {e}") from e
    dest.mkdir(parents=True)
    stats = CheckoutStats()
    _write_tree(repo, tree, dest, "", lfs_dir, stats, log)
    return stats


def _write_tree(
    repo: pygit2.Repository,
    tree: pygit2.Tree,
    dest: Path,
    prefix: str,
    lfs_dir: Path,
    stats: CheckoutStats,
    log: Callable[[str], None],
) -> None:
    for entry in tree:
        name = entry.name or ""
        if name in ("", ".", "..", ".git") or "/" in name or "\0" in name:
            raise BuildFailed(f"The repository holds an invalid path: {prefix}{name!r}")
        path = dest / name
        if entry.filemode == FileMode.TREE:
            path.mkdir()
            _write_tree(repo, repo[entry.id], path, f"{prefix}{name}/", lfs_dir, stats, log)
        elif entry.filemode == FileMode.COMMIT:
            log(f"Skipping submodule {prefix}{name} (submodules are not checked out)")
        elif entry.filemode == FileMode.LINK:
            os.symlink(repo[entry.id].data, path)
        else:
            _write_blob(repo[entry.id], path, f"{prefix}{name}", lfs_dir, stats)
            if entry.filemode == FileMode.BLOB_EXECUTABLE:
                path.chmod(0o755)
            stats.files += 1


def _write_blob(blob: pygit2.Blob, path: Path, name: str, lfs_dir: Path, stats: CheckoutStats) -> None:
    pointer = parse_pointer(blob.data) if blob.size <= MAX_POINTER_SIZE else None
    if pointer is None:
        path.write_bytes(blob.data)
        return
    obj = lfs_object_path(lfs_dir, pointer.oid)
    try:
        size = obj.stat().st_size
    except FileNotFoundError:
        raise BuildFailed(
            f"{name} is an LFS file whose object is missing from the server (sha256 {pointer.oid}, "
            f"{pointer.size} bytes): upload it again, e.g. `git lfs push --all`"
        ) from None
    if size != pointer.size:
        raise BuildFailed(f"{name}: the stored LFS object has {size} bytes, the pointer says {pointer.size}")
    try:
        os.link(obj, path)
    except OSError:  # another filesystem, or links not allowed: copy
        shutil.copyfile(obj, path)
        stats.copied += 1
    stats.lfs_files += 1
    stats.lfs_bytes += size
