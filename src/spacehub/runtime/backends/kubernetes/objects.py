"""A Space's objects on an API server: apply (create, or replace what differs), scale, observe, delete by label.

The only module of the package that talks to a cluster, through the official ``kubernetes`` client (its typed APIs
take the manifests as dicts). Applying is idempotent, so a reconciler pass that dies half-way can run again:
- a claim is never replaced (its spec is immutable) and never shrunk: only grown, and relabelled;
- a Service keeps the cluster IP it was given;
- everything else is replaced at the resourceVersion just read (optimistic concurrency: a conflict is retried).
Deleting selects by the Space's label, kind by kind; the garbage collector removes the ReplicaSets and pods of a
deleted Deployment, which `gone` waits for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from spacehub.runtime.backends.kubernetes import manifests, quantities
from spacehub.runtime.backends.kubernetes.capacity import ClusterCapacity
from spacehub.runtime.backends.kubernetes.health import Health, space_health
from spacehub.runtime.backends.kubernetes.manifests import Manifest

# kind → (API class attribute on Cluster, method suffix); also the order to delete in (the Deployment first, so no
# new pod starts without its Secret or claim)
KINDS: dict[str, tuple[str, str]] = {
    "Deployment": ("apps", "namespaced_deployment"),
    "Job": ("batch", "namespaced_job"),
    "Service": ("core", "namespaced_service"),
    "NetworkPolicy": ("networking", "namespaced_network_policy"),
    "Secret": ("core", "namespaced_secret"),
    "ConfigMap": ("core", "namespaced_config_map"),
    "PersistentVolumeClaim": ("core", "namespaced_persistent_volume_claim"),
}
CONFLICT_RETRIES = 5


def connect(kubeconfig: Path | None = None, context: str | None = None) -> client.ApiClient:
    """An API client from a kubeconfig file, or, without one, from the pod's service account (in-cluster)."""
    if kubeconfig is None:
        cfg = client.Configuration()
        config.load_incluster_config(client_configuration=cfg)
        return client.ApiClient(cfg)
    return config.new_client_from_config(config_file=str(kubeconfig), context=context)


