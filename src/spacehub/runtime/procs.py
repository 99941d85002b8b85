"""Processes seen through /proc: liveness that survives pid reuse, process groups, and killing an instance.

A process is named by (pid, start time): a pid alone may be reused by an unrelated process after the one we started
is gone, and after a reboot every recorded pid means nothing (the boot id tells).
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import time
from pathlib import Path
from typing import Any

from spacehub.runtime.cgroups import Cgroup
from spacehub.runtime.supervise import proc_starttime


def alive(pid: int | None, starttime: int | None) -> bool:
    return pid is not None and starttime is not None and proc_starttime(pid) == starttime


@functools.cache
def boot_id() -> str:
    """This boot's id (the same for as long as this process lives: read once; the crash monitor asks every second)."""
    with contextlib.suppress(OSError):
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return ""


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                    found.append(int(d.name))
    return found


def usage_of(pids: set[int] | list[int]) -> tuple[float, int, int | None, int | None]:
    """CPU seconds (user + system, since each process began), resident memory, and network bytes received and sent
    of processes ``pids``. Network bytes only when they run in a network namespace of their own (a sandbox or a
    container): on the host's, /proc/<pid>/net/dev counts everybody's traffic, so they are None."""
    tick = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    cpu, rss = 0.0, 0
    netns: Path | None = None
    own_ns = _netns(Path("/proc/self"))
    for pid in pids:
        d = Path("/proc") / str(pid)
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / tick
            rss += int((d / "statm").read_text().split()[1]) * page
            if netns is None and (ns := _netns(d)) is not None and ns != own_ns:
                netns = d
    if netns is None:
        return cpu, rss, None, None
    rx = tx = 0
    with contextlib.suppress(OSError, IndexError, ValueError):
        for line in (netns / "net" / "dev").read_text().splitlines()[2:]:
            name, _, counters = line.partition(":")
            if name.strip() != "lo":
                values = counters.split()
                rx, tx = rx + int(values[0]), tx + int(values[8])
    return cpu, rss, rx, tx


def _netns(proc: Path) -> str | None:
    with contextlib.suppress(OSError):
        return os.readlink(proc / "ns" / "net")
    return None


def kill_instance(state: dict[str, Any], cg: Cgroup | None, grace: float) -> None:
    """SIGTERM the app's process group and cgroup, SIGKILL what is left after ``grace`` seconds, then make sure
    the supervisor is gone. ``state`` is the supervisor's state.json."""
    pgid = state["pgid"]
    # Once the app is gone its group may still hold children; while a group has members its id is not reused.
    ours = alive(state["pid"], state["starttime"]) or bool(group_members(pgid))

    def members() -> list[int]:
        return (group_members(pgid) if ours else []) + sorted(cg.pids() if cg else [])

    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        if ours:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
        for pid in cg.pids() if cg else ():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while members() and time.monotonic() < deadline:
            time.sleep(0.02)
    deadline = time.monotonic() + 2
    while alive(state["supervisor_pid"], state["supervisor_starttime"]):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(state["supervisor_pid"], signal.SIGKILL)
        time.sleep(0.01)
