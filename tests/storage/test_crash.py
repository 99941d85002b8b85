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


def test_commit_folders_a_crash_left_are_removed_at_start(tmp_path: Path) -> None:
    """A server killed while it works in a commit's temporary folder (settings.tmp_dir/commit-*) leaves it behind;
    the next start removes it, and the server takes commits again."""
    data = tmp_path / "data"
    tmp = data / "tmp"
    srv = start_server(data)
    token = srv.user("alice")
    auth = {"authorization": f"Bearer {token}", "content-type": "application/x-ndjson"}
    assert httpx.post(f"{srv.url}/api/repos/create", json={"name": "crash"}, headers=auth).status_code == 200
    body = big_commit(N_FILES, "folders")
    left: list[Path] = []
    for _ in range(5):  # the kill lands while the folder exists unless the commit finished first: then again
        url = f"{srv.url}/api/models/alice/crash/commit/main"
        t = threading.Thread(target=lambda u=url: _post_until_killed(u, body, auth))
        t.start()
        while t.is_alive() and not list(tmp.glob("commit-*/.lock")):  # the commit works in its folder
            time.sleep(0.002)
        os.kill(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait()
        t.join()
        left = list(tmp.glob("commit-*"))
        if left:
            break
        srv = start_server(data)
    assert left, "the server was never killed while a commit folder existed"

    again = start_server(data)
    try:
        assert not list(tmp.glob("commit-*"))
        assert "removed 1 temporary commit folder(s) left by a crash" in again.log.read_text()
        r = httpx.post(f"{again.url}/api/models/alice/crash/commit/main", content=big_commit(2, "after"), headers=auth)
        assert r.status_code == 200, r.text
        assert not list(tmp.glob("commit-*"))  # a finished commit leaves none either
    finally:
        stop_server(again)


def _post_until_killed(url: str, body: bytes, headers: dict[str, str]) -> None:
    with contextlib.suppress(httpx.HTTPError):  # the server dies under it
        httpx.post(url, content=body, headers=headers, timeout=60)
