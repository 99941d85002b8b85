"""Grants: how a signed-in reader of a private Space sees its app in the browser, and nobody else does.

The Space page frames the app at its own host with ``?__sign=<URL grant>``: a signature (itsdangerous, the session
signing key) over (Space id, user id), valid for `URL_GRANT_SECONDS`. The proxy, on the Space's host, checks it
against *that* Space, answers a redirect to the same URL without the parameter, and sets a cookie for that host
only (``spacehub_token``, the cookie it already reads and strips) holding a *cookie grant*: the same pair signed
under another salt, valid for `COOKIE_GRANT_SECONDS`. Every request then checks the cookie grant against the
Space it is sent to and whether that user may still read it (the database's answer, as for a token).

So no hub token reaches the Space's host at all (the grant authorizes one Space, not the Hub), a grant signed for
one Space does not open another (the Space id is signed), a URL grant is useless after a minute, and the cookie
grants of a Space revoke themselves when the user loses read access or the key is deleted.
"""

from __future__ import annotations

from pathlib import Path

from itsdangerous import BadSignature, TimestampSigner

from spacehub.services import accounts
from spacehub.services.context import HubContext
from spacehub.services.sessions import signing_key
from spacehub.storage.models import Account, Repo

GRANT_PARAM = "__sign"
COOKIE_PREFIX = "sg."  # never "hf_": the proxy tells a grant from a hub token by it
URL_GRANT_SECONDS = 60
COOKIE_GRANT_SECONDS = 12 * 3600


def _signer(data_dir: Path, kind: str) -> TimestampSigner:
    return TimestampSigner(signing_key(data_dir), salt=f"spacehub-space-grant-{kind}")


def _sign(data_dir: Path, kind: str, space_id: str, user_id: int) -> str:
    return _signer(data_dir, kind).sign(f"{space_id}.{user_id}").decode()


def _check(data_dir: Path, kind: str, value: str, space_id: str, max_age: int) -> int | None:
    try:
        payload = _signer(data_dir, kind).unsign(value, max_age=max_age).decode()
    except (BadSignature, UnicodeDecodeError):
        return None
    signed_space, _, user = payload.rpartition(".")
    return int(user) if signed_space == space_id and user.isdigit() else None


def sign_url_grant(data_dir: Path, space_id: str, user_id: int) -> str:
    return _sign(data_dir, "url", space_id, user_id)


def exchange(data_dir: Path, space_id: str, url_grant: str) -> str | None:
    """The cookie grant for a valid, unexpired URL grant of ``space_id`` (None otherwise)."""
    user_id = _check(data_dir, "url", url_grant, space_id, URL_GRANT_SECONDS)
    if user_id is None:
        return None
    return COOKIE_PREFIX + _sign(data_dir, "cookie", space_id, user_id)


def is_grant(value: str) -> bool:
    return value.startswith(COOKIE_PREFIX)


def may_read(ctx: HubContext, space_id: str, cookie_grant: str) -> bool:
    """Whether a cookie grant opens ``space_id`` now: signed for this Space, unexpired, and its user may read it."""
    user_id = _check(ctx.settings.data_dir, "cookie", cookie_grant[len(COOKIE_PREFIX):], space_id,
                     COOKIE_GRANT_SECONDS)  # fmt: skip
    if user_id is None:
        return False
    with ctx.db.transaction() as s:
        user, repo = s.get(Account, user_id), s.get(Repo, space_id)
        if user is None or repo is None:
            return False
        return accounts.can_read(accounts.principal_of(s, user, "read"), repo)
