"""Accounts and repo lifecycle: whoami, create, delete, move, settings, validate-yaml, and the background calls."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from spacehub.errors import BadRequest
from spacehub.services import accounts, commits, repos
from spacehub.services.formats import repo_type_from, split_repo_id
from spacehub.web.deps import base_url, bearer_token, ctx_of, json_object, unit

router = APIRouter()


@router.get("/api/whoami-v2")
def whoami(request: Request) -> dict[str, Any]:
    """Serves `HfApi.whoami`: GET /api/whoami-v2."""
    with unit(request) as (_, s, p):
        return accounts.whoami(s, p, bearer_token(request) or "")


def _str_or_none(body: dict[str, Any], key: str) -> str | None:
    v = body.get(key)
    if v is not None and not isinstance(v, str):
        raise BadRequest(f"'{key}' must be a string")
    return v


@router.post("/api/repos/create")
async def create_repo(request: Request) -> dict[str, Any]:
    """Serves `HfApi.create_repo`: POST /api/repos/create."""
    body = await json_object(request)
    return await run_in_threadpool(_create_repo, request, body)


def _create_repo(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    name = body.get("name")
    if not isinstance(name, str):
        raise BadRequest("'name' is required")
    organization = _str_or_none(body, "organization")
    if "/" in name and organization is None:
        organization, name = split_repo_id(name)
    repo_type = repo_type_from(_str_or_none(body, "type"))
    for check in request.app.state.create_checks:  # Space settings are checked before anything is written
        check(ctx_of(request), repo_type, body)
    with removed_on_failure(request) as created, unit(request) as (ctx, s, p):
        repo = repos.create_repo(
            ctx,
            s,
            p,
            repo_type,
            name,
            organization,
            private=body.get("private"),
            visibility=_str_or_none(body, "visibility"),
            sdk=_str_or_none(body, "sdk"),
            base_url=base_url(request),
        )
        created.append(repo.id)
        hooks = request.app.state.create_hooks
        for hook in hooks:  # Space settings (hardware, secrets…) are applied by later issues' hooks
            hook(ctx, s, p, repo, body)
        url = repos.repo_url(base_url(request), repo_type, repo.full_name)
        return {"url": url, "name": repo.full_name, "id": repo.id}


@contextmanager
def removed_on_failure(request: Request) -> Iterator[list[str]]:
    """The git repositories of repos created in the block are removed if it fails: their database rows were rolled
    back (a create hook refused the body, the commit failed), and a repo is its row and its git directory."""
    created: list[str] = []
    try:
        yield created
    except BaseException:
        for repo_id in created:
            ctx_of(request).git.delete(repo_id)
        raise


@router.delete("/api/repos/delete")
async def delete_repo(request: Request) -> PlainTextResponse:
    """Serves `HfApi.delete_repo`: DELETE /api/repos/delete (JSON body)."""
    body = await json_object(request)

    def run() -> None:
        name = body.get("name")
        if not isinstance(name, str):
            raise BadRequest("'name' is required")
        ns = _str_or_none(body, "organization")
        with unit(request) as (ctx, s, p):
            repo_id = name if "/" in name else f"{ns or p.name}/{name}"
            repos.delete_repo(ctx, s, p, repo_type_from(_str_or_none(body, "type")), repo_id)

    await run_in_threadpool(run)
    return PlainTextResponse("OK")


@router.post("/api/repos/move")
async def move_repo(request: Request) -> dict[str, Any]:
    """Serves `HfApi.move_repo`: POST /api/repos/move."""
    body = await json_object(request)

    def run() -> dict[str, Any]:
        src, dst = body.get("fromRepo"), body.get("toRepo")
        if not isinstance(src, str) or not isinstance(dst, str):
            raise BadRequest("'fromRepo' and 'toRepo' are required")
        split_repo_id(src)
        with unit(request) as (ctx, s, p):
            repo_type = repo_type_from(_str_or_none(body, "type"))
            repo = repos.move_repo(ctx, s, p, repo_type, src, dst)
            return {"url": repos.repo_url(base_url(request), repo_type, repo.full_name)}

    return await run_in_threadpool(run)


@router.put("/api/{rtype:repotype}/{ns}/{name}/settings")
async def update_repo_settings(request: Request, rtype: str, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.update_repo_settings` and 0.21's `update_repo_visibility`: PUT /api/{T}/{id}/settings."""
    body = await json_object(request)

    def run() -> dict[str, Any]:
        with unit(request) as (_, s, p):
            return repos.update_settings(s, p, rtype, f"{ns}/{name}", body)

    return await run_in_threadpool(run)


@router.post("/api/validate-yaml")
async def validate_yaml(request: Request) -> dict[str, Any]:
    """Serves the README metadata check of `create_commit` / `upload_folder`: POST /api/validate-yaml."""
    return commits.validate_yaml(await json_object(request))


@router.get("/api/agent-harnesses")
def agent_harnesses() -> dict[str, Any]:
    """Background call of 2.x clients (once a day)."""
    return {"standardEnvVars": [], "harnesses": {}}


@router.api_route("/api/telemetry/{rest:path}", methods=["HEAD", "GET", "POST"])
def telemetry(rest: str) -> Response:
    """Telemetry pings from libraries: accepted and dropped (nothing leaves this machine)."""
    return Response(status_code=200)


@router.api_route("/api/{rtype:repotype}/{ns}/{name}/discussions{rest:path}", methods=["GET", "POST"])
def discussions(rtype: str, ns: str, name: str, rest: str) -> JSONResponse:
    """Discussions and pull requests are not served yet: a clear error, never a silent success."""
    from spacehub.errors import NotImplementedOnHub

    raise NotImplementedOnHub("Discussions and pull requests are not supported by this SpaceHub server")
