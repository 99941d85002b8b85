"""A Space's objects on a real control plane (Kubernetes 1.20 kube-apiserver, controller-manager and scheduler on
loopback; a stand-in kubelet plays the nodes): the API server takes them as built, the scheduler places them, the
controllers roll, scale and collect them, and the cluster's own conditions read back as the Space's stage."""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
from typing import Any

import httpx
import pytest
from kubernetes import client

from spacehub.flavors import Catalog, Flavor
from spacehub.runtime.backends.kubernetes import firewall
from spacehub.runtime.backends.kubernetes import manifests as m
from spacehub.runtime.backends.kubernetes.capacity import read_nodes
from spacehub.runtime.backends.kubernetes.manifests import ClusterOptions, SpaceRelease
from spacehub.runtime.backends.kubernetes.objects import Cluster
from spacehub.runtime.types import Stage
from tests.k8s.cluster import ControlPlane
from tests.k8s.conftest import CPU_NODE, GPU_NODE, wait_for
from tests.k8s.kubelet import StandInKubelet

CATALOG = Catalog()
SECRET = "hf_this_value_must_stay_in_the_secret"


def release(flavor: str | Flavor = "cpu-basic", **kw: Any) -> SpaceRelease:
    base: dict[str, Any] = dict(
        space_id=secrets.token_hex(12),
        repo="alice/demo",
        commit=secrets.token_hex(20),
        release_id="r1",
        flavor=CATALOG.get(flavor) if isinstance(flavor, str) else flavor,
        image="localhost/spaces/demo:1",
        app_port=7860,
        env={"PORT": "7860"},
        variables=("MODEL",),
        secrets=("HF_TOKEN",),
    )
    base.update(kw)
    return SpaceRelease(**base)


def deploy(cluster: Cluster, r: SpaceRelease, opts: ClusterOptions) -> None:
    cluster.apply(m.space_objects(r, opts, {k: SECRET for k in r.secrets}, {k: "gpt2" for k in r.variables}))


def stage_is(cluster: Cluster, r: SpaceRelease, stage: Stage, timeout: float = 30.0) -> Any:
    return wait_for(f"{stage} of {r.space_id}", lambda: (h := cluster.health(r.space_id)).stage is stage and h, timeout)


