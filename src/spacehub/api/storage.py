"""Persistent storage and volumes of a Space: request/delete storage (clients up to 1.33), set/delete volumes (1.10
and later). The ``storageTier``/``volumes`` option of create and duplicate bodies is `services.storage`'s
(``create_check``, ``create_hook``); the storage monitor (usage, folder-mode limits, deleting deleted storage for
good) runs beside the local runtime (`wiring`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from spacehub.api import responses as r
from spacehub.api import schemas
from spacehub.errors import BadRequest
from spacehub.services import space_changes
from spacehub.web.deps import caller, ctx_of, json_object
from spacehub.web.openapi import answers

router = APIRouter()


def _only(body: dict[str, Any], keys: set[str]) -> None:
    unknown = set(body) - keys
    if unknown:
        raise BadRequest(f"Unknown keys: {', '.join(sorted(unknown))}")


@router.post(
    "/api/spaces/{ns}/{name}/storage",
    openapi_extra=schemas.body(schemas.RequestSpaceStorage),
    **answers(r.SpaceRuntime),
)
async def request_space_storage(request: Request, ns: str, name: str) -> Any:
    """Serves `HfApi.request_space_storage` (≤ 1.33): POST /api/spaces/{id}/storage {"tier"}."""
    body = await json_object(request)
    _only(body, {"tier"})
    tier = body.get("tier")
    args = (ctx_of(request), caller(request), f"{ns}/{name}", tier)
    return await run_in_threadpool(space_changes.request_storage, *args)


@router.delete("/api/spaces/{ns}/{name}/storage", **answers(r.SpaceRuntime))
def delete_space_storage(request: Request, ns: str, name: str) -> Any:
    """Serves `HfApi.delete_space_storage` (≤ 1.33): DELETE /api/spaces/{id}/storage; the data is deleted for good."""
    return space_changes.delete_storage(ctx_of(request), caller(request), f"{ns}/{name}")


@router.put(
    "/api/spaces/{ns}/{name}/volumes", openapi_extra=schemas.body(schemas.SetSpaceVolumes), **answers(r.SpaceRuntime)
)
async def set_space_volumes(request: Request, ns: str, name: str) -> Any:
    """Serves `HfApi.set_space_volumes`: PUT /api/spaces/{id}/volumes {"volumes": [...]} (replaces the list)."""
    body = await json_object(request)
    _only(body, {"volumes"})
    if "volumes" not in body:
        raise BadRequest("'volumes' is required: a list of {type, source, mountPath, revision?, readOnly?, path?}")
    args = (ctx_of(request), caller(request), f"{ns}/{name}", body["volumes"])
    return await run_in_threadpool(space_changes.set_volumes, *args)


@router.delete("/api/spaces/{ns}/{name}/volumes", **answers(r.SpaceRuntime))
def delete_space_volumes(request: Request, ns: str, name: str) -> Any:
    """Serves `HfApi.delete_space_volumes`: DELETE /api/spaces/{id}/volumes (400 when there are none)."""
    return space_changes.delete_volumes(ctx_of(request), caller(request), f"{ns}/{name}")
