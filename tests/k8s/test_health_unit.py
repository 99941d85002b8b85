"""Cluster facts as pure functions, on literal objects shaped as the API serves them (the same functions run against
a real API server in test_cluster.py)."""

from __future__ import annotations

from typing import Any

from spacehub.flavors import Catalog
from spacehub.runtime.backends.kubernetes.capacity import ClusterCapacity, node_capacity
from spacehub.runtime.backends.kubernetes.health import space_health, tally, unschedulable_reason
from spacehub.runtime.backends.kubernetes.manifests import ACCELERATOR_LABEL, ANNOTATION_STATE, LABEL_RELEASE
from spacehub.runtime.types import Stage

CATALOG = Catalog()


def node(
    name: str,
    cpu: str = "16",
    memory: str = "64Gi",
    gpus: int = 0,
    labels: dict[str, str] | None = None,
    ready: bool = True,
    cordoned: bool = False,
) -> dict[str, Any]:
    alloc = {"cpu": cpu, "memory": memory, "pods": "110"}
    if gpus:
        alloc["nvidia.com/gpu"] = str(gpus)
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"unschedulable": cordoned},
        "status": {"allocatable": alloc, "conditions": [{"type": "Ready", "status": str(ready)}]},
    }


def deployment(replicas: int = 1, release: str = "r2", state: str = "running", **conditions: dict[str, str]) -> dict:
    return {
        "metadata": {"name": "space-x", "annotations": {ANNOTATION_STATE: state}},
        "spec": {"replicas": replicas, "template": {"metadata": {"labels": {LABEL_RELEASE: release}}}},
        "status": {"conditions": [{"type": k, **v} for k, v in conditions.items()]},
    }


def pod(
    name: str = "p1",
    release: str = "r2",
    ready: bool = False,
    waiting: str | None = None,
    last: dict | None = None,
    scheduled: dict | None = None,
    selector: dict | None = None,
) -> dict:
    status: dict[str, Any] = {"conditions": [{"type": "Ready", "status": str(ready)}]}
    if scheduled:
        status["conditions"].append({"type": "PodScheduled", **scheduled})
    if waiting or last:
        cs: dict[str, Any] = {"name": "app", "image": "img:1", "restartCount": 4, "state": {}}
        if waiting:
            cs["state"] = {"waiting": {"reason": waiting, "message": "m"}}
        if last:
            cs["lastState"] = {"terminated": last}
        status["containerStatuses"] = [cs]
    return {
        "metadata": {"name": name, "labels": {LABEL_RELEASE: release}},
        "spec": {
            "nodeSelector": selector or {},
            "containers": [{"resources": {"limits": {"memory": "16Gi", "cpu": "2"}}}],
        },
        "status": status,
    }


def test_no_deployment_is_stopped_and_zero_replicas_sleep_or_pause() -> None:
    assert space_health(None, []).stage is Stage.STOPPED
    assert space_health(deployment(0, state="sleeping"), []).stage is Stage.SLEEPING
    assert space_health(deployment(0, state="paused"), []).stage is Stage.PAUSED


def test_ready_pod_of_the_current_release_is_running_else_starting() -> None:
    assert space_health(deployment(), [pod(ready=True)]).stage is Stage.RUNNING
    assert space_health(deployment(), [pod()]).stage is Stage.APP_STARTING
    assert space_health(deployment(), []).stage is Stage.APP_STARTING
    rolling = space_health(deployment(), [pod("old", "r1", ready=True), pod("new")])
    assert rolling.stage is Stage.RUNNING_APP_STARTING and rolling.ready == 1


def test_crash_loop_and_oom_say_why() -> None:
    crash = space_health(deployment(), [pod(waiting="CrashLoopBackOff", last={"exitCode": 1, "reason": "Error"})])
    assert crash.stage is Stage.RUNTIME_ERROR
    assert "exited with code 1" in crash.error and "CrashLoopBackOff" in crash.error and "4 times" in crash.error
    oom = space_health(deployment(), [pod(waiting="CrashLoopBackOff", last={"exitCode": 137, "reason": "OOMKilled"})])
    assert oom.stage is Stage.RUNTIME_ERROR
    assert "out of memory" in oom.error and "16Gi" in oom.error and "OOMKilled" in oom.error


def test_a_firewall_that_cannot_install_its_rules_keeps_the_pod_from_starting_and_says_why() -> None:
    message = "firewall: the IPv4 rules cannot be installed: iptables-restore: line 7 failed"
    failed = {"name": "firewall", "image": "fw:1", "restartCount": 0,
              "state": {"terminated": {"exitCode": 1, "reason": "Error", "message": message}}}  # fmt: skip
    p = pod()
    p["status"]["initContainerStatuses"] = [failed]
    p["status"]["containerStatuses"] = [{"name": "app", "state": {"waiting": {"reason": "PodInitializing"}}}]
    h = space_health(deployment(), [p])
    assert h.stage is Stage.RUNTIME_ERROR
    assert h.error == f"its firewall init container exited with code 1: {message}"
    # the kubelet runs it again after a back-off: the run that failed, and how often
    again = {**failed, "restartCount": 2, "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
             "lastState": failed["state"]}  # fmt: skip
    p["status"]["initContainerStatuses"] = [again]
    assert space_health(deployment(), [p]).error == (
        f"its firewall init container exited with code 1: {message}; restarted 2 times (CrashLoopBackOff)"
    )


