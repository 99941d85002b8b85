"""Reading repos: info, listing, tree, paths-info, refs, commits; and branches and tags."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from spacehub.api import responses as r
from spacehub.api import schemas
from spacehub.errors import BadRequest
from spacehub.services import discussions, files, listing, refs, repos
from spacehub.services.formats import iso
from spacehub.web.deps import base_url, json_object, parse_json, qbool, raw, read_body, unit
from spacehub.web.openapi import answers

router = APIRouter()


def _next_link(request: Request, cursor: int) -> dict[str, str]:
    url = request.url.include_query_params(cursor=cursor)
    public = base_url(request)
    return {"Link": f'<{public}{url.path}?{url.query}>; rel="next"'}


def _ints(q: Any, *names: str) -> list[int | None]:
    try:
        return [int(q[n]) if q.get(n) else None for n in names]
    except ValueError:
        raise BadRequest(f"{', '.join(repr(n) for n in names)} must be integers") from None


@router.get("/api/{rtype:repotype}", **answers(list[r.RepoListItem]))
def list_repos(request: Request, rtype: str) -> JSONResponse:
    """Serves `HfApi.list_models` / `list_datasets` / `list_spaces`: GET /api/{T} (paginated with Link)."""
    q = request.query_params
    for name, what in listing.UNSUPPORTED.items():
        if name in q:
            raise BadRequest(f"Filtering by {what} ({name!r}) is not supported by SpaceHub")
    limit, cursor, direction = _ints(q, "limit", "cursor", "direction")
    gated = q.get("gated")
    query = listing.ListQuery(
        rtype,
        author=q.get("author") or None,
        search=[t for t in q.getlist("search") if t],
        filters=[t for t in q.getlist("filter") if t],
        sort=q.get("sort") or None,
        direction=-1 if direction is None else direction,
        limit=limit,
        cursor=cursor or 0,
        expand=[e for e in q.getlist("expand") if e],
        full=qbool(q.get("full")),
        card_data=qbool(q.get("cardData")),
        linked=qbool(q.get("linked")),
        models=[m for m in q.getlist("models") if m],
        datasets=[d for d in q.getlist("datasets") if d],
        pipeline_tag=q.get("pipeline_tag") or None,
        gated=None if gated is None else qbool(gated),
    )
    with unit(request) as (ctx, s, p):
        items, more = listing.list_repos(ctx, s, p, query, base_url(request))
    return JSONResponse(items, headers=_next_link(request, query.cursor + len(items)) if more else {})


@router.get("/api/spaces/semantic-search", **answers(list[r.SpaceSearchResult]))
def search_spaces(request: Request) -> list[dict[str, Any]]:
    """Serves `HfApi.search_spaces`: GET /api/spaces/semantic-search?q=… (full-text here, not embeddings)."""
    q = request.query_params
    with unit(request) as (ctx, s, p):
        return listing.search_spaces(
            ctx,
            s,
            p,
            q.get("q") or "",
            [f for f in q.getlist("filter") if f],
            [x for x in q.getlist("sdk") if x],
            qbool(q.get("includeNonRunning")),
            base_url(request),
        )


@router.get("/api/{rtype:repotype}/{ns}/{name}", **answers(r.RepoInfo))
def repo_info(request: Request, rtype: str, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.repo_info` / `model_info` / `dataset_info` / `space_info`: GET /api/{T}/{id}."""
    return _info(request, rtype, f"{ns}/{name}", "main")


@router.get("/api/{rtype:repotype}/{ns}/{name}/revision/{rev:path}", **answers(r.RepoInfo))
def repo_info_at_revision(request: Request, rtype: str, ns: str, name: str, rev: str) -> dict[str, Any]:
    """Serves `repo_info(revision=…)`, `revision_exists`, snapshot_download: GET /api/{T}/{id}/revision/{rev}."""
    return _info(request, rtype, f"{ns}/{name}", raw(rev))


def _info(request: Request, rtype: str, repo_id: str, rev: str) -> dict[str, Any]:
    with unit(request) as (ctx, s, p):
        repo = repos.get_repo(s, p, rtype, repo_id)
        if rev == "main" and "main" not in ctx.git.branches(repo.id):
            sha = None  # an empty repo still has an info page
        else:
            sha = ctx.git.resolve(repo.id, rev)
        info = repos.base_info(ctx, repo, sha, base_url(request), p)
        if sha is not None:
            info["siblings"] = files.siblings(ctx, repo, sha, qbool(request.query_params.get("blobs")))
            info["cardData"] = files.card_data(ctx, repo, sha)
            info["lastModified"] = iso(ctx.git.commit_info(repo.id, sha).date)
        else:
            info["siblings"], info["cardData"] = [], {}
        if rtype == "space":
            card = info["cardData"]
            for key in ("title", "emoji", "colorFrom", "colorTo", "pinned"):
                if key in card:
                    info[key] = card[key]
        info["tags"] = listing.tags_of(repo, info["cardData"])
        return info


