"""docker Spaces end to end, as users make them: an ordinary HF-style Dockerfile (FROM python:3.11-slim, a user with
uid 1000, a stdlib HTTP server on the README's app_port) built offline by podman from the locally built base image
(scripts/build-base-images, once per machine and session), run sandboxed, driven with the real ``huggingface_hub``
client against a live server, through the proxy.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from spacehub.runtime import sandbox
from tests.conftest import ROOT
from tests.e2e.conftest import Hub, docker_builds, remove_images, start_hub, stop_hub

PODMAN = shutil.which("podman")
pytestmark = pytest.mark.skipif(PODMAN is None, reason="podman is not installed (scripts/install-system-deps)")
ENGINE = [PODMAN or "podman", *(["--runtime", "runc"] if shutil.which("runc") else [])]

README = """---
title: Docker probe
sdk: docker
app_port: 7860
---
A docker Space that reports what it sees.
"""

DOCKERFILE = """FROM python:3.11-slim
ARG GREETING
ARG PROBE_PORT
RUN useradd -m -u 1000 user
RUN mkdir /opt/probe && head -1 /proc/self/uid_map > /opt/probe/uid_map && python -c "import socket, sys; \\
    s = socket.socket(); s.settimeout(2); print(s.connect_ex(('127.0.0.1', int(sys.argv[1]))))" "$PROBE_PORT" \\
    > /opt/probe/reach && (id -u; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status) > /opt/probe/status
USER user
ENV HOME=/home/user PATH=/home/user/.local/bin:$PATH
WORKDIR /home/user/app
RUN --mount=type=secret,id=BUILD_TOKEN,mode=0444 sha256sum /run/secrets/BUILD_TOKEN | cut -d' ' -f1 > build-secret.sha
RUN echo "$GREETING" > build-arg.txt
COPY --chown=user . .
CMD ["python", "app.py"]
"""

APP = """import json, os, socket, urllib.parse, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def status():
    lines = open("/proc/self/status").read().splitlines()
    keys = ("CapEff", "NoNewPrivs", "Seccomp")
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines) if k in keys}


def reach(host, port):
    try:
        socket.create_connection((host, port), timeout=2).close()
        return "connected"
    except OSError as e:
        return type(e).__name__


def hub():
    try:
        url = os.environ["HF_ENDPOINT"] + "/api/spaces/" + os.environ["SPACE_ID"]
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.load(r)["id"]
    except Exception as e:
        return repr(e)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/":
            body = {
                "uid": os.getuid(), "gid": os.getgid(), "status": status(),
                "build_arg": open("build-arg.txt").read().strip(),
                "build_secret_sha": open("build-secret.sha").read().strip(),
                "env_greeting": os.environ.get("GREETING"), "env_secret": os.environ.get("APP_SECRET"),
                "env_build_token": os.environ.get("BUILD_TOKEN"),
                "interfaces": sorted(os.listdir("/sys/class/net")),
                "build": {name: open("/opt/probe/" + name).read().split() for name in ("uid_map", "reach", "status")},
            }
        elif url.path == "/exists":
            body = {"exists": os.path.exists(q["path"])}
        elif url.path == "/reach":
            body = {"result": reach(q["host"], int(q["port"]))}
        elif url.path == "/hub":
            body = {"result": hub()}
        elif url.path == "/write":
            try:
                with open("/data/probe.txt", "w") as f:
                    f.write("kept")
                body = {"result": open("/data/probe.txt").read()}
            except OSError as e:
                body = {"result": repr(e)}
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


print("listening on 7860", flush=True)
ThreadingHTTPServer(("0.0.0.0", 7860), Handler).serve_forever()
"""


@pytest.fixture(scope="session")
def base_images() -> str:
    """The offline base images (python:3.11-slim…): built once per machine (~40 s), loaded from the cache after."""
    done = subprocess.run([str(ROOT / "scripts" / "build-base-images")], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"scripts/build-base-images failed:\n{done.stderr[-3000:]}"
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, uv_cache: Path, base_images: str) -> Iterator[Hub]:
    h = start_hub(tmp_path_factory.mktemp("e2e-docker") / "data", uv_cache)
    yield h
    builds = docker_builds(h.server.data_dir)
    stop_hub(h)
    remove_images(builds)


def upload_docker_space(hub: Hub, repo_id: str, tmp: Path, **create: Any) -> str:
    folder = tmp / f"space-{time.monotonic_ns()}"
    folder.mkdir()
    for name, text in {"README.md": README, "Dockerfile": DOCKERFILE, "app.py": APP}.items():
        (folder / name).write_text(text)
    hub.api.create_repo(repo_id, repo_type="space", space_sdk="docker", **create)
    return hub.api.upload_folder(repo_id=repo_id, repo_type="space", folder_path=folder).oid


def report(hub: Hub, repo_id: str, path: str = "/") -> dict[str, Any]:
    r = hub.get(repo_id, path)
    assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:300]}\n" + hub.report(repo_id)
    return dict(r.json())


def instance(hub: Hub, repo_id: str) -> dict[str, Any]:
    """The Space's one running instance, once the one a switch replaced has drained and stopped."""
    inst = hub.only_instance(repo_id)
    assert inst.get("pid"), inst
    return inst


