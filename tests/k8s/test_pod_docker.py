"""A docker Space on the pod tier: an HF-style Dockerfile (FROM python:3.11-slim, the offline base image of
scripts/build-base-images; a user with uid 1000; a build arg from a Space variable and a build secret mounted in one
RUN step) pushed with huggingface_hub to a live `spacehub serve` on the Kubernetes backend. podman builds it where
SpaceHub runs (rootless, as the local backend does) and pushes it to a throwaway registry on loopback (Debian's
docker-registry, tests/k8s/registry.py) that needs a login for every push and pull, with the credentials of
``kubernetes.registry_auth_file``; the node's containerd pulls from it over plain HTTP with the pull secret made from
that file. The app serves through SpaceHub's proxy from its pod, held in as every Space's pod, sleeps at zero
replicas and wakes. The secret's value is in no layer of the pushed image, and the registry's password is in no
log. Without the credentials, a push is refused, and so is a pod's pull."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import io
import json
import shutil
import tarfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pygit2
import pytest
from kubernetes import client

from spacehub.runtime.backends.base import BuildFailed, BuildSpec, ReleaseSpec
from spacehub.runtime.backends.kubernetes.backend import KubernetesBackend
from spacehub.runtime.backends.kubernetes.manifests import ClusterOptions, Peer
from spacehub.runtime.backends.kubernetes.objects import Cluster
from tests.e2e.conftest import Hub
from tests.k8s.cluster import ControlPlane
from tests.k8s.code_server import code_server
from tests.k8s.conftest import pod_hub, wait_for
from tests.k8s.node import Node
from tests.k8s.registry import BINARY, auth_file, registry
from tests.runtime.backends.conftest import SpaceRepo

pytestmark = [
    pytest.mark.slow,
    pytest.mark.pods,
    pytest.mark.skipif(
        shutil.which("podman") is None or BINARY is None,
        reason="podman and docker-registry are needed (scripts/install-system-deps)",
    ),
]
APP_PODS = "app.kubernetes.io/managed-by=spacehub,spacehub.dev/kind notin (build)"
TIMEOUT = 600
SECRET = "k8s-build-secret-" + "5f3a9c" * 4
README = "---\ntitle: docker on k8s\nsdk: docker\napp_port: 7860\n---\n"
DOCKERFILE = """FROM python:3.11-slim
ARG GREETING
RUN useradd -m -u 1000 user
USER user
ENV HOME=/home/user
WORKDIR /home/user/app
RUN --mount=type=secret,id=BUILD_TOKEN,mode=0444 sha256sum /run/secrets/BUILD_TOKEN | cut -d' ' -f1 > secret.sha
RUN echo "$GREETING" > greeting.txt
COPY --chown=user . .
CMD ["python", "app.py"]
"""
APP = """import os, uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
BOOT = uuid.uuid4().hex
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
        body = (f"docker-k8s boot={BOOT} uid={os.getuid()} greeting={open('greeting.txt').read().strip()} "
                f"secret_sha={open('secret.sha').read().strip()} "
                f"secret_mounted={os.path.exists('/run/secrets/BUILD_TOKEN')} "
                f"caps={status['CapEff'].strip()} seccomp={status['Seccomp'].strip()}").encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
ThreadingHTTPServer(("0.0.0.0", 7860), H).serve_forever()
"""


LOGIN = ("spacehub-push", "registry-pw-" + "7c1e" * 6)  # the registry's user and password


@pytest.fixture(scope="module")
def hub(
    pod_plane: tuple[ControlPlane, Node], pod_kube: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Hub, str, str, Path]]:
    with registry(LOGIN) as reg:
        pod_plane[1].trust_registry(reg)
        auth = auth_file(tmp_path_factory.mktemp("registry-login") / "auth.json", reg, *LOGIN)
        env = {"SPACEHUB_KUBERNETES__REGISTRY": f"{reg}/spacehub", "SPACEHUB_KUBERNETES__REGISTRY_TLS_VERIFY": "false",
               "SPACEHUB_KUBERNETES__REGISTRY_AUTH_FILE": str(auth)}  # fmt: skip
        with pod_hub(*pod_plane, pod_kube, tmp_path_factory.mktemp("docker-k8s") / "data", small=True, **env) as (
            h,
            ns,
        ):
            yield h, ns, reg, auth


def layers_hold(reg: str, image: str, needle: bytes) -> list[str]:
    """The files of the image's layers (read from the registry, with its login) whose content holds ``needle``."""
    repo, tag = image.split("/", 1)[1].rsplit(":", 1)
    accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
    url = f"http://{reg}/v2/{repo}/manifests/{tag}"
    assert httpx.get(url, headers={"Accept": accept}, timeout=30).status_code == 401  # not without the login
    manifest = httpx.get(url, headers={"Accept": accept}, timeout=30, auth=LOGIN).json()
    found = []
    for layer in manifest["layers"]:
        blob = httpx.get(f"http://{reg}/v2/{repo}/blobs/{layer['digest']}", timeout=120, auth=LOGIN).content
        data = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar:
                f = tar.extractfile(member) if member.isfile() else None
                if f is not None and needle in f.read():
                    found.append(member.name)
    return found


