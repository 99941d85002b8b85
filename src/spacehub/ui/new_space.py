"""`/new-space`: owner, name, SDK, hardware (with prices) and visibility; creates the Space with a starter app."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from spacehub.errors import Conflict, HubError
from spacehub.services import explore, hardware, starters
from spacehub.ui.routing import PageRoute
from spacehub.ui.web import caller, current_user, render, unit
from spacehub.web.deps import base_url, ctx_of

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _form(
    request: Request,
    status: int = 200,
    error: str | None = None,
    values: dict[str, Any] | None = None,
    conflict: bool = False,
) -> Response:
    """The form (again, after a refusal: with what was posted and the reason; a name taken in that namespace is
    said with a free one, as on the duplicate form)."""
    with unit(request) as (ctx, s, p):
        owners = explore.namespaces(s, p)
        if conflict and values is not None:
            owner = values.get("owner") or (owners[0] if owners else "")
            name = values.get("name", "")
            free = explore.free_space_name(s, owner, name)
            error = f"{owner}/{name} already exists: choose another name ({free} is free)."
    flavors = hardware.list_hardware(ctx.hardware)
    return render(request, "new_space.html", status, owners=owners, flavors=flavors, sdks=starters.SDKS,
                  error=error, values=values or {"sdk": "gradio", "hardware": "cpu-basic", "private": "0"})  # fmt: skip


@router.get("/new-space")
def new_space_page(request: Request) -> Response:
    if current_user(request) is None:
        return RedirectResponse("/login?next=/new-space", status_code=303)
    return _form(request)


@router.post("/new-space")
async def create_space(request: Request) -> Response:
    form = await request.form()
    values = {k: v if isinstance(v, str) else "" for k, v in form.items() if k != "csrf_token"}
    body: dict[str, Any] = {
        "name": values.get("name", "")[:200],
        "organization": values.get("owner") or None,
        "sdk": values.get("sdk", ""),
        "private": values.get("private") == "1",
    }
    if values.get("hardware"):
        body["hardware"] = values["hardware"]
    who = caller(request)
    try:
        out = await run_in_threadpool(starters.create_space, ctx_of(request), who.token, body, base_url(request))
    except Conflict as err:
        return await run_in_threadpool(_form, request, err.status_code, None, values, True)
    except HubError as err:
        return await run_in_threadpool(_form, request, err.status_code, err.message, values)
    return RedirectResponse(f"/spaces/{out['name']}", status_code=303)
