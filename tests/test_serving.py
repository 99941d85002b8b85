"""How ``spacehub serve`` runs its HTTP side (serving.py): the workers' inherited socket, and the collector after
start-up and as the heap grows."""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time
import weakref
from typing import Any

import httpx
import pytest
import uvicorn

from spacehub.serving import GcKeeper, Settled, listening_socket


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
    settled = Settled(app)
    try:
        await settled({"type": "lifespan"}, receive, send)
        assert started == [0]
        assert sent[0][0] == "lifespan.startup.complete" and sent[0][1] > 0
        assert settled.keeper._on_gc in gc.callbacks
    finally:
        settled.keeper.stop()
        gc.unfreeze()
    assert settled.keeper._on_gc not in gc.callbacks


class Node:
    def __init__(self) -> None:
        self.other: Any = self  # a cycle: only the collector frees it


@pytest.fixture
async def keeper() -> Any:
    """A `GcKeeper` that takes every full collection for a slow one, on the test's loop; unfrozen after."""
    k = GcKeeper(slow=0.0, regrow=1e9)
    gc.unfreeze()
    k.start(asyncio.get_running_loop())
    try:
        yield k
    finally:
        k.stop()
        gc.unfreeze()


async def settled_after_a_full_collection(k: GcKeeper) -> None:
    before = k.refreezes
    gc.collect()  # as the collector's own full collections: the callback hands over to the loop
    for _ in range(100):
        await asyncio.sleep(0)
        if k.refreezes > before:
            return
    raise AssertionError("no refreeze after a slow full collection")


@pytest.mark.anyio
async def test_what_survives_a_slow_full_collection_is_frozen(keeper: GcKeeper) -> None:
    assert keeper.thorough == 1 and keeper.base > 0  # at start: collected, then frozen
    before = gc.get_freeze_count()
    grown = [Node() for _ in range(20_000)]  # what a server builds after start-up (its runs, its host index)
    await settled_after_a_full_collection(keeper)
    assert gc.get_freeze_count() - before >= len(grown)
    assert not gc.get_objects(2) or len(gc.get_objects(2)) < len(grown)  # the next full collection skips them
    assert keeper.thorough == 1


@pytest.mark.anyio
async def test_a_frozen_cycle_dropped_later_is_collected_once_the_frozen_set_has_grown(keeper: GcKeeper) -> None:
    node = Node()
    dead = weakref.ref(node)
    await settled_after_a_full_collection(keeper)  # frozen while alive
    del node
    gc.collect()
    assert dead() is not None  # the price of freezing: a frozen cycle is not collected
    keeper.regrow = 1.0  # any growth now calls for a thorough collection
    grown = [Node() for _ in range(1_000)]
    await settled_after_a_full_collection(keeper)
    assert keeper.thorough == 2 and dead() is None
    assert gc.get_freeze_count() >= len(grown)


@pytest.mark.anyio
async def test_a_quick_full_collection_leaves_the_heap_as_it_is() -> None:
    k = GcKeeper(slow=60.0)
    gc.unfreeze()
    k.start(asyncio.get_running_loop())
    try:
        frozen = gc.get_freeze_count()
        young = [Node() for _ in range(1_000)]
        gc.collect()
        await asyncio.sleep(0.01)
        assert k.refreezes == 0 and gc.get_freeze_count() <= frozen and young  # frozen ones may die
    finally:
        k.stop()
        gc.unfreeze()
