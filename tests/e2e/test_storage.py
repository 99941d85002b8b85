"""Persistent storage and volumes with real apps behind the proxy: the guide's storage calls with client 1.33.0
(tests/e2e/storage_scenario.py: data survives restarts, factory reboots and hardware changes; the tier's size is
enforced; upgrades grow it; no downgrade; deletion is for good), volumes with client 2.4.0, and the monitor that
enforces tiers where images cannot be used. Tiers are tiny here (runtime.storage_tiers) so limits are reached fast."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi, Volume

from tests.compat.test_versions import client_python
from tests.conftest import start_server
from tests.e2e.conftest import EXAMPLES, Hub, runtime_env, stop_hub

pytestmark = pytest.mark.slow

MIB = 2**20
TIERS = {"small": 32 * MIB, "medium": 64 * MIB, "large": 128 * MIB}
APP = Path(__file__).with_name("storage_app.py").read_text()
SCENARIO = Path(__file__).with_name("storage_scenario.py")
RUN_TIMEOUT = 180  # a first build installs gradio (the app is an sdk: gradio Space)


def start(tmp: Path, uv_cache: Path, **extra: str) -> Hub:
    env = runtime_env(uv_cache, SPACEHUB_RUNTIME__STORAGE_TIERS=json.dumps(TIERS),
                      SPACEHUB_RUNTIME__STORAGE_CHECK_INTERVAL="1", **extra)  # fmt: skip
    server = start_server(tmp / "data", env=env)
    alice = server.user("alice")
    return Hub(server, alice, HfApi(endpoint=server.url, token=alice))


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, uv_cache: Path) -> Iterator[Hub]:
    if os.geteuid() != 0:
        pytest.skip("the storage images and the app's /data need root (mount namespaces, loop devices)")
    h = start(tmp_path_factory.mktemp("storage"), uv_cache)
    yield h
    stop_hub(h)  # unmounts what is left


def app_folder(tmp: Path) -> Path:
    folder = tmp / f"app-{time.monotonic_ns()}"
    shutil.copytree(EXAMPLES / "python-http", folder)
    (folder / "app.py").write_text(APP)
    return folder


def may_use_paid_hardware(hub: Hub, owner: str) -> bool:
    """Give ``owner`` a billing grant with the admin CLI (the hardware change needs paid hardware)."""
    try:
        hub.server.cli("billing", "grant", owner)
    except subprocess.CalledProcessError as e:
        print(f"no billing grant CLI: {e.stderr}")
        return False
    return True


class App:
    """The storage app of one Space, reached through the proxy."""

    def __init__(self, hub: Hub, repo_id: str) -> None:
        self.hub, self.repo_id = hub, repo_id

    def __call__(self, route: str, **params: Any) -> str:
        r = self.hub.get(self.repo_id, route, params=params)
        assert r.status_code == 200, (r.status_code, r.text[:300])
        return r.text

    def restarted(self, boot: str, timeout: float = 60.0) -> str:
        """Wait until another instance serves; answers its start line."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.hub.runtime(self.repo_id).stage == "RUNNING":
                try:
                    now = self("/")
                except (AssertionError, httpx.HTTPError):
                    now = boot
                if now != boot:
                    return now
            time.sleep(0.2)
        raise AssertionError(f"{self.repo_id} did not restart\n" + self.hub.report(self.repo_id))


def test_the_guides_storage_calls_with_client_1_33(hub: Hub, tmp_path: Path) -> None:
    python = client_python("1.33.0")
    hardware = may_use_paid_hardware(hub, "alice")
    repo_id = hub.name("storage")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "PYTHON", "VIRTUAL_ENV"))}
    cmd = [str(python), str(SCENARIO), "--endpoint", hub.url, "--token", hub.alice, "--repo", repo_id,
           "--app-dir", str(app_folder(tmp_path)), "--data-dir", str(hub.server.data_dir), "--tiers", json.dumps(TIERS),
           *(["--hardware"] if hardware else [])]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    report = proc.stdout[-4000:] + "\n--- stderr ---\n" + proc.stderr[-4000:]
    assert proc.returncode == 0, f"{report}\n{hub.report(repo_id)}"
    assert lines[0] == {"step": "start", "version": "1.33.0"}, report
    steps = [line["step"] for line in lines if line.get("status") == "ok"]
    assert steps[-1] == "done" and len(steps) == 11, report
    print("\n".join(json.dumps(line) for line in lines))  # seconds per step, in the test's output


