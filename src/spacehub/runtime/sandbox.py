"""The Space sandbox of the local backend: what a Space's processes may see and do, as a plan for the supervisor.

Every Space is code its owner pushed (a duplicate runs a stranger's), so its processes run in a sandbox made with
bubblewrap (``bwrap``, the sandbox tool of Flatpak: unprivileged user namespaces, no setuid helper), described here
as the ``sandbox`` field of ``launch.json`` and set up by the supervisor (supervise.py):

- **Identity**: uid/gid 1000 (``user``, as on Hugging Face) inside a user namespace of its own, which maps to an
  unprivileged host uid (one per Space, from `host_uid`, when SpaceHub runs as root; SpaceHub's own uid otherwise).
  No capabilities, ``no_new_privs`` (bwrap always sets it), no nested user namespaces (``--disable-userns``), and a
  seccomp filter (`seccomp_program`) refusing what Docker's default profile refuses to an unprivileged container.
- **Files**: a new root with nothing but ``/usr`` and the interpreter read-only, a few ``/etc`` files of the host
  (certificates, time zones) and generated ones (passwd, group, hosts, resolv.conf), the Space's code read-only at
  ``/home/user/app``, its Python environment read-only, its own writable HOME (``/home/user``) and ``/tmp``, its
  ``/data`` and its volumes read-only. Nothing of SpaceHub's data dir, source or virtualenv, nor of other Spaces.
- **Processes**: a PID namespace of its own (it sees and signals only its own processes); cgroup limits and the
  freezer apply as before (the supervisor joins the cgroup before it starts bwrap).
- **Network**: a network namespace of its own with only loopback. The proxy reaches the app through a listening
  socket that the supervisor makes on the host and `sandbox_init` accepts on inside; the Hub API through a
  socket handed back to the supervisor (see sandbox_init.py). ``runtime.outbound`` adds the rest: ``open`` (the
  default, as on HF) attaches slirp4netns (user-mode NAT, with the host's loopback *not* reachable),
  ``hub-only`` nothing more, ``none`` not even the Hub.

When SpaceHub runs as root, the supervisor first binds each source into a private staging tmpfs (sources under
folders only root may enter, such as pytest's 0700 temporary folders, would otherwise be out of the sandbox user's
reach) and runs bwrap as the Space's host uid.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

SANDBOX_UID = 1000  # the Space's user inside its sandbox (HF: `user`, uid 1000, HOME=/home/user)
HOME = "/home/user"
APP_DIR = "/home/user/app"
VENV = "/opt/venv"  # the Space's Python environment (uv makes relocatable ones)
HOST_UID_BASE = 200_000  # host uids of sandboxed Spaces when SpaceHub runs as root: BASE + (hash % SPAN)
HOST_UID_SPAN = 100_000
# docker Spaces' containers when SpaceHub runs as root: a user namespace per Space mapping its ids 0..65535 onto
# host ids BASE + slot * 65536 (slot from a hash of the Space id), far above every other range in use.
CONTAINER_ID_BASE = 2**31
CONTAINER_ID_SIZE = 65536
CONTAINER_ID_SLOTS = 30_000  # BASE + SLOTS * SIZE stays below 2**32 - 1 (the kernel's invalid id)
OUTBOUND = ("open", "hub-only", "none")
# Syscalls refused with EPERM: Docker's default profile's list for a container without capabilities (mounts,
# kernel modules and keyrings, clocks, tracing other processes, namespaces, BPF, perf, io_uring), so that a kernel
# bug behind one of them is out of reach too. clone3 answers ENOSYS (its flags cannot be inspected; libc falls back
# to clone, and new namespaces need capabilities the sandbox has none of).
DENIED_SYSCALLS = [
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "init_module",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mount",
    "mount_setattr",
    "move_mount",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "setns",
    "settimeofday",
    "swapoff",
    "swapon",
    "sysfs",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
]
# Host files every sandbox gets read-only under /etc (those that exist): TLS roots, time zones, name service and
# library configuration. Never the whole of /etc.
ETC_FILES = (
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "alternatives",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "zoneinfo",
    "nsswitch.conf",
    "host.conf",
    "gai.conf",
    "protocols",
    "services",
    "mime.types",
    "fonts",
)


class SandboxUnavailable(Exception):
    """The sandbox cannot be set up on this host; the message says why (it becomes the Space's errorMessage)."""


@dataclass(frozen=True)
class Bind:
    src: str  # host path
    dst: str  # path in the sandbox
    mode: str = "ro"  # ro | rw | dev


def host_uid(space_id: str) -> int | None:
    """The host uid a Space's processes run as: one per Space when SpaceHub is root (so that even on the host no two
    Spaces share an owner), None (SpaceHub's own) otherwise."""
    if os.geteuid() != 0:
        return None
    digest = int(hashlib.sha256(space_id.encode()).hexdigest()[:12], 16)
    return HOST_UID_BASE + digest % HOST_UID_SPAN


def container_id_base(space_id: str) -> int | None:
    """The first host id of a docker Space's container (its uid 0; its ``user``, uid 1000, is this + 1000) when
    SpaceHub is root; None otherwise (rootless podman maps ids itself)."""
    if os.geteuid() != 0:
        return None
    digest = int(hashlib.sha256(b"container:" + space_id.encode()).hexdigest()[:12], 16)
    return CONTAINER_ID_BASE + (digest % CONTAINER_ID_SLOTS) * CONTAINER_ID_SIZE


# The namespace flags of clone(2): a container's filter refuses them (bwrap has --disable-userns for its own).
CLONE_NAMESPACE_FLAGS = {
    "CLONE_NEWNS": 0x00020000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
}


def oci_seccomp_profile() -> dict[str, Any]:
    """The same filter as an OCI runtime's seccomp profile (``--security-opt seccomp=FILE`` of podman and docker),
    for docker Spaces: the engines' default profiles allow unshare, mount and clone with namespace flags to
    everyone and leave refusing them to missing capabilities, which a user namespace gives back."""
    eperm = {"action": "SCMP_ACT_ERRNO", "errnoRet": 1}
    rules: list[dict[str, Any]] = [{"names": DENIED_SYSCALLS, **eperm}]
    rules.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38})  # ENOSYS: libc uses clone
    for flag in CLONE_NAMESPACE_FLAGS.values():  # clone's flags are its first argument on x86-64 and arm64
        arg = {"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}
        rules.append({"names": ["clone"], **eperm, "args": [arg]})
    archs = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    return {"defaultAction": "SCMP_ACT_ALLOW", "architectures": archs, "syscalls": rules}


def seccomp_program() -> bytes:
    """The BPF program of the filter (compiled by libseccomp through pyseccomp), as ``bwrap --seccomp`` reads it."""
    import pyseccomp

    f = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    for name in DENIED_SYSCALLS:
        try:
            f.add_rule(pyseccomp.ERRNO(1), name)  # EPERM
        except Exception:
            continue
    f.add_rule(pyseccomp.ERRNO(38), "clone3")  # ENOSYS
    with tempfile.TemporaryFile() as out:
        f.export_bpf(out)
        out.seek(0)
        return out.read()


def etc_files(hostname: str, hub_host: str | None, outbound: str) -> dict[str, str]:
    """The generated /etc files: the Space's user, loopback names (and the Hub's public host name on loopback, where
    sandbox_init listens for it) and, with outbound traffic, slirp4netns's resolver."""
    hosts = f"127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost\n"
    if hub_host and hub_host not in ("localhost",) and not _is_ip(hub_host):
        hosts += f"127.0.0.1\t{hub_host}\n"
    return {
        "passwd": f"root:x:0:0:root:/root:/usr/sbin/nologin\nuser:x:{SANDBOX_UID}:{SANDBOX_UID}::{HOME}:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
        "group": f"root:x:0:\nuser:x:{SANDBOX_UID}:\nnogroup:x:65534:\n",
        "hosts": hosts,
        "hostname": hostname + "\n",
        "resolv.conf": "nameserver 10.0.2.3\n" if outbound == "open" else "",
    }


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def hub_address(hub_url: str | None) -> tuple[str, int] | None:
    """(host, port) of the Hub's public URL, which the sandbox reaches through sandbox_init (None: not reachable
    that way: no URL, or a privileged port, which the sandbox user cannot listen on)."""
    if not hub_url:
        return None
    parts = urlsplit(hub_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if not parts.hostname or port < 1024:
        return None
    return parts.hostname, port


def system_binds(python_prefixes: list[str]) -> list[Bind]:
    """The read-only system part of every sandbox: /usr (bin, lib, sbin are links to it on merged-/usr systems),
    /etc's shared files, and the interpreters' prefixes when they live elsewhere."""
    binds = [Bind("/usr", "/usr")]
    for d in ("bin", "lib", "lib64", "lib32", "libx32", "sbin"):
        p = Path("/") / d
        if p.exists() and not p.is_symlink():
            binds.append(Bind(str(p), str(p)))
    binds += [Bind(f"/etc/{n}", f"/etc/{n}") for n in ETC_FILES if os.path.lexists(f"/etc/{n}")]
    for prefix in dict.fromkeys(python_prefixes):
        if not prefix.startswith("/usr/"):
            binds.append(Bind(prefix, prefix))
    return binds


def python_prefix(python: str) -> str:
    """The installation prefix of the interpreter ``python`` (a venv's python resolves to its base interpreter)."""
    real = Path(python).resolve()
    return str(real.parent.parent)


def device_binds(devices: tuple[str, ...]) -> list[Bind]:
    """The device nodes of the accelerators allocated to the Space (NVIDIA's: /dev/nvidia<N> plus the shared control
    nodes), bound only when they exist: the sandbox's /dev has nothing else of the host's."""
    if not devices:
        return []
    nodes = [f"/dev/nvidia{d}" for d in devices if d.isdigit()]
    nodes += ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset"]
    return [Bind(n, n, "dev") for n in nodes if os.path.exists(n)]


@functools.lru_cache(maxsize=1)
def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def check(uid: int | None) -> str:
    """Set a throwaway sandbox up once (as ``uid``) and answer bwrap's version. Raises: SandboxUnavailable with the
    reason, e.g. bwrap missing or user namespaces turned off."""
    bwrap = bwrap_path()
    if bwrap is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed on this host")
    try:
        import pyseccomp  # noqa: F401
    except (ImportError, OSError) as e:  # OSError: libseccomp.so.2 missing
        raise SandboxUnavailable(f"libseccomp is not usable: {e}") from e
    cmd = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--uid", str(SANDBOX_UID)]
    cmd += ["--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib"]
    cmd += ["--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev", "--", "/usr/bin/true"]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=30, preexec_fn=drop_to(uid) if uid is not None else None
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SandboxUnavailable(f"bubblewrap could not run: {e}") from e
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise SandboxUnavailable(f"bubblewrap cannot set up a sandbox here ({why}); user namespaces may be disabled")
    version = subprocess.run([bwrap, "--version"], capture_output=True, text=True).stdout.strip()
    return version or "bubblewrap"


def drop_to(uid: int) -> Any:
    """A preexec function: become ``uid`` (and the group of the same number) with no supplementary groups."""

    def setup() -> None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)

    return setup


def plan(
    *,
    space_id: str,
    hostname: str,
    app_dir: str | None,
    python: str | None,  # the host path of the environment's interpreter (bin/python of a venv)
    home: str,
    data: str | None,
    data_writable: bool,
    volumes: list[tuple[str, str]],
    devices: tuple[str, ...],
    hub_url: str | None,
    outbound: str,
    seccomp_file: str,
    app_port: int,
) -> dict[str, Any]:
    """The ``sandbox`` field of launch.json for one instance: what the supervisor binds, generates and runs."""
    prefixes = [python_prefix(python)] if python else []
    binds = system_binds(prefixes)
    if python:
        binds.append(Bind(str(Path(python).parent.parent), VENV))
    binds.append(Bind(home, HOME, "rw"))
    if app_dir:
        binds.append(Bind(app_dir, APP_DIR))
    if data:
        binds.append(Bind(data, "/data", "rw" if data_writable else "ro"))
    binds += [Bind(src, dst) for src, dst in volumes]
    binds += device_binds(devices)
    hub = hub_address(hub_url) if outbound != "none" else None
    return {
        "uid": host_uid(space_id),
        "binds": [[b.mode, b.src, b.dst] for b in binds],
        "etc": etc_files(hostname, hub[0] if hub else None, outbound),
        "hostname": hostname,
        "seccomp": seccomp_file,
        "outbound": outbound,
        "hub": list(hub) if hub else None,
        "app_port": app_port,
        "init": str(Path(__file__).with_name("sandbox_init.py")),
        "init_python": f"{VENV}/bin/python" if python else sys.executable,
        "chown": [p for p in (home, data if data_writable else None) if p],
    }


BUILD_UV = "/opt/uv/uv"  # where a sandboxed build step finds uv


def build_plan(
    *, space_id: str, hostname: str, src: str, python: str, env_dir: str, home: str, uv: str, seccomp_file: str
) -> dict[str, Any]:
    """The sandbox of a build step that runs the Space's code (``uv pip install`` of a source distribution or a local
    package runs its ``setup.py``/build backend): the same identity, system files and seccomp filter as the app, a
    throwaway writable copy of the checkout at ``APP_DIR`` (build backends write into a package's folder; see
    `local_build.copy_for_build`), the environment being made writable (at its own path: uv's relocatable
    environments do not care, and the arguments need no rewriting), a HOME of its own for uv's cache (never the shared
    one: uv hard-links installed files from it into every environment), uv itself, and outbound traffic through
    slirp4netns to reach the package index (never the host's loopback)."""
    binds = system_binds([python_prefix(python)])
    binds += [Bind(home, HOME, "rw"), Bind(src, APP_DIR, "rw"), Bind(env_dir, env_dir, "rw"), Bind(uv, BUILD_UV)]
    return {
        "uid": host_uid(space_id),
        "binds": [[b.mode, b.src, b.dst] for b in binds],
        "etc": etc_files(hostname, None, "open"),
        "hostname": hostname,
        "seccomp": seccomp_file,
        "outbound": "open",
        "hub": None,
        "app_port": None,
        "init": None,
        "chown": [home, env_dir],
    }


def describe(outbound: str) -> str:
    """How the sandbox confines an app, for the runtime's ``resources.limits``."""
    return f"sandbox: bubblewrap (uid {SANDBOX_UID}, no capabilities, seccomp, own namespaces; outbound {outbound})"
