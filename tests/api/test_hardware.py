"""Hardware, sleep time, paid hardware and usage with the real huggingface_hub client (the test venv's, 2.4.0; and
1.33.0 in its own virtual environment running tests/compat/hardware_scenario.py) against a live server whose runtime
is the in-memory FakeBackend (instant builds, real HTTP): catalog, requests, 400/402/403/404, the GPU that one Space
gets and another waits for, sleep times, create/duplicate settings, usage. Real processes: tests/e2e/."""

from __future__ import annotations

import json
import os
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi, SpaceHardware
from huggingface_hub.errors import HfHubHTTPError

from tests.conftest import Server, start_server, stop_server

T4 = [{"id": "0", "model": "Tesla T4", "memory_gb": 16}]
ENV = {
    "SPACEHUB_RUNTIME__BACKEND": "fake",
    "SPACEHUB_RUNTIME__DEVICES": json.dumps(T4),
    "SPACEHUB_RUNTIME__RECONCILE_INTERVAL": "1",
}
README = "---\ntitle: hw\nsdk: gradio\napp_file: app.py\n---\n"


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


def new_space(api: HfApi, prefix: str, private: bool = False, **kw: Any) -> str:
    repo_id = f"alice/{prefix}-{os.getpid()}-{next(_names)}"
    api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, **kw)
    api.upload_file(path_or_fileobj=README.encode(), path_in_repo="README.md", repo_id=repo_id, repo_type="space")
    api.upload_file(path_or_fileobj=b"print('hi')\n", path_in_repo="app.py", repo_id=repo_id, repo_type="space")
    return repo_id


