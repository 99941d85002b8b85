"""What a ``git push`` must satisfy, checked in the pre-receive hook like an API commit is checked by
``services.commits``: branches and tags (by writers) and the refs of open pull requests (``refs/pr/N``, by their
authors or writers: ``services.pulls.push_rights``, computed by the server) only, ``main`` never deleted, valid
paths, no file over the request limit, and every LFS pointer's object already in the blob store.

Runs inside ``git receive-pack`` (see ``hook_main``), while the pushed objects sit in git's quarantine: they are
read with the git binary, which finds them there. Only new objects are inspected: what existing refs reach was
checked when it arrived. No database: the blob store is a plain folder.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from spacehub.errors import Unprocessable
from spacehub.services.paths import validate_path
from spacehub.storage.blobs import MAX_POINTER_SIZE, LocalBlobStore, parse_pointer

ZERO = "0" * 40
CONFIG_ENV = "SPACEHUB_HOOK_CONFIG"
MAX_ERRORS = 30
TREE, SUBMODULE, SYMLINK = "40000", "160000", "120000"


@dataclass(frozen=True)
class HookConfig:
    """What the hook needs from the server's settings, passed through the environment of ``git http-backend``."""

    lfs_dir: str
    tmp_dir: str
    max_blob_bytes: int
    lfs_allowed: str | None = None  # a file of the LFS objects (sha256, one a line) the push may reference
    writer: bool = True  # may push branches and tags
    # refs/pr/N → "" when the pusher may push to that pull request, else why not; None (a push straight into the
    # repo on disk, with no server to record it): no pull request's ref
    pull_requests: dict[str, str] | None = None

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, value: str) -> HookConfig:
        return cls(**json.loads(value))


@dataclass(frozen=True)
class RefUpdate:
    old: str
    new: str
    ref: str


def parse_updates(lines: Iterable[str]) -> list[RefUpdate]:
    """pre-receive's stdin: one ``<old> <new> <ref>`` per line."""
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) == 3:
            out.append(RefUpdate(*parts))
    return out


def check_refs(updates: list[RefUpdate], writer: bool = True, pull_requests: dict[str, str] | None = None) -> list[str]:
    errors = []
    for u in updates:
        reason = (pull_requests or {}).get(u.ref)
        if reason is not None and u.ref.startswith("refs/pr/"):
            if u.new == ZERO:
                errors.append(f"{u.ref}: a pull request's ref cannot be deleted (close the pull request instead)")
            elif reason:
                errors.append(f"{u.ref}: {reason}")
        elif not u.ref.startswith(("refs/heads/", "refs/tags/")):
            prs = " and the refs of open pull requests (refs/pr/N)" if pull_requests is not None else ""
            errors.append(f"{u.ref}: only branches (refs/heads/*) and tags (refs/tags/*){prs} can be pushed")
        elif not writer:
            errors.append(f"{u.ref}: only writers of this repo push branches and tags: push to your open pull "
                          "request instead (git push origin HEAD:refs/pr/N)")  # fmt: skip
        elif u.new == ZERO and u.ref == "refs/heads/main":
            errors.append("refs/heads/main: the main branch cannot be deleted")
    return errors


class ObjectReader:
    """One ``git cat-file --batch`` process reading objects on demand (quarantined ones included)."""

    def __init__(self, git_dir: Path) -> None:
        self.proc = subprocess.Popen(
            ["git", "cat-file", "--batch"], cwd=git_dir, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )

    def read(self, oid: str) -> tuple[str, bytes]:
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None
        stdin.write(oid.encode() + b"\n")
        stdin.flush()
        header = stdout.readline().split()
        if len(header) != 3:
            raise KeyError(oid)
        data = _read_exactly(stdout, int(header[2]) + 1)[:-1]
        return header[1].decode(), data

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait()


