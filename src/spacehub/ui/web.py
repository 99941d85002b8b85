"""What every page needs: the signed session cookie, CSRF tokens, and rendering.

- The session cookie ``spacehub_session`` holds a session token (`services.sessions`) signed with itsdangerous
  (key ``{data_dir}/session-signing.key``): HttpOnly, SameSite=Lax, host-only (no ``Domain``, so a Space's host
  ``{owner}-{name}.{domain}`` never receives it), Secure when the Hub is reached over https.
- CSRF: a random ``spacehub_csrf`` cookie (HttpOnly, SameSite=Lax) and, in every form, the HMAC of that cookie under
  the server key. A POST whose form token does not match is 403 before anything is read or changed. A cross-site
  page can neither read the cookie nor compute the HMAC; SameSite=Lax is a second wall, not the only one.
- Pages call use cases with `caller(request)`: the session token plays the part of the API's bearer token, so every
  permission check is the API's own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, TimestampSigner
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from spacehub.errors import Forbidden, HubError, Unauthorized
from spacehub.services import accounts, sessions
from spacehub.services.accounts import Principal
from spacehub.services.context import HubContext
from spacehub.services.space_changes import Caller
from spacehub.web.deps import base_url, ctx_of

SESSION_COOKIE = "spacehub_session"
CSRF_COOKIE = "spacehub_csrf"
CSRF_FIELD = "csrf_token"
HERE = Path(__file__).parent
templates = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True), auto_reload=False
)


def when(value: str | None, empty: str = "") -> Markup | str:
    """An API timestamp (ISO 8601, ``…Z``) as people read it, ``2026-12-06 20:39 UTC``, in a ``<time>`` that keeps
    the exact value; ``empty`` when there is none, the value itself when it is not a timestamp."""
    if not value:
        return empty
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return value
    return Markup('<time datetime="{}">{}</time>').format(value, moment.strftime("%Y-%m-%d %H:%M UTC"))


templates.filters["when"] = when


def _key(request: Request) -> bytes:
    return sessions.signing_key(ctx_of(request).settings.data_dir)


def _signer(request: Request) -> TimestampSigner:
    return TimestampSigner(_key(request), salt="spacehub-session")


def session_token(request: Request) -> str | None:
    """The session token of a validly signed, unexpired cookie (whether the session still exists is the
    database's answer, through the use cases)."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        return _signer(request).unsign(raw, max_age=sessions.SESSION_DAYS * 86400).decode()
    except (BadSignature, UnicodeDecodeError):
        return None


def caller(request: Request) -> Caller:
    """Who calls a use case from a page: the session's token and the URL the Hub was reached at."""
    return Caller(session_token(request), base_url(request))


def current_user(request: Request) -> str | None:
    """The signed-in user's name (None: anonymous), read once per request."""
    if not hasattr(request.state, "user"):
        request.state.user = sessions.username(ctx_of(request), session_token(request))
    user: str | None = request.state.user
    return user


def _secure(request: Request) -> bool:
    return base_url(request).startswith("https://")


def set_session(request: Request, response: Response, token: str) -> None:
    value = _signer(request).sign(token).decode()
    response.set_cookie(
        SESSION_COOKIE, value, max_age=sessions.SESSION_DAYS * 86400, httponly=True, samesite="lax",
        secure=_secure(request), path="/",
    )  # fmt: skip


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


# ---- CSRF --------------------------------------------------------------------------------------------------------
def _csrf_mac(request: Request, seed: str) -> str:
    return hmac.new(_key(request), b"spacehub-csrf\n" + seed.encode(), hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """The token every form of this page carries; makes the CSRF cookie when the browser has none yet."""
    seed = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not seed:
        seed = request.state.new_csrf = secrets.token_urlsafe(32)
    return _csrf_mac(request, seed)


def check_csrf(request: Request, form: Any) -> None:
    """Raises: Forbidden (no CSRF cookie, no token in the form, or one that does not match)."""
    seed = request.cookies.get(CSRF_COOKIE)
    sent = form.get(CSRF_FIELD)
    if not seed or not isinstance(sent, str) or not hmac.compare_digest(_csrf_mac(request, seed), sent):
        raise Forbidden("This form has expired or did not come from this site: reload the page and try again")


# ---- rendering ---------------------------------------------------------------------------------------------------
def render(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """``template`` with the page's context (signed-in user, CSRF token); sets the CSRF cookie when new."""
    body = templates.get_template(template).render(
        user=current_user(request), csrf=csrf_token(request), path=request.url.path, **values
    )
    response = HTMLResponse(body, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"  # the Hub's own pages are never framed (clickjacking)
    new = getattr(request.state, "new_csrf", None)
    if new:
        response.set_cookie(CSRF_COOKIE, new, httponly=True, samesite="lax", secure=_secure(request), path="/")
    return response


def error_page(request: Request, err: HubError) -> HTMLResponse:
    return render(request, "error.html", err.status_code, code=err.status_code, message=err.message)


@contextmanager
def unit(request: Request) -> Iterator[tuple[HubContext, Session, Principal]]:
    """A transaction and the page's principal, for read pages: a session that has ended reads as anonymous (the
    page then offers to sign in) rather than failing as a bad API token does."""
    ctx = ctx_of(request)
    with ctx.db.transaction() as s:
        try:
            p = accounts.authenticate(s, session_token(request))
        except Unauthorized:
            p = accounts.ANONYMOUS
        yield ctx, s, p
