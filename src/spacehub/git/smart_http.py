"""git's smart HTTP protocol (clone, fetch, push; protocol v0 and v2), served by ``git http-backend``.

We check permissions and map the URL (``/spaces/alice/demo[.git]``) to the repo on disk (``repos/{id}.git``), then
hand the request to git's own CGI program: the reference implementation of every protocol detail. A push is checked
by the pre-receive hook (``push_checks``); once ``http-backend`` exits, the branches and pull requests that moved
get the same bookkeeping as an API commit (``services.commits.after_commit``; a pull request's timeline records the
commits pushed to it). Writers push; so do the authors of open pull requests, to their pull request's ref only.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from spacehub.errors import BadRequest, Forbidden
from spacehub.git.access import GitRepo, authorize, repo_route
from spacehub.git.cgi import run_cgi
from spacehub.git.push_checks import CONFIG_ENV, HookConfig
from spacehub.services import accounts, commits, lfs_objects, pulls, webhooks
from spacehub.services.context import HubContext
from spacehub.storage.models import Repo
from spacehub.web.deps import bearer_token, ctx_of

router = APIRouter()
SERVICES = {"git-upload-pack": "read", "git-receive-pack": "contribute"}  # a push: see `_pusher`
GIT = shutil.which("git") or "git"


@repo_route(router, "/info/refs", ["GET"])
async def git_info_refs(request: Request, rtype: str, repo_id: str) -> Response:
    """Serves the start of `git clone` / `fetch` / `push`: GET /{prefix}{id}[.git]/info/refs?service=…"""
    service = request.query_params.get("service", "")
    if service not in SERVICES:
        raise BadRequest("Only git's smart HTTP protocol is served: use git 1.6.6 or newer")
    if service == "git-receive-pack":
        repo, _ = await _pusher(request, rtype, repo_id)
    else:
        repo = await authorize(request, rtype, repo_id, SERVICES[service])
    return await _backend(request, repo, "info/refs")


@repo_route(router, "/git-upload-pack", ["POST"])
async def git_upload_pack(request: Request, rtype: str, repo_id: str) -> Response:
    """Serves `git clone` / `fetch` / `pull`: POST /{prefix}{id}[.git]/git-upload-pack."""
    repo = await authorize(request, rtype, repo_id, "read")
    return await _backend(request, repo, "git-upload-pack")


@repo_route(router, "/git-receive-pack", ["POST"])
async def git_receive_pack(request: Request, rtype: str, repo_id: str) -> Response:
    """Serves `git push`: POST /{prefix}{id}[.git]/git-receive-pack (checked by the pre-receive hook)."""
    repo, rights = await _pusher(request, rtype, repo_id)
    ctx = ctx_of(request)
    before = await run_in_threadpool(ctx.git.refs, repo.id)
    allowed = await run_in_threadpool(_lfs_allowed_file, ctx, repo)

    async def after(returncode: int) -> None:
        allowed.unlink(missing_ok=True)
        await run_in_threadpool(after_push, ctx, repo, before)

    # buffered: the answer (report-status, hook messages) is small, and a pack over the limit then gets a clean 413
    try:
        return await _backend(request, repo, "git-receive-pack", after, buffered=True, lfs_allowed=allowed,
                              rights=rights)  # fmt: skip
    except BaseException:
        allowed.unlink(missing_ok=True)
        raise


async def _pusher(request: Request, rtype: str, repo_id: str) -> tuple[GitRepo, tuple[bool, dict[str, str]]]:
    """The repo and what the caller may push to it (`pulls.push_rights`): a writer, or the author of an open pull
    request (its ref only; the hook explains a refusal to whoever opened one). Anyone else is refused before git
    runs (403, as a reader always was)."""
    repo = await authorize(request, rtype, repo_id, "contribute")

    def rights() -> pulls.PushRights:
        ctx = ctx_of(request)
        with ctx.db.transaction() as s:
            row = s.get(Repo, repo.id)
            if row is None:
                return pulls.PushRights(False, {}, False)
            return pulls.push_rights(s, accounts.authenticate(s, bearer_token(request)), row)

    got = await run_in_threadpool(rights)
    if not got.writer and not got.author:
        raise Forbidden(f"You may not push to {repo.full_name}: its writers may, and the authors of its open pull "
                        "requests to their pull request's ref (refs/pr/N)")  # fmt: skip
    return repo, (got.writer, got.pull_requests)


def _lfs_allowed_file(ctx: HubContext, repo: GitRepo) -> Path:
    """The LFS objects this push may reference (`lfs_objects.push_allowed`), one sha256 a line, for the hook."""
    with ctx.db.transaction() as s:
        row = s.get(Repo, repo.id)
        user = accounts.get_account(s, repo.user) if repo.user else None
        oids = lfs_objects.push_allowed(ctx, s, row, user.id if user else None) if row is not None else set()
    ctx.settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="push-lfs-", dir=ctx.settings.tmp_dir)
    with os.fdopen(fd, "w") as f:
        f.write("".join(f"{oid}\n" for oid in sorted(oids)))
    return Path(name)


async def _backend(
    request: Request,
    repo: GitRepo,
    service_path: str,
    after: Callable[[int], Awaitable[None]] | None = None,
    buffered: bool = False,
    lfs_allowed: Path | None = None,
    rights: tuple[bool, dict[str, str]] | None = None,
) -> Response:
    ctx = ctx_of(request)
    env = cgi_env(ctx, request, repo, service_path, lfs_allowed, rights)
    limit = ctx.settings.storage.max_request_bytes
    return await run_cgi(request, [GIT, "http-backend"], env, ctx.settings.repos_dir, limit, after, buffered)


def cgi_env(
    ctx: HubContext,
    request: Request,
    repo: GitRepo,
    service_path: str,
    lfs_allowed: Path | None = None,
    rights: tuple[bool, dict[str, str]] | None = None,
) -> dict[str, str]:
    """The CGI environment of one ``git http-backend`` run, isolated from the server user's git configuration
    (``lfs_allowed``: the file of LFS objects a push may reference, ``rights``: whether the pusher writes branches
    and tags and which pull requests they may push to, both for the pre-receive hook)."""
    settings = ctx.settings
    writer, prs = rights if rights is not None else (True, {})
    hook = HookConfig(
        str(settings.lfs_dir),
        str(settings.tmp_dir),
        settings.storage.max_request_bytes,
        str(lfs_allowed) if lfs_allowed is not None else None,
        writer,
        prs,
    )
    env = {
        "PATH": os.environ.get("PATH", os.defpath),  # to find git's helpers; nothing else leaks from our environment
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_PROJECT_ROOT": str(settings.repos_dir),
        "GIT_HTTP_EXPORT_ALL": "1",
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REQUEST_METHOD": request.method,
        "PATH_INFO": f"/{repo.id}.git/{service_path}",
        "QUERY_STRING": request.url.query,
        "CONTENT_TYPE": request.headers.get("content-type", ""),
        "REMOTE_ADDR": request.client.host if request.client else "",
        CONFIG_ENV: hook.to_env(),
    }
    if repo.user:
        env["REMOTE_USER"] = repo.user
    for header, var in (
        ("content-length", "CONTENT_LENGTH"),
        ("content-encoding", "HTTP_CONTENT_ENCODING"),  # http-backend inflates gzip request bodies itself
        ("git-protocol", "HTTP_GIT_PROTOCOL"),  # "version=2"
    ):
        if header in request.headers:
            env[var] = request.headers[header]
    return env


def after_push(ctx: HubContext, repo: GitRepo, before: dict[str, str]) -> None:
    """Bookkeeping for every branch the push moved: timestamps, the Space's sdk, the event the runtime listens to
    (`commits.after_commit`, which also tells webhooks); tags it made, moved or deleted and branches it deleted are
    one more ``repo.content`` event for webhooks; and, if any ref moved, the repo's LFS objects are listed again at
    the next check.

    Compares the refs before and after (`GitStore.refs`: every ref), so a concurrent API commit may be announced
    twice (harmless).
    """
    after = ctx.git.refs(repo.id)
    if after == before:
        return
    moved = {ref: sha for ref, sha in sorted(after.items())
             if ref.startswith(("refs/heads/", "refs/pr/")) and before.get(ref) != sha}  # fmt: skip
    others = [
        webhooks.ref_update(ref, before.get(ref), after.get(ref))
        for ref in sorted(before.keys() | after.keys())
        if ref not in moved and ref.startswith(("refs/heads/", "refs/tags/")) and before.get(ref) != after.get(ref)
    ]
    with ctx.db.transaction() as s:
        row = s.get(Repo, repo.id)
        if row is None:  # deleted meanwhile
            return
        lfs_objects.refs_moved(s, row)  # what the refs reference now is listed again at the next check
        pusher = accounts.get_account(s, repo.user) if repo.user else None
        for ref, sha in moved.items():
            commits.after_commit(ctx, s, row, ref, sha, before.get(ref))
            if ref.startswith("refs/pr/") and pusher is not None:
                pulls.record_push(ctx, s, row, ref, before.get(ref), sha, pusher.id)
        if others:
            webhooks.emit(ctx, s, row, "repo.content", "update", updatedRefs=others)