def test_a_docker_space_is_built_with_podman_pushed_and_served_from_its_pod(
    hub: tuple[Hub, str, str, Path], pod_kube: client.ApiClient, tmp_path: Path
) -> None:
    h, namespace, reg, _ = hub
    core, apps = client.CoreV1Api(pod_kube), client.AppsV1Api(pod_kube)
    repo_id = h.name("docker")
    h.api.create_repo(repo_id, repo_type="space", space_sdk="docker")
    h.api.add_space_variable(repo_id, "GREETING", "hello-from-a-build-arg")
    h.api.add_space_secret(repo_id, "BUILD_TOKEN", SECRET)
    folder = tmp_path / "space"
    folder.mkdir()
    for name, text in {"README.md": README, "Dockerfile": DOCKERFILE, "app.py": APP}.items():
        (folder / name).write_text(text)
    pushed = time.monotonic()
    h.api.upload_folder(repo_id=repo_id, repo_type="space", folder_path=folder)
    h.wait(repo_id, "RUNNING", TIMEOUT)
    r = h.serves(repo_id, "docker-k8s", timeout=60)
    print(
        f"docker Space: push → podman build → push → pod → 200 through the proxy in {time.monotonic() - pushed:.1f} s"
    )
    fields = dict(part.split("=", 1) for part in r.text.split()[1:])
    assert fields["uid"] == "1000" and fields["greeting"] == "hello-from-a-build-arg", r.text
    assert fields["secret_sha"] == hashlib.sha256(SECRET.encode()).hexdigest(), r.text
    assert fields["secret_mounted"] == "False" and SECRET not in r.text
    assert fields["caps"] == "0000000000000000" and fields["seccomp"] == "2", r.text
    build = "\n".join(h.logs(repo_id, "build"))
    assert "podman push" in build and SECRET not in build, build[-3000:]
    # the registry's credentials: in no log, in the pull secret only
    basic = base64.b64encode(":".join(LOGIN).encode()).decode()
    for text in (build, h.server.log.read_text(errors="replace"), "\n".join(h.logs(repo_id, "run"))):
        assert LOGIN[1] not in text and basic not in text
    pull = core.read_namespaced_secret("spacehub-registry-auth", namespace)
    assert pull.type == "kubernetes.io/dockerconfigjson"
    assert json.loads(base64.b64decode(pull.data[".dockerconfigjson"]))["auths"][reg]["auth"] == basic
    # the pod runs the pushed image, held in by its firewall, with no code fetch (the image has the code)
    sid = h.space_id(repo_id)
    (pod,) = wait_for("one Running app pod", lambda: [p for p in core.list_namespaced_pod(
        namespace, label_selector=f"{APP_PODS},spacehub.dev/space={sid}").items if p.status.phase == "Running"],
        timeout=60)  # fmt: skip
    (app,) = pod.spec.containers
    assert app.image.startswith(f"{reg}/spacehub/space-{sid}:"), app.image
    assert [c.name for c in pod.spec.init_containers] == ["firewall"] and app.ports[0].container_port == 7860
    assert [s.name for s in pod.spec.image_pull_secrets] == ["spacehub-registry-auth"]
    assert pod.spec.automount_service_account_token is False
    assert (
        pod.spec.security_context.run_as_non_root and pod.spec.security_context.seccomp_profile.type == "RuntimeDefault"
    )
    assert (app.security_context.run_as_user, app.security_context.capabilities.drop) == (1000, ["ALL"])
    # the secret's value is in no layer of the image the cluster pulls; the build arg is (as with docker build)
    assert layers_hold(reg, app.image, SECRET.encode()) == []
    assert layers_hold(reg, app.image, b"hello-from-a-build-arg") == ["home/user/app/greeting.txt"]

    # asleep at zero replicas, and a visit wakes it: a new pod of the same image
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        h.api.set_space_sleep_time(repo_id, 2)
    h.wait(repo_id, "SLEEPING", 62)
    # (a pod cannot be frozen: the pass that finds so says SLEEPING, and the next one scales it to zero)
    wait_for("zero replicas", lambda: apps.read_namespaced_deployment(f"space-{sid}", namespace).spec.replicas == 0, 30)
    # the kubelet ends it (10 s grace); on a loaded 2-core CI machine that once took over 60 s
    wait_for("the pod to go", lambda: not core.list_namespaced_pod(
        namespace, label_selector=f"{APP_PODS},spacehub.dev/space={sid}").items, 150)  # fmt: skip
    woken = time.monotonic()
    again = h.get(repo_id, "/again", timeout=120)
    print(f"docker Space: wake from zero replicas → 200 in {time.monotonic() - woken:.1f} s")
    assert again.status_code == 200 and "docker-k8s" in again.text
    assert again.text.split()[1] != r.text.split()[1], "a new pod answered"


