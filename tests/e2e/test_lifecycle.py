"""A Space's life with real processes behind the proxy, driven with the real huggingface_hub client: new commits
without a gap, build errors that keep the old version serving, crashes, private Spaces, logs, pause and restart, and
honest stages for broken configurations. Mostly the python-http example (no package, starts at once)."""

from __future__ import annotations

import datetime as dt
import itertools
import queue
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi

from tests.e2e.conftest import EXAMPLES, INTERMEDIATE, Hub

pytestmark = pytest.mark.slow

RUN_TIMEOUT = 180  # a first build installs gradio (the python-http example is an sdk: gradio Space)
V1, V2 = "python-http-v1", "python-http-v2"


def running(hub: Hub, tmp_path: Path, prefix: str, **kw: object) -> str:
    """A python-http Space, RUNNING and serving its page through the proxy."""
    repo_id = hub.name(prefix)
    hub.upload(repo_id, "python-http", tmp_path, **kw)  # type: ignore[arg-type]
    hub.wait(repo_id, "RUNNING", RUN_TIMEOUT)
    return repo_id


def test_logs_run_build_and_follow(hub: Hub, tmp_path: Path) -> None:
    repo_id = running(hub, tmp_path, "logs")
    hub.serves(repo_id, V1)
    run = list(hub.api.fetch_space_logs(repo_id))
    assert any(f"{V1} listening on" in line for line in run), run
    assert any("===== Application Startup at" in line for line in run), run
    assert any(f"{V1} served GET /" in line for line in run), run
    build = list(hub.api.fetch_space_logs(repo_id, build=True))
    assert any("Checking out" in line for line in build), build
    assert any("===== build done =====" in line for line in build), build

    # follow=True: a line printed after the call started reaches the caller
    lines: queue.Queue[str] = queue.Queue()
    marker = f"/followed-{time.monotonic_ns()}"

    def follow() -> None:
        for line in HfApi(endpoint=hub.url, token=hub.alice).fetch_space_logs(repo_id, follow=True):
            lines.put(line)
            if marker in line:
                return

    threading.Thread(target=follow, daemon=True).start()
    lines.get(timeout=20)  # the replay has started: the call is under way
    assert hub.get(repo_id, marker).status_code == 200
    deadline = time.monotonic() + 20
    while True:
        line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        if f"served GET {marker}" in line:
            break

    # the logs need write access: another user cannot read them
    bob = hub.server.user("bob")
    r = httpx.get(f"{hub.url}/api/spaces/{repo_id}/logs/run", headers={"authorization": f"Bearer {bob}"})
    assert r.status_code in (403, 404)


def test_a_new_commit_is_served_without_a_gap(hub: Hub, tmp_path: Path) -> None:
    repo_id = running(hub, tmp_path, "zero-downtime")
    hub.serves(repo_id, V1)
    host = hub.host(repo_id)
    results: list[tuple[int, str]] = []
    stop = threading.Event()

    def load() -> None:  # 20 requests per second, 90 s at most
        with httpx.Client(base_url=hub.url, headers={"host": host}, timeout=10) as c:
            for _ in range(1800):
                if stop.is_set():
                    return
                started = time.monotonic()
                try:
                    r = c.get("/")
                    m = re.search(r"python-http-v\d", r.text)
                    results.append((r.status_code, m.group(0) if m else r.text[:200]))
                except httpx.HTTPError as e:
                    results.append((0, repr(e)))
                time.sleep(max(0.0, 0.05 - (time.monotonic() - started)))

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        time.sleep(0.5)
        # v2 waits 2 s before it listens: the old release serves all along
        v2 = ('"python-http-v1"\nSTARTUP_DELAY = 0.0', '"python-http-v2"\nSTARTUP_DELAY = 2.0')
        sha = hub.upload(repo_id, "python-http", tmp_path, create=False, replace={"app.py": v2})
        seen: list[str] = []
        deadline = time.monotonic() + 120
        while not (seen and seen[-1] == "RUNNING" and any(m == V2 for _, m in results[-5:])):
            assert time.monotonic() < deadline, f"v2 not served; stages {seen}\n{hub.report(repo_id)}"
            stage = hub.runtime(repo_id).stage
            if not seen or seen[-1] != stage:
                seen.append(stage)
            time.sleep(0.05)
        time.sleep(1)  # a few more requests on v2 alone
    finally:
        stop.set()
        loader.join(10)
    bad = [(i, r) for i, r in enumerate(results) if r[0] != 200]
    assert not bad, f"{len(bad)} of {len(results)} requests failed during the switch: {bad[:10]}"
    served = [m for _, m in results]
    first_v2 = served.index(V2)
    assert set(served[:first_v2]) == {V1} and set(served[first_v2:]) == {V2}, "responses flip-flopped"
    assert "RUNNING_APP_STARTING" in seen, seen
    assert set(seen) <= {"RUNNING", "RUNNING_BUILDING", "RUNNING_APP_STARTING"}, seen
    build = hub.logs(repo_id, "build")
    assert any(f"===== building {sha[:7]}" in line for line in build), build
    assert hub.runtime(repo_id).raw.get("errorMessage") is None


