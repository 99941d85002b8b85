"""A hostile Space (issue 7, "Tests and proof"): a second user pushes an app that tries every way out of its sandbox
(tests/e2e/hostile_app.py) next to alice's private Space, which holds a secret; driven as users do, with the real
``huggingface_hub`` client against a live SpaceHub with ``runtime.sandbox = on`` (outbound ``open``, the default).

What the test knows of its host (the data dir, the victim's port and pids, SpaceHub's port, the host's addresses)
is handed to the hostile app as Space variables, so that every attempt aims at the real thing. The app answers a
report; the test asserts that every attempt failed, that the app runs as HF's ``user`` without privileges, that the
victim's secret appears nowhere in the report, that nothing it listened on is reachable from the host, that the
victim (and SpaceHub) still run and serve, that the hostile app still serves, and that it reaches the Hub API with
its own token (``HF_TOKEN``, a secret holding bob's token, at ``HF_ENDPOINT``). The same probe then runs as a
docker Space (podman), when podman is installed.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi

from tests.conftest import ROOT, free_port, start_server
from tests.e2e.conftest import Hub, docker_builds, pid_alive, remove_images, runtime_env, stop_hub

pytestmark = pytest.mark.slow
RUN_TIMEOUT = 300  # a first build installs gradio (a plain-Python Space is an sdk: gradio one), on a loaded machine
PROBE_TIMEOUT = 120  # one report: a walk of the visible filesystem, connection attempts, a kill(-1) and its echo
HOSTILE_APP = Path(__file__).with_name("hostile_app.py")
PODMAN = shutil.which("podman")
ENGINE = [PODMAN or "podman", *(["--runtime", "runc"] if shutil.which("runc") else [])]
ZERO_CAPS = "0000000000000000"

HOSTILE_README = """---
title: Hostile
sdk: {sdk}
{extra}---
A Space that tries to get out of its sandbox.
"""

DOCKERFILE = """FROM python:3.11-slim
RUN useradd -m -u 1000 user
USER user
ENV HOME=/home/user PATH=/home/user/.local/bin:$PATH
WORKDIR /home/user/app
COPY --chown=user . .
CMD ["python", "app.py"]
"""


@dataclass
class Victim:
    repo_id: str
    marker: str  # the value of its secret
    host: str  # its host name at the proxy
    port: int  # the host port the proxy connects to
    pid: int
    starttime: int | None
    files: list[str]  # host paths of its code, launch.json and logs


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, uv_cache: Path) -> Iterator[Hub]:
    env = runtime_env(uv_cache, SPACEHUB_RUNTIME__SANDBOX="on", SPACEHUB_RUNTIME__OUTBOUND="open")
    server = start_server(tmp_path_factory.mktemp("hostile") / "data", env=env)
    alice = server.user("alice")
    h = Hub(server, alice, HfApi(endpoint=server.url, token=alice))
    yield h
    builds = docker_builds(h.server.data_dir)
    stop_hub(h)
    remove_images(builds)


@pytest.fixture(scope="module")
def victim(hub: Hub, tmp_path_factory: pytest.TempPathFactory) -> Victim:
    """alice's private plain-Python Space, with a secret whose value is a random marker, running."""
    repo_id, marker = hub.name("victim"), "victim-marker-" + secrets.token_hex(16)
    hub.upload(repo_id, "python-http", tmp_path_factory.mktemp("victim"), private=True)
    hub.api.add_space_secret(repo_id, "VICTIM_MARKER", marker)
    hub.wait(repo_id, "RUNNING", RUN_TIMEOUT)
    deadline = time.monotonic() + 60
    while hub.get(repo_id, token=hub.alice).status_code != 200 or len(running(hub, repo_id)) != 1:
        assert time.monotonic() < deadline, hub.report(repo_id)
        time.sleep(0.2)
    inst = running(hub, repo_id)[0]
    assert inst.get("sandbox"), f"the victim is not sandboxed: {inst}"
    data = hub.server.data_dir
    files = [str(p) for p in (data / "runtime" / "builds" / inst["build_id"]).rglob("*") if p.is_file()][:20]
    files += [str(p) for p in (data / "runtime" / "instances").glob("*/launch.json")]
    files += [str(p) for p in (data / "spaces" / hub.space_id(repo_id)).rglob("*") if p.is_file()][:10]
    return Victim(repo_id, marker, hub.host(repo_id), int(inst["port"]), inst["pid"], inst.get("starttime"), files)


