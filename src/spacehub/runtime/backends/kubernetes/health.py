"""A Space's stage and errorMessage from what the cluster says: the Deployment's state and conditions, its pods'
conditions and container states, and the events about them (JSON dicts, as the API serves them).

Pure, so it is tested on literal objects and on those of a real API server. What becomes what:

- no Deployment: STOPPED; replicas 0: SLEEPING or PAUSED (the Deployment's ``spacehub.dev/state`` says which);
- a pod of the current release (its ``spacehub.dev/release`` label is the template's) that cannot get its image
  (ErrImagePull, ImagePullBackOff, …): RUNTIME_ERROR "cannot pull image …", with the kubelet's Failed event;
- one that crashes (CrashLoopBackOff, or terminated): RUNTIME_ERROR with the exit code, and "out of memory" when the
  kernel killed it at its limit (OOMKilled);
- one the scheduler cannot place (PodScheduled False, Unschedulable): the scheduler's tally turned into a reason a
  user reads ("no node has an A10G", "every A10G is in use", "its storage claim is not bound"), RUNTIME_ERROR when
  no node could ever hold it and APP_STARTING (waiting) when the nodes are busy;
- the Deployment's ReplicaFailure (quota, admission) or ProgressDeadlineExceeded: RUNTIME_ERROR with its message;
- a Ready pod of the current release: RUNNING; else Ready pods of an older one: RUNNING_APP_STARTING (a rolling
  update); else APP_STARTING.

While an older release still serves, a failing new release reports RUNNING with the new release's error as
errorMessage (traffic is unaffected; the user should still learn why the switch does not happen).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from spacehub.runtime.backends.kubernetes import quantities
from spacehub.runtime.backends.kubernetes.capacity import ClusterCapacity
from spacehub.runtime.backends.kubernetes.manifests import (
    ACCELERATOR_LABEL,
    ANNOTATION_STATE,
    GPU_RESOURCE,
    LABEL_RELEASE,
)
from spacehub.runtime.types import Stage

Obj = Mapping[str, Any]

IMAGE_ERRORS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "ImageInspectError",
        "RegistryUnavailable",
    }
)
CONFIG_ERRORS = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError"})
_TALLY = re.compile(r"(\d+) ([^,]+?)(?=, \d+ |\.?$)")


@dataclass(frozen=True)
class Health:
    stage: Stage
    error: str | None = None  # the errorMessage a user reads
    release: str | None = None  # the release the Deployment wants
    ready: int = 0  # Ready pods (any release)


def _get(obj: Obj | None, *path: str) -> Any:
    cur: Any = obj
    for key in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(key)
    return cur


def _condition(obj: Obj, kind: str) -> Obj | None:
    return next((c for c in _get(obj, "status", "conditions") or [] if c.get("type") == kind), None)


def _pod_ready(pod: Obj) -> bool:
    c = _condition(pod, "Ready")
    return c is not None and c.get("status") == "True" and not _get(pod, "metadata", "deletionTimestamp")


def _latest_event(events: Iterable[Obj], pod_name: str, reasons: Sequence[str]) -> str | None:
    """The newest Warning event's message about the pod, among ``reasons``."""
    mine = [e for e in events if _get(e, "involvedObject", "name") == pod_name and e.get("reason") in reasons]
    mine.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    return mine[-1].get("message") if mine else None


# ---- containers ------------------------------------------------------------------------------------------------
def _limit(pod: Obj) -> str | None:
    containers = _get(pod, "spec", "containers") or [{}]
    return _get(containers[0], "resources", "limits", "memory")


def _terminated(term: Obj, pod: Obj, who: str = "the app") -> str:
    code, reason = term.get("exitCode"), term.get("reason")
    if reason == "OOMKilled":
        limit = _limit(pod)
        return f"{who} ran out of memory (OOMKilled{f' at its {limit} limit' if limit else ''}); exit code {code}"
    message = (term.get("message") or "").strip()
    return (
        f"{who} exited with code {code}"
        + (f" ({reason})" if reason and reason != "Error" else "")
        + (f": {message}" if message else "")
    )


