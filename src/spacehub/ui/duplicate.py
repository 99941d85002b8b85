"""Duplicate a Space (`/spaces/{owner}/{name}/duplicate`): owner, name, visibility, hardware, the source's variables
(editable) and values for its secrets, through `duplicate_space`'s use case (`creation.duplicate_repo`), which never
copies the source's secrets, hardware or storage."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from spacehub.errors import Conflict, HubError
from spacehub.services import creation, explore
from spacehub.ui.routing import PageRoute
from spacehub.ui.web import caller, current_user, render, unit
from spacehub.web.deps import base_url, ctx_of

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _form(
    request: Request,
    repo_id: str,
    status: int = 200,
    error: str | None = None,
    posted: Any = None,
    conflict: bool = False,
) -> Response:
    """The form: by default the signed-in user's own namespace and a name that is free there (the source's, else
    ``{name}-2``…); after a refusal, what was posted (never a secret's value) with the reason; after a ``conflict``
    (the name is taken), a name that is free in the namespace posted."""
    with unit(request) as (ctx, s, p):
        view = explore.duplicate_view(ctx, s, p, repo_id, base_url(request))
        if conflict:
            owner, name = str(posted.get("to_owner", "")), str(posted.get("to_name", ""))
            free = explore.free_space_name(s, owner, name)
            error = f"{owner}/{name} already exists: choose another name ({free} is free)."
    values = {"to_owner": view["owners"][0] if view["owners"] else "", "to_name": view["free_name"],
              "private": "0", "hardware": "cpu-basic", "variables": {}}  # fmt: skip
    if posted is not None:
        for key in ("to_owner", "to_name", "private", "hardware"):
            if isinstance(value := posted.get(key), str):
                values[key] = value
        values["variables"] = {v["key"]: v["value"] for v in _pairs(posted, "variable")}
    return render(request, "duplicate.html", status, space=view, tab="app", error=error, values=values)


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
    except Conflict as err:  # a Space of that name exists: the form says so, and offers a name that is free
        return await run_in_threadpool(_form, request, source, err.status_code, None, form, True)
    except HubError as err:
        return await run_in_threadpool(_form, request, source, err.status_code, err.message, form)
    return RedirectResponse("/spaces/" + out["url"].split("/spaces/", 1)[1], status_code=303)
