"""The Space runtime API: runtime, logs (SSE), restart, pause."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from spacehub.api import responses as r
from spacehub.errors import BadRequest
from spacehub.runtime.logs import sse_event
from spacehub.services import repos, space_changes, space_logs, spaces
from spacehub.services.runtime import LogStream
from spacehub.web.deps import caller, ctx_of, qbool, unit
from spacehub.web.openapi import answers, raw_answers

router = APIRouter()
KEEPALIVE_SECONDS = 30.0
FOLLOW_POLL = 0.25


@router.get("/api/spaces/{ns}/{name}/runtime", **answers(r.SpaceRuntime))
def get_space_runtime(request: Request, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.get_space_runtime` and `wait_for_space`: GET /api/spaces/{id}/runtime."""
    with unit(request) as (ctx, s, p):
        repo = repos.get_repo(s, p, "space", f"{ns}/{name}")
        return spaces.runtime(s, repo, space_changes.host(ctx, caller(request), repo), p)


@router.post("/api/spaces/{ns}/{name}/restart", **answers(r.SpaceRuntime))
def restart_space(request: Request, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.restart_space`: POST /api/spaces/{id}/restart[?factory=true] (owner or org admin)."""
    factory = qbool(request.query_params.get("factory"))
    return space_changes.restart(ctx_of(request), caller(request), f"{ns}/{name}", factory)


@router.post("/api/spaces/{ns}/{name}/pause", **answers(r.SpaceRuntime))
def pause_space(request: Request, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.pause_space`: POST /api/spaces/{id}/pause (owner or org admin; not static Spaces)."""
    return space_changes.pause(ctx_of(request), caller(request), f"{ns}/{name}")


@router.get(
    "/api/spaces/{ns}/{name}/logs/{kind}",
    **raw_answers("text/event-stream", {"type": "string"}, "Server-Sent Events: one log line per event"),
)
async def fetch_space_logs(request: Request, ns: str, name: str, kind: str) -> StreamingResponse:
    """Serves `HfApi.fetch_space_logs`: GET /api/spaces/{id}/logs/{build|run} as Server-Sent Events.

    Replays the kept log, then follows it while the Space may still write (keep-alives every 30 s); a client that
    does not follow stops reading after a few quiet seconds, as the client's no-follow mode expects."""
    if kind not in space_logs.KINDS:
        raise BadRequest("Logs are 'build' or 'run'")
    stream = await run_in_threadpool(space_logs.open_logs, ctx_of(request), caller(request), f"{ns}/{name}", kind)
    tail = request.query_params.get("tail")
    if tail is not None and not tail.isdigit():
        raise BadRequest("'tail' must be a number of lines")
    return StreamingResponse(
        _events(request, stream, int(tail) if tail else None),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(request: Request, stream: LogStream, tail: int | None) -> AsyncIterator[bytes]:
    lines = await asyncio.to_thread(stream.backlog)
    for ts, text in lines[-tail:] if tail else lines:
        yield sse_event(ts, text)
    quiet_since = time.monotonic()
    while not await request.is_disconnected():
        if not stream.live():
            return  # nothing more will be written: end the stream
        new = await asyncio.to_thread(stream.more)
        for ts, text in new:
            yield sse_event(ts, text)
        if new:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
            yield b"data:\n\n"
            quiet_since = time.monotonic()
        await asyncio.sleep(FOLLOW_POLL)
