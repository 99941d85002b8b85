"""Likes: like and unlike a repo, the repos a user liked, the users who liked a repo.

A like is a row of ``likes`` (one per user and repo); ``repos.likes``, which every repo info and list item carries,
is their count, changed in the same transaction as the row. Liking needs what opening a discussion needs (read
access and a write token: ``check_repo_access(..., "contribute")``); liking twice or unliking what one does not
like changes nothing. What a user liked is public, as on the Hub, but a repo the caller may not read is left out.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from spacehub.errors import NotFound
from spacehub.services import accounts, repos
from spacehub.services.accounts import Principal
from spacehub.services.formats import iso
from spacehub.storage.models import Account, Like, Repo


def _liked(s: Session, user_id: int, repo: Repo) -> Like | None:
    return s.scalar(select(Like).where(Like.user_id == user_id, Like.repo_id == repo.id))


def _answer(s: Session, repo: Repo, liked: bool) -> dict[str, Any]:
    s.refresh(repo, ["likes"])
    return {"liked": liked, "likes": repo.likes}


def like(s: Session, p: Principal, repo_type: str, repo_id: str) -> dict[str, Any]:
    """``p`` likes the repo (again: nothing changes). Raises: RepoNotFound, Unauthorized, Forbidden."""
    repo = repos.get_repo(s, p, repo_type, repo_id, "contribute")
    assert p.user_id is not None
    if _liked(s, p.user_id, repo) is None:
        try:
            with s.begin_nested():  # a like of the same user racing this one: theirs counts, not both
                s.add(Like(user_id=p.user_id, repo_id=repo.id))
        except IntegrityError:
            return _answer(s, repo, True)
        s.execute(update(Repo).where(Repo.id == repo.id).values(likes=Repo.likes + 1))
    return _answer(s, repo, True)


def unlike(s: Session, p: Principal, repo_type: str, repo_id: str) -> dict[str, Any]:
    """``p`` no longer likes the repo (if they did). Raises: RepoNotFound, Unauthorized, Forbidden."""
    repo = repos.get_repo(s, p, repo_type, repo_id, "contribute")
    assert p.user_id is not None
    row = _liked(s, p.user_id, repo)
    if row is not None:
        s.delete(row)
        s.flush()
        s.execute(update(Repo).where(Repo.id == repo.id, Repo.likes > 0).values(likes=Repo.likes - 1))
    return _answer(s, repo, False)


def liked_repos(s: Session, p: Principal, user: str) -> list[dict[str, Any]]:
    """``GET /api/users/{user}/likes``: newest first, ``[{createdAt, repo: {name, type}}]`` (what
    `HfApi.list_liked_repos` reads), the repos ``p`` may read only. Raises: NotFound (no such user)."""
    account = accounts.get_account(s, user) if "\x00" not in user else None
    if account is None or account.kind != "user":
        raise NotFound(f"User {user!r} not found")
    rows = s.scalars(select(Like).where(Like.user_id == account.id).order_by(Like.created_at.desc(), Like.id.desc()))
    return [
        {"createdAt": iso(row.created_at), "repo": {"name": row.repo.full_name, "type": row.repo.type}}
        for row in rows
        if accounts.can_read(p, row.repo)
    ]


def likers(s: Session, p: Principal, repo_type: str, repo_id: str) -> list[dict[str, Any]]:
    """``GET /api/{T}/{id}/likers``: the users who like the repo, newest first, as `HfApi.list_repo_likers` reads
    them (``user``, ``fullname``, ``avatarUrl``). Raises: RepoNotFound."""
    repo = repos.get_repo(s, p, repo_type, repo_id)
    users = s.execute(
        select(Account.name, Account.fullname)
        .join(Like, Like.user_id == Account.id)
        .where(Like.repo_id == repo.id)
        .order_by(Like.created_at.desc(), Like.id.desc())
    )
    return [{"user": name, "fullname": fullname or name, "avatarUrl": "", "type": "user"} for name, fullname in users]
