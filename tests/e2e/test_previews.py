"""Previews of a Space's pull requests, end to end: a live ``spacehub serve`` with the local runtime (real sandboxed
processes), the real ``huggingface_hub`` client for the Hub calls, real HTTP through the Space proxy.

bob, who may not write to alice's public Space, opens a pull request that changes its app and asks for a preview of
it; the preview's host serves his code while the Space's own host serves main's. The app answers with what its
environment holds: the Space's variable reaches the preview, its secret never does (nor /data). The preview follows
a new commit to ``refs/pr/{num}``, is private while the Space is, and stops when the pull request is merged or
closed (its host is a 404 again and its process is gone).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi

from tests.e2e.conftest import Hub, pid_alive, restart_hub

pytestmark = pytest.mark.slow
RUN_TIMEOUT = 180  # a first build installs gradio (the app is an sdk: gradio Space without gradio)

# A stdlib app that answers every GET with MARKER and what its environment says, and prints its environment's names
# (not values) when it starts.
ENV_APP = r"""
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MARKER = "preview-v1"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = json.dumps({
            "marker": MARKER,
            "secret": os.environ.get("PREVIEW_SECRET"),
            "variable": os.environ.get("PREVIEW_VARIABLE"),
            "space_id": os.environ.get("SPACE_ID"),
            "space_host": os.environ.get("SPACE_HOST"),
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


print(MARKER, "environment:", sorted(os.environ), flush=True)
ADDRESS = (os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"), int(os.environ.get("PORT", "7860")))
ThreadingHTTPServer(ADDRESS, Handler).serve_forever()
"""


def app_with(marker: str) -> bytes:
    return ENV_APP.replace('MARKER = "preview-v1"', f'MARKER = "{marker}"').encode()


def preview_route(hub: Hub, repo_id: str, num: int) -> str:
    return f"{hub.url}/api/spaces/{repo_id}/discussions/{num}/preview"


def call(method: str, url: str, token: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, url, headers=headers, timeout=30)


def fetch(hub: Hub, host: str, token: str | None = None) -> httpx.Response:
    headers = {"host": host, **({"authorization": f"Bearer {token}"} if token else {})}
    return httpx.get(hub.url + "/", headers=headers, timeout=60)


def serves(hub: Hub, host: str, marker: str, timeout: float = RUN_TIMEOUT, token: str | None = None) -> dict[str, Any]:
    """Wait until ``host`` (through the proxy) answers the env app's JSON with ``marker``; answers that JSON."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            r = fetch(hub, host, token)
            last = f"{r.status_code} {r.text[:200]!r}"
            if r.status_code == 200 and r.headers.get("content-type", "").startswith("application/json"):
                data = r.json()
                if data.get("marker") == marker:
                    return dict(data)
        except httpx.HTTPError as e:
            last = repr(e)
        time.sleep(0.3)
    server_log = "\n".join(hub.server.log.read_text(errors="replace").splitlines()[-40:])
    raise AssertionError(f"{host} does not serve {marker} after {timeout:.0f}s: {last}\n{server_log}")


def gone(hub: Hub, host: str, timeout: float = 60) -> None:
    """Wait until ``host`` is a 404 (no preview runs there)."""
    deadline = time.monotonic() + timeout
    r = fetch(hub, host)
    while r.status_code != 404 and time.monotonic() < deadline:
        time.sleep(0.3)
        r = fetch(hub, host)
    assert r.status_code == 404, (r.status_code, r.text[:200])


def log_lines(url: str, token: str, quiet: float = 2.0) -> list[str]:
    """The lines of a log's event stream until it is quiet for ``quiet`` seconds (it follows a running app)."""
    lines: list[str] = []
    try:
        with httpx.stream("GET", url, headers={"authorization": f"Bearer {token}"},
                          timeout=httpx.Timeout(10.0, read=quiet)) as r:  # fmt: skip
            assert r.status_code == 200, r.read()
            for line in r.iter_lines():
                if line.startswith("data: {"):
                    lines.append(json.loads(line[6:])["data"])
    except httpx.ReadTimeout:
        pass
    return lines


def live_instances(hub: Hub, runtime_id: str) -> list[dict[str, Any]]:
    """The local backend's instances of ``runtime_id`` whose app process still runs."""
    out = []
    for launch in (hub.server.data_dir / "runtime" / "instances").glob("*/launch.json"):
        try:
            data = json.loads(launch.read_text())
            state = json.loads(launch.with_name("state.json").read_text())
        except (OSError, ValueError):
            continue
        if data.get("space_id") == runtime_id and pid_alive(state["pid"], state.get("starttime")):
            out.append(state)
    return out


def no_instance_left(hub: Hub, runtime_id: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while live_instances(hub, runtime_id) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert not live_instances(hub, runtime_id)


def test_a_pull_request_preview_runs_the_pull_requests_code_without_the_spaces_secrets(
    hub: Hub, tmp_path: Path
) -> None:
    repo_id = hub.name("preview")
    secret = f"s3cret-{time.monotonic_ns()}"
    hub.api.create_repo(repo_id, repo_type="space", space_sdk="gradio", space_secrets=[
        {"key": "PREVIEW_SECRET", "value": secret}], space_variables=[{"key": "PREVIEW_VARIABLE", "value": "seen"}],
    )  # fmt: skip
    hub.upload(repo_id, "python-http", tmp_path, files={"app.py": ENV_APP}, create=False)
    hub.wait(repo_id, "RUNNING", RUN_TIMEOUT)
    main_host = hub.host(repo_id)
    main = serves(hub, main_host, "preview-v1")
    assert main["secret"] == secret and main["variable"] == "seen"  # the Space itself gets both

    bob, carol = hub.server.user("bob"), hub.server.user("carol")
    bob_api = HfApi(endpoint=hub.url, token=bob)
    opened = bob_api.create_commit(repo_id, [CommitOperationAdd("app.py", app_with("preview-v2"))],
                                   commit_message="v2", repo_type="space", create_pr=True)  # fmt: skip
    num = opened.pr_num
    assert num is not None
    route = preview_route(hub, repo_id, num)
    assert call("GET", route, bob).status_code == 404  # none asked for yet
    refused = call("POST", route, carol)  # neither its author nor a writer
    assert refused.status_code == 403 and "author of pull request" in refused.json()["error"]
    assert call("POST", route).status_code == 401
    asked = call("POST", route, bob)  # its author may
    assert asked.status_code == 200, asked.text
    doc = asked.json()
    host = urlsplit(doc["url"]).netloc
    assert host == f"{hub.api.space_info(repo_id).subdomain}--pr-{num}.localhost:{hub.port}"
    assert doc["revision"] == opened.oid and doc["num"] == num

    # the preview serves the pull request's code; the Space's host still serves main's
    preview = serves(hub, host, "preview-v2")
    assert preview["secret"] is None, "a preview must never get the Space's secrets"
    assert preview["variable"] == "seen" and preview["space_id"] == repo_id
    assert preview["space_host"] == host, (preview["space_host"], host)
    assert serves(hub, main_host, "preview-v1")["secret"] == secret
    status = call("GET", route).json()  # anyone who may read the Space
    assert status["stage"] == "RUNNING" and status["revision"] == opened.oid
    runtime_id = f"{hub.space_id(repo_id)}-pr-{num}"
    logs = hub.server.data_dir / "spaces" / runtime_id / "logs"
    run_log = (logs / "run.log").read_text()
    assert "PREVIEW_VARIABLE" in run_log and "PREVIEW_SECRET" not in run_log
    assert any("preview-v2 environment:" in line for line in log_lines(route + "/logs/run", bob))  # its author's
    assert call("GET", route + "/logs/run", carol).status_code == 403
    launches = list((hub.server.data_dir / "runtime" / "instances").glob("*/launch.json"))
    for path in launches:
        assert secret not in path.read_text()
    ours = [json.loads(p.read_text()) for p in launches]
    ours = [launch for launch in ours if launch["space_id"] == runtime_id]
    assert ours and all(launch["data_dir"] is None for launch in ours)  # no /data storage of the Space

    # private exactly when the Space is: then only its readers get the preview
    hub.api.update_repo_settings(repo_id, private=True, repo_type="space")
    assert fetch(hub, host).status_code == 404
    assert fetch(hub, host, carol).status_code == 404
    assert fetch(hub, host, hub.alice).json()["marker"] == "preview-v2"
    hub.api.update_repo_settings(repo_id, private=False, repo_type="space")
    assert fetch(hub, host).json()["marker"] == "preview-v2"

    # a new commit to refs/pr/N: the preview follows it
    again = bob_api.create_commit(repo_id, [CommitOperationAdd("app.py", app_with("preview-v3"))],
                                  commit_message="v3", repo_type="space", revision=f"refs/pr/{num}")  # fmt: skip
    assert serves(hub, host, "preview-v3")["secret"] is None
    assert call("GET", route).json()["revision"] == again.oid
    assert serves(hub, main_host, "preview-v1")["marker"] == "preview-v1"

    # merged: the preview stops (404, no process left) and the Space runs the merged code
    hub.api.merge_pull_request(repo_id, num, repo_type="space")
    gone(hub, host)
    assert call("GET", route, hub.alice).status_code == 404
    no_instance_left(hub, runtime_id)
    assert serves(hub, main_host, "preview-v3")["secret"] == secret
    assert call("POST", route, hub.alice).status_code == 400  # a merged pull request is not previewed


def test_closing_or_stopping_ends_a_preview(hub: Hub, tmp_path: Path) -> None:
    repo_id = hub.name("preview-close")
    hub.upload(repo_id, "python-http", tmp_path, files={"app.py": ENV_APP})
    bob_api = HfApi(endpoint=hub.url, token=hub.server.user("bob"))
    num = bob_api.create_commit(repo_id, [CommitOperationAdd("app.py", app_with("closing"))],
                                commit_message="c", repo_type="space", create_pr=True).pr_num  # fmt: skip
    assert num is not None
    route = preview_route(hub, repo_id, num)
    host = urlsplit(call("POST", route, hub.alice).json()["url"]).netloc  # a writer may too
    assert serves(hub, host, "closing")["secret"] is None
    runtime_id = f"{hub.space_id(repo_id)}-pr-{num}"

    bob_api.change_discussion_status(repo_id, num, "closed", repo_type="space")  # its author closes it
    gone(hub, host)
    no_instance_left(hub, runtime_id)
    deadline = time.monotonic() + 30
    while (hub.server.data_dir / "spaces" / runtime_id).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not (hub.server.data_dir / "spaces" / runtime_id).exists()  # its logs went with it (the finalizer)
    bob_api.change_discussion_status(repo_id, num, "open", repo_type="space")
    assert call("GET", route).status_code == 404  # reopening does not start it again

    call("POST", route, hub.alice).raise_for_status()
    assert serves(hub, host, "closing")["marker"] == "closing"
    assert call("DELETE", route, hub.server.user("carol")).status_code == 403
    assert call("DELETE", route, hub.alice).status_code == 200
    gone(hub, host)
    no_instance_left(hub, runtime_id)


def test_a_running_preview_survives_a_restart_of_spacehub(hub: Hub, tmp_path: Path, uv_cache: Path) -> None:
    """SpaceHub stops and starts again on the same data dir: the preview's app kept running and is adopted (the
    same process serves at once, no wake, no second start), and its stage reads RUNNING."""
    repo_id = hub.name("preview-restart")
    hub.upload(repo_id, "python-http", tmp_path, files={"app.py": ENV_APP})
    bob_api = HfApi(endpoint=hub.url, token=hub.server.user("bob"))
    num = bob_api.create_commit(repo_id, [CommitOperationAdd("app.py", app_with("survives"))],
                                commit_message="s", repo_type="space", create_pr=True).pr_num  # fmt: skip
    assert num is not None
    route = preview_route(hub, repo_id, num)
    host = urlsplit(call("POST", route, hub.alice).json()["url"]).netloc
    assert serves(hub, host, "survives")["secret"] is None
    runtime_id = f"{hub.space_id(repo_id)}-pr-{num}"
    (before,) = live_instances(hub, runtime_id)
    startups = "===== starting"
    run_log = hub.server.data_dir / "spaces" / runtime_id / "logs" / "run.log"
    assert run_log.read_text().count(startups) == 1

    restart_hub(hub, uv_cache)
    first = fetch(hub, host)  # the first request after the restart: served by the adopted app
    assert first.status_code == 200 and first.json()["marker"] == "survives", first.text[:200]
    deadline = time.monotonic() + 30
    while (stage := call("GET", route).json().get("stage")) != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stage == "RUNNING"
    (after,) = live_instances(hub, runtime_id)
    assert (after["pid"], after.get("starttime")) == (before["pid"], before.get("starttime"))
    assert run_log.read_text().count(startups) == 1  # never started again
    assert serves(hub, hub.host(repo_id), "preview-v1")["marker"] == "preview-v1"  # the Space too
