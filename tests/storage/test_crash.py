"""A server killed (SIGKILL) in the middle of commits leaves every repo at a whole commit, and `git fsck` clean."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi
from tests.conftest import start_server, stop_server

pytestmark = pytest.mark.slow


def big_commit(n_files: int, tag: str) -> bytes:
    lines = [json.dumps({"key": "header", "value": {"summary": f"bulk {tag}", "description": ""}})]
    for i in range(n_files):
        data = base64.b64encode(os.urandom(8192)).decode()
        lines.append(json.dumps({"key": "file", "value": {"path": f"d{i % 20}/f{i}.bin", "content": data,
                                                          "encoding": "base64"}}))  # fmt: skip
    return ("\n".join(lines) + "\n").encode()


N_FILES = 2000


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.8, 1.3])
def test_kill_during_commit_leaves_previous_or_next_commit_and_fsck_clean(tmp_path: Path, fraction: float):
    data = tmp_path / "data"
    srv = start_server(data)
    token = srv.user("alice")
    auth = {"authorization": f"Bearer {token}"}
    for name in ("timing", "crash"):
        assert httpx.post(f"{srv.url}/api/repos/create", json={"name": name}, headers=auth).status_code == 200
    before = httpx.get(f"{srv.url}/api/models/alice/crash", headers=auth).json()["sha"]
    body = big_commit(N_FILES, str(fraction))
    started = time.monotonic()  # how long this commit takes here, to kill at a fraction of it
    r = httpx.post(f"{srv.url}/api/models/alice/timing/commit/main", content=body,
                   headers={**auth, "content-type": "application/x-ndjson"}, timeout=120)  # fmt: skip
    assert r.status_code == 200
    delay = (time.monotonic() - started) * fraction
    print(f"commit of {N_FILES} files took {delay / fraction:.2f}s;", end=" ")

    def send() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the server dies under it
            httpx.post(
                f"{srv.url}/api/models/alice/crash/commit/main",
                content=body,
                headers={**auth, "content-type": "application/x-ndjson"},
                timeout=60,
            )

    t = threading.Thread(target=send)
    t.start()
    time.sleep(delay)
    os.kill(srv.proc.pid, signal.SIGKILL)
    srv.proc.wait()
    t.join()

    again = start_server(data)
    try:
        info = httpx.get(f"{again.url}/api/models/alice/crash", headers=auth)
        assert info.status_code == 200
        sha = info.json()["sha"]
        print("kept previous commit" if sha == before else "commit completed", fraction)
        files = HfApi(endpoint=again.url, token=token).list_repo_files("alice/crash")
        if sha == before:
            assert files == [".gitattributes"]
        else:
            assert len(files) == N_FILES + 1  # all of the commit, never a part
        repo_dir = data / "repos" / f"{info.json()['_id']}.git"
        fsck = subprocess.run(["git", "fsck", "--full", "--strict"], cwd=repo_dir, capture_output=True, text=True)
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
        assert "error" not in fsck.stderr.lower() and "missing" not in fsck.stdout.lower()
        # the repo still takes commits
        r = httpx.post(
            f"{again.url}/api/models/alice/crash/commit/main",
            content=big_commit(2, "after"),
            headers={**auth, "content-type": "application/x-ndjson"},
        )
        assert r.status_code == 200, r.text
    finally:
        stop_server(again)
