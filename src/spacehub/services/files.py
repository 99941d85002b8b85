"""Reading a repo's files: tree listings, paths-info, siblings, card data, and what ``/resolve/`` serves."""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygit2

from spacehub.errors import EntryNotFound
from spacehub.services import cards
from spacehub.services.context import HubContext
from spacehub.services.formats import iso
from spacehub.storage.blobs import MAX_POINTER_SIZE, LfsPointer, parse_pointer
from spacehub.storage.git import TreeEntry, lookup
from spacehub.storage.models import Repo

LAST_COMMIT_WALK_LIMIT = 2000


@dataclass(frozen=True)
class ResolvedFile:
    commit: str
    path: str
    blob_oid: str
    size: int
    lfs: LfsPointer | None
    lfs_path: Path | None  # where the content lives when ``lfs`` (None: object missing, serve the pointer)

    @property
    def etag(self) -> str:
        return self.lfs.oid if self.lfs and self.lfs_path else self.blob_oid


def pointer_of(ctx: HubContext, repo_id: str, entry: TreeEntry) -> LfsPointer | None:
    if entry.type != "file" or entry.size > MAX_POINTER_SIZE:
        return None
    return parse_pointer(ctx.git.read_blob(repo_id, entry.oid))


def describe(ctx: HubContext, repo_id: str, entry: TreeEntry) -> dict[str, Any]:
    """A ``RepoFile`` / ``RepoFolder`` JSON entry (git blob sha1 ``oid``; ``lfs`` for pointers; never ``xetHash``)."""
    if entry.type == "directory":
        return {"type": "directory", "oid": entry.oid, "size": 0, "path": entry.path}
    out: dict[str, Any] = {"type": "file", "oid": entry.oid, "size": entry.size, "path": entry.path}
    ptr = pointer_of(ctx, repo_id, entry)
    if ptr is not None:
        out["size"] = ptr.size
        out["lfs"] = {"oid": ptr.oid, "size": ptr.size, "pointerSize": entry.size}
    return out


def add_last_commits(ctx: HubContext, repo_id: str, sha: str, items: list[dict[str, Any]]) -> None:
    """Set ``lastCommit`` on each entry: the newest commit that changed it (a bounded walk of the history)."""
    wanted = {it["path"]: it for it in items}
    if not wanted:
        return
    repo = ctx.git.open(repo_id)
    walker = repo.walk(pygit2.Oid(hex=sha), pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.TIME)
    for n, commit in enumerate(walker):
        if not wanted or n >= LAST_COMMIT_WALK_LIMIT:
            break
        parent_tree = commit.parents[0].tree if commit.parents else None
        for path in list(wanted):
            mine = _oid_at(commit.tree, path)
            theirs = _oid_at(parent_tree, path) if parent_tree is not None else None
            if mine != theirs:
                it = wanted.pop(path)
                title = commit.message.split("\n", 1)[0]
                it["lastCommit"] = {"id": str(commit.id), "title": title, "date": iso(_commit_date(commit))}


def _oid_at(tree: pygit2.Tree, path: str) -> str | None:
    try:
        return str(lookup(tree, path).id)
    except KeyError:
        return None


def _commit_date(commit: pygit2.Commit) -> Any:
    import datetime as dt

    return dt.datetime.fromtimestamp(commit.commit_time, dt.UTC)


def tree(ctx: HubContext, repo: Repo, sha: str, path: str, recursive: bool, expand: bool) -> list[dict[str, Any]]:
    """Raises: EntryNotFound when ``path`` is not a folder at ``sha``."""
    try:
        entries = list(ctx.git.list_tree(repo.id, sha, path, recursive))
    except KeyError as e:
        raise EntryNotFound(f"Path {path} not found at {sha}", headers={"X-Repo-Commit": sha}) from e
    items = [describe(ctx, repo.id, e) for e in entries]
    if expand:
        add_last_commits(ctx, repo.id, sha, items)
    return items


