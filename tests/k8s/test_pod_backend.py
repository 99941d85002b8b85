"""KubernetesBackend on the pod tier, where the control-plane tier can only script what a pod does: an app that
really crashes or really runs out of memory reads back as an exit with its code and reason, and its last output
(relayed from the pod's log) is in the run log; a restarted SpaceHub's relay adopts a running release without
copying again what the run log holds."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pygit2
import pytest
from kubernetes import client

from spacehub.runtime.backends.base import BuildFailed, Resources
from spacehub.runtime.backends.kubernetes.backend import KubernetesBackend
from spacehub.runtime.backends.kubernetes.manifests import ClusterOptions, Peer
from spacehub.runtime.backends.kubernetes.objects import Cluster
from spacehub.runtime.types import Stage
from tests.k8s.cluster import ControlPlane
from tests.k8s.code_server import code_server
from tests.k8s.node import Node
from tests.runtime.backends.conftest import APP, README, SpaceRepo, build_spec, release_spec, wait_http

NO_SDK = {"gradio": (), "streamlit": ()}  # plain-Python apps: nothing from the index
pytestmark = [pytest.mark.slow, pytest.mark.pods]


@pytest.fixture
def space_repo(tmp_path: Path) -> SpaceRepo:
    git_dir = tmp_path / "repos" / "space1.git"
    pygit2.init_repository(str(git_dir), bare=True, initial_head="main")
    return SpaceRepo(git_dir, tmp_path / "lfs", "space1")


@pytest.fixture
def backend(
    pod_plane: tuple[ControlPlane, Node], pod_kube: client.ApiClient, pod_namespace: str, space_repo: SpaceRepo,
    tmp_path: Path,
) -> Iterator[KubernetesBackend]:  # fmt: skip
    _, node = pod_plane
    options = ClusterOptions(namespace=pod_namespace, hub=Peer(cidrs=(f"{node.ip}/32",)),
                             cluster_cidrs=(node.pod_cidr,), image_pull_policy="Never")  # fmt: skip
    with code_server(space_repo.git_dir, "alice/demo", "hf_scoped", node.ip) as hub:
        k8s = KubernetesBackend(Cluster(pod_kube, pod_namespace), options, lambda *_: ("alice/demo", "hf_scoped"),
                                hub, run_log=lambda space_id: tmp_path / "run.log", poll_interval=0.1,
                                endpoints="pod", sdk_packages=NO_SDK)  # fmt: skip
        sha = space_repo.commit({"README.md": README.format(sdk="gradio"), "app.py": APP})
        k8s.build(build_spec(space_repo, sha), lambda line: None)
        yield k8s
        for inst in k8s.list_instances():
            k8s.stop(inst.release_id)


def exited(backend: KubernetesBackend, release_id: str, timeout: float = 120) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = backend.status(release_id)
        assert st is not None
        if not st.running:
            return st.exit_code
        time.sleep(0.5)
    raise AssertionError(f"{release_id} still running after {timeout} s")


def log_has(path: Path, *texts: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        if all(t in text for t in texts):
            return text
        time.sleep(0.2)
    raise AssertionError(f"{texts} not all in the run log:\n{text[-3000:]}")


def test_an_app_that_crashes_exits_with_its_code_and_its_last_output_is_kept(
    backend: KubernetesBackend, space_repo: SpaceRepo, tmp_path: Path
) -> None:
    backend.start(release_spec(space_repo, env={"APP_MODE": "crash"}))
    assert exited(backend, "r1") == 3  # CrashLoopBackOff after the kubelet's restarts
    log_has(tmp_path / "run.log", "MARKER app starting", "to stderr", "the app exited with code 3")
    # the kubelet starts it again (after a 10 s back-off): the relay follows it across restarts, each line once
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = (tmp_path / "run.log").read_text()
        if text.count("to stderr") >= 2 and text.count("MARKER app starting") == text.count("to stderr"):
            break  # (stdout and stderr are two pipes: a start's two lines may arrive in either order)
        time.sleep(0.5)
    (pod,) = backend.cluster.core.list_namespaced_pod(backend.namespace, label_selector="spacehub.dev/release=r1").items
    starts = pod.status.container_statuses[0].restart_count + 1
    assert 2 <= text.count("to stderr") <= starts, text
    assert text.count("MARKER app starting") == text.count("to stderr"), text


def test_an_app_over_its_memory_limit_is_oom_killed_and_says_so(
    backend: KubernetesBackend, space_repo: SpaceRepo, tmp_path: Path
) -> None:
    backend.start(release_spec(space_repo, env={"APP_MODE": "oom"}, resources=Resources(memory_bytes=96 * 2**20)))
    assert exited(backend, "r1") == 137
    log_has(tmp_path / "run.log", "allocated 16 MiB", "the app ran out of memory (OOMKilled")


TALKER = r"""
import http.server, os
print("started", flush=True)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        print("served " + self.path, flush=True)
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
http.server.HTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
"""


def test_a_restarted_hub_adopts_a_running_release_and_relays_only_what_is_new(
    backend: KubernetesBackend, space_repo: SpaceRepo, tmp_path: Path
) -> None:
    """A new backend object (SpaceHub restarted) finds the release running: its relay copies the lines written
    since the run log's last write, not the ones the run log already holds."""
    sha = space_repo.commit({"README.md": README.format(sdk="gradio"), "app.py": TALKER})
    backend.build(build_spec(space_repo, sha, build_id="b2"), lambda line: None)
    before = dataclasses.replace(backend, run_log=None, _relays={})  # a SpaceHub whose relay is gone with it
    ep = before.start(release_spec(space_repo, "r2", build_id="b2"))
    assert ep is not None
    url = f"http://{ep.host}:{ep.port}"
    wait_http(f"{url}/first")
    # the line as the kubelet stamped it (containerd reads the app's output after the request is answered: at load,
    # later than this test's next step), so that it is older than the run log's write below
    core, namespace = before.cluster.core, before.namespace
    (pod,) = [p.metadata.name for p in core.list_namespaced_pod(namespace).items if p.status.pod_ip == ep.host]
    deadline, said = time.monotonic() + 60, ""
    while "served /first" not in said:  # (the API may still say PodInitializing for a while: a 400 meanwhile)
        assert time.monotonic() < deadline, f"the pod's log never said it served /first: {said!r}"
        time.sleep(0.1)
        with contextlib.suppress(client.ApiException):
            said = core.read_namespaced_pod_log(pod, namespace, container="app")
    log = tmp_path / "run.log"
    log.write_text("2026-01-01T00:00:00.000Z started\n2026-01-01T00:00:00.000Z served /first\n")  # what it had copied
    time.sleep(0.05)  # the pod's later lines are newer than the log's last write
    after = dataclasses.replace(backend, _relays={}, _relayed={}, _last={})
    st = after.status("r2")
    assert st is not None and st.running and st.endpoint == ep
    assert httpx.get(f"{url}/second", timeout=5).text == "ok"
    text = log_has(log, "served /second")
    assert text.count("started") == 1 and text.count("served /first") == 1, text


