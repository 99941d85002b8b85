"""The Space runtime API: runtime, logs (SSE), restart, pause."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from spacehub.api import responses as r
from spacehub.errors import BadRequest, HubError
from spacehub.runtime.logs import sse_event
from spacehub.services import previews, repos, space_changes, space_logs, space_status, spaces, starters
from spacehub.services.runtime import LogStream
from spacehub.web.deps import caller, ctx_of, qbool, unit
from spacehub.web.openapi import answers, inline_schema, raw_answers

router = APIRouter()
KEEPALIVE_SECONDS = 30.0
FOLLOW_POLL = 0.25
STATUS_POLL = 1.0  # the reconciler writes the status row; one read a second per open stream is cheap
METRICS_INTERVAL = 1.0  # as the Hub's Jobs metrics: about one event a second
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.get("/api/spaces/templates", **answers(r.SpaceTemplates))
def list_space_templates() -> dict[str, Any]:
    """Serves `HfApi.list_space_templates` (and `create_repo(space_template=…)`, which resolves names with it):
    GET /api/spaces/templates, the starter app of each SDK."""
    return {"templates": starters.list_templates()}


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


@router.get(
    "/api/spaces/{ns}/{name}/discussions/{num}/preview/logs/{kind}",
    **raw_answers("text/event-stream", {"type": "string"}, "Server-Sent Events: one log line per event"),
)
async def fetch_preview_logs(request: Request, ns: str, name: str, num: str, kind: str) -> StreamingResponse:
    """GET /api/spaces/{id}/discussions/{num}/preview/logs/{build|run}: a pull request preview's log, as
    `fetch_space_logs` streams the Space's (a writer or the pull request's author)."""
    if not num.isdigit() or not 0 < int(num) < 10**9:
        raise BadRequest(f"Invalid discussion number {num!r}: expected a positive integer")
    stream = await run_in_threadpool(previews.open_preview_logs, ctx_of(request), caller(request), f"{ns}/{name}",
                                     int(num), kind)  # fmt: skip
    return StreamingResponse(
        _events(request, stream, None),
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


def _event_schema(event: str, model: Any) -> dict[str, Any]:
    """One server-sent event: its name, and its ``data``, a JSON text of ``model``."""
    data = {"type": "string", "contentMediaType": "application/json"}
    data["contentSchema"] = inline_schema(model, "serialization")  # type: ignore[assignment]
    return {
        "type": "object",
        "properties": {"event": {"const": event}, "data": data},
        "required": ["event", "data"],
    }


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


@router.get(
    "/api/spaces/{ns}/{name}/events",
    **raw_answers(
        "text/event-stream",
        _event_schema("status", r.SpaceStatusEvent),
        "Server-Sent Events: the Space's status (event: status) at each change",
    ),
)
async def space_events(request: Request, ns: str, name: str) -> StreamingResponse:
    """GET /api/spaces/{id}/events: the Space's status now, then again each time its stage, hardware, replicas or
    error change (``event: status``, ``data: {stage, hardware, replicas, errorMessage, timestamp}``); keep-alives
    every 30 s. Ends when the Space goes away (or becomes private to the caller); ``?follow=false``: the status now,
    and the end."""
    who, repo_id = caller(request), f"{ns}/{name}"
    follow = qbool(request.query_params.get("follow"), default=True)
    first = await run_in_threadpool(space_status.status, ctx_of(request), who, repo_id)  # 404 before the stream

    async def events() -> AsyncIterator[bytes]:
        last, quiet = first, 0.0
        yield _sse("status", first)
        while follow and not await request.is_disconnected():
            await asyncio.sleep(STATUS_POLL)
            try:
                now = await run_in_threadpool(space_status.status, ctx_of(request), who, repo_id)
            except HubError:
                return
            if space_status.changed(last, now):
                last, quiet = now, 0.0
                yield _sse("status", now)
            elif (quiet := quiet + STATUS_POLL) >= KEEPALIVE_SECONDS:
                quiet = 0.0
                yield b": keep-alive\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)


@router.get(
    "/api/spaces/{ns}/{name}/metrics",
    **raw_answers(
        "text/event-stream",
        _event_schema("metric", r.SpaceMetrics),
        "Server-Sent Events: one usage sample a second (event: metric)",
    ),
)
async def space_metrics(request: Request, ns: str, name: str) -> StreamingResponse:
    """GET /api/spaces/{id}/metrics: what the Space's instance uses, about once a second, in the client's Jobs
    metrics format (``event: metric``; ``cpu_usage_pct``, ``cpu_millicores``, ``memory_used_bytes``,
    ``memory_total_bytes``, ``rx_bps``, ``tx_bps``, ``gpus``). Ends when the Space goes away; ``?follow=false``: one
    sample (its rates 0), and the end."""
    follow = qbool(request.query_params.get("follow"), default=True)
    stream = await run_in_threadpool(space_status.open_metrics, ctx_of(request), caller(request), f"{ns}/{name}")
    first = await run_in_threadpool(stream.sample)

    async def samples() -> AsyncIterator[bytes]:
        yield _sse("metric", first)
        while follow and not await request.is_disconnected():
            await asyncio.sleep(METRICS_INTERVAL)
            try:
                yield _sse("metric", await run_in_threadpool(stream.sample))
            except HubError:
                return

    return StreamingResponse(samples(), media_type="text/event-stream", headers=SSE_HEADERS)
