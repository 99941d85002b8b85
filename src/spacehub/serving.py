"""How ``spacehub serve`` runs: one process, or a controller with HTTP workers (``server.workers``).

One process (the default) serves HTTP and runs the runtime. With ``server.workers = N`` above 1 the command starts
the controller (`wiring.build_controller`: the runtime and its channel on a Unix socket) and, once it holds the
runtime lease and runs, binds the public port and starts N worker processes (``spacehub serve --worker-fd FD``) that
share that socket: the kernel hands each new connection to one of them. The controller restarts a worker that dies,
stops them all first when it stops, and a worker stops when the controller is gone (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from spacehub.config import Settings
from spacehub.limits import HeadLimitedHttpToolsProtocol, RequestLimits

log = logging.getLogger("spacehub.workers")
gc_log = logging.getLogger("spacehub.gc")
RESTART_DELAY = 1.0  # seconds before a worker that died is started again
STOP_GRACE = 20.0  # seconds workers get to finish their requests when the server stops
CONTROLLER_PID = "SPACEHUB_CONTROLLER_PID"  # a worker's environment: the process that started it


HTTP_LOOP = "asyncio"
"""The event loop of the public HTTP side: the standard library's, not uvloop (uvicorn's choice when it is
installed). With its loop kept busy by 64 connections, uvloop left a few requests in a thousand unread for
100-800 ms while it answered the others (p99.9 460 ms for a trivial app spending 250 us a request; p99 550-960 ms
for the API reads in one process on PostgreSQL); asyncio's loop serves the same load at the same rate with p99.9
27 ms (docs/performance.md, "The one-process tail: uvloop"). The proxy's throughput is the same on both."""


