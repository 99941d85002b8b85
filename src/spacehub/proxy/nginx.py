"""The nginx data plane (``proxy.mode = "nginx"``): nginx carries Space traffic, SpaceHub only the rest.

nginx listens on the public port. Each public Space whose app is running gets a ``server`` block for its host that
``proxy_pass``es to the app's port through an upstream ``keepalive`` pool; every other request (the Hub itself, a
sleeping, paused, private, static or unknown Space) reaches the default server, which passes it to SpaceHub on its
backend port, where the embedded proxy handles it (wake, "waking up" page, authorization, 404). So SpaceHub is only
on the wake-up path, as Knative's activator is. An app that fails to answer (``502``) is also handed to SpaceHub
(``error_page 502 = @spacehub``), which then answers with its own page, or wakes the Space.

``set_routes`` is called by the runtime when routes change; the config is rewritten, checked (``nginx -t``) and
nginx reloaded (SIGHUP: graceful, in-flight requests finish on the old workers), debounced so that a burst of changes
costs one reload. A reload closes the old workers' idle keep-alive connections, and a client that sends on one as
it closes is cut off; browsers retry, but httpx (so ``huggingface_hub``) does not, so the default server (the Hub)
closes its connections after each response. Requests served by nginx never reach SpaceHub, so activity for sleep
comes from a buffered access log of host names that ``NginxDataPlane`` reads every few seconds and turns into
``RouteTable.touch`` calls.
Private Spaces are never written to the config: their requests need ``authorize``, so they take the embedded path.
A Space that turns private (or is moved or deleted) must leave nginx's direct path at once, not at the next reload:
``close_hosts`` creates a marker file ``{markers}/{host}`` that every Space ``server`` checks before proxying (and
hands the request to SpaceHub when it exists); the route table calls it synchronously when the change commits. The
markers live in a per-run 0711 directory outside the data dir (nginx's workers may run as another user), and
``start`` checks that nginx's workers see them.

A visitor's hub token is never handed to an app: the ``spacehub_token`` cookie is cut out of ``Cookie`` (a ``map``)
and an ``Authorization: Bearer hf_…`` is not sent (another ``map``; ``proxy_set_header`` with an empty value drops a
header), exactly as the embedded proxy does (``routes.is_hub_authorization``). Requests handed to SpaceHub keep them:
SpaceHub needs them to authorize, and strips them before the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

from spacehub.proxy.routes import RouteTable

log = logging.getLogger("spacehub.proxy.nginx")

ACTIVITY_FLUSH_SECONDS = 5
ACTIVITY_ROTATE_BYTES = 8 * 1024 * 1024

_PROXY_COMMON = """\
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_connect_timeout {connect}s;
            proxy_read_timeout {read}s;
            proxy_send_timeout {read}s;"""

_MAIN = """\
# Written by SpaceHub (spacehub.proxy.nginx); rewritten on every route change: do not edit.
worker_processes {workers};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
worker_shutdown_timeout 300s;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    server_tokens off;
    client_max_body_size 0;
    client_body_temp_path {dir}/tmp/body; proxy_temp_path {dir}/tmp/proxy; fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi; scgi_temp_path {dir}/tmp/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
    # A visitor's hub token is never handed to a Space's app (as in the embedded proxy): the spacehub_token cookie
    # is cut out of Cookie (two passes; a third occurrence drops the Cookie header rather than leak it), and an
    # Authorization that carries a hub token (Bearer hf_...) is not sent; any other Authorization is the app's own.
    map $http_cookie $space_cookie_1 {{
        default $http_cookie;
        "~^(?<pre>(?:.*;\\s*)?)spacehub_token=[^;]*(?:;\\s*)?(?<post>.*)$" "$pre$post";
    }}
    map $space_cookie_1 $space_cookie_2 {{
        default $space_cookie_1;
        "~^(?<pre>(?:.*;\\s*)?)spacehub_token=[^;]*(?:;\\s*)?(?<post>.*)$" "$pre$post";
    }}
    map $space_cookie_2 $space_cookie {{
        default $space_cookie_2;
        "~(?:^|;)\\s*spacehub_token=" "";
    }}
    map $http_authorization $space_authorization {{
        default $http_authorization;
        "~^\\s*(?i:bearer)\\s+hf_" "";
    }}
    log_format spacehub_activity '$host';
    # Idle connections to SpaceHub are dropped before uvicorn's own 30 s keep-alive ends, so nginx never reuses one
    # that uvicorn is closing.
    upstream spacehub {{ server {backend}; keepalive 32; keepalive_timeout 20s; }}
{upstreams}
    # The start-up check that nginx's workers see the closed-host markers (else nginx mode refuses to start).
    server {{
        listen {listen};
        server_name {check_host};
        location / {{
            if (-e {check_marker}) {{ return 204; }}
            return 503;
        }}
    }}
    server {{
        listen {listen} default_server;
        server_name _;
        # Hub clients get one connection per request: a reload (every route change) makes the old workers close
        # their idle keep-alive connections, and a client that sends on one just as it closes gets "server
        # disconnected" (httpx, so huggingface_hub, does not retry). Browsers retry, so Space hosts keep keep-alive.
        keepalive_timeout 0;
        location / {{
            proxy_pass http://spacehub;
{common}
        }}
    }}
{servers}}}
"""

_UPSTREAM = "    upstream {name} {{ server {addr}; keepalive 64; keepalive_timeout 4s; }}"

_SERVER = """\
    server {{
        listen {listen};
        server_name {host};
        access_log {dir}/activity.log spacehub_activity buffer=64k flush={flush}s;
        location / {{
            if (-e {closed}) {{ return 418; }}
            proxy_pass http://{upstream};
            proxy_set_header Cookie $space_cookie;
            proxy_set_header Authorization $space_authorization;
{common}
            error_page 502 = @spacehub;
            error_page 418 = @spacehub;
        }}
        location @spacehub {{
            proxy_pass http://spacehub;
{common}
        }}
    }}