def test_api_server_accepts_a_space_as_built_and_it_runs(cluster: Cluster, options: ClusterOptions) -> None:
    r = release(storage_bytes=None)
    deploy(cluster, r, options)
    d = cluster.apps.read_namespaced_deployment(m.name(r.space_id), cluster.namespace)
    pod_spec = cluster.api.sanitize_for_serialization(d.spec.template.spec)
    # the 1.20 API server kept every field we set: an unknown one would have been dropped silently
    assert pod_spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod_spec["automountServiceAccountToken"] is False and pod_spec["enableServiceLinks"] is False
    assert pod_spec["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod_spec["containers"][0]["resources"]["limits"] == {"cpu": "2", "memory": "16Gi"}
    # the pod's own firewall comes first, root with NET_ADMIN added and nothing else; the app still drops everything
    (wall,) = pod_spec["initContainers"]
    assert wall["name"] == "firewall" and wall["command"] == ["sh", "-c", firewall.PROGRAM, "firewall"]
    assert wall["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["NET_ADMIN"]}
    assert wall["securityContext"]["runAsUser"] == 0 and wall["securityContext"]["allowPrivilegeEscalation"] is False
    assert wall["securityContext"]["readOnlyRootFilesystem"] is True and wall["securityContext"]["privileged"] is False
    assert wall["terminationMessagePolicy"] == "FallbackToLogsOnError"
    rules = {e["name"]: e.get("value") or e.get("valueFrom") for e in wall["env"]}
    assert rules["SPACEHUB_RULES_V4"] == firewall.template(m.firewall_policy(r, options), 4)  # kept to the byte
    assert rules["SPACEHUB_HOST_IP"] == {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.hostIP"}}
    app = pod_spec["containers"][0]["securityContext"]
    assert app["capabilities"] == {"drop": ["ALL"]} and app["runAsUser"] == 1000 and app["runAsNonRoot"] is True
    assert app["allowPrivilegeEscalation"] is False
    pol = cluster.networking.read_namespaced_network_policy(m.name(r.space_id), cluster.namespace)
    assert pol.spec.policy_types == ["Ingress", "Egress"]
    svc = cluster.core.read_namespaced_service(m.name(r.space_id), cluster.namespace)
    assert svc.spec.cluster_ip.startswith("10.96.")

    healthy = stage_is(cluster, r, Stage.RUNNING)
    assert healthy.ready == 1 and healthy.error is None
    (pod,) = cluster.pods(r.space_id)
    assert pod["spec"]["nodeName"] == CPU_NODE.name  # the GPU node is tainted: CPU Spaces stay off it
    assert pod["metadata"]["labels"][m.LABEL_COMMIT] == r.commit

    deploy(cluster, r, options)  # applying again changes nothing and keeps the Service's address
    svc2 = cluster.core.read_namespaced_service(m.name(r.space_id), cluster.namespace)
    assert svc2.spec.cluster_ip == svc.spec.cluster_ip
    assert cluster.apps.read_namespaced_deployment(m.name(r.space_id), cluster.namespace).metadata.generation == 1


def test_gpu_space_is_placed_on_the_gpu_node(cluster: Cluster, options: ClusterOptions) -> None:
    r = release("a10g-small")
    deploy(cluster, r, options)
    stage_is(cluster, r, Stage.RUNNING)
    (pod,) = cluster.pods(r.space_id)
    assert pod["spec"]["nodeName"] == GPU_NODE.name
    assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"

    # the one A10G is taken: a second A10G Space waits, and says so
    other = release("a10g-small")
    deploy(cluster, other, options)
    waiting = wait_for(
        "the second A10G Space to be unschedulable", lambda: (h := cluster.health(other.space_id)).error and h
    )
    assert waiting.stage is Stage.APP_STARTING
    assert waiting.error.startswith("every A10G is in use"), waiting.error
    cluster.delete(r.space_id)  # freed: the scheduler places the waiting one
    stage_is(cluster, other, Stage.RUNNING)


def test_flavor_no_node_can_hold_stays_pending_with_an_honest_reason(cluster: Cluster, options: ClusterOptions) -> None:
    r = release("a100-large")
    deploy(cluster, r, options)
    failed = stage_is(cluster, r, Stage.RUNTIME_ERROR)
    assert failed.error == f"no node has an A100 (no node is labelled {m.ACCELERATOR_LABEL}=A100)"
    (pod,) = cluster.pods(r.space_id)
    assert pod["status"]["phase"] == "Pending"
    cond = next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
    # the 1.20 scheduler says "2 node(s) didn't match Pod's node affinity." for a node selector
    assert cond["reason"] == "Unschedulable" and cond["message"].startswith("0/2 nodes are available: 2 node(s)")


def test_too_big_for_every_node(cluster: Cluster, options: ClusterOptions, kube: client.ApiClient) -> None:
    capacity = read_nodes(client.CoreV1Api(kube))
    flavor = dataclasses.replace(CATALOG.get("cpu-upgrade"), cpu=64, memory_gb=512)
    r = release(flavor=flavor)
    deploy(cluster, r, options)
    h = wait_for("an unschedulable reason", lambda: (x := cluster.health(r.space_id, capacity)).error and x)
    assert h.stage is Stage.RUNTIME_ERROR
    assert h.error.startswith("no node is large enough"), h.error
    assert capacity.unfit(flavor) is not None


def test_capacity_is_read_from_the_nodes(kube: client.ApiClient) -> None:
    capacity = read_nodes(client.CoreV1Api(kube))
    by_name = {n.name: n for n in capacity.nodes}
    assert by_name[GPU_NODE.name].gpus == 1 and by_name[GPU_NODE.name].accelerator == "A10G"
    assert by_name[CPU_NODE.name].cpu == 16 and by_name[CPU_NODE.name].memory_bytes == 64 * 2**30
    fits = capacity.catalog(CATALOG)
    assert fits["a10g-small"] is None and fits["cpu-upgrade"] is None
    assert fits["a100-large"].startswith("no node has an A100")
    assert fits["a10g-largex2"] == "it needs 2 Nvidia A10G GPUs; no A10G node has more than 1"


def test_sleep_and_pause_scale_to_zero_and_wake_scales_back(cluster: Cluster, options: ClusterOptions) -> None:
    r = release()
    deploy(cluster, r, options)
    stage_is(cluster, r, Stage.RUNNING)
    cluster.scale(r.space_id, "sleeping")
    asleep = stage_is(cluster, r, Stage.SLEEPING)
    wait_for("the pod to go", lambda: not cluster.pods(r.space_id))
    assert asleep.error is None
    cluster.scale(r.space_id, "running")
    stage_is(cluster, r, Stage.RUNNING)
    deploy(cluster, dataclasses.replace(r, state="paused"), options)
    stage_is(cluster, r, Stage.PAUSED)
    wait_for("the pod to go", lambda: not cluster.pods(r.space_id))


def test_secrets_live_only_in_the_secret(cluster: Cluster, options: ClusterOptions) -> None:
    r = release()
    deploy(cluster, r, options)
    stage_is(cluster, r, Stage.RUNNING)
    ser = cluster.api.sanitize_for_serialization
    ns = cluster.namespace
    everything = {
        "ConfigMap": cluster.core.list_namespaced_config_map(ns).items,
        "Deployment": cluster.apps.list_namespaced_deployment(ns).items,
        "ReplicaSet": cluster.apps.list_namespaced_replica_set(ns).items,
        "Pod": cluster.core.list_namespaced_pod(ns).items,
        "Service": cluster.core.list_namespaced_service(ns).items,
        "Event": cluster.core.list_namespaced_event(ns).items,
    }
    for kind, items in everything.items():
        assert SECRET not in json.dumps(ser(items)), kind
    secret = cluster.core.read_namespaced_secret(m.secret_name(r.space_id), ns)
    assert base64.b64decode(secret.data["HF_TOKEN"]).decode() == SECRET
    cm = cluster.core.read_namespaced_config_map(m.variables_name(r.space_id), ns)
    assert cm.data == {"MODEL": "gpt2"}


def test_storage_claim_of_the_tier_binds_and_is_never_shrunk(
    cluster: Cluster, options: ClusterOptions, kube: client.ApiClient
) -> None:
    r = release(storage_bytes=2 * 10**9)
    deploy(cluster, r, options)
    pvc = cluster.core.read_namespaced_persistent_volume_claim(m.claim_name(r.space_id), cluster.namespace)
    assert pvc.spec.resources.requests["storage"] == "2G" or pvc.spec.resources.requests["storage"] == "2000000000"
    # no provisioner here: the pod waits for a volume, and says so
    waiting = wait_for("an unbound-claim reason", lambda: (h := cluster.health(r.space_id)).error and h)
    assert "storage claim is not bound" in waiting.error, waiting.error
    core = client.CoreV1Api(kube)
    pv = f"pv-{r.space_id}"
    core.create_persistent_volume(
        {
            "metadata": {"name": pv},
            "spec": {
                "capacity": {"storage": "5Gi"},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "hostPath": {"path": f"/tmp/{pv}"},
            },
        }
    )
    try:
        wait_for(
            "the claim to bind",
            lambda: (
                cluster.core.read_namespaced_persistent_volume_claim(
                    m.claim_name(r.space_id), cluster.namespace
                ).status.phase
                == "Bound"
            ),
        )
        stage_is(cluster, r, Stage.RUNNING)
        deploy(cluster, dataclasses.replace(r, storage_bytes=10**9, release_id="r2"), options)  # a smaller tier
        pvc = cluster.core.read_namespaced_persistent_volume_claim(m.claim_name(r.space_id), cluster.namespace)
        assert pvc.spec.resources.requests["storage"] in ("2G", "2000000000")
        assert pvc.metadata.labels[m.LABEL_RELEASE] == "r2"
    finally:
        cluster.delete(r.space_id)
        wait_for("the claim to go", lambda: not cluster.leftovers(r.space_id))
        core.delete_persistent_volume(pv)


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        ("crashloop", "the app exited with code 1; restarted 3 times (CrashLoopBackOff)"),
        (
            "oomkilled",
            "the app ran out of memory (OOMKilled at its 16Gi limit); exit code 137; restarted 3 times "
            "(CrashLoopBackOff)",
        ),
        (
            "imagepull",
            "cannot pull image 'localhost/spaces/demo:1': Failed to pull image \"localhost/spaces/demo:1\": "
            'rpc error: code = NotFound desc = failed to pull and unpack image "localhost/spaces/demo:1": '
            "not found",
        ),
    ],
)
def test_pod_failures_become_runtime_errors_with_the_reason(
    cluster: Cluster, options: ClusterOptions, kubelet: StandInKubelet, behaviour: str, expected: str
) -> None:
    r = release()
    kubelet.behave(r.space_id, behaviour)
    deploy(cluster, r, options)
    failed = stage_is(cluster, r, Stage.RUNTIME_ERROR)
    assert failed.error == expected


def test_a_new_release_rolls_out_without_downtime_and_a_broken_one_keeps_the_old(
    cluster: Cluster, options: ClusterOptions, kubelet: StandInKubelet
) -> None:
    r1 = release()
    deploy(cluster, r1, options)
    stage_is(cluster, r1, Stage.RUNNING)
    (old,) = cluster.pods(r1.space_id)
    kubelet.behave(r1.space_id, "imagepull", release="r2")
    r2 = dataclasses.replace(r1, release_id="r2", commit=secrets.token_hex(20), image="localhost/spaces/demo:2")
    deploy(cluster, r2, options)
    broken = wait_for("the new release's error", lambda: (h := cluster.health(r1.space_id)).error and h)
    assert broken.stage is Stage.RUNNING and broken.release == "r2"
    assert broken.error.startswith("the new release cannot start: cannot pull image 'localhost/spaces/demo:2'")
    names = {p["metadata"]["name"] for p in cluster.pods(r1.space_id)}
    assert old["metadata"]["name"] in names  # the old pod serves on (maxUnavailable 0)
    r3 = dataclasses.replace(r2, release_id="r3")
    deploy(cluster, r3, options)
    wait_for(
        "only the new release's pod",
        lambda: [p["metadata"]["labels"][m.LABEL_RELEASE] for p in cluster.pods(r1.space_id)] == ["r3"],
    )
    assert cluster.health(r1.space_id).stage is Stage.RUNNING


def test_delete_by_label_leaves_nothing(cluster: Cluster, options: ClusterOptions) -> None:
    r = release(storage_bytes=10**9)
    keep = release()
    deploy(cluster, r, options)
    deploy(cluster, keep, options)
    stage_is(cluster, keep, Stage.RUNNING)
    assert set(cluster.leftovers(r.space_id)) >= {
        "Deployment",
        "Service",
        "Secret",
        "ConfigMap",
        "PersistentVolumeClaim",
        "NetworkPolicy",
        "ReplicaSet",
        "Pod",
    }
    cluster.delete(r.space_id, keep_storage=True)
    assert wait_for(
        "all but the claim to go",
        lambda: (
            (left := cluster.leftovers(r.space_id)) == {"PersistentVolumeClaim": [m.claim_name(r.space_id)]} and left
        ),
    )
    cluster.delete(r.space_id)
    wait_for("nothing left", lambda: cluster.leftovers(r.space_id) == {})
    assert cluster.health(r.space_id).stage is Stage.STOPPED
    assert cluster.health(keep.space_id).stage is Stage.RUNNING  # another Space is untouched


def test_secret_values_are_encrypted_at_rest_in_etcd(
    cluster: Cluster, options: ClusterOptions, control_plane: ControlPlane
) -> None:
    r = release()
    deploy(cluster, r, options)

    def stored(key: str) -> bytes:
        answer = httpx.post(
            f"{control_plane.etcd_url}/v3/kv/range", json={"key": base64.b64encode(key.encode()).decode()}
        )
        (kv,) = answer.json()["kvs"]
        return base64.b64decode(kv["value"])

    raw = stored(f"/registry/secrets/{cluster.namespace}/{m.secret_name(r.space_id)}")
    assert raw.startswith(b"k8s:enc:secretbox:v1:k1:")
    assert SECRET.encode() not in raw
    # the same read finds a ConfigMap's values in the clear: the check above can fail
    assert b"gpt2" in stored(f"/registry/configmaps/{cluster.namespace}/{m.variables_name(r.space_id)}")


def test_a_pod_the_cluster_refuses_to_create_is_a_runtime_error(cluster: Cluster, options: ClusterOptions) -> None:
    cluster.core.create_namespaced_resource_quota(
        cluster.namespace, {"metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": "0"}}}
    )
    wait_for(
        "the quota to be counted",
        lambda: (cluster.core.read_namespaced_resource_quota("no-pods", cluster.namespace).status.hard or {}).get(
            "pods"
        ),
    )
    r = release()
    deploy(cluster, r, options)
    failed = stage_is(cluster, r, Stage.RUNTIME_ERROR)
    assert failed.error.startswith("cannot create its pod: "), failed.error
    assert "exceeded quota: no-pods" in failed.error
