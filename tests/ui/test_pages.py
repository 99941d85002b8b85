"""Explore, profiles, the Space page and its event streams, and who may see what, against a live server."""

from __future__ import annotations

import json

import httpx
from huggingface_hub import HfApi

from tests.conftest import Server
from tests.ui.conftest import Web

README = """---
title: {title}
emoji: 🦄
colorFrom: pink
colorTo: blue
sdk: static
short_description: {desc}
---
# hello
"""


def make_space(
    server: Server, owner: str, name: str, private: bool = False, title: str = "", desc: str = "", sdk: str = "static"
) -> str:
    api = HfApi(endpoint=server.url, token=server.tokens[owner])
    repo_id = f"{owner}/{name}"
    api.create_repo(repo_id, repo_type="space", space_sdk=sdk, private=private)
    readme = README.format(title=title or name, desc=desc or f"about {name}").replace("sdk: static", f"sdk: {sdk}")
    readme = readme.encode()
    api.upload_file(path_or_fileobj=readme, path_in_repo="README.md", repo_id=repo_id, repo_type="space")
    return repo_id


def test_explore_shows_cards_from_front_matter_and_searches(server: Server, web: Web, carol: str, unique: str) -> None:
    make_space(server, carol, f"{unique}-uni", title="Unicorn Demo", desc="Makes <b>unicorns</b>")
    page = web.get("/spaces").text
    card = page.split(f'data-space="{carol}/{unique}-uni"', 1)[1].split("</a>", 1)[0]
    assert "Unicorn Demo" in card and "🦄" in card and "cpu-basic" in card and "♥ 0" in card
    assert "Makes &lt;b&gt;unicorns&lt;/b&gt;" in card  # escaped, never markup
    assert "var(--c-pink)" in page and "var(--c-blue)" in page
    assert f"{unique}-uni" in web.get("/spaces", params={"q": unique}).text
    assert f"{unique}-uni" not in web.get("/spaces", params={"q": "no-such-space-anywhere"}).text
    for sort in ("likes", "created", "updated", "bogus"):
        assert web.get("/spaces", params={"sort": sort}).status_code == 200
    assert web.get("/").status_code == 200


def test_a_private_space_is_listed_and_shown_to_its_readers_only(
    server: Server, carol: str, dave: str, unique: str
) -> None:
    repo_id = make_space(server, carol, f"{unique}-priv", private=True, title="Hidden Thing")
    owner, other, anonymous = Web(server), Web(server), Web(server)
    owner.login(carol)
    other.login(dave)
    assert "Hidden Thing" in owner.get("/spaces").text and "Hidden Thing" in owner.get(f"/{carol}").text
    page = owner.get(f"/spaces/{repo_id}")
    assert page.status_code == 200 and "🔒 private" in page.text
    iframe = page.text.split('id="app-frame"', 1)[1].split("src=", 1)[1].split('"', 2)[1]
    assert "?__sign=" in iframe and f"{carol}-{unique}-priv.localhost" in iframe
    for web in (other, anonymous):
        assert "Hidden Thing" not in web.get("/spaces").text and "Hidden Thing" not in web.get(f"/{carol}").text
        r = web.get(f"/spaces/{repo_id}")
        assert r.status_code == 404 and "Page not found" in r.text and "__sign" not in r.text
        assert web.get(f"/spaces/{repo_id}/events").status_code == 404


def test_public_space_page_has_the_app_frame_stage_and_embed_snippet(
    server: Server, web: Web, carol: str, unique: str
) -> None:
    repo_id = make_space(server, carol, f"{unique}-pub", title="Public Thing")
    page = web.get(f"/spaces/{repo_id}").text
    host = f"http://{carol}-{unique}-pub.localhost:{server.url.rsplit(':', 1)[1]}/"
    assert f'src="{host}"' in page  # a public Space is framed at its own URL, no grant
    assert 'id="stage"' in page and '&lt;iframe src="' + host in page
    assert 'id="logs"' not in page  # logs are for writers
    with httpx.stream("GET", f"{server.url}/spaces/{repo_id}/events", timeout=10) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        assert next(lines) == "event: stage"
        data = json.loads(next(lines).removeprefix("data: "))
    assert data["stage"] and data["hardware"]["requested"] == "cpu-basic"


def test_logs_stream_for_writers_only(server: Server, carol: str, dave: str, unique: str) -> None:
    repo_id = make_space(server, carol, f"{unique}-logs")
    owner, other = Web(server), Web(server)
    owner.login(carol)
    other.login(dave)
    assert 'id="logs"' in owner.get(f"/spaces/{repo_id}").text
    r = owner.get(f"/spaces/{repo_id}/logs/build")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert "event: end" in r.text  # no runtime here: nothing more will be written
    assert other.get(f"/spaces/{repo_id}/logs/build").status_code == 403
    assert Web(server).get(f"/spaces/{repo_id}/logs/run").status_code == 401
    assert owner.get(f"/spaces/{repo_id}/logs/other").status_code == 400


