"""Commits: preupload decisions and applying an NDJSON commit (add, LFS add, delete file, delete folder) atomically.

Large files become LFS objects whatever way they arrive: an inline (base64) file that matches an LFS pattern of
``.gitattributes`` or exceeds ``storage.lfs_threshold_bytes`` is put in the blob store and its pointer committed, as
the Hub does. Every line is validated and every blob written before the branch moves, so a refused or interrupted
commit changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pathspec
from sqlalchemy.orm import Session

from spacehub.errors import (
    BadRequest,
    EntryNotFound,
    PreconditionFailed,
    RevisionNotFound,
)
from spacehub.services import cards, discussions, lfs_objects, spaces, webhooks
from spacehub.services.accounts import Principal
from spacehub.services.context import HubContext, RepoEvent
from spacehub.services.formats import SDKS
from spacehub.services.ndjson import LargeString, iter_ndjson
from spacehub.services.paths import validate_path
from spacehub.storage.blobs import LfsPointer, StagedBlob, Stager, parse_pointer, stage_bytes
from spacehub.storage.db import utcnow
from spacehub.storage.git import EXEC_MODE, FILE_MODE, Change
from spacehub.storage.models import LfsObject, Repo

HEX_PREFIX = re.compile(r"^[0-9a-fA-F]{5,40}$")
UA_VERSION = re.compile(r"hf_hub/(\d+)\.(\d+)")
B64_CHUNK = 4 * 1024 * 1024  # a multiple of 4: every chunk of a base64 text decodes on its own


def lfs_matcher(gitattributes: str) -> pathspec.PathSpec:
    patterns = [line.split()[0] for line in gitattributes.splitlines() if "filter=lfs" in line.split()[1:]]
    return pathspec.PathSpec.from_lines("gitignore", patterns)


def client_version(user_agent: str | None) -> tuple[int, int] | None:
    m = UA_VERSION.search(user_agent or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


COMMIT_ATTEMPTS = 100  # swaps a commit without parentCommit may lose to concurrent writers before it gives up


def full_ref(rev: str) -> str:
    """A branch name (``main``) as its ref (``refs/heads/main``); branch and pull-request refs as they are."""
    return rev if rev.startswith(("refs/heads/", "refs/pr/")) else f"refs/heads/{rev}"


def head_of(ctx: HubContext, repo: Repo, rev: str) -> str:
    """The head of a branch (``main`` or ``refs/heads/main``) or of a pull request (``refs/pr/1``).

    Raises: RevisionNotFound (commits go to existing branches and pull requests only)."""
    ref = full_ref(rev)
    sha = ctx.git.ref_target(repo.id, ref)
    if sha is None:
        raise RevisionNotFound(f"Invalid rev id: {rev}")
    return sha


def _gitattributes(ctx: HubContext, repo: Repo, sha: str) -> str:
    e = ctx.git.entry(repo.id, sha, ".gitattributes")
    if e is None or e.type != "file":
        return ""
    return ctx.git.read_blob(repo.id, e.oid).decode("utf-8", "replace")


# ---- preupload --------------------------------------------------------------------------------------------
def preupload(ctx: HubContext, s: Session, repo: Repo, rev: str, body: Any, user_agent: str | None) -> dict[str, Any]:
    """Upload modes: ``regular`` for every client that may use Xet (≥ 1.20, or unknown), ``lfs`` for LFS-worthy
    files from older clients. ``oid`` is the remote file's id in the mode answered (no-op detection).

    Raises: BadRequest, RevisionNotFound.
    """
    if not isinstance(body, dict) or not isinstance(body.get("files"), list):
        raise BadRequest("Expected a JSON object with a 'files' list")
    sha = head_of(ctx, repo, rev) if not is_sha(rev) else ctx.git.resolve(repo.id, rev)
    rules = lfs_matcher(_gitattributes(ctx, repo, sha))
    ignore_text = body.get("gitIgnore")
    if not isinstance(ignore_text, str):
        e = ctx.git.entry(repo.id, sha, ".gitignore")
        ignore_text = ctx.git.read_blob(repo.id, e.oid).decode("utf-8", "replace") if e and e.type == "file" else ""
    ignore = pathspec.PathSpec.from_lines("gitignore", ignore_text.splitlines())
    version = client_version(user_agent)
    lfs_ok = version is not None and version < (1, 20)
    out = []
    for f in body["files"]:
        if not isinstance(f, dict) or not isinstance(f.get("path"), str):
            raise BadRequest("Each file needs a 'path'")
        path = validate_path(f["path"])
        size = f.get("size") if isinstance(f.get("size"), int) else 0
        lfs = lfs_ok and size > 0 and (rules.match_file(path) or size > ctx.settings.storage.lfs_threshold_bytes)
        item: dict[str, Any] = {
            "path": path,
            "uploadMode": "lfs" if lfs else "regular",
            "shouldIgnore": bool(ignore.match_file(path)) and path != ".gitignore",
        }
        oid = _remote_oid(ctx, s, repo, sha, path, lfs)
        if oid:
            item["oid"] = oid
        out.append(item)
    return {"files": out, "commitOid": sha}


def _remote_oid(ctx: HubContext, s: Session, repo: Repo, sha: str, path: str, lfs: bool) -> str | None:
    e = ctx.git.entry(repo.id, sha, path)
    if e is None or e.type != "file":
        return None
    ptr = parse_pointer(ctx.git.read_blob(repo.id, e.oid)) if e.size <= 1024 else None
    if ptr is None:
        return None if lfs else e.oid
    if lfs:
        return ptr.oid
    obj = s.get(LfsObject, ptr.oid)
    return obj.git_sha1 if obj else None


def is_sha(rev: str) -> bool:
    return len(rev) == 40 and all(c in "0123456789abcdef" for c in rev)


# ---- commit -----------------------------------------------------------------------------------------------
@dataclass
class _Op:
    kind: str
    path: str
    value: dict[str, Any]


def _lines(body: IO[bytes], tmp_dir: Path) -> Iterator[dict[str, Any]]:
    for n, obj in iter_ndjson(body, tmp_dir):
        if not isinstance(obj, dict) or not isinstance(obj.get("value"), dict) or "key" not in obj:
            raise BadRequest(f'Malformed NDJSON at line {n}: expected {{"key": ..., "value": {{...}}}}')
        yield obj


COMMIT_PREFIX = "commit-"
_LOCK = ".lock"  # in a commit folder: locked (flock) by the process working in it, for as long as it lives
_UNLOCKED_GRACE = 600.0  # a folder without its lock this old was left between its creation and its lock


@contextlib.contextmanager
def commit_folder(tmp_dir: Path) -> Iterator[Path]:
    """A temporary folder for one commit's spilled strings, removed afterwards. It holds a lock file that its
    process keeps locked while it lives (the kernel drops the lock when it dies, however it dies), so that
    `remove_leftover_folders` tells a crash's leftovers from a commit under way in another process. The lock is
    taken under another name and renamed into place: a folder with a ``.lock`` always has its lock held or its
    process dead."""
    with tempfile.TemporaryDirectory(dir=tmp_dir, prefix=COMMIT_PREFIX) as tmp:
        fd = os.open(os.path.join(tmp, _LOCK + ".new"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.rename(os.path.join(tmp, _LOCK + ".new"), os.path.join(tmp, _LOCK))
            yield Path(tmp)
        finally:
            os.close(fd)


def remove_leftover_folders(tmp_dir: Path, now: float | None = None) -> list[str]:
    """Remove the commit folders that a crashed process left in ``tmp_dir`` (their lock is free, or they never got
    one and are old); never one that a living process works in. Returns the names removed."""
    removed = []
    now = time.time() if now is None else now
    for folder in sorted(tmp_dir.glob(COMMIT_PREFIX + "*")):
        if not folder.is_dir() or folder.is_symlink():
            continue
        try:
            fd = os.open(folder / _LOCK, os.O_RDONLY)
        except FileNotFoundError:  # between creation and lock: under way, unless it is old
            with contextlib.suppress(OSError):
                if now - folder.stat().st_mtime > _UNLOCKED_GRACE:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed.append(folder.name)
            continue
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its process lives and works in it
            shutil.rmtree(folder, ignore_errors=True)  # its process died: nobody can take the lock back
            removed.append(folder.name)
        finally:
            os.close(fd)
    return removed


def parse_commit(body: IO[bytes], tmp_dir: Path) -> tuple[dict[str, Any], list[_Op]]:
    """Header and operations of an NDJSON commit body; huge inline contents land in files under ``tmp_dir``.

    Raises: BadRequest, Unprocessable.
    """
    lines = _lines(body, tmp_dir)
    header = next(lines, None)
    if header is None or header["key"] != "header":
        raise BadRequest("The first line of a commit must be its header")
    h = header["value"]
    if not isinstance(h.get("summary", ""), str) or not isinstance(h.get("description", ""), str):
        raise BadRequest("Commit summary and description must be strings")
    parent = h.get("parentCommit")
    if parent is not None and (not isinstance(parent, str) or not HEX_PREFIX.match(parent)):
        raise BadRequest("parentCommit must be a commit sha (5 to 40 hex digits)")
    ops = []
    for obj in lines:
        kind, v = obj["key"], obj["value"]
        if kind not in ("file", "lfsFile", "deletedFile", "deletedFolder"):
            raise BadRequest(f"Unknown commit operation {kind!r}")
        path = v.get("path")
        if kind == "deletedFolder" and isinstance(path, str):
            path = path.rstrip("/")
        ops.append(_Op(kind, validate_path(path), v))
    return h, ops


def create_commit(
    ctx: HubContext,
    s: Session,
    p: Principal,
    repo: Repo,
    ref: str,
    body: IO[bytes],
    create_pr: bool = False,
) -> dict[str, Any]:
    """Apply an NDJSON commit to ``ref`` (``refs/heads/{branch}`` or ``refs/pr/{num}``) as one git commit. With
    ``create_pr`` the commit goes to a new pull request against ``ref`` instead, based on ``parentCommit`` or the
    branch's head, titled after the commit. Returns ``commitOid`` (and ``pullRequestNum``).

    Raises: BadRequest / Unprocessable (bad lines, paths, base64, missing LFS objects), RevisionNotFound,
    EntryNotFound (deleting what is not there), PreconditionFailed (stale ``parentCommit``, or a race lost).
    """
    ref = full_ref(ref)  # callers inside the Hub pass a branch name ("main")
    with commit_folder(ctx.settings.tmp_dir) as tmp:
        header, ops = parse_commit(body, tmp)
        head = head_of(ctx, repo, ref)
        parent = header.get("parentCommit")
        if create_pr and parent:
            base = ctx.git.find_commit(repo.id, parent)
            if base is None:
                raise RevisionNotFound(f"Invalid rev id: {parent}")
            head = base
        elif parent and not head.startswith(parent.lower()):
            raise PreconditionFailed("The branch was updated since you opened this page. Please refresh and try again.")
        lfs: set[str] = set()
        changes = _changes(ctx, s, repo, head, ops, p.user_id, lfs)
    summary = header.get("summary") or "Update files"
    message = summary + ("\n\n" + header["description"] if header.get("description") else "")
    assert p.name is not None
    out: dict[str, Any] = {}
    if create_pr:
        title = summary.strip()[:200] if len(summary.strip()) >= 3 else "Update files"
        pr = discussions.open_discussion(
            ctx, s, p, repo, title, header.get("description") or summary, True, ref, head, status="open"
        )
        ref, out["pullRequestNum"] = discussions.pr_ref(pr.num), pr.num
    sha = _land(ctx, repo, ref, head, changes, message, p.name, pinned=bool(parent))
    lfs_objects.committed(s, repo, lfs)  # the repo's own now, whoever uploaded them
    after_commit(ctx, s, repo, ref, sha)
    if ref.startswith("refs/pr/"):
        parents = list(ctx.git.commit_info(repo.id, sha).parents)
        discussions.record_commit(s, repo, int(ref.removeprefix("refs/pr/")), p, sha, summary, parents)
    out["commitOid"] = sha
    return out


def _land(
    ctx: HubContext, repo: Repo, ref: str, head: str, changes: list[Change], message: str, author: str, pinned: bool
) -> str:
    """Commit ``changes`` on ``head`` and move ``ref`` (a branch or a pull request) to it (compare-and-swap). A commit
    without parentCommit asks for "on whatever is current", as on the Hub: when the ref moved meanwhile (a concurrent
    writer won the swap), the same changes go on the new head, again, until they land; a deletion of what the new
    head no longer has is already done. Only a stale parentCommit (``pinned``) answers 412. Each failed swap means
    another commit landed, so the loop ends; ``COMMIT_ATTEMPTS`` bounds it anyway. Raises: PreconditionFailed."""
    email = f"{author}@users.noreply.spacehub"
    for attempt in range(COMMIT_ATTEMPTS):
        try:
            return ctx.git.commit(repo.id, ref, head, changes, message, author, email)
        except PreconditionFailed:
            if pinned or attempt == COMMIT_ATTEMPTS - 1:
                raise
        head = head_of(ctx, repo, ref)
        files = ctx.git.files(repo.id, head)
        changes = [c for c in changes if c.oid is not None or c.path in files]
    raise AssertionError("unreachable")


def after_commit(ctx: HubContext, s: Session, repo: Repo, branch: str, sha: str, old: str | None = None) -> None:
    """Bookkeeping after any commit (API, git push, merge of a pull request): timestamps, the Space's sdk, the event
    for the runtime and the ``repo.content`` event for webhooks. ``branch`` is a branch name or a full ref
    (``refs/pr/1``); ``old`` what the ref pointed at before (default: the commit's first parent)."""
    ref = full_ref(branch)
    repo.updated_at = utcnow()
    if repo.type == "space" and ref == "refs/heads/main":
        from spacehub.services.files import card_data

        sdk = card_data(ctx, repo, sha).get("sdk")
        if isinstance(sdk, str) and sdk in SDKS:
            repo.sdk = sdk
        spaces.under_way(s, repo, building=True)  # what the runtime will say: wait_for_space must not see the old stage
    s.flush()
    ctx.events.publish(RepoEvent("committed", repo.id, repo.type, ref, sha), s)
    if old is None:
        parents = ctx.git.commit_info(repo.id, sha).parents
        old = str(parents[0]) if parents else None
    webhooks.emit(ctx, s, repo, "repo.content", "update", updatedRefs=[webhooks.ref_update(ref, old, sha)])


def _changes(
    ctx: HubContext, s: Session, repo: Repo, head: str, ops: list[_Op], user_id: int | None, lfs: set[str]
) -> list[Change]:
    """The tree changes of ``ops`` on ``head``; ``lfs`` gets the sha256 of every LFS object they reference (each one
    the repo may use: `lfs_objects.allowed`)."""
    files = ctx.git.files(repo.id, head)
    new_attrs = next((op for op in reversed(ops) if op.kind == "file" and op.path == ".gitattributes"), None)
    attrs = _small_content(new_attrs).decode("utf-8", "replace") if new_attrs else _gitattributes(ctx, repo, head)
    rules = lfs_matcher(attrs)
    threshold = ctx.settings.storage.lfs_threshold_bytes
    changes: dict[str, Change] = {}
    for op in ops:
        if op.kind == "file":
            mode = files.get(op.path, (None, FILE_MODE))[1]
            mode = mode if mode in (FILE_MODE, EXEC_MODE) else FILE_MODE
            content = _content(ctx, op)
            size = content.size if isinstance(content, StagedBlob) else len(content)
            lfs_sized = size > 0 and (size > threshold or rules.match_file(op.path))
            if isinstance(content, StagedBlob):
                if lfs_sized:
                    content = _stored(ctx, s, content, lfs).encode()
                else:
                    oid = ctx.git.write_blob_from_file(repo.id, content.path)
                    content.path.unlink(missing_ok=True)
                    changes[op.path] = Change(op.path, oid, mode)
                    continue
            elif (ptr := parse_pointer(content)) is not None:
                # a pointer committed as text: the same rule as lfsFile
                _check_lfs_object(ctx, s, repo, user_id, op.path, ptr.oid, ptr.size)
                lfs.add(ptr.oid)
            elif lfs_sized:
                content = _stored(ctx, s, stage_bytes(ctx.settings.tmp_dir, [content], size), lfs).encode()
            changes[op.path] = Change(op.path, ctx.git.write_blob(repo.id, content), mode)
        elif op.kind == "lfsFile":
            ptr = _lfs_op(ctx, s, repo, user_id, op)
            lfs.add(ptr.oid)
            changes[op.path] = Change(op.path, ctx.git.write_blob(repo.id, ptr.encode()), FILE_MODE)
        elif op.kind == "deletedFile":
            if op.path not in files and not (op.path in changes and changes[op.path].oid):
                if any(f.startswith(op.path + "/") for f in files):
                    raise EntryNotFound(
                        f"{op.path} is a folder, not a file: delete it as a folder (delete_folder, or"
                        " CommitOperationDelete(..., is_folder=True))"
                    )
                raise EntryNotFound(f"A file with this name doesn't exist: {op.path}")
            changes[op.path] = Change(op.path, None)
        else:  # deletedFolder
            prefix = op.path + "/"
            doomed = [f for f in files if f.startswith(prefix)] + [f for f in changes if f.startswith(prefix)]
            if not doomed:
                raise EntryNotFound(f"A folder with this name doesn't exist: {op.path}")
            for f in doomed:
                changes[f] = Change(f, None)
    return list(changes.values())


def _content(ctx: HubContext, op: _Op) -> bytes | StagedBlob:
    """The decoded content of a ``file`` line: bytes, or a staged file when it arrived as a huge string."""
    content, encoding = op.value.get("content"), op.value.get("encoding", "base64")
    if encoding != "base64" or not isinstance(content, str | LargeString):
        raise BadRequest(f"File {op.path}: 'content' must be a base64 string (encoding 'base64')")
    if isinstance(content, str):
        return _b64(op.path, content)
    stager = Stager(ctx.settings.tmp_dir, _decoded_size(content))
    try:
        with content.path.open("rb") as f:
            while chunk := f.read(B64_CHUNK):
                stager.write(_b64(op.path, chunk))
    except BaseException:
        stager.abort()
        raise
    finally:
        content.path.unlink(missing_ok=True)
    return stager.finish()


def _decoded_size(text: LargeString) -> int | None:
    """The size of a base64 text once decoded, if it is well formed: the Stager then computes the git sha1 while it
    writes, instead of reading the whole file again."""
    if text.size % 4:
        return None
    with text.path.open("rb") as f:
        f.seek(max(text.size - 2, 0))
        return text.size // 4 * 3 - f.read().count(b"=")


def _small_content(op: _Op) -> bytes:
    content = op.value.get("content")
    if isinstance(content, LargeString):
        raise BadRequest(f"File {op.path}: too large")
    return _b64(op.path, content) if isinstance(content, str) else b""


def _b64(path: str, data: str | bytes) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"File {path}: content is not valid base64") from None


