"""How ``spacehub serve`` runs its HTTP side (serving.py): the workers' inherited socket, and the collector after
start-up."""

from __future__ import annotations

import gc
import socket
import threading
import time
from typing import Any

import httpx
import pytest
import uvicorn

from spacehub.serving import Settled, listening_socket


async def tiny(scope: Any, receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def nodelay_of_accepted(config: uvicorn.Config, sockets: list[socket.socket] | None, port: int) -> int:
    """TCP_NODELAY of the connection the server accepted for one kept-alive request."""
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": sockets}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        with httpx.Client() as client:
            assert client.get(f"http://127.0.0.1:{port}/").text == "ok"
            (conn,) = server.server_state.connections  # still open: kept alive
            sock = conn.transport.get_extra_info("socket")  # type: ignore[attr-defined]
            return int(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def listener() -> Any:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock
    sock.close()


def test_a_worker_serves_its_inherited_socket_as_tcp_with_nodelay(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    inherited = listening_socket(socket.dup(listener.fileno()))  # as a worker inherits it: a bare descriptor
    assert inherited.family == socket.AF_INET and inherited.type == socket.SOCK_STREAM
    config = uvicorn.Config(tiny, lifespan="off", log_level="warning")
    assert nodelay_of_accepted(config, [inherited], port) == 1


def test_uvicorns_own_fd_option_leaves_nagle_on(listener: socket.socket) -> None:
    """Why `listening_socket` exists: ``fd=`` wraps the descriptor as a Unix socket, so the loop never sets
    TCP_NODELAY, and a two-part answer waits for the client's delayed ACK (40 ms). If uvicorn fixes this, this test
    fails and `listening_socket` may go."""
    port = listener.getsockname()[1]
    config = uvicorn.Config(tiny, fd=socket.dup(listener.fileno()), lifespan="off", log_level="warning")
    assert nodelay_of_accepted(config, None, port) == 0


@pytest.mark.anyio
async def test_what_the_app_built_to_start_is_set_aside_from_the_collector() -> None:
    started = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        assert (await receive())["type"] == "lifespan.startup"
        started.append(gc.get_freeze_count())
        await send({"type": "lifespan.startup.complete"})

    async def receive() -> Any:
        return {"type": "lifespan.startup"}

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append((message["type"], gc.get_freeze_count()))

    gc.unfreeze()
    try:
        await Settled(app)({"type": "lifespan"}, receive, send)
        assert started == [0]
        assert sent[0][0] == "lifespan.startup.complete" and sent[0][1] > 0
    finally:
        gc.unfreeze()
