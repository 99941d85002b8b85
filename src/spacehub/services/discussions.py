"""Discussions and pull requests of a repo (models, datasets and Spaces alike): open, list, read, comment, edit,
hide, rename, close and reopen, with the Hub's rules.

Any signed-in reader may open a discussion or pull request and comment (``check_repo_access(..., "contribute")``);
the author of a discussion or a writer of the repo may rename, close or reopen it; a comment is edited by its author
and hidden by its author or a writer. A private repo's discussions do not exist for whoever may not read it
(RepoNotFound). Numbers are per repo, from 1, shared by discussions and pull requests (``repos.discussion_seq``).
A pull request is a discussion plus the git ref ``refs/pr/{num}``, created at the head of its target branch;
commits to it and its merge are in `services.pulls`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from spacehub.errors import BadRequest, Forbidden, NotFound
from spacehub.services import accounts, previews, repos, webhooks
from spacehub.services.accounts import Principal
from spacehub.services.context import HubContext
from spacehub.services.discussion_format import discussion_url, event_json, item_json
from spacehub.services.formats import iso
from spacehub.storage.db import utcnow
from spacehub.storage.models import Account, Discussion, DiscussionEvent, Repo

PAGE = 50  # discussions per page of GET …/discussions, as on the Hub
MAX_TEXT = 65536  # characters of a comment or description
MAX_DIFF = 1024 * 1024  # bytes of a pull request's diff in its details; a larger one is left out
TYPES = ("all", "discussion", "pull_request")
STATUS_FILTERS = {"all": None, "open": ("open", "draft"), "closed": ("closed", "merged")}


def pr_ref(num: int) -> str:
    return f"refs/pr/{num}"


def parse_num(value: str) -> int:
    """A discussion number from a URL. Raises: BadRequest (not a positive integer)."""
    if not value.isdigit() or int(value) <= 0 or len(value) > 9:
        raise BadRequest(f"Invalid discussion number {value!r}: expected a positive integer")
    return int(value)


def find(s: Session, repo: Repo, num: int) -> Discussion:
    """Raises: NotFound."""
    d = s.scalar(select(Discussion).where(Discussion.repo_id == repo.id, Discussion.num == num))
    if d is None:
        raise NotFound(f"Discussion #{num} not found in {repo.full_name}")
    return d


def _title(value: Any) -> str:
    if not isinstance(value, str) or not 3 <= len(value.strip()) <= 200:
        raise BadRequest("The title must be a string of 3 to 200 characters")
    return value.strip()


def check_text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"The {what} must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise BadRequest(f"The {what} is too long: {len(value)} characters, at most {MAX_TEXT}")
    return value


def add_event(s: Session, d: Discussion, kind: str, p: Principal, data: dict[str, Any]) -> DiscussionEvent:
    """Append an event to ``d``'s timeline (and note the activity on ``d``)."""
    ev = DiscussionEvent(
        event_id=secrets.token_hex(12),
        discussion_id=d.id,
        kind=kind,
        author_id=p.user_id,
        data=json.dumps(data),
        created_at=utcnow(),
    )
    s.add(ev)
    s.flush()
    d.updated_at = ev.created_at
    return ev


def add_comment(s: Session, d: Discussion, p: Principal, raw: str) -> DiscussionEvent:
    """A new comment by ``p``: its history holds one version."""
    version = {"raw": raw, "updatedAt": iso(utcnow()), "author": p.name}
    return add_event(s, d, "comment", p, {"history": [version], "hidden": False})


# ---- opening ------------------------------------------------------------------------------------------------
def open_discussion(
    ctx: HubContext,
    s: Session,
    p: Principal,
    repo: Repo,
    title: str,
    description: str,
    pull_request: bool = False,
    target: str = "refs/heads/main",
    base: str | None = None,
    status: str | None = None,
) -> Discussion:
    """A new discussion numbered after the repo's last one, its description as first comment. A pull request also
    gets ``refs/pr/{num}`` at ``base`` (default: the head of ``target``) and is a draft unless ``status`` says.

    Raises: RevisionNotFound (no ``target`` branch), BadRequest.
    """
    if pull_request and base is None:
        base = ctx.git.ref_target(repo.id, target)
        if base is None:
            from spacehub.errors import RevisionNotFound

            raise RevisionNotFound(f"Invalid rev id: {target.removeprefix('refs/heads/')}")
    s.execute(update(Repo).where(Repo.id == repo.id).values(discussion_seq=Repo.discussion_seq + 1))
    num = s.scalar(select(Repo.discussion_seq).where(Repo.id == repo.id))
    assert num is not None
    now = utcnow()
    d = Discussion(
        repo_id=repo.id,
        num=num,
        author_id=p.user_id,
        title=title,
        is_pull_request=pull_request,
        status=status or ("draft" if pull_request else "open"),
        target_branch=target if pull_request else None,
        created_at=now,
        updated_at=now,
    )
    s.add(d)
    s.flush()
    first = add_comment(s, d, p, description)
    if pull_request:
        assert base is not None
        # The number is new in the database; a ref of that name can only be left from a rolled-back attempt.
        ctx.git.force_ref(repo.id, pr_ref(num), base)
    webhooks.emit_discussion(ctx, s, repo, d, "create", first)
    if pull_request:  # the new ref, as the Hub announces a pull request's reference on repo.content
        webhooks.emit(
            ctx, s, repo, "repo.content", "update", updatedRefs=[webhooks.ref_update(pr_ref(num), None, base)]
        )
    return d