def _lfs_op(ctx: HubContext, s: Session, repo: Repo, user_id: int | None, op: _Op) -> LfsPointer:
    oid, algo, size = op.value.get("oid"), op.value.get("algo", "sha256"), op.value.get("size")
    if algo != "sha256" or not isinstance(oid, str):
        raise BadRequest(f"LFS file {op.path}: expected algo 'sha256' and an oid")
    return LfsPointer(oid, _check_lfs_object(ctx, s, repo, user_id, op.path, oid, size))


def _check_lfs_object(
    ctx: HubContext, s: Session, repo: Repo, user_id: int | None, path: str, oid: str, size: int | None
) -> int:
    """The stored object's size. Raises: BadRequest when it was never uploaded to this repo (by this user, or
    committed there: `lfs_objects.allowed`; an object of another repo is answered the same as a missing one), or its
    size differs."""
    if not ctx.blobs.has(oid) or not lfs_objects.allowed(ctx, s, repo, oid, user_id):
        raise BadRequest(f"LFS file {path}: object {oid} was not uploaded to this repo (use the LFS batch API first)")
    actual = ctx.blobs.size(oid)
    if size is not None and size != actual:
        raise BadRequest(f"LFS file {path}: size {size} does not match the uploaded object ({actual} bytes)")
    return actual


