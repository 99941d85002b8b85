"""Kubernetes wake benchmark (issue 10): how fast a Space at zero replicas answers again on a real node, against the
same pod created from scratch in the same run.

  wake from zero replicas -> 200   a visit through SpaceHub's proxy (an API client: it waits) to a Space whose
                                   Deployment the reconciler scaled to zero after its sleep time (no pod left),
                                   until the app's first 200: the reconciler's pass, the scale to one, the
                                   scheduler, the kubelet's sandbox, the fetch and install init containers, the app,
                                   the proxy's wait
  pod from scratch -> 200          the baseline: the Deployment's own pod template created as a bare Pod (its labels
                                   changed, so that no ReplicaSet adopts it) while the Space sleeps, polled directly
                                   at its IP until the app's first 200; then deleted

Both run one after the other in each round, on the same node, with the same image, init containers and app, so the
ratio is what SpaceHub's wake path adds to a pod's own start.

The cluster is the pod tier of the tests (tests/k8s: a control plane on loopback and a real kubelet on containerd,
which needs root, cgroup v1 and the Debian packages `scripts/install-system-deps` installs), started by this script,
or an existing one of the same kind given with `--kubeconfig` (the smoke test passes its session's): its Ready node's
InternalIP must be an address of this machine, where the pods reach the Hub. The Hub is a real `spacehub serve` with
`runtime.backend = "kubernetes"` and `kubernetes.endpoints = "pod"`, as in tests/k8s/test_pod_e2e.py.

Run: `.venv/bin/python bench/k8s_wake_bench.py [--rounds 5] [--kubeconfig PATH] [--json out.json]`. Prints a table
of medians (min-max); exits non-zero only when something is broken (a Space that never serves or never sleeps),
never because of speed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from huggingface_hub import HfApi

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hubserver import free_port, start_server
from runtime_bench import push

ROOT = Path(__file__).resolve().parents[1]
SLEEP = 1  # the Space's sleep time, in seconds
APP_PODS = "app.kubernetes.io/managed-by=spacehub,spacehub.dev/kind notin (build)"  # not the build Job's pod
BASELINE_LABEL = "spacehub.dev/bench"
# The body names the pod: a random id of this start (another pod, another id).
APP = """import http.server, os
BOOT = os.urandom(8).hex()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"k8s-wake {BOOT}".encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer((os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), int(os.environ["PORT"])), H
                                ).serve_forever()
"""
README = "---\ntitle: k8s wake bench\nsdk: gradio\napp_file: app.py\n---\n"  # a plain-Python app (no gradio)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


@contextlib.contextmanager
def pod_tier(kubeconfig: str | None, host_ca: bool = False) -> Iterator[tuple[Path, str]]:
    """The cluster's kubeconfig and its node's InternalIP: the given cluster's, or a pod tier started here (with
    ``host_ca``: its node also has the image that trusts this machine's CA)."""
    if kubeconfig:
        yield Path(kubeconfig), node_ip(Path(kubeconfig))
        return
    sys.path.insert(0, str(ROOT))
    from tests.k8s.cluster import ControlPlane, binaries
    from tests.k8s.node import CA_IMAGE, Node, host_ca_image

    bin_dir = binaries(build=True)
    t0 = time.monotonic()
    plane = ControlPlane.start(bin_dir)
    try:
        node = Node.start(plane, bin_dir)
        if host_ca:
            node.import_image(host_ca_image(), CA_IMAGE.rsplit(":", 1)[0])
        log(f"pod tier up in {time.monotonic() - t0:.1f} s (node Ready at {node.ip})")
        try:
            yield plane.kubeconfig, node.ip
        finally:
            node.stop()
    finally:
        plane.stop()


def node_ip(kubeconfig: Path) -> str:
    from kubernetes import client

    from spacehub.runtime.backends.kubernetes import objects

    api = objects.connect(kubeconfig)
    try:
        for n in client.CoreV1Api(api).list_node().items:
            ready = any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
            ips = [a.address for a in n.status.addresses or [] if a.type == "InternalIP"]
            if ready and ips:
                return str(ips[0])
    finally:
        api.close()
    raise RuntimeError(f"no Ready node with an InternalIP in {kubeconfig}")


