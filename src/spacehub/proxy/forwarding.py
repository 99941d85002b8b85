"""``SpaceProxy``: the ASGI app that serves every Space request: route, authorize, wake, then forward, streaming.

One request, in order:
1. ``routes.lookup(host)`` → no target: 404. A private target asks ``routes.authorize`` first; refused: the same 404.
2. An asleep target (asleep, building or starting): a browser navigation is served if the wake completes within
   ``BROWSER_WAKE_GRACE`` (a frozen Space thaws in milliseconds), else gets the "waking up" page, which says the
   target's stage ("Building this Space…") and links its page on the Hub (the build log), while the wake goes on in
   the background; any other
   request awaits ``routes.wake`` (coalesced per Space, bounded by ``wake_timeout``) and goes on.
3. ``routes.touch(space_id)``, then the target serves it: an in-process ASGI app, or the app's port.
4. HTTP is forwarded on a pooled keep-alive connection (``upstream.py``): the request head is rewritten (hop-by-hop
   headers dropped per RFC 9110 §7.6.1; ``X-Forwarded-For/-Proto/-Host`` set; ``Host`` kept, so the app builds
   public URLs; the visitor's hub token, ``spacehub_token`` cookie or ``Authorization: Bearer hf_…``, removed),
   the body streams up as it arrives, the response streams down as it arrives (every SSE event is sent when it is
   read; nothing waits for a buffer to fill). A connection that fails before any answer byte is
   retried once on a new connection when it was a reused one and the request had no body (the app may have closed
   it for idleness just then, as nginx's ``proxy_next_upstream error`` assumes). When the app's address cannot
   be connected to at all, the route may have moved under this process (an HTTP worker's mirror of the
   controller's routes lags a switch to a new release by a long poll): ``routes.wake`` gives the Space's current
   target, and a request that sent nothing yet goes there once, if it is another address.
5. WebSockets go to ``websocket.relay_websocket``.

Errors: cannot connect / reset / invalid response → 502; no answer within ``read_timeout`` → 504; after the
response has started, a failure can only cut the connection, so the client sees a truncated response, not a
complete one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from starlette.datastructures import Headers
from starlette.types import Message, Receive, Scope, Send

from spacehub.proxy import grants, pages
from spacehub.proxy.routes import TOKEN_COOKIE, RouteTable, RouteTarget, is_hub_authorization
from spacehub.proxy.upstream import UpstreamConnection, UpstreamError, UpstreamPool
from spacehub.proxy.websocket import relay_websocket

log = logging.getLogger("spacehub.proxy")
BROWSER_WAKE_GRACE = 0.5  # seconds a browser navigation waits for a wake before the "waking up" page

# Request headers never forwarded: hop-by-hop (RFC 9110 §7.6.1), what we set ourselves (X-Forwarded-*), and
# Expect (uvicorn already answered any 100-continue; the app must not send a second one).
_REQUEST_DROP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
    | {b"proxy-authorization", b"expect", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"}
    | {b"forwarded"}
)
_TOKEN_COOKIE = TOKEN_COOKIE.encode()


def _strip_token_cookie(value: bytes) -> bytes:
    """The Cookie header without SpaceHub's own login cookie: a Space's app never sees its visitors' hub tokens."""
    kept = [c for c in value.split(b";") if c.strip().partition(b"=")[0] != _TOKEN_COOKIE]
    return b";".join(kept).strip()


def forwarded_headers(scope: Scope) -> tuple[list[tuple[bytes, bytes]], int]:
    """The request headers the app gets, and the body framing: -1 none, -2 chunked, else the Content-Length.

    The visitor's hub credentials never reach the app, whatever the Space's visibility: the ``spacehub_token``
    cookie is cut out of every ``Cookie`` header (the other cookies are kept as they were), and an ``Authorization``
    header carrying a hub token (``routes.is_hub_authorization``) is dropped; other ``Authorization`` values are the
    app's own scheme and are forwarded.
    """
    out: list[tuple[bytes, bytes]] = []
    host = xff = b""
    framing = -1
    connection: bytes | None = None
    for name, value in scope["headers"]:
        if name in _REQUEST_DROP:
            if name == b"x-forwarded-for":
                xff = value
            elif name == b"transfer-encoding":
                framing = -2
            elif name == b"connection":
                connection = value.lower()
            continue
        if name == b"host":
            host = value
        elif name == b"content-length":
            if framing == -2:
                continue
            framing = int(value)
        elif name == b"cookie" and _TOKEN_COOKIE in value:
            value = _strip_token_cookie(value)
            if not value:
                continue
        elif name == b"authorization" and is_hub_authorization(value):
            continue
        out.append((name, value))
    if framing == -2:
        out = [(n, v) for n, v in out if n != b"content-length"]
    if connection:
        listed = {t.strip() for t in connection.split(b",")}
        out = [(n, v) for n, v in out if n not in listed or n == b"host"]
    client = scope.get("client")
    ip = client[0].encode() if client else b"unknown"
    scheme = scope.get("scheme", "http")
    proto = b"https" if scheme in ("https", "wss") else b"http"
    out += [(b"x-forwarded-for", xff + b", " + ip if xff else ip), (b"x-forwarded-proto", proto)]
    if host:
        out.append((b"x-forwarded-host", host))
    return out, framing