@pytest.fixture
def sources(hub: Hub) -> dict[str, str]:
    """alice's private model and public dataset."""
    model, dataset = hub.name("vol-model"), hub.name("vol-data")
    hub.api.create_repo(model, private=True)
    hub.api.upload_file(path_or_fileobj=b'{"v": 1}', path_in_repo="config.json", repo_id=model)
    hub.api.create_repo(dataset, repo_type="dataset")
    hub.api.upload_file(path_or_fileobj=b"a,b\n", path_in_repo="train/data.csv", repo_id=dataset, repo_type="dataset")
    return {"model": model, "dataset": dataset}


def test_volumes_with_client_2_4(hub: Hub, tmp_path: Path, sources: dict[str, str]) -> None:
    repo_id = hub.name("volumes")
    hub.upload(repo_id, "python-http", tmp_path, files={"app.py": APP})
    hub.wait(repo_id, "RUNNING", RUN_TIMEOUT)
    app = App(hub, repo_id)
    boot = app.restarted("")
    hub.api.set_space_volumes(repo_id, [
        Volume(type="model", source=sources["model"], mount_path="/models/m"),
        Volume(type="dataset", source=sources["dataset"], mount_path="/datasets/d", path="train"),
    ])  # fmt: skip
    boot = app.restarted(boot)
    assert app("/read", path="/models/m/config.json") == '{"v": 1}'
    assert json.loads(app("/ls", path="/datasets/d")) == ["data.csv"]
    assert app("/write", path="/models/m/x", text="no").startswith("error EROFS")
    rt = hub.runtime(repo_id)
    assert [(v.source, v.mount_path, v.read_only) for v in rt.volumes] == [
        (sources["model"], "/models/m", True), (sources["dataset"], "/datasets/d", True),
    ]  # fmt: skip
    bob = HfApi(endpoint=hub.url, token=hub.server.user("bob"))
    assert [v.source for v in bob.get_space_runtime(repo_id).volumes] == ["****/******", sources["dataset"]]
    # a commit to a source reaches the app at its next restart, not before
    hub.api.upload_file(path_or_fileobj=b'{"v": 2}', path_in_repo="config.json", repo_id=sources["model"])
    time.sleep(1.5)
    assert app("/") == boot and app("/read", path="/models/m/config.json") == '{"v": 1}'
    hub.api.restart_space(repo_id)
    boot = app.restarted(boot)
    assert app("/read", path="/models/m/config.json") == '{"v": 2}'
    hub.api.delete_space_volumes(repo_id)
    app.restarted(boot)
    assert app("/read", path="/models/m/config.json") == "<missing>"
    assert hub.runtime(repo_id).volumes is None


def test_the_monitor_stops_a_space_over_its_tier_where_images_are_not_used(tmp_path: Path, uv_cache: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the app's /data needs root (mount namespaces)")
    mon = start(tmp_path, uv_cache, SPACEHUB_RUNTIME__STORAGE_ENFORCEMENT="monitor")
    try:
        repo_id = mon.name("monitor")
        mon.upload(repo_id, "python-http", tmp_path, files={"app.py": APP})
        mon.wait(repo_id, "RUNNING", RUN_TIMEOUT)
        app = App(mon, repo_id)
        boot = app.restarted("")
        r = httpx.post(f"{mon.url}/api/spaces/{repo_id}/storage", json={"tier": "small"},
                       headers={"authorization": f"Bearer {mon.alice}"})  # fmt: skip
        assert r.status_code == 200, r.text
        app.restarted(boot)
        assert app("/write", path="/data/ok.bin", size=TIERS["small"] // 2) == "ok"
        usage = mon.wait(repo_id, "RUNNING", 20, until=lambda rt: (rt.raw["storageUsage"]["used"] or 0) > 0).raw
        assert "usage monitor" in usage["storageUsage"]["enforcement"], usage
        assert app("/write", path="/data/over.bin", size=TIERS["small"]) == "ok"  # a folder takes it...
        rt = mon.wait(repo_id, "PAUSED", 20)  # ...and the monitor stops the Space
        assert "more than its tier" in rt.raw["errorMessage"], rt.raw
        assert mon.get(repo_id).status_code != 200
        r = httpx.delete(f"{mon.url}/api/spaces/{repo_id}/storage", headers={"authorization": f"Bearer {mon.alice}"})
        assert r.status_code == 200  # (clients 2.x have no storage calls)
        assert r.status_code == 200
        mon.api.restart_space(repo_id)
        mon.wait(repo_id, "RUNNING", 60)
        assert app("/read", path="/data/ok.bin") == "<missing>"
        storage = mon.server.data_dir / "storage"
        assert not [p for p in storage.iterdir() if not p.name.startswith(".")]
    finally:
        stop_hub(mon)
