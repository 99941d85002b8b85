"""Fixtures of the control-plane tier: one control plane per test worker (session), its stand-in kubelet with a CPU
node and an A10G node, and a fresh namespace per test (deleted, and waited for, afterwards).

The pod tier (``pod_plane``, ``pod_kube``, ``pod_namespace``): a control plane of its own per worker (no stand-in
nodes on it, so every pod lands on the real one) with a real node (node.py: kubelet + containerd + CNI).

The tests skip, saying why, only when the Kubernetes binaries are missing and cannot be built here, or (the pod
tier) when the machine cannot hold a node; in CI (``CI`` set) that is a failure instead, so a tier cannot silently
stop running.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import HfApi
from kubernetes import client

from spacehub.runtime.backends.kubernetes import objects
from spacehub.runtime.backends.kubernetes.manifests import ACCELERATOR_LABEL, ClusterOptions, Peer
from tests.conftest import free_port, start_server, stop_server
from tests.e2e.conftest import Hub
from tests.k8s.cluster import ControlPlane, Unavailable, binaries
from tests.k8s.kubelet import FakeNode, StandInKubelet
from tests.k8s.node import Node, check_machine

CPU_NODE = FakeNode("cpu-1", cpu="16", memory="64Gi")
GPU_NODE = FakeNode(
    "gpu-a10g-1",
    cpu="16",
    memory="64Gi",
    gpus=1,
    labels={ACCELERATOR_LABEL: "A10G"},
    taints=({"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"},),
)


NO_SDK_PACKAGES = '{"gradio": [], "streamlit": []}'
# cpu-basic as small as a test app needs: the node has this machine's 2 CPUs, and the catalog's cpu-basic (2 CPU,
# 16 GB, requests = limits) takes all of them, so that a second Space would wait for the first
SMALL_FLAVORS = """
[[flavor]]
name = "cpu-basic"
cpu = 0.5
memory_gb = 1.5
"""


def _unavailable(tier: str, why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the Kubernetes {tier} tier must run in CI: {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    try:
        bin_dir = binaries(build=True)
    except Unavailable as e:
        _unavailable("control-plane", f"Kubernetes binaries unavailable: {e}")
    cp = ControlPlane.start(bin_dir)
    yield cp
    cp.stop()


@pytest.fixture(scope="session")
def pod_plane() -> Iterator[tuple[ControlPlane, Node]]:
    """A control plane and one real node (the pod tier)."""
    try:
        bin_dir = binaries(build=True)
        check_machine()
    except Unavailable as e:
        _unavailable("pod", f"the pod tier cannot run here: {e}")
    cp = ControlPlane.start(bin_dir)
    try:
        node = Node.start(cp, bin_dir)
    except Unavailable as e:
        cp.stop()
        _unavailable("pod", f"the pod tier cannot run here: {e}")
    except BaseException:
        cp.stop()
        raise
    yield cp, node
    node.stop()
    cp.stop()


@pytest.fixture(scope="session")
def pod_kube(pod_plane: tuple[ControlPlane, Node]) -> Iterator[client.ApiClient]:
    api = objects.connect(pod_plane[0].kubeconfig)
    yield api
    api.close()


@pytest.fixture
def pod_namespace(pod_kube: client.ApiClient) -> Iterator[str]:
    yield from _namespace(pod_kube)


@pytest.fixture(scope="session")
def kube(control_plane: ControlPlane) -> Iterator[client.ApiClient]:
    api = objects.connect(control_plane.kubeconfig)
    yield api
    api.close()


@pytest.fixture(scope="session")
def kubelet(kube: client.ApiClient) -> Iterator[StandInKubelet]:
    k = StandInKubelet(kube, [CPU_NODE, GPU_NODE]).start()
    yield k
    k.stop()


def wait_for(what: str, check, timeout: float = 30.0, interval: float = 0.1):  # type: ignore[no-untyped-def]
    """Poll ``check`` until it returns something truthy; its last value is returned. Raises: AssertionError."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {value!r})")


@pytest.fixture
def namespace(kube: client.ApiClient, kubelet: StandInKubelet) -> Iterator[str]:
    yield from _namespace(kube)


def _namespace(kube: client.ApiClient) -> Iterator[str]:
    core = client.CoreV1Api(kube)
    name = f"t-{secrets.token_hex(4)}"
    core.create_namespace({"metadata": {"name": name}})
    # the controller-manager creates the "default" service account that pods need before they can be created
    wait_for("the default service account", lambda: core.list_namespaced_service_account(name).items)
    yield name
    # Waiting for the pods to go is enough to free the nodes for the next test; the namespace controller deletes
    # the rest in the background (it would wait out the pods' grace period before looking again).
    apps = client.AppsV1Api(kube)
    # the controllers first (or they would make new pods), then the pods at once, then the rest with the namespace
    apps.delete_collection_namespaced_deployment(name, propagation_policy="Background")
    apps.delete_collection_namespaced_replica_set(name, propagation_policy="Background")
    core.delete_collection_namespaced_pod(name, grace_period_seconds=0)
    core.delete_namespace(name)
    wait_for(f"the pods of {name} to go", lambda: not core.list_namespaced_pod(name).items, timeout=60)


@pytest.fixture
def cluster(kube: client.ApiClient, namespace: str) -> objects.Cluster:
    return objects.Cluster(kube, namespace)


