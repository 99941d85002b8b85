"""A Space's pull requests and discussions (`/spaces/{owner}/{name}/discussions[/{num}]`), for whoever may read the
Space, through the use cases of `HfApi.get_repo_discussions` and `get_discussion_details`. A pull request's page
shows its preview (`services.previews`) and, to whom may ask for one (its author or a writer, while it is open: the
very checks of ``POST /api/spaces/{id}/discussions/{num}/preview``), a "Preview" button: a CSRF-protected form that
calls the same use case and comes back to the page."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from spacehub.services import accounts, discussions, explore, previews
from spacehub.ui.routing import PageRoute
from spacehub.ui.web import caller, render, unit
from spacehub.web.deps import base_url, ctx_of

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PREFIX = "/spaces/{owner}/{name}/discussions"


@router.get(PREFIX)
def discussions_page(request: Request, owner: str, name: str) -> Response:
    repo_id = f"{owner}/{name}"
    with unit(request) as (ctx, s, p):
        space = explore.space_view(ctx, s, p, repo_id, base_url(request))
        listing = discussions.list_discussions(s, p, "space", repo_id, {"type": "all", "status": "all"})
    return render(request, "discussions.html", space=space, tab="community", listing=listing)


@router.get(PREFIX + "/{num}")
def discussion_page(request: Request, owner: str, name: str, num: str) -> Response:
    repo_id, number = f"{owner}/{name}", discussions.parse_num(num)
    with unit(request) as (ctx, s, p):
        space = explore.space_view(ctx, s, p, repo_id, base_url(request))
        d = discussions.get_discussion_details(ctx, s, p, "space", repo_id, number, False)
        panel = previews.preview_panel(ctx, s, p, repo_id, number, base_url(request)) if d["isPullRequest"] else None
    return render(request, "discussion.html", space=space, tab="community", d=d, panel=panel)


def _request(request: Request, repo_id: str, num: int) -> None:
    who = caller(request)
    ctx = ctx_of(request)
    with ctx.db.transaction() as s:
        p = accounts.authenticate(s, who.token)  # a signed-out form is refused as the API refuses a bad token
        previews.request_preview(ctx, s, p, repo_id, num, who.base_url)


@router.post(PREFIX + "/{num}/preview")
async def request_preview(request: Request, owner: str, name: str, num: str) -> Response:
    """The "Preview" button (`previews.request_preview`, as the API's POST): back to the page, which shows it."""
    number = discussions.parse_num(num)
    await run_in_threadpool(_request, request, f"{owner}/{name}", number)
    return RedirectResponse(f"/spaces/{owner}/{name}/discussions/{number}", status_code=303)
