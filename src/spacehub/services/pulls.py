"""Pull requests as git: who may commit where (a branch, a new pull request, ``refs/pr/{num}``), and merging.

On the Hub anyone who may read a repo may open a pull request with a commit (``create_pr``), also without write
access, and then write to that pull request's ref only; the repo's writers may write to every pull request and merge
it. A merge is always a merge commit on the target branch (its parents: the branch head and the pull request's
head; ``mergeCommitId`` names it), written under the same compare-and-swap of the branch as any commit, then
announced as any commit is (`commits.after_commit`: a Space rebuilds from the merged commit).
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from spacehub.errors import BadRequest, Conflict, Forbidden, NotFound, PreconditionFailed, RevisionNotFound
from spacehub.services import accounts, commits, discussions, previews, repos, webhooks
from spacehub.services.accounts import Principal
from spacehub.services.context import HubContext
from spacehub.services.discussion_format import event_json
from spacehub.storage.models import Discussion, Repo

PR_REF = re.compile(r"^refs/pr/([1-9][0-9]{0,8})$")


def commit_access(
    s: Session, p: Principal, repo_type: str, repo_id: str, rev: str, create_pr: bool
) -> tuple[Repo, str]:
    """The repo and the full ref a commit (or its preupload) at ``rev`` goes to, once ``p`` may write there: a new
    pull request (``create_pr``: any signed-in reader), ``refs/pr/{num}`` (its author or a writer, while it is open),
    or a branch (writers).

    Raises: RepoNotFound, Unauthorized, Forbidden, RevisionNotFound (no such pull request), BadRequest.
    """
    m = PR_REF.match(rev)
    if create_pr:
        repo = repos.get_repo(s, p, repo_type, repo_id, "contribute")
        if rev.startswith("refs/") and not rev.startswith("refs/heads/"):
            raise BadRequest(f"A pull request is opened against a branch, not {rev}")
        return repo, f"refs/heads/{rev.removeprefix('refs/heads/')}"
    if m is None:
        return repos.get_repo(s, p, repo_type, repo_id, "write"), f"refs/heads/{rev.removeprefix('refs/heads/')}"
    repo = repos.get_repo(s, p, repo_type, repo_id, "contribute")
    num = int(m.group(1))
    try:
        pr = discussions.find(s, repo, num)
    except NotFound:
        pr = None
    if pr is None or not pr.is_pull_request:
        raise RevisionNotFound(f"Invalid rev id: {rev}")
    if pr.author_id != p.user_id and not accounts.can_write(p, repo):
        raise Forbidden(f"Only the author of pull request #{num} or a writer of {repo.full_name} may commit to {rev}")
    if pr.status not in ("open", "draft"):
        raise BadRequest(f"Pull request #{num} is {pr.status}: it takes no more commits")
    return repo, rev


class PushRights(NamedTuple):
    """What a ``git push`` may update (`push_rights`)."""

    writer: bool  # branches and tags
    pull_requests: dict[str, str]  # refs/pr/N → "" (may push to it) or why not
    author: bool  # the pusher opened a pull request of this repo (open or not): the hook explains its refusals


def push_rights(s: Session, p: Principal, repo: Repo) -> PushRights:
    """What a ``git push`` by ``p`` may update, for the pre-receive hook (`git.push_checks`): whether it may push
    branches and tags (a writer), and for each pull request's ref, ``""`` when it may push to it (an open pull
    request, its author or a writer, as `commit_access` says for an API commit), else why not."""
    writer, author = accounts.can_write(p, repo), False
    rights = {}
    for d in s.scalars(select(Discussion).where(Discussion.repo_id == repo.id, Discussion.is_pull_request.is_(True))):
        author = author or (d.author_id is not None and d.author_id == p.user_id)
        if d.status not in ("open", "draft"):
            rights[discussions.pr_ref(d.num)] = f"pull request #{d.num} is {d.status}: it takes no more commits"
        elif d.author_id != p.user_id and not writer:
            rights[discussions.pr_ref(d.num)] = (
                f"only the author of pull request #{d.num} or a writer of {repo.full_name} may push to it"
            )
        else:
            rights[discussions.pr_ref(d.num)] = ""
    return PushRights(writer, rights, author)


def record_push(ctx: HubContext, s: Session, repo: Repo, ref: str, old: str | None, new: str, user_id: int) -> None:
    """The commits a ``git push`` added to ``refs/pr/{num}`` (from ``old`` to ``new``, oldest first; at most 100) in
    the pull request's timeline, as API commits to it are."""
    m = PR_REF.match(ref)
    if m is None:
        return
    p = Principal(user_id=user_id)
    for c in ctx.git.added(repo.id, new, old):
        discussions.record_commit(s, repo, int(m.group(1)), p, c.id, c.title, list(c.parents))


