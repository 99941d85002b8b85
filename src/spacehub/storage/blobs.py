"""BlobStore: the sha256-addressed store of LFS objects. ``LocalBlobStore`` keeps them under ``lfs/ab/cd/<sha256>``.

Writes go to a temporary file in the same filesystem, are hashed while they stream, fsynced, then renamed into
place: an object is either whole or absent, and its name is always its content's hash.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/v1\n"
MAX_POINTER_SIZE = 1024


@dataclass(frozen=True)
class LfsPointer:
    oid: str  # sha256 hex
    size: int

    def encode(self) -> bytes:
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.oid}\nsize {self.size}\n".encode()


def parse_pointer(data: bytes) -> LfsPointer | None:
    """The LFS pointer in ``data``, or None when ``data`` is not a pointer file."""
    if len(data) > MAX_POINTER_SIZE or not data.startswith(LFS_POINTER_PREFIX):
        return None
    fields: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines()[1:]:
        key, _, value = line.partition(" ")
        fields[key] = value
    oid = fields.get("oid", "")
    size = fields.get("size", "")
    if not oid.startswith("sha256:") or not is_sha256(oid[7:]) or not size.isdigit():
        return None
    return LfsPointer(oid[7:], int(size))


def is_sha256(s: str) -> bool:
    return len(s) == 64 and all(c in "0123456789abcdef" for c in s)


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class StagedBlob:
    """A file written to temporary storage with its hashes, ready to become a git blob or an LFS object."""

    path: Path
    size: int
    sha256: str
    git_sha1: str


class BlobStore(Protocol):
    def has(self, oid: str) -> bool: ...
    def size(self, oid: str) -> int: ...
    def path(self, oid: str) -> Path: ...
    def put_staged(self, staged: StagedBlob) -> None: ...
    def delete(self, oid: str) -> None: ...


class LocalBlobStore:
    def __init__(self, root: Path, tmp_dir: Path) -> None:
        self.root = root
        self.tmp_dir = tmp_dir
        root.mkdir(parents=True, exist_ok=True)
        tmp_dir.mkdir(parents=True, exist_ok=True)

    def path(self, oid: str) -> Path:
        if not is_sha256(oid):
            raise ValueError("not a sha256")
        return self.root / oid[:2] / oid[2:4] / oid

    def has(self, oid: str) -> bool:
        return is_sha256(oid) and self.path(oid).is_file()

    def size(self, oid: str) -> int:
        return self.path(oid).stat().st_size

    def put_staged(self, staged: StagedBlob) -> None:
        """Move a staged file into the store under its sha256 (no-op if the object exists already)."""
        dest = self.path(staged.sha256)
        if dest.exists():
            staged.path.unlink(missing_ok=True)
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged.path, dest)
        _fsync_dir(dest.parent)

    def delete(self, oid: str) -> None:
        self.path(oid).unlink(missing_ok=True)


class Stager:
    """Streams bytes to a temporary file while computing sha256 and the git blob sha1 (which needs the size first,
    so callers give the expected size, or the sha1 is computed in a second pass)."""

    def __init__(self, tmp_dir: Path, expected_size: int | None = None) -> None:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="stage-")
        self._f: BinaryIO = os.fdopen(fd, "wb")
        self.path = Path(name)
        self._sha256 = hashlib.sha256()
        self._sha1 = hashlib.sha1(b"blob %d\0" % expected_size) if expected_size is not None else None
        self._expected = expected_size
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self._f.write(chunk)
        self._sha256.update(chunk)
        if self._sha1 is not None:
            self._sha1.update(chunk)
        self.size += len(chunk)

    def abort(self) -> None:
        self._f.close()
        self.path.unlink(missing_ok=True)

    def finish(self) -> StagedBlob:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        if self._sha1 is not None and self.size == self._expected:
            sha1 = self._sha1.hexdigest()
        else:
            sha1 = _file_git_sha1(self.path, self.size)
        return StagedBlob(self.path, self.size, self._sha256.hexdigest(), sha1)


def stage_bytes(tmp_dir: Path, chunks: Iterable[bytes], size: int | None = None) -> StagedBlob:
    st = Stager(tmp_dir, size)
    try:
        for c in chunks:
            st.write(c)
    except BaseException:
        st.abort()
        raise
    return st.finish()


async def stage_stream(tmp_dir: Path, chunks: AsyncIterator[bytes], limit: int) -> StagedBlob:
    """Stage an async byte stream (an HTTP body), refusing more than ``limit`` bytes (ValueError)."""
    st = Stager(tmp_dir)
    try:
        async for c in chunks:
            st.write(c)
            if st.size > limit:
                raise ValueError("too large")
    except BaseException:
        st.abort()
        raise
    return st.finish()


def _file_git_sha1(path: Path, size: int) -> str:
    h = hashlib.sha1(b"blob %d\0" % size)
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
