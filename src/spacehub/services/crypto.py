"""Space secrets at rest: AES-256-GCM under a server key kept in ``{data_dir}/secrets.key``, and key rotation.

The key file is JSON, created at first start with mode 0600 (never the LFS signing key)::

    {"version": 1, "current": "<key id>", "keys": {"<key id>": "<base64 of 32 random bytes>"}}

Every secret row records the id of the key that encrypted it, so the file may briefly hold an old key next to the
new one during a rotation. A ciphertext is ``nonce (12 bytes) || AES-GCM(value) || tag``; its associated data is
the Space's immutable id and the secret's name, so a ciphertext copied to another Space or another name does not
decrypt. Values are decrypted only to build an app's environment.

Rotation (`rotate_key`, ``spacehub secrets rotate-key``) is safe while the server runs:
1. a new key becomes current; the old keys stay in the file (readable);
2. one transaction re-encrypts every secret under the new key (all or nothing);
3. holding the secrets lock, rows a running server wrote meanwhile under an old key are re-encrypted and the old
   keys are removed from the file. Writers encrypt only while holding the same lock (`lock_secrets`), after
   re-reading the file if it changed, so no row can be left under a removed key.
A crash at any point leaves every secret decryptable; running the command again finishes the job.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from spacehub.storage.db import Database
from spacehub.storage.models import SpaceSecret, Webhook

KEY_FILE_NAME = "secrets.key"
NONCE_BYTES = 12
PG_SECRETS_LOCK = 0x73656372657473  # "secrets": the advisory lock writers of ciphertext hold (PostgreSQL)


class SecretKeyError(Exception):
    """The key file is missing a key, unreadable, or too open: an operator must act (never a client error)."""


def key_path(data_dir: Path) -> Path:
    return data_dir / KEY_FILE_NAME


@dataclass(frozen=True)
class _KeyRing:
    current: str
    keys: dict[str, bytes]
    stamp: tuple[int, int, int]  # (inode, mtime_ns, size) of the file it was read from


def _new_key() -> tuple[str, bytes]:
    return secrets.token_hex(4), AESGCM.generate_key(bit_length=256)


def _write_atomic(path: Path, current: str, keys: dict[str, bytes]) -> None:
    """Write the key file through a 0600 temporary file, fsync, rename: it is whole, old or new, never partial."""
    data = {"version": 1, "current": current, "keys": {k: base64.b64encode(v).decode() for k, v in keys.items()}}
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_key_file(path: Path) -> None:
    """Create the key file with a fresh key unless it exists (safe when several processes start at once)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    key_id, key = _new_key()
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.new")
    data = {"version": 1, "current": key_id, "keys": {key_id: base64.b64encode(key).decode()}}
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first: theirs is the key
            os.link(tmp, path)
    finally:
        tmp.unlink()
    _fsync_dir(path.parent)


def _read(path: Path) -> _KeyRing:
    try:
        st = path.stat()
        raw = path.read_text()
    except OSError as e:
        raise SecretKeyError(f"cannot read the secrets key file {path}: {e.strerror}") from None
    if st.st_mode & 0o077:
        raise SecretKeyError(f"the secrets key file {path} is readable by other users: chmod 600 {path}")
    try:
        data = json.loads(raw)
        keys = {k: base64.b64decode(v, validate=True) for k, v in data["keys"].items()}
        current = data["current"]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise SecretKeyError(f"the secrets key file {path} is damaged") from None
    if current not in keys or any(len(k) != 32 for k in keys.values()):
        raise SecretKeyError(f"the secrets key file {path} is damaged")
    return _KeyRing(current, keys, (st.st_ino, st.st_mtime_ns, st.st_size))


