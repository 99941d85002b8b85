"""Likes: POST/DELETE /api/{T}/{id}/like, GET /api/{T}/{id}/likers, GET /api/users/{user}/likes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from spacehub.api import responses as r
from spacehub.services import likes
from spacehub.web.deps import unit
from spacehub.web.openapi import answers

router = APIRouter()
REPO = "/api/{rtype:repotype}/{ns}/{name}"


@router.post(REPO + "/like", **answers(r.LikeAnswer))
def like(request: Request, rtype: str, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.like` (clients ≤ 0.x; 1.x and 2.x only unlike): POST /api/{T}/{id}/like."""
    with unit(request) as (_, s, p):
        return likes.like(s, p, rtype, f"{ns}/{name}")


@router.delete(REPO + "/like", **answers(r.LikeAnswer))
def unlike(request: Request, rtype: str, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.unlike`: DELETE /api/{T}/{id}/like."""
    with unit(request) as (_, s, p):
        return likes.unlike(s, p, rtype, f"{ns}/{name}")


@router.get(REPO + "/likers", **answers(list[r.RepoLiker]))
def list_repo_likers(request: Request, rtype: str, ns: str, name: str) -> list[dict[str, Any]]:
    """Serves `HfApi.list_repo_likers`: GET /api/{T}/{id}/likers."""
    with unit(request) as (_, s, p):
        return likes.likers(s, p, rtype, f"{ns}/{name}")


@router.get("/api/users/{user}/likes", **answers(list[r.UserLike]))
def list_liked_repos(request: Request, user: str) -> list[dict[str, Any]]:
    """Serves `HfApi.list_liked_repos`: GET /api/users/{user}/likes."""
    with unit(request) as (_, s, p):
        return likes.liked_repos(s, p, user)
