"""The environment cache's garbage collection on the pod tier (a real kubelet): `KubernetesBackend` with a hostPath
cache of its own on the node, three Spaces built from the test's repo (a code server at the node's address), each
with another requirements.txt (comments only: a key of its own, nothing from the package index). A's release runs
and mounts its environment; B ran and was deleted; C was built and never started. With A's and B's environments
last used 8 days ago, a collection (a Job on the node) removes B's only: A's is mounted (its pod still serves from
it), C's was kept lately. Once A is deleted too and no day is kept, A's and C's go. A build's scratch folder older
than a build may run goes; the collection's Job and ConfigMap go when it is done."""

from __future__ import annotations

import dataclasses
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pygit2
import pytest
from kubernetes import client

from spacehub.runtime.backends.base import BuildSpec
from spacehub.runtime.backends.kubernetes.backend import KubernetesBackend
from spacehub.runtime.backends.kubernetes.manifests import ClusterOptions, Peer
from spacehub.runtime.backends.kubernetes.objects import Cluster
from tests.k8s.cluster import ControlPlane
from tests.k8s.code_server import code_server
from tests.k8s.node import Node
from tests.runtime.backends.conftest import APP, README, SpaceRepo, release_spec, wait_http

pytestmark = [pytest.mark.slow, pytest.mark.pods]
NO_SDK = {"gradio": (), "streamlit": ()}
SPACES = {n: f"0123456789abcdef0123456{n}" for n in "abc"}  # repo ids: 24 hex digits
DAY = 86400


@pytest.fixture
def cached(
    pod_plane: tuple[ControlPlane, Node], pod_kube: client.ApiClient, pod_namespace: str, tmp_path: Path
) -> Iterator[tuple[KubernetesBackend, SpaceRepo, Path]]:
    """The backend with a hostPath cache of its own (``/var/lib/spacehub/gc-…`` in the node's /var/lib), the repo
    its pods fetch from, and the cache's folder as the test sees it."""
    node = pod_plane[1]
    name = f"gc-{secrets.token_hex(3)}"
    git_dir = tmp_path / "repo.git"
    pygit2.init_repository(str(git_dir), bare=True, initial_head="main")
    repo = SpaceRepo(git_dir, tmp_path / "lfs", "space")
    options = ClusterOptions(namespace=pod_namespace, hub=Peer(cidrs=(f"{node.ip}/32",)),
                             cluster_cidrs=(node.pod_cidr,), image_pull_policy="Never",
                             env_cache={"hostPath": {"path": f"/var/lib/spacehub/{name}",
                                                     "type": "DirectoryOrCreate"}})  # fmt: skip
    with code_server(git_dir, "alice/demo", "hf_scoped", node.ip) as hub:
        backend = KubernetesBackend(Cluster(pod_kube, pod_namespace), options, lambda *_: ("alice/demo", "hf_scoped"),
                                    hub, run_log=lambda space_id: tmp_path / "run.log", poll_interval=0.1,
                                    endpoints="pod", sdk_packages=NO_SDK)  # fmt: skip
        try:
            yield backend, repo, node.workdir / "varlib" / "spacehub" / name
        finally:
            for space_id in SPACES.values():
                backend.forget(space_id)


def build(backend: KubernetesBackend, repo: SpaceRepo, n: str) -> str:
    """Build Space ``n`` with a requirements.txt of its own; answers the key of the environment its build kept."""
    sha = repo.commit({"README.md": README.format(sdk="gradio"), "app.py": APP, "requirements.txt": f"# {n}\n"})
    lines: list[str] = []
    backend.build(BuildSpec(SPACES[n], f"b{n}", sha, "gradio", None, None), lines.append)
    assert any("built once, kept in the cache" in line for line in lines), "\n".join(lines[-30:])
    key = backend._revision(f"b{n}")[2]
    assert key is not None and len(key) == 32
    return key


def gone(backend: KubernetesBackend, n: str, timeout: float = 120.0) -> None:
    """Wait until nothing of Space ``n`` is left in the cluster (its pod ends within its 10 s grace period; the rest
    is the garbage collector's and the kubelet's, slower on a loaded machine). Raises: AssertionError (with what is
    left)."""
    deadline = time.monotonic() + timeout
    while left := backend.cluster.leftovers(SPACES[n]):
        assert time.monotonic() < deadline, f"after {timeout:.0f} s, Space {n} still has {left}"
        time.sleep(0.2)


def age(path: Path, days: float) -> None:
    t = time.time() - days * DAY
    os.utime(path, (t, t))


def test_the_collection_keeps_what_pods_mount_and_what_was_used_lately_and_removes_the_rest(
    cached: tuple[KubernetesBackend, SpaceRepo, Path], pod_kube: client.ApiClient, pod_namespace: str
) -> None:
    backend, repo, envs = cached
    keys = {n: build(backend, repo, n) for n in "abc"}
    assert len(set(keys.values())) == 3
    for n in "ab":
        backend.start(dataclasses.replace(release_spec(repo, f"r{n}", f"b{n}"), space_id=SPACES[n]))
    st = backend.status("ra")
    assert st is not None and st.endpoint is not None
    url = f"http://{st.endpoint.host}:{st.endpoint.port}"
    wait_http(url + "/")
    backend.forget(SPACES["b"])  # B is deleted: once its pod is gone, nothing mounts its environment
    gone(backend, "b")
    # on the node: the three environments, complete, the app user's
    assert all((envs / k / ".complete").is_file() and (envs / k).stat().st_uid == 1000 for k in keys.values())
    for k in (keys["a"], keys["b"]):  # last used 8 days ago (kept, found, or seen in use)
        for p in (envs / k / ".complete", envs / k, envs / ".used" / k):
            age(p, 8)
    scratch = envs / ".tmp" / "build-cut-off"
    scratch.mkdir()
    age(scratch, 2)

    started = time.monotonic()
    results = backend.collect_envs()
    print(f"a collection on the node (its Job created → done → deleted) in {time.monotonic() - started:.1f} s")
    (node,) = client.CoreV1Api(pod_kube).list_node().items
    report = results[node.metadata.name]
    assert report["removed"] == [keys["b"]] and report["kept"] == 1 and report["scratch"] == 1, report
    assert not (envs / keys["b"]).exists() and (envs / keys["a"] / ".complete").is_file()
    assert (envs / keys["c"] / ".complete").is_file() and not scratch.exists()
    assert time.time() - (envs / ".used" / keys["a"]).stat().st_mtime < 600  # seen in use
    # A's pod still has its environment, read-only at /opt/spacehub/env
    r = httpx.get(url + "/file", params={"path": "/opt/spacehub/env/.complete"}, timeout=10)
    assert r.status_code == 200 and not r.text.startswith("<error"), r.text
    label = "spacehub.dev/kind=envs-gc"
    assert not client.BatchV1Api(pod_kube).list_namespaced_job(pod_namespace, label_selector=label).items
    assert not client.CoreV1Api(pod_kube).list_namespaced_config_map(pod_namespace, label_selector=label).items

    # A deleted too, no day kept: every environment nothing mounts goes
    backend.forget(SPACES["a"])
    gone(backend, "a")
    backend.env_keep_days = 0
    results = backend.collect_envs()
    assert sorted(results[node.metadata.name]["removed"]) == sorted([keys["a"], keys["c"]]), results
    assert not [p.name for p in envs.iterdir() if not p.name.startswith(".")]
