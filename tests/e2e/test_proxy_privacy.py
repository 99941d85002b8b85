"""The proxy and the Space sandbox's privacy, with a live ``spacehub serve`` (the local runtime, a real app) and the
real ``huggingface_hub`` client, in both proxy modes (embedded, and nginx in front) and with the embedded proxy in
several HTTP worker processes (``server.workers``):

- a visitor's hub token (``Authorization: Bearer hf_…``, the ``spacehub_token`` cookie) never reaches the app, on a
  public or a private Space, over HTTP and WebSocket; other cookies and the app's own ``Authorization`` do;
- a change of visibility takes effect in the proxy before ``update_repo_settings`` returns: from then on no anonymous
  request gets a Space made private (its owner still does), and a Space made public again is served at once; a
  moved or deleted Space's old host stops serving before the call returns.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi
from websockets.asyncio.client import connect

from tests.conftest import free_port, start_server
from tests.e2e.conftest import Hub, runtime_env, stop_hub

pytestmark = pytest.mark.slow
RUN_TIMEOUT = 180  # a first build installs gradio (the python-http example is an sdk: gradio Space)
POLLS = 200  # anonymous requests right after each change

# A stdlib app that answers every GET with the request's headers (JSON), and /ws-headers with a WebSocket whose
# first message is the handshake's headers.
ECHO_APP = r"""
import base64, hashlib, json, os, struct
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        headers = [[k.lower(), v] for k, v in self.headers.items()]
        body = json.dumps({"marker": "echo-app", "headers": headers}).encode()
        if self.path == "/ws-headers" and self.headers.get("Upgrade", "").lower() == "websocket":
            key = self.headers["Sec-WebSocket-Key"].encode()
            accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept.decode())
            self.end_headers()
            head = struct.pack("!BB", 0x81, len(body)) if len(body) < 126 else struct.pack("!BBH", 0x81, 126, len(body))
            self.wfile.write(head + body + struct.pack("!BBH", 0x88, 2, 1000))
            self.wfile.flush()
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


