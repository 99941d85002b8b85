"""Use cases of web sign-in: passwords, sessions and the access tokens a signed-in user manages.

A web session is a token of kind "session" in the tokens table: pages call the same use cases as the API with it
(``Caller(session_token, …)``), so they get exactly the API's permission checks, and signing out deletes it. It is
a write token (the user themself at the keyboard) that expires after `SESSION_DAYS`. Passwords are argon2id hashes
(argon2-cffi's defaults: memory-hard, salted, parameters in the hash so they can be raised later).

Failed sign-ins are throttled per user name and per client address (`SIGN_IN_LIMITS`: past ``limit`` failures in
``window`` seconds a key is refused until its oldest failure leaves the window). The failures are rows in the
database, so every HTTP worker (`server.workers`) and every replica counts the same ones: N workers do not give a
guesser N times the attempts.
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from spacehub.errors import BadRequest, NotFound, TooManyRequests, Unauthorized
from spacehub.services import accounts
from spacehub.services.context import HubContext
from spacehub.services.formats import iso
from spacehub.storage.db import utcnow
from spacehub.storage.keys import hex_key
from spacehub.storage.models import Account, SignInFailure, Token

SESSION_DAYS = 14
MIN_PASSWORD, MAX_PASSWORD = 8, 1024
BAD_SIGN_IN = "Invalid user name or password"
# key prefix → (failures allowed, window in seconds): a guessed password a minute for one account, and a cap per
# client address across names
SIGN_IN_LIMITS = {"user": (5, 300.0), "client": (30, 300.0)}
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """A hash verified against for unknown users, so that sign-in takes the same time either way. Made at the first
    sign-in, not at import: hashing takes ~0.25 s of CPU, which every process importing this module paid (each worker,
    server and CLI call), most of which never sign anyone in."""
    return _hasher.hash("not a password of anyone")


def set_password(s: Session, name: str, password: str) -> None:
    """(An admin command: ``spacehub users create NAME --password``.) Raises: BadRequest (too short or too long),
    NotFound (no such user)."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise BadRequest(f"A password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    user = accounts.get_account(s, name)
    if user is None or user.kind != "user":
        raise NotFound(f"User {name!r} not found")
    user.password_hash = _hasher.hash(password)


def sign_in(ctx: HubContext, name: str, password: str, client: str = "?") -> str:
    """A new session token for ``name``, signing in from address ``client``. Raises: TooManyRequests (too many
    failures for this name or address lately; ``Retry-After`` says when to try again), Unauthorized (unknown user,
    no password set, wrong password: one message for all, so that sign-in does not tell which user names exist)."""
    keys = {"user": f"user:{name.lower()}"[:320], "client": f"client:{client}"[:320]}
    with ctx.db.transaction() as s:
        wait = max(_retry_after(s, keys[kind], *SIGN_IN_LIMITS[kind]) for kind in keys)
    if wait:
        raise TooManyRequests(f"Too many failed sign-ins: try again in {wait} s", headers={"Retry-After": str(wait)})
    try:
        return _check_password(ctx, name, password, keys["user"])
    except Unauthorized:
        with ctx.db.transaction() as s:
            now = utcnow()
            oldest = now - dt.timedelta(seconds=max(window for _, window in SIGN_IN_LIMITS.values()))
            s.execute(delete(SignInFailure).where(SignInFailure.at <= oldest))  # what no window holds any more
            s.add_all([SignInFailure(key=key, at=now) for key in keys.values()])
        raise


def _retry_after(s: Session, key: str, limit: int, window: float) -> int:
    """Seconds until ``key`` may try again (0: now)."""
    now = utcnow()
    since = now - dt.timedelta(seconds=window)
    count, oldest = s.execute(
        select(func.count(), func.min(SignInFailure.at)).where(SignInFailure.key == key, SignInFailure.at > since)
    ).one()
    if count < limit or oldest is None:
        return 0
    return max(1, int((oldest - since).total_seconds() + 0.999))


