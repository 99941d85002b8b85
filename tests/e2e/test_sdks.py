"""The example Spaces of each SDK, uploaded with huggingface_hub, reach RUNNING and serve through the proxy: a static
page, a real gradio Interface (page, and an API call), a real Streamlit app (page, health, WebSocket)."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Hub

pytestmark = pytest.mark.slow

BUILD_TIMEOUT = 300  # a cold uv cache downloads gradio or streamlit; gradio's first start also compiles .pyc files


def check_host(hub: Hub, repo_id: str) -> None:
    info = hub.api.space_info(repo_id)
    assert info.subdomain == repo_id.lower().replace("/", "-")
    assert info.host == f"http://{info.subdomain}.localhost:{hub.port}"


def test_static_space(hub: Hub, tmp_path: Path) -> None:
    repo_id = hub.name("static")
    hub.upload(repo_id, "static", tmp_path)
    rt = hub.wait(repo_id, "RUNNING", 30)
    assert rt.raw.get("errorMessage") is None
    check_host(hub, repo_id)
    r = hub.serves(repo_id, "spacehub-static-example")
    assert r.headers["content-type"].startswith("text/html")
    css = hub.get(repo_id, "/style.css")
    assert css.status_code == 200 and "font-family" in css.text
    assert hub.get(repo_id, "/missing.js").status_code == 404
    # SpaceHub serves it from git: no process
    assert hub.instances(repo_id) == []


def test_gradio_space(hub: Hub, tmp_path: Path) -> None:
    repo_id = hub.name("gradio")
    hub.upload(repo_id, "gradio", tmp_path)
    assert hub.runtime(repo_id).stage in ("BUILDING", "APP_STARTING", "RUNNING")  # at once after the upload
    rt = hub.api.wait_for_space(repo_id, timeout=BUILD_TIMEOUT)
    assert rt.stage == "RUNNING", hub.report(repo_id)
    check_host(hub, repo_id)
    r = hub.serves(repo_id, "gradio")
    assert "<gradio-app" in r.text or "gradio_config" in r.text, r.text[:500]
    assert "SpaceHub Gradio example" in hub.get(repo_id, "/config").text

    # the API, as gradio_client calls it: find the endpoint, POST a call, read its result as Server-Sent Events
    host = {"host": hub.host(repo_id)}
    info = httpx.get(f"{hub.url}/gradio_api/info", headers=host, timeout=30).json()
    (api_name,) = info["named_endpoints"]  # "/greet" (gradio 6 names it after the function; 4 and 5: "/predict")
    call = httpx.post(f"{hub.url}/gradio_api/call{api_name}", json={"data": ["Ada"]}, headers=host, timeout=30)
    assert call.status_code == 200, call.text
    event_id = call.json()["event_id"]
    result = httpx.get(f"{hub.url}/gradio_api/call{api_name}/{event_id}", headers=host, timeout=30)
    assert "event: complete" in result.text and '"Hello Ada!"' in result.text, result.text

    run = hub.logs(repo_id, "run")
    text = "\n".join(run)
    assert "Running on local URL:" in text, text[-3000:]
    assert "`spaces` package is required" not in text, text[-3000:]
    # Python's report of an error in a destructor, which the app survives (gradio 6.31's dependencies as installed on
    # 2026-12-05 print it for a garbage-collected event loop): that one is not a crash, any other traceback is
    survived = re.compile(
        r"Exception ignored in: <function BaseEventLoop\.__del__.*?ValueError: Invalid file descriptor: -1", re.S
    )
    assert "Traceback" not in survived.sub("", text), text[-3000:]
    build = "\n".join(hub.logs(repo_id, "build"))
    assert "+ gradio==" in build or "Reusing the Python environment" in build, build[-3000:]


def test_streamlit_space(hub: Hub, tmp_path: Path) -> None:
    repo_id = hub.name("streamlit")
    hub.upload(repo_id, "streamlit", tmp_path)
    hub.wait(repo_id, "RUNNING", BUILD_TIMEOUT)
    check_host(hub, repo_id)
    r = hub.serves(repo_id, "<title>Streamlit</title>")
    assert 'id="root"' in r.text
    health = hub.get(repo_id, "/_stcore/health")
    assert health.status_code == 200 and health.text == "ok"

    # the WebSocket the page opens, through the proxy
    from websockets.sync.client import connect

    sock = socket.create_connection(("127.0.0.1", hub.port), timeout=10)
    uri = f"ws://{hub.host(repo_id)}/_stcore/stream"
    with connect(uri, sock=sock, subprotocols=["streamlit"], open_timeout=10) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "streamlit"
        ws.ping().wait(5)
    text = "\n".join(hub.logs(repo_id, "run"))
    assert "You can now view your Streamlit app" in text, text[-3000:]
    # "Exception ignored in <…__del__>" is Python's report of an error in a destructor, which the app survives (gradio
    # 6.31's dependencies as installed on 2026-12-05 print one for a garbage-collected event loop): not a crash
    crashes = [b for b in text.split("Exception ignored in")[0:1] + [
        b.split("\n", 1)[1] if "ValueError: Invalid file descriptor: -1" in b else b
        for b in text.split("Exception ignored in")[1:]
    ]]  # fmt: skip
    assert all("Traceback" not in b or "BaseEventLoop.__del__" in b for b in crashes), text[-3000:]


def test_one_environment_serves_every_space_with_the_same_requirements(hub: Hub, tmp_path: Path) -> None:
    """A second gradio Space with the same (no) requirements reuses the environment: its build installs nothing."""
    repo_id = hub.name("gradio-again")
    hub.upload(repo_id, "python-http", tmp_path)
    started = time.monotonic()
    hub.wait(repo_id, "RUNNING", BUILD_TIMEOUT)
    build = "\n".join(hub.logs(repo_id, "build"))
    if "Reusing the Python environment" in build:
        assert time.monotonic() - started < 30
    hub.serves(repo_id, "python-http-v1")