ADDRESS = (os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"), int(os.environ.get("PORT", "7860")))
ThreadingHTTPServer(ADDRESS, Handler).serve_forever()
"""

COOKIES = "theme=dark; spacehub_token={token}; lang=fr"


@pytest.fixture(scope="module", params=["embedded", "nginx", "workers"])
def hub(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, uv_cache: Path) -> Iterator[Hub]:
    extra = {}
    if request.param == "nginx":
        extra = {"SPACEHUB_PROXY__MODE": "nginx", "SPACEHUB_PROXY__NGINX_BACKEND_PORT": str(free_port())}
    if request.param == "workers":  # the embedded proxy in each of 3 HTTP worker processes (test_workers.py)
        extra = {"SPACEHUB_SERVER__WORKERS": "3"}
    server = start_server(
        tmp_path_factory.mktemp(f"privacy-{request.param}") / "data", env=runtime_env(uv_cache, **extra)
    )
    alice = server.user("alice")
    h = Hub(server, alice, HfApi(endpoint=server.url, token=alice))
    yield h
    stop_hub(h)


def echo_space(hub: Hub, tmp_path: Path, prefix: str, *, private: bool = False) -> str:
    repo_id = hub.name(prefix)
    hub.upload(repo_id, "python-http", tmp_path, files={"app.py": ECHO_APP}, private=private)
    hub.wait(repo_id, "RUNNING", RUN_TIMEOUT)
    deadline = time.monotonic() + 30
    while hub.get(repo_id, token=hub.alice).status_code != 200:
        assert time.monotonic() < deadline, hub.report(repo_id)
        time.sleep(0.2)
    return repo_id


def received(r: httpx.Response) -> dict[str, list[str]]:
    assert r.status_code == 200, (r.status_code, r.text[:300])
    out: dict[str, list[str]] = {}
    for name, value in r.json()["headers"]:
        out.setdefault(name, []).append(value)
    return out


def ws_received(hub: Hub, repo_id: str, headers: dict[str, str]) -> dict[str, list[str]]:
    async def run() -> str:
        uri = f"ws://{hub.host(repo_id)}/ws-headers"
        async with connect(uri, host="127.0.0.1", port=hub.port, proxy=None, additional_headers=headers) as conn:
            return str(await conn.recv())

    out: dict[str, list[str]] = {}
    for name, value in json.loads(asyncio.run(run()))["headers"]:
        out.setdefault(name, []).append(value)
    return out


@pytest.mark.parametrize("private", [False, True], ids=["public", "private"])
def test_a_visitors_hub_token_never_reaches_the_app(hub: Hub, tmp_path: Path, private: bool) -> None:
    repo_id = echo_space(hub, tmp_path, "echo", private=private)
    token = hub.alice
    h = received(
        hub.get(repo_id, "/echo", headers={"authorization": f"Bearer {token}", "cookie": COOKIES.format(token=token)})
    )
    assert "authorization" not in h, h
    assert h["cookie"] == ["theme=dark; lang=fr"], h
    assert not any(token in v for values in h.values() for v in values)
    # the login cookie alone authorizes (private), and the app's own Authorization schemes pass through
    for own in ("Bearer app-key-123", "Basic YWxpY2U6czNjcmV0"):
        h = received(
            hub.get(repo_id, "/echo", headers={"authorization": own, "cookie": f"spacehub_token={token}; a=1"})
        )
        assert h["authorization"] == [own] and h["cookie"] == ["a=1"], h
    ws = ws_received(hub, repo_id, {"Authorization": f"Bearer {token}", "Cookie": COOKIES.format(token=token)})
    assert "authorization" not in ws and ws["cookie"] == ["theme=dark; lang=fr"], ws
    ws = ws_received(hub, repo_id, {"Authorization": "Bearer app-key-123", "Cookie": f"spacehub_token={token}; a=1"})
    assert ws["authorization"] == ["Bearer app-key-123"] and ws["cookie"] == ["a=1"], ws


def anonymous_statuses(hub: Hub, host: str, n: int = POLLS) -> list[int]:
    """``n`` anonymous GETs on a keep-alive connection. In nginx mode a change reloads nginx, whose old workers close
    their idle keep-alive connections: a request sent on one at that moment is re-sent, as browsers do."""
    with httpx.Client(base_url=hub.url, headers={"host": host}, timeout=10) as c:
        return [status(c) for _ in range(n)]


def status(c: httpx.Client) -> int:
    try:
        return c.get("/echo").status_code
    except httpx.TransportError:  # an idle keep-alive connection closed by a reload: re-sent (see above)
        return c.get("/echo").status_code


def test_privacy_changes_reach_the_proxy_before_the_call_returns(hub: Hub, tmp_path: Path) -> None:
    repo_id = echo_space(hub, tmp_path, "window")
    host = hub.host(repo_id)
    for _ in range(2):
        assert set(anonymous_statuses(hub, host, 20)) == {200}
        with httpx.Client(base_url=hub.url, headers={"host": host}, timeout=10) as warm:  # a kept-alive visitor too
            assert status(warm) == 200
            hub.api.update_repo_settings(repo_id, private=True, repo_type="space")
            assert status(warm) == 404
        statuses = anonymous_statuses(hub, host)
        assert set(statuses) == {404}, statuses
        assert hub.get(repo_id, "/echo", token=hub.alice).status_code == 200  # the owner still gets it
        hub.api.update_repo_settings(repo_id, private=False, repo_type="space")
        statuses = anonymous_statuses(hub, host)
        assert set(statuses) == {200}, statuses


def test_move_and_delete_reach_the_proxy_before_the_call_returns(hub: Hub, tmp_path: Path) -> None:
    repo_id = echo_space(hub, tmp_path, "moving")
    old_host = hub.host(repo_id)
    new_id = repo_id + "-moved"
    hub.api.move_repo(repo_id, new_id, repo_type="space")
    assert set(anonymous_statuses(hub, old_host, 50)) == {404}
    new_host = hub.host(new_id)
    assert set(anonymous_statuses(hub, new_host, 20)) == {200}
    hub.api.delete_repo(new_id, repo_type="space")
    assert set(anonymous_statuses(hub, new_host, 50)) == {404}
