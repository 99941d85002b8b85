"""SpaceHub restarts adopt the apps that kept running, and deleted Spaces leave no process behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi

from tests.conftest import Server
from tests.e2e.conftest import Hub, pid_alive, processes_with, restart_hub

pytestmark = pytest.mark.slow

RUN_TIMEOUT = 180
STARTUP = "===== Application Startup at"


def page_boot(hub: Hub, repo_id: str, marker: str = "python-http-v1") -> str:
    """The random id the app drew when it started (its pid says nothing in a sandbox, where every app is pid 2)."""
    return hub.serves(repo_id, marker).text.split("<p id='boot'>")[1].split("<")[0]


def startups(hub: Hub, repo_id: str) -> list[str]:
    return [line for line in hub.logs(repo_id, "run") if STARTUP in line]


def test_a_restart_of_spacehub_adopts_running_apps(hub: Hub, tmp_path: Path, uv_cache: Path) -> None:
    repo_id = hub.name("adopt")
    hub.upload(repo_id, "python-http", tmp_path)
    hub.wait(repo_id, "RUNNING", RUN_TIMEOUT)
    boot = page_boot(hub, repo_id)
    (inst,) = hub.instances(repo_id)
    pid = inst["pid"]
    assert pid_alive(pid, inst["starttime"])
    assert len(startups(hub, repo_id)) == 1

    restart_hub(hub, uv_cache)
    assert pid_alive(pid, inst["starttime"]), "the app died with SpaceHub"
    hub.wait(repo_id, "RUNNING", 30)
    assert page_boot(hub, repo_id) == boot  # served at once, by the same process
    time.sleep(2.5)  # a periodic pass (every 2 s here) has looked at it since
    assert page_boot(hub, repo_id) == boot
    assert [i["pid"] for i in hub.instances(repo_id)] == [pid]
    assert len(startups(hub, repo_id)) == 1, hub.logs(repo_id, "run")
    assert hub.runtime(repo_id).raw.get("errorMessage") is None


def test_a_restart_in_the_middle_of_a_switch_leaves_no_orphan(hub: Hub, tmp_path: Path, uv_cache: Path) -> None:
    repo_id = hub.name("switch")
    hub.upload(repo_id, "python-http", tmp_path)
    hub.wait(repo_id, "RUNNING", RUN_TIMEOUT)
    old_boot = page_boot(hub, repo_id)
    (old,) = hub.instances(repo_id)
    v2 = ('"python-http-v1"\nSTARTUP_DELAY = 0.0', '"python-http-v2"\nSTARTUP_DELAY = 3.0')
    hub.upload(repo_id, "python-http", tmp_path, create=False, replace={"app.py": v2})
    hub.wait(repo_id, "RUNNING_APP_STARTING", 60, until=lambda rt: len(hub.instances(repo_id)) == 2)
    (half,) = [i for i in hub.instances(repo_id) if i["pid"] != old["pid"]]

    restart_hub(hub, uv_cache)
    # v1 serves on. The v2 instance that was starting is stopped (an orphan: nothing is known of its progress),
    # and a new one is started.
    assert page_boot(hub, repo_id) == old_boot
    assert not pid_alive(half["pid"], half["starttime"]), "the half-started app is an orphan"
    hub.wait(repo_id, "RUNNING", 60, until=lambda rt: "python-http-v2" in hub.get(repo_id).text)
    assert page_boot(hub, repo_id, "python-http-v2") != old_boot
    new = hub.only_instance(repo_id)  # v1 is stopped once v2 serves (after a short drain)
    assert new["pid"] not in (old["pid"], half["pid"]) and pid_alive(new["pid"], new["starttime"])
    assert not pid_alive(old["pid"], old["starttime"])


def test_deleting_a_space_stops_its_processes(hub: Hub, tmp_path: Path) -> None:
    repo_id = hub.name("delete")
    hub.upload(repo_id, "python-http", tmp_path)
    hub.wait(repo_id, "RUNNING", RUN_TIMEOUT)
    hub.serves(repo_id, "python-http-v1")
    host = hub.host(repo_id)
    space_id = hub.space_id(repo_id)
    (inst,) = hub.instances(repo_id)
    data = hub.server.data_dir
    inst_dir = data / "runtime" / "instances" / inst["release_id"]
    assert processes_with(str(inst_dir)), "the supervisor's command line names its instance folder"

    hub.api.delete_repo(repo_id, repo_type="space")
    deadline = time.monotonic() + 15
    while True:
        left = {
            "app": pid_alive(inst["pid"], inst["starttime"]),
            "supervisor": pid_alive(inst["supervisor_pid"], inst["supervisor_starttime"]),
            "processes": processes_with(str(inst_dir)),
            "instance folder": inst_dir.exists(),
            "checkout": Path(inst["cwd"]).exists(),
            "logs": (data / "spaces" / space_id).exists(),
        }
        if not any(left.values()):
            break
        assert time.monotonic() < deadline, f"left behind 15 s after delete_repo: {left}"
        time.sleep(0.1)
    assert httpx.get(hub.url + "/", headers={"host": host}).status_code == 404


def test_deleting_a_space_while_it_builds_leaves_nothing_behind(hub: Hub, tmp_path: Path) -> None:
    repo_id = hub.name("delete-building")
    hub.upload(repo_id, "python-http", tmp_path, files={"requirements.txt": "six\n"})  # a new environment
    space_id = hub.space_id(repo_id)
    deadline = time.monotonic() + 60
    while not any("$ uv pip install" in line for line in hub.logs(repo_id, "build", quiet=0.3)):
        assert time.monotonic() < deadline, hub.report(repo_id)
    hub.api.delete_repo(repo_id, repo_type="space")
    builds = hub.server.data_dir / "runtime" / "builds"

    def left() -> dict[str, object]:
        return {
            "builds": [
                b.parent.name for b in builds.glob("*/build.json") if json.loads(b.read_text())["space_id"] == space_id
            ],
            "unfinished builds": [p.name for p in builds.glob(".tmp-*")],
            "processes": processes_with(str(builds)),
            "logs": (hub.server.data_dir / "spaces" / space_id).exists(),
        }

    deadline = time.monotonic() + 60
    while any(left().values()):
        assert time.monotonic() < deadline, f"left behind 60 s after delete_repo: {left()}"
        time.sleep(0.2)
    time.sleep(1)
    assert not any(left().values()), left()


def test_a_second_spacehub_waits_then_takes_over_and_adopts(hub: Hub, tmp_path: Path) -> None:
    """One controller at a time (the runtime lease): a second `spacehub serve` on the same data dir waits without
    serving anything while the first runs; when the first dies (SIGKILL: no clean release) the second takes over at
    once (its holder's process is gone on this machine), adopts the running app and serves it through its proxy,
    the same process, never started twice."""
    repo_id = hub.name("takeover")
    hub.upload(repo_id, "python-http", tmp_path)
    hub.wait(repo_id, "RUNNING", RUN_TIMEOUT)
    boot = page_boot(hub, repo_id)
    (inst,) = hub.instances(repo_id)

    old = hub.server
    port = hub.port  # the same configuration (a Space's host, in its environment, names the port): bound once it leads
    log = old.data_dir.parent / f"server-{port}.log"
    env = {**os.environ, "SPACEHUB_SERVER__ACCESS_LOG": "true", **old.env}
    proc = subprocess.Popen([sys.executable, "-m", "spacehub", "serve", "--port", str(port), "--data-dir",
                             str(old.data_dir)], stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)  # fmt: skip
    standby = Server(f"http://127.0.0.1:{port}", old.data_dir, proc, log, tokens=old.tokens, env=old.env)
    try:
        deadline = time.monotonic() + 120
        while "waiting to take over" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        time.sleep(2)
        assert "Uvicorn running" not in log.read_text()  # waiting: it does not even listen (the port is the first's)
        assert page_boot(hub, repo_id) == boot  # the first still serves

        old.proc.kill()  # a crash: the lease is not released
        old.proc.wait(10)
        assert pid_alive(inst["pid"], inst["starttime"]), "the app died with SpaceHub"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                httpx.get(standby.url + "/api/agent-harnesses", timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        hub.server, hub.api = standby, HfApi(endpoint=standby.url, token=hub.alice)
        hub.wait(repo_id, "RUNNING", 30)
        assert page_boot(hub, repo_id) == boot  # adopted: the same process serves through the new proxy
        assert [i["pid"] for i in hub.instances(repo_id)] == [inst["pid"]]
        assert len(startups(hub, repo_id)) == 1, hub.logs(repo_id, "run")
        assert "took over the runtime" in log.read_text()
    finally:
        if hub.server is not standby:
            proc.kill()
