"""``HostDispatcher``: the outermost ASGI app. Requests for ``*.{spaces_domain}`` (any port) go to the Space proxy,
everything else (and lifespan) to the Hub app. ``space_server`` builds it from the settings.

It sits in front of FastAPI, so proxied requests never pass through the Hub's middleware stack: a Space request
costs one header scan here and then only the proxy's own work.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spacehub.config import Settings
from spacehub.proxy.forwarding import SpaceProxy
from spacehub.proxy.nginx import NginxDataPlane
from spacehub.proxy.routes import RouteTable


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
    """Route by ``Host``: ``{subdomain}.{spaces_domain}`` → ``proxy``, anything else → ``hub``.

    With a ``data_plane`` (nginx mode) the lifespan also starts nginx after the Hub has started and stops it first.
    """

    def __init__(
        self, hub: ASGIApp, proxy: SpaceProxy, spaces_domain: str, data_plane: NginxDataPlane | None = None
    ) -> None:
        self.hub, self.proxy, self.data_plane = hub, proxy, data_plane
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
        """The Hub's lifespan, plus nginx (started after the Hub) and the proxy's connections (closed at the end)."""

        async def wrapped_receive() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown" and self.data_plane is not None:
                await self.data_plane.stop()
            return message

        async def wrapped_send(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete" and self.data_plane is not None:
                try:
                    await self.data_plane.start()
                except Exception as exc:
                    message = {"type": "lifespan.startup.failed", "message": f"nginx data plane: {exc}"}
            elif message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await self.proxy.pool.close()
            await send(message)

        await self.hub(scope, wrapped_receive, wrapped_send)


def listen_address(settings: Settings) -> tuple[str, int]:
    """Where SpaceHub's own server binds: ``server.host:port``, or loopback on the backend port in nginx mode."""
    if settings.proxy.mode == "nginx":
        return "127.0.0.1", settings.proxy.nginx_backend_port or settings.server.port + 1
    return settings.server.host, settings.server.port


def space_server(hub: ASGIApp, settings: Settings, routes: RouteTable, **options: Any) -> HostDispatcher:
    """The app ``spacehub serve`` runs: ``hub`` for the Hub's hosts, the Space proxy (and nginx) for Spaces."""
    p = settings.proxy
    proxy = SpaceProxy(
        routes,
        connect_timeout=p.connect_timeout,
        read_timeout=p.read_timeout,
        wake_timeout=p.wake_timeout,
        public_url=settings.server.public_url,
    )
    plane = None
    if p.mode == "nginx":
        plane = NginxDataPlane(
            routes,
            directory=settings.data_dir / "nginx",
            listen=(settings.server.host, settings.server.port),
            backend=listen_address(settings),
            binary=p.nginx_binary,
            connect_timeout=p.connect_timeout,
            read_timeout=p.read_timeout,
            **options,
        )
    return HostDispatcher(hub, proxy, settings.runtime.spaces_domain, data_plane=plane)
