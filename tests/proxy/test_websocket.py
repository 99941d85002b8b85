"""WebSockets through the proxy, with the real ``websockets`` client: echo, subprotocols, close codes, refusal."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from spacehub.proxy import RouteTarget, StaticRouteTable
from tests.conftest import free_port
from tests.proxy.conftest import Proxy, start_proxy


def ws(proxy: Proxy, path: str, sub: str = "app", **kwargs: object) -> connect:
    return connect(
        f"ws://{proxy.host(sub)}{path}", host="127.0.0.1", port=proxy.port, proxy=None, open_timeout=10, **kwargs
    )


def test_websocket_echo_text_and_bytes(proxy: Proxy) -> None:
    async def scenario() -> None:
        async with ws(proxy, "/ws?x=1", origin=f"http://{proxy.host()}") as conn:
            assert await conn.recv() == f"hello {proxy.host()}"  # the app saw the public Host
            await conn.send("ping")
            assert await conn.recv() == "echo ping"
            await conn.send(b"\x00\x01" * 50_000)
            assert await conn.recv() == b"\x00\x01" * 50_000

    asyncio.run(scenario())


def test_websocket_subprotocol_and_close_code(proxy: Proxy) -> None:
    async def scenario() -> None:
        async with ws(proxy, "/ws", subprotocols=["gradio-v1"]) as conn:
            assert conn.subprotocol == "gradio-v1"
            await conn.recv()
            await conn.send("close")
            with pytest.raises(ConnectionClosed):
                await conn.recv()
            assert conn.close_code == 4001 and conn.close_reason == "asked to"

    asyncio.run(scenario())


def test_websocket_unknown_host_and_refusals(proxy: Proxy) -> None:
    async def status(path: str, sub: str = "app") -> int:
        with pytest.raises(InvalidStatus) as info:
            async with ws(proxy, path, sub):
                pass
        return info.value.response.status_code

    assert asyncio.run(status("/ws", "nobody")) == 404
    assert asyncio.run(status("/ws-refuse")) == 403


def test_websocket_upstream_down_is_refused() -> None:
    table = StaticRouteTable()
    table.set("app.localhost", RouteTarget.to_upstream("alice/app", "127.0.0.1", free_port()))
    px = start_proxy(table)
    try:

        async def scenario() -> int:
            with pytest.raises(InvalidStatus) as info:
                async with ws(px, "/ws"):
                    pass
            return info.value.response.status_code

        assert asyncio.run(scenario()) == 502
    finally:
        px.server.should_exit = True
