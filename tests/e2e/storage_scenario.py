"""The guide's persistent storage calls, run by huggingface_hub 1.33.0 (the last client that has them) against a live
SpaceHub whose Spaces run as real processes: tests/e2e/test_storage.py starts it with tiny tiers and runs this script
with the client's own Python. One JSON line per step; the first failing step ends the run (exit 1).

    python storage_scenario.py --endpoint URL --repo alice/x --app-dir DIR --data-dir DIR --tiers JSON [--hardware]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import huggingface_hub
from huggingface_hub import HfApi, SpaceStorage
from huggingface_hub.errors import HfHubHTTPError

TIMEOUT = 240.0
STEPS: list[tuple[str, Callable[[Scenario], Any]]] = []


def step(fn: Callable[[Scenario], Any]) -> Callable[[Scenario], Any]:
    STEPS.append((fn.__name__, fn))
    return fn


class Scenario:
    def __init__(self, args: argparse.Namespace) -> None:
        self.api = HfApi(endpoint=args.endpoint, token=args.token)
        self.repo, self.app_dir, self.tiers = args.repo, Path(args.app_dir), json.loads(args.tiers)
        self.storage_root = Path(args.data_dir) / "storage"
        self.port = args.endpoint.rsplit(":", 1)[1]
        self.endpoint, self.hardware = args.endpoint, args.hardware
        self.boot = ""

    # ---- helpers -------------------------------------------------------------------------------------------------
    def app(self, route: str, **params: Any) -> str:
        host = f"{self.api.space_info(self.repo).subdomain}.localhost:{self.port}"
        r = httpx.get(self.endpoint + route, params=params, headers={"host": host}, timeout=60)
        assert r.status_code == 200, (r.status_code, r.text[:300])
        return r.text

    def restarted(self, what: str, until: Callable[[Any], bool] = lambda rt: True) -> Any:
        """Wait until a new instance of the app serves (another start) and the runtime is RUNNING and ``until``."""
        deadline = time.monotonic() + TIMEOUT
        rt = None
        while time.monotonic() < deadline:
            rt = self.api.get_space_runtime(self.repo)
            if rt.stage == "RUNNING" and until(rt):
                try:
                    boot = self.app("/")
                except (AssertionError, httpx.HTTPError):
                    boot = self.boot
                if boot != self.boot:
                    self.boot = boot
                    return rt
            time.sleep(0.3)
        raise AssertionError(f"{what}: the app did not restart; last runtime {rt.raw if rt else None}")

    def images(self) -> list[str]:
        return sorted(p.name for p in self.storage_root.glob("*.img")) if self.storage_root.exists() else []


# ---- the steps --------------------------------------------------------------------------------------------------
@step
def create_with_storage(sc: Scenario) -> None:
    sc.api.create_repo(sc.repo, repo_type="space", space_sdk="gradio", space_storage=SpaceStorage.SMALL)
    sc.api.upload_folder(repo_id=sc.repo, repo_type="space", folder_path=sc.app_dir)
    rt = sc.restarted("first start")
    assert rt.storage == "small", rt.raw
    assert sc.app("/env", name="SPACE_DATA_DIR") == "/data"
    assert sc.app("/env", name="HF_HOME") == "/data/.huggingface"
    assert sc.app("/write", path="/data/hello.txt", text="persisted") == "ok"
    assert sc.app("/write", path="/data/.huggingface/hub/cached.txt", text="model") == "ok"
    assert len(sc.images()) == 1, sc.images()


@step
def restart_keeps_data(sc: Scenario) -> None:
    sc.api.restart_space(sc.repo)
    sc.restarted("restart_space")
    assert sc.app("/read", path="/data/hello.txt") == "persisted"


@step
def factory_reboot_keeps_data(sc: Scenario) -> None:
    sc.api.restart_space(sc.repo, factory_reboot=True)
    sc.restarted("factory reboot")
    assert sc.app("/read", path="/data/hello.txt") == "persisted"
    assert sc.app("/read", path="/data/.huggingface/hub/cached.txt") == "model"


@step
def hardware_change_keeps_data(sc: Scenario) -> None:
    if not sc.hardware:
        print(json.dumps({"step": "hardware_change_keeps_data", "note": "no paid hardware for alice: skipped"}))
        return
    sc.api.request_space_hardware(sc.repo, "cpu-upgrade")
    sc.restarted("cpu-upgrade", until=lambda rt: rt.hardware == "cpu-upgrade")
    assert sc.app("/read", path="/data/hello.txt") == "persisted"
    sc.api.request_space_hardware(sc.repo, "cpu-basic")
    sc.restarted("cpu-basic", until=lambda rt: rt.hardware == "cpu-basic")
    assert sc.app("/read", path="/data/hello.txt") == "persisted"


@step
def the_size_is_enforced_and_shown(sc: Scenario) -> None:
    small = sc.tiers["small"]
    answer = sc.app("/write", path="/data/big.bin", size=small + 2**20)
    assert answer.startswith("error ENOSPC"), answer
    assert sc.app("/write", path="/data/big.bin", size=small // 4) == "ok"
    deadline = time.monotonic() + 30
    while True:
        usage = sc.api.get_space_runtime(sc.repo).raw.get("storageUsage") or {}
        if (usage.get("used") or 0) >= small // 4:
            break
        assert time.monotonic() < deadline, usage
        time.sleep(0.5)
    assert usage["limit"] == small and "ext4 image" in usage["enforcement"], usage


@step
def upgrade_grows_the_storage(sc: Scenario) -> None:
    rt = sc.api.request_space_storage(sc.repo, SpaceStorage.MEDIUM)
    assert rt.storage == "medium", rt.raw
    sc.restarted("upgrade", until=lambda rt: rt.storage == "medium")
    assert sc.app("/read", path="/data/hello.txt") == "persisted"
    answer = sc.app("/write", path="/data/bigger.bin", size=sc.tiers["small"])  # did not fit before
    launches = [
        json.loads(p.read_text()).get("storage") for p in sc.storage_root.parent.glob("runtime/instances/*/launch.json")
    ]
    sizes = [p.stat().st_size for p in sc.storage_root.glob("*.img")]
    assert answer == "ok", (answer, sc.api.get_space_runtime(sc.repo).raw, sizes, launches)


@step
def a_smaller_tier_is_refused(sc: Scenario) -> None:
    try:
        sc.api.request_space_storage(sc.repo, SpaceStorage.SMALL)
    except HfHubHTTPError as e:
        assert e.response.status_code == 400 and "delete the storage first" in str(e), e
    else:
        raise AssertionError("a smaller tier was accepted")
    assert sc.api.get_space_runtime(sc.repo).storage == "medium"


@step
def delete_storage_deletes_the_data(sc: Scenario) -> None:
    rt = sc.api.delete_space_storage(sc.repo)
    assert rt.storage is None, rt.raw
    sc.restarted("delete_space_storage")
    assert sc.app("/read", path="/data/hello.txt") == "<missing>"
    assert sc.app("/env", name="SPACE_DATA_DIR") == "<unset>"
    deadline = time.monotonic() + 30
    while sc.images():
        assert time.monotonic() < deadline, f"the image is still there: {sc.images()}"
        time.sleep(0.3)
    assert not sc.storage_root.exists() or not [p for p in sc.storage_root.iterdir() if not p.name.startswith(".")]


@step
def storage_again_starts_empty(sc: Scenario) -> None:
    sc.api.request_space_storage(sc.repo, "small")
    sc.restarted("storage again", until=lambda rt: rt.storage == "small")
    assert sc.app("/read", path="/data/hello.txt") == "<missing>"
    assert json.loads(sc.app("/ls", path="/data")) == ["lost+found"]


@step
def delete_repo_deletes_its_storage(sc: Scenario) -> None:
    assert len(sc.images()) == 1, sc.images()
    sc.api.delete_repo(sc.repo, repo_type="space")
    deadline = time.monotonic() + 30
    while sc.images():
        assert time.monotonic() < deadline, f"the image is still there: {sc.images()}"
        time.sleep(0.3)


def main() -> int:
    parser = argparse.ArgumentParser()
    for arg in ("--endpoint", "--token", "--repo", "--app-dir", "--data-dir", "--tiers"):
        parser.add_argument(arg, required=True)
    parser.add_argument("--hardware", action="store_true", help="alice may use paid hardware: change it too")
    args = parser.parse_args()
    print(json.dumps({"step": "start", "version": huggingface_hub.__version__}), flush=True)
    sc = Scenario(args)
    for name, fn in STEPS:
        started = time.monotonic()
        try:
            fn(sc)
        except Exception as e:
            traceback.print_exc()
            print(json.dumps({"step": name, "status": "fail", "error": repr(e)[:2000]}), flush=True)
            return 1
        print(json.dumps({"step": name, "status": "ok", "seconds": round(time.monotonic() - started, 1)}), flush=True)
    print(json.dumps({"step": "done", "status": "ok"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
