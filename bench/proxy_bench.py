"""Space proxy benchmark: requests/s of a tiny ASGI app direct, through SpaceHub's proxy, and through nginx.

    .venv/bin/python bench/proxy_bench.py [--duration 5] [--rounds 3] [--connections 32] [--app-server auto|h11]
                                          [--json PATH]

In one run, on loopback only, with bounded runs:

- **direct**: a raw ASGI "hello world" (the probe's "raw ASGI" app) on uvicorn, 1 worker, no access log; by default
  with httptools + uvloop (the fastest app, so the hardest case for any proxy), with ``--app-server h11`` on h11 +
  asyncio (the probes' setting, and what a Gradio Space runs).
- **spacehub**: the same app behind the stack ``spacehub serve`` runs: ``space_server(build_app(settings),
  settings, StaticRouteTable)`` (``HostDispatcher`` + ``SpaceProxy``) on uvicorn, 1 worker, access log off, requests
  sent with ``Host: bench.localhost``.
- **nginx** (when installed): ``proxy_pass`` to the app with an upstream ``keepalive 64`` pool, 1 worker, the
  probe's configuration (``proxy_http_version 1.1``, ``proxy_buffering off``, no access log).
- **spacehub-nginx** (when installed): SpaceHub's nginx data plane (``spacehub.proxy.nginx``), the config SpaceHub
  writes for a Space host, so the figure is of what SpaceHub ships rather than of a hand-written config.

Load comes from ``wrk`` (Debian's; ``scripts/install-system-deps`` installs it); without it a small asyncio load
generator is used and the output says so (its figures are lower: it is Python too). Targets are measured in turns,
``--rounds`` times, and the median is kept: the machine is shared and noisy, so single runs are not comparable.
Besides requests/s, the CPU time each server process spent per request is read from ``/proc``; it depends much less
on what else runs on the machine. The script fails only when requests fail, never because something is slow.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HOST = "bench.localhost"
BODY = b"Hello, world!"


# ---- the processes under test --------------------------------------------------------------------------------
async def hello_app(scope, receive, send):  # type: ignore[no-untyped-def]
    """The probe's raw ASGI app."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


def serve_app(port: int, server: str) -> None:
    """``server``: ``auto`` (httptools + uvloop when installed) or ``h11`` (h11 + asyncio: the probes' setting, and
    what a Gradio Space gets, since gradio depends on plain ``uvicorn`` without the ``standard`` extras)."""
    import uvicorn

    options = {"http": "h11", "loop": "asyncio"} if server == "h11" else {}
    uvicorn.run(hello_app, host="127.0.0.1", port=port, access_log=False, log_level="warning", **options)


def serve_spacehub(port: int, upstream: int, data_dir: str, nginx_port: int | None = None) -> None:
    """The stack ``spacehub serve`` runs (``space_server``), on uvicorn and its event loop, 1 worker, access log off as
    for the others.

    With ``nginx_port``: ``proxy.mode = "nginx"``, nginx on ``nginx_port`` and SpaceHub behind it on ``port``.
    """
    import uvicorn

    from spacehub.config import Settings
    from spacehub.proxy import RouteTarget, StaticRouteTable, listen_address, space_server
    from spacehub.serving import HTTP_LOOP
    from spacehub.wiring import build_app

    settings = Settings(data_dir=Path(data_dir))
    settings.server.port = port
    if nginx_port is not None:
        settings.server.port = nginx_port
        settings.proxy.mode = "nginx"
        settings.proxy.nginx_backend_port = port
    table = StaticRouteTable()
    table.set(HOST, RouteTarget.to_upstream("bench/hello", "127.0.0.1", upstream))
    app = space_server(build_app(settings), settings, table)
    if app.data_plane is not None:
        app.data_plane.set_routes(table.public_upstreams())
    host, port = listen_address(settings)
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning", timeout_keep_alive=30, loop=HTTP_LOOP)


NGINX_CONF = """worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body; proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi; uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
    upstream app {{ server 127.0.0.1:{upstream}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_buffering off;
        }}
    }}
}}
"""


# ---- measuring ---------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of ``pids`` and their children (nginx's worker), from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15]) / tick  # utime stime cutime cstime
    return total


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@dataclass
class Load:
    requests: int
    seconds: float
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def run_wrk(port: int, host: str | None, duration: float, connections: int) -> Load:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s"]  # whole seconds only
    if host:
        cmd += ["-H", f"Host: {host}"]
    out = subprocess.run([*cmd, f"http://127.0.0.1:{port}/"], capture_output=True, text=True, check=True).stdout
    m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    if not m:
        raise RuntimeError(f"unexpected wrk output: {out}")
    seconds = float(m.group(2)) / (1000 if m.group(3) == "ms" else 1)
    errors = 0
    if e := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(e.group(1))
    if e := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(x) for x in e.groups())
    return Load(int(m.group(1)), seconds, errors)


async def _py_load(port: int, host: str | None, duration: float, connections: int) -> Load:
    """Keep-alive GETs on ``connections`` sockets for ``duration`` seconds; counts 200 answers."""
    request = f"GET / HTTP/1.1\r\nHost: {host or '127.0.0.1'}\r\n\r\n".encode()
    done = errors = 0
    deadline = time.monotonic() + duration

    async def one() -> None:
        nonlocal done, errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.monotonic() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            if head.startswith(b"HTTP/1.1 200"):
                done += 1
            else:
                errors += 1
        writer.close()

    start = time.monotonic()
    await asyncio.gather(*(one() for _ in range(connections)))
    return Load(done, time.monotonic() - start, errors)


def run_load(port: int, host: str | None, duration: float, connections: int) -> Load:
    if shutil.which("wrk"):
        return run_wrk(port, host, duration, connections)
    return asyncio.run(_py_load(port, host, duration, connections))