def test_image_pull_errors_prefer_the_kubelets_event() -> None:
    p = pod(waiting="ImagePullBackOff")
    events = [
        {
            "involvedObject": {"name": "p1"},
            "reason": "Failed",
            "message": 'Failed to pull image "img:1": not found',
            "lastTimestamp": "2026-01-01T00:00:01Z",
        },
        {"involvedObject": {"name": "other"}, "reason": "Failed", "message": "not this one"},
    ]
    h = space_health(deployment(), [p], events)
    assert h.stage is Stage.RUNTIME_ERROR
    assert h.error == "cannot pull image 'img:1': Failed to pull image \"img:1\": not found"
    assert "Back-off" not in space_health(deployment(), [p]).error  # without the event: the waiting message


def test_a_failing_new_release_keeps_running_on_the_old_one_and_says_so() -> None:
    h = space_health(deployment(), [pod("old", "r1", ready=True), pod("new", waiting="ImagePullBackOff")])
    assert h.stage is Stage.RUNNING
    assert h.error.startswith("the new release cannot start: cannot pull image")


def test_deployment_conditions() -> None:
    failure = deployment(ReplicaFailure={"status": "True", "message": 'pods "x" is forbidden: exceeded quota'})
    assert space_health(failure, []).error == 'cannot create its pod: pods "x" is forbidden: exceeded quota'
    late = deployment(Progressing={"status": "False", "reason": "ProgressDeadlineExceeded", "message": "too slow"})
    h = space_health(late, [pod()])
    assert h.stage is Stage.RUNTIME_ERROR and "did not become ready in time" in h.error


def test_scheduler_tally() -> None:
    msg = "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match node selector."
    assert tally(msg) == {"Insufficient cpu": 1, "node(s) didn't match node selector": 2}
    assert tally("0/1 nodes are available: 1 Insufficient nvidia.com/gpu.") == {"Insufficient nvidia.com/gpu": 1}


def test_unschedulable_reasons_a_user_reads() -> None:
    gpu_pod = pod(selector={ACCELERATOR_LABEL: "A10G"})
    reason, forever = unschedulable_reason(gpu_pod, "0/2 nodes are available: 2 node(s) didn't match node selector.")
    assert (reason, forever) == (f"no node has an A10G (no node is labelled {ACCELERATOR_LABEL}=A10G)", True)
    busy, forever = unschedulable_reason(
        gpu_pod, "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) didn't match node selector."
    )
    assert busy.startswith("every A10G is in use") and not forever
    cap = ClusterCapacity.of([node("small", cpu="1", memory="2Gi")])
    big, forever = unschedulable_reason(
        pod(), "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory.", cap
    )
    assert big.startswith("no node is large enough") and forever
    h = space_health(
        deployment(),
        [
            pod(
                selector={ACCELERATOR_LABEL: "A100"},
                scheduled={
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/2 nodes are available: 2 node(s) didn't match node selector.",
                },
            )
        ],
    )
    assert h.stage is Stage.RUNTIME_ERROR and h.error.startswith("no node has an A100")


def test_node_capacity_reads_allocatable_and_labels() -> None:
    n = node_capacity(node("g", cpu="7500m", memory="31Gi", gpus=2, labels={"nvidia.com/gpu.product": "NVIDIA-A10G"}))
    assert (n.cpu, n.memory_bytes, n.gpus, n.accelerator, n.schedulable) == (7.5, 31 * 2**30, 2, "NVIDIA-A10G", True)
    assert not node_capacity(node("x", ready=False)).schedulable
    assert not node_capacity(node("x", cordoned=True)).schedulable


def test_cluster_capacity_says_which_flavors_fit_and_why_not() -> None:
    cap = ClusterCapacity.of(
        [
            node("cpu", cpu="16", memory="64Gi"),
            node("a10g", cpu="16", memory="64Gi", gpus=1, labels={ACCELERATOR_LABEL: "A10G"}),
            node("t4-unlabelled", cpu="8", memory="32Gi", gpus=1, labels={"nvidia.com/gpu.product": "Tesla-T4"}),
            node("down", cpu="256", memory="2Ti", gpus=8, labels={ACCELERATOR_LABEL: "A100"}, ready=False),
        ]
    )
    fits = cap.catalog(CATALOG)
    assert fits["cpu-basic"] is None and fits["cpu-upgrade"] is None and fits["a10g-small"] is None
    assert fits["a10g-large"] is None
    assert fits["a10g-largex2"] == "it needs 2 Nvidia A10G GPUs; no A10G node has more than 1"
    assert fits["a100-large"].startswith("no node has an A100")  # the A100 node is not Ready
    assert "t4-unlabelled look like it but lack the label" in fits["t4-small"]
    assert fits["l40sx8"].startswith("no node has an L40S")
    small = ClusterCapacity.of([node("tiny", cpu="1", memory="4Gi")])
    assert small.unfit(CATALOG.get("cpu-basic")).startswith(
        "cpu-basic needs 2 CPU and 16 GB of memory on one node; the nodes have at most 1 CPU"
    )
    assert ClusterCapacity.of([]).unfit(CATALOG.get("cpu-basic")) == "the cluster has no node that takes pods"
    assert [d.id for d in cap.devices()] == ["a10g/0", "t4-unlabelled/0"]


def test_log_times_compare_as_text_whatever_the_fraction() -> None:
    """The kubelet's RFC 3339 times drop a fraction's trailing zeros; the log relay compares them as text."""
    from spacehub.runtime.backends.kubernetes.backend import _log_time

    times = ["2026-12-06T05:43:43.6Z", "2026-12-06T05:43:43.609654699Z", "2026-12-06T05:43:43.61Z",
             "2026-12-06T05:43:44Z", "2026-12-06T05:43:44.000000001Z"]  # fmt: skip
    assert sorted(times, key=_log_time) == times
