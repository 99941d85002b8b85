"""Repo ids without a namespace (``gpt2``, ``squad``): the Hub's oldest repos have none, SpaceHub's never do, so
every route the client builds from such an id answers what it answers for any missing repo, 404 with
``X-Error-Code: RepoNotFound`` (which `repo_exists`, `delete_repo(missing_ok=True)` and the download cache
fallbacks depend on), never the router's untyped 404. Included after every other router: these patterns are the
namespaced ones minus a segment, so a namespaced route always wins where both match. Not in the OpenAPI document
(nothing here ever succeeds)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from spacehub.api import files  # noqa: F401  (registers the {…:webtype} convertor used below)
from spacehub.services import repos
from spacehub.web.deps import unit

router = APIRouter(include_in_schema=False)

_API = "/api/{rtype:repotype}/{name}"
_API_FORMS = (
    ("", ["GET", "HEAD"]),
    ("/revision/{rest:path}", ["GET", "HEAD"]),
    ("/tree/{rest:path}", ["GET"]),
    ("/refs", ["GET"]),
    ("/commits/{rest:path}", ["GET"]),
    ("/auth-check", ["GET"]),
    ("/auth-check/write", ["GET"]),
    ("/paths-info/{rest:path}", ["POST"]),
    ("/preupload/{rest:path}", ["POST"]),
    ("/commit/{rest:path}", ["POST"]),
)


def _missing(request: Request, repo_type: str, name: str) -> Response:
    with unit(request) as (_, s, p):  # a bad token is still 401, as on every route
        repos.get_repo(s, p, repo_type, name)  # no "/": never a repo, so RepoNotFound
    raise AssertionError("unreachable")


def _api(request: Request, rtype: str, name: str) -> Response:
    return _missing(request, rtype, name)


def _web(request: Request, wtype: str, name: str) -> Response:
    return _missing(request, wtype, name)


def _model(request: Request, name: str) -> Response:
    return _missing(request, "model", name)


for _suffix, _methods in _API_FORMS:
    router.add_api_route(_API + _suffix, _api, methods=_methods)
router.add_api_route("/{wtype:webtype}/{name}/resolve/{rest:path}", _web, methods=["GET", "HEAD"])
router.add_api_route("/{name}/resolve/{rest:path}", _model, methods=["GET", "HEAD"])
