"""End to end on the pod tier: a live `spacehub serve` with the Kubernetes backend (kubernetes.endpoints = pod) on a
real node; a plain-Python Space pushed with the real huggingface_hub client builds (a Job fetching the commit from
this Hub), serves through SpaceHub's proxy from its pod, sleeps after its sleep time (scaled to zero: no pod), and a
visit wakes it (a scale to one, a new pod)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.e2e.conftest import Hub
from tests.k8s.cluster import ControlPlane
from tests.k8s.conftest import pod_hub, wait_for
from tests.k8s.node import Node

pytestmark = [pytest.mark.slow, pytest.mark.pods]

RUN_TIMEOUT = 180
SLEEP = 2  # seconds without a visit before it sleeps
APP_PODS = "app.kubernetes.io/managed-by=spacehub,spacehub.dev/kind notin (build)"  # not the build Job's pod


def page_boot(text: str) -> str:
    """The random id the app drew when it started: another pod, another id."""
    return text.split("<p id='boot'>")[1].split("<")[0]


@pytest.fixture(scope="module")
def hub(
    pod_plane: tuple[ControlPlane, Node], pod_kube: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Hub, str]]:
    with pod_hub(*pod_plane, pod_kube, tmp_path_factory.mktemp("e2e-k8s") / "data") as found:
        yield found


def test_a_space_serves_from_its_pod_sleeps_to_zero_and_a_visit_wakes_it(
    hub: tuple[Hub, str], pod_kube: client.ApiClient, tmp_path: Path
) -> None:
    h, namespace = hub
    apps, core = client.AppsV1Api(pod_kube), client.CoreV1Api(pod_kube)
    repo_id = h.name("pods")
    pushed = time.monotonic()
    h.upload(repo_id, "python-http", tmp_path)
    h.wait(repo_id, "RUNNING", RUN_TIMEOUT)
    first = h.serves(repo_id, "python-http-v1")
    print(f"push → RUNNING → 200 through the proxy in {time.monotonic() - pushed:.1f} s")
    # the pod's status on the API server may lag the app's first answer by a moment
    wait_for("one Running pod", lambda: [p.status.phase for p in
                                         core.list_namespaced_pod(namespace, label_selector=APP_PODS).items]
             == ["Running"], timeout=30)  # fmt: skip
    # the app's output reaches the Space's run log from the pod (it prints a line per request)
    wait_for("the app's lines in its run log", lambda: "python-http-v1 served GET /" in h.logs(repo_id), timeout=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the client warns on cpu-basic; this hub allows it
        assert h.api.set_space_sleep_time(repo_id, SLEEP).sleep_time == SLEEP
    h.wait(repo_id, "SLEEPING", SLEEP + 60)
    (deployment,) = apps.list_namespaced_deployment(namespace).items
    # (a pod cannot be frozen: the pass that finds so says SLEEPING, and the next one scales it to zero)
    wait_for("zero replicas", lambda: apps.read_namespaced_deployment(deployment.metadata.name, namespace)
             .spec.replicas == 0, 30)  # fmt: skip
    wait_for("the pod to go", lambda: not core.list_namespaced_pod(namespace, label_selector=APP_PODS).items, 60)
    visited = time.monotonic()
    r = h.get(repo_id, "/again", timeout=120)  # an API client waits for the app
    print(f"wake: a visit to a Space at zero replicas → 200 in {time.monotonic() - visited:.1f} s")
    assert r.status_code == 200 and "python-http-v1" in r.text
    assert page_boot(r.text) != page_boot(first.text), "a new pod answered"
    assert apps.read_namespaced_deployment(deployment.metadata.name, namespace).spec.replicas == 1
    # the first pod's lines are kept after it is gone, the new pod's are added
    wait_for("the new pod's line", lambda: "python-http-v1 served GET /again" in h.logs(repo_id), timeout=30)
    assert "python-http-v1 served GET /" in h.logs(repo_id)
