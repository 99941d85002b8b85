"""The composition root: the one place where SpaceHub is put together, with explicit arguments.

`hub_context` builds what services work with (stores, secrets key, hardware policy, create options), `attach_runtime`
the backend, reconciler, route table and storage monitor with the event subscription and the front door
(``ctx.runtime``) that connect the Hub to them, `assemble` the Hub app over both, and `build_server` what
`spacehub serve` runs (the Hub app behind the Host dispatcher and the Space proxy). Nothing else wires: no module
finds a collaborator on ``app.state`` (handlers find ``ctx`` there, and only that).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spacehub.app import create_app
from spacehub.config import Settings
from spacehub.flavors import Catalog, this_machine
from spacehub.git.hooks import install_hooks
from spacehub.proxy.space_routes import RuntimeRouteTable
from spacehub.runtime.backends.base import Backend, PermanentBackendError
from spacehub.runtime.checkout import RepoFiles
from spacehub.runtime.devices import inventory_from_settings
from spacehub.runtime.front import FrontDoor
from spacehub.runtime.logs import SpaceLogs
from spacehub.runtime.reconciler import Reconciler, RuntimeDeps
from spacehub.runtime.scheduling import Scheduler, capped
from spacehub.runtime.space_storage import StorageReader
from spacehub.services import accounts, commits, hardware, space_settings, starters, storage, webhooks
from spacehub.services.billing import Meter
from spacehub.services.context import HubContext, RepoEvent
from spacehub.services.creation import SpaceOption
from spacehub.services.crypto import SecretBox
from spacehub.services.formats import subdomain
from spacehub.services.hardware import HardwarePolicy
from spacehub.storage.blobs import LocalBlobStore
from spacehub.storage.db import Database, upgrade_schema
from spacehub.storage.git import GitStore
from spacehub.storage.lease import Lease, holder_id
from spacehub.storage.models import Repo

log = logging.getLogger("spacehub")
ROUTES_REFRESH = 60.0  # seconds: the host index is also rebuilt this often (a safety net: commits update it)


def hub_url(settings: Settings) -> str:
    return (settings.server.public_url or f"http://127.0.0.1:{settings.server.port}").rstrip("/")


def make_backend(settings: Settings, git: GitStore, db: Database | None = None) -> Backend:
    """The backend ``runtime.backend`` names, given what it needs of this machine: where it reads repos, where the
    Spaces' storage lives and the run logs it writes (the reconciler's log store); a cluster backend, the database
    (a Space's name, and the token scoped to it that its pods fetch its code with)."""
    logs_root = settings.data_dir / "spaces"

    def run_log(space_id: str) -> Path:
        return SpaceLogs(logs_root, space_id).path("run")

    if settings.runtime.backend == "fake":
        from spacehub.runtime.backends.fake import FakeBackend

        return FakeBackend(run_log=run_log)
    if settings.runtime.backend == "kubernetes":
        if db is None:
            raise ValueError("the Kubernetes backend needs the database")
        return make_kubernetes_backend(settings, fetch_access(db), run_log)
    from spacehub.runtime.backends.local import LocalProcessBackend

    rt = settings.runtime
    return LocalProcessBackend(
        settings.data_dir / "runtime",
        repos=RepoFiles(git.path, settings.lfs_dir),
        run_log=run_log,
        storage_root=settings.data_dir / "storage",
        use_cgroups=rt.use_cgroups,
        uv_cache_dir=rt.uv_cache_dir,
        storage_enforcement=rt.storage_enforcement,
        sandbox=rt.sandbox,
        outbound=rt.outbound,
        build_user=rt.build_user,
    )


def fetch_access(db: Database) -> Any:
    """(space id, the token it holds now) → (its "owner/name", a token that reads that Space and nothing else: the
    one it holds while still valid, else a new one). Raises: PermanentBackendError (the Space is gone)."""

    def access(space_id: str, current: str | None = None) -> tuple[str, str]:
        with db.transaction() as s:
            repo = s.get(Repo, space_id)
            if repo is None:
                raise PermanentBackendError(f"space {space_id} does not exist")
            if current is not None and accounts.is_fetch_token_of(s, repo, current):
                return repo.full_name, current
            return repo.full_name, accounts.create_fetch_token(s, repo)

    return access


def make_kubernetes_backend(settings: Settings, access: Any, run_log: Any) -> Backend:
    """The Kubernetes backend of the ``kubernetes`` settings (the only place that imports it, lazily: the client
    package is an optional dependency)."""
    from spacehub.runtime.backends.kubernetes.backend import KubernetesBackend
    from spacehub.runtime.backends.kubernetes.manifests import ClusterOptions, Peer
    from spacehub.runtime.backends.kubernetes.objects import Cluster, connect

    k = settings.kubernetes
    options = ClusterOptions(
        namespace=k.namespace,
        hub=Peer(cidrs=tuple(k.hub_cidrs), pod_labels=k.hub_pod_labels, namespace_labels=k.hub_namespace_labels),
        hub_ports=tuple(k.hub_ports),
        allow_internet=k.allow_internet,
        cluster_cidrs=tuple(k.cluster_cidrs),
        storage_class=k.storage_class,
        pod_firewall=k.pod_firewall,
        firewall_image=k.firewall_image,
        env_cache=(
            {"persistentVolumeClaim": {"claimName": k.env_cache_claim}}
            if k.env_cache_claim
            else {"hostPath": {"path": k.env_cache_host_path, "type": "DirectoryOrCreate"}}
            if k.env_cache_host_path
            else None
        ),
    )
    return KubernetesBackend(
        Cluster(connect(k.kubeconfig, k.context), k.namespace),
        options,
        access,
        k.hub_url or hub_url(settings),
        image=k.image,
        catalog=Catalog.load(settings.runtime.flavors_file),
        run_log=run_log,
        build_timeout=k.build_timeout,
        endpoints=k.endpoints,
        sdk_packages=k.sdk_packages,
        registry=k.registry,
        registry_tls_verify=k.registry_tls_verify,
        registry_auth_file=k.registry_auth_file,
        registry_pull_secret=k.registry_pull_secret,
        build_user=settings.runtime.build_user,
        env_keep_days=k.env_cache_keep_days,
    )


def make_scheduler(settings: Settings) -> Scheduler:
    """The flavor catalog, this machine's CPUs, memory and accelerators, and the resource policy. Raises:
    InventoryError (a malformed device inventory: the server does not start)."""
    rt = settings.runtime
    return Scheduler(Catalog.load(rt.flavors_file), this_machine(), inventory_from_settings(rt), rt.resource_policy)


def hardware_policy(scheduler: Scheduler, custom_sleep_on_free: bool = False) -> HardwarePolicy:
    """The hardware API's view of ``scheduler``: its catalog, and what this machine makes of each flavor."""
    return HardwarePolicy(
        scheduler.catalog, scheduler.unfit, lambda f: capped(f, scheduler.machine)[2], custom_sleep_on_free
    )


def hub_context(settings: Settings, scheduler: Scheduler | None = None) -> HubContext:
    """Everything the Hub's services work with: the data dir made, the schema upgraded, the git hooks installed,
    the stores opened, the secrets key (made at first start), the hardware policy of ``scheduler`` (this machine's
    by default) and the options create and duplicate bodies may carry. No runtime yet (`assemble` adds it)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    left = commits.remove_leftover_folders(settings.tmp_dir)  # a crash's commit folders (never one in use)
    if left:
        log.warning("removed %d temporary commit folder(s) left by a crash: %s", len(left), ", ".join(left))
    upgrade_schema(settings.database_url)
    scheduler = scheduler or make_scheduler(settings)
    box = SecretBox.for_data_dir(settings.data_dir)
    ctx = HubContext(
        settings=settings,
        db=Database(settings.database_url),
        git=GitStore(settings.repos_dir, install_hooks(settings)),
        blobs=LocalBlobStore(settings.lfs_dir, settings.tmp_dir),
        secrets=box,
        hardware=hardware_policy(scheduler, settings.runtime.custom_sleep_on_free_hardware),
    )
    ctx.space_env = space_settings.env_reader(box)
    ctx.webhook_sender = webhooks.WebhookSender(ctx.db, settings, box)  # sends nothing until `assemble` starts it
    ctx.space_options += [
        SpaceOption(space_settings.create_check, space_settings.create_hook),
        SpaceOption(hardware.create_check(ctx.hardware), hardware.create_hook(ctx.hardware)),
        SpaceOption(storage.create_check, storage.create_hook),
        SpaceOption(starters.template_check, starters.template_hook),  # last: commits once the Space is set up
    ]
    return ctx


@dataclass
class Assembly:
    """The parts of one server, built once: the services' context, the Hub app, and the runtime beside it (None
    when ``runtime.backend`` is "none")."""

    ctx: HubContext
    app: FastAPI
    reconciler: Reconciler | None = None
    routes: RuntimeRouteTable | None = None


def assemble(settings: Settings) -> Assembly:
    """The composition root: every part of the server, with explicit arguments, in the one order that works."""
    scheduler = make_scheduler(settings)
    ctx = hub_context(settings, scheduler)
    if settings.runtime.backend == "none":
        if ctx.webhook_sender is not None:
            ctx.webhook_sender.start()  # deliveries left by an earlier run go out now
        return Assembly(ctx, create_app(ctx))
    rec, routes, lifespan = attach_runtime(ctx, scheduler)
    return Assembly(ctx, create_app(ctx, lifespan), rec, routes)


def build_app(settings: Settings) -> FastAPI:
    """The Hub app with its runtime (what tests and benchmarks serve in-process)."""
    return assemble(settings).app


def attach_runtime(ctx: HubContext, scheduler: Scheduler) -> tuple[Reconciler, RuntimeRouteTable, Any]:
    """The reconciler, the route table and the storage monitor over ``ctx``: ``ctx.runtime`` becomes their front
    door, Space events reach the reconciler, and the answered lifespan starts and stops them with the app."""
    rec, front, run_runtime = make_runtime(ctx, scheduler)
    routes = RuntimeRouteTable(ctx, front)
    serve_routes = route_table(ctx, routes)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        async with run_runtime(app), serve_routes(app):
            yield

    return rec, routes, lifespan


def make_runtime(ctx: HubContext, scheduler: Scheduler) -> tuple[Reconciler, FrontDoor, Any]:
    """The reconciler and the storage monitor over ``ctx``, behind the front door that becomes ``ctx.runtime``;
    Space events reach it; the answered lifespan takes the runtime's lease and starts them (and the webhook sender),
    and stops them."""
    settings = ctx.settings
    port = settings.server.port
    domain = settings.runtime.spaces_domain
    backend = make_backend(settings, ctx.git, ctx.db)
    rec = Reconciler(
        RuntimeDeps(
            settings=settings,
            db=ctx.db,
            git=ctx.git,
            backend=backend,
            catalog=scheduler.catalog,
            scheduler=scheduler,
            meter=Meter(ctx.db, scheduler.catalog).observe,
            user_env=ctx.space_env,
            storage=StorageReader(settings, ctx.git, backend.storage_size),
            hub_url=lambda: hub_url(settings),
            space_host=lambda full_name: f"{subdomain(full_name)}.{domain}:{port}",
            status_listener=webhooks.space_status_listener(ctx),
        )
    )
    monitor: Any = None
    if settings.runtime.backend == "local":  # storage usage is measured where the data lives
        from spacehub.runtime.backends.storage_monitor import StorageMonitor

        monitor = StorageMonitor(settings, ctx.db, rec.kick_threadsafe)
    elif hasattr(backend, "storage_names"):  # storage kept elsewhere (a cluster's claims): deleted when unowned
        from spacehub.runtime.storage_sweep import StorageSweep

        monitor = StorageSweep(ctx.db, backend, settings.runtime.storage_check_interval)
    gpus = None
    if settings.runtime.backend == "local" and scheduler.devices:  # this machine's GPUs, given to its Spaces
        from spacehub.runtime.gpu_usage import GpuSampler

        gpus = GpuSampler(scheduler.devices)
    front = FrontDoor(rec, monitor.check_soon if monitor is not None else None, gpus)
    ctx.runtime = front
    _tell_runtime(ctx)
    lease = Lease(ctx.db, "runtime", holder_id(), settings.runtime.lease_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        await _lead(lease)  # one controller at a time: a second process waits here, before it serves anything
        keeper = asyncio.ensure_future(_keep(lease))
        if ctx.webhook_sender is not None:
            ctx.webhook_sender.start()  # deliveries left by an earlier run go out now (by the one controller)
        await rec.start()
        if monitor is not None:
            await monitor.start()  # after the reconciler: it stops Spaces through it (the sweep: it needs no order)
        try:
            yield
        finally:
            if monitor is not None:
                await monitor.stop()
            await rec.stop()
            keeper.cancel()
            await asyncio.to_thread(lease.release)  # the next controller need not wait for the term to end

    return rec, front, lifespan


def _tell_runtime(ctx: HubContext) -> None:
    """Space events (delivered once the change has committed, `Events.publish`) reach ``ctx.runtime``."""

    def on_event(event: RepoEvent) -> None:
        if event.repo_type == "space":
            ctx.runtime.space_changed(event.repo_id)

    ctx.events.subscribe(on_event)


def route_table(ctx: HubContext, routes: RuntimeRouteTable) -> Any:
    """The lifespan of the proxy's host index: read at start, then again on ``ROUTES_REFRESH``; in between, the
    index is rebuilt when a Space's creation, deletion, move or change of visibility commits, in the committing
    thread: the API call returns only after the proxy knows (no timer, no event delay)."""
    routes.watch(ctx.db)

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        routes.loop = asyncio.get_running_loop()
        await _refresh_now(routes)
        refresher = asyncio.ensure_future(_refresh_forever(routes, ROUTES_REFRESH))
        try:
            yield
        finally:
            refresher.cancel()

    return lifespan


# ---- HTTP workers and one controller (``server.workers`` above 1) ------------------------------------------------
def control_socket(settings: Settings) -> Path:
    return settings.data_dir / "run" / "control.sock"


def build_controller(settings: Settings, workers: Any) -> ASGIApp:
    """The controller of a server with HTTP workers: the runtime (under its lease) and its channel (`control_app`,
    served on `control_socket`). ``workers`` is the lifespan of the worker processes: entered once the runtime
    runs, left before it stops. With ``runtime.backend = "none"`` it runs the webhook sender only."""
    from spacehub.runtime.control import RouteFeed, control_app

    if settings.proxy.mode != "embedded":
        raise ValueError("server.workers above 1 needs the embedded proxy (proxy.mode = 'embedded')")
    scheduler = make_scheduler(settings)
    ctx = hub_context(settings, scheduler)
    front, run_runtime = None, None
    if settings.runtime.backend != "none":
        _, front, run_runtime = make_runtime(ctx, scheduler)
    feed = RouteFeed(front)
    if front is not None:
        front.reconciler.state_listeners.append(feed.publish)
    sender = ctx.webhook_sender

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if run_runtime is not None:
                await stack.enter_async_context(run_runtime(app))
            elif sender is not None:
                sender.start()
            feed.load()
            await stack.enter_async_context(workers(app))
            yield

    return control_app(front, feed, sender.wake if sender is not None else None, lifespan)


def build_worker(settings: Settings) -> ASGIApp:
    """One HTTP worker: the Hub app and the Space proxy, over the controller's channel (`ControllerClient`)."""
    from spacehub.proxy.dispatch import space_server
    from spacehub.proxy.routes import StaticRouteTable
    from spacehub.proxy.space_routes import SharedGeneration
    from spacehub.runtime.control import ControllerClient

    ctx = hub_context(settings)
    client = ControllerClient(control_socket(settings), settings.data_dir / "spaces")
    ctx.webhook_sender = webhooks.WebhookSender(ctx.db, settings, ctx.secrets, forward=client.webhooks_due)
    routes: Any = StaticRouteTable()
    serve_routes = None
    if settings.runtime.backend != "none":
        ctx.runtime = client
        _tell_runtime(ctx)
        routes = RuntimeRouteTable(ctx, client, SharedGeneration(settings.data_dir / "run" / "hosts.gen"))
        serve_routes = route_table(ctx, routes)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        await client.start()
        with contextlib.suppress(TimeoutError):  # served before: a Space not mirrored yet is woken through it
            await asyncio.wait_for(client.synced.wait(), 10.0)
        try:
            async with contextlib.AsyncExitStack() as stack:
                if serve_routes is not None:
                    await stack.enter_async_context(serve_routes(app))
                yield
        finally:
            await client.stop()

    return space_server(create_app(ctx, lifespan), settings, routes)