def _container_problem(pod: Obj, events: Sequence[Obj]) -> str | None:
    """What is wrong with the pod's containers (init containers first, each named: the firewall that could not
    install its rules, the fetch the Hub refused), or None."""
    statuses = [
        *((f"its {cs.get('name')} init container", cs) for cs in _get(pod, "status", "initContainerStatuses") or []),
        *(("the app", cs) for cs in _get(pod, "status", "containerStatuses") or []),
    ]
    pod_name = _get(pod, "metadata", "name")
    for who, cs in statuses:
        waiting = _get(cs, "state", "waiting") or {}
        reason = waiting.get("reason")
        if reason in IMAGE_ERRORS:
            detail = _latest_event(events, pod_name, ("Failed",)) or waiting.get("message") or reason
            return f"cannot pull image {cs.get('image')!r}: {detail}"
        if reason in CONFIG_ERRORS:
            return f"cannot start the container ({reason}): {waiting.get('message') or ''}".rstrip(": ")
        last = _get(cs, "lastState", "terminated")
        if reason == "CrashLoopBackOff" and last:
            restarts = cs.get("restartCount", 0)
            return (
                f"{_terminated(last, pod, who)}; restarted {restarts} time{'s' if restarts != 1 else ''} "
                "(CrashLoopBackOff)"
            )
        if reason == "CrashLoopBackOff":
            return f"{who} keeps crashing (CrashLoopBackOff)"
        term = _get(cs, "state", "terminated")
        if term and term.get("exitCode", 0) != 0:
            return _terminated(term, pod, who)
    return None


# ---- scheduling ------------------------------------------------------------------------------------------------
def tally(message: str) -> dict[str, int]:
    """The scheduler's "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match node selector." as
    {"Insufficient cpu": 1, "node(s) didn't match node selector": 2}."""
    _, _, rest = message.partition(": ")
    return {reason.strip(): int(n) for n, reason in _TALLY.findall(rest.strip())}


def unschedulable_reason(
    pod: Obj, message: str, capacity: ClusterCapacity | None = None, accelerator_key: str = ACCELERATOR_LABEL
) -> tuple[str, bool]:
    """The scheduler's message for a pod it cannot place, as a reason a user reads, and whether it is for good
    (no node could ever hold the pod) rather than for now (the nodes are busy)."""
    counts = tally(message)
    model = (_get(pod, "spec", "nodeSelector") or {}).get(accelerator_key)
    containers = _get(pod, "spec", "containers") or [{}]
    limits = _get(containers[0], "resources", "limits") or {}
    if any("unbound" in r and "PersistentVolumeClaim" in r for r in counts) or "unbound immediate" in message:
        return (
            "its storage claim is not bound: the cluster has no volume for it (is there a default StorageClass?)",
            False,
        )
    selector_miss = sum(
        n for r, n in counts.items() if "didn't match node selector" in r or "didn't match Pod's node affinity" in r
    )
    nodes = sum(counts.values())
    if model and nodes and selector_miss == nodes:
        return f"no node has an {model} (no node is labelled {accelerator_key}={model})", True
    lacking = [r.removeprefix("Insufficient ") for r in counts if r.startswith("Insufficient ")]
    if lacking:
        what = ", ".join("GPUs" if r == GPU_RESOURCE else r for r in lacking)
        asked = ", ".join(f"{k}={v}" for k, v in sorted(limits.items()))
        forever = capacity is not None and _never_fits(limits, model, capacity)
        if model and GPU_RESOURCE in lacking:
            head = f"no {model} node can hold it" if forever else f"every {model} is in use"
        else:
            head = "no node is large enough" if forever else "the nodes are full"
        return f"{head} (not enough {what} for {asked}; scheduler: {message})", forever
    return f"cannot be scheduled: {message}", nodes > 0 and selector_miss == nodes


