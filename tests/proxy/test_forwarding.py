"""HTTP through the proxy against a real app process: round trips, header rewriting, keep-alive, streaming, big
bodies with bounded memory, and the error pages."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from spacehub.proxy import RouteTarget, StaticRouteTable
from tests.conftest import free_port
from tests.proxy.conftest import HERE, Proxy, Upstream, start_proxy, start_upstream, wait_http

MB = 1024 * 1024


def test_get_round_trip_keeps_path_query_and_host(proxy: Proxy) -> None:
    with proxy.client() as c:
        r = c.get("/a%2Fb/c", params={"q": "x y"}, headers={"X-Custom": "1"})
    assert r.status_code == 200
    echo = r.json()
    headers = dict(echo["headers"])
    assert echo["method"] == "GET"
    assert echo["raw_path"] == "/a%2Fb/c"  # never decoded on the way
    assert echo["query"] == "q=x+y"
    assert headers["host"] == proxy.host()  # the app sees the public host, to build its URLs
    assert headers["x-forwarded-host"] == proxy.host()
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-custom"] == "1"
    assert r.headers["x-upstream"] == "yes"


def test_post_body_and_hop_by_hop_headers(proxy: Proxy) -> None:
    with proxy.client() as c:
        r = c.post(
            "/echo",
            content=b"hello body",
            headers={
                "Connection": "keep-alive, X-Secret-Hop",
                "X-Secret-Hop": "must not pass",
                "Keep-Alive": "timeout=5",
                "TE": "trailers",
                "X-Forwarded-For": "10.0.0.1",
                "Cookie": "a=1; spacehub_token=hf_secret; b=2",
            },
        )
    echo = r.json()
    headers = dict(echo["headers"])
    assert echo["method"] == "POST" and echo["body"] == "hello body"
    for hop in ("connection", "x-secret-hop", "keep-alive", "te"):
        assert hop not in headers, hop
    assert headers["x-forwarded-for"] == "10.0.0.1, 127.0.0.1"
    assert headers["cookie"] == "a=1; b=2"  # SpaceHub's login cookie never reaches a Space's app
    # the app's own hop-by-hop answer headers are dropped too
    assert "keep-alive" not in r.headers
    assert r.headers.get("connection", "keep-alive") == "keep-alive"


def test_chunked_request_body_is_forwarded(proxy: Proxy) -> None:
    def parts() -> Iterator[bytes]:
        yield b"part one, "
        yield b"part two"

    with proxy.client() as c:
        r = c.post("/echo", content=parts())
    assert r.json()["body"] == "part one, part two"


def test_head_and_error_statuses_pass_through(proxy: Proxy) -> None:
    with proxy.client() as c:
        assert c.head("/echo").status_code == 200
        r = c.get("/status", params={"code": 418})
        assert r.status_code == 418 and r.json() == {"status": 418}
        assert c.get("/echo").status_code == 200  # the connection after a HEAD is not confused


def test_upstream_connections_are_reused(upstream: Upstream) -> None:
    own = start_upstream()  # its own app, to count only this test's connections
    table = StaticRouteTable()
    table.set("app.localhost", RouteTarget.to_upstream("alice/app", "127.0.0.1", own.port))
    px = start_proxy(table)
    try:
        for _ in range(3):  # three client connections, 20 requests each
            with px.client() as c:
                for _ in range(20):
                    assert c.get("/echo").status_code == 200
        with px.client() as c:
            seen = c.get("/connections").json()["connections"]
        assert seen == 1, f"60 sequential requests used {seen} upstream connections"
        assert px.proxy.pool.opened == 1
    finally:
        px.server.should_exit = True
        own.stop()


def test_chunked_response_streams_before_it_ends(proxy: Proxy) -> None:
    with proxy.client() as c, c.stream("GET", "/chunks", params={"n": 3, "delay": 0.6}) as r:
        start = time.monotonic()
        arrivals = [(chunk, time.monotonic() - start) for chunk in r.iter_raw() if chunk]
    assert b"".join(c for c, _ in arrivals) == b"chunk 0\nchunk 1\nchunk 2\nend\n"
    assert arrivals[0][0].startswith(b"chunk 0")
    assert arrivals[0][1] < 0.5, "the first chunk waited for the rest"
    assert arrivals[-1][1] > 1.5


def test_sse_events_arrive_one_by_one(proxy: Proxy) -> None:
    with proxy.client() as c, c.stream("GET", "/sse", params={"n": 4, "delay": 0.4}) as r:
        assert r.headers["content-type"] == "text/event-stream"
        start = time.monotonic()
        events = [(line, time.monotonic() - start) for line in r.iter_lines() if line.startswith("data:")]
    assert [e for e, _ in events] == [f"data: event {i}" for i in range(4)]
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(events)]
    assert all(g > 0.25 for g in gaps), f"events were buffered: {gaps}"


def test_upstream_down_is_502_fast() -> None:
    table = StaticRouteTable()
    table.set("app.localhost", RouteTarget.to_upstream("alice/app", "127.0.0.1", free_port()))
    px = start_proxy(table)
    try:
        with px.client() as c:
            start = time.monotonic()
            r = c.get("/", headers={"Accept": "application/json"})
            assert r.status_code == 502 and "not answering" in r.json()["error"]
            html = c.get("/", headers={"Accept": "text/html"})
            assert html.status_code == 502 and "<html" in html.text
        assert time.monotonic() - start < 5
    finally:
        px.server.should_exit = True


def test_upstream_restart_is_healed_by_a_new_connection() -> None:
    port = free_port()
    first = start_upstream(port)
    table = StaticRouteTable()
    table.set("app.localhost", RouteTarget.to_upstream("alice/app", "127.0.0.1", port))
    px = start_proxy(table)
    try:
        with px.client() as c:
            assert c.get("/echo").status_code == 200  # one pooled connection to the first process
            first.stop()
            assert c.get("/echo").status_code == 502
            second = start_upstream(port)
            try:
                assert c.get("/echo").status_code == 200
            finally:
                second.stop()
    finally:
        px.server.should_exit = True


def test_a_refused_address_asks_the_runtime_where_the_space_moved(upstream: Upstream) -> None:
    """An HTTP worker's routes may lag the controller's switch to a new release: the old address refuses, the
    runtime's answer (``wake``) is the new one, and the request, body included, is served there once."""
    table = StaticRouteTable()
    table.set("app.localhost", RouteTarget.to_upstream("alice/app", "127.0.0.1", free_port()))

    async def now_here() -> RouteTarget:
        return RouteTarget.to_upstream("alice/app", "127.0.0.1", upstream.port)

    table.wakers["alice/app"] = now_here
    px = start_proxy(table)
    try:
        with px.client() as c:
            r = c.post("/echo", content=b"the body goes once", headers={"content-type": "text/plain"})
            assert r.status_code == 200 and r.json()["body"] == "the body goes once"
            assert table.wake_calls == {"alice/app": 1}
            assert c.get("/echo").status_code == 200  # the table now holds the new address
            assert table.wake_calls == {"alice/app": 1}
    finally:
        px.server.should_exit = True


