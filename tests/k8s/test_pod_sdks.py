"""The static and gradio example Spaces on the pod tier, pushed with huggingface_hub to a live `spacehub serve` on the
Kubernetes backend and served through its proxy (as tests/e2e/test_sdks.py does on the local backend): a static page
is served by SpaceHub itself from git, no pod made; a real gradio Interface is built (a Job whose install container
pip-installs gradio and spaces from the package index, as `kubernetes.sdk_packages` says, into the node's
environment cache), runs in its pod (which mounts that environment and installs nothing) and answers its page and
an API call. The pods run an image that trusts this machine's CA (node.host_ca_image): its
egress re-signs TLS, which the stock image's pip refuses (CERTIFICATE_VERIFY_FAILED)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kubernetes import client

from tests.e2e.conftest import Hub
from tests.k8s.cluster import ControlPlane
from tests.k8s.conftest import pod_hub, wait_for
from tests.k8s.node import CA_IMAGE, Node, host_ca_image

pytestmark = [pytest.mark.slow, pytest.mark.pods]
APP_PODS = "app.kubernetes.io/managed-by=spacehub,spacehub.dev/kind notin (build)"
GRADIO_TIMEOUT = 900  # the build Job installs gradio and its dependencies (~80 MB) with pip
SDK_PACKAGES = {"gradio": ["gradio", "spaces"], "streamlit": ["streamlit"]}  # the setting's default


@pytest.fixture(scope="module")
def hub(
    pod_plane: tuple[ControlPlane, Node], pod_kube: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Hub, str]]:
    # This machine's egress re-signs TLS with its own CA: pip in a pod trusts it only in an image that has it (as an
    # operator behind such a proxy would build one: kubernetes.image)
    pod_plane[1].import_image(host_ca_image(), CA_IMAGE.rsplit(":", 1)[0])
    env = {"SPACEHUB_KUBERNETES__SDK_PACKAGES": json.dumps(SDK_PACKAGES), "SPACEHUB_KUBERNETES__IMAGE": CA_IMAGE}
    with pod_hub(*pod_plane, pod_kube, tmp_path_factory.mktemp("sdks-k8s") / "data", **env) as found:
        yield found


def space_objects(kube: client.ApiClient, namespace: str, space_id: str) -> list[str]:
    label = f"spacehub.dev/space={space_id}"
    apps, core, batch = client.AppsV1Api(kube), client.CoreV1Api(kube), client.BatchV1Api(kube)
    found = [
        f"Deployment/{d.metadata.name}" for d in apps.list_namespaced_deployment(namespace, label_selector=label).items
    ]
    found += [f"Pod/{p.metadata.name}" for p in core.list_namespaced_pod(namespace, label_selector=label).items]
    found += [f"Job/{j.metadata.name}" for j in batch.list_namespaced_job(namespace, label_selector=label).items]
    return found


def test_a_static_space_is_served_by_spacehub_without_a_pod(
    hub: tuple[Hub, str], pod_kube: client.ApiClient, tmp_path: Path
) -> None:
    h, namespace = hub
    repo_id = h.name("static")
    h.upload(repo_id, "static", tmp_path)
    rt = h.wait(repo_id, "RUNNING", 60)
    assert rt.raw.get("errorMessage") is None
    r = h.serves(repo_id, "spacehub-static-example")
    assert r.headers["content-type"].startswith("text/html")
    css = h.get(repo_id, "/style.css")
    assert css.status_code == 200 and "font-family" in css.text
    assert h.get(repo_id, "/missing.js").status_code == 404
    # a new commit is served at once, from git
    h.upload(repo_id, "static", tmp_path, replace={"index.html": ("spacehub-static-example", "static-v2")},
             create=False)  # fmt: skip
    h.serves(repo_id, "static-v2")
    assert space_objects(pod_kube, namespace, h.space_id(repo_id)) == [], "a static Space needs no pod, no Job"


def test_a_gradio_space_builds_with_gradio_and_serves_from_its_pod(
    hub: tuple[Hub, str], pod_kube: client.ApiClient, tmp_path: Path
) -> None:
    h, namespace = hub
    repo_id = h.name("gradio")
    pushed = time.monotonic()
    h.upload(repo_id, "gradio", tmp_path)
    h.wait(repo_id, "RUNNING", GRADIO_TIMEOUT)
    r = h.serves(repo_id, "gradio", timeout=120)
    print(f"gradio: push → RUNNING → 200 through the proxy in {time.monotonic() - pushed:.1f} s")
    assert "<gradio-app" in r.text or "gradio_config" in r.text, r.text[:500]
    assert "SpaceHub Gradio example" in h.get(repo_id, "/config").text
    # the API, as gradio_client calls it, through the proxy to the pod
    host = {"host": h.host(repo_id)}
    info = httpx.get(f"{h.url}/gradio_api/info", headers=host, timeout=30).json()
    (api_name,) = info["named_endpoints"]
    call = httpx.post(f"{h.url}/gradio_api/call{api_name}", json={"data": ["Ada"]}, headers=host, timeout=30)
    assert call.status_code == 200, call.text
    result = httpx.get(f"{h.url}/gradio_api/call{api_name}/{call.json()['event_id']}", headers=host, timeout=30)
    assert "event: complete" in result.text and '"Hello Ada!"' in result.text, result.text
    # it runs in its pod, where gradio was installed by the install init container
    core = client.CoreV1Api(pod_kube)
    (pod,) = wait_for("one Running app pod", lambda: [p for p in core.list_namespaced_pod(
        namespace, label_selector=f"{APP_PODS},spacehub.dev/space={h.space_id(repo_id)}").items
        if p.status.phase == "Running"], timeout=30)  # fmt: skip
    install = next(c for c in pod.spec.init_containers if c.name == "install")
    assert install.command[3:] == ["install", "gradio", "spaces"], install.command
    # the build Job installed gradio once, into the node's environment cache; the pod mounts it and installs nothing
    build = "\n".join(h.logs(repo_id, "build"))
    assert "Successfully installed" in build and "gradio-" in build and "kept in the cache" in build, build[-2000:]
    installed = core.read_namespaced_pod_log(pod.metadata.name, namespace, container="install")
    assert "from the cache, nothing to install" in installed and "Successfully" not in installed, installed[-2000:]
    wait_for("gradio's start in the run log", lambda: "Running on local URL:" in "\n".join(h.logs(repo_id)),
             timeout=30)  # fmt: skip
    assert "`spaces` package is required" not in "\n".join(h.logs(repo_id))
    gone(h, pod_kube, namespace, repo_id)


def gone(h: Hub, kube: client.ApiClient, namespace: str, repo_id: str) -> None:
    """Delete the Space, and wait until its pods are gone: a cpu-basic pod takes both of the node's CPUs, so the
    next test's build Job could not be scheduled beside it (its build then waits until its timeout)."""
    space_id = h.space_id(repo_id)
    h.api.delete_repo(repo_id, repo_type="space")
    core = client.CoreV1Api(kube)
    wait_for("the Space's pods to go", lambda: not core.list_namespaced_pod(
        namespace, label_selector=f"spacehub.dev/space={space_id}").items, timeout=120)  # fmt: skip