def test_a_build_error_keeps_the_old_version_serving(hub: Hub, tmp_path: Path) -> None:
    repo_id = running(hub, tmp_path, "build-error")
    hub.serves(repo_id, V1)
    hub.upload(repo_id, "python-http", tmp_path, create=False, replace={"app.py": (V1, V2)},
               files={"requirements.txt": "spacehub-no-such-package-4f7a9==1.0\n"})  # fmt: skip
    rt = hub.wait(repo_id, "RUNNING", 120, until=lambda rt: bool(rt.raw.get("errorMessage")))
    message = rt.raw["errorMessage"]
    assert "spacehub-no-such-package-4f7a9" in message, message
    assert "requirements.txt" in message, message
    r = hub.get(repo_id)
    assert r.status_code == 200 and V1 in r.text
    build = list(hub.api.fetch_space_logs(repo_id, build=True))
    text = "".join(build)
    assert "spacehub-no-such-package-4f7a9" in text and "build failed" in text, text[-3000:]
    # the stage stays honest: still RUNNING (the old version) with the reason, never BUILD_ERROR
    time.sleep(1)
    rt = hub.runtime(repo_id)
    assert rt.stage == "RUNNING" and rt.raw.get("errorMessage") == message


def test_a_crashing_app_ends_in_runtime_error_with_its_traceback(hub: Hub, tmp_path: Path) -> None:
    repo_id = hub.name("crash")
    hub.upload(repo_id, "crash", tmp_path)
    seen: list[str] = []
    # restarts with backoff 1+2+4+8+16 s before giving up (plan.MAX_RESTARTS), after the build
    rt = hub.wait(repo_id, "RUNTIME_ERROR", RUN_TIMEOUT + 60, seen=seen)
    message = rt.raw.get("errorMessage") or ""
    assert "Traceback (most recent call last)" in message, message
    assert "RuntimeError: crash-example: cannot load the model from 'model.bin'" in message, message
    assert "exited with code 1" in message, message
    assert set(seen) <= INTERMEDIATE | {"RUNTIME_ERROR"}, seen
    run = hub.logs(repo_id, "run")
    starts = [line for line in run if "===== Application Startup at" in line]
    assert len(starts) == 6, run  # the first start and 5 restarts
    times = [dt.datetime.strptime(line.split(" at ")[1][:19], "%Y-%m-%d %H:%M:%S") for line in starts]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert gaps == sorted(gaps) and gaps[-1] >= 14, gaps  # backoff 1, 2, 4, 8, 16 s (to the second)
    # visitors get an error page, not a hang
    r = hub.get(repo_id)
    assert r.status_code == 503 and "RUNTIME_ERROR" in r.text
    # nothing is restarted any more
    time.sleep(3)
    assert hub.runtime(repo_id).stage == "RUNTIME_ERROR"
    assert len([line for line in hub.logs(repo_id, "run") if "===== Application Startup at" in line]) == 6