class SecretBox:
    """Encrypts and decrypts Space secrets with the keys of one key file, re-read whenever the file changes (a
    rotation run by the CLI while the server runs)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        ensure_key_file(path)
        self._ring = _read(path)

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> SecretBox:
        return cls(key_path(data_dir))

    def _fresh(self) -> _KeyRing:
        try:
            st = self.path.stat()
        except OSError as e:
            raise SecretKeyError(f"cannot read the secrets key file {self.path}: {e.strerror}") from None
        with self._lock:
            if (st.st_ino, st.st_mtime_ns, st.st_size) != self._ring.stamp:
                self._ring = _read(self.path)
            return self._ring

    @property
    def current_key_id(self) -> str:
        return self._fresh().current

    def encrypt(self, space_id: str, name: str, value: str) -> tuple[str, bytes]:
        """(key id, nonce || ciphertext) of ``value`` under the current key. Hold `lock_secrets` while calling this
        and writing the result, so a concurrent rotation cannot retire the key in between."""
        ring = self._fresh()
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(ring.keys[ring.current]).encrypt(nonce, value.encode(), _aad(space_id, name))
        return ring.current, nonce + sealed

    def decrypt(self, space_id: str, name: str, key_id: str, blob: bytes) -> str:
        """Raises: SecretKeyError when the key is gone or the ciphertext does not belong to this Space and name."""
        ring = self._fresh()
        key = ring.keys.get(key_id)
        if key is None:
            raise SecretKeyError(f"secret {name!r} of Space {space_id} was encrypted with key {key_id!r}, which is "
                                 f"not in {self.path}")  # fmt: skip
        try:
            return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _aad(space_id, name)).decode()
        except InvalidTag:
            raise SecretKeyError(f"secret {name!r} of Space {space_id} does not decrypt (tampered or moved)") from None


def _aad(space_id: str, name: str) -> bytes:
    return b"spacehub-space-secret\x00" + space_id.encode() + b"\x00" + name.encode()


def lock_secrets(s: Session) -> None:
    """Take the lock that writers of ciphertext and the rotation share, for the rest of the transaction."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text(f"SELECT pg_advisory_xact_lock({PG_SECRETS_LOCK})"))
    else:  # SQLite: any write statement takes the database's write lock until the transaction ends
        s.execute(text("UPDATE space_secrets SET key_id = key_id WHERE 1 = 0"))


def _reencrypt(box: SecretBox, rows: list[SpaceSecret]) -> int:
    n = 0
    for row in rows:
        value = box.decrypt(row.repo_id, row.key, row.key_id, row.ciphertext)
        row.key_id, row.ciphertext = box.encrypt(row.repo_id, row.key, value)
        n += 1
    return n


def _reencrypt_webhooks(box: SecretBox, rows: list[Webhook]) -> int:
    """Webhook secrets are sealed with the same key (``webhook:{id}`` in place of a Space id)."""
    for w in rows:
        assert w.secret is not None and w.secret_key_id is not None
        value = box.decrypt(f"webhook:{w.id}", "secret", w.secret_key_id, w.secret)
        w.secret_key_id, w.secret = box.encrypt(f"webhook:{w.id}", "secret", value)
    return len(rows)


def _webhooks_under_old_keys(s: Session, new_id: str) -> list[Webhook]:
    return list(s.scalars(select(Webhook).where(Webhook.secret_key_id.is_not(None), Webhook.secret_key_id != new_id)))


def rotate_key(db: Database, path: Path) -> tuple[str, int]:
    """Re-encrypt every secret under a new key and retire the old ones (see the module docstring for why this is
    safe with a running server and after a crash). Returns (new key id, number of secrets re-encrypted).

    Raises: SecretKeyError (the current file cannot decrypt some secret: nothing is changed then).
    """
    ensure_key_file(path)
    old = _read(path)
    new_id, new_key = _new_key()
    _write_atomic(path, new_id, {**old.keys, new_id: new_key})
    box = SecretBox(path)
    with db.transaction() as s:
        lock_secrets(s)
        count = _reencrypt(box, list(s.scalars(select(SpaceSecret).where(SpaceSecret.key_id != new_id))))
        count += _reencrypt_webhooks(box, _webhooks_under_old_keys(s, new_id))
    while True:  # rows a running server wrote under an old key meanwhile, until there are none
        with db.transaction() as s:
            lock_secrets(s)
            left = list(s.scalars(select(SpaceSecret).where(SpaceSecret.key_id != new_id)))
            hooks = _webhooks_under_old_keys(s, new_id)
            if not left and not hooks:  # retire the old keys while holding the lock: no writer can be using one now
                _write_atomic(path, new_id, {new_id: new_key})
                return new_id, count
            count += _reencrypt(box, left) + _reencrypt_webhooks(box, hooks)
