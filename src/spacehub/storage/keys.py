"""Server keys kept in the data dir: 32 random bytes as hex in a file of mode 0600, created at first use.

Creation is atomic across processes (written to a temporary name, fsynced, then hard-linked into place: when another
process made the file first, its key is the key), and the key is read once per process. Deleting a file voids what
it signed (LFS upload URLs, web sessions and private-Space grants).
"""

from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path

_keys: dict[Path, bytes] = {}
_lock = threading.Lock()


def hex_key(path: Path) -> bytes:
    """The key in ``path``, created if missing; cached per process."""
    with _lock:
        if path not in _keys:
            if not path.exists():
                _create(path)
            _keys[path] = bytes.fromhex(path.read_text().strip())
        return _keys[path]


def _create(path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)  # fails if another process created it first: then theirs is the key
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
