"""Persistent storage on the pod tier: a Space that asks for a storage tier (the Hub's storage API, as
huggingface_hub 1.x calls it) gets a claim that binds to a real volume (a hostPath PersistentVolume on the node,
made by the test tooling: the tier has no provisioner), mounted at /data in its pod; a file the app writes there is
still there after a restart of the Space, which is a new pod (Recreate: one writer of /data), and it is on the
node's disk, in the volume."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kubernetes import client

from tests.e2e.conftest import Hub
from tests.k8s.cluster import ControlPlane
from tests.k8s.conftest import host_path_volumes, pod_hub, wait_for
from tests.k8s.node import Node

pytestmark = [pytest.mark.slow, pytest.mark.pods]
RUN_TIMEOUT = 180
APP_PODS = "app.kubernetes.io/managed-by=spacehub,spacehub.dev/kind notin (build)"
# GET /write?<text> writes the text to /data/note.txt; every answer names this start and what the note holds
STORAGE_APP = r"""import http.server, os, urllib.parse
BOOT = os.urandom(8).hex()
NOTE = "/data/note.txt"
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path == "/write":
            with open(NOTE, "w") as f:
                f.write(urllib.parse.unquote(query))
        note = open(NOTE).read() if os.path.exists(NOTE) else "<none>"
        body = f"boot={BOOT} note={note} uid={os.getuid()}".encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer((os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), int(os.environ["PORT"])), H
                                ).serve_forever()
"""


@pytest.fixture(scope="module")
def hub(
    pod_plane: tuple[ControlPlane, Node], pod_kube: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Hub, str]]:
    with pod_hub(*pod_plane, pod_kube, tmp_path_factory.mktemp("storage-k8s") / "data", small=True) as found:
        yield found


def answer(h: Hub, repo_id: str, path: str = "/") -> dict[str, str]:
    r = h.get(repo_id, path, token=h.alice, timeout=120)
    assert r.status_code == 200, r.text[:500]
    return dict(part.split("=", 1) for part in r.text.split())


def test_a_file_written_to_data_survives_a_restart_in_a_new_pod(
    hub: tuple[Hub, str], pod_plane: tuple[ControlPlane, Node], pod_kube: client.ApiClient, tmp_path: Path
) -> None:
    h, namespace = hub
    _, node = pod_plane
    core = client.CoreV1Api(pod_kube)
    with host_path_volumes(pod_kube, node) as (volume,):
        repo_id = h.name("storage")
        h.upload(repo_id, "python-http", tmp_path, files={"app.py": STORAGE_APP})
        h.wait(repo_id, "RUNNING", RUN_TIMEOUT)
        # as huggingface_hub 1.x's request_space_storage asks for it (2.x has no such method)
        r = httpx.post(f"{h.url}/api/spaces/{repo_id}/storage", json={"tier": "small"},
                       headers={"authorization": f"Bearer {h.alice}"}, timeout=30)  # fmt: skip
        assert r.status_code == 200 and r.json()["storage"] == "small", r.text
        space_id = h.space_id(repo_id)

        def one_pod() -> object:
            pods = core.list_namespaced_pod(namespace, label_selector=f"{APP_PODS},spacehub.dev/space={space_id}").items
            live = [p for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp]
            mounted = [p for p in live if any(v.persistent_volume_claim for v in p.spec.volumes or [])]
            return mounted[0] if len(pods) == 1 and mounted else None

        try:
            first_pod = wait_for("one running pod with the claim mounted", one_pod, timeout=RUN_TIMEOUT)
        except AssertionError as e:  # what the cluster shows then
            pods = [(p.metadata.name, p.spec.node_name, p.status.phase, p.status.conditions)
                    for p in core.list_namespaced_pod(namespace).items]  # fmt: skip
            claims = [(c.metadata.name, c.status.phase) for c in core.list_namespaced_persistent_volume_claim(
                namespace).items]  # fmt: skip
            raise AssertionError(f"{e}\npods: {pods}\nclaims: {claims}\n{h.report(repo_id)}") from None
        claims = core.list_namespaced_persistent_volume_claim
        (claim,) = claims(namespace, label_selector=f"spacehub.dev/space={space_id}").items
        assert claim.status.phase == "Bound" and claim.spec.volume_name == volume.name, claim.status
        assert claim.spec.resources.requests["storage"] in ("20G", str(20 * 10**9)), claim.spec.resources
        first = wait_for("the app at /", lambda: (a := answer(h, repo_id)) and a["note"] == "<none>" and a)
        assert first["uid"] == "1000"
        note = f"kept-{time.monotonic_ns()}"
        assert answer(h, repo_id, f"/write?{note}")["note"] == note
        assert (volume / "note.txt").read_text() == note  # on the node's disk, in the volume

        h.api.restart_space(repo_id)
        deadline = time.monotonic() + RUN_TIMEOUT
        while True:
            try:
                after = answer(h, repo_id)
                if after["boot"] != first["boot"]:
                    break
            except (AssertionError, ValueError):
                pass
            assert time.monotonic() < deadline, h.report(repo_id)
            time.sleep(0.5)
        assert after["note"] == note, after
        second_pod = wait_for("the new pod", one_pod, timeout=60)
        assert second_pod.metadata.uid != first_pod.metadata.uid
        assert claim.metadata.uid == core.read_namespaced_persistent_volume_claim(claim.metadata.name,
                                                                                  namespace).metadata.uid  # fmt: skip
        h.api.delete_repo(repo_id, repo_type="space")
        wait_for("the Space's pods to go", lambda: not core.list_namespaced_pod(
            namespace, label_selector=f"spacehub.dev/space={space_id}").items, timeout=90)  # fmt: skip
