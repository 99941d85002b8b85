"""The Space data path: a streaming reverse proxy from ``{subdomain}.{spaces_domain}`` to each Space's app.

``HostDispatcher`` (dispatch.py) splits Hub and Space traffic by ``Host``; ``SpaceProxy`` (forwarding.py) routes,
authorizes, wakes and forwards; ``upstream.py`` holds the pooled app connections; ``routes.py`` is the contract the
runtime implements. See docs/architecture.md, section "Proxy".
"""

from spacehub.proxy.dispatch import HostDispatcher, listen_address, space_server
from spacehub.proxy.forwarding import SpaceProxy
from spacehub.proxy.nginx import NginxDataPlane
from spacehub.proxy.routes import RouteTable, RouteTarget, StaticRouteTable, is_hub_authorization, request_token

__all__ = [
    "HostDispatcher",
    "NginxDataPlane",
    "RouteTable",
    "RouteTarget",
    "SpaceProxy",
    "StaticRouteTable",
    "is_hub_authorization",
    "listen_address",
    "request_token",
    "space_server",
]
