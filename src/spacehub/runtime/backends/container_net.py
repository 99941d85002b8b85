"""The network of a docker Space: the container has a network namespace with loopback only (``--network none``), and
this small forwarder, the command its supervisor runs, connects it to the host.

``python -I -m spacehub.runtime.backends.container_net --listen 127.0.0.1:PORT --app-port 7860 --engine podman
--name NAME [--hub HOST:PORT] -- podman run --network none … IMAGE``

1. It listens on ``--listen`` in the host's network namespace (what SpaceHub's proxy and readiness probe connect to),
   then runs the engine's ``run`` command (its output goes to the run log, its exit status is ours).
2. Once the container runs, it opens the container's network namespace (``/proc/<pid>/ns/net`` of the container's
   first process, from ``<engine> inspect``). Sockets belong to the namespace of the thread that creates them, so
   each accepted connection is forwarded to ``127.0.0.1:APP_PORT`` through a socket made inside the container's
   namespace (``setns`` in that thread only): the app listens on its loopback as on HF (0.0.0.0 or 127.0.0.1).
3. With ``--hub``, it also listens on the same port on the container's loopback and forwards to the Hub on the host,
   so ``HF_ENDPOINT=http://127.0.0.1:PORT`` works in the app. Nothing else of the host is reachable: not its other
   listeners, not other Spaces, not other containers, not the Internet.

First of all it returns to the host's mount namespace when the supervisor made a private one (for /data, which a
container gets with ``-v`` instead): the engine's mounts (the container's root, its /dev/shm) must be where the engine
itself looks for them, or ``<engine> rm`` from SpaceHub finds them busy.

Standard library only (it starts in ~30 ms); it runs as root, as the supervisor does (setns needs CAP_SYS_ADMIN).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence

from spacehub.runtime.sandbox_init import join

CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


@contextlib.contextmanager
def in_netns(ns_fd: int, home_fd: int) -> Iterator[None]:
    """The calling thread is in the namespace ``ns_fd`` for the block, then back in ``home_fd``."""
    if _libc.setns(ns_fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")
    try:
        yield
    finally:
        if _libc.setns(home_fd, CLONE_NEWNET) != 0:  # never leave a thread in the wrong namespace
            os._exit(70)


def connect_in(ns_fd: int, home_fd: int, host: str, port: int) -> socket.socket:
    with in_netns(ns_fd, home_fd):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(10)
        s.connect((host, port))
        s.settimeout(None)
    except OSError:
        s.close()
        raise
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def relay(client: socket.socket, ns_fd: int, home_fd: int, host: str, port: int) -> None:
    try:
        upstream = connect_in(ns_fd, home_fd, host, port)
    except OSError:
        client.close()  # the app does not listen yet: the client sees the connection closed, as with no listener
        return
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    join(client, upstream)  # the sandbox's relay: both directions, half-closes, then both sockets closed


def serve(listener: socket.socket, ns_fd: int, home_fd: int, host: str, port: int) -> None:
    """Accept on ``listener`` forever; each connection is relayed to ``host:port`` in the namespace ``ns_fd``."""
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=relay, args=(client, ns_fd, home_fd, host, port), daemon=True).start()


def listen(host: str, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(256)
    return s


def container_pid(engine: Sequence[str], name: str, proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    """The pid of the container's first process once it runs; None when the engine exited first or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        done = subprocess.run(
            [*engine, "inspect", "--format", "{{.State.Pid}}", name], capture_output=True, text=True, check=False
        )
        pid = done.stdout.strip()
        if done.returncode == 0 and pid.isdigit() and int(pid) > 0:
            return int(pid)
        time.sleep(0.05)
    return None


def host_mount_namespace() -> None:
    """Join pid 1's mount namespace when ours is another (single-threaded: before any thread starts)."""
    try:
        if os.stat("/proc/self/ns/mnt").st_ino == os.stat("/proc/1/ns/mnt").st_ino:
            return
        fd = os.open("/proc/1/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if _libc.setns(fd, CLONE_NEWNS) != 0:
            err = ctypes.get_errno()
            print(f"container_net: staying in this mount namespace: {os.strerror(err)}", file=sys.stderr, flush=True)
    finally:
        os.close(fd)


def hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="container_net")
    p.add_argument("--listen", required=True, help="HOST:PORT on the host for the app's traffic")
    p.add_argument("--app-port", type=int, required=True, help="the port the app listens on in the container")
    p.add_argument("--engine", required=True, help="the engine's command (with its global flags), space-separated")
    p.add_argument("--name", required=True, help="the container's name")
    p.add_argument("--hub", help="HOST:PORT of the Hub on the host, offered at 127.0.0.1:PORT in the container")
    p.add_argument("--start-timeout", type=float, default=600.0)
    p.add_argument("command", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    engine = a.engine.split()
    host_mount_namespace()
    home_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        listener = listen(*hostport(a.listen))
    except OSError as e:
        print(f"container_net: cannot listen on {a.listen}: {e}", file=sys.stderr, flush=True)
        return 125
    listener.set_inheritable(False)
    proc = subprocess.Popen(command)

    def forward(signum: int, frame: object) -> None:
        with contextlib.suppress(OSError):
            proc.send_signal(signal.SIGTERM)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    pid = container_pid(engine, a.name, proc, a.start_timeout)
    if pid is not None:
        try:
            ns_fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            print(f"container_net: the container's network namespace is gone: {e}", file=sys.stderr, flush=True)
        else:
            args = (listener, ns_fd, home_fd, "127.0.0.1", a.app_port)
            threading.Thread(target=serve, args=args, daemon=True).start()
            if a.hub:
                hub_host, hub_port = hostport(a.hub)
                try:
                    with in_netns(ns_fd, home_fd):
                        inner = listen("127.0.0.1", hub_port)
                except OSError as e:
                    print(f"container_net: no Hub in the container ({e})", file=sys.stderr, flush=True)
                else:
                    args = (inner, home_fd, home_fd, hub_host, hub_port)
                    threading.Thread(target=serve, args=args, daemon=True).start()
    code = proc.wait()
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main())
