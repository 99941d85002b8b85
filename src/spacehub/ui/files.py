"""The files tab of a Space: folders (`/tree/{rev}[/{path}]`), a file (`/blob/{rev}/{path}`, with the raw download
at the Hub's `/resolve/` URL), the history (`/commits/{rev}`) and one commit with its diff (`/commit/{sha}`).
Revisions and paths arrive raw (%2F-encoded) and are decoded once, as the API's handlers do."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from spacehub.services import explore
from spacehub.ui.markup import highlighted
from spacehub.ui.routing import PageRoute
from spacehub.ui.web import render, unit
from spacehub.web.deps import base_url, raw

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _page(request: Request, repo_id: str, template: str, tab: str, **values: object) -> Response:
    with unit(request) as (ctx, s, p):
        space = explore.space_view(ctx, s, p, repo_id, base_url(request))
    base = f"/spaces/{space['id']}"
    return render(request, template, space=space, repo=space, base=base, head="_space_head.html", tab=tab, **values)


def _tree(request: Request, owner: str, name: str, rev: str, path: str) -> Response:
    repo_id, rev, path = f"{owner}/{name}", raw(rev), raw(path).strip("/")
    with unit(request) as (ctx, s, p):
        view = explore.tree_view(ctx, s, p, repo_id, rev, path)
    crumbs = path.split("/") if path else []
    return _page(request, repo_id, "files.html", "files", rev=rev, repo_path=path, crumbs=crumbs, **view)


@router.get("/spaces/{owner}/{name}/tree/{rev}")
def tree_root(request: Request, owner: str, name: str, rev: str) -> Response:
    return _tree(request, owner, name, rev, "")


@router.get("/spaces/{owner}/{name}/tree/{rev}/{path:path}")
def tree(request: Request, owner: str, name: str, rev: str, path: str) -> Response:
    return _tree(request, owner, name, rev, path)


@router.get("/spaces/{owner}/{name}/blob/{rev}/{path:path}")
def blob(request: Request, owner: str, name: str, rev: str, path: str) -> Response:
    repo_id, rev, path = f"{owner}/{name}", raw(rev), raw(path).strip("/")
    with unit(request) as (ctx, s, p):
        view = explore.blob_view(ctx, s, p, repo_id, rev, path)
    code = highlighted(path, view["text"]) if view["text"] is not None else None
    return _page(request, repo_id, "blob.html", "files", rev=rev, repo_path=path, crumbs=path.split("/"), code=code,
                 **view)  # fmt: skip


@router.get("/spaces/{owner}/{name}/commits/{rev}")
def commits(request: Request, owner: str, name: str, rev: str) -> Response:
    repo_id, rev = f"{owner}/{name}", raw(rev)
    with unit(request) as (ctx, s, p):
        items = explore.commits_view(ctx, s, p, repo_id, rev)
    return _page(request, repo_id, "commits.html", "files", rev=rev, commits=items)


@router.get("/spaces/{owner}/{name}/commit/{sha}")
def commit(request: Request, owner: str, name: str, sha: str) -> Response:
    repo_id = f"{owner}/{name}"
    with unit(request) as (ctx, s, p):
        view = explore.commit_view(ctx, s, p, repo_id, raw(sha))
    return _page(request, repo_id, "commit.html", "files", rev=view["id"], commit=view)