def running(hub: Hub, repo_id: str) -> list[dict[str, Any]]:
    return [i for i in hub.instances(repo_id) if i.get("pid") and pid_alive(i["pid"], i.get("starttime"))]


def host_addresses() -> list[str]:
    """The host's non-loopback IPv4 addresses."""
    try:
        out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return []
    addrs = [line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3]
    return [a for a in addrs if not a.startswith("127.")]


def descendants(pid: int) -> list[int]:
    """``pid`` and its descendants, from the host's /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def refused(host: str, port: int) -> str | None:
    """None when nothing answers at host:port from here, else what answered."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        try:
            s.connect((host, port))
        except OSError:
            return None
        s.settimeout(2)
        try:
            return f"connected; answer {s.recv(200)!r}"
        except OSError as e:
            return f"connected ({e!r})"


def hostile_variables(hub: Hub, victim: Victim, listen_port: int, own_dirs: str = "") -> list[dict[str, str]]:
    data = hub.server.data_dir
    keys = [str(p) for p in data.glob("*.key")] + [str(data / "spacehub.db")]
    home = Path.home()
    home_files = [str(p) for p in sorted(home.iterdir()) if p.is_file()][:10] if home.is_dir() else []
    host_pids = [hub.server.proc.pid, os.getpid(), *descendants(victim.pid)]
    for inst in hub.instances(victim.repo_id):
        if inst.get("supervisor_pid"):
            host_pids.append(inst["supervisor_pid"])
    values = {
        "HOSTILE_DATA_DIR": str(data),
        "HOSTILE_SOURCE_DIR": str(ROOT),
        "HOSTILE_FILES": ",".join(keys + victim.files),
        "HOSTILE_HOME_FILES": ",".join(home_files),
        "HOSTILE_VICTIM_PORT": str(victim.port),
        "HOSTILE_VICTIM_HOST": victim.host,
        "HOSTILE_VICTIM_ID": victim.repo_id,
        "HOSTILE_VICTIM_KEY": "VICTIM_MARKER",
        "HOSTILE_HUB_PORT": str(hub.port),
        "HOSTILE_HOST_ADDRS": ",".join(host_addresses()),
        "HOSTILE_HOST_PIDS": ",".join(str(p) for p in dict.fromkeys(host_pids)),
        "HOSTILE_LISTEN_PORT": str(listen_port),
        "HOSTILE_OWN_DIRS": own_dirs,
    }
    return [{"key": k, "value": v} for k, v in values.items()]


def push_hostile(
    hub: Hub, bob: str, repo_id: str, folder: Path, sdk: str, variables: list[dict[str, str]], extra: str = ""
) -> HfApi:
    """bob creates the Space (variables, and his own token as the secret HF_TOKEN) and pushes the app."""
    api = HfApi(endpoint=hub.url, token=bob)
    (folder / "README.md").write_text(HOSTILE_README.format(sdk=sdk, extra=extra))
    (folder / "app.py").write_text(HOSTILE_APP.read_text())
    api.create_repo(
        repo_id,
        repo_type="space",
        space_sdk=sdk,
        space_variables=variables,
        space_secrets=[{"key": "HF_TOKEN", "value": bob}],
    )
    api.upload_folder(repo_id=repo_id, repo_type="space", folder_path=folder)
    return api


def wait_running(hub: Hub, api: HfApi, repo_id: str, timeout: float) -> None:
    deadline, rt = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        rt = api.get_space_runtime(repo_id)
        if rt.stage == "RUNNING":
            return
        if rt.stage not in ("NO_APP_FILE", "BUILDING", "RUNNING_BUILDING", "APP_STARTING", "RUNNING_APP_STARTING"):
            break
        time.sleep(0.5)
    raise AssertionError(f"{repo_id}: not RUNNING: {rt.raw if rt else None}\n{tail(hub.server.log)}")


