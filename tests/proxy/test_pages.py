"""The proxy's own pages (proxy/pages.py): each wears the site's look (the Hub's own style sheet, inlined: the page is
served at the Space's host and loads nothing else), names the Space and its stage when known, and says what happens
next; API clients get the same JSON as before, with nothing of the page."""

from __future__ import annotations

import asyncio
import html
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from spacehub.proxy import pages
from spacehub.proxy.space_routes import _Page
from spacehub.web.look import SITE_CSS

HOST = "alice-demo.localhost:8000"
HUB = "http://localhost:8000/spaces/alice/demo"


def answer(call: Callable[[dict[str, Any], Any], Awaitable[None]], accept: str = "text/html") -> tuple[int, dict, str]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "scheme": "http", "headers": [(b"host", HOST.encode()), (b"accept", accept.encode())]}
    asyncio.run(call(scope, send))
    headers = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    return sent[0]["status"], headers, b"".join(m.get("body", b"") for m in sent[1:]).decode()


def page(*args: Any, **kwargs: Any) -> Callable[[dict[str, Any], Any], Awaitable[None]]:
    """A ``_Page`` (the paused and error pages the runtime's route table serves) as a call of ``answer``."""
    app = _Page(*args, **kwargs)
    return lambda scope, send: app(scope, None, send)


PAUSED = "This Space is paused by its owner."
ERROR = "This Space has an error (BUILD_ERROR). Its owner can read the logs."
NOT_STARTED = "This Space could not start (STOPPED)."

CASES = [  # (name, call, status, title, stage badge, words of "what happens next", reloads)
    ("waking", lambda sc, se: pages.waking(sc, se), 503, "Waking up this Space…", None, "reloads by itself", True),
    ("building", lambda sc, se: pages.waking(sc, se, stage="BUILDING", space_page=HUB), 503, "Building this Space…",
     "BUILDING", "reloads by itself", True),
    ("starting", lambda sc, se: pages.waking(sc, se, stage="APP_STARTING", space_page=HUB), 503,
     "Starting this Space…", "APP_STARTING", "shows the app as soon as it answers", True),
    ("rebuilding", lambda sc, se: pages.waking(sc, se, stage="RUNNING_BUILDING", space_page=HUB), 503,
     "Building this Space…", "RUNNING_BUILDING", "once the build is done the app starts", True),
    ("paused", page(503, PAUSED, "alice/demo"), 503, "This Space is paused", "PAUSED", "until its owner restarts it",
     False),
    ("error", page(503, ERROR, "alice/demo"), 503, "This Space has an error", "BUILD_ERROR",
     "logs on SpaceHub say what went wrong", False),
    ("not started", page(503, NOT_STARTED, "alice/demo"), 503, "This Space could not start", "STOPPED",
     "logs on SpaceHub say what went wrong", False),
    ("not found", lambda sc, se: pages.not_found(sc, se), 404, "Space not found", None, "Check the address", False),
    ("bad gateway", lambda sc, se: pages.bad_gateway(sc, se, "connection refused"), 502,
     "The Space's app is not answering", None, "reload this page in a moment", False),
    ("timeout", lambda sc, se: pages.gateway_timeout(sc, se, "no answer in 300s"), 504,
     "The Space's app did not answer in time", None, "reload this page in a moment", False),
]  # fmt: skip


