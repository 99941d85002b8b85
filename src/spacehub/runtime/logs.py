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
from collections.abc import Callable, Iterator
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


# Stages in which a Space may still write its logs: a follower stops once the Space is in none of them.
LIVE_STAGES = frozenset({"BUILDING", "RUNNING_BUILDING", "APP_STARTING", "RUNNING_APP_STARTING", "RUNNING", "SLEEPING"})
BUILDING_STAGES = frozenset({"BUILDING", "RUNNING_BUILDING"})


class FileLogStream:
    """One Space log as the Hub reads it (`services.runtime.LogStream`): what is kept, then what is written next,
    while ``stage()`` says the Space may still write it (a build log only while it builds)."""

    def __init__(self, path: Path, kind: str, stage: Callable[[], str | None]) -> None:
        self.path, self.kind, self._stage = path, kind, stage
        self.offset = 0

    def backlog(self) -> list[tuple[str, str]]:
        lines = list(read_lines(self.path))
        self.offset = self.path.stat().st_size if self.path.exists() else 0
        return lines

    def live(self) -> bool:
        stage = self._stage()
        return stage in LIVE_STAGES and (self.kind != "build" or stage in BUILDING_STAGES)

    def more(self) -> list[tuple[str, str]]:
        """Whole lines written since the last call (a log that was rotated or started anew is read from its top)."""
        size = self.path.stat().st_size if self.path.exists() else 0
        if size < self.offset:
            self.offset = 0
        if size == self.offset:
            return []
        with self.path.open("rb") as f:
            f.seek(self.offset)
            chunk = f.read(size - self.offset)
        complete = chunk.rfind(b"\n") + 1
        self.offset += complete
        return [(ts, text) for ts, _, text in
                (raw.partition(" ") for raw in chunk[:complete].decode("utf-8", "replace").splitlines())]  # fmt: skip


def sse_event(timestamp: str, text: str) -> bytes:
    return b"data: " + json.dumps({"data": text + "\n", "timestamp": timestamp or stamp()}).encode() + b"\n\n"


def delete_logs(root: Path, repo_id: str) -> None:
    shutil.rmtree(root / repo_id, ignore_errors=True)
