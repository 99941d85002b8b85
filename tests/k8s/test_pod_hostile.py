"""The hostile-Space escape tests of the sandbox issue (tests/e2e/test_hostile.py), inside a pod of the pod tier: a
second user pushes the same hostile app (tests/e2e/hostile_app.py) next to alice's private Space, which holds a
secret, to a live SpaceHub on the Kubernetes backend, with the real ``huggingface_hub`` client. What the test knows
of the node (the Hub's data dir, the node's and the control plane's keys, the victim pod's volumes on the node, the
host pids of the victim, SpaceHub, kubelet and containerd, the API server's and the kubelet's addresses) is handed
to the app as Space variables, so that every attempt aims at the real thing; the app adds the Kubernetes attempts
(the service-account token, its own fetch token, the API server's Secrets and the kubelet's API, anonymously).

The network too: the pod tier's bridge plugin enforces no NetworkPolicy, so what refuses is each pod's own firewall
(its first init container's netfilter rules, kubernetes.pod_firewall, on by default). The app aims at the victim
pod's IP and app port, at every address of the host but the Hub's (the node's bridge, other test nodes, the host's
own), at 10.0.2.2 and at the cloud's metadata service 169.254.169.254, each at the victim's port and SpaceHub's, and
tries to undo its firewall (nf_tables over netlink, a raw socket, iptables). Each connection is refused by the rules
("No route to host", EHOSTUNREACH: the firewall's answer, not a port where nothing listens), the undoing by the
kernel (EPERM), while the Hub still serves it through the proxy and it still fetched its code and reaches the Hub's
API. With the firewall off (``kubernetes.pod_firewall = false``) this test fails: the victim's pod answers.

Asserted: every attempt fails; the app runs as uid 1000 with no capabilities, NoNewPrivs and the runtime's seccomp
filter; the victim's secret is nowhere in the report; nothing it wrote or listened on is on the host; the victim's
pod and SpaceHub run on untouched, and the hostile pod still serves, unrestarted; the app reaches the Hub API with
its own token.
"""

from __future__ import annotations

import errno
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.stream import stream

from tests.conftest import ROOT, free_port
from tests.e2e.conftest import Hub
from tests.e2e.test_hostile import ZERO_CAPS, get, host_addresses, push_hostile, refused
from tests.k8s.cluster import ControlPlane
from tests.k8s.conftest import pod_hub, wait_for
from tests.k8s.node import Node

pytestmark = [pytest.mark.slow, pytest.mark.pods]
RUN_TIMEOUT = 180
PROBE_TIMEOUT = 120
APP_PODS = "app.kubernetes.io/managed-by=spacehub,spacehub.dev/kind notin (build)"
KUBERNETES_ATTEMPTS = {
    "read_service_account",
    "read_fetch_token",
    "kube_api",
    "kubelet_api",
    "undo_firewall",
    "reach_peers",
}
METADATA = "169.254.169.254"  # the cloud's metadata service
REFUSED = "OSError EHOSTUNREACH"  # connect()'s answer to the firewall's REJECT (icmp-admin-prohibited)
EXPECTED = {
    *("read_data_dir", "read_key_files", "read_database", "read_builds", "read_instances", "read_named_files"),
    *("read_source", "read_host_homes", "read_launch_json", "read_via_proc_root", "find_victim_files"),
    *("see_other_processes", "read_other_environ", "signal_host_pids", "ptrace", "write_outside"),
    *("mount_tmpfs", "unshare", "raise_RLIMIT_NPROC", "raise_RLIMIT_NOFILE", "reach_victim_port"),
    *("reach_spacehub_listener", "victim_through_proxy", "victim_through_api"),
    *KUBERNETES_ATTEMPTS,
}


@pytest.fixture(scope="module")
def hub(
    pod_plane: tuple[ControlPlane, Node], pod_kube: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Hub, str]]:
    with pod_hub(*pod_plane, pod_kube, tmp_path_factory.mktemp("hostile-k8s") / "data", small=True) as found:
        yield found


