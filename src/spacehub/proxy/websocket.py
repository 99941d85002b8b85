"""WebSocket proxying (Gradio and Streamlit need it): the server side is the ASGI ``websocket`` scope uvicorn hands
us, the app side a ``websockets`` client connection; messages are relayed both ways and close codes passed on.

The upstream handshake keeps the browser's ``Host`` and ``Origin`` (the URI names the public host, the TCP
connection goes to the app's port), because apps check one against the other (Tornado's ``check_origin``).
Subprotocols are offered to the app and its choice is the one accepted towards the browser.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from starlette.types import Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from spacehub.proxy import pages

# Set by the websockets client itself from its arguments, or hop-by-hop: never copied from the browser's request.
_HANDSHAKE = frozenset(
    {
        b"host",
        b"origin",
        b"user-agent",
        b"upgrade",
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"content-length",
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-protocol",
        b"sec-websocket-accept",
    }
)


def _upstream_headers(scope: Scope, forwarded: list[tuple[bytes, bytes]]) -> tuple[list[tuple[str, str]], str, str]:
    """(headers to send, Host, Origin) for the app's handshake."""
    out, host, origin, agent = [], "", "", ""
    for name, value in forwarded:
        if name == b"host":
            host = value.decode("latin-1")
        elif name == b"origin":
            origin = value.decode("latin-1")
        elif name == b"user-agent":
            agent = value.decode("latin-1")
        if name not in _HANDSHAKE:
            out.append((name.decode("latin-1"), value.decode("latin-1")))
    if agent:
        out.append(("User-Agent", agent))
    return out, host, origin


async def relay_websocket(
    scope: Scope,
    receive: Receive,
    send: Send,
    upstream: tuple[str, int],
    forwarded: list[tuple[bytes, bytes]],
    *,
    connect_timeout: float,
    on_message: Callable[[], None] | None = None,
) -> None:
    """Open the app's WebSocket, accept the browser's, and relay until either side closes.

    ``forwarded`` are the request headers already filtered and completed with ``X-Forwarded-*`` by the proxy;
    ``on_message`` runs for every message from the browser (activity tracking for sleep).
    """
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    headers, host, origin = _upstream_headers(scope, forwarded)
    path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    if scope.get("query_string"):
        path += "?" + scope["query_string"].decode("latin-1")
    try:
        app = await connect(
            f"ws://{host or f'{upstream[0]}:{upstream[1]}'}{path}",
            host=upstream[0],
            port=upstream[1],
            additional_headers=headers,
            origin=origin or None,  # type: ignore[arg-type]
            user_agent_header=None,
            subprotocols=scope.get("subprotocols") or None,
            compression=None,  # loopback: compressing costs CPU and saves nothing; the browser side negotiates its own
            proxy=None,
            open_timeout=connect_timeout,
            ping_interval=None,  # the browser side is pinged by uvicorn; loopback needs no keep-alive
            max_size=None,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        await pages.send_page(scope, send, status, "WebSocket refused by the app", f"The app answered {status}.")
        return
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        await pages.bad_gateway(scope, send, f"The app's WebSocket is not answering ({exc})")
        return
    async with app:
        await send({"type": "websocket.accept", "subprotocol": app.subprotocol})
        to_app = asyncio.create_task(_browser_to_app(receive, app, on_message))
        to_browser = asyncio.create_task(_app_to_browser(app, send))
        done, pending = await asyncio.wait({to_app, to_browser}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for task in done:
            task.result()


async def _browser_to_app(receive: Receive, app: ClientConnection, on_message: Callable[[], None] | None) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            await app.close(message.get("code", 1000), message.get("reason") or "")
            return
        if on_message is not None:
            on_message()
        text = message.get("text")
        try:
            await app.send(text if text is not None else message.get("bytes") or b"")
        except ConnectionClosed:
            return


async def _app_to_browser(app: ClientConnection, send: Send) -> None:
    try:
        async for data in app:
            if isinstance(data, str):
                await send({"type": "websocket.send", "text": data})
            else:
                await send({"type": "websocket.send", "bytes": data})
    except ConnectionClosed:
        pass
    rcvd = app.protocol.close_rcvd
    code = rcvd.code if rcvd is not None else 1011
    if code in (1005, 1006, 1015):  # reserved codes that may not be sent in a close frame
        code = 1000 if code == 1005 else 1011
    with contextlib.suppress(Exception):
        await send({"type": "websocket.close", "code": code, "reason": rcvd.reason if rcvd else ""})
