"""Accounts and repo lifecycle: whoami, create, delete, move, settings, validate-yaml, and the background calls."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from spacehub.api import responses as r
from spacehub.api import schemas
from spacehub.errors import BadRequest
from spacehub.services import accounts, commits, creation, repos
from spacehub.services.creation import str_or_none
from spacehub.services.formats import repo_type_from, split_repo_id
from spacehub.web.deps import base_url, bearer_token, ctx_of, json_object, unit
from spacehub.web.openapi import answers, raw_answers

router = APIRouter()


@router.get("/api/whoami-v2", **answers(r.WhoAmI))
def whoami(request: Request) -> dict[str, Any]:
    """Serves `HfApi.whoami`: GET /api/whoami-v2."""
    with unit(request) as (_, s, p):
        return accounts.whoami(s, p, bearer_token(request) or "", base_url(request))


@router.post("/api/repos/create", openapi_extra=schemas.body(schemas.CreateRepoRequest), **answers(r.RepoUrl))
async def create_repo(request: Request) -> dict[str, Any]:
    """Serves `HfApi.create_repo`: POST /api/repos/create."""
    body = await json_object(request)
    args = (ctx_of(request), bearer_token(request), body, base_url(request))
    return await run_in_threadpool(creation.create_repo, *args)


@router.delete(
    "/api/repos/delete",
    openapi_extra=schemas.body(schemas.DeleteRepoRequest),
    **raw_answers("text/plain", {"const": "OK"}, "Deleted"),
)
async def delete_repo(request: Request) -> PlainTextResponse:
    """Serves `HfApi.delete_repo`: DELETE /api/repos/delete (JSON body)."""
    body = await json_object(request)

    def run() -> None:
        name = body.get("name")
        if not isinstance(name, str):
            raise BadRequest("'name' is required")
        ns = str_or_none(body, "organization")
        with unit(request) as (ctx, s, p):
            repo_id = name if "/" in name else f"{ns or p.name}/{name}"
            repos.delete_repo(ctx, s, p, repo_type_from(str_or_none(body, "type")), repo_id)

    await run_in_threadpool(run)
    return PlainTextResponse("OK")


@router.post("/api/repos/move", openapi_extra=schemas.body(schemas.MoveRepoRequest), **answers(r.DuplicatedRepoUrl))
async def move_repo(request: Request) -> dict[str, Any]:
    """Serves `HfApi.move_repo`: POST /api/repos/move."""
    body = await json_object(request)

    def run() -> dict[str, Any]:
        src, dst = body.get("fromRepo"), body.get("toRepo")
        if not isinstance(src, str) or not isinstance(dst, str):
            raise BadRequest("'fromRepo' and 'toRepo' are required")
        split_repo_id(src)
        with unit(request) as (ctx, s, p):
            repo_type = repo_type_from(str_or_none(body, "type"))
            repo = repos.move_repo(ctx, s, p, repo_type, src, dst)
            return {"url": repos.repo_url(base_url(request), repo_type, repo.full_name)}

    return await run_in_threadpool(run)


@router.put(
    "/api/{rtype:repotype}/{ns}/{name}/settings",
    openapi_extra=schemas.body(schemas.RepoSettingsRequest),
    **answers(r.RepoSettings),
)
async def update_repo_settings(request: Request, rtype: str, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.update_repo_settings` and 0.21's `update_repo_visibility`: PUT /api/{T}/{id}/settings."""
    body = await json_object(request)

    def run() -> dict[str, Any]:
        with unit(request) as (ctx, s, p):
            return repos.update_settings(s, p, rtype, f"{ns}/{name}", body, ctx)

    return await run_in_threadpool(run)


@router.post("/api/validate-yaml", openapi_extra=schemas.body(schemas.ValidateYamlRequest), **answers(r.YamlValidation))
async def validate_yaml(request: Request) -> dict[str, Any]:
    """Serves the README metadata check of `create_commit` / `upload_folder`: POST /api/validate-yaml."""
    return commits.validate_yaml(await json_object(request))


@router.get("/api/agent-harnesses", **answers(r.AgentHarnesses))
def agent_harnesses() -> dict[str, Any]:
    """Background call of 2.x clients (once a day)."""
    return {"standardEnvVars": [], "harnesses": {}}


@router.api_route(
    "/api/telemetry/{rest:path}",
    methods=["HEAD", "GET", "POST"],
    **raw_answers(None, {}, "Accepted and dropped: no body"),
)
def telemetry(rest: str) -> Response:
    """Telemetry pings from libraries: accepted and dropped (nothing leaves this machine)."""
    return Response(status_code=200)
