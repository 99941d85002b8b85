"""A visitor's hub token never reaches a Space's app: the ``spacehub_token`` cookie and an ``Authorization: Bearer
hf_…`` are read by the proxy (for private Spaces) and stripped before forwarding, on public and private Spaces, over
plain HTTP, streamed bodies and WebSockets, in the embedded proxy and in nginx mode; other cookies and an
``Authorization`` of the app's own scheme reach the app unchanged. Also: nginx's direct path to a Space closes at
once (``close_hosts``), without waiting for a reload."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from spacehub.proxy import RouteTarget, StaticRouteTable, is_hub_authorization, request_token
from spacehub.wiring import closed_and_opened
from tests.proxy.conftest import Proxy, Upstream, start_proxy
from tests.proxy.test_nginx import Front, front, needs_nginx  # noqa: F401  (the nginx fixture)

HUB = "hf_" + "A1b2" * 8 + "zz"  # SpaceHub's format: hf_ + 34 letters and digits
COOKIES = f"theme=dark; spacehub_token={HUB}; lang=fr"
KEPT_COOKIES = "theme=dark; lang=fr"


def test_which_authorization_is_a_hub_token() -> None:
    for value in (f"Bearer {HUB}", f"bearer  {HUB} ", f"BEARER {HUB}", "Bearer hf_not_a_valid_token", b"Bearer hf_x"):
        assert is_hub_authorization(value), value
    for value in ("Bearer app-key-123", "Bearer xhf_abc", "Basic YWxpY2U6aGZfYWJj", "Token hf_abc", "hf_abc", ""):
        assert not is_hub_authorization(value), value


def test_request_token_prefers_hub_credentials_over_an_apps_own_key() -> None:
    assert request_token({"authorization": f"Bearer {HUB}", "cookie": "spacehub_token=hf_other"}) == HUB
    # an app's own Bearer key does not hide the visitor's login cookie
    assert request_token({"authorization": "Bearer app-key", "cookie": f"spacehub_token={HUB}"}) == HUB
    assert request_token({"authorization": "Bearer app-key"}) == "app-key"  # only ever fails the check


def _headers(response: httpx.Response) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in response.json()["headers"]:
        out.setdefault(name, []).append(value)
    return out


async def _ws_headers(port: int, host: str, headers: dict[str, str]) -> dict[str, list[str]]:
    async with connect(
        f"ws://{host}/ws-headers", host="127.0.0.1", port=port, proxy=None, additional_headers=headers
    ) as conn:
        data = json.loads(await conn.recv())
    out: dict[str, list[str]] = {}
    for name, value in data["headers"]:
        out.setdefault(name, []).append(value)
    return out


def check_space(port: int, sub: str, *, auth_cookie: str | None = None) -> None:
    """Every way a visitor's hub token could reach the app, through the front on ``port`` to ``sub``.localhost.
    ``auth_cookie``: for a private Space, the requests that carry no hub token authorize with this cookie."""
    host = f"{sub}.localhost:{port}"
    extra = f"; spacehub_token={auth_cookie}" if auth_cookie else ""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Host": host}, timeout=30) as c:
        # a hub token in both places: neither reaches the app, the other cookies do
        r = c.get("/echo", headers={"Authorization": f"Bearer {HUB}", "Cookie": COOKIES})
        assert r.status_code == 200, r.text
        got = _headers(r)
        assert "authorization" not in got
        assert got["cookie"] == [KEPT_COOKIES]
        # a streamed (chunked) upload: the same head rewrite
        r = c.post(
            "/echo",
            content=iter([b"part 1, ", b"part 2"]),
            headers={"Authorization": f"Bearer {HUB}", "Cookie": COOKIES},
        )
        assert r.status_code == 200 and r.json()["body"] == "part 1, part 2"
        assert "authorization" not in _headers(r) and _headers(r)["cookie"] == [KEPT_COOKIES]
        # only the login cookie: no Cookie header at all
        r = c.get("/echo", headers={"Authorization": f"Bearer {HUB}", "Cookie": f"spacehub_token={HUB}"})
        assert r.status_code == 200 and "cookie" not in _headers(r)
        # the app's own schemes are the app's: forwarded as sent
        for own in ("Bearer app-key-123", "Basic YWxpY2U6czNjcmV0"):
            r = c.get("/echo", headers={"Authorization": own, "Cookie": "theme=dark" + extra})
            assert r.status_code == 200, (own, r.text)
            got = _headers(r)
            assert got["authorization"] == [own]
            assert got["cookie"] == ["theme=dark"]
    ws = asyncio.run(_ws_headers(port, host, {"Authorization": f"Bearer {HUB}", "Cookie": COOKIES}))
    assert "authorization" not in ws and ws["cookie"] == [KEPT_COOKIES], ws
    ws = asyncio.run(_ws_headers(port, host, {"Authorization": "Bearer app-key-123", "Cookie": "a=1" + extra}))
    assert ws["authorization"] == ["Bearer app-key-123"] and ws["cookie"] == ["a=1"], ws


@pytest.fixture
def embedded(upstream: Upstream) -> Iterator[Proxy]:
    table = StaticRouteTable(readers={"alice/secret": {HUB}})
    table.set("app.localhost", RouteTarget.to_upstream("alice/app", "127.0.0.1", upstream.port))
    table.set("secret.localhost", RouteTarget.to_upstream("alice/secret", "127.0.0.1", upstream.port, private=True))
    px = start_proxy(table)
    yield px
    px.server.should_exit = True
    px.thread.join(10)


def test_embedded_public_space_never_gets_hub_tokens(embedded: Proxy) -> None:
    check_space(embedded.port, "app")


def test_embedded_private_space_never_gets_hub_tokens(embedded: Proxy) -> None:
    check_space(embedded.port, "secret", auth_cookie=HUB)
    with embedded.client("secret") as c:  # the check itself still works
        assert c.get("/echo").status_code == 404
        assert c.get("/echo", headers={"Authorization": "Bearer app-key-123"}).status_code == 404
        assert c.get("/echo", headers={"Authorization": "Bearer hf_someone_else"}).status_code == 404


@needs_nginx
@pytest.mark.slow
def test_nginx_never_hands_hub_tokens_to_apps(front: Front, upstream: Upstream) -> None:  # noqa: F811
    front.table.readers["alice/secret"] = {HUB}
    front.table.set(
        "secret.localhost", RouteTarget.to_upstream("alice/secret", "127.0.0.1", upstream.port, private=True)
    )
    pool = front.app.proxy.pool
    check_space(front.port, "app")  # served by nginx itself
    assert pool.opened == 0, "a running public Space went through SpaceHub"
    check_space(front.port, "secret", auth_cookie=HUB)  # nginx → SpaceHub (authorize) → the app
    assert pool.opened > 0
    with front.client() as c:  # a login cookie given twice (host and domain cookies) is cut twice
        r = c.get("/echo", headers={"Cookie": "spacehub_token=a; x=1; spacehub_token=b; y=2"})
        assert _headers(r)["cookie"] == ["x=1; y=2"]


@needs_nginx
@pytest.mark.slow
def test_nginx_direct_path_closes_at_once(front: Front, upstream: Upstream) -> None:  # noqa: F811
    plane, pool = front.app.data_plane, front.app.proxy.pool
    assert plane is not None
    with front.client() as c:
        assert c.get("/echo").status_code == 200 and pool.opened == 0  # nginx serves it
        # the Space turns private: the table says so, and the data plane's direct path closes, no reload
        front.table.set("app.localhost", RouteTarget.to_upstream("alice/app", "127.0.0.1", upstream.port, private=True))
        reloads = plane.reloads
        plane.close_hosts(closed=["app.localhost"])
        for _ in range(20):
            assert c.get("/echo").status_code == 404
        ws_refused: Any = None
        try:
            asyncio.run(_ws_headers(front.port, f"app.localhost:{front.port}", {}))
        except Exception as exc:
            ws_refused = exc
        assert ws_refused is not None and "404" in str(ws_refused)
        assert c.get("/echo", headers={"Authorization": f"Bearer {HUB}"}).status_code == 404
        front.table.readers["alice/app"] = {HUB}
        assert c.get("/echo", headers={"Authorization": f"Bearer {HUB}"}).status_code == 200  # via SpaceHub
        assert plane.reloads == reloads
        # public again: reopened at once
        front.table.set("app.localhost", RouteTarget.to_upstream("alice/app", "127.0.0.1", upstream.port))
        plane.close_hosts(opened=["app.localhost"])
        opened = pool.opened
        assert c.get("/echo").status_code == 200
        assert pool.opened == opened  # nginx again


def test_closed_and_opened() -> None:
    from spacehub.proxy.space_routes import _Space

    pub, priv = _Space("1", False, "index.html"), _Space("2", True, "index.html")
    old = {"a.l": pub, "b.l": pub, "c.l": priv, "d.l": pub}
    new = {"a.l": pub, "b.l": _Space("1", True, "index.html"), "c.l": _Space("2", False, "index.html"), "e.l": pub}
    closed, opened = closed_and_opened(old, new)
    assert sorted(closed) == ["b.l", "d.l"]  # turned private; deleted or moved away
    assert sorted(opened) == ["c.l", "e.l"]  # turned public; a new (or moved) host
    assert closed_and_opened({}, {"p.l": priv}) == (["p.l"], [])  # at startup every private host is closed