async def _lead(lease: Lease) -> None:
    """Until this process holds the runtime's lease (at once, unless another controller runs on this database)."""
    told = None
    while not await asyncio.to_thread(lease.acquire):
        now = await asyncio.to_thread(lease.current)
        if now is not None and now.holder != told:
            log.warning("another SpaceHub runs the runtime on this database (%s, lease until %s): waiting to take "
                        "over", now.holder, now.expires_at.isoformat(timespec="seconds"))  # fmt: skip
            told = now.holder
        await asyncio.sleep(min(lease.seconds / 3, 1.0))
    if told is not None:
        log.warning("took over the runtime (%s): adopting the apps that run", lease.holder)


async def _keep(lease: Lease) -> None:
    """Renew the lease every third of its term. Lost (another process holds it), or not renewed within its term:
    this process stops (SIGTERM to itself, a clean shutdown that leaves the apps running), since it may no longer be
    the only controller; whatever restarts it starts it waiting."""
    deadline = time.monotonic() + lease.seconds
    while True:
        await asyncio.sleep(lease.seconds / 3)
        try:
            held: bool | None = await asyncio.to_thread(lease.renew)
        except Exception:
            log.exception("renewing the runtime lease failed (trying again)")
            held = None
        if held:
            deadline = time.monotonic() + lease.seconds
            continue
        if held is False or time.monotonic() >= deadline:
            log.critical("the runtime lease is lost (%s): stopping this SpaceHub, so that one controller runs",
                         "held by another process" if held is False else "not renewed within its term")  # fmt: skip
            os.kill(os.getpid(), signal.SIGTERM)
            return


async def _refresh_now(routes: RuntimeRouteTable) -> None:
    if await asyncio.to_thread(routes.refresh):
        routes.notify()


async def _refresh_forever(routes: RuntimeRouteTable, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        await _refresh_now(routes)


def build_server(settings: Settings) -> ASGIApp:
    """The whole server: the Hub app, and in front of it the Host dispatcher with the Space proxy."""
    from spacehub.proxy.dispatch import space_server
    from spacehub.proxy.routes import StaticRouteTable

    parts = assemble(settings)
    server = space_server(parts.app, settings, parts.routes or StaticRouteTable())
    plane, table, rec = server.data_plane, parts.routes, parts.reconciler
    if plane is not None and table is not None and rec is not None:  # nginx mode: keep nginx's upstreams current
        rec.route_listeners.append(lambda: plane.set_routes(table.public_upstreams()))
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