def create_discussion(
    ctx: HubContext, s: Session, p: Principal, repo_type: str, repo_id: str, body: Mapping[str, Any], base_url: str
) -> dict[str, Any]:
    """Serves ``POST …/discussions`` ({title, description, pullRequest}): ``{num, url, pullRequest}``.

    Raises: RepoNotFound, Unauthorized, Forbidden (read-only token), BadRequest.
    """
    repo = repos.get_repo(s, p, repo_type, repo_id, "contribute")
    title = _title(body.get("title"))
    description = check_text(body.get("description") or "(no description)", "description")
    pull_request = body.get("pullRequest", False)
    if not isinstance(pull_request, bool):
        raise BadRequest("'pullRequest' must be a boolean")
    d = open_discussion(ctx, s, p, repo, title, description, pull_request)
    url = discussion_url(repos.repo_url(base_url, repo.type, repo.full_name), d.num)
    return {"num": d.num, "url": url, "pullRequest": pull_request}


# ---- reading --------------------------------------------------------------------------------------------------
def _choice(query: Mapping[str, str], key: str, allowed: tuple[str, ...]) -> str:
    value = query.get(key) or "all"
    if value not in allowed:
        raise BadRequest(f"Invalid {key} {value!r}; use one of {', '.join(allowed)}")
    return value


def list_discussions(
    s: Session, p: Principal, repo_type: str, repo_id: str, query: Mapping[str, str]
) -> dict[str, Any]:
    """A page (``p``, from 0) of the repo's discussions, newest first, filtered by ``type``, ``status`` and
    ``author`` as `get_repo_discussions` sends them: ``{discussions, count, start, numClosedDiscussions}``.

    Raises: RepoNotFound, BadRequest (unknown filter value, bad page).
    """
    repo = repos.get_repo(s, p, repo_type, repo_id)
    kind = _choice(query, "type", TYPES)
    status = _choice(query, "status", tuple(STATUS_FILTERS))
    page = query.get("p") or "0"
    if not page.isdigit() or len(page) > 9:
        raise BadRequest(f"Invalid page {page!r}: expected a non-negative integer")
    q = select(Discussion).where(Discussion.repo_id == repo.id)
    if kind != "all":
        q = q.where(Discussion.is_pull_request.is_(kind == "pull_request"))
    author = query.get("author")
    if author:
        q = q.where(Discussion.author_id == select(Account.id).where(Account.name == author).scalar_subquery())
    closed = s.scalar(select(func.count()).select_from(q.where(Discussion.status.in_(("closed", "merged"))).subquery()))
    if STATUS_FILTERS[status] is not None:
        q = q.where(Discussion.status.in_(STATUS_FILTERS[status]))
    total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
    start = int(page) * PAGE
    rows = list(s.scalars(q.order_by(Discussion.num.desc()).offset(start).limit(PAGE)))
    counts = dict(
        s.execute(  # type: ignore[arg-type]
            select(DiscussionEvent.discussion_id, func.count())
            .where(DiscussionEvent.discussion_id.in_([d.id for d in rows]), DiscussionEvent.kind == "comment")
            .group_by(DiscussionEvent.discussion_id)
        ).all()
    )
    return {
        "discussions": [item_json(d, repo, counts.get(d.id, 0)) for d in rows],
        "count": total,
        "start": start,
        "numClosedDiscussions": closed or 0,
    }


def events(s: Session, d: Discussion) -> list[DiscussionEvent]:
    return list(
        s.scalars(select(DiscussionEvent).where(DiscussionEvent.discussion_id == d.id).order_by(DiscussionEvent.id))
    )


