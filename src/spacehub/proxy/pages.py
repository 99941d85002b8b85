"""The proxy's own answers: "not found", "bad gateway", "timed out", "unavailable" and the self-reloading
"waking up" page. HTML for browsers, JSON (``{"error": …}``, as the Hub API answers) for everything else.

They are written straight to the ASGI ``send``: these pages are on the proxy's hot error paths (a Space restarting
can turn every request into a 502) and need nothing from a framework.
"""

from __future__ import annotations

import html
import json

from starlette.types import Scope, Send

WAKE_RELOAD_SECONDS = 2

_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
{head}<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:15vh auto;padding:0 1rem;color:#222}}
h1{{font-size:1.4rem}}p{{color:#555}}</style></head>
<body><h1>{title}</h1><p>{message}</p>{link}</body></html>
"""


def wants_html(scope: Scope) -> bool:
    """True for a browser navigation: ``Accept`` lists ``text/html``."""
    for name, value in scope["headers"]:
        if name == b"accept":
            return b"text/html" in value
    return False


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
) -> None:
    """Answer ``status`` with a small page; a WebSocket handshake gets the same status as an HTTP denial.
    ``space_page``: the Space's page on the Hub (its status, logs and settings), linked from the HTML."""
    extra = list(headers or [])
    if wants_html(scope):
        head = f'<meta http-equiv="refresh" content="{reload_after}">\n' if reload_after else ""
        link = (f'<p><a href="{html.escape(space_page)}">See this Space on SpaceHub: its status and logs</a></p>'
                if space_page else "")  # fmt: skip
        body = _HTML.format(head=head, title=html.escape(title), message=html.escape(message), link=link).encode()
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
    await send_page(scope, send, 404, "Space not found", "There is no Space at this address.")


async def bad_gateway(scope: Scope, send: Send, reason: str) -> None:
    await send_page(scope, send, 502, "The Space's app is not answering", f"{reason}. Try again in a moment.")


async def gateway_timeout(scope: Scope, send: Send, reason: str) -> None:
    await send_page(scope, send, 504, "The Space's app did not answer in time", reason)


async def unavailable(scope: Scope, send: Send, reason: str, space_page: str | None = None) -> None:
    await send_page(scope, send, 503, "The Space is not available", reason, headers=[(b"retry-after", b"5")],
                    space_page=space_page)  # fmt: skip


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


async def waking(scope: Scope, send: Send) -> None:
    """A browser asked for a sleeping Space: say so and reload until the app answers (the wake runs meanwhile)."""
    await send_page(
        scope,
        send,
        503,
        "Waking up this Space…",
        "The Space was asleep and is starting. This page reloads by itself when it is ready.",
        headers=[(b"retry-after", str(WAKE_RELOAD_SECONDS).encode())],
        reload_after=WAKE_RELOAD_SECONDS,
    )