@router.get("/api/{rtype:repotype}/{ns}/{name}/auth-check", **answers(r.Empty))
def auth_check(request: Request, rtype: str, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.auth_check`: GET /api/{T}/{id}/auth-check (may the token read the repo?)."""
    return _auth_check(request, rtype, f"{ns}/{name}", False)


@router.get("/api/{rtype:repotype}/{ns}/{name}/auth-check/write", **answers(r.Empty))
def auth_check_write(request: Request, rtype: str, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.auth_check(write=True)` and `hf spaces hot-reload`: GET /api/{T}/{id}/auth-check/write."""
    return _auth_check(request, rtype, f"{ns}/{name}", True)


def _auth_check(request: Request, rtype: str, repo_id: str, write: bool) -> dict[str, Any]:
    with unit(request) as (_, s, p):
        repos.auth_check(s, p, rtype, repo_id, write)
    return {}


@router.get("/api/{rtype:repotype}/{ns}/{name}/tree/{rev}", **answers(r.TreeEntries))
def list_repo_tree_root(request: Request, rtype: str, ns: str, name: str, rev: str) -> JSONResponse:
    """Serves `HfApi.list_repo_tree` / `list_repo_files`: GET /api/{T}/{id}/tree/{rev}."""
    return _tree(request, rtype, f"{ns}/{name}", raw(rev), "")


@router.get("/api/{rtype:repotype}/{ns}/{name}/tree/{rev}/{path:path}", **answers(r.TreeEntries))
def list_repo_tree(request: Request, rtype: str, ns: str, name: str, rev: str, path: str) -> JSONResponse:
    """Serves `HfApi.list_repo_tree(path_in_repo=…)`: GET /api/{T}/{id}/tree/{rev}/{path}."""
    return _tree(request, rtype, f"{ns}/{name}", raw(rev), raw(path).strip("/"))


TREE_PAGE = 1000
TREE_PAGE_EXPANDED = 50


def _tree(request: Request, rtype: str, repo_id: str, rev: str, path: str) -> JSONResponse:
    q = request.query_params
    expand = qbool(q.get("expand"))
    try:
        cursor = int(q.get("cursor") or 0)
    except ValueError:
        raise BadRequest("'cursor' must be an integer") from None
    with unit(request) as (ctx, s, p):
        repo = repos.get_repo(s, p, rtype, repo_id)
        sha = ctx.git.resolve(repo.id, rev)
        items = files.tree(ctx, repo, sha, path, qbool(q.get("recursive")), False)
        page = TREE_PAGE_EXPANDED if expand else TREE_PAGE
        chunk = items[cursor : cursor + page]
        if expand:
            files.add_last_commits(ctx, repo.id, sha, chunk)
    more = cursor + page < len(items)
    return JSONResponse(chunk, headers=_next_link(request, cursor + page) if more else {})


@router.post(
    "/api/{rtype:repotype}/{ns}/{name}/paths-info/{rev}",
    openapi_extra=schemas.paths_info_body(),
    **answers(r.TreeEntries),
)
async def get_paths_info(request: Request, rtype: str, ns: str, name: str, rev: str) -> list[dict[str, Any]]:
    """Serves `HfApi.get_paths_info`: POST /api/{T}/{id}/paths-info/{rev} (form-encoded, JSON accepted too)."""
    body = await read_body(request)
    if request.headers.get("content-type", "").startswith("application/json"):
        data = parse_json(body)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise BadRequest("Expected a JSON object with 'paths' (and 'expand')")
        paths, expand = data.get("paths", []), bool(data.get("expand"))
    else:
        form = parse_qs(body.decode("utf-8", "replace"))
        paths, expand = form.get("paths", []), qbool((form.get("expand") or ["false"])[0])
    if not isinstance(paths, list) or not all(isinstance(x, str) for x in paths):
        raise BadRequest("'paths' must be a list of strings")

    def run() -> list[dict[str, Any]]:
        with unit(request) as (ctx, s, p):
            repo = repos.get_repo(s, p, rtype, f"{ns}/{name}")
            return files.paths_info(ctx, repo, ctx.git.resolve(repo.id, raw(rev)), paths, expand)

    return await run_in_threadpool(run)


@router.get("/api/{rtype:repotype}/{ns}/{name}/refs", **answers(r.GitRefs))
def list_repo_refs(request: Request, rtype: str, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.list_repo_refs`: GET /api/{T}/{id}/refs."""
    with unit(request) as (ctx, s, p):
        repo = repos.get_repo(s, p, rtype, f"{ns}/{name}")
        out = refs.list_refs(ctx, repo)
        if qbool(request.query_params.get("include_prs")):
            out["pullRequests"] = discussions.pull_request_refs(s, ctx, repo)
        return out


@router.get("/api/{rtype:repotype}/{ns}/{name}/commits/{rev}", **answers(list[r.GitCommitInfo]))
def list_repo_commits(request: Request, rtype: str, ns: str, name: str, rev: str) -> JSONResponse:
    """Serves `HfApi.list_repo_commits`: GET /api/{T}/{id}/commits/{rev} (paginated, newest first)."""
    q = request.query_params
    try:
        cursor = int(q.get("cursor") or 0)
        limit = min(int(q.get("limit") or 100), 1000)
    except ValueError:
        raise BadRequest("'cursor' and 'limit' must be integers") from None
    with unit(request) as (ctx, s, p):
        repo = repos.get_repo(s, p, rtype, f"{ns}/{name}")
        items, more = refs.list_commits(ctx, repo, raw(rev), cursor, limit)
    return JSONResponse(items, headers=_next_link(request, cursor + limit) if more else {})


@router.post(
    "/api/{rtype:repotype}/{ns}/{name}/branch/{branch:path}",
    openapi_extra=schemas.body(schemas.CreateBranchRequest),
    **answers(r.Empty),
)
async def create_branch(request: Request, rtype: str, ns: str, name: str, branch: str) -> dict[str, Any]:
    """Serves `HfApi.create_branch`: POST /api/{T}/{id}/branch/{branch}."""
    body = await json_object(request)

    def run() -> dict[str, Any]:
        with unit(request) as (ctx, s, p):
            repo = repos.get_repo(s, p, rtype, f"{ns}/{name}", "write")
            refs.create_branch(ctx, repo, raw(branch), body.get("startingPoint"))
            return {}

    return await run_in_threadpool(run)


@router.delete("/api/{rtype:repotype}/{ns}/{name}/branch/{branch:path}", **answers(r.Empty))
def delete_branch(request: Request, rtype: str, ns: str, name: str, branch: str) -> dict[str, Any]:
    """Serves `HfApi.delete_branch`: DELETE /api/{T}/{id}/branch/{branch}."""
    with unit(request) as (ctx, s, p):
        repo = repos.get_repo(s, p, rtype, f"{ns}/{name}", "write")
        refs.delete_ref(ctx, repo, "heads", raw(branch))
        return {}


@router.post(
    "/api/{rtype:repotype}/{ns}/{name}/tag/{rev:path}",
    openapi_extra=schemas.body(schemas.CreateTagRequest),
    **answers(r.Empty),
)
async def create_tag(request: Request, rtype: str, ns: str, name: str, rev: str) -> dict[str, Any]:
    """Serves `HfApi.create_tag`: POST /api/{T}/{id}/tag/{rev} with {"tag", "message"?}."""
    body = await json_object(request)

    def run() -> dict[str, Any]:
        tag, message = body.get("tag"), body.get("message")
        if not isinstance(tag, str) or (message is not None and not isinstance(message, str)):
            raise BadRequest("'tag' (string) is required; 'message' must be a string")
        with unit(request) as (ctx, s, p):
            repo = repos.get_repo(s, p, rtype, f"{ns}/{name}", "write")
            refs.create_tag(ctx, repo, tag, raw(rev), message, p.name or "")
            return {}

    return await run_in_threadpool(run)


@router.delete("/api/{rtype:repotype}/{ns}/{name}/tag/{tag:path}", **answers(r.Empty))
def delete_tag(request: Request, rtype: str, ns: str, name: str, tag: str) -> dict[str, Any]:
    """Serves `HfApi.delete_tag`: DELETE /api/{T}/{id}/tag/{tag}."""
    with unit(request) as (ctx, s, p):
        repo = repos.get_repo(s, p, rtype, f"{ns}/{name}", "write")
        refs.delete_ref(ctx, repo, "tags", raw(tag))
        return {}
