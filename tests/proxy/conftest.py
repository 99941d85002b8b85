"""Fixtures for the proxy tests: a real upstream app (uvicorn subprocess) and the real dispatcher + proxy stack on
uvicorn in a thread of the test process, so tests can change routes and hooks of its ``StaticRouteTable`` live."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from spacehub.proxy import HostDispatcher, RouteTarget, SpaceProxy, StaticRouteTable
from tests.conftest import free_port

HERE = Path(__file__).resolve().parent


@dataclass
class Upstream:
    port: int
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def wait_http(url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer")


def start_upstream(port: int | None = None) -> Upstream:
    port = port or free_port()
    cmd = [sys.executable, "-m", "uvicorn", "tests.proxy.upstream_app:app", "--port", str(port), "--no-access-log"]
    proc = subprocess.Popen(cmd, cwd=HERE.parent.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/", proc)
    return Upstream(port, proc)


@pytest.fixture(scope="session")
def upstream() -> Iterator[Upstream]:
    up = start_upstream()
    yield up
    up.stop()


def hub_app() -> Starlette:
    """A tiny stand-in for the Hub app behind the dispatcher."""
    return Starlette(routes=[Route("/", lambda request: PlainTextResponse("hub"))])


@dataclass
class Proxy:
    port: int
    table: StaticRouteTable
    proxy: SpaceProxy
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def host(self, sub: str = "app") -> str:
        return f"{sub}.localhost:{self.port}"

    def client(self, sub: str = "app", **kwargs: object) -> httpx.Client:
        """An httpx client on loopback that sends ``Host: {sub}.localhost:{port}`` (``*.localhost`` may not resolve)."""
        return httpx.Client(base_url=self.base, headers={"Host": self.host(sub)}, timeout=30, **kwargs)  # type: ignore[arg-type]


def start_proxy(table: StaticRouteTable, **options: float) -> Proxy:
    port = free_port()
    proxy = SpaceProxy(table, **options)
    app = HostDispatcher(hub_app(), proxy, "localhost")
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        proxy_headers=False,  # as `spacehub serve`
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("proxy did not start")
        time.sleep(0.02)
    return Proxy(port, table, proxy, server, thread)


@pytest.fixture
def proxy(upstream: Upstream) -> Iterator[Proxy]:
    """The stack with ``app.localhost`` → the upstream app."""
    table = StaticRouteTable()
    table.set("app.localhost", RouteTarget.to_upstream("alice/app", "127.0.0.1", upstream.port))
    px = start_proxy(table)
    yield px
    px.server.should_exit = True
    px.thread.join(10)
