"""Who may use git and git-lfs on a repo, and the URL shapes both tools use.

git and git-lfs authenticate with HTTP basic auth whose password is a token. They first try without credentials and
send the ones from the remote URL only after a ``401`` carrying a ``Basic`` challenge, so every refusal of an
anonymous caller is a 401 challenge here: for private and missing repos alike (indistinguishable, as on the API).
An authenticated caller gets the API's answers: 404 RepoNotFound for what they may not see, 403 for what they may not
change. The decision itself is ``services.accounts.check_repo_access``, the single gate.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor

from spacehub.errors import HubError, RepoNotFound, Unauthorized
from spacehub.services import accounts, repos
from spacehub.services.formats import URL_PREFIX
from spacehub.web.deps import bearer_token, ctx_of

CHALLENGE = {"WWW-Authenticate": 'Basic realm="SpaceHub"'}
LFS_MEDIA_TYPE = "application/vnd.git-lfs+json"
AUTH_REQUIRED = "Authentication required: use a token as the password (https://user:TOKEN@host/...)"


class GitWebTypeConvertor(Convertor[str]):
    """``{t:gitwebtype}`` matches the web prefixes datasets|spaces and yields dataset|space (models have none)."""

    regex = "datasets|spaces"

    def convert(self, value: str) -> str:
        return value[:-1]

    def to_string(self, value: str) -> str:
        return value + "s"


register_url_convertor("gitwebtype", GitWebTypeConvertor())


@dataclass(frozen=True)
class GitRepo:
    """A repo a git or git-lfs request may use, as seen after the permission check."""

    id: str
    type: str
    full_name: str
    user: str | None  # the caller, None when anonymous

    @property
    def url_path(self) -> str:
        """``spaces/alice/demo.git``: the path git-lfs and our hrefs use."""
        return f"{URL_PREFIX[self.type]}{self.full_name}.git"


def strip_git(name: str) -> str:
    """``demo.git`` → ``demo`` (repo names never end in ``.git``, so this is unambiguous)."""
    return name[:-4] if name.endswith(".git") else name


def authorize_sync(request: Request, rtype: str, repo_id: str, need: str) -> GitRepo:
    """The repo ``repo_id`` if the caller may use it for ``need`` (read/write).

    Raises: Unauthorized with a Basic challenge (anonymous callers refused for any reason, bad tokens),
    RepoNotFound (authenticated, may not read it), Forbidden (may read, may not write).
    """
    ctx = ctx_of(request)
    with ctx.db.transaction() as s:
        try:
            p = accounts.authenticate(s, bearer_token(request))
        except Unauthorized as e:
            raise Unauthorized(e.message, headers=dict(CHALLENGE)) from None
        try:
            repo = accounts.check_repo_access(p, repos.find_repo(s, rtype, repo_id), need)
        except (RepoNotFound, Unauthorized):
            if p.anonymous:
                raise Unauthorized(AUTH_REQUIRED, headers=dict(CHALLENGE)) from None
            raise
        return GitRepo(repo.id, repo.type, repo.full_name, p.name)


async def authorize(request: Request, rtype: str, repo_id: str, need: str) -> GitRepo:
    """``authorize_sync`` off the event loop."""
    return await run_in_threadpool(authorize_sync, request, rtype, repo_id, need)


Handler = Callable[..., Awaitable[Response]]


def repo_route(
    router: APIRouter, suffix: str, methods: list[str], lfs: bool = False, openapi: dict[str, Any] | None = None
) -> Callable[[Handler], Handler]:
    """Register ``handler(request, rtype, repo_id, **params)`` for ``/{datasets|spaces}/{ns}/{name}{suffix}`` and the
    model form ``/{ns}/{name}{suffix}``; ``{name}`` may end in ``.git``. LFS errors also carry the git-lfs
    ``message`` field and media type. Routes stay out of the OpenAPI document unless ``openapi`` (route keyword
    arguments that describe them) says otherwise."""

    def register(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            params: dict[str, Any] = dict(request.path_params)
            rtype = params.pop("wtype", "model")
            repo_id = f"{params.pop('ns')}/{strip_git(params.pop('name'))}"
            try:
                return await handler(request, rtype, repo_id, **params)
            except HubError as e:
                if lfs:
                    e.headers.setdefault("Content-Type", LFS_MEDIA_TYPE)
                    e.extra.setdefault("message", e.message)
                raise

        # not functools.wraps: FastAPI would read the handler's signature through __wrapped__
        endpoint.__name__, endpoint.__doc__ = handler.__name__, handler.__doc__
        for path in (f"/{{wtype:gitwebtype}}/{{ns}}/{{name}}{suffix}", f"/{{ns}}/{{name}}{suffix}"):
            described = _described(path, openapi) if openapi else {"include_in_schema": False}
            router.add_api_route(path, endpoint, methods=methods, **described)
        return handler

    return register


def _described(path: str, openapi: dict[str, Any]) -> dict[str, Any]:
    """``openapi`` with the path's parameters declared (the endpoint reads them from the request, so FastAPI does not
    see them)."""
    params = [
        {"name": "ns", "in": "path", "required": True, "schema": {"type": "string"}},
        {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
    ]
    if path.startswith("/{wtype"):
        params.insert(0, {"name": "wtype", "in": "path", "required": True, "schema": {"enum": ["datasets", "spaces"]}})
    extra = {**openapi.get("openapi_extra", {}), "parameters": params}
    return {**openapi, "openapi_extra": extra}
