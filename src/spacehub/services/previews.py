"""Previews of a Space's pull requests: the runtime runs a pull request's head at a host of its own, on request.

``POST /api/spaces/{id}/discussions/{num}/preview`` asks for one (a writer of the Space or the pull request's
author; the pull request must be open), ``GET`` says where it is and what it does, ``DELETE`` ends it, and closing
or merging the pull request ends it too. The preview follows new commits to ``refs/pr/{num}``, sleeps after the
Space's sleep time like the Space, and is private exactly when the Space is (its readers are the Space's). A pull
request is a stranger's code, so the preview gets the Space's variables but never its secrets, no persistent
storage, no volumes and the default (free) flavor (`runtime.desired.PreviewOf`). Where it runs:
`storage.previews` (its runtime id and host).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from spacehub.errors import BadRequest, Forbidden, HubError, NotFound
from spacehub.services import accounts, repos
from spacehub.services.accounts import Principal
from spacehub.services.context import HubContext
from spacehub.services.formats import iso, subdomain
from spacehub.services.runtime import LogStream
from spacehub.services.space_changes import Caller
from spacehub.storage.db import after_commit, utcnow
from spacehub.storage.models import Discussion, Repo
from spacehub.storage.previews import OPEN, host_label, preview_id


def _pull_request(s: Session, p: Principal, repo_id: str, num: int, need: str = "read") -> tuple[Repo, Discussion]:
    repo = repos.get_repo(s, p, "space", repo_id, need)
    d = s.scalar(select(Discussion).where(Discussion.repo_id == repo.id, Discussion.num == num))
    if d is None:
        raise NotFound(f"Discussion #{num} not found in {repo.full_name}")
    if not d.is_pull_request:
        raise BadRequest(f"Discussion #{num} is not a pull request: only a pull request can be previewed")
    return repo, d


def _author_or_writer(p: Principal, repo: Repo, d: Discussion, what: str) -> None:
    if d.author_id != p.user_id and not accounts.can_write(p, repo):
        raise Forbidden(f"Only the author of pull request #{d.num} or a writer of {repo.full_name} may {what}")


def _tell(ctx: HubContext, s: Session, repo: Repo, num: int) -> None:
    """Once the transaction has committed, the runtime looks at the preview again."""
    key = preview_id(repo.id, num)
    after_commit(s, lambda: ctx.runtime.space_changed(key))


def preview_url(ctx: HubContext, base_url: str, repo: Repo, num: int) -> str:
    """``http://{subdomain}--pr-{num}.{spaces_domain}[:port]``, as the Space's own host is formed."""
    return repos.space_host(ctx, base_url, host_label(subdomain(repo.full_name), num))


def _document(ctx: HubContext, repo: Repo, d: Discussion, base_url: str) -> dict[str, Any]:
    if d.preview_at is None or d.status not in OPEN:
        raise NotFound(f"Pull request #{d.num} of {repo.full_name} has no preview (POST …/preview asks for one)")
    stage = ctx.runtime.stage(preview_id(repo.id, d.num))
    return {
        "num": d.num,
        "url": preview_url(ctx, base_url, repo, d.num),
        "revision": ctx.git.ref_target(repo.id, f"refs/pr/{d.num}"),
        "stage": stage or "BUILDING",  # asked for, not seen by the runtime yet: it builds next
        "requestedAt": iso(d.preview_at),
    }


def request_preview(ctx: HubContext, s: Session, p: Principal, repo_id: str, num: int, base_url: str) -> dict[str, Any]:
    """Serves ``POST /api/spaces/{id}/discussions/{num}/preview``: the preview of an open pull request runs from now
    on (asking again starts it again, e.g. after a failed build). Raises: RepoNotFound, NotFound, Unauthorized,
    Forbidden, BadRequest (not a pull request, or not open)."""
    repo, d = _pull_request(s, p, repo_id, num, "contribute")
    _author_or_writer(p, repo, d, "preview it")
    if d.status not in OPEN:
        raise BadRequest(f"Pull request #{num} is {d.status}: only an open pull request can be previewed")
    d.preview_at = utcnow()
    s.flush()
    _tell(ctx, s, repo, num)
    return _document(ctx, repo, d, base_url)


def get_preview(ctx: HubContext, s: Session, p: Principal, repo_id: str, num: int, base_url: str) -> dict[str, Any]:
    """Serves ``GET /api/spaces/{id}/discussions/{num}/preview``: ``{num, url, revision, stage, requestedAt}`` for
    whoever may read the Space. Raises: RepoNotFound, NotFound (no preview), BadRequest."""
    repo, d = _pull_request(s, p, repo_id, num)
    return _document(ctx, repo, d, base_url)


def preview_panel(ctx: HubContext, s: Session, p: Principal, repo_id: str, num: int, base_url: str) -> dict[str, Any]:
    """What a pull request's web page shows of its preview: ``can_request`` (whether ``p`` may ask for one now, by
    the very checks of `request_preview`) and ``preview`` (`get_preview`'s document, or None when none runs).
    Raises: RepoNotFound, NotFound, BadRequest (not a pull request)."""
    repo, d = _pull_request(s, p, repo_id, num)
    try:  # the checks only (they write nothing)
        _pull_request(s, p, repo_id, num, "contribute")
        _author_or_writer(p, repo, d, "preview it")
        can = d.status in OPEN
    except HubError:
        can = False
    doc = _document(ctx, repo, d, base_url) if d.preview_at is not None and d.status in OPEN else None
    return {"can_request": can, "preview": doc}


def stop_preview(ctx: HubContext, s: Session, p: Principal, repo_id: str, num: int) -> None:
    """Serves ``DELETE /api/spaces/{id}/discussions/{num}/preview``: the preview stops (its builds and logs go).
    Raises: RepoNotFound, NotFound (no preview), Unauthorized, Forbidden, BadRequest."""
    repo, d = _pull_request(s, p, repo_id, num, "contribute")
    _author_or_writer(p, repo, d, "stop its preview")
    if d.preview_at is None:
        raise NotFound(f"Pull request #{num} of {repo.full_name} has no preview")
    end(ctx, s, repo, d)


def open_preview_logs(ctx: HubContext, caller: Caller, repo_id: str, num: int, kind: str) -> LogStream:
    """A preview's "build" or "run" log, for whoever may ask for it (a writer, the pull request's author): they
    show what the pull request's code printed, and no secret of the Space is in its environment. Raises:
    BadRequest, Unauthorized, RepoNotFound, NotFound (no preview), Forbidden."""
    if kind not in ("build", "run"):
        raise BadRequest("Logs are 'build' or 'run'")
    with ctx.db.transaction() as s:
        p = accounts.authenticate(s, caller.token)
        repo, d = _pull_request(s, p, repo_id, num)
        _author_or_writer(p, repo, d, "read its preview's logs")
        if d.preview_at is None or d.status not in OPEN:
            raise NotFound(f"Pull request #{num} of {repo.full_name} has no preview")
        key = preview_id(repo.id, num)
    return ctx.runtime.logs(key, kind)


def end(ctx: HubContext, s: Session, repo: Repo, d: Discussion) -> None:
    """The pull request's preview, if any, ends (it was closed, merged or its preview stopped)."""
    if d.preview_at is not None:
        d.preview_at = None
        s.flush()
        _tell(ctx, s, repo, d.num)
