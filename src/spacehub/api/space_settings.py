"""Space secrets and variables (/api/spaces/{id}/secrets|variables) and duplicating repos (/api/{T}/{id}/duplicate).

The secrets key (``ctx.secrets``), the Space environment the runtime reads (``ctx.space_env``) and the
``secrets``/``variables`` option of create and duplicate bodies are set up by the composition root (`wiring`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from spacehub.services import creation, repos, space_settings, spaces
from spacehub.storage.models import Repo
from spacehub.web.deps import base_url, bearer_token, ctx_of, json_object, unit

router = APIRouter()


def _changed(s: Session, repo: Repo, changed: bool) -> None:
    """The app's environment changed: it restarts (a new release of the same build, so no reinstall)."""
    if changed:
        spaces.under_way(s, repo, building=False)


Change = Callable[[Session, Repo, dict[str, Any]], bool]  # applies the body; answers whether the environment changed
Answer = Callable[[Session, Repo], dict[str, Any]]


def _update(request: Request, ns: str, name: str, body: dict[str, Any], change: Change, answer: Answer) -> Any:
    """One settings change: write access, the change, the stage, the answer; then the runtime is kicked."""
    with unit(request) as (ctx, s, p):
        repo = repos.get_repo(s, p, "space", f"{ns}/{name}", "write")
        changed = change(s, repo, body)
        _changed(s, repo, changed)
        out, repo_id = answer(s, repo), repo.id
    if changed:
        ctx.runtime.space_changed(repo_id)
    return out


# ---- secrets ---------------------------------------------------------------------------------------------------
@router.get("/api/spaces/{ns}/{name}/secrets")
def get_space_secrets(request: Request, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.get_space_secrets`: GET /api/spaces/{id}/secrets (keys and descriptions, never values)."""
    with unit(request) as (_, s, p):
        repo = repos.get_repo(s, p, "space", f"{ns}/{name}", "write")
        return space_settings.get_space_secrets(s, repo)


@router.post("/api/spaces/{ns}/{name}/secrets")
async def add_space_secret(request: Request, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.add_space_secret`: POST /api/spaces/{id}/secrets {"key", "value", "description"?}."""
    body, box = await json_object(request), ctx_of(request).secrets

    def change(s: Session, repo: Repo, body: dict[str, Any]) -> bool:
        return space_settings.add_space_secret(box, s, repo, space_settings.parse_entry(body, "secret"))

    return await run_in_threadpool(_update, request, ns, name, body, change, lambda s, repo: {})


@router.delete("/api/spaces/{ns}/{name}/secrets")
async def delete_space_secret(request: Request, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.delete_space_secret`: DELETE /api/spaces/{id}/secrets {"key"} (a missing key is fine)."""
    body = await json_object(request)

    def change(s: Session, repo: Repo, body: dict[str, Any]) -> bool:
        return space_settings.delete_space_secret(s, repo, space_settings.parse_entry(body, "secret", False).key)

    return await run_in_threadpool(_update, request, ns, name, body, change, lambda s, repo: {})


# ---- variables -------------------------------------------------------------------------------------------------
@router.get("/api/spaces/{ns}/{name}/variables")
def get_space_variables(request: Request, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.get_space_variables`: GET /api/spaces/{id}/variables (read access: variables are public)."""
    with unit(request) as (_, s, p):
        repo = repos.get_repo(s, p, "space", f"{ns}/{name}")
        return space_settings.get_space_variables(s, repo)


@router.post("/api/spaces/{ns}/{name}/variables")
async def add_space_variable(request: Request, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.add_space_variable`: POST /api/spaces/{id}/variables; answers every variable."""
    body = await json_object(request)

    def change(s: Session, repo: Repo, body: dict[str, Any]) -> bool:
        return space_settings.add_space_variable(s, repo, space_settings.parse_entry(body, "variable"))

    return await run_in_threadpool(_update, request, ns, name, body, change, space_settings.get_space_variables)


@router.delete("/api/spaces/{ns}/{name}/variables")
async def delete_space_variable(request: Request, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.delete_space_variable`: DELETE /api/spaces/{id}/variables {"key"}; answers every variable."""
    body = await json_object(request)

    def change(s: Session, repo: Repo, body: dict[str, Any]) -> bool:
        return space_settings.delete_space_variable(s, repo, space_settings.parse_entry(body, "variable", False).key)

    return await run_in_threadpool(_update, request, ns, name, body, change, space_settings.get_space_variables)


# ---- duplicate -------------------------------------------------------------------------------------------------
@router.post("/api/{rtype:repotype}/{ns}/{name}/duplicate")
async def duplicate_repo(request: Request, rtype: str, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.duplicate_repo` and `duplicate_space` (≤ 1.33): POST /api/{T}/{id}/duplicate."""
    body = await json_object(request)
    args = (ctx_of(request), bearer_token(request), rtype, f"{ns}/{name}", body, base_url(request))
    return await run_in_threadpool(creation.duplicate_repo, *args)
