"""Hardware with a runtime: the real huggingface_hub client (2.4.0; and 1.33.0 in its own virtual environment running
tests/compat/hardware_scenario.py) against a live server whose runtime is the in-memory FakeBackend (instant builds,
real HTTP): paid hardware granted, running and metered, the GPU that one Space gets and another waits for. What needs
no runtime is in test_hardware.py (in-process); real processes in tests/e2e/."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi, SpaceHardware

from tests.api.test_hardware import new_space, status_of
from tests.conftest import Server, start_server, stop_server

pytestmark = pytest.mark.slow  # a server of its own with the runtime (in-process: test_hardware.py, tests/runtime)
T4 = [{"id": "0", "model": "Tesla T4", "memory_gb": 16}]
ENV = {
    "SPACEHUB_RUNTIME__BACKEND": "fake",
    "SPACEHUB_RUNTIME__DEVICES": json.dumps(T4),
    "SPACEHUB_RUNTIME__RECONCILE_INTERVAL": "1",
}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("hw") / "data", env=ENV)
    srv.user("alice")
    srv.user("bob")
    yield srv
    stop_server(srv)


@pytest.fixture
def api(hub: Server) -> HfApi:
    return HfApi(endpoint=hub.url, token=hub.tokens["alice"])


_names = iter(range(10**6))


def wait_for(api: HfApi, repo_id: str, check, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        rt = api.get_space_runtime(repo_id)
        if check(rt):
            return rt
        if time.monotonic() > deadline:
            raise AssertionError(f"{repo_id}: {rt.raw}")
        time.sleep(0.1)


def test_paid_hardware_needs_a_grant_then_runs_and_is_metered(hub: Server, api: HfApi) -> None:
    repo_id = new_space(api, "paid")
    wait_for(api, repo_id, lambda rt: rt.stage == "RUNNING")
    code, text = status_of(lambda: api.request_space_hardware(repo_id, SpaceHardware.T4_MEDIUM))
    assert code == 402 and "a payment card or a community grant is required" in text
    assert api.get_space_runtime(repo_id).requested_hardware == "cpu-basic"
    hub.cli("billing", "grant", "alice")
    try:
        rt = api.request_space_hardware(repo_id, SpaceHardware.T4_MEDIUM)
        assert rt.requested_hardware == "t4-medium"
        assert rt.sleep_time is None  # upgraded hardware never sleeps by default
        rt = wait_for(api, repo_id, lambda rt: rt.hardware == "t4-medium" and rt.stage == "RUNNING")
        assert "errorMessage" not in rt.raw
        rt = api.request_space_hardware(repo_id, "t4-medium", sleep_time=3600)  # a string works too
        assert rt.sleep_time == 3600
        usage = httpx.get(f"{hub.url}/api/usage", headers={"authorization": f"Bearer {api.token}"}).json()
        (alice,) = [o for o in usage["owners"] if o["owner"] == "alice"]
        line = next(sp for sp in alice["spaces"] if sp["space"] == repo_id)
        assert line["flavor"] == "t4-medium" and line["minutes"] >= 1 and line["costMicroUSD"] >= 10_000
        out = hub.cli("usage", "--owner", "alice")
        assert repo_id in out and "t4-medium" in out
        bob = httpx.get(f"{hub.url}/api/usage", headers={"authorization": f"Bearer {hub.tokens['bob']}"}).json()
        assert all(o["owner"] == "bob" for o in bob["owners"])
        r = httpx.get(f"{hub.url}/api/usage?owner=alice", headers={"authorization": f"Bearer {hub.tokens['bob']}"})
        assert r.status_code == 404
        assert httpx.get(f"{hub.url}/api/usage").status_code == 401
    finally:
        api.request_space_hardware(repo_id, SpaceHardware.CPU_BASIC)  # frees the GPU for the other tests
        hub.cli("billing", "revoke", "alice")


def test_one_gpu_two_spaces(hub: Server, api: HfApi) -> None:
    hub.cli("billing", "grant", "alice")
    a, b = new_space(api, "gpu-a"), new_space(api, "gpu-b")
    try:
        for s in (a, b):
            wait_for(api, s, lambda rt: rt.stage == "RUNNING")
        api.request_space_hardware(a, "t4-small")
        wait_for(api, a, lambda rt: rt.hardware == "t4-small" and rt.stage == "RUNNING")
        rt = api.request_space_hardware(b, "t4-medium")
        assert rt.requested_hardware == "t4-medium"
        rt = wait_for(api, b, lambda rt: "errorMessage" in rt.raw and rt.stage == "RUNNING")
        assert rt.hardware == "cpu-basic"  # the current flavor keeps running
        assert "t4-medium is not available" in rt.raw["errorMessage"] and a in rt.raw["errorMessage"]
        api.request_space_hardware(a, "cpu-basic")  # a lets go: b gets the GPU
        rt = wait_for(api, b, lambda rt: rt.hardware == "t4-medium" and "errorMessage" not in rt.raw)
        assert rt.requested_hardware == "t4-medium"
    finally:
        for s in (a, b):
            api.request_space_hardware(s, "cpu-basic")
        hub.cli("billing", "revoke", "alice")


@pytest.mark.slow
@pytest.mark.compat
def test_client_1_33_runs_the_hardware_scenario(hub: Server, tmp_path: Path) -> None:
    from tests.compat.test_versions import client_python

    python = client_python("1.33.0")
    hub.cli("billing", "grant", "alice")
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "PYTHON", "VIRTUAL_ENV"))}
        env.update(SCENARIO_TOKEN=hub.tokens["alice"], SCENARIO_BOB_TOKEN=hub.tokens["bob"])
        script = Path(__file__).resolve().parents[1] / "compat" / "hardware_scenario.py"
        cmd = [str(python), str(script), "--endpoint", hub.url, "--prefix", f"hw133-{os.getpid()}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
        report = proc.stdout[-4000:] + "\n--- stderr ---\n" + proc.stderr[-4000:]
        assert proc.returncode == 0, report
        assert lines[0] == {"step": "start", "version": "1.33.0"}, report
        assert lines[-1]["step"] == "done" and all(x.get("status", "ok") == "ok" for x in lines), report
    finally:
        hub.cli("billing", "revoke", "alice")
