"""The routing contract end to end: unknown hosts, private Spaces, in-process targets, sleeping Spaces, and the
dispatcher that splits Hub and Space traffic by host."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from starlette.responses import PlainTextResponse

from spacehub.proxy import RouteTarget, StaticRouteTable, request_token
from spacehub.proxy.dispatch import space_host
from tests.proxy.conftest import Proxy, Upstream, start_proxy


def test_hub_traffic_goes_to_the_hub_app(proxy: Proxy) -> None:
    with proxy.client() as c:
        assert c.get("/", headers={"Host": f"localhost:{proxy.port}"}).text == "hub"
        assert c.get("/", headers={"Host": f"127.0.0.1:{proxy.port}"}).text == "hub"
        assert c.get("/", headers={"Host": "notlocalhost"}).text == "hub"
        assert c.get("/", headers={"Host": "APP.LocalHost."}).json()["path"] == "/"  # case and trailing dot


def test_space_host_parsing() -> None:
    suffix = b".spaces.example"
    assert space_host([(b"host", b"a-b.spaces.example:8000")], suffix) == "a-b.spaces.example"
    assert space_host([(b"host", b"spaces.example")], suffix) is None
    assert space_host([(b"host", b".spaces.example")], suffix) is None
    assert space_host([(b"host", b"[::1]:80")], suffix) is None
    assert space_host([], suffix) is None


def test_unknown_space_is_404_page(proxy: Proxy) -> None:
    with proxy.client("nobody") as c:
        r = c.get("/", headers={"Accept": "text/html"})
    assert r.status_code == 404
    assert "Space not found" in r.text and r.headers["content-type"].startswith("text/html")


def test_private_space_is_404_without_a_reader_token(upstream: Upstream) -> None:
    table = StaticRouteTable(readers={"alice/secret": {"hf_good"}})
    table.set("secret.localhost", RouteTarget.to_upstream("alice/secret", "127.0.0.1", upstream.port, private=True))
    px = start_proxy(table)
    try:
        with px.client("secret") as c:
            anonymous = c.get("/echo")
            wrong = c.get("/echo", headers={"Authorization": "Bearer hf_bad"})
            by_header = c.get("/echo", headers={"Authorization": "Bearer hf_good"})
            by_cookie = c.get("/echo", headers={"Cookie": "theme=dark; spacehub_token=hf_good"})
        with px.client("nobody") as c:
            unknown = c.get("/echo")
        assert anonymous.status_code == wrong.status_code == 404
        assert anonymous.text == unknown.text  # indistinguishable from a Space that does not exist
        assert by_header.status_code == by_cookie.status_code == 200
        forwarded = dict(by_header.json()["headers"])
        assert "authorization" not in forwarded  # the visitor's hub token is not handed to the app
        assert dict(by_cookie.json()["headers"])["cookie"] == "theme=dark"
        assert table.last_activity.get("alice/secret")
    finally:
        px.server.should_exit = True


def test_request_token() -> None:
    assert request_token({"authorization": "Bearer abc"}) == "abc"
    assert request_token({"authorization": "bearer  abc "}) == "abc"
    assert request_token({"cookie": "x=1; spacehub_token=tok; y=2"}) == "tok"
    assert request_token({"authorization": "Basic Zm9v"}) is None
    assert request_token({}) is None


def test_asgi_target_is_served_in_process() -> None:
    table = StaticRouteTable()
    table.set("static.localhost", RouteTarget.to_asgi("alice/static", PlainTextResponse("static files here")))
    px = start_proxy(table)
    try:
        with px.client("static") as c:
            r = c.get("/index.html")
        assert r.status_code == 200 and r.text == "static files here"
        assert "alice/static" in table.last_activity
    finally:
        px.server.should_exit = True


def test_route_target_is_exactly_one_kind() -> None:
    with pytest.raises(ValueError):
        RouteTarget("a/b")
    with pytest.raises(ValueError):
        RouteTarget("a/b", upstream=("127.0.0.1", 1), asleep=True)


def sleeping_table(upstream: Upstream, delay: float) -> tuple[StaticRouteTable, threading.Event]:
    """``sleepy.localhost`` is asleep; waking takes ``delay`` seconds and then routes to the upstream app."""
    table = StaticRouteTable()
    table.set("sleepy.localhost", RouteTarget.sleeping("alice/sleepy"))
    woke = threading.Event()

    async def wake() -> RouteTarget:
        await asyncio.sleep(delay)
        woke.set()
        return RouteTarget.to_upstream("alice/sleepy", "127.0.0.1", upstream.port)

    table.wakers["alice/sleepy"] = wake
    return table, woke


def test_asleep_space_request_waits_for_wake(upstream: Upstream) -> None:
    table, woke = sleeping_table(upstream, 1.0)
    px = start_proxy(table)
    try:
        results: list[int] = []

        def call() -> None:
            with px.client("sleepy") as c:
                results.append(c.get("/echo").status_code)

        threads = [threading.Thread(target=call) for _ in range(3)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert results == [200, 200, 200]
        assert time.monotonic() - start >= 0.9
        assert woke.is_set()
        assert table.wake_calls["alice/sleepy"] == 1  # concurrent requests share one wake
        with px.client("sleepy") as c:  # awake now: no more waking
            assert c.get("/echo").status_code == 200
        assert table.wake_calls["alice/sleepy"] == 1
    finally:
        px.server.should_exit = True


def test_browser_gets_waking_page_that_reloads(upstream: Upstream) -> None:
    table, woke = sleeping_table(upstream, 1.0)
    px = start_proxy(table)
    try:
        with px.client("sleepy") as c:
            start = time.monotonic()
            r = c.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
            assert time.monotonic() - start < 0.8  # answered at once, not after the wake
            assert r.status_code == 503
            assert "Waking up" in r.text
            assert '<meta http-equiv="refresh" content="2">' in r.text
            assert r.headers["cache-control"] == "no-store"
            assert woke.wait(10)  # the wake was started by that request
            assert c.get("/", headers={"Accept": "text/html"}).status_code == 200  # the reload finds it awake
    finally:
        px.server.should_exit = True


def test_a_browser_is_told_a_space_builds_and_a_stranger_is_told_nothing(upstream: Upstream) -> None:
    """The target's stage and name reach the waking page: "Building", the link to the build log on the Hub. A
    private Space's page is only for a reader: a stranger's request is the 404 of an unknown host, with nothing of
    the Space in it."""
    table, woke = sleeping_table(upstream, 1.0)
    table.set("sleepy.localhost", RouteTarget.sleeping("alice/sleepy", stage="BUILDING", name="alice/sleepy"))
    table.set("secret.localhost", RouteTarget.sleeping("alice/secret", private=True, stage="BUILDING",
                                                       name="alice/secret"))  # fmt: skip
    table.readers["alice/secret"] = {"hf_reader"}
    table.wakers["alice/secret"] = table.wakers["alice/sleepy"]
    px = start_proxy(table)
    html = {"Accept": "text/html"}
    try:
        with px.client("sleepy") as c:
            r = c.get("/", headers=html)
            assert r.status_code == 503 and "<h1>" in r.text and "Building this Space…" in r.text
            assert '<span class="badge BUILDING">building</span>' in r.text
            hub = f"http://localhost:{px.port}/spaces/alice/sleepy#logs-title"  # the Space host's parent domain
            assert f'<a href="{hub}" target="_blank" rel="noopener">Follow the build in its logs' in r.text
            assert woke.wait(10)
        with px.client("secret") as c:
            for headers in (html, {**html, "Authorization": "Bearer hf_stranger"}):
                r = c.get("/", headers=headers)
                assert r.status_code == 404 and "Space not found" in r.text
                assert "alice" not in r.text and "Building" not in r.text and "logs-title" not in r.text
            assert table.wake_calls.get("alice/secret") is None  # nor was it woken
            r = c.get("/", headers={**html, "Cookie": "spacehub_token=hf_reader"})  # a reader: the page (the wake
            assert r.status_code == 503 and "Building this Space…" in r.text  # takes 1 s, past the browser's grace)
            assert '<span class="mono">alice/secret</span>' in r.text
    finally:
        px.server.should_exit = True


def test_failed_wake_is_503(upstream: Upstream) -> None:
    table = StaticRouteTable()
    table.set("sleepy.localhost", RouteTarget.sleeping("alice/sleepy"))  # no waker: wake raises
    px = start_proxy(table)
    try:
        with px.client("sleepy") as c:
            r = c.get("/echo")
        assert r.status_code == 503 and "could not be woken" in r.json()["error"]
    finally:
        px.server.should_exit = True


def test_wake_timeout_is_504(upstream: Upstream) -> None:
    table, _ = sleeping_table(upstream, 3.0)
    px = start_proxy(table, wake_timeout=0.5)
    try:
        with px.client("sleepy") as c:
            assert c.get("/echo").status_code == 504
    finally:
        px.server.should_exit = True


async def _page(app: object, host: str, accept: str) -> tuple[int, str]:
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "scheme": "http", "headers": [(b"host", host.encode()), (b"accept", accept.encode())]}
    await app(scope, None, send)  # type: ignore[operator]
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]).decode()


def test_a_space_status_page_links_to_the_spaces_page_on_the_hub() -> None:
    """The paused and error pages at a Space's own address point its owner at the Space's page on the Hub (status,
    logs): under server.public_url when set, else at the Space host's parent domain; the name is escaped; API
    clients (no text/html) get the JSON error without it."""
    from spacehub.proxy.space_routes import _Page

    status, body = asyncio.run(_page(_Page(503, "paused", "alice/demo"), "alice-demo.localhost:8000", "text/html"))
    assert status == 503 and '<a href="http://localhost:8000/spaces/alice/demo" target="_blank"' in body
    public = _Page(503, "error", "alice/<x>", "https://hub.example.com/")
    _, body = asyncio.run(_page(public, "alice-x.spaces.example.com", "text/html"))
    assert '<a href="https://hub.example.com/spaces/alice/&lt;x&gt;" target="_blank"' in body and "<x>" not in body
    _, body = asyncio.run(_page(_Page(503, "paused", "alice/demo"), "alice-demo.localhost:8000", "*/*"))
    assert "href" not in body and '"error"' in body
    _, body = asyncio.run(_page(_Page(503, "paused"), "alice-demo.localhost:8000", "text/html"))
    assert "href" not in body  # no name known: no link