def get_discussion_details(
    ctx: HubContext, s: Session, p: Principal, repo_type: str, repo_id: str, num: int, with_diff: bool
) -> dict[str, Any]:
    """A discussion with its events; a pull request also with ``changes.base``, ``changes.mergeCommitId`` once
    merged, ``filesWithConflicts`` (against its target now) and, with ``with_diff``, its ``diff``.

    Raises: RepoNotFound, NotFound.
    """
    repo = repos.get_repo(s, p, repo_type, repo_id)
    d = find(s, repo, num)
    out = item_json(d, repo, 0)
    evs = events(s, d)
    out.update(numComments=sum(ev.kind == "comment" for ev in evs), events=[event_json(ev) for ev in evs])
    out.update(locked=False, collection="discussions")
    if d.is_pull_request:
        changes: dict[str, Any] = {"base": d.target_branch}
        if d.merge_commit:
            changes["mergeCommitId"] = d.merge_commit
        out["changes"] = changes
        out["filesWithConflicts"] = conflicting_files(ctx, repo, d)
        if with_diff:
            diff = pull_request_diff(ctx, repo, d)
            out["diff"] = diff if diff is not None and len(diff.encode()) <= MAX_DIFF else None
    return out


def conflicting_files(ctx: HubContext, repo: Repo, d: Discussion) -> list[str]:
    """The paths an open pull request's merge into its target would conflict on now (none once closed or merged)."""
    if d.status not in ("open", "draft") or d.target_branch is None:
        return []
    target, head = ctx.git.ref_target(repo.id, d.target_branch), ctx.git.ref_target(repo.id, pr_ref(d.num))
    if target is None or head is None:
        return []
    if ctx.git.is_ancestor(repo.id, target, head) or ctx.git.is_ancestor(repo.id, head, target):
        return []
    return ctx.git.merge_conflicts(repo.id, target, head)


def pull_request_diff(ctx: HubContext, repo: Repo, d: Discussion) -> str | None:
    """What the pull request changes: from where it forked off its target to its head; once merged, what the merge
    brought to the target."""
    if d.merge_commit:
        parents = ctx.git.commit_info(repo.id, d.merge_commit).parents
        return ctx.git.diff(repo.id, parents[0], d.merge_commit) if parents else None
    head = ctx.git.ref_target(repo.id, pr_ref(d.num))
    target = ctx.git.ref_target(repo.id, d.target_branch or "refs/heads/main")
    if head is None:
        return None
    base = ctx.git.merge_base(repo.id, target, head) if target else None
    return ctx.git.diff(repo.id, base or head, head)


def pull_request_refs(s: Session, ctx: HubContext, repo: Repo) -> list[dict[str, str]]:
    """``pullRequests`` of ``list_repo_refs(include_pull_requests=True)``: every pull request's ref."""
    heads = ctx.git.pull_requests(repo.id)
    nums = s.scalars(select(Discussion.num).where(Discussion.repo_id == repo.id, Discussion.is_pull_request.is_(True)))
    return [
        {"name": pr_ref(n), "ref": pr_ref(n), "targetCommit": heads[str(n)]} for n in sorted(nums) if str(n) in heads
    ]


# ---- changing -------------------------------------------------------------------------------------------------
def _open_for(s: Session, p: Principal, repo_type: str, repo_id: str, num: int) -> tuple[Repo, Discussion]:
    repo = repos.get_repo(s, p, repo_type, repo_id, "contribute")
    return repo, find(s, repo, num)


def _author_or_writer(p: Principal, repo: Repo, d: Discussion, what: str) -> None:
    if d.author_id != p.user_id and not accounts.can_write(p, repo):
        raise Forbidden(f"Only the author of discussion #{d.num} or a writer of {repo.full_name} may {what}")


def comment_discussion(
    ctx: HubContext, s: Session, p: Principal, repo_type: str, repo_id: str, num: int, body: Mapping[str, Any]
) -> dict[str, Any]:
    """Serves ``POST …/discussions/{num}/comment`` ({comment}): ``{newMessage}``.

    Raises: RepoNotFound, NotFound, Unauthorized, Forbidden, BadRequest."""
    repo, d = _open_for(s, p, repo_type, repo_id, num)
    ev = add_comment(s, d, p, check_text(body.get("comment"), "comment"))
    webhooks.emit_discussion(ctx, s, repo, d, "create", ev, scope="discussion.comment")
    return {"newMessage": event_json(ev)}


def _find_comment(s: Session, d: Discussion, comment_id: str) -> DiscussionEvent:
    ev = s.scalar(
        select(DiscussionEvent).where(
            DiscussionEvent.discussion_id == d.id,
            DiscussionEvent.event_id == comment_id.lower(),
            DiscussionEvent.kind == "comment",
        )
    )
    if ev is None:
        raise NotFound(f"Comment {comment_id} not found in discussion #{d.num}")
    return ev


