"""A live SpaceHub server for benchmarks: a real ``python -m spacehub serve`` process on a free port with a temp data
dir, users and tokens made by the CLI (the same approach as the ``server`` fixture of tests/conftest.py), plus
memory readings of the server process from ``/proc``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "spacehub", *args, "--data-dir", str(data_dir)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    return out.stdout


@dataclass
class HubServer:
    url: str
    port: int
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(default_factory=dict)  # the server's settings from the environment (its database…)
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def user(self, name: str) -> str:
        """Create ``name`` (if new) and return a write token."""
        if name not in self.tokens:
            cli(self.data_dir, "users", "create", name, env=self.env)
            self.tokens[name] = cli(self.data_dir, "tokens", "create", name, env=self.env).strip().splitlines()[-1]
        return self.tokens[name]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> HubServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(
    data_dir: Path, env: dict[str, str] | None = None, timeout: float = 60, port: int | None = None
) -> HubServer:
    """Start ``spacehub serve`` on ``port`` (default: a free one) and wait until it answers. Raises RuntimeError if
    it does not."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir.parent / f"server-{port}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "spacehub", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        try:
            httpx.get(url + "/api/agent-harnesses", timeout=1)
            return HubServer(url, port, data_dir, proc, log, dict(env or {}))
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not start within {timeout}s: {log.read_text()}")


# ---- memory of a process (Linux /proc) -----------------------------------------------------------------------
def proc_status_kb(pid: int, key: str) -> int | None:
    """``VmRSS`` / ``VmHWM`` (kB) of ``pid``, or None where /proc is not available."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def reset_peak_rss(pid: int) -> bool:
    """Reset ``VmHWM`` of ``pid`` to its current RSS (``echo 5 > /proc/PID/clear_refs``, Linux ≥ 4.0)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def proc_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of ``pid`` so far, its threads and its finished child processes (git subprocesses)
    included, or None where /proc is not available."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
