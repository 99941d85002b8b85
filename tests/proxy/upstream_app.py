"""A small app to proxy to in the tests, run by uvicorn in its own process: echo, streaming, SSE, big bodies,
a WebSocket echo (``/ws-headers`` sends the handshake's headers instead), and a count of the TCP connections
proxied requests came on (to see keep-alive reuse)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any
from urllib.parse import parse_qs

CONNECTIONS: set[tuple[str, int]] = set()
MB = 1024 * 1024


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] == "websocket":
        return await websocket(scope, receive, send)
    if any(name == b"x-forwarded-for" for name, _ in scope["headers"]):  # proxied requests only
        CONNECTIONS.add(tuple(scope["client"]))
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    path = scope["path"]
    if path == "/upload":
        digest, size = hashlib.sha256(), 0
        while True:
            message = await receive()
            digest.update(message.get("body", b""))
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        return await reply(send, {"size": size, "sha256": digest.hexdigest()})
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if path == "/connections":
        return await reply(send, {"connections": len(CONNECTIONS)})
    if path == "/chunks":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for i in range(int(query.get("n", 3))):
            await send({"type": "http.response.body", "body": f"chunk {i}\n".encode(), "more_body": True})
            await asyncio.sleep(float(query.get("delay", 0.5)))
        return await send({"type": "http.response.body", "body": b"end\n"})
    if path == "/sse":
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        gone = asyncio.create_task(receive())  # the next message is http.disconnect: stop streaming then
        for i in range(int(query.get("n", 3))):
            if gone.done():
                return
            await send({"type": "http.response.body", "body": f"data: event {i}\n\n".encode(), "more_body": True})
            await asyncio.sleep(float(query.get("delay", 0.3)))
        return await send({"type": "http.response.body", "body": b""})
    if path == "/download":
        size = int(query.get("mb", 1)) * MB
        headers = [(b"content-type", b"application/octet-stream"), (b"content-length", str(size).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        block = bytes(range(256)) * 4096  # 1 MiB, known content
        for _ in range(size // MB):
            await send({"type": "http.response.body", "body": block, "more_body": True})
        return await send({"type": "http.response.body", "body": b""})
    if path == "/slow":
        await asyncio.sleep(float(query.get("delay", 5)))
    if path == "/status":
        code = int(query.get("code", 200))
        return await reply(send, {"status": code}, status=code, extra=[(b"x-upstream", b"yes")])
    await reply(
        send,
        {
            "method": scope["method"],
            "path": path,
            "raw_path": scope["raw_path"].decode(),
            "query": scope["query_string"].decode(),
            "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
            "body": body.decode(errors="replace"),
        },
        extra=[(b"x-upstream", b"yes"), (b"connection", b"keep-alive"), (b"keep-alive", b"timeout=5")],
    )


async def reply(send: Any, data: Any, status: int = 200, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps(data).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def websocket(scope: dict[str, Any], receive: Any, send: Any) -> None:
    message = await receive()
    assert message["type"] == "websocket.connect"
    if scope["path"] == "/ws-refuse":
        return await send({"type": "websocket.close", "code": 1008})
    protocols = scope.get("subprotocols") or []
    await send({"type": "websocket.accept", "subprotocol": protocols[0] if protocols else None})
    if scope["path"] == "/ws-headers":  # the handshake's headers, as the app got them
        headers = [[k.decode(), v.decode()] for k, v in scope["headers"]]
        await send({"type": "websocket.send", "text": json.dumps({"headers": headers})})
        return await send({"type": "websocket.close", "code": 1000})
    host = dict(scope["headers"]).get(b"host", b"").decode()
    await send({"type": "websocket.send", "text": f"hello {host}"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "close":
            return await send({"type": "websocket.close", "code": 4001, "reason": "asked to"})
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": "echo " + message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
