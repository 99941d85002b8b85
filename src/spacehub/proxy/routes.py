"""The routing contract between the proxy and the runtime: ``RouteTable`` (a Protocol) and ``RouteTarget``.

The proxy asks the table, on every request to ``{subdomain}.{spaces_domain}``, where the request goes:

- ``lookup(host)`` with the request's host name (lower case, no port, no trailing dot: ``"alice-demo.localhost"``)
  answers a ``RouteTarget`` or ``None`` (no such Space: 404). It is called on every request, so it must be a dict
  lookup, never a database query.
- A target is exactly one of: an ``upstream`` ``(host, port)`` the request is forwarded to; an ``asgi`` app that
  serves it in-process (static Spaces served from git, "paused", "building", "runtime error" pages); or ``asleep``
  (the Space sleeps, builds or starts: ``wake`` is awaited first). Each carries ``space_id`` and ``private``; an
  asleep target may also carry the Space's ``stage`` (``BUILDING``, ``APP_STARTING``, ``SLEEPING``…) and ``name``
  (``owner/name``), which the browser's "waking up" page shows (it says "Building" and links the build log on the
  Space's page). Both are shown only to a request that passed ``authorize``.
- ``touch(space_id)`` runs on every request that reaches a Space (upstream or asgi): the runtime tracks the last
  activity for sleep. It must be cheap: record a timestamp in memory, never write to the database per request.
- ``await wake(space_id)`` runs when the target is asleep and answers the target to use once the app answers HTTP.
  Browsers (``Accept: text/html`` GETs) do not wait: they get a "waking up" page that reloads itself, while the
  wake goes on in the background. Concurrent wakes of one Space are coalesced by the proxy into one call.
- ``await authorize(space_id, headers)`` runs before anything else for a ``private`` target: ``True`` when the
  request carries a token that may read the Space (``request_token`` finds it in ``Authorization: Bearer`` or in the
  ``spacehub_token`` cookie set by the web login). It is async because checking a token is a database query the
  implementation may want to run in a thread or cache. Refused requests get the same 404 as an unknown host, so a
  private Space's existence is never revealed.

A visitor's hub credentials are read by the proxy and never handed to the app (public Spaces too): the
``spacehub_token`` cookie is removed from ``Cookie``, and an ``Authorization`` header is removed when it carries a hub
token (``is_hub_authorization``: the ``Bearer`` scheme with a credential that starts with ``hf_``, SpaceHub's token
format). Any other ``Authorization`` (``Basic``, ``Bearer <the app's own key>``) is the app's own and is forwarded.

``StaticRouteTable`` is the in-memory implementation used by the tests and the benchmark; the runtime's reconciler
provides the real one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from starlette.types import ASGIApp

TOKEN_COOKIE = "spacehub_token"
HUB_TOKEN_PREFIX = "hf_"  # every SpaceHub token starts with it (services.accounts.create_token), as the Hub's do


@dataclass(frozen=True, slots=True)
class RouteTarget:
    """Where one Space's traffic goes now: exactly one of ``upstream``, ``asgi`` or ``asleep``."""

    space_id: str
    upstream: tuple[str, int] | None = None
    asgi: ASGIApp | None = None
    asleep: bool = False
    private: bool = False
    stage: str | None = None  # an asleep target's stage, when the runtime knows it: what the waking page says
    name: str | None = None  # the Space's "owner/name": the waking page links its page on the Hub (its logs)

    def __post_init__(self) -> None:
        if (self.upstream is not None) + (self.asgi is not None) + self.asleep != 1:
            raise ValueError("a RouteTarget is exactly one of upstream, asgi or asleep")

    @classmethod
    def to_upstream(cls, space_id: str, host: str, port: int, *, private: bool = False) -> RouteTarget:
        """Forward to the app listening on ``host:port``."""
        return cls(space_id, upstream=(host, port), private=private)

    @classmethod
    def to_asgi(cls, space_id: str, app: ASGIApp, *, private: bool = False) -> RouteTarget:
        """Serve in-process with ``app`` (static files, status pages)."""
        return cls(space_id, asgi=app, private=private)

    @classmethod
    def sleeping(
        cls, space_id: str, *, private: bool = False, stage: str | None = None, name: str | None = None
    ) -> RouteTarget:
        """The Space sleeps, builds or starts (``stage``, when known): the proxy awaits ``RouteTable.wake`` before
        serving; a browser gets the self-reloading page, which names ``stage`` and links the Space ``name``'s page."""
        return cls(space_id, asleep=True, private=private, stage=stage, name=name)


