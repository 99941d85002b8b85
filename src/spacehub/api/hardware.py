"""Hardware, sleep time and usage: the flavor catalog, hardware requests, sleep times, metered usage."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from spacehub.api import responses as r
from spacehub.api import schemas
from spacehub.services import billing, hardware, space_changes
from spacehub.services.hardware import HardwarePolicy
from spacehub.web.deps import caller, ctx_of, json_object, unit
from spacehub.web.openapi import answers

router = APIRouter()


def _policy(request: Request) -> HardwarePolicy:
    return ctx_of(request).hardware


@router.get("/api/spaces/hardware", **answers(list[r.JobHardwareInfo]))
def list_spaces_hardware(request: Request) -> list[dict[str, Any]]:
    """Serves `HfApi.list_spaces_hardware` (2.x): GET /api/spaces/hardware (`JobHardwareInfo` items)."""
    return hardware.list_hardware(_policy(request))


@router.post(
    "/api/spaces/{ns}/{name}/hardware",
    openapi_extra=schemas.body(schemas.RequestSpaceHardware),
    **answers(r.SpaceRuntime),
)
async def request_space_hardware(request: Request, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.request_space_hardware`: POST /api/spaces/{id}/hardware {"flavor", "sleepTimeSeconds"?}."""
    body = await json_object(request)
    args = (ctx_of(request), caller(request), f"{ns}/{name}", body.get("flavor"), body.get("sleepTimeSeconds"))
    return await run_in_threadpool(space_changes.request_hardware, *args)


@router.post(
    "/api/spaces/{ns}/{name}/sleeptime",
    openapi_extra=schemas.body(schemas.SetSpaceSleepTime),
    **answers(r.SpaceRuntime),
)
async def set_space_sleep_time(request: Request, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.set_space_sleep_time`: POST /api/spaces/{id}/sleeptime {"seconds"} (-1: never)."""
    body = await json_object(request)
    args = (ctx_of(request), caller(request), f"{ns}/{name}", body.get("seconds"))
    return await run_in_threadpool(space_changes.set_sleep_time, *args)


@router.get("/api/usage", **answers(r.Usage))
def get_usage(request: Request) -> dict[str, Any]:
    """Metered usage of paid hardware, per owner and Space: the caller's and their orgs' (org admins), all for site
    admins; ``?owner=`` picks one. GET /api/usage."""
    with unit(request) as (_, s, p):
        return {"owners": billing.usage(s, p, request.query_params.get("owner"))}
