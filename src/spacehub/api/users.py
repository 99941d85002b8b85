"""People: `get_user_overview`, `get_organization_overview`, and the avatars their ``avatarUrl`` names."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from spacehub.api import responses as r
from spacehub.services import people
from spacehub.web.deps import base_url, unit
from spacehub.web.openapi import answers, raw_answers

router = APIRouter()


@router.get("/api/users/{name}/overview", **answers(r.User))
def get_user_overview(request: Request, name: str) -> dict[str, Any]:
    """Serves `HfApi.get_user_overview`: GET /api/users/{name}/overview."""
    with unit(request) as (_, s, p):
        return people.user_overview(s, p, name, base_url(request))


@router.get("/api/organizations/{name}/overview", **answers(r.Organization))
def get_organization_overview(request: Request, name: str) -> dict[str, Any]:
    """Serves `HfApi.get_organization_overview`: GET /api/organizations/{name}/overview."""
    with unit(request) as (_, s, p):
        return people.organization_overview(s, p, name, base_url(request))


@router.get("/avatars/{name}.svg", **raw_answers("image/svg+xml", {"type": "string"}, "The account's avatar"))
def avatar(request: Request, name: str) -> Response:
    """The ``avatarUrl`` of whoami and the overviews: a drawn SVG (SpaceHub stores no pictures)."""
    with unit(request) as (_, s, _p):
        svg = people.avatar_svg(s, name)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=3600"})