def wait(what: str, check: Any, timeout: float, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")


class Bench:
    def __init__(self, kube: Any, namespace: str, api: HfApi, url: str, host: str, repo: str) -> None:
        from kubernetes import client

        self.kube, self.namespace, self.api, self.url, self.host, self.repo = kube, namespace, api, url, host, repo
        self.core, self.apps = client.CoreV1Api(kube), client.AppsV1Api(kube)

    def asleep(self, timeout: float) -> None:
        """SLEEPING by the Hub's API (not a visit: it does not wake the Space), at zero replicas, no pod left."""
        wait("SLEEPING", lambda: self.api.get_space_runtime(self.repo).raw["stage"] == "SLEEPING", timeout)
        # the stage is said before the reconciler acts on it: the scale to zero follows
        wait("zero replicas", lambda: self.apps.list_namespaced_deployment(self.namespace).items[0].spec.replicas == 0,
             30)  # fmt: skip
        pods = self.core.list_namespaced_pod
        wait("the app's pod to go", lambda: not pods(self.namespace, label_selector=APP_PODS).items, 60)

    def wake(self, timeout: float) -> tuple[float, str]:
        """Seconds from a visit through the proxy to the app's 200 (one request: an API client waits), and the
        body."""
        with httpx.Client(timeout=timeout) as c:
            t0 = time.perf_counter()
            r = c.get(self.url + "/", headers={"Host": self.host})
            took = time.perf_counter() - t0
        if r.status_code != 200 or "k8s-wake" not in r.text:
            raise RuntimeError(f"the wake answered {r.status_code} {r.text[:300]!r}")
        (d,) = self.apps.list_namespaced_deployment(self.namespace).items
        if d.spec.replicas != 1:
            raise RuntimeError(f"woken, but the Deployment has {d.spec.replicas} replicas")
        return took, r.text

    def baseline(self, n: int, timeout: float) -> tuple[float, str]:
        """Seconds from creating the Deployment's pod template as a bare Pod to its app's first 200 on its IP."""
        (d,) = self.apps.list_namespaced_deployment(self.namespace).items
        template = self.kube.sanitize_for_serialization(d.spec.template)
        name = f"bench-baseline-{n}-{secrets.token_hex(2)}"
        pod = {"apiVersion": "v1", "kind": "Pod", "spec": template["spec"],
               "metadata": {"name": name, "labels": {BASELINE_LABEL: "baseline"}}}  # fmt: skip
        port = next(p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])
                    if p.get("name") == "http")  # fmt: skip
        t0 = time.perf_counter()
        self.core.create_namespaced_pod(self.namespace, pod)
        try:
            read = self.core.read_namespaced_pod
            ip = wait("the baseline pod's IP", lambda: read(name, self.namespace).status.pod_ip, timeout, 0.02)
            body = wait("the baseline pod's first 200", lambda: self._get(f"http://{ip}:{port}/"), timeout, 0.02)
            took = time.perf_counter() - t0
        finally:
            self.core.delete_namespaced_pod(name, self.namespace, grace_period_seconds=0)
            wait("the baseline pod to go", lambda: not self.core.list_namespaced_pod(
                self.namespace, label_selector=BASELINE_LABEL).items, 60)  # fmt: skip
        return took, body

    @staticmethod
    def _get(url: str) -> str | None:
        try:
            r = httpx.get(url, timeout=1)
        except httpx.HTTPError:
            return None
        return r.text if r.status_code == 200 and "k8s-wake" in r.text else None


