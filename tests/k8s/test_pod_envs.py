"""Python environments once per key on the pod tier (kubernetes.env_cache_host_path, its default): a Space with a
requirement, pushed with huggingface_hub to a live `spacehub serve` on the Kubernetes backend, is installed once by
its build Job into the node's cache; its pod mounts that environment read-only and installs nothing, and so does the
pod that wakes it from zero replicas, and so does a second Space with the same requirements (its build finds the
key in the cache: no pip at all). The volume holds one complete environment, the app user's, and no scratch left.
Its pods run an image that trusts this machine's CA (node.host_ca_image): pip reaches the index through its egress,
which re-signs TLS."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.e2e.conftest import Hub
from tests.k8s.cluster import ControlPlane
from tests.k8s.conftest import pod_hub, wait_for
from tests.k8s.node import CA_IMAGE, Node, host_ca_image

pytestmark = [pytest.mark.slow, pytest.mark.pods]
APP_PODS = "app.kubernetes.io/managed-by=spacehub,spacehub.dev/kind notin (build)"
TIMEOUT = 300
SLEEP = 2
REQUIREMENTS = "six==1.17.0\n"
# the app shows where the package it imports comes from
APP_PATCH = ("<p id='pid'>", "<p id='six'>{__import__('six').__file__}</p><p id='pid'>")


@pytest.fixture(scope="module")
def hub(
    pod_plane: tuple[ControlPlane, Node], pod_kube: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Hub, str, Node]]:
    pod_plane[1].import_image(host_ca_image(), CA_IMAGE.rsplit(":", 1)[0])
    env = {"SPACEHUB_KUBERNETES__IMAGE": CA_IMAGE}
    with pod_hub(*pod_plane, pod_kube, tmp_path_factory.mktemp("envs-k8s") / "data", small=True, **env) as (
        h,
        namespace,
    ):
        yield h, namespace, pod_plane[1]


def app_pod(core: client.CoreV1Api, namespace: str, space_id: str, exclude: frozenset[str] = frozenset()) -> Any:
    return wait_for("a Running app pod", lambda: next((p for p in core.list_namespaced_pod(
        namespace, label_selector=f"{APP_PODS},spacehub.dev/space={space_id}").items
        if p.status.phase == "Running" and p.metadata.uid not in exclude), None), timeout=60)  # fmt: skip


def install_log(core: client.CoreV1Api, namespace: str, pod: client.V1Pod) -> str:
    return str(core.read_namespaced_pod_log(pod.metadata.name, namespace, container="install"))


def test_an_environment_is_built_once_and_mounted_by_every_pod_of_its_key(
    hub: tuple[Hub, str, Node], pod_kube: client.ApiClient, tmp_path: Path
) -> None:
    h, namespace, node = hub
    core, apps = client.CoreV1Api(pod_kube), client.AppsV1Api(pod_kube)
    envs = node.workdir / "varlib" / "spacehub" / "envs"
    before = {p.name for p in envs.iterdir() if not p.name.startswith(".")} if envs.is_dir() else set()

    # the first Space: its build installs six once, into the cache
    first = h.name("env-a")
    pushed = time.monotonic()
    h.upload(first, "python-http", tmp_path, replace={"app.py": APP_PATCH}, files={"requirements.txt": REQUIREMENTS})
    h.wait(first, "RUNNING", TIMEOUT)
    print(f"first Space: push → RUNNING in {time.monotonic() - pushed:.1f} s")
    build = "\n".join(h.logs(first, "build"))
    assert "Successfully installed six-1.17.0" in build, build[-3000:]
    assert "built once, kept in the cache" in build, build[-3000:]
    key = build.split("environment ", 1)[1].split(":", 1)[0]
    assert len(key) == 32
    pod = app_pod(core, namespace, h.space_id(first))
    log = install_log(core, namespace, pod)
    assert f"environment {key}: from the cache, nothing to install" in log and "Successfully" not in log, log
    # the app imports six from its environment, read-only in the cache
    r = h.serves(first, "python-http-v1")
    assert "<p id='six'>/opt/spacehub/env/site-packages/six.py</p>" in r.text, r.text
    (app,) = pod.spec.containers
    mount = next(m for m in app.volume_mounts if m.name == "envs")
    assert (mount.sub_path, mount.read_only, mount.mount_path) == (key, True, "/opt/spacehub/env")
    # on the node: one complete environment, the app user's, and no scratch folder left
    done = envs / key / ".complete"
    assert done.is_file() and (envs / key / "site-packages" / "six.py").is_file()
    assert (envs.stat().st_uid, (envs / key).stat().st_uid) == (1000, 1000)
    assert {p.name for p in envs.iterdir() if not p.name.startswith(".")} - before == {key}
    assert not any((envs / ".tmp").iterdir()), list((envs / ".tmp").iterdir())

    # asleep at zero replicas, then woken: the new pod installs nothing either
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        h.api.set_space_sleep_time(first, SLEEP)
    h.wait(first, "SLEEPING", SLEEP + 60)
    wait_for("the pod to go", lambda: not core.list_namespaced_pod(
        namespace, label_selector=f"{APP_PODS},spacehub.dev/space={h.space_id(first)}").items, 60)  # fmt: skip
    woken = time.monotonic()
    r = h.get(first, "/again", timeout=120)
    print(f"wake from zero replicas → 200 in {time.monotonic() - woken:.1f} s")
    assert r.status_code == 200 and "/opt/spacehub/env/site-packages/six.py" in r.text
    again = app_pod(core, namespace, h.space_id(first), exclude=frozenset({pod.metadata.uid}))
    log = install_log(core, namespace, again)
    assert "from the cache, nothing to install" in log and "Successfully" not in log, log
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        h.api.set_space_sleep_time(first, 3600)

    # a second Space with the same requirements: its build finds the key, no pip at all, and its pod mounts it
    second = h.name("env-b")
    pushed = time.monotonic()
    h.upload(second, "python-http", tmp_path, replace={"app.py": APP_PATCH}, files={"requirements.txt": REQUIREMENTS})
    h.wait(second, "RUNNING", TIMEOUT)
    print(f"second Space (same requirements): push → RUNNING in {time.monotonic() - pushed:.1f} s")
    build = "\n".join(h.logs(second, "build"))
    assert f"environment {key}: in the cache, nothing to install" in build, build[-3000:]
    assert "Successfully installed" not in build and "Collecting" not in build, build[-3000:]
    pod = app_pod(core, namespace, h.space_id(second))
    assert "from the cache, nothing to install" in install_log(core, namespace, pod)
    assert "/opt/spacehub/env/site-packages/six.py" in h.serves(second, "python-http-v1").text
    assert {p.name for p in envs.iterdir() if not p.name.startswith(".")} - before == {key}
    assert apps.read_namespaced_deployment(f"space-{h.space_id(second)}", namespace).spec.replicas == 1
