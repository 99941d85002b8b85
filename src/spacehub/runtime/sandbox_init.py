"""The first process in a Space's sandbox: it starts the app and carries the only network paths the sandbox has.

It runs inside the sandbox (its own user, PID, mount and network namespaces: see sandbox.py) as the Space's user,
``python -I -S /run/spacehub/init.py '<json>' -- <app command…>``, with the standard library only (it is copied
into the sandbox, where SpaceHub's own packages are not). The JSON says:

- ``listen_fd``: a listening TCP socket that the supervisor made in the *host's* network namespace on
  127.0.0.1:PORT, which is where SpaceHub's proxy connects. A socket keeps the namespace it was made in, so
  accepting on it here yields connections from the host, which are carried to the app at 127.0.0.1:``app_port``
  *in the sandbox's own* network namespace. The app itself can neither listen on the host nor reach the host's
  loopback: this is the one way in.
- ``hub_fd`` and ``hub_port``: the way out to the Hub API. This process listens on 127.0.0.1:``hub_port`` inside
  the sandbox (the Hub's public host name resolves to 127.0.0.1 here), and hands each connection it accepts to the
  supervisor over ``hub_fd`` (a Unix socket, SCM_RIGHTS); the supervisor, outside, connects it to the Hub.

The app runs as a child in a process group of its own. SIGTERM, SIGINT and SIGHUP are passed on to that group (this
process must outlive the app: when it ends, the sandbox's PID 1 ends and the kernel kills whatever is left). When the
app ends, this process ends the same way: with its exit code, or killed by the same signal.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading

CHUNK = 1 << 16


def pump(src: socket.socket, dst: socket.socket, done: threading.Semaphore) -> None:
    """Copy ``src`` to ``dst`` until ``src`` ends, then end ``dst``'s writing side (half-close, as TCP allows).
    Uses splice(2) through a pipe where the interpreter has it: the bytes never enter Python."""
    try:
        if hasattr(os, "splice"):
            r, w = os.pipe()
            try:
                while n := os.splice(src.fileno(), w, CHUNK):
                    while n:
                        n -= os.splice(r, dst.fileno(), n)
            finally:
                os.close(r)
                os.close(w)
        else:  # pragma: no cover - Pythons before 3.10
            while data := src.recv(CHUNK):
                dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
        if not done.acquire(blocking=False):  # the other direction has ended too: close both
            src.close()
            dst.close()


def join(a: socket.socket, b: socket.socket) -> None:
    """Carry bytes both ways between two connected sockets, each way in a thread of its own."""
    done = threading.Semaphore(1)
    for src, dst in ((a, b), (b, a)):
        threading.Thread(target=pump, args=(src, dst, done), daemon=True).start()


def serve_inbound(listener: socket.socket, app_port: int) -> None:
    """Host connections → the app. A connection made before the app listens is closed at once (the proxy's
    readiness probe then tries again)."""
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            continue
        try:
            app = socket.create_connection(("127.0.0.1", app_port))
        except OSError:
            conn.close()
            continue
        for s in (conn, app):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        join(conn, app)


def serve_hub(hub_port: int, channel: socket.socket) -> None:
    """Connections to the Hub → the supervisor, which connects them to the Hub outside (one SCM_RIGHTS message each)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", hub_port))
    listener.listen(128)
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            continue
        with contextlib.suppress(OSError):
            socket.send_fds(channel, [b"c"], [conn.fileno()])
        conn.close()


def main(argv: list[str]) -> int:
    config = json.loads(argv[1])
    command = argv[argv.index("--") + 1 :]
    if config.get("listen_fd") is not None:
        listener = socket.socket(fileno=config["listen_fd"])
        threading.Thread(target=serve_inbound, args=(listener, config["app_port"]), daemon=True).start()
    if config.get("hub_fd") is not None:
        channel = socket.socket(fileno=config["hub_fd"])
        threading.Thread(target=serve_hub, args=(config["hub_port"], channel), daemon=True).start()
    app = subprocess.Popen(command, process_group=0, close_fds=True)

    def forward(signum: int, frame: object) -> None:
        with contextlib.suppress(OSError):
            os.killpg(app.pid, signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    code = app.wait()
    with contextlib.suppress(OSError):
        os.killpg(app.pid, signal.SIGKILL)  # what the app left behind in its group goes with it
    if code < 0:
        if -code not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