def test_profiles_list_an_accounts_spaces_and_unknown_pages_are_html_404s(server: Server, web: Web, carol: str) -> None:
    r = web.get(f"/{carol}")
    assert r.status_code == 200 and "<h2>Spaces</h2>" in r.text
    assert f'<h1>{carol} <span class="muted">user</span></h1>' in r.text  # the name once when it is the full name
    for path in ("/no-such-user-here", "/a/b/c/d", "/spaces/nobody/nothing"):
        r = web.get(path)
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html") and "Page not found" in r.text
    api = httpx.get(f"{server.url}/a/b/c/d")  # an API client keeps the JSON it always got
    assert api.status_code == 404 and api.headers["content-type"] == "application/json"


def test_files_tab_lists_folders_shows_files_and_history(server: Server, web: Web, carol: str, unique: str) -> None:
    repo_id = make_space(server, carol, f"{unique}-files", title="Files")
    api = HfApi(endpoint=server.url, token=server.tokens[carol])
    api.upload_file(path_or_fileobj=b"print('<hi>')\n", path_in_repo="src/app.py", repo_id=repo_id, repo_type="space",
                    commit_message="Add the app")  # fmt: skip
    api.upload_file(path_or_fileobj=b"\x00\xff" * 10, path_in_repo="data.bin", repo_id=repo_id, repo_type="space")
    root = web.get(f"/spaces/{repo_id}/tree/main").text
    assert f'href="/spaces/{repo_id}/tree/main/src"' in root and f'href="/spaces/{repo_id}/blob/main/README.md"' in root
    assert f'href="/spaces/{repo_id}/blob/main/src/app.py"' in web.get(f"/spaces/{repo_id}/tree/main/src").text
    blob = web.get(f"/spaces/{repo_id}/blob/main/src/app.py").text
    shown = blob.split('id="blob"', 1)[1].split("</pre>", 1)[0]  # highlighted (ui/markup.py), and escaped
    assert '<span class="nb">print</span>' in shown and "&lt;hi&gt;" in shown and "<hi>" not in shown
    assert f'href="/spaces/{repo_id}/resolve/main/src/app.py"' in blob
    assert "binary or too large" in web.get(f"/spaces/{repo_id}/blob/main/data.bin").text
    history = web.get(f"/spaces/{repo_id}/commits/main").text
    assert "Add the app" in history
    for path in ("tree/main/nope", "blob/main/nope.py", "tree/no-such-branch", "commits/no-such-branch"):
        assert web.get(f"/spaces/{repo_id}/{path}").status_code == 404


def first_event(web: Web, path: str) -> tuple[str, dict[str, object]]:
    """The first event of the page's SSE stream at ``path`` (the stream is closed after it)."""
    with web.stream("GET", path) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream"), r.status_code
        lines = r.iter_lines()
        event = next(lines).removeprefix("event: ")
        return event, json.loads(next(lines).removeprefix("data: "))


def test_the_usage_chart_says_a_space_that_runs_nowhere_uses_nothing(
    server: Server, carol: str, dave: str, unique: str
) -> None:
    """No runtime on this server: the chart's panel says the app is not running, and its stream (the API's metrics
    use case) samples 0 of the flavor's capacity; a private Space's stream is its readers' alone."""
    public = make_space(server, carol, f"{unique}-idle", sdk="gradio")
    private = make_space(server, carol, f"{unique}-idle-priv", private=True, sdk="gradio")
    owner, other, anonymous = Web(server), Web(server), Web(server)
    owner.login(carol)
    other.login(dave)
    page = anonymous.get(f"/spaces/{public}").text
    panel = page.split('id="usage"', 1)[1].split("</section>", 1)[0]
    assert 'data-running="false"' in panel and "The app is not running" in panel
    assert f'data-metrics="/spaces/{public}/metrics"' in panel and 'role="img"' in panel
    static = make_space(server, carol, f"{unique}-idle-static")
    assert 'id="usage"' not in anonymous.get(f"/spaces/{static}").text  # served by SpaceHub: no process to chart
    event, sample = first_event(anonymous, f"/spaces/{public}/metrics")
    assert event == "metric"
    assert sample["memory_used_bytes"] == 0 and sample["cpu_usage_pct"] == 0
    assert sample["cpu_millicores"] == 2000 and sample["memory_total_bytes"] == 16 * 1024**3  # cpu-basic
    assert first_event(owner, f"/spaces/{private}/metrics")[0] == "metric"
    for web in (other, anonymous):
        r = web.get(f"/spaces/{private}/metrics")
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert anonymous.get(f"/spaces/{carol}/no-such-space-{unique}/metrics").status_code == 404