def merge_pull_request(
    ctx: HubContext, s: Session, p: Principal, repo_type: str, repo_id: str, num: int, comment: Any
) -> dict[str, Any]:
    """Serves ``POST …/discussions/{num}/merge`` ({comment?}): writers only. Merges ``refs/pr/{num}`` into its
    target branch with a merge commit and marks the pull request merged: ``{newStatus}``.

    Raises: RepoNotFound, Unauthorized, Forbidden, NotFound, BadRequest (not an open pull request, nothing to
    merge), Conflict (the changes conflict: 409 naming the files), PreconditionFailed (the branch kept moving).
    """
    repo = repos.get_repo(s, p, repo_type, repo_id, "write")
    d = discussions.find(s, repo, num)
    if comment is not None:
        comment = discussions.check_text(comment, "comment") if comment != "" else None
    if not d.is_pull_request:
        raise BadRequest(f"Discussion #{num} is not a pull request")
    if d.status not in ("open", "draft"):
        raise BadRequest(f"Pull request #{num} is {d.status}: it cannot be merged")
    target = d.target_branch or "refs/heads/main"
    sha = _merge(
        ctx, repo, target, discussions.pr_ref(num), f"Pull request #{num}", f"Merge pull request #{num}: {d.title}", p
    )
    d.status, d.merge_commit = "merged", sha
    previews.end(ctx, s, repo, d)  # the Space now runs the merged code: its preview stops
    ev = discussions.add_event(s, d, "status-change", p, {"status": "merged"})
    webhooks.emit_discussion(ctx, s, repo, d, "update")
    if comment:
        note = discussions.add_comment(s, d, p, comment)
        webhooks.emit_discussion(ctx, s, repo, d, "create", note, scope="discussion.comment")
    commits.after_commit(ctx, s, repo, target, sha)
    return {"newStatus": event_json(ev)}


def _merge(ctx: HubContext, repo: Repo, target: str, source: str, what: str, message: str, p: Principal) -> str:
    """Merge ``source`` into ``target`` with a merge commit; the target moves by compare-and-swap. When another
    commit wins the swap, the merge is computed again on the new head, as a commit without parentCommit lands on
    whatever is current (``commits.COMMIT_ATTEMPTS`` bounds it). Raises: BadRequest, Conflict, PreconditionFailed."""
    assert p.name is not None
    name = target.removeprefix("refs/heads/")
    for attempt in range(commits.COMMIT_ATTEMPTS):
        head, theirs = commits.head_of(ctx, repo, target), commits.head_of(ctx, repo, source)
        if ctx.git.is_ancestor(repo.id, theirs, head):
            raise BadRequest(f"{what} has no changes to merge into {name}")
        tree, conflicts = ctx.git.merge_trees(repo.id, head, theirs)
        if tree is None:
            raise Conflict(f"{what} conflicts with {name} in: {', '.join(conflicts)}", conflictingFiles=conflicts)
        email = f"{p.name}@users.noreply.spacehub"
        try:
            return ctx.git.commit_tree(repo.id, target, head, tree, [head, theirs], message, p.name, email)
        except PreconditionFailed:
            if attempt == commits.COMMIT_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")
