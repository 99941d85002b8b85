"""The Space page (`/spaces/{owner}/{name}`): the app in an iframe of its own URL, a live stage badge, the logs
panel and a CPU and memory chart, all fed by server-sent events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from spacehub.errors import HubError
from spacehub.services import explore, space_logs, space_status
from spacehub.services.runtime import LogStream
from spacehub.ui import grants
from spacehub.ui.routing import PageRoute
from spacehub.ui.web import caller, render, unit
from spacehub.web.deps import base_url, ctx_of

router = APIRouter(route_class=PageRoute, include_in_schema=False)
STAGE_POLL = 1.0  # the reconciler writes the stage row; a read per second per open page is cheap
KEEPALIVE = 15.0
LOG_POLL = 0.25
METRICS_INTERVAL = 1.0  # as the API's metrics stream
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _view(request: Request, repo_id: str) -> dict[str, Any]:
    with unit(request) as (ctx, s, p):
        view = explore.space_view(ctx, s, p, repo_id, base_url(request))
        view["iframe_src"] = view["url"]
        if view["private"] and p.user_id is not None:  # see grants: the app's host turns it into its own cookie
            view["iframe_src"] = grants.signed_url(ctx, view["url"], view["space_id"], p.user_id)
    return view


@router.get("/spaces/{owner}/{name}")
def space_page(request: Request, owner: str, name: str) -> Response:
    view = _view(request, f"{owner}/{name}")
    if view["id"] != f"{owner}/{name}":  # a moved Space's old address, or its name in another case: its own address
        return RedirectResponse(f"/spaces/{view['id']}", status_code=307)  # temporary: the old name may be taken again
    return render(request, "space.html", space=view, tab="app")


def sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


@router.get("/spaces/{owner}/{name}/events")
async def stage_events(request: Request, owner: str, name: str) -> Response:
    """The Space's stage as server-sent ``stage`` events, one each time it changes (refused like the page)."""
    repo_id = f"{owner}/{name}"

    def read() -> dict[str, Any]:
        with unit(request) as (ctx, s, p):
            return explore.space_stage(ctx, s, p, repo_id)

    first = await run_in_threadpool(read)  # raises here (404) before the stream starts

    async def events() -> AsyncIterator[bytes]:
        last, quiet = first, 0.0
        yield sse("stage", first)
        while not await request.is_disconnected():
            await asyncio.sleep(STAGE_POLL)
            try:
                now = await run_in_threadpool(read)
            except HubError:  # deleted or made private meanwhile: the stream ends
                return
            if now != last:
                last, quiet = now, 0.0
                yield sse("stage", now)
            elif (quiet := quiet + STAGE_POLL) >= KEEPALIVE:
                quiet = 0.0
                yield b": keep-alive\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)


@router.get("/spaces/{owner}/{name}/metrics")
async def metric_events(request: Request, owner: str, name: str) -> Response:
    """What the Space's running instance uses, as server-sent ``metric`` events about once a second: the use case of
    ``GET /api/spaces/{id}/metrics`` (`space_status.open_metrics`) with the session as the caller, so whoever may read
    the Space may see it, as with the API (a private Space: its readers only, a 404 to others). The page opens it
    only while the Space runs; a Space that runs nowhere samples 0."""
    stream = await run_in_threadpool(space_status.open_metrics, ctx_of(request), caller(request), f"{owner}/{name}")
    first = await run_in_threadpool(stream.sample)

    async def samples() -> AsyncIterator[bytes]:
        yield sse("metric", first)
        while not await request.is_disconnected():
            await asyncio.sleep(METRICS_INTERVAL)
            try:
                yield sse("metric", await run_in_threadpool(stream.sample))
            except HubError:  # deleted or made private meanwhile: the stream ends
                return

    return StreamingResponse(samples(), media_type="text/event-stream", headers=SSE_HEADERS)


@router.get("/spaces/{owner}/{name}/logs/{kind}")
async def log_events(request: Request, owner: str, name: str, kind: str) -> Response:
    """A build or run log as server-sent ``line`` events, through the same use case as `HfApi.fetch_space_logs`
    (writers only); ``end`` when the Space will write no more to it."""
    stream = await run_in_threadpool(space_logs.open_logs, ctx_of(request), caller(request), f"{owner}/{name}", kind)
    return StreamingResponse(_lines(request, stream), media_type="text/event-stream", headers=SSE_HEADERS)


async def _lines(request: Request, stream: LogStream) -> AsyncIterator[bytes]:
    for ts, text in await asyncio.to_thread(stream.backlog):
        yield sse("line", {"ts": ts, "text": text})
    quiet = 0.0
    while not await request.is_disconnected():
        if not stream.live():
            yield sse("end", {})
            return
        new = await asyncio.to_thread(stream.more)
        for ts, text in new:
            yield sse("line", {"ts": ts, "text": text})
        quiet = 0.0 if new else quiet + LOG_POLL
        if quiet >= KEEPALIVE:
            quiet = 0.0
            yield b": keep-alive\n\n"
        await asyncio.sleep(LOG_POLL)
