"""deploy/kubernetes (SpaceHub itself on a cluster, with PostgreSQL and its data on a volume): the kustomization
renders, and the 1.20 API server of the control-plane tier creates every object as written.

The render: the kustomization uses only ``resources`` and ``images``, which this test applies itself (a new field
fails the test, so that it cannot be skipped silently); where ``kubectl`` is installed, its ``kubectl kustomize``
must render the same objects. The 1.20 API server drops unknown fields without a word (no field validation before
1.25), so each object read back must hold every field of the manifest, unchanged: a misspelt or misplaced field
fails. Then the pods' wiring is checked: the Hub's service account may do what the backend does in the Spaces'
namespace (SubjectAccessReview), and no more elsewhere; the settings name the objects that exist."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.utils import create_from_dict

from spacehub.config import Settings
from tests.k8s.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
pytestmark = pytest.mark.slow
PASSWORD = "0123456789abcdef0123456789abcdef"  # hex: no escaping in the database URL


def render() -> list[dict[str, Any]]:
    k = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert set(k) <= {"apiVersion", "kind", "resources", "images"}, f"kustomization fields this test cannot apply: {k}"
    images = {i["name"]: f"{i.get('newName', i['name'])}:{i.get('newTag', 'latest')}" for i in k.get("images", [])}
    objects = []
    for name in k["resources"]:
        for doc in yaml.safe_load_all((DEPLOY / name).read_text()):
            if doc:
                objects.append(doc)
    for obj in objects:
        spec = obj.get("spec", {}).get("template", {}).get("spec", {})
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            c["image"] = images.get(c["image"], c["image"])
    return objects


def contains(got: Any, want: Any, path: str = "") -> list[str]:
    """Where ``got`` (read back) lacks or changed what ``want`` (the manifest) says."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{path}: {got!r} is not a mapping"]
        return [m for k, v in want.items() for m in contains(got.get(k), v, f"{path}.{k}")]
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [f"{path}: {got!r} is not {want!r}"]
        return [m for i, (g, w) in enumerate(zip(got, want, strict=True)) for m in contains(g, w, f"{path}[{i}]")]
    if str(got) != str(want):
        return [f"{path}: {got!r} is not {want!r}"]
    return []


