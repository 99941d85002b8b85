"""create_app(ctx) → the Hub's ASGI app: routers, the raw-path router fix, error rendering.

It only assembles HTTP: everything it serves comes in ``ctx`` (and the runtime's ``lifespan``), built by the
composition root, `spacehub.wiring` (``build_app(settings)`` for a whole app)."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spacehub.errors import HubError
from spacehub.services.context import HubContext

log = logging.getLogger("spacehub")


class RawPathMiddleware:
    """Route on the raw path: revisions and tree paths arrive %2F-encoded (``refs%2Fpr%2F1``), and decoding them
    before routing would split them. Handlers decode their parameters once (``web.deps.raw``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and scope.get("raw_path"):
            scope = dict(scope)
            scope["path"] = scope["raw_path"].decode("latin-1")
        await self.app(scope, receive, send)


class RequestIds:
    """Every answer names its request (``X-Request-Id``: the client's own, else a new one), and error answers carry
    it too (``request.state.request_id``); a body announced larger than ``max_bytes`` is refused before it is read.
    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` cost about a third of a millisecond per request."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rid = length = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                rid = value.decode("latin-1")
            elif name == b"content-length":
                length = value
        rid = rid or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            from spacehub.errors import PayloadTooLarge

            err = PayloadTooLarge(f"Request body is larger than the limit of {self.max_bytes} bytes")
            return await error_response(err, rid)(scope, receive, send)
        rid_header = (b"x-request-id", safe_header(rid, 200).encode("latin-1"))

        async def named(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", ()) if h[0].lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, rid_header]}
            await send(message)

        await self.app(scope, receive, named)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _escape_control(m: re.Match[str]) -> str:
    c = m.group()
    return " " if c == "\n" else {"\r": "\\r", "\t": "\\t"}.get(c, f"\\x{ord(c):02x}")


def safe_header(message: str, limit: int = 1000) -> str:
    """``message`` as a valid HTTP header value: printable ASCII only. Newlines become spaces, other control
    characters visible escapes (``\\r``, ``\\x00``), anything beyond ASCII ``?``; the JSON body keeps the message whole.
    (An invalid value makes the server drop the response: the client would get no answer at all.)"""
    return _CONTROL.sub(_escape_control, message).encode("ascii", "replace").decode()[:limit].strip()


def error_response(err: HubError, request_id: str) -> JSONResponse:
    extra = {k: safe_header(v, 8000) for k, v in err.headers.items()}
    headers = {"X-Error-Message": safe_header(err.message) or "Error", "X-Request-Id": safe_header(request_id, 200)}
    headers.update(extra)
    if err.error_code:
        headers["X-Error-Code"] = err.error_code
    if err.status_code == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="SpaceHub"')
    body: dict[str, Any] = {"error": err.message, **err.extra}
    return JSONResponse(body, status_code=err.status_code, headers=headers)


def create_app(ctx: HubContext, lifespan: Any = None) -> FastAPI:
    """The Hub app over ``ctx``; ``lifespan`` starts and stops what runs beside it (the runtime)."""
    from starlette.exceptions import HTTPException

    from spacehub.api import (
        commits,
        discussions,
        files,
        hardware,
        info,
        likes,
        missing,
        repos,
        space_settings,
        spaces,
        storage,
        users,
        webhooks,
    )
    from spacehub.api.answer_cache import AnswerCache
    from spacehub.git import routes as git_routes
    from spacehub.ui import pages

    app = FastAPI(title="SpaceHub", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json", lifespan=lifespan)
    app.state.ctx = ctx  # the one thing handlers find on the app (`web.deps.ctx_of`)

    @app.exception_handler(HubError)
    async def hub_error(request: Request, err: HubError) -> JSONResponse:
        return error_response(err, getattr(request.state, "request_id", ""))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, err: Exception) -> JSONResponse:
        """A 500 in the Hub's format (Starlette sends it, then re-raises for the log: see ``limits.RequestLimits``)."""
        return error_response(HubError("Internal server error"), getattr(request.state, "request_id", ""))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> Any:
        """A browser gets the site's 404 page; API clients keep the JSON they always got."""
        if err.status_code == 404 and pages.wants_html(request):
            return pages.not_found_page(request)
        return JSONResponse({"detail": err.detail}, status_code=err.status_code, headers=err.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
        from spacehub.errors import BadRequest

        msg = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in err.errors())
        return error_response(BadRequest(f"Invalid request: {msg}"), getattr(request.state, "request_id", ""))

    # spaces first: its paths are all specific (/api/spaces/{ns}/{name}/runtime…), and FastAPI tries routes in order,
    # so the most polled read (wait_for_space) is matched first rather than after ~70 others
    hub_routers = (spaces, storage, hardware, space_settings, repos, users, info, commits, discussions, likes, webhooks)
    for module in (*hub_routers, git_routes):
        app.include_router(module.router)
    app.mount("/static", pages.static_files(), name="static")
    app.include_router(pages.router)  # after the API and git: its /{owner} and /spaces/{owner}/{name} are wide
    app.include_router(files.router)  # its model route /{ns}/{name}/resolve/... is the widest pattern
    app.include_router(missing.router)  # last: ids without a namespace, where no namespaced route matched
    app.add_middleware(AnswerCache, ctx=ctx)  # innermost of the three: inside RequestIds, which names every answer
    app.add_middleware(RequestIds, max_bytes=ctx.settings.storage.max_request_bytes)
    app.add_middleware(RawPathMiddleware)
    return app
