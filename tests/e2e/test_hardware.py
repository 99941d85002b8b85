"""Hardware with real processes behind the proxy (local backend, one declared T4, no GPU really here), driven with the
real huggingface_hub client: a GPU flavor restarts the app on it with its device (CUDA_VISIBLE_DEVICES, ACCELERATOR);
a second Space asking for the same GPU keeps running on its current flavor, same process, and says why; paid hardware
needs a grant (402) and is metered; a flavor larger than the machine is capped and the runtime says so; free hardware
has no custom sleep time."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi, SpaceHardware
from huggingface_hub.errors import HfHubHTTPError

from tests.conftest import start_server
from tests.e2e.conftest import Hub, runtime_env, stop_hub

pytestmark = pytest.mark.slow

RUN_TIMEOUT = 180  # the first build installs gradio (python-http is an sdk: gradio Space)
ENV_APP = """import json, os, uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEYS = ("CUDA_VISIBLE_DEVICES", "ACCELERATOR", "CPU_CORES", "MEMORY", "SPACE_ID")
BOOT = uuid.uuid4().hex


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"boot": BOOT, **{k: os.environ.get(k) for k in KEYS}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, uv_cache: Path) -> Iterator[Hub]:
    devices = json.dumps([{"id": "0", "model": "Tesla T4", "memory_gb": 16}])
    env = runtime_env(uv_cache, SPACEHUB_RUNTIME__DEVICES=devices, SPACEHUB_RUNTIME__RECONCILE_INTERVAL="1")
    server = start_server(tmp_path_factory.mktemp("e2e-hw") / "data", env=env)
    alice = server.user("alice")
    h = Hub(server, alice, HfApi(endpoint=server.url, token=alice))
    yield h
    stop_hub(h)


def app_env(hub: Hub, repo_id: str) -> dict[str, Any]:
    r = hub.get(repo_id)
    assert r.status_code == 200, r.text
    return dict(r.json())


def env_space(hub: Hub, tmp_path: Path, prefix: str) -> str:
    repo_id = hub.name(prefix)
    hub.upload(repo_id, "python-http", tmp_path, files={"app.py": ENV_APP})
    hub.wait(repo_id, "RUNNING", RUN_TIMEOUT)
    return repo_id


def test_gpu_flavor_runs_with_its_device_and_a_second_space_waits(hub: Hub, tmp_path: Path) -> None:
    a, b = env_space(hub, tmp_path, "gpu-a"), env_space(hub, tmp_path, "gpu-b")
    before = app_env(hub, a)
    assert before["ACCELERATOR"] == "none" and before["CUDA_VISIBLE_DEVICES"] is None

    with pytest.raises(HfHubHTTPError) as e:  # paid hardware without a grant
        hub.api.request_space_hardware(a, SpaceHardware.T4_SMALL)
    assert e.value.response.status_code == 402 and "community grant" in e.value.response.text
    hub.server.cli("billing", "grant", "alice")

    rt = hub.api.request_space_hardware(a, SpaceHardware.T4_SMALL)
    assert (rt.requested_hardware, rt.hardware) == ("t4-small", "cpu-basic")  # requested; the switch is a restart
    rt = hub.wait(a, "RUNNING", 60, until=lambda rt: rt.hardware == "t4-small")
    env = app_env(hub, a)
    assert env["CUDA_VISIBLE_DEVICES"] == "0" and env["ACCELERATOR"] == "t4-small"
    assert env["boot"] != before["boot"] and env["CPU_CORES"] == "2"  # t4-small asks 4 vCPU: capped to this machine
    assert "capped" in rt.raw["resources"]["limits"]
    assert rt.raw["resourcesNote"].startswith("capped: t4-small asks 4 vCPU; this machine has 2")

    b_before = app_env(hub, b)
    rt = hub.api.request_space_hardware(b, "t4-medium")
    assert rt.requested_hardware == "t4-medium"
    rt = hub.wait(b, "RUNNING", 30, until=lambda rt: "errorMessage" in rt.raw)
    assert rt.hardware == "cpu-basic" and rt.requested_hardware == "t4-medium"
    assert "t4-medium is not available" in rt.raw["errorMessage"] and a in rt.raw["errorMessage"]
    time.sleep(2.5)  # a few periodic passes: nothing restarts b, and nobody else gets the GPU
    assert app_env(hub, b) == b_before
    assert app_env(hub, a)["CUDA_VISIBLE_DEVICES"] == "0"

    hub.api.request_space_hardware(a, SpaceHardware.CPU_BASIC)  # the guide: downgrade when done; b gets the GPU
    rt = hub.wait(b, "RUNNING", 60, until=lambda rt: rt.hardware == "t4-medium" and "errorMessage" not in rt.raw)
    env = app_env(hub, b)
    assert env["CUDA_VISIBLE_DEVICES"] == "0" and env["ACCELERATOR"] == "t4-medium"
    hub.wait(a, "RUNNING", 60, until=lambda rt: rt.hardware == "cpu-basic")
    assert app_env(hub, a)["CUDA_VISIBLE_DEVICES"] is None

    usage = httpx.get(f"{hub.url}/api/usage", headers={"authorization": f"Bearer {hub.alice}"}).json()
    (alice,) = usage["owners"]
    flavors = {(sp["space"], sp["flavor"]): sp for sp in alice["spaces"]}
    assert flavors[(a, "t4-small")]["minutes"] >= 1 and flavors[(a, "t4-small")]["costMicroUSD"] > 0
    assert (b, "t4-medium") in flavors
    hub.api.request_space_hardware(b, SpaceHardware.CPU_BASIC)
    hub.server.cli("billing", "revoke", "alice")


def test_free_hardware_has_no_custom_sleep_time(hub: Hub, tmp_path: Path) -> None:
    repo_id = hub.name("nosleep")
    hub.api.create_repo(repo_id, repo_type="space", space_sdk="gradio")
    r = httpx.post(f"{hub.url}/api/spaces/{repo_id}/sleeptime", json={"seconds": 3600},
                   headers={"authorization": f"Bearer {hub.alice}"})  # fmt: skip
    assert r.status_code == 200 and r.json()["gcTimeout"] == 48 * 3600  # accepted as on the Hub, the rule kept
    assert hub.runtime(repo_id).sleep_time == 48 * 3600