def test_a_private_space_is_served_only_to_its_readers(hub: Hub, tmp_path: Path) -> None:
    org = f"acme{time.monotonic_ns() % 10**8}"
    hub.server.cli("orgs", "create", org)
    hub.server.cli("orgs", "add-member", org, "alice", "--role", "admin")
    carol, bob = hub.server.user("carol"), hub.server.user("bob")
    hub.server.cli("orgs", "add-member", org, "carol", "--role", "read")
    repo_id = f"{org}/private-{time.monotonic_ns() % 10**6}"
    hub.upload(repo_id, "python-http", tmp_path, private=True)
    hub.wait(repo_id, "RUNNING", RUN_TIMEOUT)
    assert hub.get(repo_id).status_code == 404
    assert hub.get(repo_id, token=bob).status_code == 404
    assert hub.get(repo_id, token="hf_not_a_token").status_code == 404
    for token in (carol, hub.alice, hub.server.user("alice", role="read")):
        r = hub.get(repo_id, token=token)
        assert r.status_code == 200 and V1 in r.text, (r.status_code, r.text[:200])
    # the same 404 as an unknown Space
    unknown = httpx.get(hub.url + "/", headers={"host": f"nobody-nothing.localhost:{hub.port}"})
    assert unknown.status_code == 404


def test_pause_then_restart(hub: Hub, tmp_path: Path) -> None:
    repo_id = running(hub, tmp_path, "pause")
    boot = hub.serves(repo_id, V1).text.split("<p id='boot'>")[1].split("<")[0]
    assert hub.api.pause_space(repo_id).stage == "PAUSED"
    hub.wait(repo_id, "PAUSED", 30)
    r = hub.answers(repo_id, 503)
    assert "paused" in r.text.lower(), r.text
    page = hub.get(repo_id, headers={"accept": "text/html"})
    assert page.status_code == 503 and "<html" in page.text and "paused" in page.text.lower()
    assert f'href="http://localhost:{hub.port}/spaces/{repo_id}"' in page.text  # its status and logs on the Hub
    assert httpx.get(f"{hub.url}/spaces/{repo_id}").status_code == 200  # where the link leads (the same server)
    hub.api.restart_space(repo_id)
    # wait_for_space right after restart_space waits for the restart, never answers the PAUSED of before
    assert hub.api.wait_for_space(repo_id, timeout=60, poll_interval=0.2).stage == "RUNNING"
    r = hub.serves(repo_id, V1)
    assert f"<p id='boot'>{boot}</p>" not in r.text  # a new process


def test_stages_say_what_is_wrong(hub: Hub, tmp_path: Path) -> None:
    no_app = hub.name("no-app")
    hub.upload(no_app, "python-http", tmp_path, delete=["app.py"], files={"main.py": "print('not the app file')\n"})
    rt = hub.wait(no_app, "NO_APP_FILE", 30)
    assert "app.py" in rt.raw.get("errorMessage", ""), rt.raw
    assert hub.get(no_app).status_code == 503

    # huggingface_hub refuses to upload a README with an unknown sdk (the Hub's validate-yaml answers 400), as
    # on the Hub; git push takes it
    flask = hub.name("flask")
    with pytest.raises(ValueError, match="sdk"):
        hub.upload(flask, "python-http", tmp_path, replace={"README.md": ("sdk: gradio", "sdk: flask")})
    work = tmp_path / "flask-clone"
    url = f"http://alice:{hub.alice}@127.0.0.1:{hub.port}/spaces/{flask}"
    git = ["git", "-c", "user.name=alice", "-c", "user.email=alice@example.com", "-C", str(work)]
    subprocess.run(["git", "clone", "-q", url, str(work)], check=True, capture_output=True)
    shutil.copy(EXAMPLES / "python-http" / "app.py", work / "app.py")
    readme = (EXAMPLES / "python-http" / "README.md").read_text()
    (work / "README.md").write_text(readme.replace("sdk: gradio", "sdk: flask"))
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "flask"], check=True)
    subprocess.run([*git, "push", "-q", "origin", "HEAD:main"], check=True, capture_output=True)
    rt = hub.wait(flask, "CONFIG_ERROR", 30)
    message = rt.raw.get("errorMessage", "")
    assert "unknown sdk 'flask'" in message and "gradio" in message, message
    assert hub.get(flask).status_code == 503
    # fixing the README makes it run; wait_for_space right after the upload never answers the stage of before
    hub.upload(flask, "python-http", tmp_path, create=False)
    rt = hub.api.wait_for_space(flask, timeout=RUN_TIMEOUT, poll_interval=0.2)
    assert rt.stage == "RUNNING", hub.report(flask)
    hub.serves(flask, V1)
