"""A deleted Space leaves nothing in the cluster: a live `spacehub serve` with the Kubernetes backend on the
control-plane tier (the real 1.20 API server and controllers, the stand-in kubelet playing the pods), driven with the
real huggingface_hub client. Deleting a Space with `HfApi.delete_repo` removes every object labelled with it (its
Secrets, the fetch token's included, ConfigMap, Services, NetworkPolicy, Deployment and its ReplicaSets and pods, build
Job and storage claim) and nothing of another Space; so does a SpaceHub that starts after a Space was deleted while
its runtime was down; `delete_space_storage` deletes the Space's claim."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi
from kubernetes import client

from spacehub.runtime.backends.kubernetes.objects import Cluster
from tests.conftest import start_server, stop_server
from tests.e2e.conftest import Hub
from tests.k8s.cluster import ControlPlane
from tests.k8s.conftest import plane_settings, wait_for

pytestmark = pytest.mark.slow

FILES = {"README.md": "---\ntitle: Demo\nsdk: gradio\n---\n", "app.py": "print('hello')\n"}
# what a Space with a secret and storage is made of once it has built and started (pods and ReplicaSets included)
KINDS = {"Deployment", "ReplicaSet", "Pod", "Job", "Service", "NetworkPolicy", "Secret", "ConfigMap",
         "PersistentVolumeClaim"}  # fmt: skip
LASTING = {"Deployment", "Job", "NetworkPolicy", "Secret", "ConfigMap", "PersistentVolumeClaim"}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "hub" / "data"


@pytest.fixture
def hub(control_plane: ControlPlane, namespace: str, data_dir: Path) -> Iterator[Hub]:
    server = start_server(data_dir, env=plane_settings(control_plane, namespace))
    alice = server.user("alice")
    try:
        yield Hub(server, alice, HfApi(endpoint=server.url, token=alice))
    finally:
        stop_server(server)


def make_space(h: Hub, name: str, secret: str) -> tuple[str, str]:
    """A Space with a secret and small storage, pushed; answers its name and database id."""
    repo_id = h.name(name)
    h.api.create_repo(repo_id, repo_type="space", space_sdk="gradio", space_secrets=[{"key": "TOKEN", "value": secret}])
    r = httpx.post(f"{h.url}/api/spaces/{repo_id}/storage", json={"tier": "small"},
                   headers={"authorization": f"Bearer {h.alice}"})  # fmt: skip
    assert r.status_code == 200, r.text
    for path, text in FILES.items():
        h.api.upload_file(path_or_fileobj=text.encode(), path_in_repo=path, repo_id=repo_id, repo_type="space")
    return repo_id, h.space_id(repo_id)


def all_made(cluster: Cluster, space_id: str) -> dict[str, list[str]]:
    """The Space's objects by kind once there is one of every kind, else nothing."""
    found = cluster.leftovers(space_id)
    return found if set(found) == KINDS else {}


def lasting(cluster: Cluster, space_id: str) -> dict[str, list[str]]:
    """The Space's objects that outlive its releases (a restarted SpaceHub that did not see a Space's app answer
    starts it again: new pods, a new release's Service)."""
    return {k: v for k, v in cluster.leftovers(space_id).items() if k in LASTING}


def secret_value(kube: client.ApiClient, namespace: str, space_id: str) -> str:
    secret = client.CoreV1Api(kube).read_namespaced_secret(f"space-{space_id}-secrets", namespace)
    return base64.b64decode(secret.data["TOKEN"]).decode()


