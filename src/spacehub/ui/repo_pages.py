"""Model and dataset pages, at the Hub's addresses (`/{owner}/{name}`, `/datasets/{owner}/{name}`): the README
rendered as the repo's card, and the same files, file, history and commit views as a Space's files tab."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from spacehub.services import explore
from spacehub.ui.markup import highlighted, markdown
from spacehub.ui.routing import PageRoute
from spacehub.ui.web import render, unit
from spacehub.web.deps import base_url, raw

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PREFIX = {"model": "", "dataset": "/datasets"}


def _base(repo_type: str, repo_id: str) -> str:
    return f"{PREFIX[repo_type]}/{repo_id}"


def card(request: Request, repo_type: str, owner: str, name: str) -> Response:
    with unit(request) as (ctx, s, p):
        repo = explore.repo_view(ctx, s, p, repo_type, f"{owner}/{name}", base_url(request))
    body = markdown(repo["readme"]) if isinstance(repo["readme"], str) else None
    return render(request, "repo.html", repo=repo, base=_base(repo_type, repo["id"]), tab="card", card=body)


def tree(request: Request, repo_type: str, owner: str, name: str, rev: str, path: str = "") -> Response:
    repo_id, rev, path = f"{owner}/{name}", raw(rev), raw(path).strip("/")
    with unit(request) as (ctx, s, p):
        view = explore.tree_view(ctx, s, p, repo_id, rev, path, repo_type)
        repo = explore.repo_view(ctx, s, p, repo_type, repo_id, base_url(request))
    crumbs = path.split("/") if path else []
    return render(request, "files.html", repo=repo, base=_base(repo_type, repo_id), head="_repo_head.html",
                  tab="files", rev=rev, repo_path=path, crumbs=crumbs, **view)  # fmt: skip


def blob(request: Request, repo_type: str, owner: str, name: str, rev: str, path: str) -> Response:
    repo_id, rev, path = f"{owner}/{name}", raw(rev), raw(path).strip("/")
    with unit(request) as (ctx, s, p):
        view = explore.blob_view(ctx, s, p, repo_id, rev, path, repo_type)
        repo = explore.repo_view(ctx, s, p, repo_type, repo_id, base_url(request))
    code = highlighted(path, view["text"]) if view["text"] is not None else None
    return render(request, "blob.html", repo=repo, base=_base(repo_type, repo_id), head="_repo_head.html",
                  tab="files", rev=rev, repo_path=path, crumbs=path.split("/"), code=code, **view)  # fmt: skip


def commits(request: Request, repo_type: str, owner: str, name: str, rev: str) -> Response:
    repo_id, rev = f"{owner}/{name}", raw(rev)
    with unit(request) as (ctx, s, p):
        items = explore.commits_view(ctx, s, p, repo_id, rev, repo_type)
        repo = explore.repo_view(ctx, s, p, repo_type, repo_id, base_url(request))
    return render(request, "commits.html", repo=repo, base=_base(repo_type, repo_id), head="_repo_head.html",
                  tab="files", rev=rev, commits=items)  # fmt: skip


def commit(request: Request, repo_type: str, owner: str, name: str, sha: str) -> Response:
    repo_id = f"{owner}/{name}"
    with unit(request) as (ctx, s, p):
        view = explore.commit_view(ctx, s, p, repo_id, raw(sha), repo_type)
        repo = explore.repo_view(ctx, s, p, repo_type, repo_id, base_url(request))
    return render(request, "commit.html", repo=repo, base=_base(repo_type, repo_id), head="_repo_head.html",
                  tab="files", rev=view["id"], commit=view)  # fmt: skip


def _routes(repo_type: str) -> None:
    prefix = PREFIX[repo_type]

    def card_page(request: Request, owner: str, name: str) -> Response:
        return card(request, repo_type, owner, name)

    def tree_root(request: Request, owner: str, name: str, rev: str) -> Response:
        return tree(request, repo_type, owner, name, rev)

    def tree_page(request: Request, owner: str, name: str, rev: str, path: str) -> Response:
        return tree(request, repo_type, owner, name, rev, path)

    def blob_page(request: Request, owner: str, name: str, rev: str, path: str) -> Response:
        return blob(request, repo_type, owner, name, rev, path)

    def commits_page(request: Request, owner: str, name: str, rev: str) -> Response:
        return commits(request, repo_type, owner, name, rev)

    router.add_api_route(f"{prefix}/{{owner}}/{{name}}/tree/{{rev}}", tree_root, methods=["GET"])
    router.add_api_route(f"{prefix}/{{owner}}/{{name}}/tree/{{rev}}/{{path:path}}", tree_page, methods=["GET"])
    router.add_api_route(f"{prefix}/{{owner}}/{{name}}/blob/{{rev}}/{{path:path}}", blob_page, methods=["GET"])

    def commit_page(request: Request, owner: str, name: str, sha: str) -> Response:
        return commit(request, repo_type, owner, name, sha)

    router.add_api_route(f"{prefix}/{{owner}}/{{name}}/commits/{{rev}}", commits_page, methods=["GET"])
    router.add_api_route(f"{prefix}/{{owner}}/{{name}}/commit/{{sha}}", commit_page, methods=["GET"])
    router.add_api_route(f"{prefix}/{{owner}}/{{name}}", card_page, methods=["GET"])


_routes("dataset")  # before the models: /datasets/{owner}/{name} would otherwise be a model's tree-less path
_routes("model")