def _stored(ctx: HubContext, s: Session, staged: StagedBlob, lfs: set[str]) -> LfsPointer:
    ptr = store_lfs(ctx, s, staged)
    lfs.add(ptr.oid)
    return ptr


def store_lfs(ctx: HubContext, s: Session, staged: StagedBlob) -> LfsPointer:
    """Move a staged file into the blob store (recording its git sha1 for no-op detection); returns its pointer."""
    if s.get(LfsObject, staged.sha256) is None:
        s.add(LfsObject(sha256=staged.sha256, size=staged.size, git_sha1=staged.git_sha1))
    ctx.blobs.put_staged(staged)
    return LfsPointer(staged.sha256, staged.size)


def validate_yaml(body: Any) -> dict[str, Any]:
    """``POST /api/validate-yaml``. Raises: BadRequest carrying ``errors`` (the client lists them)."""
    if not isinstance(body, dict) or not isinstance(body.get("content"), str):
        raise BadRequest("Expected {'content': str, 'repoType': str}")
    repo_type = body.get("repoType") if isinstance(body.get("repoType"), str) else "model"
    errors = cards.validate_card(body["content"], repo_type)
    if errors:
        raise BadRequest("Invalid metadata in README.md", errors=[{"message": m} for m in errors], warnings=[])
    return {"errors": [], "warnings": [{"message": m} for m in cards.card_warnings(body["content"], repo_type)]}
