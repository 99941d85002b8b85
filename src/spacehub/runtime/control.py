"""The controller's channel: how HTTP workers in other processes reach the one runtime.

With ``server.workers`` above 1, ``spacehub serve`` is a controller process that runs the runtime (reconciler, sleep,
wake, storage monitor, webhook sender, under the runtime lease) and serves `control_app` on a Unix socket in the data
dir, plus that many HTTP worker processes that serve the Hub, git and the Space proxy on the public port. A worker's
``ctx.runtime`` and its route table's `Runs` are a `ControllerClient`:

- notices (a Space changed, wake, storage changed, webhook deliveries due) are batched and posted at once, from any
  thread, never awaited by the request that made them (as `FrontDoor`'s own are asynchronous);
- visits (``touch``) are batched for half a second: the idle clock needs no finer grain;
- where each Space's traffic goes (`RouteState`) is mirrored from the controller's `RouteFeed`: a long poll that
  answers the changes since the version the worker holds (all of them on first contact, or when the controller
  changed: a takeover starts a new epoch), so a lookup stays a dict read in the worker;
- a wake (``serve``) and a usage sample are requests to the controller, answered when the Space serves.

Logs are read from the data dir, on the same machine, as `FrontDoor` reads them. The channel speaks HTTP (httpx
over the socket, Starlette behind it), so a replica on another machine would reach the controller the same way at a
TCP address (docs/architecture.md, "HTTP workers and one controller").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from spacehub.runtime.backends.base import GpuUsage, ResourceUsage
from spacehub.runtime.front import RouteState
from spacehub.runtime.logs import FileLogStream, SpaceLogs

if TYPE_CHECKING:
    from spacehub.runtime.front import FrontDoor

log = logging.getLogger("spacehub.control")
FEED_WAIT = 20.0  # seconds a route poll waits for a change before it answers "nothing new"
FEED_KEEP = 20_000  # changes kept for a worker that is behind (further behind: it gets every state again)
TOUCH_EVERY = 0.5  # seconds between a worker's batches of visits
NOTICE_KINDS = ("changed", "wake", "storage", "touch")


class RouteFeed:
    """The controller's record of every Space's `RouteState`, versioned, for the workers' mirrors.

    `publish` runs in the controller's loop after each pass over a Space (the reconciler's ``state_listeners``) and
    after each wake; it records a new version only when the state changed, so idle Spaces cost nothing here."""

    def __init__(self, front: FrontDoor | None) -> None:
        self.front = front  # None: no runtime (``runtime.backend = "none"``), no states
        self.epoch = secrets.token_hex(8)  # a new controller's versions are another history
        self.version = 0
        self.states: dict[str, RouteState] = {}
        self.changes: deque[tuple[int, str]] = deque(maxlen=FEED_KEEP)
        self._changed: asyncio.Event | None = None

    def load(self) -> None:
        """Every Space the runtime holds (after it adopted the apps that run)."""
        if self.front is None:
            return
        for space_id in list(self.front.reconciler.runs):
            self.publish(space_id)

    def publish(self, space_id: str) -> None:
        state = self.front.state(space_id) if self.front is not None else None
        if self.states.get(space_id) == state:
            return
        if state is None:
            self.states.pop(space_id, None)
        else:
            self.states[space_id] = state
        self.version += 1
        self.changes.append((self.version, space_id))
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def since(self, epoch: str, version: int) -> dict[str, Any]:
        """What a worker holding ``version`` of ``epoch`` lacks: every state (``full``) or the changed ones (a Space
        the runtime no longer holds: null)."""
        oldest = self.changes[0][0] if self.changes else self.version + 1
        if epoch != self.epoch or version > self.version or version < oldest - 1:
            states = {space_id: st.to_json() for space_id, st in self.states.items()}
            return {"epoch": self.epoch, "version": self.version, "full": True, "states": states}
        changed = {space_id for v, space_id in self.changes if v > version}
        states = {sid: (st.to_json() if (st := self.states.get(sid)) is not None else None) for sid in changed}
        return {"epoch": self.epoch, "version": self.version, "full": False, "states": states}

    async def wait(self, epoch: str, version: int, timeout: float) -> None:  # noqa: ASYNC109
        """Until the feed moves past ``version`` of ``epoch`` (at once if it has), or ``timeout``."""
        if epoch != self.epoch or version != self.version:
            return
        if self._changed is None:
            self._changed = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)


def control_app(
    front: FrontDoor | None, feed: RouteFeed, webhooks_due: Callable[[], None] | None, lifespan: Any
) -> Starlette:
    """The controller's side of the channel (served on its Unix socket; ``lifespan`` runs the runtime). Without a
    runtime (``front`` None) it forwards only webhook notices."""

    async def notices(request: Request) -> Response:
        body = await request.json()
        if front is not None:
            rec = front.reconciler
            for space_id in body.get("touch", ()):
                rec.touch(space_id)
            for space_id in body.get("wake", ()):
                front.wake(space_id)
            for space_id in body.get("changed", ()):
                rec.kick(space_id)
            for space_id in body.get("storage", ()):
                front.storage_changed(space_id)
        if body.get("webhooks") and webhooks_due is not None:
            webhooks_due()
        return Response(status_code=204)

    async def serve(request: Request) -> Response:
        space_id = request.path_params["space_id"]
        timeout = min(float(request.query_params.get("timeout", "600")), 3600.0)
        state = await front.serve(space_id, timeout) if front is not None else None
        feed.publish(space_id)
        return JSONResponse({"state": state.to_json() if state is not None else None})

    async def usage(request: Request) -> Response:
        if front is None:
            return JSONResponse({"usage": None})
        u = await asyncio.to_thread(front.usage, request.path_params["space_id"])
        body = None if u is None else {"cpu_seconds": u.cpu_seconds, "memory_bytes": u.memory_bytes,
                                       "rx_bytes": u.rx_bytes, "tx_bytes": u.tx_bytes,
                                       "gpus": {k: asdict(g) for k, g in u.gpus.items()}}  # fmt: skip
        return JSONResponse({"usage": body})

    async def routes(request: Request) -> Response:
        epoch = request.query_params.get("epoch", "")
        version = int(request.query_params.get("since", "-1"))
        await feed.wait(epoch, version, float(request.query_params.get("wait", FEED_WAIT)))
        return JSONResponse(feed.since(epoch, version))

    async def health(_: Request) -> Response:
        return JSONResponse({"epoch": feed.epoch})

    return Starlette(
        routes=[
            Route("/notices", notices, methods=["POST"]),
            Route("/serve/{space_id}", serve, methods=["POST"]),
            Route("/usage/{space_id}", usage),
            Route("/routes", routes),
            Route("/health", health),
        ],
        lifespan=lifespan,
    )


class ControllerClient:
    """A worker's runtime: `services.runtime.Runtime` and `runtime.front.Runs` through the controller's socket."""

    def __init__(self, socket_path: Path, logs_root: Path) -> None:
        self.socket_path, self.logs_root = socket_path, logs_root
        self.states: dict[str, RouteState] = {}
        self.epoch, self.version = "", -1
        self.synced = asyncio.Event()  # the first answer of the feed has arrived
        self._pending: dict[str, set[str]] = {kind: set() for kind in NOTICE_KINDS}
        self._webhooks = False
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._due: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        base = "http://controller"
        self._http = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(socket_path)), base_url=base,
                                       timeout=httpx.Timeout(10.0, read=None))  # fmt: skip
        self._sync = httpx.Client(transport=httpx.HTTPTransport(uds=str(socket_path)), base_url=base, timeout=10.0)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._due = asyncio.Event()
        self._tasks = [asyncio.create_task(self._follow()), asyncio.create_task(self._send())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._post_notices()  # what the last requests asked for
        await self._http.aclose()
        self._sync.close()

    # ---- services.runtime.Runtime ------------------------------------------------------------------------------
    def space_changed(self, space_id: str) -> None:
        self._note("changed", space_id, now=True)

    def wake(self, space_id: str) -> None:
        self._note("wake", space_id, now=True)

    def storage_changed(self, space_id: str) -> None:
        self._note("storage", space_id, now=True)

    def webhooks_due(self) -> None:
        """Webhook deliveries were recorded: the controller's sender posts them now."""
        with self._lock:
            self._webhooks = True
        self._soon()

    def stage(self, space_id: str) -> str | None:
        st = self.states.get(space_id)
        return st.stage if st is not None else None

    def logs(self, space_id: str, kind: str) -> FileLogStream:
        path = SpaceLogs(self.logs_root, space_id).path(kind)
        return FileLogStream(path, kind, lambda: self.stage(space_id))

    def usage(self, space_id: str) -> ResourceUsage | None:
        """(From a thread: a request to the controller.)"""
        body = self._sync.get(f"/usage/{space_id}").raise_for_status().json()["usage"]
        if body is None:
            return None
        gpus = {k: GpuUsage(**g) for k, g in (body.pop("gpus", None) or {}).items()}
        return ResourceUsage(**body, gpus=gpus)

    # ---- runtime.front.Runs ------------------------------------------------------------------------------------
    def state(self, space_id: str) -> RouteState | None:
        return self.states.get(space_id)

    def touch(self, space_id: str) -> None:
        self._note("touch", space_id, now=False)

    async def serve(self, space_id: str, timeout: float) -> RouteState | None:  # noqa: ASYNC109
        r = await self._http.post(f"/serve/{space_id}", params={"timeout": timeout})
        value = r.raise_for_status().json()["state"]
        state = RouteState.from_json(value) if value is not None else None
        if state is not None:
            self.states[space_id] = state  # the feed confirms it; this request goes on with it at once
        return state

    # ---- the channel -------------------------------------------------------------------------------------------
    def _note(self, kind: str, space_id: str, *, now: bool) -> None:
        with self._lock:
            self._pending[kind].add(space_id)
        if now:
            self._soon()

    def _soon(self) -> None:
        loop, due = self._loop, self._due
        if loop is None or due is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            due.set()
        else:
            loop.call_soon_threadsafe(due.set)

    async def _send(self) -> None:
        assert self._due is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._due.wait(), TOUCH_EVERY)
            self._due.clear()
            try:
                await self._post_notices()
            except httpx.HTTPError as exc:
                log.warning("the controller did not take the notices (%s): trying again", exc)
                await asyncio.sleep(0.2)

    async def _post_notices(self) -> None:
        with self._lock:
            batch = {kind: sorted(ids) for kind, ids in self._pending.items() if ids}
            webhooks, self._webhooks = self._webhooks, False
            self._pending = {kind: set() for kind in NOTICE_KINDS}
        if not batch and not webhooks:
            return
        try:
            r = await self._http.post("/notices", json={**batch, "webhooks": webhooks})
            r.raise_for_status()
        except httpx.HTTPError:
            with self._lock:  # kept for the next try
                for kind, ids in batch.items():
                    self._pending[kind].update(ids)
                self._webhooks = self._webhooks or webhooks
            raise

    async def _follow(self) -> None:
        """Mirror the controller's route states (a long poll; through a controller's restart too)."""
        while True:
            try:
                r = await self._http.get("/routes", params={"epoch": self.epoch, "since": self.version},
                                         timeout=httpx.Timeout(10.0, read=FEED_WAIT + 10))  # fmt: skip
                body = r.raise_for_status().json()
            except httpx.HTTPError as exc:
                if self.synced.is_set():
                    log.warning("the controller's route feed failed (%s): trying again", exc)
                await asyncio.sleep(0.2)
                continue
            self._apply(body)

    def _apply(self, body: dict[str, Any]) -> None:
        states = {sid: (RouteState.from_json(v) if v is not None else None) for sid, v in body["states"].items()}
        if body["full"]:
            self.states = {sid: st for sid, st in states.items() if st is not None}
        else:
            for sid, st in states.items():
                if st is None:
                    self.states.pop(sid, None)
                else:
                    self.states[sid] = st
        self.epoch, self.version = body["epoch"], int(body["version"])
        self.synced.set()