class SpaceProxy:
    """ASGI app for Space hosts. ``handle`` is the entry point; ``__call__`` reads the host from the request."""

    def __init__(
        self,
        routes: RouteTable,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 300.0,
        wake_timeout: float = 600.0,
        idle_timeout: float = 4.0,
        max_idle: int = 64,
        public_url: str | None = None,
    ) -> None:
        self.routes = routes
        self.public_url = public_url  # server.public_url: where the pages link a Space's page on the Hub
        self.connect_timeout, self.wake_timeout = connect_timeout, wake_timeout
        self.pool = UpstreamPool(
            connect_timeout=connect_timeout, read_timeout=read_timeout, idle_timeout=idle_timeout, max_idle=max_idle
        )
        self._wakes: dict[str, asyncio.Task[RouteTarget]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        host = Headers(scope=scope).get("host", "")
        await self.handle(scope, receive, send, host.rsplit(":", 1)[0].rstrip(".").lower())

    async def handle(self, scope: Scope, receive: Receive, send: Send, host: str) -> None:
        """Serve one ``http`` or ``websocket`` request for ``host`` (lower case, no port)."""
        target = self.routes.lookup(host)
        if target is None:
            return await pages.not_found(scope, send)
        if grants.has_grant(scope):  # the Space page's iframe of a private Space: see proxy.grants
            return await grants.exchange(scope, send, self.routes, target.space_id)
        if target.private and not await self.routes.authorize(target.space_id, Headers(scope=scope)):
            return await pages.not_found(scope, send)
        if target.asleep:
            woken = await self._woken(scope, send, target)
            if woken is None:
                return
            target = woken
        self.routes.touch(target.space_id)
        if target.asgi is not None:
            return await target.asgi(scope, receive, send)
        assert target.upstream is not None
        if scope["type"] == "http":
            space_id = target.space_id
            return await self.forward(scope, receive, send, target.upstream, lambda: self._moved(space_id))
        headers, _ = forwarded_headers(scope)
        space_id = target.space_id
        await relay_websocket(
            scope,
            receive,
            send,
            target.upstream,
            headers,
            connect_timeout=self.connect_timeout,
            on_message=lambda: self.routes.touch(space_id),
        )

    # ---- waking ------------------------------------------------------------------------------------------------
    async def _woken(self, scope: Scope, send: Send, target: RouteTarget) -> RouteTarget | None:
        """The target to serve once the Space is awake, or ``None`` when this request has been answered."""
        wake = self._wakes.get(target.space_id)
        if wake is None:
            wake = asyncio.create_task(self.routes.wake(target.space_id))
            self._wakes[target.space_id] = wake
            wake.add_done_callback(lambda t, sid=target.space_id: self._wake_done(sid, t))
        if scope["type"] == "http" and scope["method"] == "GET" and pages.wants_html(scope):
            # A quick wake (a frozen Space thaws in milliseconds) serves the page itself; a slower one (a start)
            # shows the self-reloading "waking up" page without making the browser wait.
            done, _ = await asyncio.wait({wake}, timeout=BROWSER_WAKE_GRACE)
            if not done or wake.cancelled() or wake.exception() is not None or wake.result().asleep:
                # Only a request that may read the Space gets here (a private one was authorized above), so its
                # stage and its page on the Hub may be shown.
                link = pages.hub_page(scope, self.public_url, target.name) if target.name else None
                await pages.waking(scope, send, stage=target.stage, space_page=link)
                return None
            return wake.result()
        try:
            woken = await asyncio.wait_for(asyncio.shield(wake), self.wake_timeout)
        except TimeoutError:
            await pages.gateway_timeout(scope, send, f"The Space did not wake up within {self.wake_timeout:g}s.")
            return None
        except Exception as exc:
            log.warning("waking %s failed: %s", target.space_id, exc)
            await pages.unavailable(scope, send, "The Space could not be woken up.")
            return None
        if woken.asleep:
            await pages.unavailable(scope, send, "The Space is still asleep.")
            return None
        return woken

    def _wake_done(self, space_id: str, task: asyncio.Task[RouteTarget]) -> None:
        if self._wakes.get(space_id) is task:
            del self._wakes[space_id]
        if not task.cancelled() and task.exception() is not None:
            log.warning("waking %s failed: %s", space_id, task.exception())

    async def _moved(self, space_id: str) -> tuple[str, int] | None:
        """Where the Space serves now, asked of the runtime after its address refused a connection."""
        try:
            target = await asyncio.wait_for(self.routes.wake(space_id), self.wake_timeout)
        except Exception as exc:
            log.warning("re-routing %s failed: %s", space_id, exc)
            return None
        return target.upstream

    # ---- HTTP forwarding ---------------------------------------------------------------------------------------
    async def forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        upstream: tuple[str, int],
        moved: Callable[[], Awaitable[tuple[str, int] | None]] | None = None,
    ) -> None:
        """Forward one HTTP request to ``upstream`` and stream the answer back. ``moved`` answers the Space's
        address now, asked once when ``upstream`` refuses to connect."""
        headers, framing = forwarded_headers(scope)
        method = scope["method"]
        target = scope.get("raw_path") or scope["path"].encode()
        if scope["query_string"]:
            target += b"?" + scope["query_string"]
        parts = [method.encode(), b" ", target, b" HTTP/1.1\r\n"]
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        if framing == -2:
            parts.append(b"transfer-encoding: chunked\r\n")
        parts.append(b"\r\n")
        head = b"".join(parts)

        first: Message | None = None
        if framing != -1:  # read the first piece of the body: a small body goes up in the same write as the head
            first = await receive()
            if first["type"] == "http.disconnect":
                return
        pool = self.pool
        attempts = 0
        while True:
            attempt, attempts = attempts, attempts + 1
            conn = pool.take(upstream) if attempt == 0 else None  # a retry never trusts another idle connection
            try:
                if conn is None:
                    try:
                        conn = await pool.connect(upstream)
                    except UpstreamError as exc:
                        new = await moved() if moved is not None and not exc.timeout else None
                        moved = None  # asked once per request
                        if new is None or new == upstream:
                            raise
                        upstream = new
                        continue
                conn.head_only = method == "HEAD"
                pump = self._send_request(conn, head, first, framing, receive)
                if pump is None:
                    await conn.response_head()
                else:
                    await self._with_pump(conn, pump)
                break
            except UpstreamError as exc:
                if conn is not None:
                    pool.release(conn)
                if attempt == 0 and conn is not None and conn.reused and framing == -1 and not conn.got_bytes:
                    continue
                if exc.timeout:
                    return await pages.gateway_timeout(scope, send, str(exc))
                return await pages.bad_gateway(scope, send, str(exc))
            except BaseException:  # cancelled (shutdown): never leave a half-used connection in the pool
                if conn is not None:
                    conn.keep_alive = False
                    pool.release(conn)
                raise
        try:
            await self._respond(conn, send, receive)
        except BaseException:
            conn.keep_alive = False
            raise
        finally:
            pool.release(conn)

    def _send_request(
        self, conn: UpstreamConnection, head: bytes, first: Message | None, framing: int, receive: Receive
    ) -> asyncio.Task[None] | None:
        """Write the head and what is at hand of the body; a task streams the rest (``None`` when all is sent)."""
        if first is None:
            conn.write(head)
            return None
        body = first.get("body", b"")
        more = first.get("more_body", False)
        if framing == -2:
            chunk = b"%x\r\n%s\r\n" % (len(body), body) if body else b""
            conn.write(head + chunk + (b"" if more else b"0\r\n\r\n"))
        else:
            conn.write(head + body)
        if not more:
            return None
        return asyncio.create_task(self._pump(conn, framing, receive))

    async def _pump(self, conn: UpstreamConnection, framing: int, receive: Receive) -> None:
        """Stream the rest of the request body up, at the pace the app reads it."""
        while True:
            await conn.drain()
            message = await receive()
            if message["type"] == "http.disconnect":
                conn.fail(UpstreamError("The client went away"))
                return
            body, more = message.get("body", b""), message.get("more_body", False)
            if framing == -2:
                conn.write((b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + (b"" if more else b"0\r\n\r\n"))
            elif body:
                conn.write(body)
            if not more:
                return

    async def _with_pump(self, conn: UpstreamConnection, pump: asyncio.Task[None]) -> None:
        """Wait for the response head while the body streams up; an early answer (e.g. 413) stops the upload."""
        try:
            await conn.response_head()
        except BaseException:
            pump.cancel()
            raise
        if not pump.done():  # the app answered before reading the whole body: this connection cannot be reused
            conn.keep_alive = False
            pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, UpstreamError):
            await pump

    async def _respond(self, conn: UpstreamConnection, send: Send, receive: Receive) -> None:
        """Send the app's answer to the client, as it arrives."""
        if conn.complete:  # the whole answer is already here: one start and one body message
            body = b"".join(conn.body)
            conn.body.clear()
            await send({"type": "http.response.start", "status": conn.status, "headers": conn.headers})
            await send({"type": "http.response.body", "body": body})
            return
        await send({"type": "http.response.start", "status": conn.status, "headers": conn.headers})
        watcher = asyncio.create_task(_watch_disconnect(receive, conn))
        try:
            while True:
                try:
                    data = await conn.read_body()
                except UpstreamError:
                    if watcher.done():
                        return  # the client left: nothing to tell
                    raise
                if conn.complete and not conn.body:
                    await send({"type": "http.response.body", "body": data})
                    return
                if data:
                    await send({"type": "http.response.body", "body": data, "more_body": True})
        finally:
            watcher.cancel()


async def _watch_disconnect(receive: Receive, conn: UpstreamConnection) -> None:
    """Close the app's connection when the client leaves mid-answer (an endless SSE stream would leak it)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            conn.fail(UpstreamError("The client went away"))
            return