def wait_for(api: HfApi, repo_id: str, check, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        rt = api.get_space_runtime(repo_id)
        if check(rt):
            return rt
        if time.monotonic() > deadline:
            raise AssertionError(f"{repo_id}: {rt.raw}")
        time.sleep(0.1)


def status_of(call) -> tuple[int, str]:
    with pytest.raises(HfHubHTTPError) as e:
        call()
    return e.value.response.status_code, e.value.response.text


def test_list_spaces_hardware(api: HfApi) -> None:
    items = {h.name: h for h in api.list_spaces_hardware()}
    assert {"cpu-basic", "cpu-upgrade", "t4-small", "t4-medium", "a10g-large", "a100-large"} <= set(items)
    basic, t4 = items["cpu-basic"], items["t4-medium"]
    want = ("2 vCPU", "16 GB", 0, "minute", None)
    assert (basic.cpu, basic.ram, basic.unit_cost_usd, basic.unit_label, basic.accelerator) == want
    assert t4.accelerator is not None and (t4.accelerator.model, t4.accelerator.quantity) == ("T4", "1")
    assert t4.unit_cost_micro_usd == 10_000  # $0.60/h
    raw = {h["name"]: h for h in httpx.get(f"{api.endpoint}/api/spaces/hardware").json()}  # no token needed
    assert raw["t4-medium"]["available"] is True
    assert raw["a10g-small"]["available"] is False and "this machine has 0" in raw["a10g-small"]["note"]
    assert "capped" in raw["cpu-upgrade"]["note"]


def test_unknown_and_impossible_flavors_are_400_and_change_nothing(api: HfApi) -> None:
    repo_id = new_space(api, "bad")
    code, text = status_of(lambda: api.request_space_hardware(repo_id, "gpu-9000"))
    assert code == 400 and "Unknown hardware flavor 'gpu-9000'" in text and "t4-medium" in text
    code, text = status_of(lambda: api.request_space_hardware(repo_id, SpaceHardware.A10G_SMALL))
    assert code == 400 and "cannot run on this machine" in text
    for body in ({}, {"flavor": 3}, {"flavor": "cpu-basic", "sleepTimeSeconds": "soon"}, [1]):
        r = httpx.post(f"{api.endpoint}/api/spaces/{repo_id}/hardware", json=body,
                       headers={"authorization": f"Bearer {api.token}"})  # fmt: skip
        assert r.status_code == 400, (body, r.text)
    rt = api.get_space_runtime(repo_id)
    assert rt.requested_hardware == "cpu-basic" and rt.sleep_time == 172800


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


def test_sleep_time_rules(hub: Server, api: HfApi) -> None:
    repo_id = new_space(api, "sleep")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the client warns on cpu-basic, as it should
        code, text = status_of(lambda: api.set_space_sleep_time(repo_id, 3600))
    assert code == 400 and "cannot configure a custom sleep time" in text and "48 hours" in text
    hub.cli("billing", "grant", "alice")
    try:
        api.request_space_hardware(repo_id, "cpu-upgrade")
        assert api.set_space_sleep_time(repo_id, 600).sleep_time == 600
        assert api.set_space_sleep_time(repo_id, -1).sleep_time is None  # never
        headers = {"authorization": f"Bearer {api.token}"}
        for bad in (0, -2, 10**9, 1.5, "abc", True, None, [60]):
            r = httpx.post(f"{hub.url}/api/spaces/{repo_id}/sleeptime", json={"seconds": bad}, headers=headers)
            assert r.status_code == 400, (bad, r.text)
        assert httpx.post(f"{hub.url}/api/spaces/{repo_id}/sleeptime", content=b"{", headers=headers).status_code == 400
        assert api.set_space_sleep_time(repo_id, 7200).sleep_time == 7200
        assert api.get_space_runtime(repo_id).sleep_time == 7200  # nothing changed by the bad ones
        rt = api.request_space_hardware(repo_id, "cpu-basic")  # free again: back to 48 h
        assert rt.sleep_time == 172800
    finally:
        hub.cli("billing", "revoke", "alice")


def test_permissions(hub: Server, api: HfApi) -> None:
    public, private = new_space(api, "pub"), new_space(api, "priv", private=True)
    bob = HfApi(endpoint=hub.url, token=hub.tokens["bob"])
    assert bob.get_space_runtime(public).requested_hardware == "cpu-basic"  # read access sees the runtime
    assert status_of(lambda: bob.request_space_hardware(public, "cpu-basic"))[0] == 403
    assert status_of(lambda: bob.set_space_sleep_time(public, 3600))[0] == 403
    assert status_of(lambda: bob.get_space_runtime(private))[0] == 404
    assert status_of(lambda: bob.request_space_hardware(private, "cpu-basic"))[0] == 404
    assert status_of(lambda: bob.set_space_sleep_time(private, 3600))[0] == 404
    reader = HfApi(endpoint=hub.url, token=hub.user("alice", role="read"))
    assert status_of(lambda: reader.request_space_hardware(public, "cpu-basic"))[0] == 403
    anon = httpx.post(f"{hub.url}/api/spaces/{public}/hardware", json={"flavor": "cpu-basic"})
    assert anon.status_code == 401


def test_create_and_duplicate_with_hardware_and_sleep_time(hub: Server, api: HfApi) -> None:
    name = f"alice/created-{os.getpid()}-{next(_names)}"
    code, text = status_of(lambda: api.create_repo(name, repo_type="space", space_sdk="gradio",
                                                   space_hardware="cpu-upgrade", space_sleep_time="7200"))  # fmt: skip
    assert code == 402 and "grant" in text
    assert not api.repo_exists(name, repo_type="space")  # nothing was created
    assert status_of(lambda: api.create_repo(name, repo_type="space", space_sdk="gradio",
                                             space_hardware="gpu-9000"))[0] == 400  # fmt: skip
    assert status_of(lambda: api.create_repo(name, repo_type="space", space_sdk="gradio", space_sleep_time=3600))[0] \
        == 400  # a custom sleep time on cpu-basic  # fmt: skip
    assert not api.repo_exists(name, repo_type="space")
    hub.cli("billing", "grant", "alice")
    try:
        api.create_repo(name, repo_type="space", space_sdk="gradio", space_hardware="cpu-upgrade",
                        space_sleep_time="7200")  # the guide's call, sleep time as a string  # fmt: skip
        rt = api.get_space_runtime(name)
        assert (rt.requested_hardware, rt.sleep_time) == ("cpu-upgrade", 7200)
        dup = api.duplicate_repo(name, f"alice/dup-{os.getpid()}-{next(_names)}", repo_type="space",
                                 space_hardware="t4-small", space_sleep_time=3600)  # fmt: skip
        rt = api.get_space_runtime(dup.repo_id)
        assert (rt.requested_hardware, rt.sleep_time) == ("t4-small", 3600)
        plain = api.duplicate_repo(name, f"alice/dup-{os.getpid()}-{next(_names)}", repo_type="space")
        rt = api.get_space_runtime(plain.repo_id)
        assert (rt.requested_hardware, rt.sleep_time) == ("cpu-basic", 172800)  # default hardware, not the source's
    finally:
        hub.cli("billing", "revoke", "alice")


def test_strict_policy_refuses_what_does_not_fit(start_hub) -> None:  # type: ignore[no-untyped-def]
    srv = start_hub({**ENV, "SPACEHUB_RUNTIME__RESOURCE_POLICY": "strict"})
    api = HfApi(endpoint=srv.url, token=srv.user("alice"))
    srv.cli("billing", "grant", "alice")
    repo_id = new_space(api, "strict")
    code, text = status_of(lambda: api.request_space_hardware(repo_id, "cpu-upgrade"))
    assert code == 400 and "does not fit this machine" in text and "strict" in text
    items = {h["name"]: h for h in httpx.get(f"{srv.url}/api/spaces/hardware").json()}
    assert items["cpu-upgrade"]["available"] is False


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