"""


def _safe_host(host: str) -> bool:
    return bool(host) and host[0] != "." and all(c.isalnum() or c in "-." for c in host)


CHECK_HOST = "spacehub-marker-check.invalid"


def closed_marker(markers: Path, host: str) -> Path:
    """The file whose existence closes ``host``'s direct path: nginx then hands its requests to SpaceHub."""
    return markers / host


def render_config(
    *,
    directory: Path,
    listen: str,
    backend: str,
    routes: Mapping[str, tuple[str, int]],
    connect_timeout: float = 10.0,
    read_timeout: float = 300.0,
    workers: int | str = 1,
    activity_flush: int = ACTIVITY_FLUSH_SECONDS,
    markers: Path | None = None,
) -> str:
    """The whole nginx.conf: ``routes`` maps a public Space host (``alice-demo.localhost``) to its app's address;
    ``markers`` is the directory of closed-host markers (``close_hosts``)."""
    markers = markers or directory / "closed"
    common = _PROXY_COMMON.format(connect=f"{connect_timeout:g}", read=f"{read_timeout:g}")
    names: dict[tuple[str, int], str] = {}
    servers = []
    for host, addr in sorted(routes.items()):
        name = names.setdefault(addr, f"space_{len(names)}")
        servers.append(
            _SERVER.format(
                listen=listen,
                host=host,
                dir=directory,
                flush=activity_flush,
                upstream=name,
                common=common,
                closed=closed_marker(markers, host),
            )
        )
    upstreams = "\n".join(_UPSTREAM.format(name=n, addr=f"{a[0]}:{a[1]}") for a, n in names.items())
    return _MAIN.format(
        workers=workers,
        dir=directory,
        backend=backend,
        listen=listen,
        upstreams=upstreams,
        common=common,
        servers="\n".join(servers),
        check_host=CHECK_HOST,
        check_marker=closed_marker(markers, CHECK_HOST),
    )