def test_without_the_registrys_login_a_push_is_refused_and_so_is_a_pull(
    hub: tuple[Hub, str, str, Path], pod_plane: tuple[ControlPlane, Node], pod_kube: client.ApiClient,
    pod_namespace: str, tmp_path: Path,
) -> None:  # fmt: skip
    """`KubernetesBackend` alone (its code from a code server at the node's address): with no credentials for the
    registry, the build's push is refused (BuildFailed, no password in it); with them, it is pushed and its pod pulls
    with the pull secret and serves; a pod of the same image without the pull secret cannot pull it."""
    _, _, reg, auth = hub
    node = pod_plane[1]
    git_dir = tmp_path / "repo.git"
    pygit2.init_repository(str(git_dir), bare=True, initial_head="main")
    space = SpaceRepo(git_dir, tmp_path / "lfs", "0123456789abcdef0123456d")
    sha = space.commit({"README.md": README, "Dockerfile": DOCKERFILE, "app.py": APP})
    core = client.CoreV1Api(pod_kube)
    options = ClusterOptions(namespace=pod_namespace, hub=Peer(cidrs=(f"{node.ip}/32",)),
                             cluster_cidrs=(node.pod_cidr,), image_pull_policy="IfNotPresent")  # fmt: skip
    with code_server(git_dir, "alice/docker", "hf_scoped", node.ip) as code:
        backend = KubernetesBackend(Cluster(pod_kube, pod_namespace), options, lambda *_: ("alice/docker", "hf_scoped"),
                                    code, run_log=lambda space_id: tmp_path / "run.log", poll_interval=0.1,
                                    endpoints="pod", registry=f"{reg}/spacehub", registry_tls_verify=False,
                                    build_timeout=TIMEOUT)  # fmt: skip
        spec = BuildSpec(space.space_id, "bd1", sha, "docker", None, None, build_args={"GREETING": "hi"},
                         build_secrets={"BUILD_TOKEN": SECRET})  # fmt: skip
        lines: list[str] = []
        with pytest.raises(BuildFailed, match="could not be pushed") as refused:
            backend.build(spec, lines.append)
        said = "\n".join([*lines, str(refused.value)])
        assert "authentication required" in said or "unauthorized" in said.lower(), said[-2000:]
        assert LOGIN[1] not in said

        backend.registry_auth_file = auth
        lines.clear()
        backend.build(dataclasses.replace(spec, build_id="bd2"), lines.append)
        assert LOGIN[1] not in "\n".join(lines)
        ep = backend.start(ReleaseSpec(space.space_id, "rd2", "bd2", "docker", None, 7860, {}))
        assert ep is not None
        r = wait_for("the app to answer", lambda: _get(f"http://{ep.host}:{ep.port}/"), timeout=120)
        assert "docker-k8s" in r.text and "uid=1000" in r.text
        image = backend._revision("bd2")[3]
        assert image is not None and image.startswith(f"{reg}/spacehub/space-{space.space_id}:")

        # the same image without the pull secret: the node cannot pull it (the node has not got it: never pulled
        # on this node without credentials, and IfNotPresent would take a local copy, so Always)
        core.create_namespaced_pod(pod_namespace, {
            "metadata": {"name": "no-login"},
            "spec": {"containers": [{"name": "app", "image": image, "imagePullPolicy": "Always"}],
                     "automountServiceAccountToken": False, "restartPolicy": "Never"},
        })  # fmt: skip

        def refused_pull() -> str:
            st = core.read_namespaced_pod("no-login", pod_namespace).status
            waiting = st.container_statuses[0].state.waiting if st.container_statuses else None
            return f"{waiting.reason}: {waiting.message}" if waiting and "Pull" in (waiting.reason or "") else ""

        why = wait_for("the pull to be refused", refused_pull, timeout=120)
        assert "401" in why or "unauthorized" in why.lower() or "authorization failed" in why.lower(), why
        backend.forget(space.space_id)


def _get(url: str) -> httpx.Response | None:
    try:
        r = httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return None
    return r if r.status_code == 200 else None