def paths_info(ctx: HubContext, repo: Repo, sha: str, paths: Iterable[str], expand: bool) -> list[dict[str, Any]]:
    """Entries for the paths that exist (missing ones are left out, as the Hub does)."""
    items = []
    for p in paths:
        e = ctx.git.entry(repo.id, sha, p.strip("/"))
        if e is not None and e.path:
            items.append(describe(ctx, repo.id, e))
    if expand:
        add_last_commits(ctx, repo.id, sha, items)
    return items


_BY_COMMIT_MAX = 1024  # (repo, commit) entries kept by `_by_commit`
_kept: OrderedDict[tuple[str, str, str, str], Any] = OrderedDict()
_kept_lock = threading.Lock()


def _by_commit(ctx: HubContext, kind: str, repo: Repo, sha: str, read: Callable[[], Any]) -> Any:
    """What ``read`` answers of a commit, kept (least recently used out): a commit never changes, so the file names
    and the card of the commit an info read shows are worked out once, not on every `space_info`."""
    key = (str(ctx.git.root), kind, repo.id, sha)
    with _kept_lock:
        if key in _kept:
            _kept.move_to_end(key)
            return _kept[key]
    value = read()
    with _kept_lock:
        _kept[key] = value
        while len(_kept) > _BY_COMMIT_MAX:
            _kept.popitem(last=False)
    return value


def siblings(ctx: HubContext, repo: Repo, sha: str, with_blobs: bool) -> list[dict[str, Any]]:
    """The files of the commit (``rfilename``; with sizes, blob ids and LFS facts when ``with_blobs``)."""
    if not with_blobs:  # a commit's names never change (sizes read LFS objects, which may arrive later: not kept)
        names = _by_commit(ctx, "names", repo, sha, lambda: _siblings(ctx, repo, sha, False))
        return [dict(item) for item in names]
    return _siblings(ctx, repo, sha, True)


def _siblings(ctx: HubContext, repo: Repo, sha: str, with_blobs: bool) -> list[dict[str, Any]]:
    out = []
    for e in ctx.git.list_tree(repo.id, sha, "", True):
        if e.type != "file":
            continue
        item: dict[str, Any] = {"rfilename": e.path}
        if with_blobs:
            d = describe(ctx, repo.id, e)
            item.update(size=d["size"], blobId=e.oid)
            if "lfs" in d:
                item["lfs"] = {"size": d["lfs"]["size"], "sha256": d["lfs"]["oid"], "pointerSize": e.size}
        out.append(item)
    return out


def card_data(ctx: HubContext, repo: Repo, sha: str) -> dict[str, Any]:
    """The README's metadata at the commit (a copy the caller may change)."""
    return copy.deepcopy(_by_commit(ctx, "card", repo, sha, lambda: _card_data(ctx, repo, sha)))


def _card_data(ctx: HubContext, repo: Repo, sha: str) -> dict[str, Any]:
    e = ctx.git.entry(repo.id, sha, "README.md")
    if e is None or e.type != "file" or e.size > 1024 * 1024:
        return {}
    return cards.parse_card(ctx.git.read_blob(repo.id, e.oid).decode("utf-8", "replace"))


def resolve_file(ctx: HubContext, repo: Repo, sha: str, path: str) -> ResolvedFile:
    """Raises: EntryNotFound (carries the commit, for the client's negative cache)."""
    e = ctx.git.entry(repo.id, sha, path) if path else None
    if e is None or e.type != "file":
        raise EntryNotFound(f"Entry not found: {path}", headers={"X-Repo-Commit": sha})
    ptr = pointer_of(ctx, repo.id, e)
    if ptr is not None and ctx.blobs.has(ptr.oid):
        return ResolvedFile(sha, path, e.oid, ptr.size, ptr, ctx.blobs.path(ptr.oid))
    return ResolvedFile(sha, path, e.oid, e.size, ptr, None)
