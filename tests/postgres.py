"""A throwaway PostgreSQL cluster: the tests' (tests/storage/conftest.py) and the benchmarks' (bench/scale_bench.py).

The cluster is made with the server binaries Debian installs under /usr/lib/postgresql/<version>/bin
(scripts/install-system-deps installs them; the Debian service is not used). initdb and the server refuse to run as
root, so as root they run as the ``postgres`` system user (or ``nobody``) in a folder of /tmp given to that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "spacehub"

# Cleans up after a test process that dies without its teardown (killed, crashed): it waits for the end of its stdin,
# which the test process holds open, then stops the server (SIGQUIT: immediate shutdown) and removes the folder.
WATCHDOG = """
import os, shutil, signal, sys, time
base = sys.argv[1]
sys.stdin.buffer.read()
try:
    with open(os.path.join(base, "data", "postmaster.pid")) as f:
        pid = int(f.readline())
    os.kill(pid, signal.SIGQUIT)
    for _ in range(300):
        os.kill(pid, 0)
        time.sleep(0.1)
except (OSError, ValueError):
    pass
shutil.rmtree(base, ignore_errors=True)
"""


def pg_bindir() -> Path | None:
    """The newest PostgreSQL server bin folder: Debian's layout first, then initdb on PATH."""

    def version(d: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in d.parent.name.split(".") if x.isdigit())

    for d in sorted((Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")), key=version, reverse=True):
        if (d / "initdb").is_file() and (d / "pg_ctl").is_file():
            return d
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresCluster:
    bindir: Path
    base: Path  # owned by the server's user: data/, the unix socket, the log
    port: int = 0
    user: pwd.struct_passwd | None = None  # the user the server runs as, when we are root

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        kw: dict[str, object] = {}
        if self.user is not None:
            kw = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        return subprocess.run(
            args, cwd=self.base, env=env, capture_output=True, text=True, timeout=120, check=False, **kw
        )  # type: ignore[call-overload]

    def initdb(self) -> None:
        out = self.run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
            "--no-locale", "--encoding=UTF8", "--no-sync",
        )  # fmt: skip
        if out.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{out.stdout}\n{out.stderr}")
        with (self.data / "postgresql.conf").open("a") as f:
            f.write(
                "\n# spacehub tests: a throwaway cluster\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.base}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n"
            )

    def start(self) -> None:
        """Start on a free port, trying another when a parallel worker took it first."""
        for _ in range(5):
            self.port = _free_port()
            pg_ctl = str(self.bindir / "pg_ctl")
            out = self.run(pg_ctl, "-D", str(self.data), "-l", str(self.log), "-o", f"-p {self.port}", "-w", "start")
            if out.returncode == 0:
                return
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            if "already in use" not in log and "could not bind" not in log:
                raise RuntimeError(f"pg_ctl start failed:\n{out.stdout}\n{out.stderr}\n{log}")
            time.sleep(0.2)
        raise RuntimeError("pg_ctl start: no free port after 5 tries")

    def stop(self) -> None:
        out = self.run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")
        if out.returncode != 0:
            self.run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> str:
        """A new, empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"t_{secrets.token_hex(6)}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres") as conn:
            conn.autocommit = True
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _server_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root, but there is neither a 'postgres' nor a 'nobody' user to run PostgreSQL as")


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[PostgresCluster]:
    """A new cluster, running until the block ends (then stopped and removed, by a watchdog if this process dies).
    Raises: RuntimeError (no server binaries, initdb or start failed)."""
    bindir = pg_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries not found: run scripts/install-system-deps (Debian's package)")
    # Short and world-traversable: pytest's own tmp folders are private to their owner and the socket path is
    # limited to ~100 bytes.
    base = Path(tempfile.mkdtemp(prefix="spacehub-pg-", dir="/tmp" if os.path.isdir("/tmp") else None))
    cluster = PostgresCluster(bindir, base, user=_server_user())
    if cluster.user is not None:
        os.chown(base, cluster.user.pw_uid, cluster.user.pw_gid)
    watchdog = subprocess.Popen(
        [sys.executable, "-c", WATCHDOG, str(base)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # outlives a kill of the test process's group, to clean up after it
    )
    try:
        cluster.initdb()
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
        assert watchdog.stdin is not None
        watchdog.stdin.close()
        watchdog.wait(30)
