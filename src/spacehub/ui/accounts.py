"""Sign in, sign out, and the access tokens page (`/login`, `/logout`, `/settings/tokens`)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from spacehub.errors import BadRequest, TooManyRequests, Unauthorized
from spacehub.services import sessions
from spacehub.ui.routing import PageRoute
from spacehub.ui.web import caller, clear_session, current_user, render, session_token, set_session
from spacehub.web.deps import ctx_of

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def safe_next(value: object) -> str:
    """A local path to go to after signing in (never another site: ``//evil``, ``/\\evil``, schemes)."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return "/spaces"


def _form_text(form: object, key: str, limit: int = 1024) -> str:
    value = form.get(key) if hasattr(form, "get") else None  # type: ignore[union-attr]
    if not isinstance(value, str) or len(value) > limit:
        raise BadRequest(f"'{key}' is required")
    return value


@router.get("/login")
def login_page(request: Request, next: str = "/spaces") -> Response:
    return render(request, "login.html", next=safe_next(next), error=None, name="")


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    name, password = _form_text(form, "username", 64).strip(), _form_text(form, "password")
    target = safe_next(form.get("next"))
    client = request.client.host if request.client else "?"
    try:
        token = await run_in_threadpool(sessions.sign_in, ctx_of(request), name, password, client)
    except (Unauthorized, TooManyRequests) as e:  # throttled: the page says when to try again
        response = render(request, "login.html", e.status_code, next=target, error=e.message, name=name)
        response.headers.update(e.headers)
        return response
    response = RedirectResponse(target, status_code=303)
    set_session(request, response, token)
    return response


@router.get("/logout")
def logout_page(request: Request) -> Response:
    """Signing out is a POST (a GET could be triggered by any page); this page holds its form."""
    return render(request, "logout.html")


@router.post("/logout")
async def logout(request: Request) -> Response:
    await run_in_threadpool(sessions.sign_out, ctx_of(request), session_token(request))
    response = RedirectResponse("/spaces", status_code=303)
    clear_session(response)
    return response


def _need_user(request: Request) -> Response | None:
    if current_user(request) is None:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    return None


@router.get("/settings/tokens")
def tokens_page(request: Request) -> Response:
    if (to_login := _need_user(request)) is not None:
        return to_login
    items = sessions.list_tokens(ctx_of(request), caller(request).token)
    return render(request, "tokens.html", tokens=items, new_token=None)


@router.post("/settings/tokens")
async def create_token(request: Request) -> Response:
    form = await request.form()
    name, role = _form_text(form, "name", 128), _form_text(form, "role", 8)
    ctx, token = ctx_of(request), caller(request).token
    value = await run_in_threadpool(sessions.create_access_token, ctx, token, name, role)
    items = await run_in_threadpool(sessions.list_tokens, ctx, token)
    return render(request, "tokens.html", 201, tokens=items, new_token={"name": name.strip(), "value": value})


@router.post("/settings/tokens/{token_id:int}/delete")
async def revoke_token(request: Request, token_id: int) -> Response:
    await run_in_threadpool(sessions.revoke_token, ctx_of(request), caller(request).token, token_id)
    return RedirectResponse("/settings/tokens", status_code=303)