def _read_exactly(f: IO[bytes], n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise EOFError("git cat-file ended early")
    return data


def new_objects(git_dir: Path, tips: list[str]) -> dict[str, tuple[str, int]]:
    """Objects reachable from ``tips`` and not from any existing ref: oid → (type, size)."""
    listed = subprocess.run(
        ["git", "rev-list", "--objects", "--no-object-names", "--stdin", "--not", "--all"],
        cwd=git_dir,
        input="\n".join(tips) + "\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if not listed.strip():
        return {}
    info = subprocess.run(
        ["git", "cat-file", "--batch-check=%(objectname) %(objecttype) %(objectsize)"],
        cwd=git_dir,
        input=listed,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    out = {}
    for line in info.splitlines():
        parts = line.split()
        if len(parts) == 3:
            out[parts[0]] = (parts[1], int(parts[2]))
    return out


def tree_entries(data: bytes) -> Iterator[tuple[str, bytes, str]]:
    """(mode, name, oid) of a raw tree object: ``<mode> <name>\\0<20-byte id>`` repeated."""
    i = 0
    while i < len(data):
        space = data.index(b" ", i)
        nul = data.index(b"\0", space)
        yield data[i:space].decode(), data[space + 1 : nul], data[nul + 1 : nul + 21].hex()
        i = nul + 21


class PushChecker:
    """Walks the trees of the new commits of a push and collects what is wrong with them."""

    def __init__(self, git_dir: Path, config: HookConfig) -> None:
        self.config = config
        self.git_dir = git_dir
        self.blobs = LocalBlobStore(Path(config.lfs_dir), Path(config.tmp_dir))
        # None (a push straight into the repo on disk): any stored object; else only the repo's and the pusher's
        self.allowed = set(Path(config.lfs_allowed).read_text().split()) if config.lfs_allowed else None
        self.errors: list[str] = []
        self.new: dict[str, tuple[str, int]] = {}
        self._seen_trees: set[tuple[str, str]] = set()
        self._seen_blobs: set[str] = set()

    def check(self, updates: list[RefUpdate]) -> list[str]:
        self.errors = check_refs(updates, self.config.writer, self.config.pull_requests)
        tips = [u.new for u in updates if u.new != ZERO]
        if self.errors or not tips:
            return self.errors
        self.new = new_objects(self.git_dir, tips)
        reader = ObjectReader(self.git_dir)
        try:
            for oid, (kind, _) in self.new.items():
                if kind == "commit" and len(self.errors) < MAX_ERRORS:
                    _, data = reader.read(oid)
                    self._tree(reader, _commit_tree(data), "")
            for oid, (kind, size) in self.new.items():  # blobs no tree names (a tag of a blob)
                if kind == "blob" and oid not in self._seen_blobs:
                    self._size(oid, size, oid)
        finally:
            reader.close()
        return self.errors[:MAX_ERRORS]

    def _tree(self, reader: ObjectReader, oid: str, prefix: str) -> None:
        if (oid, prefix) in self._seen_trees:
            return
        self._seen_trees.add((oid, prefix))
        _, data = reader.read(oid)
        for mode, raw_name, child in tree_entries(data):
            if len(self.errors) >= MAX_ERRORS:
                return
            try:
                path = prefix + raw_name.decode("utf-8")
                validate_path(path)
            except UnicodeDecodeError:
                self.errors.append(f"{prefix}{raw_name!r}: file names must be valid UTF-8")
                continue
            except Unprocessable as e:
                self.errors.append(e.message)
                continue
            if mode == TREE:
                if child in self.new:
                    self._tree(reader, child, path + "/")
            elif mode == SUBMODULE:
                self.errors.append(f"{path}: submodules are not supported")
            elif child in self.new and child not in self._seen_blobs:
                self._seen_blobs.add(child)
                size = self.new[child][1]
                self._size(child, size, path)
                if size <= MAX_POINTER_SIZE and mode != SYMLINK:
                    self._pointer(reader, child, path)

    def _size(self, oid: str, size: int, path: str) -> None:
        limit = self.config.max_blob_bytes
        if size > limit:
            self.errors.append(
                f"{path}: {size} bytes is over the limit of {limit} bytes for a file: track it with git-lfs "
                "(git lfs track, then commit it again)"
            )

    def _pointer(self, reader: ObjectReader, oid: str, path: str) -> None:
        ptr = parse_pointer(reader.read(oid)[1])
        if ptr is None:
            return
        if not self.blobs.has(ptr.oid) or (self.allowed is not None and ptr.oid not in self.allowed):
            self.errors.append(
                f"{path}: the LFS object {ptr.oid} ({ptr.size} bytes) was not uploaded to this repo: upload it with "
                "`git lfs push --all origin` (git-lfs must be installed: `git lfs install`), then push again"
            )
        elif self.blobs.size(ptr.oid) != ptr.size:
            actual = self.blobs.size(ptr.oid)
            self.errors.append(f"{path}: the LFS pointer says {ptr.size} bytes but object {ptr.oid} has {actual}")


def _commit_tree(data: bytes) -> str:
    first = data.split(b"\n", 1)[0].split()
    if len(first) != 2 or first[0] != b"tree":
        raise ValueError("not a commit")
    return first[1].decode()
