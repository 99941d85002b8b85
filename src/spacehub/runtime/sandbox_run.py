"""The supervisor's side of the sandbox: stage the binds, start bwrap, attach outbound networking, serve the Hub.

Standard library only (the supervisor imports it). The plan comes from sandbox.py through ``launch.json``'s
``sandbox`` field; see there for what the sandbox holds and why.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from spacehub.runtime.sandbox_init import join

# Set-ups tried per start: bwrap 0.8 fails now and then to bring up the loopback of a network namespace it makes
# itself ("Failed RTM_NEWADDR"; when SpaceHub is not root: as root the supervisor makes the namespace).
ATTEMPTS = 3
STAGE = Path("/run/spacehub-sandbox")  # an empty folder made once on the host; a tmpfs in each supervisor's namespace
CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG = 1
NS_GET_USERNS = 0xB701  # ioctl on a namespace fd: the user namespace that owns it
INIT_PATH = "/run/spacehub/init.py"
BIND_FLAG = {"ro": "--ro-bind", "rw": "--bind", "dev": "--dev-bind"}


class SandboxError(Exception):
    """The sandbox could not be set up for this instance: the app is not started."""


_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise SandboxError(f"{what}: {os.strerror(err)}")


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, 0)  # not inheritable; passed with pass_fds
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


class Sandbox:
    """One instance's sandbox: ``spawn`` starts bwrap with the app inside and returns its Popen."""

    def __init__(self, plan: dict[str, Any], port: int) -> None:
        self.plan, self.port = plan, port
        self.uid: int | None = plan.get("uid")
        self.fds: list[int] = []
        self.hub_channel: socket.socket | None = None
        self.slirp: subprocess.Popen[bytes] | None = None

    # ---- set-up ------------------------------------------------------------------------------------------------
    def prepare(self) -> list[list[str]]:
        """Own the writable folders, and when we are root, stage every bind source where the sandbox user can reach
        it (in this process's private mount namespace). Answers the binds with the sources bwrap should use."""
        binds = [list(b) for b in self.plan["binds"]]
        if self.uid is None:
            return binds
        for path in self.plan.get("chown", []):
            _own(Path(path), self.uid)
        _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        _check(_libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
        STAGE.mkdir(mode=0o755, parents=True, exist_ok=True)
        _check(_libc.mount(b"tmpfs", str(STAGE).encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755"), "tmpfs")
        for i, bind in enumerate(binds):
            staged = STAGE / str(i)
            if os.path.isdir(bind[1]):
                staged.mkdir()
            else:
                staged.touch()
            _check(_libc.mount(bind[1].encode(), str(staged).encode(), None, MS_BIND | MS_REC, None), f"bind {bind[1]}")
            bind[1] = str(staged)
        return binds

    def listener(self) -> socket.socket:
        """The host's side of the way in: 127.0.0.1:PORT in the host's network namespace, accepted on in the sandbox."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(1024)
        return s

    def command(self, binds: list[list[str]], app_command: list[str], cwd: str) -> tuple[list[str], list[int]]:
        """bwrap's command line (no secret: the app's environment passes through bwrap's own) and the fds to pass."""
        plan = self.plan
        argv = ["bwrap", "--unshare-user", "--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
        if self.uid is None:  # as root, preexec() makes the network namespace (see there)
            argv.append("--unshare-net")
        argv += ["--disable-userns", "--die-with-parent", "--new-session"]
        argv += ["--cap-drop", "ALL", "--uid", "1000", "--gid", "1000", "--hostname", plan["hostname"]]
        argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--dir", "/run/spacehub"]
        for mode, src, dst in binds:  # after the tmpfs: a bind below /tmp would be hidden by it otherwise
            argv += [BIND_FLAG[mode], src, dst]
        for d in ("bin", "lib", "lib64", "sbin"):
            if os.path.islink(f"/{d}"):
                argv += ["--symlink", os.readlink(f"/{d}"), f"/{d}"]
        pass_fds: list[int] = []
        for name, text in plan["etc"].items():
            fd = _memfd(name, text.encode())
            pass_fds.append(fd)
            argv += ["--ro-bind-data", str(fd), f"/etc/{name}"]
        seccomp_fd = os.open(plan["seccomp"], os.O_RDONLY | os.O_CLOEXEC)
        pass_fds.append(seccomp_fd)
        argv += ["--seccomp", str(seccomp_fd), "--chdir", cwd]
        self._keep: list[socket.socket] = []
        config: dict[str, Any] = {}
        if plan.get("init"):  # an app: the init relays the proxy's connections in and the app's Hub calls out
            init_fd = os.open(plan["init"], os.O_RDONLY | os.O_CLOEXEC)
            pass_fds.append(init_fd)
            argv += ["--ro-bind-data", str(init_fd), INIT_PATH]
            # The root itself (bwrap's tmpfs: /, /etc, /run…) read-only too, once every mount point is made: the
            # app writes only its HOME, /tmp and /data (tests/e2e/test_hostile.py found / and /etc writable).
            argv += ["--remount-ro", "/"]
            listen = self.listener()
            config |= {"listen_fd": listen.fileno(), "app_port": plan["app_port"]}
            pass_fds.append(listen.fileno())
            self._keep.append(listen)
            if plan.get("hub"):
                ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                self.hub_channel = ours
                self._keep.append(theirs)
                pass_fds.append(theirs.fileno())
                config |= {"hub_fd": theirs.fileno(), "hub_port": plan["hub"][1]}
        if plan["outbound"] == "open":
            self.info_r, info_w = os.pipe()
            block_r, self.block_w = os.pipe()
            pass_fds += [info_w, block_r]
            self._pipe_ends = [info_w, block_r]
            argv += ["--info-fd", str(info_w), "--block-fd", str(block_r)]
        # an app runs under the init; a build step has bwrap as its init
        init = [plan["init_python"], "-I", "-S", INIT_PATH, json.dumps(config), "--"] if plan.get("init") else []
        argv += ["--", *init, *app_command]
        self.fds = pass_fds
        return argv, pass_fds

    def preexec(self) -> None:
        """In the child before exec: as root, give the sandbox a network namespace of its own with its loopback up
        (bwrap 0.8 sets its own up over netlink, which fails now and then with "Failed RTM_NEWADDR"; ours also
        belongs to the host's user namespace, so nothing in the sandbox can reconfigure it); become the Space's host
        uid, then die with the supervisor (set after the uid change, which clears it)."""
        if self.uid is not None:
            _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
            _loopback_up()
            os.setgroups([])
            os.setresgid(self.uid, self.uid, self.uid)
            os.setresuid(self.uid, self.uid, self.uid)
        _libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)

    def started(self) -> None:
        """After bwrap started: close our copies of its fds, attach outbound networking, start serving the Hub."""
        for fd in self.fds:
            if fd not in [s.fileno() for s in self._keep]:
                with contextlib.suppress(OSError):
                    os.close(fd)
        for s in self._keep:
            s.close()
        if self.plan["outbound"] == "open":
            self._attach_slirp()
        if self.hub_channel is not None:
            threading.Thread(target=self._serve_hub, daemon=True).start()

    def _attach_slirp(self) -> None:
        """Give the sandbox's network namespace a way out: slirp4netns (user-mode NAT; the host's loopback is not
        reachable through it). bwrap waits on its block fd until this is done, so the app never starts without it."""
        try:
            info = b""
            while b"}" not in info:
                ready, _, _ = select.select([self.info_r], [], [], 10)
                chunk = os.read(self.info_r, 4096) if ready else b""
                if not chunk:
                    raise SandboxError("bubblewrap did not report its sandbox")
                info += chunk
            child = json.loads(info[: info.index(b"}") + 1])["child-pid"]
            slirp = shutil.which("slirp4netns")
            if slirp is None:
                raise SandboxError("runtime.outbound = open needs slirp4netns, which is not installed")
            # The sandbox's netns belongs to the user namespace bwrap made (the app sits in a nested one, made by
            # --disable-userns): join that one. As root, slirp4netns runs as root, as podman runs it: only root may
            # open /dev/net/tun on many hosts; it then drops its capabilities in a sandbox of its own.
            netns = os.open(f"/proc/{child}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            userns = fcntl.ioctl(netns, NS_GET_USERNS)
            ready_r, ready_w = os.pipe()
            cmd = [slirp, "--configure", "--mtu=65520", "--disable-host-loopback", "--ready-fd", str(ready_w)]
            cmd += ["--enable-sandbox", "--enable-seccomp", "--netns-type=path"]
            if self.uid is None:
                cmd.append(f"--userns-path=/proc/self/fd/{userns}")
            cmd += [f"/proc/self/fd/{netns}", "tap0"]
            self.slirp = subprocess.Popen(
                cmd, pass_fds=(ready_w, netns, userns), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, preexec_fn=lambda: _libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0),
            )  # fmt: skip
            os.close(netns)
            os.close(userns)
            os.close(ready_w)
            ready, _, _ = select.select([ready_r], [], [], 10)
            ok = bool(ready) and os.read(ready_r, 1) == b"1"
            os.close(ready_r)
            if not ok:
                raise SandboxError("slirp4netns could not attach the sandbox's network")
        finally:
            os.write(self.block_w, b"1")
            os.close(self.block_w)
            os.close(self.info_r)

    def _serve_hub(self) -> None:
        """Each connection the app opens to the Hub arrives here as an fd; connect it to the Hub from outside."""
        assert self.hub_channel is not None
        host, port = self.plan["hub"]
        while True:
            try:
                _, fds, _, _ = socket.recv_fds(self.hub_channel, 16, 1)
            except OSError:
                return
            if not fds:
                return  # the sandbox is gone
            inner = socket.socket(fileno=fds[0])
            try:
                outer = socket.create_connection((host, port), timeout=10)
                outer.settimeout(None)
            except OSError:
                inner.close()
                continue
            join(inner, outer)

    def close(self) -> None:
        if self.slirp is not None:
            with contextlib.suppress(OSError):
                self.slirp.kill()
            self.slirp.wait()


def _loopback_up() -> None:
    """Bring ``lo`` up in this network namespace: the kernel then gives it 127.0.0.1/8 and ::1 by itself."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def _own(path: Path, uid: int) -> None:
    """Make ``path`` (made if missing) and what is in it belong to ``uid``: once, when its owner is someone else."""
    path.mkdir(parents=True, exist_ok=True)
    if path.stat().st_uid != uid:
        chown_tree(path, uid)


def chown_tree(path: Path, uid: int) -> None:
    """``path`` and everything in it (links themselves, not what they point to) to ``uid``:``uid``."""
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            with contextlib.suppress(OSError):
                os.lchown(os.path.join(root, name), uid, uid)
    os.lchown(path, uid, uid)


def run(plan: dict[str, Any], command: list[str], cwd: str) -> int:
    """Run ``command`` to completion in a sandbox made from ``plan`` (one without an init: a build step), with this
    process's stdout and stderr, and answer its exit status. Call it in a process of its own (`main`): `prepare`
    changes the caller's mount namespace."""
    sandbox = Sandbox(plan, 0)
    binds = sandbox.prepare()
    for attempt in range(ATTEMPTS):
        argv, fds = sandbox.command(binds, command, cwd)
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, pass_fds=fds, preexec_fn=sandbox.preexec)
        try:
            sandbox.started()
        except Exception as e:
            with contextlib.suppress(OSError):
                proc.kill()
            proc.wait()
            if attempt + 1 == ATTEMPTS:
                raise SandboxError(str(e)) from e
            continue
        break
    signal.signal(signal.SIGTERM, lambda *_: proc.kill())
    try:
        return proc.wait()
    finally:
        sandbox.close()


def main(args: list[str]) -> int:
    """``python -m spacehub.runtime.sandbox_run PLAN.json CWD -- COMMAND...``: `run` for a build step."""
    if len(args) < 4 or args[2] != "--":
        print("usage: sandbox_run PLAN.json CWD -- COMMAND...", file=sys.stderr)
        return 2
    plan = json.loads(Path(args[0]).read_text())
    try:
        return run(plan, args[3:], args[1])
    except (SandboxError, OSError) as e:
        print(f"The sandbox could not be set up: {e}", file=sys.stderr, flush=True)
        return 126


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