def _check_password(ctx: HubContext, name: str, password: str, user_key: str) -> str:
    """A new session token once ``password`` is ``name``'s; the name's failures (``user_key``) are forgotten."""
    dummy = _dummy_hash()  # before the lookup: the first sign-in pays for it whoever signs in
    with ctx.db.transaction() as s:
        user = accounts.get_account(s, name) if len(password) <= MAX_PASSWORD else None
        stored = user.password_hash if user is not None and user.kind == "user" else None
        try:
            _hasher.verify(stored or dummy, password)
        except (VerificationError, InvalidHashError):
            raise Unauthorized(BAD_SIGN_IN) from None
        if user is None or stored is None:
            raise Unauthorized(BAD_SIGN_IN)
        if _hasher.check_needs_rehash(stored):
            user.password_hash = _hasher.hash(password)
        s.execute(delete(SignInFailure).where(SignInFailure.key == user_key))
        expires = utcnow() + dt.timedelta(days=SESSION_DAYS)
        return accounts.create_token(s, user.name, "write", "web session", kind="session", expires_at=expires)


def sign_out(ctx: HubContext, session_token: str | None) -> None:
    """Deletes the session (nothing when it is not one)."""
    if not session_token:
        return
    with ctx.db.transaction() as s:
        row = s.scalar(select(Token).where(Token.token_hash == accounts.hash_token(session_token)))
        if row is not None and row.kind == "session":
            s.delete(row)


def _user(s: Session, token: str | None) -> Account:
    p = accounts.authenticate(s, token)
    if p.anonymous or p.user_id is None:
        raise Unauthorized("Sign in first")
    user = s.get(Account, p.user_id)
    assert user is not None
    return user


def list_tokens(ctx: HubContext, token: str | None) -> list[dict[str, Any]]:
    """The caller's access tokens (never their values: only hashes are kept). Raises: Unauthorized."""
    with ctx.db.transaction() as s:
        user = _user(s, token)
        rows = s.scalars(select(Token).where(Token.user_id == user.id, Token.kind == "access").order_by(Token.id))
        return [
            {"id": r.id, "name": r.name, "role": r.role, "createdAt": iso(r.created_at),
             "lastUsedAt": iso(r.last_used_at)}
            for r in rows
        ]  # fmt: skip


def create_access_token(ctx: HubContext, token: str | None, name: str, role: str) -> str:
    """A new access token of the caller's, returned once. Raises: Unauthorized, BadRequest (role, name)."""
    name = name.strip()
    if not name:
        raise BadRequest("Give the token a name")
    with ctx.db.transaction() as s:
        user = _user(s, token)
        return accounts.create_token(s, user.name, role, name)


def revoke_token(ctx: HubContext, token: str | None, token_id: int) -> None:
    """Deletes one of the caller's access tokens. Raises: Unauthorized, NotFound (not theirs, or no such token)."""
    with ctx.db.transaction() as s:
        user = _user(s, token)
        row = s.get(Token, token_id)
        if row is None or row.user_id != user.id or row.kind != "access":
            raise NotFound("No such token")
        s.delete(row)


def username(ctx: HubContext, token: str | None) -> str | None:
    """Who a session token belongs to (None: anonymous, expired or revoked)."""
    if not token:
        return None
    with ctx.db.transaction() as s:
        try:
            p = accounts.authenticate(s, token)
        except Unauthorized:
            return None
        return p.name


# ---- the key that signs session cookies and private-Space grants ------------------------------------------------
KEY_FILE = "session-signing.key"


def signing_key(data_dir: Path) -> bytes:
    """``{data_dir}/session-signing.key`` (`storage.keys`: deleting it signs everyone out and voids every grant).
    Kept like the LFS signing key, and apart from it."""
    return hex_key(data_dir / KEY_FILE)
