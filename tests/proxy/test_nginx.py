"""The nginx data plane (``proxy.mode = "nginx"``) with a real nginx: Space hosts with a running app are served by
nginx itself, everything else falls back to SpaceHub (unknown, sleeping, private, app down), and nginx is reloaded
when routes change. Skipped when nginx is not installed (``scripts/install-system-deps`` installs it)."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from websockets.asyncio.client import connect

from spacehub.config import Settings
from spacehub.proxy import HostDispatcher, RouteTarget, StaticRouteTable, listen_address, space_server
from spacehub.proxy.nginx import render_config
from tests.conftest import free_port
from tests.proxy.conftest import Upstream, hub_app, start_upstream

needs_nginx = pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")


def test_render_config_routes_public_running_spaces_only_and_falls_back() -> None:
    text = render_config(
        directory=Path("/d"),
        listen="127.0.0.1:8000",
        backend="127.0.0.1:8001",
        routes={"b.localhost": ("127.0.0.1", 7001), "a.localhost": ("127.0.0.1", 7000)},
    )
    assert "upstream spacehub { server 127.0.0.1:8001; keepalive 32; keepalive_timeout 20s; }" in text
    assert "upstream space_0 { server 127.0.0.1:7000; keepalive 64; keepalive_timeout 4s; }" in text
    assert "server_name a.localhost;" in text and "server_name b.localhost;" in text
    assert "listen 127.0.0.1:8000 default_server;" in text
    assert text.count("error_page 502 = @spacehub;") == 2
    assert "proxy_buffering off;" in text and "proxy_request_buffering off;" in text
    table = StaticRouteTable()
    table.set("pub.localhost", RouteTarget.to_upstream("a/pub", "127.0.0.1", 1))
    table.set("priv.localhost", RouteTarget.to_upstream("a/priv", "127.0.0.1", 2, private=True))
    table.set("zzz.localhost", RouteTarget.sleeping("a/zzz"))
    assert table.public_upstreams() == {"pub.localhost": ("127.0.0.1", 1)}


@dataclass
class Front:
    port: int
    table: StaticRouteTable
    app: HostDispatcher
    server: uvicorn.Server

    def client(self, sub: str = "app") -> httpx.Client:
        return httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}", headers={"Host": f"{sub}.localhost:{self.port}"}, timeout=30
        )

    def set_routes(self) -> None:
        plane = self.app.data_plane
        assert plane is not None
        loop = self.server_loop
        loop.call_soon_threadsafe(plane.set_routes, self.table.public_upstreams())
        deadline = time.monotonic() + 10
        reloads = plane.reloads
        while plane.reloads == reloads and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # nginx starts its new workers

    server_loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]


@pytest.fixture
def front(tmp_path: Path, upstream: Upstream) -> Iterator[Front]:
    settings = Settings(data_dir=tmp_path / "data")
    settings.server.port = free_port()
    settings.proxy.mode = "nginx"
    settings.proxy.nginx_backend_port = free_port()
    settings.data_dir.mkdir(parents=True)
    table = StaticRouteTable()
    table.set("app.localhost", RouteTarget.to_upstream("alice/app", "127.0.0.1", upstream.port))
    app = space_server(hub_app(), settings, table, activity_interval=1.0, debounce=0.05)
    assert app.data_plane is not None
    app.data_plane.set_routes(table.public_upstreams())
    host, port = listen_address(settings)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, proxy_headers=False)
    server = uvicorn.Server(config)
    result = Front(settings.server.port, table, app, server)

    def run() -> None:
        result.server_loop = asyncio.new_event_loop()
        result.server_loop.run_until_complete(server.serve())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "SpaceHub with nginx did not start"
        time.sleep(0.05)
    yield result
    server.should_exit = True
    thread.join(20)
    assert not app.data_plane.running, "nginx outlived SpaceHub"


@needs_nginx
@pytest.mark.slow
def test_nginx_serves_running_spaces_and_spacehub_the_rest(front: Front, upstream: Upstream) -> None:
    pool = front.app.proxy.pool
    with front.client() as c:
        r = c.get("/echo", headers={"Cookie": "a=1; spacehub_token=hf_x; b=2"})
        assert r.status_code == 200
        headers = dict(r.json()["headers"])
        assert headers["host"] == f"app.localhost:{front.port}"
        assert headers["x-forwarded-host"] == f"app.localhost:{front.port}"
        assert headers["x-forwarded-for"] == "127.0.0.1"
        assert "spacehub_token" not in headers["cookie"]
        assert pool.opened == 0, "a running public Space went through SpaceHub"
        with c.stream("GET", "/sse", params={"n": 3, "delay": 0.4}) as s:
            start = time.monotonic()
            times = [time.monotonic() - start for line in s.iter_lines() if line.startswith("data:")]
        assert len(times) == 3 and times[1] - times[0] > 0.25, f"SSE buffered by nginx: {times}"
    with front.client("nobody") as c:
        assert c.get("/").status_code == 404  # SpaceHub's answer, through nginx's default server
    with httpx.Client(base_url=f"http://127.0.0.1:{front.port}", timeout=10) as c:
        assert c.get("/").text == "hub"

    async def ws() -> str:
        uri = f"ws://app.localhost:{front.port}/ws"
        async with connect(uri, host="127.0.0.1", port=front.port, proxy=None) as conn:
            await conn.recv()
            await conn.send("through nginx")
            return str(await conn.recv())

    assert asyncio.run(ws()) == "echo through nginx"
    deadline = time.monotonic() + 10  # the activity log reaches touch() within its flush interval
    while "alice/app" not in front.table.last_activity and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "alice/app" in front.table.last_activity


@needs_nginx
@pytest.mark.slow
def test_nginx_wake_path_and_reload(front: Front, upstream: Upstream) -> None:
    table = front.table
    table.set("sleepy.localhost", RouteTarget.sleeping("alice/sleepy"))

    async def wake() -> RouteTarget:
        await asyncio.sleep(0.3)
        return RouteTarget.to_upstream("alice/sleepy", "127.0.0.1", upstream.port)

    table.wakers["alice/sleepy"] = wake
    pool = front.app.proxy.pool
    with front.client("sleepy") as c:
        assert c.get("/echo").status_code == 200  # via SpaceHub, which woke it
        opened = pool.opened
        assert opened == 1
        front.set_routes()  # the runtime tells the data plane: nginx now serves it directly
        assert c.get("/echo").status_code == 200
        assert pool.opened == opened
        assert table.wake_calls["alice/sleepy"] == 1


@needs_nginx
@pytest.mark.slow
def test_nginx_hands_a_dead_app_to_spacehub(front: Front) -> None:
    down = start_upstream()
    front.table.set("dead.localhost", RouteTarget.to_upstream("alice/dead", "127.0.0.1", down.port))
    front.set_routes()
    down.stop()
    with front.client("dead") as c:
        r = c.get("/", headers={"Accept": "application/json"})
    assert r.status_code == 502
    assert "not answering" in r.json()["error"]  # SpaceHub's page (error_page 502 = @spacehub), not nginx's


@needs_nginx
@pytest.mark.slow
def test_hub_clients_are_not_cut_off_by_reloads(front: Front) -> None:
    """Every route change reloads nginx, whose old workers then close their idle keep-alive connections; a hub
    client (httpx, as in huggingface_hub, which does not retry) polling through nginx must never see that."""
    plane = front.app.data_plane
    assert plane is not None
    stop = threading.Event()

    def reload_often() -> None:
        while not stop.is_set():
            asyncio.run_coroutine_threadsafe(plane.reload(), front.server_loop).result(30)
            time.sleep(0.02)

    reloader = threading.Thread(target=reload_often, daemon=True)
    reloads = plane.reloads
    reloader.start()
    failures: list[str] = []
    answered = 0

    def poll() -> None:
        nonlocal answered
        with httpx.Client(base_url=f"http://127.0.0.1:{front.port}", timeout=10) as c:
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                try:
                    assert c.get("/").text == "hub"
                    answered += 1
                except httpx.TransportError as e:
                    failures.append(repr(e))
                time.sleep(0.002)

    pollers = [threading.Thread(target=poll) for _ in range(4)]
    try:
        for t in pollers:
            t.start()
        for t in pollers:
            t.join(60)
    finally:
        stop.set()
        reloader.join(30)
    print(f"{plane.reloads - reloads} reloads, {answered} answers, {len(failures)} cut off")
    assert plane.reloads - reloads >= 20, "nginx was not reloaded often enough for the check to mean anything"
    assert not failures, failures[:5]