def test_read_timeout_is_504(upstream: Upstream) -> None:
    table = StaticRouteTable()
    table.set("app.localhost", RouteTarget.to_upstream("alice/app", "127.0.0.1", upstream.port))
    px = start_proxy(table, read_timeout=1.0)
    try:
        with px.client() as c:
            start = time.monotonic()
            r = c.get("/slow", params={"delay": 10})
        assert r.status_code == 504
        assert time.monotonic() - start < 4
    finally:
        px.server.should_exit = True


# ---- big bodies, through a proxy in its own process so that its memory can be read ------------------------------
PROXY_MAIN = """
import sys, uvicorn
from starlette.responses import PlainTextResponse
from spacehub.proxy import HostDispatcher, RouteTarget, SpaceProxy, StaticRouteTable
table = StaticRouteTable()
table.set("app.localhost", RouteTarget.to_upstream("alice/app", "127.0.0.1", int(sys.argv[2])))
app = HostDispatcher(PlainTextResponse("hub"), SpaceProxy(table), "localhost")
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", proxy_headers=False)
"""


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.fixture
def proxy_process(upstream: Upstream) -> Iterator[tuple[str, int]]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", PROXY_MAIN, str(port), str(upstream.port)], cwd=HERE.parent.parent, env=os.environ
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/", proc)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.slow
def test_50mb_upload_and_download_stream_with_bounded_memory(proxy_process: tuple[str, int]) -> None:
    url, pid = proxy_process
    headers = {"Host": "app.localhost"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
        c.get("/echo")
        before = peak_rss_mb(pid)
        block = os.urandom(MB)

        def body() -> Iterator[bytes]:
            for _ in range(50):
                yield block

        r = c.post("/upload", content=body(), headers={"Content-Length": str(50 * MB)})
        assert r.json() == {"size": 50 * MB, "sha256": hashlib.sha256(block * 50).hexdigest()}
        digest, size = hashlib.sha256(), 0
        with c.stream("GET", "/download", params={"mb": 50}) as resp:
            assert resp.headers["content-length"] == str(50 * MB)
            for chunk in resp.iter_raw():
                digest.update(chunk)
                size += len(chunk)
        assert size == 50 * MB
        assert digest.hexdigest() == hashlib.sha256((bytes(range(256)) * 4096) * 50).hexdigest()
    grown = peak_rss_mb(pid) - before
    assert grown < 20, f"the proxy's peak memory grew by {grown:.0f} MB for 50 MB bodies"


def test_json_error_pages_are_json(proxy: Proxy) -> None:
    with proxy.client("nobody") as c:
        r = c.get("/")
    assert r.status_code == 404
    assert json.loads(r.text) == {"error": "There is no Space at this address."}


def test_upstream_reset_is_502() -> None:
    """An app that accepts and resets every connection: 502 at once, not a hang."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.recv(1024)
            conn.close()  # RST

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    table = StaticRouteTable()
    table.set("app.localhost", RouteTarget.to_upstream("alice/app", "127.0.0.1", listener.getsockname()[1]))
    px = start_proxy(table)
    try:
        with px.client() as c:
            start = time.monotonic()
            r = c.get("/", headers={"Accept": "application/json"})
        assert r.status_code == 502 and "closed the connection" in r.json()["error"]
        assert time.monotonic() - start < 3
    finally:
        stop.set()
        px.server.should_exit = True
        listener.close()


def test_client_leaving_an_endless_stream_frees_the_app_connection(proxy: Proxy) -> None:
    with proxy.client() as c, c.stream("GET", "/sse", params={"n": 1000, "delay": 0.1}) as r:
        for line in r.iter_lines():
            if line.startswith("data:"):
                assert len(proxy.proxy.pool.busy) == 1  # (leaving this loop closes the client's connection)
                break
    deadline = time.monotonic() + 5
    while proxy.proxy.pool.busy and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not proxy.proxy.pool.busy, "the app connection of a gone client is still held"
