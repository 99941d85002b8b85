"""Duplicate a Space (`/spaces/{owner}/{name}/duplicate`): owner, name, visibility, hardware, the source's variables
(editable) and values for its secrets, through `duplicate_space`'s use case (`creation.duplicate_repo`), which never
copies the source's secrets, hardware or storage."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from spacehub.errors import HubError
from spacehub.services import creation, explore
from spacehub.ui.routing import PageRoute
from spacehub.ui.web import caller, current_user, render, unit
from spacehub.web.deps import base_url, ctx_of

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _form(request: Request, repo_id: str, status: int = 200, error: str | None = None) -> Response:
    with unit(request) as (ctx, s, p):
        view = explore.duplicate_view(ctx, s, p, repo_id, base_url(request))
    return render(request, "duplicate.html", status, space=view, tab="app", error=error)


@router.get("/spaces/{owner}/{name}/duplicate")
def duplicate_page(request: Request, owner: str, name: str) -> Response:
    if current_user(request) is None:
        return RedirectResponse(f"/login?next=/spaces/{owner}/{name}/duplicate", status_code=303)
    return _form(request, f"{owner}/{name}")


def _pairs(form: Any, prefix: str) -> list[dict[str, str]]:
    """``{prefix}_key_N`` / ``{prefix}_value_N`` fields as the client's ``[{"key", "value"}]`` (blank keys skipped;
    blank secret values too: a secret left empty is not set)."""
    out = []
    for field, key in form.multi_items():
        if field.startswith(f"{prefix}_key_") and isinstance(key, str) and key.strip():
            value = form.get(f"{prefix}_value_{field.rsplit('_', 1)[1]}")
            if isinstance(value, str) and (value or prefix == "variable"):
                out.append({"key": key.strip(), "value": value})
    return out


@router.post("/spaces/{owner}/{name}/duplicate")
async def duplicate(request: Request, owner: str, name: str) -> Response:
    source = f"{owner}/{name}"
    form = await request.form()
    body: dict[str, Any] = {
        "repository": f"{form.get('to_owner', '')}/{form.get('to_name', '')}",
        "private": form.get("private") == "1",
    }
    if isinstance(hw := form.get("hardware"), str) and hw:
        body["hardware"] = hw
    if variables := _pairs(form, "variable"):
        body["variables"] = variables
    if secrets := _pairs(form, "secret"):
        body["secrets"] = secrets
    who = caller(request)
    try:
        out = await run_in_threadpool(
            creation.duplicate_repo, ctx_of(request), who.token, "space", source, body, base_url(request)
        )
    except HubError as err:
        return await run_in_threadpool(_form, request, source, err.status_code, err.message)
    return RedirectResponse("/spaces/" + out["url"].split("/spaces/", 1)[1], status_code=303)
