"""Pooled keep-alive HTTP/1.1 connections to the apps: asyncio protocols with httptools' response parser.

No client object per request: a request takes an idle connection of its upstream (or opens one), writes its head and
body, and reads the parsed response as it arrives. Reading is paused when more than ``READ_HIGH_WATER`` bytes wait
for the client and writing waits for the socket to drain, so a slow client or a slow app bounds the memory a
request holds, whatever the size of its body. One sweeper task per pool closes idle connections before the apps'
own keep-alive timeout (uvicorn's is 5 s) and aborts requests whose upstream has been silent for ``read_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

import httptools

READ_HIGH_WATER = 256 * 1024
# Response headers a proxy never passes on: hop-by-hop (RFC 9110 §7.6.1) and, as nginx does, Date and Server,
# which the front server sets itself.
RESPONSE_DROP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
    | {b"date", b"server"}
)


class UpstreamError(Exception):
    """The app could not be reached, reset the connection, timed out or sent something that is not HTTP."""

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


class UpstreamConnection(asyncio.Protocol):
    """One HTTP/1.1 connection to an app, carrying one request at a time."""

    def __init__(self, pool: UpstreamPool, key: tuple[str, int]) -> None:
        self.pool, self.key = pool, key
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reused = False
        self.last_active = self.loop.time()
        self._drain: asyncio.Future[None] | None = None
        self._write_paused = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: deque[bytes] = deque()
        self.buffered = 0
        self.complete = False
        self.keep_alive = True
        self.head_only = False
        self.framed = False  # Content-Length or chunked: otherwise the body ends when the connection closes
        self.got_bytes = False
        self.error: UpstreamError | None = None
        self._interim = False
        self._head_done = False
        self._connection_tokens: bytes | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._reading_paused = False

    # ---- asyncio.Protocol ----------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport

    def data_received(self, data: bytes) -> None:
        self.last_active = self.loop.time()
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.fail(UpstreamError(f"The app sent an invalid HTTP response ({exc})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._head_done and not self.complete and not self.framed and exc is None and self.error is None:
            self.complete = True  # a body delimited by the end of the connection
            self.keep_alive = False
            self._wake()
        elif not self.complete:
            self.fail(UpstreamError("The app closed the connection" + (f" ({exc})" if exc else "")))
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    # ---- httptools callbacks -------------------------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name in RESPONSE_DROP:
            if name == b"transfer-encoding":
                self.framed = True
            elif name == b"connection":
                self._connection_tokens = value.lower()
            return
        if name == b"content-length":
            self.framed = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # interim (100 Continue, 103 Early Hints): the final response follows
            self._interim = True
            self.headers, self.framed = [], False
            return
        self.status = status
        self.keep_alive = self.parser.should_keep_alive() and not self.head_only
        if self._connection_tokens:
            listed = {t.strip() for t in self._connection_tokens.split(b",")}
            self.headers = [(n, v) for n, v in self.headers if n not in listed]
        self._head_done = True
        if self.head_only:
            self.complete = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return
        self.body.append(body)
        self.buffered += len(body)
        if self.buffered > READ_HIGH_WATER and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self.complete = True
        self._wake()

    # ---- used by the proxy ---------------------------------------------------------------------------------------
    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def fail(self, error: UpstreamError) -> None:
        """Record ``error`` for the request in flight, wake it, and drop the connection."""
        if self.error is None:
            self.error = error
        self.keep_alive = False
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self.abort()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    async def drain(self) -> None:
        """Wait until the socket buffer is below its high-water mark (uploads must not pile up in memory)."""
        self.last_active = self.loop.time()
        if self._write_paused and not self.closed:
            self._drain = self.loop.create_future()
            await self._drain
        if self.error is not None:
            raise self.error
        if self.closed:
            raise UpstreamError("The app closed the connection")

    async def response_head(self) -> None:
        """Wait for the status line and headers (``self.status``, ``self.headers``)."""
        while not self._head_done:
            if self.error is not None:
                raise self.error
            self._waiter = self.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def read_body(self) -> bytes:
        """Everything buffered so far (waiting if nothing is); ``b""`` with ``self.complete`` at the end."""
        while not self.body and not self.complete:
            if self.error is not None:
                raise self.error
            self._waiter = self.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if not self.body:
            return b""
        data = self.body.popleft() if len(self.body) == 1 else b"".join(self.body)
        self.body.clear()
        self.buffered = 0
        if self._reading_paused and self.transport is not None and not self.closed:
            self._reading_paused = False
            self.transport.resume_reading()
        return data

    @property
    def waiting(self) -> bool:
        return self._waiter is not None and not self._reading_paused


class UpstreamPool:
    """Idle keep-alive connections per upstream ``(host, port)``, most recently used first."""

    def __init__(
        self,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 300.0,
        idle_timeout: float = 4.0,
        max_idle: int = 64,
    ) -> None:
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.idle_timeout, self.max_idle = idle_timeout, max_idle
        self.idle: dict[tuple[str, int], list[UpstreamConnection]] = {}
        self.busy: set[UpstreamConnection] = set()
        self.opened = 0  # connections opened since start (tests and the benchmark read it)
        self._sweeper: asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def take(self, key: tuple[str, int]) -> UpstreamConnection | None:
        """An idle connection to ``key`` that is still open, marked busy; ``None`` when there is none."""
        if self.loop is not asyncio.get_running_loop():
            self._adopt(asyncio.get_running_loop())
            return None
        idle = self.idle.get(key)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                conn.reused = True
                conn._reset()
                self.busy.add(conn)
                return conn
        return None

    async def connect(self, key: tuple[str, int]) -> UpstreamConnection:
        """Open a new connection to ``key``, marked busy. Raises ``UpstreamError`` when it cannot."""
        loop = asyncio.get_running_loop()
        if self.loop is not loop:
            self._adopt(loop)
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(lambda: UpstreamConnection(self, key), key[0], key[1])
        except TimeoutError:
            message = f"Connecting to the app timed out after {self.connect_timeout:g}s"
            raise UpstreamError(message, timeout=True) from None
        except OSError as exc:
            raise UpstreamError(f"The app is not answering on port {key[1]} ({exc.strerror or exc})") from None
        self.opened += 1
        self.busy.add(conn)
        return conn

    def release(self, conn: UpstreamConnection) -> None:
        """Give back a connection after its request: kept when the exchange ended cleanly, else closed."""
        self.busy.discard(conn)
        idle = self.idle.setdefault(conn.key, [])
        if conn.complete and conn.keep_alive and not conn.closed and conn.error is None and len(idle) < self.max_idle:
            conn.last_active = conn.loop.time()
            idle.append(conn)
        else:
            conn.abort()

    def _adopt(self, loop: asyncio.AbstractEventLoop) -> None:
        """First use on ``loop`` (tests may run several loops in one process): forget other loops' connections."""
        self.idle.clear()
        self.busy.clear()
        self.loop = loop
        self._sweeper = loop.create_task(self._sweep())

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(1.0)
            now = loop.time()
            for idle in self.idle.values():
                stale = [c for c in idle if c.closed or now - c.last_active > self.idle_timeout]
                for conn in stale:
                    idle.remove(conn)
                    conn.abort()
            for conn in list(self.busy):
                if conn.waiting and now - conn.last_active > self.read_timeout:
                    conn.fail(UpstreamError(f"The app sent nothing for {self.read_timeout:g}s", timeout=True))

    async def close(self) -> None:
        """Close every connection and stop the sweeper."""
        for idle in self.idle.values():
            for conn in idle:
                conn.abort()
        self.idle.clear()
        for conn in self.busy:
            conn.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
