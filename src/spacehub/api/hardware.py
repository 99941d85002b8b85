"""Hardware, sleep time and usage: the flavor catalog, hardware requests, sleep times, metered usage."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from spacehub.api.spaces import _host
from spacehub.services import billing, hardware, repos, spaces
from spacehub.services.hardware import HardwarePolicy
from spacehub.web.deps import ctx_of, json_object, unit

router = APIRouter()


def _policy(request: Request) -> HardwarePolicy:
    return ctx_of(request).hardware


@router.get("/api/spaces/hardware")
def list_spaces_hardware(request: Request) -> list[dict[str, Any]]:
    """Serves `HfApi.list_spaces_hardware` (2.x): GET /api/spaces/hardware (`JobHardwareInfo` items)."""
    return hardware.list_hardware(_policy(request))


@router.post("/api/spaces/{ns}/{name}/hardware")
async def request_space_hardware(request: Request, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.request_space_hardware`: POST /api/spaces/{id}/hardware {"flavor", "sleepTimeSeconds"?}."""
    body = await json_object(request)

    def run() -> tuple[str, dict[str, Any]]:
        with unit(request) as (_, s, p):
            repo = repos.get_repo(s, p, "space", f"{ns}/{name}", "write")
            hardware.request_hardware(s, repo, _policy(request), body.get("flavor"), body.get("sleepTimeSeconds"))
            return repo.id, spaces.runtime(s, repo, _host(request, repo.full_name))

    repo_id, out = await run_in_threadpool(run)
    runtime = ctx_of(request).runtime
    runtime.wake(repo_id)  # a hardware change counts as a visit: a sleeping Space restarts on its new hardware
    runtime.space_changed(repo_id)
    return out


@router.post("/api/spaces/{ns}/{name}/sleeptime")
async def set_space_sleep_time(request: Request, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.set_space_sleep_time`: POST /api/spaces/{id}/sleeptime {"seconds"} (-1: never)."""
    body = await json_object(request)

    def run() -> tuple[str, dict[str, Any]]:
        with unit(request) as (_, s, p):
            repo = repos.get_repo(s, p, "space", f"{ns}/{name}", "write")
            hardware.set_sleep_time(s, repo, _policy(request), body.get("seconds"))
            return repo.id, spaces.runtime(s, repo, _host(request, repo.full_name))

    repo_id, out = await run_in_threadpool(run)
    ctx_of(request).runtime.space_changed(repo_id)
    return out


@router.get("/api/usage")
def get_usage(request: Request) -> dict[str, Any]:
    """Metered usage of paid hardware, per owner and Space: the caller's and their orgs' (org admins), all for site
    admins; ``?owner=`` picks one. GET /api/usage."""
    with unit(request) as (_, s, p):
        return {"owners": billing.usage(s, p, request.query_params.get("owner"))}
