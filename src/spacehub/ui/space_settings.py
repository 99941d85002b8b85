"""The Space settings tab (`/spaces/{owner}/{name}/settings`, writers): every form calls the use case the matching
`HfApi` call's handler calls (`services.space_changes`, `services.repos`), with the session as the caller, so the
checks, the refusals and their messages are the API's. A refused change re-renders the tab with the reason and the
status the API answers, and changes nothing. Secret values are write-only: never rendered, not even back into a
form that failed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from spacehub.errors import BadRequest, HubError
from spacehub.services import accounts, explore, repos, space_changes
from spacehub.services.accounts import Principal
from spacehub.services.space_changes import Caller
from spacehub.ui.routing import PageRoute
from spacehub.ui.web import caller, error_page, render, unit
from spacehub.web.deps import base_url, ctx_of

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PREFIX = "/spaces/{owner}/{name}/settings"
T = TypeVar("T")


# The Hub's choices of sleep time (its settings tab), in seconds as `set_space_sleep_time` takes them; -1: never.
SLEEP_CHOICES = (
    (300, "5 minutes"),
    (900, "15 minutes"),
    (1800, "30 minutes"),
    (3600, "1 hour"),
    (36000, "10 hours"),
    (86400, "24 hours"),
    (172800, "48 hours"),
    (259200, "72 hours"),
    (604800, "1 week"),
    (-1, "Never"),
)
_UNITS = (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def human_duration(seconds: int | None) -> str:
    """A sleep time as people say it: "never" for -1 (or None, the API's "never sleeps"), the Hub's label for its
    choices ("10 hours", "1 week"), else weeks, days, hours, minutes and seconds ("1 hour 30 minutes")."""
    if seconds is None or seconds < 0:
        return "never"
    for value, label in SLEEP_CHOICES:
        if value == seconds:
            return label
    parts = []
    for unit_name, size in _UNITS:
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n} {unit_name}{'s' if n > 1 else ''}")
    return " ".join(parts) or "0 seconds"


def sleep_view(view: dict[str, Any], custom_on_free: bool) -> dict[str, Any]:
    """The sleep time form: the time in force in words, the Hub's choices (and the time in force when it is none
    of them, set through the API), and whether the Space's hardware is free, where the 48 hour rule holds unless
    the admin allows a choice (``runtime.custom_sleep_on_free_hardware``)."""
    runtime = view["runtime"]
    now = runtime.get("gcTimeout")
    current = -1 if now is None else int(now)
    requested = (runtime.get("hardware") or {}).get("requested")
    free = any(f["name"] == requested and not f.get("unitCostUSD") for f in view["flavors"])
    choices = [(value, label) for value, label in SLEEP_CHOICES]
    if current not in dict(choices):
        choices.append((current, human_duration(current) + " (set through the API)"))
        choices.sort(key=lambda c: (c[0] < 0, c[0]))
    return {"now": human_duration(current), "current": current, "choices": choices, "free": free,
            "fixed": free and not custom_on_free}  # fmt: skip


def _settings(request: Request, repo_id: str, status: int = 200, error: str | None = None) -> Response:
    with unit(request) as (ctx, s, p):
        view = explore.space_settings_view(ctx, s, p, repo_id, base_url(request))
        sleep = sleep_view(view, ctx.hardware.custom_sleep_on_free)
    done = request.query_params.get("done", "")[:100]
    return render(request, "space_settings.html", status, space=view, tab="settings", error=error, done=done,
                  sleep=sleep)  # fmt: skip


@router.get(PREFIX)
def settings_page(request: Request, owner: str, name: str) -> Response:
    return _settings(request, f"{owner}/{name}")


def _field(form: Any, key: str, limit: int = 65536, required: bool = True) -> str:
    value = form.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise BadRequest(f"'{key}' is missing or too long")
    return value


def _as_caller(ctx: Any, who: Caller, use_case: Callable[[Session, Principal], T]) -> T:
    """A `services.repos` use case run as its API handler runs it: in one transaction, for the session's user
    (refused as the API refuses a bad token)."""
    with ctx.db.transaction() as s:
        return use_case(s, accounts.authenticate(s, who.token))


Action = Callable[[Any, Caller, str, Any], str]  # (ctx, caller, repo id, form) → what was done
ACTIONS: dict[str, Action] = {}


def action(name: str) -> Callable[[Action], Action]:
    def register(fn: Action) -> Action:
        ACTIONS[name] = fn
        return fn

    return register


def _key_value(form: Any) -> dict[str, str]:
    """A secret's or variable's form as the API's body: key, value, and the description when given."""
    body = {"key": _field(form, "key", 256), "value": _field(form, "value")}
    if description := _field(form, "description", 1024, required=False):
        body["description"] = description
    return body


@action("secrets")
def add_secret(ctx: Any, who: Caller, repo_id: str, form: Any) -> str:
    body = _key_value(form)
    space_changes.add_secret(ctx, who, repo_id, body)
    return f"Secret {body['key']} saved"


@action("secrets/delete")
def delete_secret(ctx: Any, who: Caller, repo_id: str, form: Any) -> str:
    space_changes.delete_secret(ctx, who, repo_id, {"key": _field(form, "key", 256)})
    return "Secret deleted"