def test_the_build_jobs_output_is_in_the_build_log(backend: KubernetesBackend, space_repo: SpaceRepo) -> None:
    """What the build Job's containers print (the fetch init container's, pip's in the install init container, the
    main container's) reaches the build log, in that order, when the build succeeds and when it fails."""
    lines: list[str] = []
    sha = space_repo.commit({"README.md": README.format(sdk="gradio"), "app.py": TALKER})
    backend.build(build_spec(space_repo, sha, build_id="b2"), lines.append)
    text = "\n".join(lines)
    fetched = re.search(rf"fetched \d+ files of alice/demo at {sha[:7]}", text)
    assert fetched, text
    assert (
        fetched.start()
        < text.index("the code is in /code and its requirements are installed")
        < text.index("build done")
    )
    lines.clear()
    sha = space_repo.commit({"README.md": README.format(sdk="gradio"), "app.py": TALKER,
                             "requirements.txt": "no-such-package-x9==0.0.1\n"})  # fmt: skip
    with pytest.raises(BuildFailed, match="install exited with code 1"):
        backend.build(build_spec(space_repo, sha, build_id="b3"), lines.append)
    text = "\n".join(lines)
    assert re.search(rf"fetched \d+ files of alice/demo at {sha[:7]}", text), text
    assert "ERROR:" in text and "no-such-package-x9" in text, text  # pip's own words, from the install container


