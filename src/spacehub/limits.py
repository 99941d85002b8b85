"""``RequestLimits``: the outermost ASGI layer of ``spacehub serve`` (in front of the Host dispatcher, so the Hub and
the Space proxy alike).

- **Request headers**: more than ``MAX_HEADER_COUNT`` fields, or more than ``MAX_HEADER_BYTES`` of names and values
  together, is answered ``431 Request Header Fields Too Large`` in the Hub's error format, before any handler runs.
  uvicorn's httptools parser has no limit of its own (h11's ``h11_max_incomplete_event_size`` applies only to h11).
- **Memory while a head arrives**: httptools buffers a header until it is whole, so ``HeadLimitedHttpToolsProtocol``
  (the HTTP protocol ``spacehub serve`` gives uvicorn) stops reading a request head once ``MAX_HEAD_BYTES`` arrived
  without its end: it answers 431 with ``Connection: close``, shuts its side down, and discards what the client still
  sends for a few seconds before closing (closing at once with unread data would reset the connection, and the
  client could lose the 431). Heads between the two limits get the 431 above on a connection that stays usable.
- **No connection reset after an error**: Starlette's ``ServerErrorMiddleware`` sends its 500 and then re-raises, and
  uvicorn closes the connection of any request whose application raised once the response had started. An
  exception that escapes after the response is complete is logged here and goes no further, so the connection stays
  usable; one raised before the response started is answered 500 (Hub format). An exception in the middle of a
  response body still closes the connection: that response is truncated, and closing is the only way to say so.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from spacehub.errors import HubError, RequestHeaderFieldsTooLarge

log = logging.getLogger("spacehub")

MAX_HEADER_COUNT = 100
MAX_HEADER_BYTES = 64 * 1024  # names + values (+ 4 bytes a field for ": " and CRLF)
MAX_HEAD_BYTES = 1024 * 1024  # bytes received before a request head is complete (request line included)
LINGER_SECONDS = 5.0


def header_problem(headers: list[tuple[bytes, bytes]]) -> str | None:
    """Why these request headers are refused, or None."""
    if len(headers) > MAX_HEADER_COUNT:
        return f"Too many request header fields ({len(headers)}; the limit is {MAX_HEADER_COUNT})"
    size = sum(len(k) + len(v) + 4 for k, v in headers)
    if size > MAX_HEADER_BYTES:
        return f"Request header fields are too large ({size} bytes; the limit is {MAX_HEADER_BYTES})"
    return None


class RequestLimits:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        problem = header_problem(scope["headers"])
        if problem is not None:
            return await self._refuse(scope, receive, send, RequestHeaderFieldsTooLarge(problem))
        if scope["type"] == "websocket":
            return await self.app(scope, receive, send)
        started = complete = False

        async def tracked(message: Message) -> None:
            nonlocal started, complete
            kind = message["type"]
            if kind == "http.response.start":
                started = True
            elif (kind == "http.response.body" and not message.get("more_body")) or kind == "http.response.pathsend":
                complete = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            if complete:
                log.exception("Error after the response to %s %s was sent", scope.get("method"), scope.get("path"))
                return
            if started:
                raise  # a truncated response: only closing the connection tells the client
            log.exception("Error in %s %s", scope.get("method"), scope.get("path"))
            await self._refuse(scope, receive, send, HubError("Internal server error"))

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, err: HubError) -> None:
        from spacehub.app import error_response

        if scope["type"] == "websocket":  # refuse the handshake (the websocket.http.response extension is optional)
            await send({"type": "websocket.close", "code": 1008, "reason": err.message[:120]})
            return
        await error_response(err, uuid.uuid4().hex)(scope, receive, send)


class HeadLimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing a request head that is not complete after ``MAX_HEAD_BYTES``."""

    _in_head = True
    _head_bytes = 0
    _refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # discarded: the 431 is on its way and the connection closes after it
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse_head()
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes = False, 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True

    def _refuse_head(self) -> None:
        self._refused = True
        message = f"Request header fields are too large (more than {MAX_HEAD_BYTES} bytes)"
        self.logger.warning(message)
        body = json.dumps({"error": message}).encode()
        head = [
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
            *(name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers),
            b"content-type: application/json\r\n",
            b"x-error-message: " + message.encode() + b"\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()
            asyncio.get_running_loop().call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()

    def eof_received(self) -> None:
        if self._refused:
            self.transport.close()
            return
        super().eof_received()