def tail(path: Path, n: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


def get(hub: Hub, repo_id: str, path: str, token: str, timeout: float) -> httpx.Response:
    """GET through the proxy, retried (with a deadline) until the app answers 200."""
    deadline, last = time.monotonic() + timeout, "no answer"
    while time.monotonic() < deadline:
        try:
            r = hub.get(repo_id, path, token=token, timeout=PROBE_TIMEOUT)
            if r.status_code == 200:
                return r
            last = f"{r.status_code} {r.text[:300]}"
        except httpx.HTTPError as e:
            last = repr(e)
        time.sleep(0.5)
    raise AssertionError(f"{repo_id}{path}: {last}\n{tail(hub.server.log)}")


def probe(hub: Hub, victim: Victim, repo_id: str, bob: str, listen_port: int) -> dict[str, Any]:
    """Run the hostile app's report once and check everything the host can check; answers the report."""
    before = [(i["pid"], i.get("starttime")) for i in running(hub, repo_id)]
    assert len(before) == 1, before
    r = get(hub, repo_id, "/report", bob, PROBE_TIMEOUT)
    assert victim.marker not in r.text, "the victim's secret is in the hostile app's report"
    report = r.json()
    assert "error" not in report, report
    print(f"\n{repo_id}: report\n" + json.dumps(report, indent=1)[:20000])

    escaped = {name: a["detail"] for name, a in report["attempts"].items() if a["ok"]}
    assert not escaped, f"attempts that succeeded: {json.dumps(escaped, indent=1)}"
    expected = {
        *("read_data_dir", "read_key_files", "read_database", "read_builds", "read_instances", "read_named_files"),
        *("read_source", "read_host_homes", "read_launch_json", "read_via_proc_root", "find_victim_files"),
        *("see_other_processes", "read_other_environ", "signal_host_pids", "ptrace", "write_outside"),
        *("mount_tmpfs", "unshare", "raise_RLIMIT_NPROC", "raise_RLIMIT_NOFILE", "reach_victim_port"),
        *("reach_spacehub_listener", "victim_through_proxy", "victim_through_api"),
    }
    assert set(report["attempts"]) == expected
    # The attempts were real: the files it was told about were asked for, the host pids were signalled.
    named = json.loads(report["attempts"]["read_named_files"]["detail"])
    assert set(named) == set(hostile_files(hub, victim)), named
    assert all(d.startswith(("FileNotFoundError", "PermissionError")) for d in named.values()), named

    ident = report["identity"]
    assert (ident["uid"], ident["gid"], ident["euid"]) == (1000, 1000, 1000), ident
    assert (ident["CapEff"], ident["CapPrm"], ident["NoNewPrivs"], ident["Seccomp"]) == (ZERO_CAPS, ZERO_CAPS, "1", "2")
    assert report["hub"]["status"] == 200 and report["hub"]["name"] == "bob", report["hub"]

    # What it listened on (inside: it did listen) is nowhere on the host.
    assert report["listening"]["detail"]["0.0.0.0"] == "listening", report["listening"]
    for host in ["127.0.0.1", "::1", *host_addresses()]:
        assert refused(host, listen_port) is None, f"the hostile app's listener answers at {host}:{listen_port}"
    # Nothing it wrote is on the host.
    written = json.loads(report["attempts"]["write_outside"]["detail"])["tried"]
    assert written and not [path for path in written if Path(path).exists()]
    assert not [p for p in hub.server.data_dir.rglob(f"*{report['nonce']}*")]
    assert not [p for p in ROOT.glob(f"*{report['nonce']}*")]
    # kill(-1) reached no one outside: SpaceHub and the victim run as before, and the hostile app still serves.
    assert hub.server.proc.poll() is None
    assert pid_alive(victim.pid, victim.starttime), "the victim's app died"
    assert [(i["pid"], i.get("starttime")) for i in running(hub, victim.repo_id)] == [(victim.pid, victim.starttime)]
    alive = get(hub, repo_id, "/ping", bob, 30).json()
    assert alive == {"alive": True, "pid": report["pid"]}
    assert [(i["pid"], i.get("starttime")) for i in running(hub, repo_id)] == before
    served = get(hub, victim.repo_id, "/", hub.alice, 30)
    assert "python-http-v1" in served.text
    assert hub.get(victim.repo_id).status_code in (401, 403, 404)  # still private to anyone else
    return dict(report)


def hostile_files(hub: Hub, victim: Victim) -> list[str]:
    data = hub.server.data_dir
    return [str(p) for p in data.glob("*.key")] + [str(data / "spacehub.db")] + victim.files


def test_a_hostile_space_cannot_get_out_of_its_sandbox(hub: Hub, victim: Victim, tmp_path: Path) -> None:
    bob = hub.server.user("bob")
    repo_id = f"bob/hostile-{os.getpid()}"
    listen_port = free_port()
    started = time.monotonic()
    folder = tmp_path / "hostile"
    folder.mkdir()
    api = push_hostile(hub, bob, repo_id, folder, "gradio", hostile_variables(hub, victim, listen_port))
    wait_running(hub, api, repo_id, RUN_TIMEOUT)
    assert running(hub, repo_id) and running(hub, repo_id)[0].get("sandbox"), "the hostile app is not sandboxed"
    t0 = time.monotonic()
    probe(hub, victim, repo_id, bob, listen_port)
    print(f"hostile Space: upload to RUNNING {t0 - started:.1f}s, probe {time.monotonic() - t0:.1f}s")


@pytest.fixture(scope="module")
def base_images() -> str:
    """The offline base images (python:3.11-slim…): built once per machine, loaded from the cache after."""
    if PODMAN is None:
        pytest.skip("podman is not installed (scripts/install-system-deps)")
    done = subprocess.run([str(ROOT / "scripts" / "build-base-images")], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"scripts/build-base-images failed:\n{done.stderr[-3000:]}"
    return done.stdout.strip().splitlines()[-1]


@dataclass
class DockerProbe:
    repo_id: str
    listen_port: int


@pytest.fixture(scope="module")
def docker_probe(
    hub: Hub, victim: Victim, base_images: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DockerProbe]:
    """bob's hostile docker Space (FROM python:3.11-slim, uid 1000, the same app), running."""
    bob = hub.server.user("bob")
    repo_id, listen_port = f"bob/hostile-docker-{os.getpid()}", free_port()
    started = time.monotonic()
    folder = tmp_path_factory.mktemp("hostile-docker")
    (folder / "Dockerfile").write_text(DOCKERFILE)
    # The image's own files are the container's to write (as in any container): its code folder is its own.
    variables = hostile_variables(hub, victim, listen_port, own_dirs="/home/user/app")
    api = push_hostile(hub, bob, repo_id, folder, "docker", variables, extra="app_port: 7860\n")
    wait_running(hub, api, repo_id, RUN_TIMEOUT)
    print(f"\nhostile docker Space: upload to RUNNING {time.monotonic() - started:.1f}s")
    yield DockerProbe(repo_id, listen_port)


def test_a_hostile_docker_space_cannot_get_out_of_its_container(
    hub: Hub, victim: Victim, docker_probe: DockerProbe
) -> None:
    """The same attempts fail in a container. unshare and ptrace too: the engines' default seccomp profiles allow
    both (a user namespace then gives every capability inside it, and mounts and namespaces with them); docker
    Spaces run with SpaceHub's profile instead (`sandbox.oci_seccomp_profile`)."""
    bob = hub.server.user("bob")
    t0 = time.monotonic()
    report = probe(hub, victim, docker_probe.repo_id, bob, docker_probe.listen_port)
    assert report["identity"]["interfaces"] == ["lo"]
    assert not report["attempts"]["unshare"]["ok"] and not report["attempts"]["ptrace"]["ok"]
    print(f"hostile docker Space: probe {time.monotonic() - t0:.1f}s")