def test_a_pod_whose_firewall_cannot_install_its_rules_does_not_start_and_says_why(
    backend: KubernetesBackend, space_repo: SpaceRepo, tmp_path: Path
) -> None:
    """The firewall fails loudly: given an image without iptables (the Python image), its init container exits with
    the reason, nothing of the Space runs (no code fetched, no app), the stage is RUNTIME_ERROR and errorMessage
    (the run log's reason) says which container and why; a build with it fails with the same reason."""
    broken = dataclasses.replace(backend, options=dataclasses.replace(backend.options,
                                 firewall_image="docker.io/library/python:3.11-slim"), _relays={}, _relayed={},
                                 _last={})  # fmt: skip
    why = "firewall: iptables-nft-restore is not in this image: kubernetes.firewall_image must have iptables"
    sha = space_repo.commit({"README.md": README.format(sdk="gradio"), "app.py": TALKER})
    with pytest.raises(BuildFailed, match=f"firewall exited with code 1: {why}"):
        broken.build(build_spec(space_repo, sha, build_id="b2"), lambda line: None)
    broken.start(release_spec(space_repo))
    assert exited(broken, "r1") == 1
    health = broken.cluster.health(space_repo.space_id)
    assert health.stage is Stage.RUNTIME_ERROR and health.error is not None
    assert health.error.startswith(f"its firewall init container exited with code 1: {why}"), health.error
    text = log_has(tmp_path / "run.log", why, f"its firewall init container exited with code 1: {why}", timeout=60)
    assert "fetched" not in text and "MARKER app starting" not in text, text
    (pod,) = backend.cluster.core.list_namespaced_pod(backend.namespace, label_selector="spacehub.dev/release=r1").items
    assert pod.status.phase == "Pending" and not pod.status.container_statuses[0].state.running
    broken.stop("r1")


def test_the_init_containers_output_of_a_spaces_pod_is_in_its_run_log(
    backend: KubernetesBackend, space_repo: SpaceRepo, tmp_path: Path
) -> None:
    """The run log says how the pod got its code (the fetch init container's line, before the app's first line),
    and, when it could not, why: a fetch refused by the Hub (a revoked token) is in the run log with the Hub's
    answer, each failed run once."""
    backend.start(release_spec(space_repo))
    text = log_has(tmp_path / "run.log", "fetched", "MARKER app starting", timeout=60)
    assert text.index("files of alice/demo at") < text.index("MARKER app starting"), text
    backend.stop("r1")
    refused = dataclasses.replace(backend, code_access=lambda *_: ("alice/demo", "hf_revoked"), _relays={},
                                  _relayed={}, _last={})  # fmt: skip
    (tmp_path / "run.log").write_text("")
    refused.start(release_spec(space_repo, "r2"))
    text = log_has(tmp_path / "run.log", "HTTP Error 401", timeout=90)
    assert "Traceback" in text and "MARKER app starting" not in text, text
    # the kubelet runs the fetch again after a back-off: each failed run's output is copied once
    deadline = time.monotonic() + 60
    while (text := (tmp_path / "run.log").read_text()).count("HTTP Error 401") < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    (pod,) = backend.cluster.core.list_namespaced_pod(backend.namespace, label_selector="spacehub.dev/release=r2").items
    runs = next(c for c in pod.status.init_container_statuses if c.name == "fetch").restart_count + 1
    assert 2 <= text.count("HTTP Error 401") <= runs, text
    refused.stop("r2")
