"""``server.workers``: a controller process runs the runtime and several HTTP worker processes serve the Hub and the
Space proxy on one port, with a live ``spacehub serve --workers 2``, the local runtime, real apps and the real
``huggingface_hub`` client.

What one process does must hold across processes: a commit or a settings change made through any worker reaches
the runtime (the app restarts with a new secret); each worker routes to the apps the controller runs and wakes a
sleeping Space through it; a Space made private through one worker is closed in all of them before the call
returns; logs and usage are read through any worker; a worker that dies is replaced while the others serve; and the
controller's stop stops every worker.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi

from tests.conftest import start_server
from tests.e2e.conftest import Hub, runtime_env, stop_hub

pytestmark = pytest.mark.slow
RUN_TIMEOUT = 180
SLEEP = 2  # seconds without a visit before sleeping
ENV_APP = r"""
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = json.dumps({"marker": "env-app", "pid": os.getpid(),
                           "greeting": os.environ.get("GREETING")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        print("env-app served", self.path, flush=True)

    def log_message(self, format, *args):
        pass

ThreadingHTTPServer((os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"), int(os.environ["PORT"])), Handler).serve_forever()
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, uv_cache: Path) -> Iterator[Hub]:
    env = runtime_env(
        uv_cache,
        SPACEHUB_SERVER__WORKERS="2",
        SPACEHUB_RUNTIME__CUSTOM_SLEEP_ON_FREE_HARDWARE="true",
        SPACEHUB_RUNTIME__MIN_AVAILABLE_MEMORY_MB="0",
    )
    server = start_server(tmp_path_factory.mktemp("e2e-workers") / "data", env=env)
    alice = server.user("alice")
    h = Hub(server, alice, HfApi(endpoint=server.url, token=alice))
    yield h
    stop_hub(h)


def workers_of(hub: Hub) -> list[int]:
    """The pids of the controller's HTTP workers (its children that serve with ``--worker-fd``)."""
    out = []
    for task in Path(f"/proc/{hub.server.proc.pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"--worker-fd" in cmdline:
                out.append(int(child))
    return sorted(out)


def env_app(hub: Hub, tmp_path: Path, prefix: str, private: bool = False) -> str:
    repo_id = hub.name(prefix)
    hub.upload(repo_id, "python-http", tmp_path, files={"app.py": ENV_APP}, private=private)
    hub.wait(repo_id, "RUNNING", RUN_TIMEOUT)
    return repo_id


def fresh_get(hub: Hub, repo_id: str, token: str | None = None) -> httpx.Response:
    """One request on a new connection (so that any worker may take it)."""
    headers = {"host": hub.host(repo_id), "connection": "close"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    with httpx.Client(timeout=30) as c:
        return c.get(hub.url + "/", headers=headers)


def test_two_workers_serve_the_hub_and_the_proxy(hub: Hub, tmp_path: Path) -> None:
    pids = workers_of(hub)
    assert len(pids) == 2, pids
    repo_id = env_app(hub, tmp_path, "two")
    bodies = [fresh_get(hub, repo_id) for _ in range(20)]
    assert all(r.status_code == 200 and r.json()["marker"] == "env-app" for r in bodies), bodies
    assert len({r.json()["pid"] for r in bodies}) == 1  # one app, whichever worker routed
    static = hub.name("static")
    hub.upload(static, "static", tmp_path)
    hub.wait(static, "RUNNING", 60)
    assert "<html" in fresh_get(hub, static).text.lower()


def test_a_secret_set_through_a_worker_restarts_the_app_with_it(hub: Hub, tmp_path: Path) -> None:
    repo_id = env_app(hub, tmp_path, "secret")
    assert fresh_get(hub, repo_id).json()["greeting"] is None
    hub.api.add_space_secret(repo_id, "GREETING", "hello from a worker")
    deadline = time.monotonic() + RUN_TIMEOUT
    seen = None
    while time.monotonic() < deadline:
        r = fresh_get(hub, repo_id)
        seen = r.json().get("greeting") if r.status_code == 200 else r.status_code
        if seen == "hello from a worker":
            break
        time.sleep(0.3)
    assert seen == "hello from a worker"
    assert any("env-app served" in line for line in hub.logs(repo_id, "run"))  # logs read through a worker


def test_a_space_made_private_through_one_worker_is_closed_in_all(hub: Hub, tmp_path: Path) -> None:
    repo_id = env_app(hub, tmp_path, "private")
    assert fresh_get(hub, repo_id).status_code == 200
    hub.api.update_repo_settings(repo_id, private=True, repo_type="space")
    codes = [fresh_get(hub, repo_id).status_code for _ in range(60)]
    assert set(codes) == {404}, codes
    assert fresh_get(hub, repo_id, hub.alice).status_code == 200  # its owner still gets it
    hub.api.update_repo_settings(repo_id, private=False, repo_type="space")
    assert {fresh_get(hub, repo_id).status_code for _ in range(20)} == {200}


def test_a_sleeping_space_is_woken_through_any_worker(hub: Hub, tmp_path: Path) -> None:
    repo_id = env_app(hub, tmp_path, "sleepy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        hub.api.set_space_sleep_time(repo_id, SLEEP)
    hub.wait(repo_id, "SLEEPING", SLEEP + 60)
    r = fresh_get(hub, repo_id)
    assert r.status_code == 200 and r.json()["marker"] == "env-app"
    hub.wait(repo_id, "RUNNING", 30)
    for _ in range(6):  # visits through either worker keep it awake past its sleep time
        assert fresh_get(hub, repo_id).status_code == 200
        time.sleep(SLEEP / 2)
    assert hub.runtime(repo_id).stage == "RUNNING"


def test_usage_is_read_through_a_worker(hub: Hub, tmp_path: Path) -> None:
    repo_id = env_app(hub, tmp_path, "usage")
    url = f"{hub.url}/api/spaces/{repo_id}/metrics"
    samples = []
    with httpx.stream("GET", url, headers={"authorization": f"Bearer {hub.alice}"}, timeout=30) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: "):
                samples.append(json.loads(line[6:]))
                if len(samples) == 2:
                    break
    assert samples[-1]["memory_used_bytes"] > 0, samples


def test_a_new_commit_is_served_without_a_gap_through_the_workers(hub: Hub, tmp_path: Path) -> None:
    """The controller switches to the new release and stops the old one; a worker whose routes lag that switch
    finds the old address refused and asks the controller where the Space serves now (no 502 in between)."""
    repo_id = env_app(hub, tmp_path, "switch")
    results: list[int | str] = []
    stop = threading.Event()

    def load() -> None:  # about 20 requests a second, each on a new connection (either worker takes it)
        while not stop.is_set():
            try:
                r = fresh_get(hub, repo_id)
                results.append(r.json()["marker"] if r.status_code == 200 else r.status_code)
            except httpx.HTTPError as exc:
                results.append(repr(exc))
            time.sleep(0.05)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        time.sleep(0.5)
        v2 = ENV_APP.replace('"env-app"', '"env-app-v2"')
        v2 = v2.replace("import json, os", "import json, os, time\ntime.sleep(1)")  # the old release serves meanwhile
        hub.upload(repo_id, "python-http", tmp_path, create=False, files={"app.py": v2})
        deadline = time.monotonic() + RUN_TIMEOUT
        while "env-app-v2" not in results[-3:]:
            assert time.monotonic() < deadline, results[-10:]
            time.sleep(0.1)
        time.sleep(1)
    finally:
        stop.set()
        loader.join(30)
    first = results.index("env-app-v2")
    assert set(results[:first]) == {"env-app"} and set(results[first:]) == {"env-app-v2"}, results


def test_a_worker_that_dies_is_replaced_while_the_other_serves(hub: Hub, tmp_path: Path) -> None:
    repo_id = env_app(hub, tmp_path, "survivor")
    before = workers_of(hub)
    os.kill(before[0], signal.SIGKILL)
    # The other worker answers meanwhile. Each request opens a new connection: one the client kept alive to the
    # killed worker is reset, as with any server process that dies.
    headers = {"authorization": f"Bearer {hub.alice}", "connection": "close"}
    names = [httpx.get(f"{hub.url}/api/whoami-v2", headers=headers, timeout=30).json()["name"] for _ in range(10)]
    assert names == ["alice"] * 10
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = workers_of(hub)
        if len(now) == 2 and before[0] not in now:
            break
        time.sleep(0.2)
    assert len(now) == 2 and before[0] not in now and before[1] in now, (before, now)
    assert {fresh_get(hub, repo_id).status_code for _ in range(10)} == {200}


def test_the_controllers_stop_stops_every_worker(tmp_path: Path, uv_cache: Path) -> None:
    server = start_server(tmp_path / "data", env=runtime_env(uv_cache, SPACEHUB_SERVER__WORKERS="3"))
    hub = Hub(server, server.user("alice"), HfApi(endpoint=server.url))
    pids = workers_of(hub)
    assert len(pids) == 3
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(30) in (0, -signal.SIGTERM)  # uvicorn raises the signal again once it has stopped
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
