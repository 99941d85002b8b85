"""Private Spaces in the browser: the Space page's signed URL grant, exchanged on the Space's own host for a
host-only cookie that opens that Space only (live server with the runtime; static Spaces need no build)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from huggingface_hub import HfApi

from tests.conftest import Server, start_server, stop_server
from tests.ui.conftest import Web, create_web_user

INDEX = "<!doctype html><title>t</title><p>private marker {n}</p>"


pytestmark = pytest.mark.slow  # a server of its own with the runtime


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("grants")
    env = {"SPACEHUB_RUNTIME__BACKEND": "local", "SPACEHUB_RUNTIME__UV_CACHE_DIR": str(base / "uv")}
    server = start_server(base / "data", {**env, "SPACEHUB_RUNTIME__RECONCILE_INTERVAL": "1"})
    for name in ("carol", "dave"):
        create_web_user(server, name)
        server.tokens[name] = server.cli("tokens", "create", name).strip().splitlines()[-1]
    yield server
    stop_server(server)


def private_static(server: Server, owner: str, name: str) -> str:
    api = HfApi(endpoint=server.url, token=server.tokens[owner])
    repo_id = f"{owner}/{name}"
    api.create_repo(repo_id, repo_type="space", space_sdk="static", private=True)
    api.upload_file(path_or_fileobj=INDEX.format(n=name).encode(), path_in_repo="index.html", repo_id=repo_id,
                    repo_type="space")  # fmt: skip
    return repo_id


def iframe_src(web: Web, repo_id: str) -> str:
    page = web.get(f"/spaces/{repo_id}")
    assert page.status_code == 200, page.text[:300]
    return page.text.split('id="app-frame"', 1)[1].split('src="', 1)[1].split('"', 1)[0].replace("&amp;", "&")


def on_host(server: Server, url: str, cookie: str | None = None) -> httpx.Response:
    """GET ``url`` (a Space URL) through the server, with the Space's Host header, as the browser would."""
    u = urlsplit(url)
    headers = {"host": u.netloc, "accept": "text/html"}
    if cookie:
        headers["cookie"] = f"spacehub_token={cookie}"
    return httpx.get(f"{server.url}{u.path}" + (f"?{u.query}" if u.query else ""), headers=headers, timeout=10)


def grant_cookie(r: httpx.Response) -> str | None:
    for value in r.headers.get_list("set-cookie"):
        if value.startswith("spacehub_token="):
            return value.split(";", 1)[0].split("=", 1)[1]
    return None


def serves(server: Server, url: str, cookie: str, text: str) -> httpx.Response:
    deadline = time.monotonic() + 30
    while True:
        r = on_host(server, url, cookie)
        if (r.status_code == 200 and text in r.text) or time.monotonic() > deadline:
            return r
        time.sleep(0.3)


def test_a_reader_gets_a_cookie_for_that_space_only_and_no_hub_token_reaches_its_host(hub: Server) -> None:
    a, b = private_static(hub, "carol", "grant-a"), private_static(hub, "carol", "grant-b")
    owner = Web(hub)
    owner.login("carol")
    src_a, src_b = iframe_src(owner, a), iframe_src(owner, b)
    assert "__sign=" in src_a and urlsplit(src_a).netloc.startswith("carol-grant-a.localhost")
    assert on_host(hub, src_a.split("?")[0]).status_code == 404  # without the grant: as if it did not exist

    r = on_host(hub, src_a)
    assert r.status_code == 303 and r.headers["location"] == "/"  # the grant leaves the URL at once
    raw = next(v for v in r.headers.get_list("set-cookie") if v.startswith("spacehub_token="))
    flags = {f.strip().lower() for f in raw.split(";")[1:]}
    assert {"httponly", "secure", "samesite=none", "partitioned", "path=/"} <= flags
    assert not any(f.startswith("domain") for f in flags)  # host-only: that Space's host, no other
    cookie = grant_cookie(r)
    assert cookie and not cookie.startswith("hf_") and owner.cookies["spacehub_session"] not in raw
    assert "private marker grant-a" in serves(hub, src_a.split("?")[0], cookie, "private marker grant-a").text

    # the cookie is not a hub token: the API refuses it, and it does not open the other Space
    assert httpx.get(f"{hub.url}/api/whoami-v2", headers={"authorization": f"Bearer {cookie}"}).status_code == 401
    assert on_host(hub, src_b.split("?")[0], cookie).status_code == 404
    # nor does A's URL grant replayed on B's host
    grant_a = src_a.split("?", 1)[1]
    r = on_host(hub, src_b.split("?")[0] + "?" + grant_a)
    assert r.status_code == 303 and grant_cookie(r) is None
    # a tampered grant gets nothing
    i = len(src_a) - 10  # inside the signature (its last character also holds padding bits)
    r = on_host(hub, src_a[:i] + ("A" if src_a[i] != "A" else "B") + src_a[i + 1 :])
    assert r.status_code == 303 and grant_cookie(r) is None


def test_another_user_and_anonymous_get_no_grant_and_no_app(hub: Server) -> None:
    repo_id = private_static(hub, "carol", "grant-c")
    own = private_static(hub, "dave", "grant-d")
    other = Web(hub)
    other.login("dave")
    assert other.get(f"/spaces/{repo_id}").status_code == 404
    assert Web(hub).get(f"/spaces/{repo_id}").status_code == 404
    # dave's valid grant for his own Space, taken to carol's host
    src_d = iframe_src(other, own)
    host_c = src_d.split("?")[0].replace("dave-grant-d", "carol-grant-c")
    r = on_host(hub, host_c + "?" + src_d.split("?", 1)[1])
    assert r.status_code == 303 and grant_cookie(r) is None
    # his cookie for his own Space does not open carol's
    cookie = grant_cookie(on_host(hub, src_d))
    assert cookie and on_host(hub, host_c, cookie).status_code == 404


def test_a_grant_stops_working_when_its_user_loses_read_access(hub: Server) -> None:
    hub.cli("orgs", "create", "team")
    hub.cli("orgs", "add-member", "team", "carol", "--role", "admin")
    hub.cli("orgs", "add-member", "team", "dave", "--role", "read")
    api = HfApi(endpoint=hub.url, token=hub.tokens["carol"])
    api.create_repo("team/shared", repo_type="space", space_sdk="static", private=True)
    api.upload_file(path_or_fileobj=INDEX.format(n="team").encode(), path_in_repo="index.html",
                    repo_id="team/shared", repo_type="space")  # fmt: skip
    reader = Web(hub)
    reader.login("dave")
    src = iframe_src(reader, "team/shared")
    cookie = grant_cookie(on_host(hub, src))
    assert cookie and serves(hub, src.split("?")[0], cookie, "private marker team").status_code == 200
    api.move_repo("team/shared", "carol/moved", repo_type="space")  # same Space, now out of dave's reach
    time.sleep(5.5)  # the proxy caches an answer about a credential for 5 s (space_routes.AUTH_CACHE_SECONDS)
    moved = src.split("?")[0].replace("team-shared", "carol-moved")
    assert on_host(hub, moved, cookie).status_code == 404
