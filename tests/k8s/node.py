"""The pod tier's node: a real kubelet (1.20, from `scripts/k8s-build`) on Debian's containerd 1.6, runc and CNI
plugins, joined to a `ControlPlane` (cluster.py), so that Spaces run in real pods.

Where the probe (../shared/reference/runtime-probes.md §1.5, Appendix B) left things on the host, this node keeps
them to itself, so that it can be removed whole and two nodes (two test workers) do not meet:

- **Its own address.** kubelet refuses a loopback node IP, and without one the apiserver cannot reach the kubelet
  (no `kubectl logs/exec`). An interface ``shn<id>`` (one end of a veth pair left on the host: this VM's kernel
  has no dummy interfaces) holds a /32 from 10.250.0.0/16, the node's InternalIP;
  the kubelet listens there only, admits only clients of the control plane's kubelet CA (the apiserver's client
  certificate), and pods reach the host there (a Hub for their code fetches binds to it).
- **Its own pod network.** A CNI bridge ``shb<id>`` with a /24 of 10.244.0.0/16 (host-local IPAM, portmap,
  loopback from Debian's containernetworking-plugins); the host routes to pod IPs on that bridge, and one
  masquerade rule of the node's own (its comment is the node's name) lets pods out through the host (pip in a
  build reaches the registry). No kube-proxy: Services have no virtual IPs (the backend's ``endpoints = "pod"``
  answers pod IPs). kubelet's own iptables chains are off (``makeIPTablesUtilChains``), and the bridge plugin's
  masquerade too. The bridge plugin does not enforce NetworkPolicies.
- **Its own mount namespace.** containerd and kubelet run in one private mount namespace held by a sleeper, with a
  tmpfs on /run (runc state, shim sockets, pods' network namespaces), and this node's folders over /var/log (the
  hard-coded /var/log/pods and /var/log/containers) and /var/lib (the CNI cache). Their mounts (volumes, overlay
  snapshots) die with the namespace. Six kernel settings kubelet would otherwise rewrite on the host
  (`vm.overcommit_memory`, `kernel.panic`, …) are shown to it, in that namespace only, as the values it wants.
- **Its own cgroups.** Every process of the node (the sleeper, containerd, its shims, kubelet, the pods) lives
  under ``/spacehub-node-<id>`` in each v1 hierarchy (kubelet's ``cgroupRoot``); `stop` kills what is left there
  and removes the tree.
- containerd's config, root, state and socket, kubelet's root, config and certificates, the CNI config and IPAM
  state all live in one temporary folder.

Images: nothing can be pulled here. The pause image is a static C program (gcc) built into an OCI archive by this
module; the Python image is `scripts/build-base-images`' (podman), saved once as an OCI archive. Both are kept in
``~/.cache/spacehub/k8s-node`` and imported into this node's containerd at start (`ctr -n k8s.io images import`),
with the pods' firewall image (`scripts/build-firewall-image`: Debian with iptables, under the name
``kubernetes.firewall_image`` defaults to; its archive is kept in ``~/.cache/spacehub/firewall-image``).

Needs root with CAP_NET_ADMIN and cgroup v1 (hybrid) or the same files; `Unavailable` says what is missing.
containerd's CRI runs with ``restrict_oom_score_adj = true``: this VM lacks CAP_SYS_RESOURCE (probe §1.5).
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.k8s.cluster import ControlPlane, Unavailable

CACHE = Path(os.environ.get("SPACEHUB_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
             / "spacehub") / "k8s-node"  # fmt: skip
ROOT = Path(__file__).resolve().parents[2]
CGROUP = Path("/sys/fs/cgroup")
CNI_BIN = Path("/usr/lib/cni")
PAUSE = "localhost/pause:3.2"
PYTHON = "docker.io/library/python:3.11-slim"
FIREWALL_BASE = "registry.k8s.io/build-image/debian-iptables"  # kubernetes.firewall_image's default, built offline
PROGRAMS = {"containerd": "containerd", "ctr": "containerd", "runc": "runc", "unshare": "util-linux",
            "nsenter": "util-linux", "ip": "iproute2", "gcc": "gcc", "podman": "podman"}  # fmt: skip
# what kubelet 1.20 sets these to when they differ (pkg/kubelet/cm setupKernelTunables), shown to it as such
KERNEL = {"vm/overcommit_memory": "1", "vm/panic_on_oom": "0", "kernel/panic": "10", "kernel/panic_on_oops": "1",
          "kernel/keys/root_maxkeys": "1000000", "kernel/keys/root_maxbytes": "25000000"}  # fmt: skip
PAUSE_C = r"""
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
static void die(int s) { (void)s; exit(0); }
int main(void) { signal(SIGTERM, die); signal(SIGINT, die); for (;;) pause(); }
"""


def _run(*argv: str, timeout: float = 300, **kw: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload]
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return proc  # type: ignore[no-any-return]


def check_machine() -> None:
    """Raises Unavailable when this machine cannot hold a node (a program, root, cgroup v1 missing)."""
    missing = sorted({pkg for prog, pkg in PROGRAMS.items() if shutil.which(prog) is None})
    missing += [] if (CNI_BIN / "bridge").exists() else ["containernetworking-plugins"]
    if missing:
        raise Unavailable(f"missing Debian packages: {', '.join(missing)} (scripts/install-system-deps installs them)")
    if os.geteuid() != 0:
        raise Unavailable("a kubelet node needs root (network interfaces, mounts, cgroups)")
    if not (CGROUP / "memory" / "memory.limit_in_bytes").exists():
        raise Unavailable("the pod tier drives cgroup v1 (this node's cgroupRoot); this machine has none")


def _hierarchies() -> list[Path]:
    """The cgroup v1 hierarchies (kubelet's cgroupfs driver works in each)."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        if right.split()[0] == "cgroup":
            found.append(Path(left.split()[4]))
    return found


def images() -> tuple[Path, Path, Path]:
    """The OCI archives of the pause image, the Python image and the firewall image (built once, cached; test
    workers take turns). Raises: Unavailable."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _images()


def _images() -> tuple[Path, Path, Path]:
    pause = CACHE / "pause-3.2.tar"
    if not pause.exists():
        with tempfile.TemporaryDirectory() as d:
            (Path(d) / "pause.c").write_text(PAUSE_C)
            _run("gcc", "-static", "-Os", "-o", f"{d}/pause", f"{d}/pause.c")
            (Path(d) / "Containerfile").write_text('FROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause"]\n')
            _run("podman", "build", "-q", "-t", PAUSE, d)
            _run("podman", "save", "--format", "oci-archive", "-o", f"{pause}.part", PAUSE)
            Path(f"{pause}.part").rename(pause)
    build = subprocess.run([str(ROOT / "scripts" / "build-base-images")], capture_output=True, text=True)
    if build.returncode != 0:
        raise Unavailable(f"scripts/build-base-images failed: {build.stderr.strip()[-1500:]}")
    key = build.stdout.strip().splitlines()[-1]
    python = CACHE / f"python-{key}.tar"
    if not python.exists():
        _run("podman", "save", "--format", "oci-archive", "-o", f"{python}.part", PYTHON)
        Path(f"{python}.part").rename(python)
    # the pods' firewall init container's image, under the name kubernetes.firewall_image defaults to
    build = subprocess.run([str(ROOT / "scripts" / "build-firewall-image")], capture_output=True, text=True)
    if build.returncode != 0:
        raise Unavailable(f"scripts/build-firewall-image failed: {build.stderr.strip()[-1500:]}")
    return pause, python, Path(build.stdout.strip().splitlines()[-1])


HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
CA_IMAGE = "localhost/python-hostca:3.11-slim"


def host_ca_image() -> Path:
    """An OCI archive of the Python image that trusts this machine's CA bundle (pip included: ``PIP_CERT``), for
    pods that install from the package index where this machine's egress re-signs TLS with its own CA (as it does
    here: with the image's own bundle pip fails with CERTIFICATE_VERIFY_FAILED). An operator behind such a proxy
    does the same: an image (``kubernetes.image``) that trusts their CA. Built once per bundle, cached.
    Raises: Unavailable."""
    import hashlib

    python = images()[1]  # the Python image, in podman's store too
    key = hashlib.sha256(HOST_CA.read_bytes() + python.name.encode()).hexdigest()[:16]
    archive = CACHE / f"python-hostca-{key}.tar"
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not archive.exists():
            with tempfile.TemporaryDirectory() as d:
                shutil.copy(HOST_CA, Path(d) / "ca-certificates.crt")
                (Path(d) / "Containerfile").write_text(
                    f"FROM {PYTHON}\nCOPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n"
                    "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt "
                    "REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt\n"
                )
                _run("podman", "build", "-q", "--pull=never", "-t", CA_IMAGE, d)
            _run("podman", "save", "--format", "oci-archive", "-o", f"{archive}.part", CA_IMAGE)
            Path(f"{archive}.part").rename(archive)
    return archive


def _used_networks() -> list[ipaddress.IPv4Network]:
    out = _run("ip", "-4", "-o", "addr", "show").stdout + _run("ip", "-4", "route", "show").stdout
    nets = []
    for word in out.split():
        try:
            nets.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            continue
    return [n for n in nets if isinstance(n, ipaddress.IPv4Network)]


def _pick(within: str, prefix: int) -> ipaddress.IPv4Network:
    used = _used_networks()
    subnets = list(ipaddress.ip_network(within).subnets(new_prefix=prefix))
    for _ in range(200):
        net = subnets[secrets.randbelow(len(subnets) - 2) + 1]
        if not any(net.overlaps(u) for u in used):
            return net  # type: ignore[return-value]
    raise RuntimeError(f"no free /{prefix} in {within}")


@dataclass
class Node:
    """A running node. ``name`` is its Node object; ``ip`` its InternalIP (reachable from the host and its pods);
    ``pod_cidr`` the range its pods' IPs come from."""

    plane: ControlPlane
    bin_dir: Path
    workdir: Path
    id: str = field(default_factory=lambda: secrets.token_hex(3))
    ip: str = ""
    pod_cidr: str = ""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"spacehub-node-{self.id}"

    @property
    def dummy(self) -> str:
        return f"shn{self.id}"

    @property
    def bridge(self) -> str:
        return f"shb{self.id}"

    @property
    def cgroup(self) -> str:
        return f"/spacehub-node-{self.id}"

    @property
    def socket(self) -> Path:
        return self.workdir / "containerd.sock"

    @classmethod
    def start(cls, plane: ControlPlane, bin_dir: Path, timeout: float = 180) -> Node:
        """Start containerd and kubelet, import the images, and wait for the Node to be Ready. Raises:
        Unavailable (this machine cannot), RuntimeError or TimeoutError (it failed: the logs are in the message)."""
        check_machine()
        archives = images()
        node = cls(plane, bin_dir, Path(tempfile.mkdtemp(prefix="spacehub-node-")))
        try:
            node._start(archives, timeout)
        except BaseException:
            node.stop()
            raise
        return node

    # ---- start ---------------------------------------------------------------------------------------------------
    def _start(self, archives: tuple[Path, Path, Path], timeout: float) -> None:
        t0 = time.monotonic()
        self._network()
        self._cgroups()
        self._configs()
        self._namespace()
        self._spawn("containerd", ["containerd", "--config", str(self.workdir / "containerd.toml")])
        self._wait("containerd", lambda: self.socket.exists() and self._ctr("version").returncode == 0, 30)
        self.timings["containerd"] = time.monotonic() - t0
        for archive, base in zip(archives, ("localhost/pause", "docker.io/library/python", FIREWALL_BASE), strict=True):
            proc = self._ctr("images", "import", "--base-name", base, str(archive), timeout=300)
            if proc.returncode != 0:
                raise RuntimeError(f"ctr images import {archive}: {proc.stderr.strip()[-1500:]}")
        self.timings["images"] = time.monotonic() - t0 - self.timings["containerd"]
        t1 = time.monotonic()
        self._spawn("kubelet", self._kubelet_argv())
        self._wait("the Node to be Ready", self._ready, timeout)
        self.timings["kubelet ready"] = time.monotonic() - t1
        self.timings["total"] = time.monotonic() - t0

    def _network(self) -> None:
        address = _pick("10.250.0.0/16", 32)
        self.ip = str(address.network_address)
        self.pod_cidr = str(_pick("10.244.0.0/16", 24))
        # a veth pair whose ends both stay on the host (this VM's kernel has no dummy interfaces): only the address
        _run("ip", "link", "add", self.dummy, "type", "veth", "peer", "name", f"{self.dummy}p")
        _run("ip", "addr", "add", f"{self.ip}/32", "dev", self.dummy)
        _run("ip", "link", "set", f"{self.dummy}p", "up")
        _run("ip", "link", "set", self.dummy, "up")
        # pods reach the registries (pip in a build) through the host: one masquerade rule, removed by stop
        _run("iptables", "-t", "nat", "-A", "POSTROUTING", *self._masquerade())

    def _masquerade(self) -> list[str]:
        return ["-s", self.pod_cidr, "!", "-d", self.pod_cidr, "-m", "comment", "--comment", self.name,
                "-j", "MASQUERADE"]  # fmt: skip

    def _cgroups(self) -> None:
        for h in _hierarchies():
            for sub in (self.cgroup, f"{self.cgroup}/node"):
                path = h / sub.lstrip("/")
                path.mkdir(exist_ok=True)
                if (h / "cpuset.cpus").exists():  # a cpuset cgroup takes no task until it has CPUs and memory
                    for f in ("cpuset.cpus", "cpuset.mems"):
                        (path / f).write_text((path.parent / f).read_text())

    def _configs(self) -> None:
        w = self.workdir
        for d in ("containerd", "cni/net.d", "cni/ipam", "kubelet/pki", "varlog", "varlib/cni", "kernel", "run"):
            (w / d).mkdir(parents=True, exist_ok=True)
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        (w / "containerd.toml").write_text(f"""version = 2
root = "{w}/containerd/root"
state = "{w}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{self.socket}"
[ttrpc]
  address = "{w}/containerd.ttrpc.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "{w}/containerd/opt"
[{cri}]
  sandbox_image = "{PAUSE}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
[{cri}.cni]
  bin_dir = "{CNI_BIN}"
  conf_dir = "{w}/cni/net.d"
[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  BinaryName = "{shutil.which("runc")}"
[{cri}.registry]
  config_path = "{w}/certs.d"
""")
        conflist = {
            "cniVersion": "0.4.0",
            "name": f"spacehub-{self.id}",
            "plugins": [
                {"type": "bridge", "bridge": self.bridge, "isGateway": True, "ipMasq": False, "hairpinMode": True,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": self.pod_cidr}]],
                          "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(w / "cni" / "ipam")}},
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }  # fmt: skip
        (w / "cni/net.d/10-spacehub.conflist").write_text(json.dumps(conflist, indent=1))
        kubelet = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": self.ip,
            "healthzBindAddress": self.ip,
            "readOnlyPort": 0,
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": False},
                               "x509": {"clientCAFile": str(self.plane.workdir / "kubelet-ca.crt")}},
            "authorization": {"mode": "AlwaysAllow"},
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": self.cgroup,
            "cgroupsPerQOS": True,
            "failSwapOn": False,
            "makeIPTablesUtilChains": False,
            "serializeImagePulls": False,
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                             "nodefs.inodesFree": "1%"},
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "podPidsLimit": 4096,
            "resolvConf": "/etc/resolv.conf",
            "syncFrequency": "5s",
            "fileCheckFrequency": "5s",
            "nodeStatusUpdateFrequency": "5s",
        }  # fmt: skip
        (w / "kubelet.yaml").write_text(yaml.safe_dump(kubelet))
        for key, value in KERNEL.items():
            (w / "kernel" / key.replace("/", ".")).write_text(value + "\n")

    def _namespace(self) -> None:
        """The sleeper that holds the node's private mount namespace, set up as the module says."""
        w = self.workdir
        masks = "".join(
            f'[ "$(cat /proc/sys/{key})" = "{value}" ] || mount --bind {w}/kernel/{key.replace("/", ".")} '
            f"/proc/sys/{key}\n"
            for key, value in KERNEL.items()
        )
        # A copy of the host's mounts holds every SpaceHub storage image mounted at this moment by a server of another
        # test for as long as the node lives: such an image could not be grown (the guide's storage upgrade, in CI).
        # Drop them as SpaceHub's own sandboxes do (runtime/supervise.py, STORAGE_MOUNT_RE).
        script = f"""set -e
awk '{{print $5}}' /proc/self/mountinfo | grep -E '/storage/[0-9a-f]{{24}}-[0-9a-z]{{1,16}}$' | \
    while read -r point; do umount -l "$point" || true; done
mount -t tmpfs -o mode=755 spacehub-node /run
mkdir -p /run/netns
mount --bind {w}/varlog /var/log
mount --bind {w}/varlib /var/lib
{masks}touch {w}/namespace.ready
exec sleep 2147483647
"""
        (w / "namespace.sh").write_text(script)
        self._spawn("namespace", ["unshare", "--mount", "--propagation", "private", "sh", str(w / "namespace.sh")],
                           enter=False)  # fmt: skip
        self._wait("the node's mount namespace", lambda: (w / "namespace.ready").exists(), 10)

    def _spawn(self, name: str, argv: list[str], enter: bool = True) -> subprocess.Popen[bytes]:
        """Start ``argv`` in the node's cgroup (and, with ``enter``, its mount namespace), logging to the folder."""
        if enter:
            argv = ["nsenter", f"--mount=/proc/{self.procs['namespace'].pid}/ns/mnt", "--", *argv]
        procs = [h / self.cgroup.lstrip("/") / "node" / "cgroup.procs" for h in _hierarchies()]

        def join() -> None:  # in the child, before exec
            for p in procs:
                with open(p, "w") as f:
                    f.write(str(os.getpid()))

        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 (the child keeps it)
        env = {**os.environ, "PATH": f"{self.bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}:/usr/sbin:/sbin"}
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=self.workdir, preexec_fn=join, env=env)  # fmt: skip
        log.close()
        self.procs[name] = proc
        return proc

    def _ctr(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ctr", "--address", str(self.socket), "-n", "k8s.io", *args], capture_output=True,
                              text=True, timeout=timeout)  # fmt: skip

    def _kubelet_argv(self) -> list[str]:
        w = self.workdir
        return [
            str(self.bin_dir / "kubelet"),
            f"--config={w / 'kubelet.yaml'}",
            f"--kubeconfig={self.plane.kubeconfig}",
            "--container-runtime=remote",
            f"--container-runtime-endpoint=unix://{self.socket}",
            f"--root-dir={w / 'kubelet'}",
            f"--cert-dir={w / 'kubelet' / 'pki'}",
            f"--hostname-override={self.name}",
            f"--node-ip={self.ip}",
            f"--pod-infra-container-image={PAUSE}",
            "--node-labels=spacehub.dev/test-node=pod-tier",
            "--v=1",
        ]

    def _ready(self) -> bool:
        from kubernetes import client

        from spacehub.runtime.backends.kubernetes import objects

        api = objects.connect(self.plane.kubeconfig)
        try:
            node = client.CoreV1Api(api).read_node(self.name)
        except client.exceptions.ApiException:
            return False
        finally:
            api.close()
        return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])

    def _wait(self, what: str, ready, timeout: float) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode} while waiting for {what}:\n"
                                       f"{self.log(name)[-4000:]}")  # fmt: skip
            if ready():
                return
            time.sleep(0.2)
        raise TimeoutError(f"{what}: not after {timeout} s\n" + "\n".join(
            f"--- {n}:\n{self.log(n)[-2500:]}" for n in ("containerd", "kubelet")))  # fmt: skip

    def import_image(self, archive: Path, base: str) -> None:
        """Import an OCI archive into this node's containerd (pods then use it without a pull)."""
        proc = self._ctr("images", "import", "--base-name", base, str(archive), timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"ctr images import {archive}: {proc.stderr.strip()[-1500:]}")

    def trust_registry(self, host: str) -> None:
        """Pull from the registry at ``host`` (host:port) over plain HTTP: containerd's hosts.toml for it (read at
        each pull, no restart)."""
        folder = self.workdir / "certs.d" / host
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "hosts.toml").write_text(
            f'server = "http://{host}"\n\n[host."http://{host}"]\n  capabilities = ["pull", "resolve"]\n'
        )

    # ---- observe -------------------------------------------------------------------------------------------------
    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def pids(self) -> list[int]:
        """Every process of the node: the daemons, the shims and the pods' processes."""
        found: set[int] = set()
        for h in _hierarchies():
            root = h / self.cgroup.lstrip("/")
            if root.exists():
                for procs in root.rglob("cgroup.procs"):
                    try:
                        found |= {int(x) for x in procs.read_text().split()}
                    except OSError:
                        continue
        return sorted(found)

    def rss_bytes(self) -> dict[str, int]:
        """Resident memory of the node's daemons (kubelet, containerd, its shims) and of all its processes."""
        sizes: dict[str, int] = {}
        for pid in self.pids():
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
                rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            except (OSError, ValueError, IndexError):
                continue
            key = comm if comm in ("kubelet", "containerd") or comm.startswith("containerd-shim") else "pods"
            key = "containerd-shim" if key.startswith("containerd-shim") else key
            sizes[key] = sizes.get(key, 0) + rss
            sizes["all"] = sizes.get("all", 0) + rss
        return sizes

    # ---- stop ----------------------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Remove everything the node made: its processes (kubelet first, then every process left in its cgroups:
        containerd, shims, pods, the namespace's sleeper, whose end takes the mounts with it), its cgroups, the
        bridge and the dummy interface, and the folder."""
        kubelet = self.procs.get("kubelet")
        if kubelet is not None and kubelet.poll() is None:
            os.killpg(kubelet.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                kubelet.wait(10)
        deadline = time.monotonic() + 30
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        for h in _hierarchies():
            root = h / self.cgroup.lstrip("/")
            if root.exists():
                for d in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                    _rmdir(d)
                _rmdir(root)
        for link in (self.bridge, self.dummy):
            subprocess.run(["ip", "link", "del", link], capture_output=True)
        if self.pod_cidr:
            subprocess.run(["iptables", "-t", "nat", "-D", "POSTROUTING", *self._masquerade()], capture_output=True)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _rmdir(path: Path) -> None:
    for _ in range(50):  # a cgroup whose last task just died may be busy for a moment
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)
    path.rmdir()