@pytest.mark.parametrize(("name", "call", "status", "title", "stage", "next_words", "reloads"), CASES,
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_each_page_wears_the_sites_look_and_says_what_happens_next(
    name: str, call: Any, status: int, title: str, stage: str | None, next_words: str, reloads: bool
) -> None:
    code, headers, body = answer(call)
    assert code == status and headers["content-type"] == "text/html; charset=utf-8"
    assert headers["cache-control"] == "no-store" and int(headers["content-length"]) == len(body.encode())
    assert f"<style>{SITE_CSS}" in body  # the Hub's own style sheet, whole
    assert not re.search(r"<link|<script|\bsrc=|@import|url\(", body)  # self-contained: nothing else to load
    assert '<header class="top"><nav aria-label="Site">' in body and "🚀 SpaceHub" in body  # the site's header bar
    spinner = '<span class="spinner" aria-hidden="true"></span>' if reloads else ""
    assert f"<h1>{spinner}{html.escape(title)}</h1>" in body
    nxt = re.search(r'<div class="next"><h2>What happens next</h2><p>(.*?)</p></div>', body)
    assert nxt and next_words in nxt.group(1)
    assert ('<meta http-equiv="refresh" content="2">' in body) is reloads
    if stage:
        assert f'<span class="badge {stage}">{stage.replace("_", " ").lower()}</span>' in body
    else:
        assert 'class="badge' not in body


def test_a_space_status_page_names_the_space_and_links_the_hub() -> None:
    _, _, body = answer(page(503, PAUSED, "alice/demo"))
    assert '<span class="mono">alice/demo</span>' in body
    new_tab = 'target="_blank" rel="noopener"'  # out of the Space page's sandboxed frame, which the Hub refuses
    assert f'<a href="{HUB}" {new_tab}>See this Space on SpaceHub: its status and logs</a>' in body
    assert f'<a class="brand" href="http://localhost:8000/spaces" {new_tab}>' in body  # the brand leads to the Hub
    _, _, body = answer(lambda sc, se: pages.waking(sc, se))
    assert "href" not in body  # the waking page knows no name: no link, no guessed address


def test_the_building_page_says_what_happens_next_and_links_the_build_log() -> None:
    _, headers, body = answer(lambda sc, se: pages.waking(sc, se, stage="BUILDING", space_page=HUB))
    assert headers["retry-after"] == "2" and '<meta http-equiv="refresh" content="2">' in body  # no JavaScript needed
    assert '<span class="mono">alice/demo</span> <span class="badge BUILDING">building</span>' in body
    nxt = re.search(r'<div class="next"><h2>What happens next</h2><p>(.*?)</p></div>', body)
    assert nxt and "once the build is done the app starts, and this page shows it" in nxt.group(1)
    assert "If the build fails, this page says so" in nxt.group(1)
    new_tab = 'target="_blank" rel="noopener"'
    assert f'<a href="{HUB}#logs-title" {new_tab}>Follow the build in its logs on SpaceHub</a>' in body
    assert f'<a class="brand" href="http://localhost:8000/spaces" {new_tab}>' in body
    # starting: the Space's page, no build log to point at; an unknown stage: the plain waking page, no badge
    _, _, body = answer(lambda sc, se: pages.waking(sc, se, stage="APP_STARTING", space_page=HUB))
    assert f'<a href="{HUB}" {new_tab}>See this Space on SpaceHub: its status and logs</a>' in body
    _, _, body = answer(lambda sc, se: pages.waking(sc, se, stage="DELETING", space_page=HUB))
    assert "<h1>" in body and "Waking up this Space…" in body and 'class="badge' not in body
    for accept in ("*/*", "application/json"):  # API clients: the error alone, no stage, no link
        _, headers, body = answer(lambda sc, se: pages.waking(sc, se, stage="BUILDING", space_page=HUB), accept)
        assert json.loads(body) == {"error": pages._WAKING["BUILDING"][1]}


@pytest.mark.parametrize(
    ("call", "message"),
    [(page(503, PAUSED, "alice/demo"), PAUSED), (page(503, ERROR, "alice/demo"), ERROR),
     (lambda sc, se: pages.waking(sc, se), "The Space is starting: after a sleep it is back in a few seconds; after a "
      "change to its files or settings it is built first, which can take a few minutes."),
     (lambda sc, se: pages.not_found(sc, se), "There is no Space at this address.")],
)  # fmt: skip
def test_api_clients_get_the_error_alone(call: Any, message: str) -> None:
    for accept in ("*/*", "application/json"):
        _, headers, body = answer(call, accept)
        assert headers["content-type"] == "application/json" and json.loads(body) == {"error": message}


def test_the_stage_is_read_from_the_runtimes_reason() -> None:
    assert pages.stage_of(PAUSED) == "PAUSED"
    assert pages.stage_of(ERROR) == "BUILD_ERROR"
    assert pages.stage_of(NOT_STARTED) == "STOPPED"
    assert pages.stage_of("The Space could not be woken up.") is None
    _, _, body = answer(lambda sc, se: pages.unavailable(sc, se, "The Space could not be woken up."))
    assert "<h1>The Space is not available</h1>" in body and "Try again in a moment" in body


def test_user_text_is_escaped() -> None:
    _, _, body = answer(page(503, "This Space has an error (RUNTIME_ERROR). <b>x</b>", "alice/<x>"))
    assert "<b>x</b>" not in body and "&lt;b&gt;x&lt;/b&gt;" in body and "alice/&lt;x&gt;" in body