def app_pod(core: client.CoreV1Api, namespace: str, space_id: str) -> Any:
    """The Space's one running app pod."""

    def check() -> Any:
        pods = core.list_namespaced_pod(namespace, label_selector=f"{APP_PODS},spacehub.dev/space={space_id}").items
        running = [p for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp]
        return running[0] if len(running) == 1 else None

    return wait_for(f"the app pod of {space_id}", check, timeout=60)


def pod_pids(node: Node, uid: str) -> list[int]:
    """The host pids of a pod's processes (its pause and app), from the node's cgroups."""
    root = Path("/sys/fs/cgroup/memory") / node.cgroup.lstrip("/")
    found: set[int] = set()
    for procs in root.rglob("cgroup.procs"):
        if uid in str(procs):
            found |= {int(x) for x in procs.read_text().split()}
    return sorted(found)


def restarts(pod: Any) -> int:
    return sum(c.restart_count for c in pod.status.container_statuses or [])


def test_a_hostile_space_cannot_get_out_of_its_pod(
    hub: tuple[Hub, str], pod_plane: tuple[ControlPlane, Node], pod_kube: client.ApiClient, tmp_path: Path
) -> None:
    h, namespace = hub
    plane, node = pod_plane
    core = client.CoreV1Api(pod_kube)
    # alice's private Space with a secret, running in its pod
    victim = h.name("victim")
    marker = "victim-marker-" + os.urandom(16).hex()
    h.upload(victim, "python-http", tmp_path, private=True)
    h.api.add_space_secret(victim, "VICTIM_MARKER", marker)
    h.wait(victim, "RUNNING", RUN_TIMEOUT)
    victim_pod = app_pod(core, namespace, h.space_id(victim))
    wait_for("the victim's page", lambda: "python-http-v1" in get(h, victim, "/", h.alice, 60).text, timeout=60)
    victim_pod = app_pod(core, namespace, h.space_id(victim))  # the one that serves (a secret restarts it)
    victim_files = [str(p) for p in (node.workdir / "kubelet" / "pods" / victim_pod.metadata.uid).rglob("*")
                    if p.is_file()][:20]  # fmt: skip
    assert any("fetch-token" in f for f in victim_files), victim_files  # its scoped token, as the node holds it
    data = h.server.data_dir
    node_files = [str(p) for p in (node.workdir / "kubelet" / "pki").glob("*") if p.is_file()]
    node_files += [str(p) for p in plane.workdir.glob("*") if p.is_file() and p.suffix in (".key", ".crt", ".csv")]
    named = [str(p) for p in data.glob("*.key")] + [str(data / "spacehub.db")] + node_files + victim_files
    home = Path.home()
    home_files = [str(p) for p in sorted(home.iterdir()) if p.is_file()][:10] if home.is_dir() else []
    host_pids = [h.server.proc.pid, os.getpid(), *pod_pids(node, victim_pod.metadata.uid)]
    host_pids += [p.pid for p in node.procs.values()]  # kubelet, containerd, the node's namespace holder
    assert len(pod_pids(node, victim_pod.metadata.uid)) >= 2, "the victim's pause and app"
    listen_port = free_port()
    api_port = plane.url.rsplit(":", 1)[1]
    victim_port = victim_pod.spec.containers[0].ports[0].container_port
    # every address of this machine but the Hub's (the node's address): its own, this node's bridge (the pods'
    # gateway), other test nodes' addresses and bridges
    others = [a for a in host_addresses() if a != node.ip]
    assert any(a.startswith("10.244.") for a in others), others  # the bridge, the node as its pods see it
    values = {
        "HOSTILE_DATA_DIR": str(data),
        "HOSTILE_SOURCE_DIR": str(ROOT),
        "HOSTILE_FILES": ",".join(named),
        "HOSTILE_HOME_FILES": ",".join(home_files),
        "HOSTILE_VICTIM_PORT": str(victim_port),
        "HOSTILE_VICTIM_HOST": h.host(victim),
        "HOSTILE_VICTIM_ID": victim,
        "HOSTILE_VICTIM_KEY": "VICTIM_MARKER",
        "HOSTILE_HUB_PORT": str(h.port),
        "HOSTILE_HOST_ADDRS": ",".join(others),
        "HOSTILE_SLIRP_HOST": "10.0.2.2",  # no slirp4netns in a pod: whatever 10.0.2.2 is outside
        "HOSTILE_PEERS": f"{victim_pod.status.pod_ip}:{victim_port},{METADATA}:80",
        "HOSTILE_HOST_PIDS": ",".join(str(p) for p in dict.fromkeys(host_pids)),
        "HOSTILE_LISTEN_PORT": str(listen_port),
        "HOSTILE_KUBE_API": f"{plane.url},https://{node.ip}:{api_port}",
        "HOSTILE_KUBELETS": f"{node.ip}:10250",
        "HOSTILE_NAMESPACE": namespace,
    }
    bob = h.server.user("bob")
    repo_id = f"bob/hostile-{os.getpid()}"
    folder = tmp_path / "hostile"
    folder.mkdir()
    push_hostile(h, bob, repo_id, folder, "gradio", [{"key": k, "value": v} for k, v in values.items()])
    h.wait(repo_id, "RUNNING", RUN_TIMEOUT)
    hostile_pod = app_pod(core, namespace, h.space_id(repo_id))

    t0 = time.monotonic()
    r = get(h, repo_id, "/report", bob, PROBE_TIMEOUT)
    print(f"probe in {time.monotonic() - t0:.1f} s")
    assert marker not in r.text, "the victim's secret is in the hostile app's report"
    report = r.json()
    assert "error" not in report, report
    (tmp_path / "report.json").write_text(json.dumps(report, indent=1))  # kept with the test's files
    print(json.dumps(report, indent=1)[:20000])
    escaped = {name: a["detail"] for name, a in report["attempts"].items() if a["ok"]}
    assert not escaped, f"attempts that succeeded: {json.dumps(escaped, indent=1)}"
    assert set(report["attempts"]) == EXPECTED
    # the attempts were real: every file it was told about was asked for, the API server and kubelet answered no
    tried = json.loads(report["attempts"]["read_named_files"]["detail"])
    assert set(tried) == set(named), tried
    assert all(d.startswith(("FileNotFoundError", "PermissionError")) for d in tried.values()), tried
    kube_api = json.loads(report["attempts"]["kube_api"]["detail"])
    assert len(kube_api) == 6 and not [u for u, (code, _) in kube_api.items() if code == 200], kube_api
    kubelet = json.loads(report["attempts"]["kubelet_api"]["detail"])
    assert {c for c, _ in kubelet["https"].values()} <= {401, 403, -1}, kubelet  # refused (anonymous is off)
    assert any(c == 401 for c, _ in kubelet["https"].values()), kubelet  # it was reached, and said no
    sa = json.loads(report["attempts"]["read_service_account"]["detail"])
    assert all(d.startswith("FileNotFoundError") for d in sa.values()), sa  # no token is mounted at all
    # the network: the victim's pod, every other address of this machine, 10.0.2.2 and the metadata service, each
    # refused by the pod's own firewall (its REJECT's answer), none merely unanswered
    peers = json.loads(report["attempts"]["reach_peers"]["detail"])
    assert set(peers) == {f"{victim_pod.status.pod_ip}:{victim_port}", f"{METADATA}:80"}
    victim_ports = json.loads(report["attempts"]["reach_victim_port"]["detail"])
    listeners = json.loads(report["attempts"]["reach_spacehub_listener"]["detail"])
    aimed = {**peers, **victim_ports, **listeners}
    assert {f"{a}:{p}" for a in (*others, "10.0.2.2") for p in (victim_port, h.port)} <= set(aimed)
    assert {k: v for k, v in aimed.items() if v != REFUSED} == {}, aimed
    # and it cannot undo its rules: the kernel refuses nf_tables' netlink without CAP_NET_ADMIN, and a raw socket
    undo = json.loads(report["attempts"]["undo_firewall"]["detail"])
    assert undo["nf_tables delete table"] == "refused: EPERM" and undo["raw socket"] == "PermissionError EPERM", undo

    ident = report["identity"]
    assert (ident["uid"], ident["gid"], ident["euid"]) == (1000, 1000, 1000), ident
    assert (ident["CapEff"], ident["CapPrm"], ident["NoNewPrivs"], ident["Seccomp"]) == (ZERO_CAPS, ZERO_CAPS, "1", "2")
    assert report["hub"]["status"] == 200 and report["hub"]["name"] == "bob", report["hub"]
    # what it listened on (in its pod: it did listen) is nowhere on the host
    assert report["listening"]["detail"]["0.0.0.0"] == "listening", report["listening"]
    for host in ["127.0.0.1", "::1", *host_addresses()]:
        assert refused(host, listen_port) is None, f"the hostile app's listener answers at {host}:{listen_port}"
    # nothing it wrote is on the host
    written = json.loads(report["attempts"]["write_outside"]["detail"])["tried"]
    assert written and not [path for path in written if Path(path).exists()]
    assert not list(data.rglob(f"*{report['nonce']}*")) and not list(node.workdir.rglob(f"*{report['nonce']}*"))
    # kill(-1) and the signals reached no one outside: SpaceHub, the node and the victim's pod run as before, and
    # the hostile pod still serves, unrestarted
    assert h.server.proc.poll() is None and all(p.poll() is None for p in node.procs.values())
    after = app_pod(core, namespace, h.space_id(victim))
    assert after.metadata.uid == victim_pod.metadata.uid and restarts(after) == restarts(victim_pod)
    assert get(h, repo_id, "/ping", bob, 30).json() == {"alive": True, "pid": report["pid"]}
    again = app_pod(core, namespace, h.space_id(repo_id))
    assert again.metadata.uid == hostile_pod.metadata.uid and restarts(again) == restarts(hostile_pod)
    assert "python-http-v1" in get(h, victim, "/", h.alice, 30).text
    assert h.get(victim).status_code in (401, 403, 404)  # still private to anyone else

    # The pod held itself in: its firewall ran first and said what it let through (the Space's run log, which also
    # says the code was fetched: the Hub is let through), and from outside the app's process (an exec in its
    # container) the victim's pod is still refused after all of the above.
    assert [c.name for c in again.spec.init_containers][:2] == ["firewall", "fetch"]
    log = "\n".join(h.logs(repo_id, token=bob))
    assert "firewall: IPv4:" in log and "rules in place (iptables-nft-restore)" in log, log[-3000:]
    assert "firewall: in: port 7860 from the Hub and the node; out: DNS, the Hub, no private address" in log
    assert log.index("firewall: IPv4:") < log.index("fetched ")
    # the NetworkPolicies are there as well (enforced by a CNI that can: not this tier's)
    policies = client.NetworkingV1Api(pod_kube).list_namespaced_network_policy(namespace).items
    selected = {p.spec.pod_selector.match_labels["spacehub.dev/space"] for p in policies}
    assert selected >= {h.space_id(victim), h.space_id(repo_id)}
    reach = (f"import socket\ntry:\n    socket.create_connection(('{after.status.pod_ip}', {victim_port}), timeout=5)"
             "\n    print('connected')\nexcept OSError as e:\n    print(e.errno)")  # fmt: skip
    out = stream(core.connect_get_namespaced_pod_exec, again.metadata.name, namespace, container="app",
                 command=["python3", "-c", reach], stderr=True, stdin=False, stdout=True, tty=False)  # fmt: skip
    assert out.strip() == str(errno.EHOSTUNREACH), out
