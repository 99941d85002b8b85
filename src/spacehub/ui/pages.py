"""Every page, in the order routes must be tried (the profile's ``/{owner}`` last), and the HTML 404."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from spacehub.errors import NotFound
from spacehub.ui import (
    accounts,
    discussion_pages,
    duplicate,
    explore,
    files,
    new_space,
    repo_pages,
    space_pages,
    space_settings,
)
from spacehub.ui.routing import PageRoute
from spacehub.ui.web import HERE, error_page
from spacehub.web import look

STATIC = HERE / "static"


def static_files() -> StaticFiles:
    """What ``/static`` serves: the pages' own files, and the site's style sheet shared with the proxy's pages
    (``web/static/site.css``)."""
    return StaticFiles(directory=STATIC, packages=[("spacehub.web", look.STATIC.name)])


router = APIRouter(route_class=PageRoute, include_in_schema=False)
for part in (
    accounts.router,
    explore.router,
    new_space.router,
    space_pages.router,
    space_settings.router,
    discussion_pages.router,
    files.router,
    duplicate.router,
):
    router.include_router(part)
router.include_router(repo_pages.router)  # after every fixed page: /{owner}/{name} is wide
router.add_api_route("/{owner}", explore.profile_page, methods=["GET"])


def wants_html(request: Request) -> bool:
    """A browser navigation (API clients send ``*/*`` or JSON and keep getting the Hub's JSON errors)."""
    return "text/html" in request.headers.get("accept", "")


def not_found_page(request: Request) -> Response:
    return error_page(request, NotFound("There is no page at this address"))
