"""The grant exchange on a Space's host: ``?__sign=<URL grant>`` → a host-only cookie, and the same URL without it.

The Space page frames a private Space's app with a short-lived grant in the URL (`services.space_grants`). Here,
on the Space's own host, a grant valid for *this* Space becomes the ``spacehub_token`` cookie (a grant for this
Space only: never a hub token) and the browser is sent to the same URL without the parameter, so neither the grant
nor the cookie ever reaches the app (the proxy strips ``spacehub_token`` from every forwarded request). A grant that
is not valid here is removed and ignored: the request goes on unauthorized (a private Space then answers 404).

The cookie is ``SameSite=None; Secure; Partitioned``: the app lives in an iframe of another site (the Hub's host),
where browsers send no Lax cookie, and where Chromium blocks third-party cookies unless they are partitioned (CHIPS:
kept per top-level site, so the cookie set inside the Hub's page serves only frames of the Hub's page; the "open at
its own URL" link carries a grant of its own and gets a cookie in the Space's own partition). Browsers hold
``http://localhost`` and ``*.localhost`` as secure contexts, so ``Secure`` cookies work there over plain http
(checked in Chromium by tests/ui/test_browser.py); other hosts need https, as hf.space has.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from starlette.types import Scope, Send

from spacehub.proxy.routes import TOKEN_COOKIE, RouteTable

GRANT_PARAM = "__sign"  # services.space_grants.GRANT_PARAM (the proxy does not import services)
COOKIE_MAX_AGE = 12 * 3600
COOKIE_FLAGS = "HttpOnly; Secure; SameSite=None; Partitioned"
_NEEDLE = GRANT_PARAM.encode() + b"="


def has_grant(scope: Scope) -> bool:
    """Whether the query has a ``__sign`` parameter (a byte search first: this runs on every Space request)."""
    query = scope.get("query_string", b"") if scope["type"] == "http" else b""
    return _NEEDLE in query and any(k == GRANT_PARAM for k, _ in parse_qsl(query.decode("latin-1")))


async def exchange(scope: Scope, send: Send, routes: RouteTable, space_id: str) -> None:
    """Answer a request carrying a grant: 303 to the URL without it, with the cookie when the grant is valid."""
    pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    grants = [v for k, v in pairs if k == GRANT_PARAM]
    rest = urlencode([(k, v) for k, v in pairs if k != GRANT_PARAM])
    cookie = routes.exchange_grant(space_id, grants[-1]) if len(grants) == 1 else None
    location = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1") + (f"?{rest}" if rest else "")
    headers = [(b"location", location.encode("latin-1")), (b"cache-control", b"no-store"), (b"content-length", b"0")]
    if cookie is not None:
        value = f"{TOKEN_COOKIE}={cookie}; Path=/; Max-Age={COOKIE_MAX_AGE}; {COOKIE_FLAGS}"
        headers.append((b"set-cookie", value.encode("latin-1")))
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