def _never_fits(limits: Mapping[str, str], model: str | None, capacity: ClusterCapacity) -> bool:
    cpu = float(quantities.parse(limits.get("cpu", "0")))
    memory = int(quantities.parse(limits.get("memory", "0")))
    gpus = int(quantities.parse(limits.get(GPU_RESOURCE, "0")))
    return not any(
        n.cpu >= cpu
        and n.memory_bytes >= memory
        and n.gpus >= gpus
        and (model is None or n.labels.get(capacity.accelerator_key) == model)
        for n in capacity.nodes
    )


def _pod_problem(pod: Obj, events: Sequence[Obj], capacity: ClusterCapacity | None) -> tuple[str, bool] | None:
    """(reason, for good) for a pod that is not on its way to Ready, or None."""
    scheduled = _condition(pod, "PodScheduled")
    if scheduled is not None and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        message = (
            scheduled.get("message")
            or _latest_event(events, _get(pod, "metadata", "name"), ("FailedScheduling",))
            or "unschedulable"
        )
        return unschedulable_reason(pod, message, capacity)
    problem = _container_problem(pod, events)
    return (problem, True) if problem else None


# ---- the Space -------------------------------------------------------------------------------------------------
def _deployment_problem(deployment: Obj, replica_sets: Sequence[Obj]) -> str | None:
    failure = _condition(deployment, "ReplicaFailure")
    if failure is not None and failure.get("status") == "True":
        return f"cannot create its pod: {failure.get('message')}"
    for rs in replica_sets:
        failure = _condition(rs, "ReplicaFailure")
        if failure is not None and failure.get("status") == "True":
            return f"cannot create its pod: {failure.get('message')}"
    progress = _condition(deployment, "Progressing")
    if progress is not None and progress.get("reason") == "ProgressDeadlineExceeded":
        return f"the app did not become ready in time ({progress.get('message')})"
    return None


def space_health(
    deployment: Obj | None,
    pods: Sequence[Obj],
    events: Sequence[Obj] = (),
    replica_sets: Sequence[Obj] = (),
    capacity: ClusterCapacity | None = None,
) -> Health:
    """The Space's stage and errorMessage now, from its Deployment, pods, ReplicaSets and events."""
    if deployment is None:
        return Health(Stage.STOPPED)
    release = _get(deployment, "spec", "template", "metadata", "labels", LABEL_RELEASE)
    live = [p for p in pods if not _get(p, "metadata", "deletionTimestamp")]
    ready = [p for p in live if _pod_ready(p)]
    if (_get(deployment, "spec", "replicas") or 0) == 0:
        state = (_get(deployment, "metadata", "annotations") or {}).get(ANNOTATION_STATE)
        return Health(Stage.PAUSED if state == "paused" else Stage.SLEEPING, None, release, len(ready))
    current = [p for p in live if _get(p, "metadata", "labels", LABEL_RELEASE) == release]
    old_ready = [p for p in ready if p not in current]
    if any(_pod_ready(p) for p in current):
        return Health(Stage.RUNNING, None, release, len(ready))
    problem: tuple[str, bool] | None = None
    for pod in current:
        problem = _pod_problem(pod, events, capacity)
        if problem:
            break
    if problem is None:
        mine = [rs for rs in replica_sets if _get(rs, "metadata", "labels", LABEL_RELEASE) == release]
        failure = _deployment_problem(deployment, mine)
        problem = (failure, True) if failure else None
    if old_ready:
        if problem is not None:
            return Health(Stage.RUNNING, f"the new release cannot start: {problem[0]}", release, len(ready))
        return Health(Stage.RUNNING_APP_STARTING, None, release, len(ready))
    if problem is None:
        return Health(Stage.APP_STARTING, None, release, len(ready))
    reason, for_good = problem
    return Health(Stage.RUNTIME_ERROR if for_good else Stage.APP_STARTING, reason, release, len(ready))
