"""Previews of a Space's pull requests: their names, and which of them should run.

A preview runs the head of a Space's pull request (``refs/pr/{num}``) beside the Space, under a runtime id of its own,
``{repo id}-pr-{num}`` (a repo id is 24 hex digits, so no repo has such an id; it also names files and Kubernetes
objects), at a host of its own, ``{subdomain}--pr-{num}.{spaces_domain}``. It should run while it was asked for
(``discussions.preview_at``) and the pull request is open (or a draft); services.previews asks for it and ends it,
the runtime reads this. Shared by services, runtime and proxy, hence here.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from spacehub.storage.models import Discussion, Repo

OPEN = ("open", "draft")
_ID = re.compile(r"^([0-9a-f]{24})-pr-([1-9][0-9]{0,8})$")
_LABEL = re.compile(r"^(.+)--pr-([1-9][0-9]{0,8})$")


def preview_id(repo_id: str, num: int) -> str:
    """The runtime id of pull request ``num``'s preview of the Space ``repo_id``."""
    return f"{repo_id}-pr-{num}"


def parse_preview_id(runtime_id: str) -> tuple[str, int] | None:
    """(repo id, pull request number) of a preview's runtime id; None for anything else (a Space's repo id)."""
    m = _ID.match(runtime_id)
    return (m.group(1), int(m.group(2))) if m else None


def repo_of(runtime_id: str) -> str:
    """The repo id a runtime id belongs to: the Space's own, or the Space a preview previews."""
    parsed = parse_preview_id(runtime_id)
    return parsed[0] if parsed else runtime_id


def host_label(subdomain: str, num: int) -> str:
    """The first label of a preview's host: ``alice-demo`` → ``alice-demo--pr-3``."""
    return f"{subdomain}--pr-{num}"


def parse_host_label(label: str) -> tuple[str, int] | None:
    """(the Space's subdomain, number) of a preview host's first label; None when it names no preview."""
    m = _LABEL.match(label)
    return (m.group(1), int(m.group(2))) if m else None


def wanted(s: Session, repo_id: str, num: int) -> Discussion | None:
    """Pull request ``num`` of the Space ``repo_id`` when its preview should run (asked for, open), else None."""
    return s.scalar(
        select(Discussion)
        .join(Repo, Repo.id == Discussion.repo_id)
        .where(
            Discussion.repo_id == repo_id,
            Discussion.num == num,
            Discussion.is_pull_request.is_(True),
            Discussion.status.in_(OPEN),
            Discussion.preview_at.is_not(None),
            Repo.type == "space",
        )
    )


def all_wanted(s: Session) -> list[str]:
    """The runtime ids of every preview that should run."""
    rows = s.execute(
        select(Discussion.repo_id, Discussion.num)
        .join(Repo, Repo.id == Discussion.repo_id)
        .where(
            Discussion.is_pull_request.is_(True),
            Discussion.status.in_(OPEN),
            Discussion.preview_at.is_not(None),
            Repo.type == "space",
        )
    ).all()
    return [preview_id(repo_id, num) for repo_id, num in rows]