@dataclass
class Cluster:
    """The typed APIs over one client, and the namespace the Spaces live in."""

    api: client.ApiClient
    namespace: str

    def __post_init__(self) -> None:
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.networking = client.NetworkingV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)

    def _call(self, kind: str, verb: str, *args: Any, **kwargs: Any) -> Any:
        group, suffix = KINDS[kind]
        return getattr(getattr(self, group), f"{verb}_{suffix}")(*args, **kwargs)

    def _json(self, obj: Any) -> dict[str, Any]:
        return self.api.sanitize_for_serialization(obj)  # type: ignore[no-any-return]

    # ---- apply ----------------------------------------------------------------------------------------------------
    def apply(self, objects: Iterable[Manifest]) -> None:
        """Create each object, or bring the existing one to it."""
        for obj in objects:
            self.apply_one(obj)

    def apply_one(self, obj: Manifest) -> None:
        kind, name = obj["kind"], obj["metadata"]["name"]
        try:
            self._call(kind, "create", self.namespace, obj)
            return
        except ApiException as e:
            if e.status != 409:
                raise
        for attempt in range(CONFLICT_RETRIES):
            current = self._json(self._call(kind, "read", name, self.namespace))
            try:
                self._update(kind, name, obj, current)
                return
            except ApiException as e:
                if e.status != 409 or attempt == CONFLICT_RETRIES - 1:
                    raise

    def _update(self, kind: str, name: str, obj: Manifest, current: dict[str, Any]) -> None:
        if kind == "PersistentVolumeClaim":
            patch: Manifest = {
                "metadata": {"labels": obj["metadata"]["labels"], "annotations": obj["metadata"]["annotations"]}
            }
            grow = claim_growth(current, obj)
            if grow is not None:
                patch["spec"] = {"resources": {"requests": {"storage": grow}}}
            self.core.patch_namespaced_persistent_volume_claim(name, self.namespace, patch)
            return
        meta = current["metadata"]
        desired = {**obj, "metadata": {
            **obj["metadata"],
            "resourceVersion": meta["resourceVersion"],
            # keep what others wrote (the deployment controller's revision annotation: dropping it would bump the
            # Deployment's generation on every apply); ours are written over it
            "labels": {**(meta.get("labels") or {}), **obj["metadata"]["labels"]},
            "annotations": {**(meta.get("annotations") or {}), **obj["metadata"]["annotations"]},
        }}  # fmt: skip
        if kind == "Service":
            desired["spec"] = {**obj["spec"], "clusterIP": current["spec"].get("clusterIP")}
        self._call(kind, "replace", name, self.namespace, desired)

    # ---- scale, observe ---------------------------------------------------------------------------------------------
    def scale(self, space_id: str, state: str) -> None:
        """Wake (``running``: 1 replica) or put to sleep (``sleeping`` / ``paused``: 0) without a new release."""
        if state not in ("running", "sleeping", "paused"):
            raise ValueError(f"state must be running, sleeping or paused, not {state!r}")
        body = {
            "metadata": {"annotations": {manifests.ANNOTATION_STATE: state}},
            "spec": {"replicas": 1 if state == "running" else 0},
        }
        self.apps.patch_namespaced_deployment(manifests.name(space_id), self.namespace, body)

    def _selected(self, kind: str, space_id: str) -> list[dict[str, Any]]:
        label = f"{manifests.LABEL_SPACE}={space_id}"
        items = self._call(kind, "list", self.namespace, label_selector=label).items
        return [self._json(i) for i in items]

    def pods(self, space_id: str) -> list[dict[str, Any]]:
        label = f"{manifests.LABEL_SPACE}={space_id}"
        return [self._json(p) for p in self.core.list_namespaced_pod(self.namespace, label_selector=label).items]

    def health(self, space_id: str, capacity: ClusterCapacity | None = None) -> Health:
        """The Space's stage and errorMessage, read from the cluster now (see `health.space_health`)."""
        try:
            deployment = self._json(self.apps.read_namespaced_deployment(manifests.name(space_id), self.namespace))
        except ApiException as e:
            if e.status != 404:
                raise
            deployment = None
        pods = self.pods(space_id)
        events: list[dict[str, Any]] = []
        for pod in pods:
            selector = f"involvedObject.kind=Pod,involvedObject.name={pod['metadata']['name']}"
            events += [
                self._json(e) for e in self.core.list_namespaced_event(self.namespace, field_selector=selector).items
            ]
        label = f"{manifests.LABEL_SPACE}={space_id}"
        sets = [
            self._json(s) for s in self.apps.list_namespaced_replica_set(self.namespace, label_selector=label).items
        ]
        return space_health(deployment, pods, events, sets, capacity)

    # ---- delete ---------------------------------------------------------------------------------------------------
    def delete(self, space_id: str, keep_storage: bool = False) -> None:
        """Delete every object of the Space (its claim too unless ``keep_storage``); missing ones are fine."""
        for kind in KINDS:
            if keep_storage and kind == "PersistentVolumeClaim":
                continue
            for obj in self._selected(kind, space_id):
                try:
                    # the response body is not read: a 1.20 server answers a Service's delete with a Status, which
                    # the client would fail to read as a Service
                    self._call(kind, "delete", obj["metadata"]["name"], self.namespace,
                               propagation_policy="Background", _preload_content=False)  # fmt: skip
                except ApiException as e:
                    if e.status != 404:
                        raise

    def managed(self, kind: str) -> list[dict[str, Any]]:
        """Every object of ``kind`` SpaceHub made in the namespace (``app.kubernetes.io/managed-by``), but those
        being deleted."""
        label = f"app.kubernetes.io/managed-by={manifests.MANAGED_BY}"
        items = self._call(kind, "list", self.namespace, label_selector=label).items
        return [o for o in (self._json(i) for i in items) if not o["metadata"].get("deletionTimestamp")]

    def space_ids(self) -> set[str]:
        """The Spaces (runtime ids) that any object SpaceHub made here belongs to, by their label."""
        found: set[str] = set()
        for kind in KINDS:
            found |= {o["metadata"]["labels"].get(manifests.LABEL_SPACE) for o in self.managed(kind)} - {None}
        return found

    def leftovers(self, space_id: str) -> dict[str, list[str]]:
        """What of the Space is still there, by kind (pods and ReplicaSets included): empty when it is gone."""
        found = {kind: [o["metadata"]["name"] for o in self._selected(kind, space_id)] for kind in KINDS}
        found["Pod"] = [p["metadata"]["name"] for p in self.pods(space_id)]
        label = f"{manifests.LABEL_SPACE}={space_id}"
        found["ReplicaSet"] = [
            s.metadata.name for s in self.apps.list_namespaced_replica_set(self.namespace, label_selector=label).items
        ]
        return {k: v for k, v in found.items() if v}


def claim_growth(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> str | None:
    """The size to grow a claim to, or None: a claim is never shrunk (a smaller tier keeps the bigger volume)."""
    have = current.get("spec", {}).get("resources", {}).get("requests", {}).get("storage")
    want = wanted["spec"]["resources"]["requests"]["storage"]
    if have is None or quantities.parse(want) > quantities.parse(have):
        return str(want)
    return None
