"""Self-authorizing LFS transfer URLs: HMAC-SHA256 over (operation, repo id, oid, size, expiry).

huggingface_hub sends no ``Authorization`` on the ``PUT`` to an upload ``href`` (it treats it as a storage URL), so
the URL itself must carry the permission that the batch call checked. The key is 32 random bytes in
``{data_dir}/lfs-signing.key`` (mode 0600), created at first use; deleting it revokes every outstanding URL.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from pathlib import Path

from spacehub.errors import Forbidden
from spacehub.storage.keys import hex_key

KEY_FILE = "lfs-signing.key"


def signing_key(data_dir: Path) -> bytes:
    """The key of ``data_dir``, created (atomically, mode 0600) if missing; cached per process."""
    return hex_key(data_dir / KEY_FILE)


def _mac(key: bytes, op: str, repo_id: str, oid: str, size: int, expires: int) -> str:
    msg = f"spacehub-lfs\n{op}\n{repo_id}\n{oid}\n{size}\n{expires}".encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def sign(key: bytes, op: str, repo_id: str, oid: str, size: int, ttl: int, now: float | None = None) -> dict[str, str]:
    """The query parameters that let ``op`` (upload|download) of ``oid`` in ``repo_id`` through for ``ttl`` s."""
    expires = int(now if now is not None else time.time()) + ttl
    return {"size": str(size), "expires": str(expires), "signature": _mac(key, op, repo_id, oid, size, expires)}


def check(key: bytes, op: str, repo_id: str, oid: str, params: Mapping[str, str], now: float | None = None) -> int:
    """The signed size, if ``params`` is a valid unexpired signature for this operation.

    Raises: Forbidden (missing, malformed, tampered or expired).
    """
    size, expires, signature = params.get("size", ""), params.get("expires", ""), params.get("signature", "")
    if not (size.isdigit() and expires.isdigit() and signature):
        raise Forbidden("This LFS URL is not signed: ask the batch API for a new one")
    good = _mac(key, op, repo_id, oid, int(size), int(expires))
    if not hmac.compare_digest(good, signature):
        raise Forbidden("Invalid signature on this LFS URL")
    if int(expires) < (now if now is not None else time.time()):
        raise Forbidden("This LFS URL has expired: ask the batch API for a new one")
    return int(size)
