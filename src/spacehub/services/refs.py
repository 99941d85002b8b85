"""Branches, tags and history of a repo."""

from __future__ import annotations

from itertools import islice
from typing import Any

import pygit2
from sqlalchemy.orm import object_session

from spacehub.errors import BadRequest, Conflict, RevisionNotFound
from spacehub.services import webhooks
from spacehub.services.context import HubContext, RepoEvent
from spacehub.services.formats import iso
from spacehub.storage.git import ZERO_SHA
from spacehub.storage.models import Repo


def list_refs(ctx: HubContext, repo: Repo) -> dict[str, Any]:
    def items(kind: str, refs: dict[str, str]) -> list[dict[str, str]]:
        return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": sha} for n, sha in sorted(refs.items())]

    return {
        "branches": items("heads", ctx.git.branches(repo.id)),
        "converts": [],
        "tags": items("tags", ctx.git.tags(repo.id)),
    }


def list_commits(ctx: HubContext, repo: Repo, rev: str, cursor: int, limit: int) -> tuple[list[dict[str, Any]], bool]:
    """A page of history from ``rev``, newest first. Raises: RevisionNotFound."""
    sha = ctx.git.resolve(repo.id, rev)
    page = list(islice(ctx.git.log(repo.id, sha), cursor, cursor + limit + 1))
    out = [
        {
            "id": c.id,
            "title": c.title,
            "message": c.message,
            "date": iso(c.date),
            "authors": [{"user": c.author}],
            "formatted": {"title": c.title, "message": c.message},
        }
        for c in page[:limit]
    ]
    return out, len(page) > limit


def _check_ref_name(kind: str, name: str) -> str:
    ref = f"refs/{kind}/{name}"
    # libgit2 reads the name as a C string (it would stop at a NUL): control characters are refused here, as git does
    bad_char = any(ord(c) < 32 or ord(c) == 127 for c in name)
    if not name or bad_char or name.startswith("refs/") or not pygit2.reference_is_valid_name(ref):
        raise BadRequest(f"Invalid {'branch' if kind == 'heads' else 'tag'} name: {name!r}")
    return ref


def create_branch(ctx: HubContext, repo: Repo, branch: str, starting_point: Any) -> None:
    """Raises: BadRequest (bad name), RevisionNotFound (bad starting point), Conflict (exists)."""
    ref = _check_ref_name("heads", branch)
    if starting_point is not None and not isinstance(starting_point, str):
        raise BadRequest("'startingPoint' must be a revision")
    target = ctx.git.resolve(repo.id, starting_point or "main")
    ctx.git.create_ref(repo.id, ref, target)
    ctx.events.publish(RepoEvent("committed", repo.id, repo.type, ref, target))
    _announce(ctx, repo, ref, None, target)


def _announce(ctx: HubContext, repo: Repo, ref: str, old: str | None, new: str | None) -> None:
    """A ``repo.content`` event for webhooks, in the transaction ``repo`` was read in (none: not announced)."""
    s = object_session(repo)
    if s is not None:
        webhooks.emit(ctx, s, repo, "repo.content", "update", updatedRefs=[webhooks.ref_update(ref, old, new)])


def delete_ref(ctx: HubContext, repo: Repo, kind: str, name: str) -> None:
    """Raises: BadRequest (main), RevisionNotFound (missing)."""
    if kind == "heads" and name == "main":
        raise BadRequest("Cannot delete refs/heads/main")
    ref = _check_ref_name(kind, name)
    current = (ctx.git.branches if kind == "heads" else ctx.git.tags)(repo.id).get(name)
    if current is None:
        raise RevisionNotFound(f"Invalid rev id: {name}")
    repo_obj = ctx.git.open(repo.id)
    old = str(repo_obj.references[ref].target)  # annotated tags point at the tag object
    ctx.git.update_ref(repo.id, ref, ZERO_SHA, old)
    _announce(ctx, repo, ref, old, None)


def create_tag(ctx: HubContext, repo: Repo, tag: str, rev: str, message: str | None, tagger: str) -> None:
    """Raises: BadRequest, RevisionNotFound, Conflict (exists)."""
    ref = _check_ref_name("tags", tag)
    target = ctx.git.resolve(repo.id, rev)
    if tag in ctx.git.tags(repo.id):
        raise Conflict(f"Tag {tag} already exists")
    if message:
        try:
            ctx.git.create_annotated_tag(repo.id, tag, target, message, tagger)
        except (ValueError, pygit2.GitError) as e:
            raise Conflict(f"Tag {tag} already exists") from e
    else:
        ctx.git.create_ref(repo.id, ref, target)
    _announce(ctx, repo, ref, None, target)