def test_deleting_a_space_removes_every_object_of_it_and_nothing_of_another(
    control_plane: ControlPlane, hub: Hub, kube: client.ApiClient, namespace: str, data_dir: Path
) -> None:
    cluster = Cluster(kube, namespace)
    (gone_repo, gone), (kept_repo, kept) = make_space(hub, "gone", "s3cret-gone"), make_space(hub, "kept", "s3cret")
    made = time.monotonic()
    wait_for("every object of both Spaces", lambda: all_made(cluster, gone) and all_made(cluster, kept), 120)
    print(f"two Spaces pushed → every object made in {time.monotonic() - made:.1f} s")
    assert secret_value(kube, namespace, gone) == "s3cret-gone"
    before = cluster.leftovers(kept)

    deleted = time.monotonic()
    hub.api.delete_repo(gone_repo, repo_type="space")
    wait_for("nothing left of the deleted Space", lambda: not cluster.leftovers(gone), 60)
    print(f"delete_repo → nothing of the Space in the cluster in {time.monotonic() - deleted:.1f} s")
    assert cluster.leftovers(kept) == before  # the other Space's objects, every one, as they were
    assert secret_value(kube, namespace, kept) == "s3cret"

    # deleted while the runtime was down: a Hub without runtime deletes it, and nothing is removed then...
    later_repo, later = make_space(hub, "later", "s3cret-later")
    wait_for("every object of the third Space", lambda: all_made(cluster, later), 120)
    before = lasting(cluster, kept)
    stop_server(hub.server)
    down = start_server(data_dir)  # runtime.backend = "none": the Hub alone
    try:
        HfApi(endpoint=down.url, token=hub.alice).delete_repo(later_repo, repo_type="space")
        time.sleep(2)
        assert all_made(cluster, later), "a Hub without runtime touches no cluster"
    finally:
        stop_server(down)
    # ...then SpaceHub starts with its runtime, finds the Space's objects and no Space: they go
    started = time.monotonic()
    again = start_server(data_dir, env=plane_settings(control_plane, namespace))
    try:
        wait_for("nothing left of the Space deleted while SpaceHub was down", lambda: not cluster.leftovers(later), 60)
        print(f"start → the leftovers of a Space deleted meanwhile removed in {time.monotonic() - started:.1f} s")
        assert lasting(cluster, kept) == before and secret_value(kube, namespace, kept) == "s3cret"
        assert HfApi(endpoint=again.url, token=hub.alice).space_info(kept_repo).id == kept_repo
    finally:
        stop_server(again)


def test_deleting_a_spaces_storage_deletes_its_claim(hub: Hub, kube: client.ApiClient, namespace: str) -> None:
    """`delete_space_storage` (clients up to 1.33): the data is deleted for good, so its claim goes; the Space's
    other objects stay (a new release without storage)."""
    cluster = Cluster(kube, namespace)
    repo_id, space_id = make_space(hub, "storage", "s3cret")
    wait_for("every object of the Space", lambda: all_made(cluster, space_id), 120)
    (claim,) = cluster.leftovers(space_id)["PersistentVolumeClaim"]
    r = httpx.delete(f"{hub.url}/api/spaces/{repo_id}/storage", headers={"authorization": f"Bearer {hub.alice}"})
    assert r.status_code == 200 and r.json()["storage"] is None
    deleted = time.monotonic()
    wait_for("the claim to go", lambda: "PersistentVolumeClaim" not in cluster.leftovers(space_id), 60)
    print(f"delete_space_storage → its claim {claim} gone in {time.monotonic() - deleted:.1f} s")
    left = cluster.leftovers(space_id)
    assert {"Deployment", "Secret", "Service", "NetworkPolicy", "ConfigMap"} <= set(left)
    # a claim that is not SpaceHub's, in the same namespace, is never touched by the sweep
    core = client.CoreV1Api(kube)
    core.create_namespaced_persistent_volume_claim(namespace, {
        "metadata": {"name": "data-someone-elses"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    })  # fmt: skip
    r = httpx.post(f"{hub.url}/api/spaces/{repo_id}/storage", json={"tier": "small"},
                   headers={"authorization": f"Bearer {hub.alice}"})  # fmt: skip
    assert r.status_code == 200
    wait_for("a new claim", lambda: cluster.leftovers(space_id).get("PersistentVolumeClaim", [claim]) != [claim], 60)
    r = httpx.delete(f"{hub.url}/api/spaces/{repo_id}/storage", headers={"authorization": f"Bearer {hub.alice}"})
    wait_for("the new claim to go", lambda: "PersistentVolumeClaim" not in cluster.leftovers(space_id), 60)
    assert core.read_namespaced_persistent_volume_claim("data-someone-elses", namespace).metadata.deletion_timestamp \
        is None  # fmt: skip
