"""The hardware and sleep calls of the "Manage your Space" guide, run by an older huggingface_hub client (1.33.0) in
its own virtual environment against a live SpaceHub (tests/api/test_hardware.py starts it, with one declared T4 and
a billing grant for alice).

Prints one JSON line per step and exits 1 at the first failure. Standard library and huggingface_hub only.

    python hardware_scenario.py --endpoint URL --prefix P      # tokens: SCENARIO_TOKEN (alice), SCENARIO_BOB_TOKEN
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
import warnings
from typing import Any


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--prefix", required=True)
    args = ap.parse_args()
    import huggingface_hub
    from huggingface_hub import HfApi, SpaceHardware
    from huggingface_hub.utils import HfHubHTTPError

    print(json.dumps({"step": "start", "version": huggingface_hub.__version__}), flush=True)
    api = HfApi(endpoint=args.endpoint, token=os.environ["SCENARIO_TOKEN"])
    bob = HfApi(endpoint=args.endpoint, token=os.environ["SCENARIO_BOB_TOKEN"])
    repo_id = f"alice/{args.prefix}-guide"

    def code(call: Any) -> int:
        try:
            call()
        except HfHubHTTPError as e:
            return e.response.status_code
        raise AssertionError("no error")

    def wait(check: Any, timeout: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            rt = api.get_space_runtime(repo_id)
            if check(rt):
                return rt
            assert time.monotonic() < deadline, rt.raw
            time.sleep(0.1)

    def catalog() -> dict[str, Any]:
        names = [h.name for h in api.list_spaces_hardware()]
        assert "t4-medium" in names and "cpu-basic" in names, names
        return {"flavors": len(names)}

    def create() -> None:
        api.create_repo(repo_id=repo_id, repo_type="space", space_sdk="gradio", space_hardware="cpu-upgrade",
                        space_sleep_time="7200")  # fmt: skip
        rt = api.get_space_runtime(repo_id)
        assert (rt.requested_hardware, rt.sleep_time) == ("cpu-upgrade", 7200), rt.raw
        readme = b"---\ntitle: guide\nsdk: gradio\napp_file: app.py\n---\n"
        api.upload_file(path_or_fileobj=readme, path_in_repo="README.md", repo_id=repo_id, repo_type="space")
        api.upload_file(path_or_fileobj=b"print(1)\n", path_in_repo="app.py", repo_id=repo_id, repo_type="space")

    def request_hardware() -> None:
        rt = api.request_space_hardware(repo_id=repo_id, hardware=SpaceHardware.T4_MEDIUM)
        assert rt.requested_hardware == "t4-medium", rt.raw
        rt = wait(lambda rt: rt.hardware == "t4-medium" and rt.stage == "RUNNING")
        assert rt.requested_hardware == "t4-medium"
        rt = api.request_space_hardware(repo_id=repo_id, hardware="t4-medium", sleep_time=3600)
        assert rt.sleep_time == 3600, rt.raw

    def set_sleep_time() -> None:
        assert api.set_space_sleep_time(repo_id=repo_id, sleep_time=600).sleep_time == 600
        assert api.set_space_sleep_time(repo_id=repo_id, sleep_time=-1).sleep_time is None

    def errors() -> None:
        assert code(lambda: api.request_space_hardware(repo_id, "gpu-9000")) == 400
        assert code(lambda: api.set_space_sleep_time(repo_id, 0)) == 400
        assert code(lambda: bob.request_space_hardware(repo_id, "cpu-basic")) == 403
        api.request_space_hardware(repo_id=repo_id, hardware=SpaceHardware.CPU_BASIC)  # the guide: downgrade after
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            api.set_space_sleep_time(repo_id, 3600)  # cpu-basic: accepted, 48 h kept (the client warns)
        rt = wait(lambda rt: rt.hardware == "cpu-basic")
        assert rt.sleep_time == 172800, rt.raw

    def duplicate() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # duplicate_space is deprecated in 1.x
            url = api.duplicate_space(from_id=repo_id, to_id=f"alice/{args.prefix}-dup", hardware="cpu-upgrade",
                                      sleep_time="7200")  # fmt: skip
        rt = api.get_space_runtime(url.repo_id)
        assert (rt.requested_hardware, rt.sleep_time) == ("cpu-upgrade", 7200), rt.raw

    for step in (catalog, create, request_hardware, set_sleep_time, errors, duplicate):
        try:
            extra = step() or {}
        except Exception as e:
            print(json.dumps({"step": step.__name__, "status": "failed", "error": repr(e)}), flush=True)
            traceback.print_exc()
            return 1
        print(json.dumps({"step": step.__name__, "status": "ok", **extra}), flush=True)
    print(json.dumps({"step": "done", "status": "ok"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
