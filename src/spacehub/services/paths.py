"""Repo path rules, shared by API commits and git pushes (kept free of heavy imports: the push hook loads it)."""

from __future__ import annotations

from typing import Any

from spacehub.errors import Unprocessable

MAX_PATH_BYTES = 4096
MAX_SEGMENT_BYTES = 255
MAX_PATH_DEPTH = 128  # folders + file name; far below git's core.maxTreeDepth (4096) and Python's recursion limit


def validate_path(path: Any) -> str:
    """A repo path as the Hub accepts it. Raises: Unprocessable (``..``, absolute, ``.git``, NUL, too long or deep)."""
    if not isinstance(path, str) or not path:
        raise Unprocessable("Invalid path: empty or not a string")
    if "\0" in path or "\\" in path or any(ord(c) < 32 for c in path):
        raise Unprocessable(f"Invalid path {path!r}: control characters and backslashes are not allowed")
    if path.startswith("/"):
        raise Unprocessable(f"Invalid path {path!r}: absolute paths are not allowed")
    if len(path.encode()) > MAX_PATH_BYTES:
        raise Unprocessable("Invalid path: too long")
    segments = path.split("/")
    if len(segments) > MAX_PATH_DEPTH:
        raise Unprocessable(f"Invalid path: nested more than {MAX_PATH_DEPTH} levels deep")
    for seg in segments:
        if seg in ("", ".", ".."):
            raise Unprocessable(f"Invalid path {path!r}: empty, '.' or '..' segments are not allowed")
        if seg.lower() == ".git":
            raise Unprocessable(f"Invalid path {path!r}: '.git' is reserved")
        if len(seg.encode()) > MAX_SEGMENT_BYTES:
            raise Unprocessable(f"Invalid path {path!r}: a name is longer than {MAX_SEGMENT_BYTES} bytes")
    return path