@action("variables")
def add_variable(ctx: Any, who: Caller, repo_id: str, form: Any) -> str:
    body = _key_value(form)
    space_changes.add_variable(ctx, who, repo_id, body)
    return f"Variable {body['key']} saved"


@action("variables/delete")
def delete_variable(ctx: Any, who: Caller, repo_id: str, form: Any) -> str:
    space_changes.delete_variable(ctx, who, repo_id, {"key": _field(form, "key", 256)})
    return "Variable deleted"


@action("hardware")
def request_hardware(ctx: Any, who: Caller, repo_id: str, form: Any) -> str:
    flavor = _field(form, "flavor", 64)
    space_changes.request_hardware(ctx, who, repo_id, flavor)
    return f"Hardware {flavor} requested"


@action("sleep")
def set_sleep_time(ctx: Any, who: Caller, repo_id: str, form: Any) -> str:
    value = _field(form, "seconds", 16)
    runtime = space_changes.set_sleep_time(ctx, who, repo_id, value)
    asked = int(value.strip())  # the call accepted it: a whole number of seconds, or -1
    kept = runtime.get("gcTimeout")
    if kept != (None if asked < 0 else asked):  # free hardware keeps its 48 hours (as the Hub, which accepts the call)
        hours = human_duration(kept) if kept else "its rule"
        return f"On free hardware the sleep time stays {hours}: upgrade the hardware to choose another"
    return f"Sleep time saved: {human_duration(asked)}"


@action("pause")
def pause(ctx: Any, who: Caller, repo_id: str, form: Any) -> str:
    space_changes.pause(ctx, who, repo_id)
    return "Paused"


@action("restart")
def restart(ctx: Any, who: Caller, repo_id: str, form: Any) -> str:
    space_changes.restart(ctx, who, repo_id, factory=form.get("factory") == "1")
    return "Restarting"


@action("visibility")
def visibility(ctx: Any, who: Caller, repo_id: str, form: Any) -> str:
    private = _field(form, "private", 8)
    if private not in ("0", "1"):
        raise BadRequest("'private' is 0 or 1")
    # the use case `HfApi.update_repo_settings` calls
    _as_caller(ctx, who, lambda s, p: repos.update_settings(s, p, "space", repo_id, {"private": private == "1"}, ctx))
    return "Now private" if private == "1" else "Now public"


@action("storage")
def storage(ctx: Any, who: Caller, repo_id: str, form: Any) -> str:
    tier = _field(form, "tier", 16)
    if tier == "none":
        space_changes.delete_storage(ctx, who, repo_id)
        return "Storage deleted"
    space_changes.request_storage(ctx, who, repo_id, tier)
    return f"Storage {tier} requested"


def _move(ctx: Any, who: Caller, repo_id: str, form: Any) -> str:
    """`HfApi.move_repo`'s use case (rename, or transfer to another namespace the user writes): the new id."""
    to_id = _field(form, "to", 200).strip()
    return _as_caller(ctx, who, lambda s, p: repos.move_repo(ctx, s, p, "space", repo_id, to_id).full_name)


@router.post(PREFIX + "/move")
async def move_space(request: Request, owner: str, name: str) -> Response:
    repo_id = f"{owner}/{name}"
    form = await request.form()
    try:
        new_id = await run_in_threadpool(_move, ctx_of(request), caller(request), repo_id, form)
    except HubError as err:
        return await run_in_threadpool(_refused, request, repo_id, err)
    return RedirectResponse(f"/spaces/{new_id}/settings?{urlencode({'done': f'Moved to {new_id}'})}", status_code=303)


def _delete(ctx: Any, who: Caller, repo_id: str, form: Any) -> None:
    if _field(form, "confirm", 256) != repo_id:
        raise BadRequest(f"Type {repo_id} to confirm")
    _as_caller(ctx, who, lambda s, p: repos.delete_repo(ctx, s, p, "space", repo_id))  # `HfApi.delete_repo`


@router.post(PREFIX + "/delete")
async def delete_space(request: Request, owner: str, name: str) -> Response:
    repo_id = f"{owner}/{name}"
    form = await request.form()
    try:
        await run_in_threadpool(_delete, ctx_of(request), caller(request), repo_id, form)
    except HubError as err:
        return await run_in_threadpool(_refused, request, repo_id, err)
    return RedirectResponse(f"/{owner}", status_code=303)


@router.post(PREFIX + "/{what:path}")
async def change(request: Request, owner: str, name: str, what: str) -> Response:
    """One settings form: the action named by the path, then back to the tab (303) or the tab with the refusal."""
    repo_id = f"{owner}/{name}"
    fn = ACTIONS.get(what)
    if fn is None:
        return error_page(request, BadRequest("No such setting"))
    form = await request.form()
    try:
        done = await run_in_threadpool(fn, ctx_of(request), caller(request), repo_id, form)
    except HubError as err:
        return await run_in_threadpool(_refused, request, repo_id, err)
    return RedirectResponse(f"/spaces/{repo_id}/settings?{urlencode({'done': done})}", status_code=303)


def _refused(request: Request, repo_id: str, err: HubError) -> Response:
    """The tab with the reason, when the caller may see it; otherwise the error page (404 for strangers)."""
    try:
        return _settings(request, repo_id, err.status_code, err.message)
    except HubError:
        return error_page(request, err)