@pytest.fixture
def options(namespace: str) -> ClusterOptions:
    return ClusterOptions(
        namespace=namespace,
        hub=Peer(cidrs=("192.0.2.10/32",)),
        hub_ports=(8000,),
        cluster_cidrs=("10.244.0.0/16", "10.96.0.0/16"),
    )


@contextlib.contextmanager
def pod_hub(plane: ControlPlane, node: Node, kube: client.ApiClient, data_dir: Path, small: bool = False,
            **env: str) -> Iterator[tuple[Hub, str]]:  # fmt: skip
    """A live `spacehub serve` with the Kubernetes backend on the pod tier (``kubernetes.endpoints = pod``, listening
    where the pods reach it: the node's address), its Spaces in a namespace of their own (deleted afterwards), and
    the user alice; ``small``: cpu-basic is 0.5 CPU and 1.5 GB (several Spaces at once); ``env``: more settings.
    Yields the Hub and the namespace."""
    if small:
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir.parent / "flavors.toml").write_text(SMALL_FLAVORS)
        env = {"SPACEHUB_RUNTIME__FLAVORS_FILE": str(data_dir.parent / "flavors.toml"), **env}
    core = client.CoreV1Api(kube)
    namespace = f"spaces-{secrets.token_hex(3)}"
    core.create_namespace({"metadata": {"name": namespace}})
    wait_for("the default service account", lambda: core.list_namespaced_service_account(namespace).items)
    port = free_port()
    settings = {
        "SPACEHUB_RUNTIME__BACKEND": "kubernetes",
        "SPACEHUB_KUBERNETES__KUBECONFIG": str(plane.kubeconfig),
        "SPACEHUB_KUBERNETES__NAMESPACE": namespace,
        "SPACEHUB_KUBERNETES__HUB_URL": f"http://{node.ip}:{port}",  # where the pods fetch the code
        "SPACEHUB_KUBERNETES__HUB_CIDRS": f'["{node.ip}/32"]',
        "SPACEHUB_KUBERNETES__ENDPOINTS": "pod",
        "SPACEHUB_SERVER__HOST": "0.0.0.0",  # the pods reach it at the node's address, the tests at 127.0.0.1
        "SPACEHUB_RUNTIME__RECONCILE_INTERVAL": "0.5",
        "SPACEHUB_RUNTIME__CUSTOM_SLEEP_ON_FREE_HARDWARE": "true",
        "SPACEHUB_RUNTIME__MIN_AVAILABLE_MEMORY_MB": "0",
        # plain-Python apps (sdk: gradio without gradio, as examples/spaces/python-http): nothing from the index
        "SPACEHUB_KUBERNETES__SDK_PACKAGES": NO_SDK_PACKAGES,
        **env,
    }
    server = start_server(data_dir, env=settings, port=port)
    alice = server.user("alice")
    try:
        yield Hub(server, alice, HfApi(endpoint=server.url, token=alice)), namespace
    finally:
        stop_server(server)
        core.delete_namespace(namespace)


def plane_settings(plane: ControlPlane, namespace: str, **env: str) -> dict[str, str]:
    """The settings of a `spacehub serve` with the Kubernetes backend on the control-plane tier: its Spaces in
    ``namespace``; no container runs there (the stand-in kubelet plays the pods), so a Space builds and starts (its
    objects are made) but its app never answers the Hub (stage APP_STARTING). ``env``: more settings."""
    return {
        "SPACEHUB_RUNTIME__BACKEND": "kubernetes",
        "SPACEHUB_KUBERNETES__KUBECONFIG": str(plane.kubeconfig),
        "SPACEHUB_KUBERNETES__NAMESPACE": namespace,
        "SPACEHUB_RUNTIME__MIN_AVAILABLE_MEMORY_MB": "0",
        "SPACEHUB_KUBERNETES__SDK_PACKAGES": NO_SDK_PACKAGES,
        **env,
    }


@contextlib.contextmanager
def host_path_volumes(kube: client.ApiClient, node: Node, count: int = 1,
                      capacity: str = "1Ti") -> Iterator[list[Path]]:  # fmt: skip
    """``count`` PersistentVolumes on the node's disk (hostPath folders in its folder, owned by the Spaces' uid 1000:
    a hostPath volume is not chowned to the pod's fsGroup), so that a Space's claim binds: the pod tier has no
    provisioner. No storage class (the test cluster has no default one, so a claim without a class binds to them);
    ReadWriteOnce, ``capacity`` at least the tiers' size (a hostPath volume enforces no size). Yields their folders;
    deletes the volumes afterwards (the folders go with the node)."""
    core = client.CoreV1Api(kube)
    names, folders = [], []
    for _ in range(count):
        name = f"pv-{node.id}-{secrets.token_hex(3)}"
        folder = node.workdir / "volumes" / name
        folder.mkdir(parents=True)
        os.chown(folder, 1000, 1000)
        core.create_persistent_volume({
            "metadata": {"name": name, "labels": {"spacehub.dev/test-node": node.name}},
            "spec": {"capacity": {"storage": capacity}, "accessModes": ["ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": str(folder), "type": "Directory"}},
        })  # fmt: skip
        names.append(name)
        folders.append(folder)
    try:
        yield folders
    finally:
        for name in names:
            core.delete_persistent_volume(name)
