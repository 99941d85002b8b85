"""Puts the runtime together: backend, reconciler, route table, and the event subscriptions that connect the repo
layer to them. `attach_runtime(app, ctx)` is called by `create_app`; `build_server(settings)` is what
`spacehub serve` runs (the Hub app behind the Host dispatcher and the Space proxy).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from email.utils import formatdate
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spacehub.api import hardware as hardware_api
from spacehub.config import Settings
from spacehub.runtime.backends.base import Backend
from spacehub.runtime.devices import inventory_from_settings
from spacehub.runtime.front import FrontDoor
from spacehub.runtime.hardware import Catalog, this_machine
from spacehub.runtime.reconciler import Reconciler, RuntimeDeps
from spacehub.runtime.scheduling import Scheduler
from spacehub.runtime.space_storage import StorageReader
from spacehub.services.billing import Meter
from spacehub.services.context import HubContext, RepoEvent
from spacehub.services.formats import subdomain
from spacehub.services.hardware import HardwarePolicy
from spacehub.space_routes import RuntimeRouteTable


def hub_url(settings: Settings) -> str:
    return (settings.server.public_url or f"http://127.0.0.1:{settings.server.port}").rstrip("/")


def make_backend(settings: Settings) -> Backend:
    if settings.runtime.backend == "fake":
        from spacehub.runtime.backends.fake import FakeBackend

        return FakeBackend()
    from spacehub.runtime.backends.local import LocalProcessBackend

    rt = settings.runtime
    return LocalProcessBackend(
        settings.data_dir / "runtime",
        use_cgroups=rt.use_cgroups,
        uv_cache_dir=rt.uv_cache_dir,
        storage_enforcement=rt.storage_enforcement,
        sandbox=rt.sandbox,
        outbound=rt.outbound,
    )


def make_scheduler(settings: Settings) -> Scheduler:
    """The flavor catalog, this machine's CPUs, memory and accelerators, and the resource policy. Raises:
    InventoryError (a malformed device inventory: the server does not start)."""
    rt = settings.runtime
    return Scheduler(Catalog.load(rt.flavors_file), this_machine(), inventory_from_settings(rt), rt.resource_policy)


def attach_runtime(app: FastAPI, ctx: HubContext) -> None:
    """Create the reconciler and route table for ``app`` (none when ``runtime.backend`` is "none")."""
    settings = ctx.settings
    app.state.routes = None
    scheduler = make_scheduler(settings)
    hardware_api.install(app, HardwarePolicy(scheduler, settings.runtime.custom_sleep_on_free_hardware))
    if settings.runtime.backend == "none":
        return
    port = settings.server.port
    domain = settings.runtime.spaces_domain
    rec = Reconciler(
        RuntimeDeps(
            settings=settings,
            db=ctx.db,
            git=ctx.git,
            backend=make_backend(settings),
            catalog=scheduler.catalog,
            scheduler=scheduler,
            meter=Meter(ctx.db, scheduler.catalog).observe,
            user_env=ctx.space_env,
            storage=StorageReader(settings, ctx.git),
            hub_url=lambda: hub_url(settings),
            space_host=lambda full_name: f"{subdomain(full_name)}.{domain}:{port}",
        )
    )
    routes = RuntimeRouteTable(ctx, rec)
    app.state.reconciler, app.state.routes = rec, routes
    monitor = None
    if settings.runtime.backend == "local":  # storage usage is measured where the data lives
        from spacehub.runtime.storage_monitor import StorageMonitor

        monitor = StorageMonitor(settings, ctx.db, rec.kick_threadsafe)
    ctx.runtime = FrontDoor(rec, monitor)

    # The host index is rebuilt when a Space's creation, deletion, move or change of visibility commits, in the
    # committing thread: the API call returns only after the proxy knows (no timer, no event delay).
    routes.watch(ctx.db)

    def on_event(event: RepoEvent) -> None:  # delivered once the change has committed (`Events.publish`)
        if event.repo_type == "space":
            rec.kick_threadsafe(event.repo_id)

    ctx.events.subscribe(on_event)
    previous = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with previous(a) as state:
            routes.loop = asyncio.get_running_loop()
            await _refresh_now(routes)
            await rec.start()
            if monitor is not None:
                await monitor.start()  # after the reconciler: it stops Spaces through it
            refresher = asyncio.ensure_future(_refresh_forever(routes, settings.runtime.reconcile_interval))
            try:
                yield state
            finally:
                refresher.cancel()
                if monitor is not None:
                    await monitor.stop()
                await rec.stop()

    app.router.lifespan_context = lifespan


async def _refresh_now(routes: RuntimeRouteTable) -> None:
    if await asyncio.to_thread(routes.refresh):
        routes.notify()


async def _refresh_forever(routes: RuntimeRouteTable, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        await _refresh_now(routes)


def build_server(settings: Settings) -> ASGIApp:
    """The whole server: the Hub app, and in front of it the Host dispatcher with the Space proxy."""
    from spacehub.app import create_app
    from spacehub.proxy.dispatch import space_server
    from spacehub.proxy.routes import StaticRouteTable

    app = create_app(settings)
    routes = app.state.routes or StaticRouteTable()
    server = space_server(app, settings, routes)
    plane = server.data_plane
    if plane is not None and app.state.routes is not None:  # nginx mode: keep nginx's upstreams current
        table: RuntimeRouteTable = app.state.routes
        app.state.reconciler.route_listeners.append(lambda: plane.set_routes(table.public_upstreams()))
        table.listeners.append(lambda: plane.set_routes(table.public_upstreams()))
        table.sync_listeners.append(lambda old, new: plane.close_hosts(*closed_and_opened(old, new)))
    return server


def closed_and_opened(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Hosts whose entry changed between two host indexes: those no longer public (private, moved away, deleted),
    whose direct nginx path must close at once, and those public now, whose path may open."""
    closed, opened = [], []
    for host in old.keys() | new.keys():
        space = new.get(host)
        if space == old.get(host):
            continue
        (opened if space is not None and not space.private else closed).append(host)
    return closed, opened


class DateHeader:
    """Sets an exact ``Date`` on every HTTP response (``spacehub serve`` turns uvicorn's own off).

    uvicorn refreshes its Date once per second, on a timer, so it can lag the clock by up to two seconds.
    ``HfApi.fetch_space_logs`` (no follow) stops at the first log line stamped later than Date + 1 s, so with
    uvicorn's Date it dropped the last lines of a log written just before the call: a build's error lines.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._second = -1
        self._value = b""

    def _now(self) -> bytes:
        second = int(time.time())
        if second != self._second:
            self._second, self._value = second, formatdate(second, usegmt=True).encode()
        return self._value

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def dated(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"date"]
                message = {**message, "headers": [(b"date", self._now()), *headers]}
            await send(message)

        await self.app(scope, receive, dated)
