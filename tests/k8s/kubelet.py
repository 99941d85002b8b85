"""A stand-in kubelet for the control-plane tier: it registers Node objects (capacity, labels, taints), keeps them
alive (node Lease and Ready heartbeat, as the node lifecycle controller expects), and plays the pods the scheduler
binds to them, writing the status a real kubelet would (kwok's idea; kwok itself cannot be had here).

What a pod does is scripted per Space (its ``spacehub.dev/space`` label), so tests can see each failure the way the
backend will meet it on a real node:

    ready       Running, container running, Ready (the default)
    starting    Running, container running, not Ready (the readiness probe has not passed yet)
    crashloop   Running, not Ready, waiting CrashLoopBackOff, last terminated with exit code 1
    oomkilled   as crashloop, last terminated OOMKilled (exit code 137)
    imagepull   Pending, waiting ImagePullBackOff, and the kubelet's Warning "Failed" event
    exit-N      the container ran and exited with code N: Succeeded (N = 0) or Failed; the default for a Job's pods
                (``restartPolicy: Never``) is exit-0. A failing init container is ``init-exit-N`` (the first one
                after the firewall; the app never ran)

The stand-in runs nothing: a test that scripts ``exit-3`` for a task says what the container would do, as a
FakeBackend's ``task_exit`` does; what it proves is the rest (the Job, its controller, the status read back).

Pods being deleted are finished at once (a real kubelet deletes them with grace 0 once their containers stop).
It runs in a thread of the test process and polls every 0.1 s.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

SPACE_LABEL = "spacehub.dev/space"
RELEASE_LABEL = "spacehub.dev/release"
BEHAVIOURS = ("ready", "starting", "crashloop", "oomkilled", "imagepull")


@dataclass(frozen=True)
class FakeNode:
    name: str
    cpu: str = "16"
    memory: str = "64Gi"
    gpus: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Mapping[str, str], ...] = ()
    address: str = "127.0.0.1"

    def allocatable(self) -> dict[str, str]:
        amounts = {"cpu": self.cpu, "memory": self.memory, "pods": "110", "ephemeral-storage": "100Gi"}
        if self.gpus:
            amounts["nvidia.com/gpu"] = str(self.gpus)
        return amounts


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class StandInKubelet:
    def __init__(self, api: client.ApiClient, nodes: list[FakeNode]) -> None:
        self.api, self.nodes = api, {n.name: n for n in nodes}
        self.core = client.CoreV1Api(api)
        self.coordination = client.CoordinationV1Api(api)
        self.behaviours: dict[tuple[str, str | None], str] = {}
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stand-in-kubelet", daemon=True)
        self._ips: dict[str, str] = {}
        self._events_sent: set[str] = set()
        self._last_heartbeat = 0.0

    # ---- scripting -------------------------------------------------------------------------------------------------
    def behave(self, space_id: str, behaviour: str, release: str | None = None) -> None:
        """Script the pods of a Space (of one of its releases only, when ``release`` is given)."""
        if behaviour not in BEHAVIOURS and not re.fullmatch(r"(init-)?exit-\d+", behaviour):
            raise ValueError(f"unknown behaviour {behaviour!r}")
        self.behaviours[(space_id, release)] = behaviour

    def _behaviour(self, pod: Any) -> str:
        labels = pod.metadata.labels or {}
        space, release = labels.get(SPACE_LABEL, ""), labels.get(RELEASE_LABEL)
        default = "exit-0" if pod.spec.restart_policy == "Never" else "ready"
        return self.behaviours.get((space, release)) or self.behaviours.get((space, None)) or default

    # ---- nodes -----------------------------------------------------------------------------------------------------
    def start(self) -> StandInKubelet:
        for node in self.nodes.values():
            self.register(node)
        self._thread.start()
        return self

    def register(self, node: FakeNode) -> None:
        self.nodes[node.name] = node
        labels = {
            "kubernetes.io/hostname": node.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            **node.labels,
        }
        body = {"metadata": {"name": node.name, "labels": labels}, "spec": {"taints": [dict(t) for t in node.taints]}}
        try:
            self.core.create_node(body)
        except ApiException as e:
            if e.status != 409:
                raise
        self._heartbeat(node)

    def _heartbeat(self, node: FakeNode) -> None:
        now = _now()
        conditions = [
            {
                "type": kind,
                "status": "False",
                "reason": f"KubeletHas{reason}",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
                "message": "stand-in kubelet",
            }
            for kind, reason in (
                ("MemoryPressure", "SufficientMemory"),
                ("DiskPressure", "NoDiskPressure"),
                ("PIDPressure", "SufficientPID"),
            )
        ]
        conditions.append(
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
                "message": "stand-in kubelet is posting ready status",
            }
        )
        status = {
            "capacity": node.allocatable(),
            "allocatable": node.allocatable(),
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": node.address}, {"type": "Hostname", "address": node.name}],
            "nodeInfo": {
                "kubeletVersion": "v1.20.2",
                "containerRuntimeVersion": "stand-in://1",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }
        self.core.patch_node_status(node.name, {"status": status})
        lease = {
            "metadata": {"name": node.name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": node.name, "leaseDurationSeconds": 40, "renewTime": _micro_now()},
        }
        try:
            current = self.coordination.read_namespaced_lease(node.name, "kube-node-lease")
            lease["metadata"]["resourceVersion"] = current.metadata.resource_version
            self.coordination.replace_namespaced_lease(node.name, "kube-node-lease", lease)
        except ApiException as e:
            if e.status != 404:
                raise
            self.coordination.create_namespaced_lease("kube-node-lease", lease)

    # ---- pods ------------------------------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if time.monotonic() - self._last_heartbeat > 5:
                    for node in list(self.nodes.values()):
                        self._heartbeat(node)
                    self._last_heartbeat = time.monotonic()
                for pod in self.core.list_pod_for_all_namespaces(field_selector="spec.nodeName!=").items:
                    if pod.spec.node_name in self.nodes:
                        self._play(pod)
            except Exception as e:  # a test reads these; the loop must go on
                self.errors.append(repr(e))
            self._stop.wait(0.1)

    def _play(self, pod: Any) -> None:
        ns, name = pod.metadata.namespace, pod.metadata.name
        if pod.metadata.deletion_timestamp is not None:
            try:
                self.core.delete_namespaced_pod(name, ns, grace_period_seconds=0)
            except ApiException as e:
                if e.status != 404:
                    raise
            return
        behaviour = self._behaviour(pod)
        if behaviour == "imagepull" and pod.metadata.uid not in self._events_sent:
            # as a real kubelet: the pull fails (event), then the pod's status says so
            image = pod.spec.containers[0].image
            self._event(pod, "Failed", f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed '
                                       f'to pull and unpack image "{image}": not found')  # fmt: skip
            self._events_sent.add(pod.metadata.uid)
        status = self.status(pod, behaviour)
        if self._differs(pod, status):
            self.core.patch_namespaced_pod_status(name, ns, {"status": status})

    @staticmethod
    def _differs(pod: Any, status: Mapping[str, Any]) -> bool:
        have = pod.status
        ready = next((c.status for c in have.conditions or [] if c.type == "Ready"), None)
        want_ready = next(c["status"] for c in status["conditions"] if c["type"] == "Ready")
        waiting = None
        if have.container_statuses:
            state = have.container_statuses[0].state
            waiting = state.waiting.reason if state and state.waiting else None
        want_waiting = (status["containerStatuses"][0]["state"].get("waiting") or {}).get("reason")
        if have.phase in ("Succeeded", "Failed"):  # a finished pod stays as it ended
            return False
        return have.phase != status["phase"] or ready != want_ready or waiting != want_waiting

    def status(self, pod: Any, behaviour: str) -> dict[str, Any]:
        """The status a kubelet would report for the pod behaving so."""
        if behaviour.startswith(("exit-", "init-exit-")):
            return self._exited(pod, behaviour)
        now = _now()
        c = pod.spec.containers[0]
        ip = self._ips.setdefault(pod.metadata.uid, f"10.244.{len(self._ips) // 250}.{len(self._ips) % 250 + 2}")
        ready = behaviour == "ready"
        container: dict[str, Any] = {
            "name": c.name,
            "image": c.image,
            "imageID": "",
            "ready": ready,
            "restartCount": 0,
            "started": behaviour in ("ready", "starting"),
        }
        if behaviour in ("ready", "starting"):
            container["state"] = {"running": {"startedAt": now}}
            container["containerID"] = f"stand-in://{pod.metadata.uid}"
        elif behaviour in ("crashloop", "oomkilled"):
            oom = behaviour == "oomkilled"
            container["restartCount"] = 3
            container["state"] = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off 40s restarting failed container={c.name} pod={pod.metadata.name}",
                }
            }
            container["lastState"] = {
                "terminated": {
                    "exitCode": 137 if oom else 1,
                    "reason": "OOMKilled" if oom else "Error",
                    "startedAt": now,
                    "finishedAt": now,
                }
            }
        else:  # imagepull
            container["state"] = {
                "waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{c.image}"'}
            }
        not_ready = "" if ready else "ContainersNotReady"
        conditions = [
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
        ]
        for kind in ("Ready", "ContainersReady"):
            cond = {"type": kind, "status": "True" if ready else "False", "lastTransitionTime": now}
            if not_ready:
                cond["reason"] = not_ready
                cond["message"] = f"containers with unready status: [{c.name}]"
            conditions.append(cond)
        node = self.nodes[pod.spec.node_name]
        return {
            "phase": "Pending" if behaviour == "imagepull" else "Running",
            "conditions": conditions,
            "hostIP": node.address,
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": now,
            "containerStatuses": [container],
        }

    def _exited(self, pod: Any, behaviour: str) -> dict[str, Any]:
        now = _now()
        code = int(behaviour.rsplit("-", 1)[1])
        in_init = behaviour.startswith("init-")
        terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error", "startedAt": now,
                      "finishedAt": now}  # fmt: skip
        if code:
            terminated["message"] = f"stand-in: exited with code {code}"

        def statuses(containers: Any, state: dict[str, Any]) -> list[dict[str, Any]]:
            return [{"name": c.name, "image": c.image, "imageID": "", "ready": False, "restartCount": 0,
                     "started": False, "state": state} for c in containers or []]  # fmt: skip

        init = pod.spec.init_containers or []
        status: dict[str, Any] = {
            "phase": "Failed" if code else "Succeeded",
            "conditions": [
                {"type": "Initialized", "status": "False" if in_init else "True", "lastTransitionTime": now},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                {"type": "Ready", "status": "False", "lastTransitionTime": now, "reason": "PodCompleted"},
                {"type": "ContainersReady", "status": "False", "lastTransitionTime": now, "reason": "PodCompleted"},
            ],
            "hostIP": self.nodes[pod.spec.node_name].address,
            "startTime": now,
        }
        done = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}}
        if in_init:  # the firewall (which the stand-in takes as having installed its rules) ran; the next one failed
            first = next((i for i, c in enumerate(init) if c.name != "firewall"), 0)
            failed = statuses(init[first : first + 1], {"terminated": terminated})
            status["initContainerStatuses"] = [*statuses(init[:first], done), *failed]
            status["containerStatuses"] = statuses(pod.spec.containers, {"waiting": {"reason": "PodInitializing"}})
        else:
            status["initContainerStatuses"] = statuses(init, done)
            status["containerStatuses"] = statuses(pod.spec.containers, {"terminated": terminated})
        return status

    def _event(self, pod: Any, reason: str, message: str) -> None:
        now = _now()
        self.core.create_namespaced_event(
            pod.metadata.namespace,
            {
                "metadata": {"generateName": f"{pod.metadata.name}.", "namespace": pod.metadata.namespace},
                "involvedObject": {
                    "kind": "Pod",
                    "namespace": pod.metadata.namespace,
                    "name": pod.metadata.name,
                    "uid": pod.metadata.uid,
                    "apiVersion": "v1",
                    "fieldPath": "spec.containers{app}",
                },
                "reason": reason,
                "message": message,
                "type": "Warning",
                "count": 1,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "source": {"component": "kubelet", "host": pod.spec.node_name},
            },
        )

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for name in list(self.nodes):
            try:
                self.core.delete_node(name)
            except ApiException as e:
                if e.status != 404:
                    raise