def edit_discussion_comment(
    ctx: HubContext,
    s: Session,
    p: Principal,
    repo_type: str,
    repo_id: str,
    num: int,
    comment_id: str,
    body: Mapping[str, Any],
) -> dict[str, Any]:
    """Serves ``POST …/discussions/{num}/comment/{id}/edit`` ({content}): ``{updatedComment}``; the comment's author
    only, and not once hidden. Raises: RepoNotFound, NotFound, Forbidden, BadRequest."""
    repo, d = _open_for(s, p, repo_type, repo_id, num)
    ev = _find_comment(s, d, comment_id)
    content = check_text(body.get("content"), "content")
    if ev.author_id != p.user_id:
        raise Forbidden("Only the author of a comment may edit it")
    data = json.loads(ev.data)
    if data.get("hidden"):
        raise BadRequest("A hidden comment cannot be edited")
    data["history"].insert(0, {"raw": content, "updatedAt": iso(utcnow()), "author": p.name})
    ev.data = json.dumps(data)
    d.updated_at = utcnow()
    s.flush()
    webhooks.emit_discussion(ctx, s, repo, d, "update", ev, scope="discussion.comment")
    return {"updatedComment": event_json(ev)}


def hide_discussion_comment(
    ctx: HubContext, s: Session, p: Principal, repo_type: str, repo_id: str, num: int, comment_id: str
) -> dict[str, Any]:
    """Serves ``POST …/discussions/{num}/comment/{id}/hide``: ``{updatedComment}``. Its author or a writer; the text
    and its history are erased, as on the Hub (hiding cannot be undone). Raises: RepoNotFound, NotFound, Forbidden."""
    repo, d = _open_for(s, p, repo_type, repo_id, num)
    ev = _find_comment(s, d, comment_id)
    if ev.author_id != p.user_id and not accounts.can_write(p, repo):
        raise Forbidden(f"Only the author of a comment or a writer of {repo.full_name} may hide it")
    data = json.loads(ev.data)
    if not data.get("hidden"):
        data = {
            "history": [{"raw": "", "updatedAt": iso(utcnow()), "author": p.name}],
            "hidden": True,
            "hiddenBy": p.name,
        }
        ev.data = json.dumps(data)
        s.flush()
        webhooks.emit_discussion(ctx, s, repo, d, "update", ev, scope="discussion.comment")
    return {"updatedComment": event_json(ev)}


def rename_discussion(
    ctx: HubContext, s: Session, p: Principal, repo_type: str, repo_id: str, num: int, body: Mapping[str, Any]
) -> dict[str, Any]:
    """Serves ``POST …/discussions/{num}/title`` ({title}): ``{newTitle}``; its author or a writer.

    Raises: RepoNotFound, NotFound, Forbidden, BadRequest."""
    repo, d = _open_for(s, p, repo_type, repo_id, num)
    title = _title(body.get("title"))
    _author_or_writer(p, repo, d, "rename it")
    ev = add_event(s, d, "title-change", p, {"from": d.title, "to": title})
    d.title = title
    webhooks.emit_discussion(ctx, s, repo, d, "update")
    return {"newTitle": event_json(ev)}


def change_discussion_status(
    ctx: HubContext, s: Session, p: Principal, repo_type: str, repo_id: str, num: int, body: Mapping[str, Any]
) -> dict[str, Any]:
    """Serves ``POST …/discussions/{num}/status`` ({status: open|closed, comment?}): ``{newStatus}``; its author or a
    writer. Opening a draft pull request publishes it; a merged one stays merged.

    Raises: RepoNotFound, NotFound, Forbidden, BadRequest."""
    repo, d = _open_for(s, p, repo_type, repo_id, num)
    status = body.get("status")
    if status not in ("open", "closed"):
        raise BadRequest(f"Invalid status {status!r}; use 'open' or 'closed'")
    comment = body.get("comment")
    if comment is not None:
        comment = check_text(comment, "comment")
    _author_or_writer(p, repo, d, "change its status")
    if d.status == "merged":
        raise BadRequest(f"Pull request #{num} is merged: its status cannot change")
    if d.status == status:
        raise BadRequest(f"Discussion #{num} is already {status}")
    d.status = status
    ev = add_event(s, d, "status-change", p, {"status": status})
    if status == "closed":
        previews.end(ctx, s, repo, d)  # a closed pull request's preview stops (reopening does not start it again)
    webhooks.emit_discussion(ctx, s, repo, d, "update")
    if comment:
        webhooks.emit_discussion(ctx, s, repo, d, "create", add_comment(s, d, p, comment), scope="discussion.comment")
    return {"newStatus": event_json(ev)}


def record_commit(s: Session, repo: Repo, num: int, p: Principal, sha: str, subject: str, parents: list[str]) -> None:
    """A commit to ``refs/pr/{num}`` in the pull request's timeline."""
    add_event(s, find(s, repo, num), "commit", p, {"subject": subject, "oid": sha, "parents": parents})
