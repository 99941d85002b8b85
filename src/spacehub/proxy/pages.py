"""The proxy's own answers: "not found", "bad gateway", "timed out", the paused and error pages of a Space that is not
running, and the self-reloading "waking up" page (also shown while a Space builds or starts). HTML for browsers,
JSON (``{"error": …}``, as the Hub API answers) for everything else. The "waking up" page says "Building…" or
"Starting…" when the proxy knows the Space's stage, and then links the build log on the Space's page.

They are written straight to the ASGI ``send``: these pages are on the proxy's hot error paths (a Space restarting
can turn every request into a 502) and need nothing from a framework.

The HTML pages wear the site's look and say what happens next (the page reloads by itself, the owner must restart
the Space, the logs say what went wrong). They are served at the Space's own host, so they are **self-contained**:
the site's style sheet (``spacehub.web.look``, the file the Hub's pages link at ``/static/site.css``) is inlined, not
linked by absolute URL. A link would need the Hub's public address, which the proxy only guesses when
``server.public_url`` is unset (a wrong guess is an unstyled page); it would cost the browser a second, cross-site
request on every answer (the waking page reloads every two seconds), and an https Space host could not load it from
an http Hub. Inlined, it is ~2.5 KB on an answer that has nothing else to load.
"""

from __future__ import annotations

import html
import json
import re

from starlette.types import Scope, Send

from spacehub.web.look import SITE_CSS

WAKE_RELOAD_SECONDS = 2
ERROR_STAGES = ("BUILD_ERROR", "RUNTIME_ERROR", "CONFIG_ERROR", "NO_APP_FILE")
_STAGE = re.compile(r"\(([A-Z][A-Z_]+)\)")  # the runtime names the stage in its reason: "… has an error (BUILD_ERROR)."

_PAGE_CSS = """
.status-page { margin-top: 8vh; }
.status-page .space { display: flex; gap: 10px; align-items: center; margin: 0 0 6px; }
.status-page .next { background: var(--bg); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.status-page .next h2 { font-size: 15px; margin: 0 0 4px; } .status-page .next p { margin: 0; }
.spinner { display: inline-block; width: 18px; height: 18px; border: 3px solid var(--line);
           border-top-color: var(--accent); border-radius: 50%; vertical-align: -3px; margin-right: 10px;
           animation: spin 0.9s linear infinite; }
@keyframes spin { to { transform: rotate(360deg); } }
@media (prefers-reduced-motion: reduce) { .spinner { animation: none; } }
"""
_STYLE = "<style>" + SITE_CSS + _PAGE_CSS + "</style>"
# Links to the Hub open a tab of their own: in the Space page's frame (sandboxed, no top navigation) the Hub's page
# would load inside the frame, which it refuses (a broken frame, found in the browser).
_NEW_TAB = ' target="_blank" rel="noopener"'
_HUB_LINK = "See this Space on SpaceHub: its status and logs"


def wants_html(scope: Scope) -> bool:
    """True for a browser navigation: ``Accept`` lists ``text/html``."""
    for name, value in scope["headers"]:
        if name == b"accept":
            return b"text/html" in value
    return False