@runtime_checkable
class RouteTable(Protocol):
    """What the proxy needs from the runtime. See the module docstring for the contract of each method."""

    def lookup(self, host: str) -> RouteTarget | None: ...

    def touch(self, space_id: str) -> None: ...

    async def wake(self, space_id: str) -> RouteTarget: ...

    async def authorize(self, space_id: str, headers: Mapping[str, str]) -> bool: ...

    def exchange_grant(self, space_id: str, grant: str) -> str | None:
        """The value of a host-only ``spacehub_token`` cookie for ``space_id`` in exchange for a valid URL grant
        (``?__sign=``, made by the Space page for a signed-in reader: `services.space_grants`); None when it is
        not valid for this Space. Cheap (a signature check): it runs on the event loop."""
        ...


def is_hub_authorization(value: str | bytes) -> bool:
    """True when an ``Authorization`` value carries a hub token: the scheme is ``Bearer`` (any case) and the
    credential starts with ``hf_``, as every SpaceHub token does (``accounts.create_token``: ``hf_`` + 34 letters and
    digits; Hugging Face's tokens look the same). The proxy strips such a header before the request reaches the app
    (whether or not the token is valid); every other value (``Basic …``, a ``Bearer`` key of the app's own) belongs
    to the app and is forwarded."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    scheme, _, credential = value.strip().partition(" ")
    return scheme.lower() == "bearer" and credential.strip().startswith(HUB_TOKEN_PREFIX)


def request_token(headers: Mapping[str, str]) -> str | None:
    """The SpaceHub token a request carries: a hub token in ``Authorization: Bearer``, else the ``spacehub_token``
    cookie, else any other ``Bearer`` credential (which can only fail the check: it may be the app's own key, and
    must not hide the visitor's login cookie)."""
    auth = headers.get("authorization", "")
    if is_hub_authorization(auth):
        return auth.strip().partition(" ")[2].strip()
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == TOKEN_COOKIE and value:
            return value
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


@dataclass
class StaticRouteTable:
    """An in-memory ``RouteTable``: a dict of host → target, for tests, the benchmark and development.

    ``readers`` maps a private Space id to the tokens that may read it. ``wakers`` maps a Space id to an async
    function called by ``wake`` (e.g. one that starts the app); by default ``wake`` fails with ``LookupError``.
    """

    routes: dict[str, RouteTarget] = field(default_factory=dict)
    readers: dict[str, set[str]] = field(default_factory=dict)
    wakers: dict[str, Callable[[], Awaitable[RouteTarget]]] = field(default_factory=dict)
    last_activity: dict[str, float] = field(default_factory=dict)
    wake_calls: dict[str, int] = field(default_factory=dict)
    grants: dict[tuple[str, str], str] = field(default_factory=dict)  # (space id, URL grant) → cookie value

    def set(self, host: str, target: RouteTarget) -> None:
        """Route ``host`` (``"alice-demo.localhost"``) to ``target``."""
        self.routes[host.lower()] = target

    def remove(self, host: str) -> None:
        self.routes.pop(host.lower(), None)

    def lookup(self, host: str) -> RouteTarget | None:
        return self.routes.get(host)

    def public_upstreams(self) -> dict[str, tuple[str, int]]:
        """Host → app address of the public Spaces with a running app: what the nginx data plane serves itself."""
        return {h: t.upstream for h, t in self.routes.items() if t.upstream is not None and not t.private}

    def touch(self, space_id: str) -> None:
        self.last_activity[space_id] = time.monotonic()

    async def wake(self, space_id: str) -> RouteTarget:
        self.wake_calls[space_id] = self.wake_calls.get(space_id, 0) + 1
        waker = self.wakers.get(space_id)
        if waker is None:
            raise LookupError(f"no way to wake {space_id}")
        target = await waker()
        for host, old in list(self.routes.items()):
            if old.space_id == space_id:
                self.routes[host] = target
        return target

    def exchange_grant(self, space_id: str, grant: str) -> str | None:
        return self.grants.get((space_id, grant))

    async def authorize(self, space_id: str, headers: Mapping[str, str]) -> bool:
        await asyncio.sleep(0)
        token = request_token(headers)
        return token is not None and token in self.readers.get(space_id, set())