@dataclass
class Target:
    name: str
    port: int
    host: str | None
    pids: list[int]  # the server processes whose CPU time is counted (the proxy alone for proxies)
    rps: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)

    def measure(self, duration: float, connections: int) -> None:
        pids = self.pids + [c for p in self.pids for c in children(p)]
        cpu0 = cpu_seconds(pids)
        load = run_load(self.port, self.host, duration, connections)
        cpu = cpu_seconds(pids) - cpu0
        if load.errors or not load.requests:
            raise RuntimeError(f"{self.name}: {load.errors} failed requests, {load.requests} answered")
        self.rps.append(load.rps)
        self.cpu_us.append(cpu / load.requests * 1e6)


# ---- the run -----------------------------------------------------------------------------------------------------
class Servers:
    """Starts the processes under test; stops all of them on exit."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, *args: str, port: int) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{port}.log").open("wb")
        proc = subprocess.Popen([*args], stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        self.procs.append(proc)
        wait_for_port(port, proc)
        return proc

    def role(self, *args: str, port: int) -> subprocess.Popen[bytes]:
        return self.spawn(sys.executable, str(Path(__file__).resolve()), "--role", *args, port=port)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def start_targets(servers: Servers, app_server: str) -> list[Target]:
    app_port, hub_port = free_port(), free_port()
    app = servers.role("app", str(app_port), app_server, port=app_port)
    data_dir = servers.workdir / "data"
    hub = servers.role("spacehub", str(hub_port), str(app_port), str(data_dir), port=hub_port)
    targets = [Target("direct", app_port, None, [app.pid]), Target("spacehub", hub_port, HOST, [hub.pid])]
    if shutil.which("nginx"):
        nginx_port = free_port()
        ndir = servers.workdir / "nginx"
        ndir.mkdir()
        conf = ndir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=ndir, port=nginx_port, upstream=app_port))
        nginx = servers.spawn("nginx", "-c", str(conf), "-p", str(ndir), "-g", "daemon off;", port=nginx_port)
        targets.append(Target("nginx", nginx_port, HOST, [nginx.pid]))
        backend, front = free_port(), free_port()
        plane = servers.role("spacehub", str(backend), str(app_port), str(data_dir) + "-nginx", str(front), port=front)
        wait_for_port(backend, plane)
        nginx_pids = children(plane.pid)  # SpaceHub's nginx master (its workers are counted as its children)
        targets.append(Target("spacehub-nginx", front, HOST, nginx_pids))
    return targets


def report(targets: list[Target], args: argparse.Namespace) -> dict[str, object]:
    by = {t.name: t for t in targets}
    med = {t.name: statistics.median(t.rps) for t in targets}
    load = "wrk" if shutil.which("wrk") else "a Python asyncio load generator (wrk is missing: figures are lower)"
    print(f"load: {load}, {args.connections} connections, {args.rounds} rounds of {args.duration:g}s per target")
    print(f"app: raw ASGI on uvicorn ({args.app_server}), 1 worker")
    print(f"{'target':<15} {'req/s (median)':>15} {'rounds':>30} {'server CPU µs/req':>18}")
    for t in targets:
        rounds = " ".join(f"{r:,.0f}" for r in t.rps)
        print(f"{t.name:<15} {med[t.name]:>15,.0f} {rounds:>30} {statistics.median(t.cpu_us):>18.1f}")
    ratios: dict[str, float] = {}
    for t in targets[1:]:
        ratios[f"{t.name}/direct"] = med[t.name] / med["direct"]
    if "nginx" in by:
        for name in ("spacehub", "spacehub-nginx"):
            if name in by:
                ratios[f"{name}/nginx"] = med[name] / med["nginx"]
                # per-round ratios: both sides measured seconds apart, so less exposed to the machine's load swings
                per_round = [s / n for s, n in zip(by[name].rps, by["nginx"].rps, strict=True)]
                ratios[f"{name}/nginx (median of per-round ratios)"] = statistics.median(per_round)
    for name, value in ratios.items():
        print(f"ratio {name}: {value:.2f}")
    return {
        "load": load,
        "app_server": args.app_server,
        "connections": args.connections,
        "duration": args.duration,
        "targets": {t.name: {"rps": t.rps, "cpu_us_per_request": t.cpu_us} for t in targets},
        "median_rps": med,
        "ratios": ratios,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measurement, whole with wrk (default 5)")
    p.add_argument("--rounds", type=int, default=3, help="measurements per target, in turns (default 3)")
    p.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections (default 32)")
    p.add_argument(
        "--app-server",
        choices=("auto", "h11"),
        default="auto",
        help="the app's uvicorn: auto = httptools + uvloop (default), h11 = h11 + asyncio (the probes', Gradio's)",
    )
    p.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    p.add_argument("--role", nargs="+", help=argparse.SUPPRESS)  # internal: run one of the servers
    args = p.parse_args(argv)
    if args.role:
        role, *rest = args.role
        if role == "app":
            serve_app(int(rest[0]), rest[1])
        else:
            serve_spacehub(int(rest[0]), int(rest[1]), rest[2], int(rest[3]) if len(rest) > 3 else None)
        return 0
    with tempfile.TemporaryDirectory(prefix="proxy-bench-") as tmp:
        servers = Servers(Path(tmp))
        try:
            targets = start_targets(servers, args.app_server)
            for t in targets:  # warm up: open the keep-alive pools, import lazily loaded code
                t.measure(min(1.0, args.duration), args.connections)
                t.rps.clear()
                t.cpu_us.clear()
            for _ in range(args.rounds):
                for t in targets:
                    t.measure(args.duration, args.connections)
            result = report(targets, args)
        finally:
            servers.stop()
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
