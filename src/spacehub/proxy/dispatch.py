"""``HostDispatcher``: the outermost ASGI app. Requests for ``*.{spaces_domain}`` (any port) go to the Space proxy,
everything else (and lifespan) to the Hub app.

It sits in front of FastAPI, so proxied requests never pass through the Hub's middleware stack: a Space request
costs one header scan here and then only the proxy's own work.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from spacehub.proxy.forwarding import SpaceProxy


def space_host(headers: list[tuple[bytes, bytes]], suffix: bytes) -> str | None:
    """The host name (lower case, no port) when the ``Host`` header is a subdomain of the Spaces domain."""
    for name, value in headers:
        if name == b"host":
            if value.startswith(b"["):  # an IPv6 literal is never a Space
                return None
            hostname = value.partition(b":")[0].rstrip(b".").lower()
            if hostname.endswith(suffix) and len(hostname) > len(suffix):
                return hostname.decode("latin-1")
            return None
    return None


class HostDispatcher:
    """Route by ``Host``: ``{subdomain}.{spaces_domain}`` → ``proxy``, anything else → ``hub``."""

    def __init__(self, hub: ASGIApp, proxy: SpaceProxy, spaces_domain: str) -> None:
        self.hub, self.proxy = hub, proxy
        self.suffix = b"." + spaces_domain.strip(".").lower().encode("idna")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = space_host(scope["headers"], self.suffix)
            if host is not None:
                return await self.proxy.handle(scope, receive, send, host)
        elif scope["type"] == "lifespan":
            return await self._lifespan(scope, receive, send)
        await self.hub(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The Hub's lifespan, then closing the proxy's upstream connections at shutdown."""

        async def send_and_close(message: dict) -> None:  # type: ignore[type-arg]
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await self.proxy.pool.close()
            await send(message)

        await self.hub(scope, receive, send_and_close)
