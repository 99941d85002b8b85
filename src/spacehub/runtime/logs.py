"""Build and run logs of a Space, kept on disk so they survive app and SpaceHub restarts.

Layout: ``{data_dir}/spaces/{repo_id}/logs/{run,build,build-failed}.log``. One line per log line:
``2026-11-22T12:00:00.123Z <text>`` (UTC, the format the supervisor of each app writes too). `sse_events` turns
them into the Server-Sent Events `HfApi.fetch_space_logs` reads: ``data: {"data": "<line>\\n", "timestamp": …}``.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

KINDS = ("run", "build")
MAX_LOG_BYTES = 20 * 1024 * 1024  # a log is rotated to ``.1`` beyond this


def stamp(now: dt.datetime | None = None) -> str:
    d = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


class SpaceLogs:
    def __init__(self, root: Path, repo_id: str) -> None:
        self.dir = root / repo_id / "logs"
        self._lock = threading.Lock()

    def path(self, kind: str) -> Path:
        return self.dir / f"{kind}.log"

    def start_build(self) -> None:
        """A new build: its log starts empty (the last failed one is kept as build-failed.log)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path("build").write_text("")

    def build_line(self, text: str) -> None:
        self.append("build", text)

    def append(self, kind: str, text: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        p = self.path(kind)
        with self._lock:
            if p.exists() and p.stat().st_size > MAX_LOG_BYTES:
                p.replace(p.with_suffix(".log.1"))
            with p.open("a", encoding="utf-8") as f:
                for line in text.rstrip("\n").split("\n"):
                    f.write(f"{stamp()} {line}\n")

    def keep_failed_build(self) -> None:
        if self.path("build").exists():
            shutil.copyfile(self.path("build"), self.path("build-failed"))

    def tail(self, kind: str, n: int = 20) -> str:
        """The last ``n`` lines' text (timestamps dropped), e.g. as the reason of a RUNTIME_ERROR."""
        lines = list(read_lines(self.path(kind)))[-n:]
        return "\n".join(text for _, text in lines)


def read_lines(path: Path) -> Iterator[tuple[str, str]]:
    """(timestamp, text) per line; lines without a timestamp get an empty one."""
    if not path.exists():
        return
    with path.open(encoding="utf-8", errors="replace") as f:
        for raw in f:
            raw = raw.rstrip("\n")
            ts, _, text = raw.partition(" ")
            if len(ts) == 24 and ts.endswith("Z") and ts[4] == "-":
                yield ts, text
            else:
                yield "", raw


def sse_event(timestamp: str, text: str) -> bytes:
    return b"data: " + json.dumps({"data": text + "\n", "timestamp": timestamp or stamp()}).encode() + b"\n\n"


def delete_logs(root: Path, repo_id: str) -> None:
    shutil.rmtree(root / repo_id, ignore_errors=True)