def fmt(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0] * 1000:.1f} ms"
    return f"{statistics.median(values) * 1000:.1f} ms ({min(values) * 1000:.1f}-{max(values) * 1000:.1f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--kubeconfig", help="an existing pod-tier cluster (default: start one here)")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument(
        "--requirements",
        default="",
        help="the Space's requirements.txt, e.g. 'six': installed by its "
        "build into the environment cache, or by every pod with --no-env-cache (pods reach the index)",
    )
    ap.add_argument(
        "--no-env-cache",
        action="store_true",
        help="kubernetes.env_cache_host_path empty: every pod "
        "installs its own environment (the figure before the cache)",
    )
    ap.add_argument(
        "--host-ca",
        action="store_true",
        help="on a tier started here: the pods run an image that "
        "trusts this machine's CA (tests/k8s/node.py), for pip behind an egress that re-signs TLS",
    )
    args = ap.parse_args()
    from kubernetes import client

    from spacehub.runtime.backends.kubernetes import objects

    started_load = load()
    wakes: list[float] = []
    baselines: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, pod_tier(args.kubeconfig, args.host_ca) as (kubeconfig, ip):
        kube = objects.connect(kubeconfig)
        core = client.CoreV1Api(kube)
        namespace = f"bench-{secrets.token_hex(3)}"
        core.create_namespace({"metadata": {"name": namespace}})
        try:
            wait("the default service account", lambda: core.list_namespaced_service_account(namespace).items, 60)
            port = free_port()
            env = {
                "SPACEHUB_RUNTIME__BACKEND": "kubernetes",
                "SPACEHUB_KUBERNETES__KUBECONFIG": str(kubeconfig),
                "SPACEHUB_KUBERNETES__NAMESPACE": namespace,
                "SPACEHUB_KUBERNETES__HUB_URL": f"http://{ip}:{port}",  # where the pods fetch the code
                "SPACEHUB_KUBERNETES__HUB_CIDRS": f'["{ip}/32"]',
                "SPACEHUB_KUBERNETES__ENDPOINTS": "pod",
                "SPACEHUB_SERVER__HOST": "0.0.0.0",  # the pods reach it at the node's address, we at 127.0.0.1
                "SPACEHUB_RUNTIME__RECONCILE_INTERVAL": "0.2",
                "SPACEHUB_RUNTIME__CUSTOM_SLEEP_ON_FREE_HARDWARE": "true",
                "SPACEHUB_RUNTIME__MIN_AVAILABLE_MEMORY_MB": "0",
                # a plain-Python app (sdk gradio without gradio): the pods install nothing from the package index
                "SPACEHUB_KUBERNETES__SDK_PACKAGES": '{"gradio": [], "streamlit": []}',
            }
            if args.no_env_cache:
                env["SPACEHUB_KUBERNETES__ENV_CACHE_HOST_PATH"] = ""
                if args.requirements:  # each pod installs from the package index: its firewall must let it out
                    env["SPACEHUB_KUBERNETES__ALLOW_INTERNET"] = "true"
            if args.host_ca:
                env["SPACEHUB_KUBERNETES__IMAGE"] = "localhost/python-hostca:3.11-slim"  # tests/k8s/node.CA_IMAGE
            with start_server(Path(tmp) / "data", env=env, port=port) as srv:
                api = HfApi(endpoint=srv.url, token=srv.user("alice"))
                repo = "alice/k8s-wake"
                api.create_repo(repo, repo_type="space", space_sdk="gradio")
                host = f"{api.space_info(repo).subdomain}.localhost:{srv.port}"
                t0 = time.monotonic()
                files = {"README.md": README, "app.py": APP}
                if args.requirements:
                    files["requirements.txt"] = args.requirements.replace(",", "\n") + "\n"
                push(api, repo, files)
                bench = Bench(kube, namespace, api, srv.url, host, repo)
                try:
                    wait("the first 200", lambda: serves(srv.url, host), args.timeout, 0.1)
                except RuntimeError:
                    pods = [(p.metadata.name, p.spec.node_name, p.status.phase, p.status.conditions)
                            for p in core.list_namespaced_pod(namespace).items]  # fmt: skip
                    log(f"runtime: {api.get_space_runtime(repo).raw}\npods: {pods}\n"
                        + srv.log.read_text(errors="replace")[-3000:])  # fmt: skip
                    raise
                log(f"push -> first 200 through the proxy in {time.monotonic() - t0:.1f} s")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # the client warns on cpu-basic; this hub allows it
                    api.set_space_sleep_time(repo, SLEEP)
                boots: set[str] = set()
                for n in range(args.rounds):
                    bench.asleep(args.timeout)
                    took, body = bench.baseline(n, args.timeout)
                    baselines.append(took)
                    boots.add(body)
                    bench.asleep(args.timeout)  # still: the baseline is not the Space's pod
                    took, body = bench.wake(args.timeout)
                    wakes.append(took)
                    boots.add(body)
                    log(f"round {n + 1}: wake {wakes[-1]:.2f} s, baseline {baselines[-1]:.2f} s (load {load()})")
                if len(boots) != 2 * args.rounds:
                    raise RuntimeError(f"a new pod should answer each time: {len(boots)} distinct boots")
        finally:
            core.delete_namespace(namespace)
            with contextlib.suppress(RuntimeError):
                wait(f"the pods of {namespace} to go", lambda: not core.list_namespaced_pod(namespace).items, 60, 0.2)
            kube.close()
    ratio = statistics.median(wakes) / statistics.median(baselines)
    what = f"requirements {args.requirements!r}" if args.requirements else "no requirements"
    cache = "without the environment cache" if args.no_env_cache else "with the environment cache"
    print(f"load average: {started_load} at the start, {load()} at the end; {args.rounds} rounds; {what}, {cache}")
    print(f"{'what':34} {'median (min-max)':28} {'baseline: pod from scratch -> 200':34} ratio")
    print(f"{'wake from zero replicas -> 200':34} {fmt(wakes):28} {fmt(baselines):34} {ratio:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"wake_s": wakes, "baseline_s": baselines, "ratio": ratio,
                                         "load_start": started_load, "load_end": load()}, indent=1))  # fmt: skip
    return 0


def serves(url: str, host: str) -> bool:
    try:
        r = httpx.get(url + "/", headers={"Host": host}, timeout=5)
    except httpx.HTTPError:
        return False
    return r.status_code == 200 and "k8s-wake" in r.text


if __name__ == "__main__":
    sys.exit(main())
