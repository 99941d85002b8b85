"""The explore pages (`/spaces`, `/models`, `/datasets`) and profiles (`/{user or org}`)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from spacehub.services import explore
from spacehub.ui.routing import PageRoute
from spacehub.ui.web import render, unit
from spacehub.web.deps import base_url

router = APIRouter(route_class=PageRoute, include_in_schema=False)
SORT_LABELS = {"updated": "Recently updated", "created": "Newest", "likes": "Most liked"}


@router.get("/")
def home(request: Request) -> Response:
    return spaces_page(request)


@router.get("/spaces")
def spaces_page(request: Request, q: str = "", sort: str = "updated") -> Response:
    q, sort = q[:200], sort if sort in SORT_LABELS else "updated"
    with unit(request) as (ctx, s, p):
        cards = explore.space_cards(ctx, s, p, base_url(request), q, sort)
    return render(request, "spaces.html", cards=cards, q=q, sort=sort, sorts=SORT_LABELS)


@router.get("/models")
def models_page(request: Request, q: str = "", sort: str = "updated") -> Response:
    return _repos_page(request, "model", q, sort)


@router.get("/datasets")
def datasets_page(request: Request, q: str = "", sort: str = "updated") -> Response:
    return _repos_page(request, "dataset", q, sort)


def _repos_page(request: Request, repo_type: str, q: str, sort: str) -> Response:
    q, sort = q[:200], sort if sort in SORT_LABELS else "updated"
    with unit(request) as (ctx, s, p):
        repos = explore.repo_list(ctx, s, p, base_url(request), repo_type, q, sort)
    prefix = "/datasets/" if repo_type == "dataset" else "/"
    return render(request, "repos.html", repos=repos, repo_type=repo_type, prefix=prefix, q=q, sort=sort,
                  sorts=SORT_LABELS)  # fmt: skip


def profile_page(request: Request, owner: str) -> Response:
    with unit(request) as (ctx, s, p):
        prof = explore.profile(ctx, s, p, owner, base_url(request))
    return render(request, "profile.html", profile=prof)
