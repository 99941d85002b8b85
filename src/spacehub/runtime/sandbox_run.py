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
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any

from spacehub.runtime.sandbox_init import join

STAGE = Path("/run/spacehub-sandbox")  # an empty folder made once on the host; a tmpfs in each supervisor's namespace
CLONE_NEWNS = 0x00020000
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
        argv = ["bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session"]
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
        init_fd = os.open(plan["init"], os.O_RDONLY | os.O_CLOEXEC)
        seccomp_fd = os.open(plan["seccomp"], os.O_RDONLY | os.O_CLOEXEC)
        pass_fds += [init_fd, seccomp_fd]
        argv += ["--ro-bind-data", str(init_fd), INIT_PATH, "--seccomp", str(seccomp_fd), "--chdir", cwd]
        # The root itself (bwrap's tmpfs: /, /etc, /run…) read-only too, once every mount point is made: the app
        # writes only its HOME, /tmp and /data (tests/e2e/test_hostile.py found / and /etc writable).
        argv += ["--remount-ro", "/"]
        listen = self.listener()
        config: dict[str, Any] = {"listen_fd": listen.fileno(), "app_port": plan["app_port"]}
        pass_fds.append(listen.fileno())
        self._keep = [listen]
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
        argv += ["--", plan["init_python"], "-I", "-S", INIT_PATH, json.dumps(config), "--", *app_command]
        self.fds = pass_fds
        return argv, pass_fds

    def preexec(self) -> None:
        """In the child before exec: become the Space's host uid, then die with the supervisor (set after the uid
        change, which clears it)."""
        if self.uid is not None:
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
                stderr=subprocess.DEVNULL,
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


def _own(path: Path, uid: int) -> None:
    """Make ``path`` (made if missing) and what is in it belong to ``uid``: once, when its owner is someone else."""
    path.mkdir(parents=True, exist_ok=True)
    if path.stat().st_uid == uid:
        return
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            with contextlib.suppress(OSError):
                os.lchown(os.path.join(root, name), uid, uid)
    os.chown(path, uid, uid)