def _document(
    title: str,
    message: str,
    next_step: str | None,
    *,
    reload_after: int | None,
    space_page: str | None,
    stage: str | None,
    link_text: str | None = None,
) -> bytes:
    """The page: the site's header bar, the Space's name and stage (when known), what happened, what happens next,
    and the way to the Space's page on the Hub."""
    e = html.escape
    head = f'<meta http-equiv="refresh" content="{reload_after}">\n' if reload_after else ""
    brand = '<span class="brand">🚀 SpaceHub</span>'
    space = ""
    if space_page:  # hub_page's URL: {hub}/spaces/{owner}/{name}
        hub, name = space_page.partition("#")[0].rsplit("/spaces/", 1)
        brand = f'<a class="brand" href="{e(hub)}/spaces"{_NEW_TAB}>🚀 SpaceHub</a>'
        space = f'<span class="mono">{e(name)}</span>'
    if stage:
        space += f' <span class="badge {e(stage)}">{e(stage.replace("_", " ").lower())}</span>'
    spinner = '<span class="spinner" aria-hidden="true"></span>' if reload_after else ""
    parts = [
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n{head}'
        f"<title>{e(title)} · SpaceHub</title>\n{_STYLE}</head>\n<body>\n"
        f'<header class="top"><nav aria-label="Site">{brand}</nav></header>\n'
        f'<main id="main"><section class="narrow wide status-page">\n',
        f'<p class="space">{space}</p>\n' if space else "",
        f"<h1>{spinner}{e(title)}</h1>\n<p>{e(message)}</p>\n",
        f'<div class="next"><h2>What happens next</h2><p>{e(next_step)}</p></div>\n' if next_step else "",
        f'<p><a href="{e(space_page)}"{_NEW_TAB}>{e(link_text or _HUB_LINK)}</a></p>\n' if space_page else "",
        "</section></main>\n</body></html>\n",
    ]
    return "".join(parts).encode()


async def send_page(
    scope: Scope,
    send: Send,
    status: int,
    title: str,
    message: str,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    reload_after: int | None = None,
    space_page: str | None = None,
    next_step: str | None = None,
    stage: str | None = None,
    link_text: str | None = None,
) -> None:
    """Answer ``status`` with a small page; a WebSocket handshake gets the same status as an HTTP denial.
    ``space_page``: the Space's page on the Hub (its status, logs and settings), linked from the HTML; ``next_step``:
    what happens next, said to a browser; ``stage``: the Space's stage, shown as the site's badge. An API client gets
    ``{"error": message}`` and nothing else."""
    extra = list(headers or [])
    if wants_html(scope):
        page = {"space_page": space_page, "stage": stage, "link_text": link_text}
        body = _document(title, message, next_step, reload_after=reload_after, **page)
        content_type = b"text/html; charset=utf-8"
    else:
        body = json.dumps({"error": message}).encode()
        content_type = b"application/json"
    all_headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *extra,
    ]
    if scope["type"] == "websocket":
        if "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": status, "headers": all_headers})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008 if status == 404 else 1011})
        return
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


async def not_found(scope: Scope, send: Send) -> None:
    """No Space at this address, or a private one the request may not read: the same answer for both."""
    await send_page(scope, send, 404, "Space not found", "There is no Space at this address.",
                    next_step="Check the address. A private Space opens only for the people who may read it: open it "
                              "from its page on SpaceHub while signed in.")  # fmt: skip


_RETRY = ("The app may be restarting or busy: reload this page in a moment. If it keeps failing, the Space's owner "
          "can read its container log on SpaceHub.")  # fmt: skip


async def bad_gateway(scope: Scope, send: Send, reason: str) -> None:
    await send_page(scope, send, 502, "The Space's app is not answering", f"{reason}. Try again in a moment.",
                    next_step=_RETRY)  # fmt: skip


async def gateway_timeout(scope: Scope, send: Send, reason: str) -> None:
    await send_page(scope, send, 504, "The Space's app did not answer in time", reason, next_step=_RETRY)


def stage_of(reason: str) -> str | None:
    """The stage a Space's status page is about, read from the runtime's reason (which JSON clients get as it is):
    ``PAUSED`` for "… paused by its owner.", else the stage it names in parentheses ("… has an error (BUILD_ERROR).",
    "… could not start (STOPPED)."), else None."""
    if "paused" in reason.lower():
        return "PAUSED"
    m = _STAGE.search(reason)
    return m.group(1) if m else None