def test_the_kustomization_renders_what_kubectl_renders() -> None:
    objects = render()
    kinds = sorted(f"{o['kind']}/{o['metadata'].get('namespace', '')}/{o['metadata']['name']}" for o in objects)
    assert "Deployment/spacehub/spacehub" in kinds and "StatefulSet/spacehub/postgres" in kinds, kinds
    assert "PersistentVolumeClaim/spacehub/spacehub-data" in kinds and "Secret" not in "".join(kinds)  # no password
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: the render above is this test's own (resources and images)")
    out = subprocess.run(["kubectl", "kustomize", str(DEPLOY)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    theirs = [d for d in yaml.safe_load_all(out.stdout) if d]
    key = lambda o: (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])  # noqa: E731
    assert sorted(theirs, key=key) == sorted(objects, key=key)


def test_the_api_server_creates_spacehub_as_written(kube: client.ApiClient) -> None:
    objects = render()
    core = client.CoreV1Api(kube)
    made: list[dict[str, Any]] = []
    try:
        for obj in objects:
            create_from_dict(kube, obj)
            made.append(obj)
            if obj["kind"] == "Namespace" and obj["metadata"]["name"] == "spacehub":
                core.create_namespaced_secret("spacehub", {"metadata": {"name": "spacehub-postgres"},
                                                           "stringData": {"password": PASSWORD}})  # fmt: skip
        dyn = client.ApiClient.sanitize_for_serialization
        for obj in objects:
            got = read(kube, obj)
            problems = contains(dyn(kube, got), obj)
            assert not problems, f"{obj['kind']}/{obj['metadata']['name']}: the server dropped or changed {problems}"

        # the settings are a valid SpaceHub configuration, naming what exists
        cm = core.read_namespaced_config_map("spacehub-settings", "spacehub").data
        env = {**cm, "SPACEHUB_DB__URL": f"postgresql+psycopg://spacehub:{PASSWORD}@postgres:5432/spacehub"}
        with pytest.MonkeyPatch.context() as mp:
            for k, v in env.items():
                mp.setenv(k, v)
            settings = Settings()
        k = settings.kubernetes
        assert settings.runtime.backend == "kubernetes" and k.endpoints == "service"
        core.read_namespace(k.namespace)
        assert k.hub_url == "http://spacehub.spacehub.svc.cluster.local:8000"
        ns_labels = core.read_namespace("spacehub").metadata.labels
        assert k.hub_namespace_labels and k.hub_namespace_labels.items() <= ns_labels.items()
        deployment = client.AppsV1Api(kube).read_namespaced_deployment("spacehub", "spacehub")
        assert k.hub_pod_labels and k.hub_pod_labels.items() <= deployment.spec.template.metadata.labels.items()
        assert deployment.spec.template.spec.service_account_name == "spacehub"
        assert deployment.spec.template.spec.volumes[0].persistent_volume_claim.claim_name == "spacehub-data"

        # the Hub's service account may do what the backend does in the Spaces' namespace, and not elsewhere
        sa = "system:serviceaccount:spacehub:spacehub"
        for verb, group, resource, ns in [("create", "apps", "deployments", k.namespace),
                                          ("patch", "apps", "deployments", k.namespace),
                                          ("create", "", "secrets", k.namespace), ("get", "", "pods/log", k.namespace),
                                          ("create", "batch", "jobs", k.namespace),
                                          ("create", "networking.k8s.io", "networkpolicies", k.namespace),
                                          ("delete", "", "persistentvolumeclaims", k.namespace),
                                          ("list", "", "nodes", None)]:  # fmt: skip
            assert allowed(kube, sa, verb, group, resource, ns), (verb, resource, ns)
        for verb, group, resource, ns in [("get", "", "secrets", "spacehub"), ("get", "", "secrets", "kube-system"),
                                          ("create", "", "pods/exec", k.namespace), ("create", "", "pods", k.namespace),
                                          ("update", "", "nodes", None), ("create", "rbac.authorization.k8s.io",
                                                                         "rolebindings", k.namespace)]:  # fmt: skip
            assert not allowed(kube, sa, verb, group, resource, ns), (verb, resource, ns)
    finally:
        for obj in reversed(made):
            if obj["kind"] in ("ClusterRole", "ClusterRoleBinding", "Namespace"):
                delete(kube, obj)
        wait_for("the namespaces to go", lambda: not [n for n in core.list_namespace().items
                                                      if n.metadata.name in ("spacehub", "spacehub-spaces")],
                 timeout=120)  # fmt: skip


def allowed(kube: client.ApiClient, user: str, verb: str, group: str, resource: str, namespace: str | None) -> bool:
    resource, _, sub = resource.partition("/")
    attrs = {"verb": verb, "group": group, "resource": resource, "subresource": sub or None, "namespace": namespace}
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
              "spec": {"user": user, "groups": ["system:serviceaccounts", "system:serviceaccounts:spacehub"],
                       "resourceAttributes": {k: v for k, v in attrs.items() if v is not None}}}  # fmt: skip
    out = client.AuthorizationV1Api(kube).create_subject_access_review(review)
    return bool(out.status.allowed)


def _api(kube: client.ApiClient, obj: dict[str, Any]) -> tuple[Any, str, str]:
    """The typed API and the snake_case kind (as the client names its methods)."""
    group, _, version = obj["apiVersion"].rpartition("/")
    api_name = {"": "CoreV1Api", "apps": "AppsV1Api", "rbac.authorization.k8s.io": "RbacAuthorizationV1Api"}[group]
    kind = "".join(f"_{c.lower()}" if c.isupper() else c for c in obj["kind"]).lstrip("_")
    assert version == "v1", obj["apiVersion"]
    return getattr(client, api_name)(kube), kind, obj["metadata"].get("namespace") or ""


def read(kube: client.ApiClient, obj: dict[str, Any]) -> Any:
    api, kind, ns = _api(kube, obj)
    name = obj["metadata"]["name"]
    return getattr(api, f"read_namespaced_{kind}")(name, ns) if ns else getattr(api, f"read_{kind}")(name)


def delete(kube: client.ApiClient, obj: dict[str, Any]) -> None:
    api, kind, ns = _api(kube, obj)
    name = obj["metadata"]["name"]
    try:
        if ns:
            getattr(api, f"delete_namespaced_{kind}")(name, ns)
        else:
            getattr(api, f"delete_{kind}")(name)
    except client.exceptions.ApiException as e:
        if e.status != 404:
            raise
