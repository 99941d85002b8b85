"""The pod tier itself (node.py): a real kubelet on containerd with a non-loopback node address, so that pods run,
answer on their IP, and the apiserver reaches the kubelet for their logs and exec; and a node's stop leaves nothing
on the host."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from kubernetes import client
from kubernetes.stream import stream

from tests.k8s.cluster import ControlPlane
from tests.k8s.conftest import wait_for
from tests.k8s.node import Node, _hierarchies

pytestmark = [pytest.mark.slow, pytest.mark.pods]
HOST_PATHS = (
    "/var/log/pods",
    "/var/log/containers",
    "/var/lib/cni",
    "/run/containerd",
    "/run/netns",
    "/opt/containerd",
)
HOST_PATHS_BEFORE = {p for p in HOST_PATHS if os.path.exists(p)}  # read at import, before any node starts

SERVER = r"""
import http.server, os, sys
print("pod says hello", flush=True)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"uid={os.getuid()}".encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("0.0.0.0", 8080), H).serve_forever()
"""


def pod(name: str, node: str | None = None) -> dict[str, object]:
    """A pod held in as a Space's is (uid 1000, no capabilities, RuntimeDefault seccomp), serving on 8080."""
    spec: dict[str, object] = {
        "containers": [{
            "name": "app", "image": "python:3.11-slim", "imagePullPolicy": "Never",
            "command": ["python3", "-c", SERVER],
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 1},
            "resources": {"limits": {"cpu": "250m", "memory": "128Mi"}},
            "securityContext": {"runAsUser": 1000, "runAsNonRoot": True, "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]}},
        }],
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 2,
    }  # fmt: skip
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def iptables() -> list[str]:
    """The host's rules, without iptables-save's dated comments."""
    out = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if not line.startswith("#")]


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def ready_ip(core: client.CoreV1Api, name: str, namespace: str) -> str:
    def check() -> str | None:
        p = core.read_namespaced_pod(name, namespace)
        ready = any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        return p.status.pod_ip if ready else None

    return wait_for(f"pod {name} to be Ready", check, timeout=90, interval=0.2)  # type: ignore[no-any-return]


def test_the_node_is_ready_at_a_non_loopback_address(pod_plane: tuple[ControlPlane, Node], pod_kube) -> None:  # type: ignore[no-untyped-def]
    _, node = pod_plane
    n = client.CoreV1Api(pod_kube).read_node(node.name)
    addresses = {a.type: a.address for a in n.status.addresses}
    assert addresses["InternalIP"] == node.ip and not ipaddress.ip_address(node.ip).is_loopback
    assert any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)
    assert n.status.node_info.container_runtime_version == "containerd://1.6.20"
    assert n.status.node_info.kubelet_version == "v1.20.2"


def test_a_pod_runs_serves_on_its_ip_and_its_logs_and_exec_work(pod_plane, pod_kube, pod_namespace: str) -> None:  # type: ignore[no-untyped-def]
    _, node = pod_plane
    core = client.CoreV1Api(pod_kube)
    started = time.monotonic()
    core.create_namespaced_pod(pod_namespace, pod("web"))
    ip = ready_ip(core, "web", pod_namespace)
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(node.pod_cidr)
    r = httpx.get(f"http://{ip}:8080/", timeout=5)
    print(f"pod created → Ready → 200 in {time.monotonic() - started:.2f} s")
    assert r.status_code == 200 and r.text == "uid=1000"
    # through the apiserver to the kubelet at the node's address (what a loopback node IP could not do)
    assert "pod says hello" in core.read_namespaced_pod_log("web", pod_namespace)
    out = stream(core.connect_get_namespaced_pod_exec, "web", pod_namespace, command=["id", "-u"],
                 stderr=True, stdin=False, stdout=True, tty=False)  # fmt: skip
    assert out.strip() == "1000"
    # the limits are the container's cgroup's, under the node's cgroup root
    uid = core.read_namespaced_pod("web", pod_namespace).metadata.uid
    limits = [p for p in (Path("/sys/fs/cgroup/memory") / node.cgroup.lstrip("/")).rglob("memory.limit_in_bytes")
              if uid in str(p)]  # fmt: skip
    assert any(p.read_text().strip() == str(128 * 2**20) for p in limits), limits
    core.delete_namespaced_pod("web", pod_namespace, grace_period_seconds=0)


def test_a_stopped_node_leaves_nothing_behind(pod_plane, pod_kube, pod_namespace: str) -> None:  # type: ignore[no-untyped-def]
    """A second node on the same control plane (two nodes do not meet), a pod on it, then its stop: no process,
    cgroup, interface, iptables rule, mount or file of it is left."""
    plane, first = pod_plane
    rules = iptables()
    second = Node.start(plane, first.bin_dir)
    try:
        assert second.ip != first.ip and second.pod_cidr != first.pod_cidr
        core = client.CoreV1Api(pod_kube)
        core.create_namespaced_pod(pod_namespace, pod("on-second", node=second.name))
        assert httpx.get(f"http://{ready_ip(core, 'on-second', pod_namespace)}:8080/", timeout=5).status_code == 200
        pids = second.pids()
        assert len(pids) > 4, "the sleeper, containerd, kubelet, a shim, the pause and the app processes"
    finally:
        second.stop()
    wait_for("every process of the node to be gone (a zombie waits for init to reap it)",
             lambda: not [p for p in pids if alive(p)], timeout=10)  # fmt: skip
    assert not [h for h in _hierarchies() if (h / second.cgroup.lstrip("/")).exists()]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert second.bridge not in links and second.dummy not in links
    assert second.ip not in subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    # nothing of the second node is left; another node (a parallel test's) may add or drop its own rules meanwhile
    after = iptables()
    assert not [r for r in after if second.name in r or second.pod_cidr in r or second.bridge in r], after
    assert [r for r in after if "spacehub-node-" not in r] == [r for r in rules if "spacehub-node-" not in r]
    assert str(second.workdir) not in Path("/proc/self/mountinfo").read_text()
    assert not second.workdir.exists()
    for path in HOST_PATHS:  # what kubelet and containerd make there are in the node's own mount namespace
        assert os.path.exists(path) == (path in HOST_PATHS_BEFORE), path
    # the first node still runs its pods
    assert first.pids() and client.CoreV1Api(pod_kube).read_node(first.name).status.conditions