def http_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for the public HTTP side (in one process or in each worker)."""
    return {
        "loop": HTTP_LOOP,
        "log_level": "info",
        "access_log": settings.server.access_log,
        "proxy_headers": False,
        "timeout_keep_alive": 30,
        "date_header": False,  # DateHeader sets an exact one
        "http": HeadLimitedHttpToolsProtocol,  # httptools with a bound on request heads (limits.py)
    }


MALLOC_ARENAS = 2  # glibc's malloc arenas in a SpaceHub process (its default: 8 per core)


def fewer_malloc_arenas() -> bool:
    """Cap glibc's malloc arenas (``mallopt(M_ARENA_MAX)``, what ``MALLOC_ARENA_MAX`` sets) before any thread starts.
    Each of the ~40 request threads may otherwise get an arena of its own, and memory freed in one is not given
    back while another holds a live block of it: measured over 1,500 creates at 10,000 Spaces, the server's RSS grew
    65 MB with the default and 44 MB with 2 arenas (docs/performance.md). Python's own allocator serves most objects
    from its arenas anyway; the GIL leaves few threads in malloc at once. False where this is not glibc."""
    try:
        return bool(ctypes.CDLL(None).mallopt(-8, MALLOC_ARENAS))  # -8: M_ARENA_MAX
    except (AttributeError, OSError):
        return False


def serve(settings: Settings, worker_fd: int | None = None) -> None:
    """Run the server of ``settings`` until it is stopped (SIGTERM, SIGINT)."""
    from spacehub.proxy.dispatch import listen_address
    from spacehub.wiring import DateHeader, build_controller, build_server, build_worker, control_socket

    fewer_malloc_arenas()
    if worker_fd is not None:
        _die_with_parent()
        app = Settled(DateHeader(RequestLimits(build_worker(settings))))
        uvicorn.Server(uvicorn.Config(app, **http_options(settings))).run(sockets=[listening_socket(worker_fd)])
        return
    if settings.server.workers <= 1:
        bind_host, bind_port = listen_address(settings)
        uvicorn.run(Settled(DateHeader(RequestLimits(build_server(settings)))), host=bind_host, port=bind_port,
                    **http_options(settings))  # fmt: skip
        return
    path = control_socket(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    pool = WorkerPool(settings)
    # Its stop does not wait for the workers' route polls (FEED_WAIT) to answer: the workers stop right after.
    uvicorn.run(Settled(build_controller(settings, pool.lifespan)), uds=str(path), log_level="info", access_log=False,
                timeout_graceful_shutdown=1)  # fmt: skip


class Settled:
    """ASGI wrapper: what the app built to run (modules, routes, the runtime's records, the host index) is set aside
    from the garbage collector (``gc.freeze``), as a pre-forking server does, once it has started and again whenever
    it grew. Python's full collections otherwise walk all of it again and again while requests allocate: under 64
    connections they were most of the slowest answers (p99 280 -> 100 ms for the runtime read with three workers at
    20 Spaces; at 10,000 Spaces each full collection over what grew after start-up took 78-97 ms, every 6-14 s
    under load). What is frozen is still freed by reference counting when dropped; only cycles among it are not
    collected, so `GcKeeper` collects everything again once the frozen set grew by a quarter."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.keeper = GcKeeper()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            return await self.app(scope, receive, send)

        async def started(message: Any) -> None:
            if message["type"] == "lifespan.startup.complete":
                self.keeper.start(asyncio.get_running_loop())
            elif message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                self.keeper.stop()
            await send(message)

        await self.app(scope, receive, started)


class GcKeeper:
    """Keeps Python's full collections short in a long-lived server whose heap grows (a Space's run, its entry in
    the host index, kept answers: ~100 objects per Space, a million at 10,000 Spaces).

    - At start: collect, then freeze what is left (it lives as long as the process).
    - A full collection that took longer than ``slow`` seconds (`gc.callbacks`) means much long-lived data was
      walked: what survived it is frozen too, in the event loop right after (so the next ones walk only what is new).
    - A cycle frozen while alive and dropped later is not collected: when the frozen set has grown by ``regrow``
      since the last thorough collection, everything is unfrozen, collected and frozen again (one long pause, at
      most a few times over a growth from 1,000 to 10,000 Spaces; never at rest, where nothing grows).

    The standard collector is left on for what is young: cycles made by requests are found as before."""

    def __init__(self, slow: float = 0.02, regrow: float = 1.25) -> None:
        self.slow, self.regrow = slow, regrow
        self.loop: asyncio.AbstractEventLoop | None = None
        self.base = 0  # the frozen count after the last thorough collection
        self.refreezes = self.thorough = 0
        self._began = 0.0
        self._pending = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.collect_all()
        gc.callbacks.append(self._on_gc)

    def stop(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._on_gc)

    def collect_all(self) -> None:
        self._pending = True  # its own collection is slow: not a reason to settle again
        began = time.perf_counter()
        try:
            gc.unfreeze()
            freed = gc.collect()
            gc.freeze()
        finally:
            self._pending = False
        self.base = gc.get_freeze_count()
        self.thorough += 1
        gc_log.info("collected every object in %.0f ms (%d freed, %d kept and frozen)",
                 (time.perf_counter() - began) * 1000, freed, self.base)  # fmt: skip

    def settle(self) -> None:
        """After a slow full collection: freeze its survivors, or collect everything when the frozen set grew."""
        gc.freeze()
        self.refreezes += 1
        if gc.get_freeze_count() > self.base * self.regrow:
            self.collect_all()
        self._pending = False

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        # Runs inside the collector, in whatever thread allocated: it only times and hands over to the loop (a
        # collection cannot start another from its callback).
        if info["generation"] != 2:
            return
        if phase == "start":
            self._began = time.perf_counter()
            return
        loop = self.loop
        if time.perf_counter() - self._began < self.slow or self._pending or loop is None or loop.is_closed():
            return
        self._pending = True
        try:
            loop.call_soon_threadsafe(self.settle)
        except RuntimeError:  # the loop closed in between
            self._pending = False


class WorkerPool:
    """The HTTP worker processes of one controller, on one listening socket."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.procs: list[subprocess.Popen[bytes] | None] = []
        self.sock: socket.socket | None = None
        self._stopping = False

    def command(self, fd: int) -> list[str]:
        s = self.settings
        return [sys.executable, "-m", "spacehub", "serve", "--worker-fd", str(fd), "--data-dir", str(s.data_dir),
                "--host", s.server.host, "--port", str(s.server.port)]  # fmt: skip

    def bind(self) -> socket.socket:
        host, port = self.settings.server.host, self.settings.server.port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        sock.listen(2048)
        sock.set_inheritable(True)
        return sock

    def spawn(self, index: int) -> subprocess.Popen[bytes]:
        assert self.sock is not None
        fd = self.sock.fileno()
        env = {**os.environ, CONTROLLER_PID: str(os.getpid())}
        proc = subprocess.Popen(self.command(fd), pass_fds=(fd,), env=env)
        log.info("HTTP worker %d started (pid %d)", index, proc.pid)
        return proc

    @contextlib.asynccontextmanager
    async def lifespan(self, _: Any) -> AsyncIterator[None]:
        self.sock = self.bind()
        self.procs = [self.spawn(i) for i in range(self.settings.server.workers)]
        print(f"SpaceHub on http://{self.settings.server.host}:{self.settings.server.port} with "
              f"{len(self.procs)} HTTP workers", flush=True)  # fmt: skip
        watcher = asyncio.ensure_future(self._watch())
        try:
            yield
        finally:
            self._stopping = True
            watcher.cancel()
            await asyncio.to_thread(self.stop)

    async def _watch(self) -> None:
        """Start again a worker that died (after `RESTART_DELAY`)."""
        while not self._stopping:
            await asyncio.sleep(RESTART_DELAY)
            for i, proc in enumerate(self.procs):
                if proc is not None and proc.poll() is not None and not self._stopping:
                    log.warning("HTTP worker %d (pid %d) exited with %s: starting it again", i, proc.pid,
                                proc.returncode)  # fmt: skip
                    self.procs[i] = self.spawn(i)

    def stop(self) -> None:
        """SIGTERM to every worker (uvicorn finishes the requests under way), SIGKILL after `STOP_GRACE`."""
        live = [p for p in self.procs if p is not None and p.poll() is None]
        for p in live:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for p in live:
            try:
                p.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self.sock is not None:
            self.sock.close()


def listening_socket(fd: int) -> socket.socket:
    """The listening socket a worker inherited, as what it is (TCP). Not uvicorn's ``fd=``: that wraps any
    descriptor as a Unix socket, so the event loop never set TCP_NODELAY on the connections it accepted, and each
    answer, written in two parts (head, then body), waited for the client's delayed ACK: 40-44 ms a response however
    idle the server, at most ~1,450 req/s over 64 connections (docs/performance.md, "Nagle")."""
    return socket.socket(fileno=fd)


def _die_with_parent() -> None:
    """Linux: this worker gets SIGTERM when the controller that started it dies (a SIGKILL of the controller
    leaves no worker serving without a runtime)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    parent = os.environ.get(CONTROLLER_PID, "")
    if parent.isdigit() and os.getppid() != int(parent):  # it died before the call
        os.kill(os.getpid(), signal.SIGTERM)
