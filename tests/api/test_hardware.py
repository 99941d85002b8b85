"""Hardware, sleep time, paid hardware and usage with the real huggingface_hub client (the test venv's, 2.4.0)
against the Hub app in-process (tests/inprocess.py), on a machine said to hold one T4: catalog, requests,
400/402/403/404, sleep times, create/duplicate settings, the strict policy. No runtime is needed for what is
answered here; test_hardware_runtime.py runs the FakeBackend runtime behind a live server (the GPU that one Space
gets and another waits for, metering, client 1.33), tests/e2e/ real processes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from huggingface_hub import HfApi, SpaceHardware
from huggingface_hub.errors import HfHubHTTPError

from tests.inprocess import InProcessHub, start_inprocess_hub, stop_inprocess_hub

T4 = [{"id": "0", "model": "Tesla T4", "memory_gb": 16}]
RUNTIME = {"devices": T4}
README = "---\ntitle: hw\nsdk: gradio\napp_file: app.py\n---\n"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessHub]:
    h = start_inprocess_hub(tmp_path_factory.mktemp("hw") / "data", {"runtime": RUNTIME})
    h.user("alice")
    h.user("bob")
    yield h
    stop_inprocess_hub(h)


@pytest.fixture
def api(hub: InProcessHub) -> HfApi:
    return hub.api(hub.tokens["alice"])


_names = iter(range(10**6))


def new_space(api: HfApi, prefix: str, private: bool = False, **kw: Any) -> str:
    repo_id = f"alice/{prefix}-{os.getpid()}-{next(_names)}"
    api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, **kw)
    api.upload_file(path_or_fileobj=README.encode(), path_in_repo="README.md", repo_id=repo_id, repo_type="space")
    api.upload_file(path_or_fileobj=b"print('hi')\n", path_in_repo="app.py", repo_id=repo_id, repo_type="space")
    return repo_id


def status_of(call) -> tuple[int, str]:
    with pytest.raises(HfHubHTTPError) as e:
        call()
    return e.value.response.status_code, e.value.response.text


def test_list_spaces_hardware(hub: InProcessHub, api: HfApi) -> None:
    items = {h.name: h for h in api.list_spaces_hardware()}
    assert {"cpu-basic", "cpu-upgrade", "t4-small", "t4-medium", "a10g-large", "a100-large"} <= set(items)
    basic, t4 = items["cpu-basic"], items["t4-medium"]
    want = ("2 vCPU", "16 GB", 0, "minute", None)
    assert (basic.cpu, basic.ram, basic.unit_cost_usd, basic.unit_label, basic.accelerator) == want
    assert t4.accelerator is not None and (t4.accelerator.model, t4.accelerator.quantity) == ("T4", "1")
    assert t4.unit_cost_micro_usd == 10_000  # $0.60/h
    raw = {h["name"]: h for h in hub.http.get(f"{api.endpoint}/api/spaces/hardware").json()}  # no token needed
    assert raw["t4-medium"]["available"] is True
    assert raw["a10g-small"]["available"] is False and "this machine has 0" in raw["a10g-small"]["note"]
    assert "capped" in raw["cpu-upgrade"]["note"]


def test_unknown_and_impossible_flavors_are_400_and_change_nothing(hub: InProcessHub, api: HfApi) -> None:
    repo_id = new_space(api, "bad")
    code, text = status_of(lambda: api.request_space_hardware(repo_id, "gpu-9000"))
    assert code == 400 and "Unknown hardware flavor 'gpu-9000'" in text and "t4-medium" in text
    code, text = status_of(lambda: api.request_space_hardware(repo_id, SpaceHardware.A10G_SMALL))
    assert code == 400 and "cannot run on this machine" in text
    for body in ({}, {"flavor": 3}, {"flavor": "cpu-basic", "sleepTimeSeconds": "soon"}, [1]):
        r = hub.http.post(f"{api.endpoint}/api/spaces/{repo_id}/hardware", json=body,
                       headers={"authorization": f"Bearer {api.token}"})  # fmt: skip
        assert r.status_code == 400, (body, r.text)
    rt = api.get_space_runtime(repo_id)
    assert rt.requested_hardware == "cpu-basic" and rt.sleep_time == 172800


def test_sleep_time_rules(hub: InProcessHub, api: HfApi) -> None:
    repo_id = new_space(api, "sleep")
    with pytest.warns(UserWarning, match="48 hours"):  # accepted as on the Hub, and the client warns its user
        rt = api.set_space_sleep_time(repo_id, 3600)
    assert rt.sleep_time == 172800 and api.get_space_runtime(repo_id).sleep_time == 172800  # the rule holds
    hub.cli("billing", "grant", "alice")
    try:
        api.request_space_hardware(repo_id, "cpu-upgrade")
        assert api.set_space_sleep_time(repo_id, 600).sleep_time == 600
        assert api.set_space_sleep_time(repo_id, -1).sleep_time is None  # never
        headers = {"authorization": f"Bearer {api.token}"}
        for bad in (0, -2, 10**9, 1.5, "abc", True, None, [60]):
            r = hub.http.post(f"{hub.url}/api/spaces/{repo_id}/sleeptime", json={"seconds": bad}, headers=headers)
            assert r.status_code == 400, (bad, r.text)
        assert (
            hub.http.post(f"{hub.url}/api/spaces/{repo_id}/sleeptime", content=b"{", headers=headers).status_code == 400
        )
        assert api.set_space_sleep_time(repo_id, 7200).sleep_time == 7200
        assert api.get_space_runtime(repo_id).sleep_time == 7200  # nothing changed by the bad ones
        rt = api.request_space_hardware(repo_id, "cpu-basic")  # free again: back to 48 h
        assert rt.sleep_time == 172800
    finally:
        hub.cli("billing", "revoke", "alice")


def test_permissions(hub: InProcessHub, api: HfApi) -> None:
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
    anon = hub.http.post(f"{hub.url}/api/spaces/{public}/hardware", json={"flavor": "cpu-basic"})
    assert anon.status_code == 401


def test_create_and_duplicate_with_hardware_and_sleep_time(hub: InProcessHub, api: HfApi) -> None:
    name = f"alice/created-{os.getpid()}-{next(_names)}"
    code, text = status_of(lambda: api.create_repo(name, repo_type="space", space_sdk="gradio",
                                                   space_hardware="cpu-upgrade", space_sleep_time="7200"))  # fmt: skip
    assert code == 402 and "grant" in text
    assert not api.repo_exists(name, repo_type="space")  # nothing was created
    assert status_of(lambda: api.create_repo(name, repo_type="space", space_sdk="gradio",
                                             space_hardware="gpu-9000"))[0] == 400  # fmt: skip
    assert not api.repo_exists(name, repo_type="space")
    free = f"{name}-free"  # a custom sleep time on cpu-basic: accepted, the 48 h rule kept
    api.create_repo(free, repo_type="space", space_sdk="gradio", space_sleep_time=3600)
    assert api.get_space_runtime(free).sleep_time == 172800
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


def test_strict_policy_refuses_what_does_not_fit(make_hub: Callable[..., InProcessHub]) -> None:
    srv = make_hub(runtime={**RUNTIME, "resource_policy": "strict"})
    api = srv.api(srv.user("alice"))
    srv.cli("billing", "grant", "alice")
    repo_id = new_space(api, "strict")
    code, text = status_of(lambda: api.request_space_hardware(repo_id, "cpu-upgrade"))
    assert code == 400 and "does not fit this machine" in text and "strict" in text
    items = {h["name"]: h for h in srv.http.get(f"{srv.url}/api/spaces/hardware").json()}
    assert items["cpu-upgrade"]["available"] is False