class NginxDataPlane:
    """Runs nginx in front of SpaceHub and keeps its config equal to the running public Spaces."""

    def __init__(
        self,
        routes: RouteTable,
        *,
        directory: Path,
        listen: tuple[str, int],
        backend: tuple[str, int],
        binary: str = "nginx",
        connect_timeout: float = 10.0,
        read_timeout: float = 300.0,
        workers: int | str = 1,
        debounce: float = 0.2,
        activity_interval: float = ACTIVITY_FLUSH_SECONDS,
    ) -> None:
        self.routes, self.directory, self.binary = routes, directory, binary
        self.listen, self.backend = f"{listen[0]}:{listen[1]}", f"{backend[0]}:{backend[1]}"
        self.timeouts = (connect_timeout, read_timeout)
        self.workers, self.debounce, self.activity_interval = workers, debounce, activity_interval
        self.conf = directory / "nginx.conf"
        self.current: dict[str, tuple[str, int]] = {}
        self.reloads = 0
        self.proc: asyncio.subprocess.Process | None = None
        self._reload_task: asyncio.Task[None] | None = None
        self._activity_task: asyncio.Task[None] | None = None
        self._markers: Path | None = None
        self._markers_lock = threading.Lock()

    @property
    def markers(self) -> Path:
        """The closed-host markers' directory: one per run, outside the data dir, 0711 (nginx's workers run as
        another user when SpaceHub runs as root, and must be able to stat a marker, not to list them)."""
        with self._markers_lock:  # the route table calls close_hosts from worker threads
            if self._markers is None:
                self._markers = Path(tempfile.mkdtemp(prefix="spacehub-nginx-"))
                self._markers.chmod(0o711)
            return self._markers

    @property
    def _paths(self) -> list[str]:
        # -e: nginx opens its error log before reading the config; without it, the compiled-in /var/log path
        # (unwritable when SpaceHub does not run as root).
        error_log = str(self.directory / "error.log")
        return ["-c", str(self.conf), "-p", str(self.directory), "-e", error_log]

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def _write(self) -> None:
        text = render_config(
            directory=self.directory,
            listen=self.listen,
            backend=self.backend,
            routes=self.current,
            connect_timeout=self.timeouts[0],
            read_timeout=self.timeouts[1],
            workers=self.workers,
            activity_flush=max(1, round(self.activity_interval)),
            markers=self.markers,
        )
        tmp = self.conf.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.conf)

    async def start(self) -> None:
        """Write the config (no Space yet: everything goes to SpaceHub) and start nginx; fails if nginx cannot."""
        for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        self._write()
        await self._check()
        cmd = [self.binary, *self._paths, "-g", "daemon off;"]
        self.proc = await asyncio.create_subprocess_exec(*cmd, stdin=asyncio.subprocess.DEVNULL)
        await self._wait_listening()
        await self._check_markers()
        self._activity_task = asyncio.create_task(self._activity_loop())

    async def _check_markers(self) -> None:
        """nginx's workers must see the closed-host markers, or a Space made private would stay served directly."""
        closed_marker(self.markers, CHECK_HOST).touch(mode=0o644)
        host, port = self.listen.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"GET / HTTP/1.0\r\nHost: {CHECK_HOST}\r\n\r\n".encode())
        status = (await asyncio.wait_for(reader.readline(), 10)).split()
        writer.close()
        if status[1:2] != [b"204"]:
            await self.stop()
            raise RuntimeError(f"nginx's workers cannot see {self.markers} (answered {status!r})")

    async def _wait_listening(self) -> None:
        host, port = self.listen.rsplit(":", 1)
        for _ in range(200):
            if self.proc is not None and self.proc.returncode is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}; see {self.directory / 'error.log'}")
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection(host, int(port))
                writer.close()
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"nginx does not listen on {self.listen}")

    async def _check(self) -> None:
        proc = await asyncio.create_subprocess_exec(
            self.binary, "-t", "-q", *self._paths,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"nginx rejected its config: {out.decode(errors='replace').strip()}")

    def close_hosts(self, closed: Iterable[str] = (), opened: Iterable[str] = ()) -> None:
        """Close (and reopen) nginx's direct path to Space hosts at once, without a reload: a closed host's requests
        go to SpaceHub (which authorizes them, or answers 404) even while the loaded config still has a ``server``
        for it. Synchronous and callable from any thread: the route table calls it, in the thread that committed a
        Space's change of visibility, move or deletion, before the API call returns. A marker file per host is what
        nginx checks (``if (-e …)``, one ``stat`` per request); a host that becomes public again is reopened."""
        markers = self.markers
        for host in closed:
            if _safe_host(host):
                closed_marker(markers, host).touch(mode=0o644)
        for host in opened:
            if _safe_host(host):
                closed_marker(markers, host).unlink(missing_ok=True)

    def set_routes(self, routes: Mapping[str, tuple[str, int]]) -> None:
        """The public Spaces with a running app, host → app address; nginx is reloaded shortly after a change."""
        new = dict(routes)
        if new == self.current:
            return
        self.current = new
        if self.proc is None:  # not started yet: ``start`` writes them
            return
        if self._reload_task is None or self._reload_task.done():
            self._reload_task = asyncio.create_task(self._reload_soon())

    async def _reload_soon(self) -> None:
        await asyncio.sleep(self.debounce)
        await self.reload()

    async def reload(self) -> None:
        """Rewrite the config, check it, and have nginx load it (graceful)."""
        self._write()
        try:
            await self._check()
        except RuntimeError as exc:
            log.error("%s", exc)
            return
        if self.running:
            self.proc.send_signal(signal.SIGHUP)
            self.reloads += 1

    # ---- activity: the access log of nginx-served requests → touch() -------------------------------------------
    async def _activity_loop(self) -> None:
        path = self.directory / "activity.log"
        offset = 0
        while True:
            await asyncio.sleep(self.activity_interval)
            try:
                offset = self.read_activity(path, offset)
            except Exception:
                log.exception("reading nginx activity failed")

    def read_activity(self, path: Path, offset: int) -> int:
        """Touch every Space named in the log since ``offset``; rotate the log when it grows large."""
        try:
            with path.open("rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return 0
        end = data.rfind(b"\n") + 1
        for host in set(data[:end].split(b"\n")):
            target = self.routes.lookup(host.decode("latin-1").lower()) if host else None
            if target is not None:
                self.routes.touch(target.space_id)
        offset += end
        if offset > ACTIVITY_ROTATE_BYTES and self.running:
            os.replace(path, path.with_suffix(".old"))
            self.proc.send_signal(signal.SIGUSR1)  # reopen the log files
            return 0  # lines still buffered by nginx for the old file are lost: activity is sampled, not counted
        return offset

    async def stop(self) -> None:
        """Stop nginx (finishing in-flight requests) and the activity reader."""
        for task in (self._activity_task, self._reload_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.running:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
        if self._markers is not None:
            shutil.rmtree(self._markers, ignore_errors=True)
            self._markers = None