def test_a_streamlit_space_builds_with_streamlit_and_serves_from_its_pod(
    hub: tuple[Hub, str], pod_kube: client.ApiClient, tmp_path: Path
) -> None:
    h, namespace = hub
    repo_id = h.name("streamlit")
    pushed = time.monotonic()
    h.upload(repo_id, "streamlit", tmp_path)
    h.wait(repo_id, "RUNNING", GRADIO_TIMEOUT)
    r = h.serves(repo_id, "<title>Streamlit</title>", timeout=120)
    print(f"streamlit: push → RUNNING → 200 through the proxy in {time.monotonic() - pushed:.1f} s")
    assert 'id="root"' in r.text
    health = h.get(repo_id, "/_stcore/health")
    assert health.status_code == 200 and health.text == "ok"
    # the WebSocket the page opens, through the proxy to the pod
    from websockets.sync.client import connect

    sock = socket.create_connection(("127.0.0.1", h.port), timeout=10)
    with connect(f"ws://{h.host(repo_id)}/_stcore/stream", sock=sock, subprotocols=["streamlit"],  # type: ignore[list-item]
                 open_timeout=10) as ws:  # fmt: skip
        assert ws.subprotocol == "streamlit"
        ws.ping().wait(5)
    # streamlit came from the build's install into the environment cache, as `kubernetes.sdk_packages` says
    build = "\n".join(h.logs(repo_id, "build"))
    assert "streamlit-" in build and "kept in the cache" in build, build[-2000:]
    core = client.CoreV1Api(pod_kube)
    (pod,) = wait_for("one Running app pod", lambda: [p for p in core.list_namespaced_pod(
        namespace, label_selector=f"{APP_PODS},spacehub.dev/space={h.space_id(repo_id)}").items
        if p.status.phase == "Running"], timeout=30)  # fmt: skip
    install = next(c for c in pod.spec.init_containers if c.name == "install")
    assert install.command[3:] == ["install", "streamlit"], install.command
    wait_for("streamlit's start in the run log",
             lambda: "You can now view your Streamlit app" in "\n".join(h.logs(repo_id)), timeout=30)  # fmt: skip
    gone(h, pod_kube, namespace, repo_id)