async def unavailable(scope: Scope, send: Send, reason: str, space_page: str | None = None) -> None:
    """503: a Space that is not running (paused, an error: the page says which and what happens next) or that could
    not be woken up."""
    stage = stage_of(reason)
    if stage == "PAUSED":
        title = "This Space is paused"
        next_step = ("It stays off until its owner restarts it (Restart, on the Space's settings tab on SpaceHub). "
                     "This page does not reload by itself: come back later.")  # fmt: skip
    elif stage is not None:
        title = "This Space has an error" if stage in ERROR_STAGES else "This Space could not start"
        next_step = ("It stays stopped until its owner fixes it: the Space's build and container logs on SpaceHub "
                     "say what went wrong, and a new commit or a restart from its settings tab tries again. This page "
                     "does not reload by itself.")  # fmt: skip
    else:
        title, next_step = "The Space is not available", "Try again in a moment: reload this page."
    await send_page(scope, send, 503, title, reason, headers=[(b"retry-after", b"5")], space_page=space_page,
                    next_step=next_step, stage=stage)  # fmt: skip


def hub_page(scope: Scope, public_url: str | None, full_name: str) -> str:
    """The URL of a Space's page on the Hub, for a link from a page served at the Space's own host: under
    ``server.public_url`` when set, else at the Space host's parent domain (``alice-demo.localhost:8000`` →
    ``http://localhost:8000``), where the Hub answers with the default settings."""
    if public_url:
        return f"{public_url.rstrip('/')}/spaces/{full_name}"
    host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
    parent = host.split(".", 1)[1] if "." in host else host
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    return f"{scheme}://{parent}/spaces/{full_name}"


_WAITING = ("This page reloads by itself every {n} seconds and shows the app as soon as it answers: there is nothing "
            "to do but wait.")  # fmt: skip
_BUILDING = (
    "Building this Space…",
    "SpaceHub is building the Space's app (its image and requirements) after a change "
    "to its files or settings. A build can take a few minutes.",
    "This page reloads by itself every {n} seconds: once the build is done the app starts, and this page "
    "shows it as soon as it answers. If the build fails, this page says so and the build log says why.",
)
_STARTING = ("Starting this Space…", "The Space is built and its app is starting.", _WAITING)
_WAKING = {  # stage → (title, what is going on, what happens next); None: the proxy does not know which
    None: ("Waking up this Space…", "The Space is starting: after a sleep it is back in a few seconds; after a change "
           "to its files or settings it is built first, which can take a few minutes.", _WAITING),
    "SLEEPING": ("Waking up this Space…", "The Space was asleep and is starting. It is back in a few seconds.",
                 _WAITING),
    "BUILDING": _BUILDING,
    "RUNNING_BUILDING": _BUILDING,  # (routed here only while no release answers)
    "APP_STARTING": _STARTING,
    "RUNNING_APP_STARTING": _STARTING,
}  # fmt: skip
BUILD_STAGES = ("BUILDING", "RUNNING_BUILDING")
LOGS_ANCHOR = "#logs-title"  # the logs panel of the Space page (ui/templates/space.html), the build log first


async def waking(scope: Scope, send: Send, *, stage: str | None = None, space_page: str | None = None) -> None:
    """A browser asked for a Space that is asleep, building or starting: say which and reload until the app answers
    (the wake runs meanwhile; a meta refresh, so no JavaScript is needed). ``stage`` and ``space_page``, when the
    caller knows them, make the page say "Building…" or "Starting…" and link the Space's page on the Hub (for a
    build, at its logs). Only ever called for a request that may read the Space."""
    known = stage in _WAKING
    title, message, next_step = _WAKING[stage if known else None]
    link_text = None
    if space_page and stage in BUILD_STAGES:
        space_page += LOGS_ANCHOR
        link_text = "Follow the build in its logs on SpaceHub"
    await send_page(
        scope,
        send,
        503,
        title,
        message,
        headers=[(b"retry-after", str(WAKE_RELOAD_SECONDS).encode())],
        reload_after=WAKE_RELOAD_SECONDS,
        space_page=space_page,
        link_text=link_text,
        next_step=next_step.format(n=WAKE_RELOAD_SECONDS),
        stage=stage if known else None,
    )