def image_bytes(image: str, tmp: Path) -> list[tuple[str, bytes]]:
    """Every file of the image as saved by the engine: the archive's own files, and the files of each layer."""
    archive = tmp / "image.tar"
    subprocess.run([*ENGINE, "save", "-o", str(archive), image], check=True, capture_output=True, timeout=120)
    out: list[tuple[str, bytes]] = []
    with tarfile.open(archive) as outer:
        for member in outer.getmembers():
            f = outer.extractfile(member) if member.isfile() else None
            if f is None:
                continue
            data = f.read()
            out.append((member.name, data))
            if member.name.endswith(".tar") or member.name.endswith("/layer.tar"):
                with tarfile.open(fileobj=__import__("io").BytesIO(data)) as layer:
                    for inner in layer.getmembers():
                        g = layer.extractfile(inner) if inner.isfile() else None
                        if g is not None:
                            out.append((f"{member.name}:{inner.name}", g.read()))
    archive.unlink()
    return out


def test_an_hf_style_dockerfile_space_builds_offline_and_runs_sandboxed(hub: Hub, tmp_path: Path) -> None:
    build_secret, app_secret = "bt-" + "7f3a9c21e4" * 3, "as-" + "c0ffee5eed" * 3
    repo_id = hub.name("docker")
    started = time.monotonic()
    listener = socket.socket()  # on the host's loopback: a RUN step must not reach it
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    upload_docker_space(
        hub,
        repo_id,
        tmp_path,
        space_variables=[
            {"key": "GREETING", "value": "hello from a variable"},
            {"key": "PROBE_PORT", "value": str(listener.getsockname()[1])},
        ],
        space_secrets=[{"key": "BUILD_TOKEN", "value": build_secret}, {"key": "APP_SECRET", "value": app_secret}],
    )
    hub.wait(repo_id, "RUNNING", 240)
    listener.close()
    running_after = time.monotonic() - started
    seen = report(hub, repo_id)
    print(f"docker Space: upload to RUNNING in {running_after:.1f}s")

    # HF's build: the variable as a build arg and as env, secrets as env, the build secret mounted during the build.
    assert seen["build_arg"] == "hello from a variable" and seen["env_greeting"] == "hello from a variable"
    assert seen["env_secret"] == app_secret and seen["env_build_token"] == build_secret
    assert seen["build_secret_sha"] == hashlib.sha256(build_secret.encode()).hexdigest()
    # The build's RUN steps: root in the build container is not the host's root (rootless podman as the build user
    # when SpaceHub is root, SpaceHub's own user otherwise), and the host's loopback is out of reach.
    build = seen["build"]
    assert build["uid_map"][0] == "0" and build["uid_map"][1] != "0", build
    if os.geteuid() == 0:
        assert int(build["uid_map"][1]) == pwd.getpwnam("spacehub-builder").pw_uid, build
    assert build["reach"] != ["0"], build  # connect_ex: 0 would be a connection
    assert build["status"][0] == "0" and "Seccomp: 2" in " ".join(build["status"]), build  # root, filtered
    # The sandbox: uid 1000, no capability, no new privileges, the default seccomp filter, loopback only.
    assert (seen["uid"], seen["gid"]) == (1000, 1000)
    assert seen["status"] == {"CapEff": "0000000000000000", "NoNewPrivs": "1", "Seccomp": "2"}
    assert seen["interfaces"] == ["lo"]
    # No host file is there: not SpaceHub's data dir, not this checkout.
    for path in (hub.server.data_dir, ROOT / "README.md", hub.server.data_dir / "runtime" / "builds"):
        assert report(hub, repo_id, f"/exists?path={path}") == {"exists": False}
    # Nothing of the host's network: not a listener on its loopback, not another address of the host.
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        assert report(hub, repo_id, f"/reach?host=127.0.0.1&port={port}")["result"] == "ConnectionRefusedError"
        assert report(hub, repo_id, f"/reach?host=10.88.0.1&port={port}")["result"] != "connected"
    # The Hub is reachable at HF_ENDPOINT (forwarded into the container's loopback).
    assert report(hub, repo_id, "/hub")["result"] == repo_id

    # No secret value in the image: not in its history, not in any file of any layer, not in the build log.
    inst = instance(hub, repo_id)
    build = json.loads((hub.server.data_dir / "runtime" / "builds" / inst["build_id"] / "build.json").read_text())
    history = subprocess.run([*ENGINE, "history", "--no-trunc", build["image"]], capture_output=True, text=True)
    assert history.returncode == 0 and "sha256sum /run/secrets/BUILD_TOKEN" in history.stdout
    assert build_secret not in history.stdout and app_secret not in history.stdout
    files = image_bytes(build["image"], tmp_path)
    assert any(name.endswith("build-arg.txt") for name, _ in files)  # the layers were read
    for name, data in files:
        assert build_secret.encode() not in data and app_secret.encode() not in data, name
    build_log = hub.logs(repo_id, "build")
    print("docker Space: " + "; ".join(line for line in build_log if line.startswith("Build done")))
    assert build_log and not any(build_secret in line or app_secret in line for line in build_log)
    assert not any(build_secret in arg or app_secret in arg for arg in inst["command"])
    assert "--user" in inst["command"] and "none" in inst["command"]
    if os.geteuid() == 0:  # a user namespace of its own: its uid 1000 is a host uid of this Space's alone
        base = sandbox.container_id_base(hub.space_id(repo_id))
        assert base is not None and base >= sandbox.CONTAINER_ID_BASE
        pid = subprocess.run([*ENGINE, "inspect", "--format", "{{.State.Pid}}", inst["container"]["name"]],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        assert status["Uid"].split() == [str(base + 1000)] * 4, status["Uid"]

    # A new app secret restarts the app (same build) with the new value.
    t0 = time.monotonic()
    hub.api.add_space_secret(repo_id, "APP_SECRET", "as-rotated-value-123")
    hub.wait(repo_id, "RUNNING", 120, until=lambda rt: report(hub, repo_id)["env_secret"] == "as-rotated-value-123")
    print(f"docker Space: secret change to serving the new value in {time.monotonic() - t0:.1f}s")
    assert instance(hub, repo_id)["build_id"] == inst["build_id"]
    # A new build secret rebuilds the image: the build saw the new value.
    t0 = time.monotonic()
    hub.api.add_space_secret(repo_id, "BUILD_TOKEN", "bt-rotated-value-456")
    want = hashlib.sha256(b"bt-rotated-value-456").hexdigest()
    hub.wait(repo_id, "RUNNING", 180, until=lambda rt: report(hub, repo_id)["build_secret_sha"] == want)
    print(f"docker Space: build secret change to serving the rebuilt image in {time.monotonic() - t0:.1f}s")
    assert instance(hub, repo_id)["build_id"] != inst["build_id"]

    # Persistent storage (as huggingface_hub 1.33's request_space_storage asks for it): the app (uid 1000 in its
    # container) writes its /data, which its host uid owns.
    r = httpx.post(f"{hub.server.url}/api/spaces/{repo_id}/storage", json={"tier": "small"},
                   headers={"authorization": f"Bearer {hub.alice}"}, timeout=30)  # fmt: skip
    assert r.status_code == 200, r.text

    answers: list[str] = []

    def writes(rt: Any) -> bool:
        r = hub.get(repo_id, "/write")
        answers.append(f"{r.status_code} {r.text[:200]}")
        return r.status_code == 200 and r.json()["result"] == "kept"

    try:
        hub.wait(repo_id, "RUNNING", 120, until=writes)
    except AssertionError as e:
        raise AssertionError(f"/write answered {answers[-3:]}") from e
    if os.geteuid() == 0:
        app_uid = (sandbox.container_id_base(hub.space_id(repo_id)) or 0) + 1000
        kept = [p for p in (hub.server.data_dir / "storage").rglob("probe.txt")]
        assert len(kept) == 1 and kept[0].stat().st_uid == app_uid, kept

    hub.api.delete_repo(repo_id, repo_type="space")
    deadline = time.monotonic() + 60
    while subprocess.run([*ENGINE, "image", "exists", build["image"]]).returncode == 0:
        assert time.monotonic() < deadline, f"{build['image']} outlived its Space"
        time.sleep(0.5)
