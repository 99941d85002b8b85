"""Space secrets and variables (/api/spaces/{id}/secrets|variables) and duplicating repos (/api/{T}/{id}/duplicate).

The secrets key (``ctx.secrets``), the Space environment the runtime reads (``ctx.space_env``) and the
``secrets``/``variables`` option of create and duplicate bodies are set up by the composition root (`wiring`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from spacehub.api import responses as r
from spacehub.api import schemas
from spacehub.services import creation, repos, space_changes, space_settings
from spacehub.web.deps import base_url, bearer_token, caller, ctx_of, json_object, unit
from spacehub.web.openapi import answers

router = APIRouter()


# ---- secrets ---------------------------------------------------------------------------------------------------
@router.get("/api/spaces/{ns}/{name}/secrets", **answers(dict[str, r.SpaceSecret]))
def get_space_secrets(request: Request, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.get_space_secrets`: GET /api/spaces/{id}/secrets (keys and descriptions, never values)."""
    with unit(request) as (_, s, p):
        repo = repos.get_repo(s, p, "space", f"{ns}/{name}", "write")
        return space_settings.get_space_secrets(s, repo)


@router.post("/api/spaces/{ns}/{name}/secrets", openapi_extra=schemas.body(schemas.AddSpaceSecret), **answers(r.Empty))
async def add_space_secret(request: Request, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.add_space_secret`: POST /api/spaces/{id}/secrets {"key", "value", "description"?}."""
    body = await json_object(request)
    return await run_in_threadpool(space_changes.add_secret, ctx_of(request), caller(request), f"{ns}/{name}", body)


@router.delete("/api/spaces/{ns}/{name}/secrets", openapi_extra=schemas.body(schemas.DeleteKey), **answers(r.Empty))
async def delete_space_secret(request: Request, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.delete_space_secret`: DELETE /api/spaces/{id}/secrets {"key"} (a missing key is fine)."""
    body = await json_object(request)
    args = (ctx_of(request), caller(request), f"{ns}/{name}", body)
    return await run_in_threadpool(space_changes.delete_secret, *args)


# ---- variables -------------------------------------------------------------------------------------------------
@router.get("/api/spaces/{ns}/{name}/variables", **answers(dict[str, r.SpaceVariable]))
def get_space_variables(request: Request, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.get_space_variables`: GET /api/spaces/{id}/variables (read access: variables are public)."""
    with unit(request) as (_, s, p):
        repo = repos.get_repo(s, p, "space", f"{ns}/{name}")
        return space_settings.get_space_variables(s, repo)


@router.post(
    "/api/spaces/{ns}/{name}/variables",
    openapi_extra=schemas.body(schemas.AddSpaceVariable),
    **answers(dict[str, r.SpaceVariable]),
)
async def add_space_variable(request: Request, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.add_space_variable`: POST /api/spaces/{id}/variables; answers every variable."""
    body = await json_object(request)
    args = (ctx_of(request), caller(request), f"{ns}/{name}", body)
    return await run_in_threadpool(space_changes.add_variable, *args)


@router.delete(
    "/api/spaces/{ns}/{name}/variables",
    openapi_extra=schemas.body(schemas.DeleteKey),
    **answers(dict[str, r.SpaceVariable]),
)
async def delete_space_variable(request: Request, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.delete_space_variable`: DELETE /api/spaces/{id}/variables {"key"}; answers every variable."""
    body = await json_object(request)
    args = (ctx_of(request), caller(request), f"{ns}/{name}", body)
    return await run_in_threadpool(space_changes.delete_variable, *args)


# ---- duplicate -------------------------------------------------------------------------------------------------
@router.post(
    "/api/{rtype:repotype}/{ns}/{name}/duplicate",
    openapi_extra=schemas.body(schemas.DuplicateRepoRequest),
    **answers(r.DuplicatedRepoUrl),
)
async def duplicate_repo(request: Request, rtype: str, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.duplicate_repo` and `duplicate_space` (≤ 1.33): POST /api/{T}/{id}/duplicate."""
    body = await json_object(request)
    args = (ctx_of(request), bearer_token(request), rtype, f"{ns}/{name}", body, base_url(request))
    return await run_in_threadpool(creation.duplicate_repo, *args)
