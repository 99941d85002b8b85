"""Persistent storage and volumes of a Space: request/delete storage (clients up to 1.33), set/delete volumes (1.10
and later). The ``storageTier``/``volumes`` option of create and duplicate bodies is `services.storage`'s
(``create_check``, ``create_hook``); the storage monitor (usage, folder-mode limits, deleting deleted storage for
good) runs beside the local runtime (`wiring`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from spacehub.api.spaces import _host
from spacehub.errors import BadRequest
from spacehub.services import repos, spaces, storage
from spacehub.services.accounts import Principal
from spacehub.services.context import HubContext
from spacehub.web.deps import json_object, unit

router = APIRouter()


def _change(request: Request, ns: str, name: str, change: Callable[[HubContext, Any, Principal, Any], Any]) -> Any:
    """Apply ``change`` to the Space (write access), then have the runtime act on it; answers the runtime."""
    with unit(request) as (ctx, s, p):
        repo = repos.get_repo(s, p, "space", f"{ns}/{name}", "write")
        change(ctx, s, p, repo)
        out = spaces.runtime(s, repo, _host(request, repo.full_name), p)
        repo_id = repo.id
    ctx.runtime.space_changed(repo_id)
    ctx.runtime.storage_changed(repo_id)
    return out


def _only(body: dict[str, Any], keys: set[str]) -> None:
    unknown = set(body) - keys
    if unknown:
        raise BadRequest(f"Unknown keys: {', '.join(sorted(unknown))}")


@router.post("/api/spaces/{ns}/{name}/storage")
async def request_space_storage(request: Request, ns: str, name: str) -> Any:
    """Serves `HfApi.request_space_storage` (≤ 1.33): POST /api/spaces/{id}/storage {"tier"}."""
    body = await json_object(request)
    _only(body, {"tier"})
    tier = body.get("tier")
    return await run_in_threadpool(
        _change, request, ns, name, lambda ctx, s, p, repo: storage.request_storage(ctx.settings, s, repo, tier)
    )


@router.delete("/api/spaces/{ns}/{name}/storage")
def delete_space_storage(request: Request, ns: str, name: str) -> Any:
    """Serves `HfApi.delete_space_storage` (≤ 1.33): DELETE /api/spaces/{id}/storage; the data is deleted for good."""
    return _change(request, ns, name, lambda ctx, s, p, repo: storage.delete_storage(s, repo))


@router.put("/api/spaces/{ns}/{name}/volumes")
async def set_space_volumes(request: Request, ns: str, name: str) -> Any:
    """Serves `HfApi.set_space_volumes`: PUT /api/spaces/{id}/volumes {"volumes": [...]} (replaces the list)."""
    body = await json_object(request)
    _only(body, {"volumes"})
    if "volumes" not in body:
        raise BadRequest("'volumes' is required: a list of {type, source, mountPath, revision?, readOnly?, path?}")
    return await run_in_threadpool(
        _change, request, ns, name, lambda ctx, s, p, repo: storage.set_volumes(ctx, s, p, repo, body["volumes"])
    )


@router.delete("/api/spaces/{ns}/{name}/volumes")
def delete_space_volumes(request: Request, ns: str, name: str) -> Any:
    """Serves `HfApi.delete_space_volumes`: DELETE /api/spaces/{id}/volumes (400 when there are none)."""
    return _change(request, ns, name, lambda ctx, s, p, repo: storage.delete_volumes(s, repo))
