"""Per-instance cgroups: CPU, memory and pids limits and the freezer, on cgroup v1 (hybrid) or v2, found at runtime.

An app's cgroup is nested under the server's own (read from /proc/self/cgroup), so apps stay inside whatever tree the
host gave SpaceHub: ``<own>/spacehub-<tag>/<name>``, where ``tag`` tells apart several SpaceHub roots on one machine.
v1 has one such directory per controller hierarchy (memory, cpu, pids, freezer); v2 one directory, after the
controllers are enabled in the parents' ``cgroup.subtree_control``. When the machine does not allow it (not root, no
controllers, a v2 parent that holds processes), `CgroupHost.create` raises `CgroupUnavailable` with the reason, and
the caller runs the app without limits and says so.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spacehub.runtime.backends.base import Resources

CPU_PERIOD_US = 100_000
V1_CONTROLLERS = ("memory", "cpu", "pids", "freezer")
V2_CONTROLLERS = ("memory", "cpu", "pids")


class CgroupUnavailable(Exception):
    """No cgroup can be made for an app here; the message says why (shown as ``none: <why>``)."""


@dataclass(frozen=True)
class Cgroup:
    """One app's cgroup: v1 ``dirs`` maps controller → directory; v2 has the single key ``"unified"``."""

    version: int
    dirs: dict[str, str]
    limits: str  # e.g. "cgroup v1 (memory 256 MiB, cpu 0.5, pids 4096)"

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "dirs": self.dirs, "limits": self.limits}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Cgroup:
        return cls(int(data["version"]), dict(data["dirs"]), str(data["limits"]))

    def _unique_dirs(self) -> list[Path]:
        return [Path(d) for d in dict.fromkeys(self.dirs.values())]

    @property
    def procs_files(self) -> list[str]:
        """The files a process writes its pid to in order to join (one per v1 hierarchy)."""
        return [str(d / "cgroup.procs") for d in self._unique_dirs()]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for d in self._unique_dirs():
            with contextlib.suppress(OSError):
                found.update(int(x) for x in (d / "cgroup.procs").read_text().split())
        return found

    def exists(self) -> bool:
        return any(d.is_dir() for d in self._unique_dirs())

    # ---- freezer ---------------------------------------------------------------------------------------------
    def _freezer(self) -> tuple[Path, str, str] | None:
        """(control file, frozen value, thawed value), or None without a freezer."""
        if self.version == 1:
            d = self.dirs.get("freezer")
            return (Path(d) / "freezer.state", "FROZEN", "THAWED") if d else None
        f = Path(self.dirs["unified"]) / "cgroup.freeze"
        return (f, "1", "0") if f.exists() else None

    @property
    def can_freeze(self) -> bool:
        return self._freezer() is not None

    def frozen(self) -> bool:
        fz = self._freezer()
        if fz is None:
            return False
        try:
            if self.version == 1:
                return fz[0].read_text().strip() in ("FROZEN", "FREEZING")
            return fz[0].read_text().strip() == "1"
        except OSError:
            return False

    def set_frozen(self, frozen: bool, timeout: float = 5.0) -> bool:
        """Freeze or thaw every process of the cgroup and wait until the kernel says it is done."""
        fz = self._freezer()
        if fz is None:
            return False
        control, on, off = fz
        control.write_text(on if frozen else off)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._settled(frozen):
                return True
            time.sleep(0.005)
        return False

    def _settled(self, frozen: bool) -> bool:
        if self.version == 1:
            state = (Path(self.dirs["freezer"]) / "freezer.state").read_text().strip()
            return state == ("FROZEN" if frozen else "THAWED")
        events = _keyed(Path(self.dirs["unified"]) / "cgroup.events")
        return events.get("frozen", 0) == int(frozen)

    # ---- memory ----------------------------------------------------------------------------------------------
    def oom_kills(self) -> int:
        """How many processes the kernel killed for going over the memory limit."""
        if self.version == 1:
            d = self.dirs.get("memory")
            return _keyed(Path(d) / "memory.oom_control").get("oom_kill", 0) if d else 0
        return _keyed(Path(self.dirs["unified"]) / "memory.events").get("oom_kill", 0)

    # ---- teardown --------------------------------------------------------------------------------------------
    def kill_all(self) -> None:
        """SIGKILL everything inside (thawed first: frozen v1 tasks cannot die)."""
        if self.frozen():
            with contextlib.suppress(OSError):
                self.set_frozen(False, timeout=1.0)
        kill = Path(self.dirs.get("unified", "/nonexistent")) / "cgroup.kill"
        if self.version == 2 and kill.exists():
            with contextlib.suppress(OSError):
                kill.write_text("1")
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def remove(self, timeout: float = 5.0) -> None:
        """Kill what is left, then remove the directories (and the per-root parent when it became empty)."""
        deadline = time.monotonic() + timeout
        while self.exists():
            self.kill_all()
            for d in self._unique_dirs():
                with contextlib.suppress(FileNotFoundError):
                    try:
                        d.rmdir()
                    except OSError as e:
                        if e.errno != errno.EBUSY or time.monotonic() > deadline:
                            raise
            if self.exists():
                time.sleep(0.02)
        for d in self._unique_dirs():
            with contextlib.suppress(OSError):
                d.parent.rmdir()  # spacehub-<tag>: fails while other apps live in it, as it should


class CgroupHost:
    """The machine's cgroup layout, as seen by this process. ``fs_root`` and ``proc_self`` exist for tests."""

    def __init__(self, tag: str, fs_root: Path = Path("/sys/fs/cgroup"), proc_self: Path = Path("/proc/self")):
        self.tag = tag
        self.fs_root = fs_root
        self.proc_self = proc_self

    def version(self) -> int | None:
        if (self.fs_root / "cgroup.controllers").exists():
            return 2
        return 1 if self._v1_mounts() else None

    def create(self, name: str, resources: Resources) -> Cgroup:
        """Make (or remake, empty) the cgroup ``name`` with ``resources`` applied. Raises: CgroupUnavailable."""
        version = self.version()
        try:
            if version == 2:
                return self._create_v2(name, resources)
            if version == 1:
                return self._create_v1(name, resources)
        except PermissionError as e:
            raise CgroupUnavailable(f"no permission to create cgroups ({e.filename}): run as root") from e
        except OSError as e:
            raise CgroupUnavailable(f"cannot create a cgroup: {e}") from e
        raise CgroupUnavailable("no cgroup filesystem is mounted")

    # ---- v1 --------------------------------------------------------------------------------------------------
    def _v1_mounts(self) -> dict[str, Path]:
        """controller → mount point of its v1 hierarchy, from mountinfo (handles joint mounts like cpu,cpuacct)."""
        mounts: dict[str, Path] = {}
        with contextlib.suppress(OSError):
            for line in (self.proc_self / "mountinfo").read_text().splitlines():
                left, _, right = line.partition(" - ")
                fields, rfields = left.split(), right.split()
                if len(rfields) < 3 or rfields[0] != "cgroup":
                    continue
                for opt in rfields[2].split(","):
                    if opt in V1_CONTROLLERS:
                        mounts.setdefault(opt, Path(fields[4]))
        return mounts

    def _own_paths(self) -> dict[str, str]:
        """controller (or "" for v2) → this process's cgroup path, from /proc/self/cgroup."""
        own: dict[str, str] = {}
        for line in (self.proc_self / "cgroup").read_text().splitlines():
            _, ctrls, path = line.split(":", 2)
            for c in ctrls.split(",") if ctrls else [""]:
                own[c] = path
        return own

    def _create_v1(self, name: str, res: Resources) -> Cgroup:
        mounts, own = self._v1_mounts(), self._own_paths()
        dirs = {c: str(m / own.get(c, "/").lstrip("/") / f"spacehub-{self.tag}" / name) for c, m in mounts.items()}
        if res.memory_bytes is not None and "memory" not in dirs:
            raise CgroupUnavailable("a memory limit is asked for but the memory controller is not mounted")
        cg = _fresh(Cgroup(1, dirs, ""))
        for d in dict.fromkeys(dirs.values()):
            _mkdir(Path(d))
        with _undo_on_error(cg):
            return Cgroup(1, dirs, self._limit_v1(dirs, res))

    def _limit_v1(self, dirs: dict[str, str], res: Resources) -> str:
        notes = []
        if res.memory_bytes is not None:
            mem = Path(dirs["memory"])
            (mem / "memory.limit_in_bytes").write_text(str(res.memory_bytes))
            if (mem / "memory.memsw.limit_in_bytes").exists():  # swap accounting on: no swapping past the limit
                (mem / "memory.memsw.limit_in_bytes").write_text(str(res.memory_bytes))
            notes.append(f"memory {_mib(res.memory_bytes)}")
        if res.cpus is not None and "cpu" in dirs:
            cpu = Path(dirs["cpu"])
            (cpu / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
            (cpu / "cpu.cfs_quota_us").write_text(str(max(1000, int(res.cpus * CPU_PERIOD_US))))
            notes.append(f"cpu {res.cpus:g}")
        if res.pids is not None and "pids" in dirs:
            (Path(dirs["pids"]) / "pids.max").write_text(str(res.pids))
            notes.append(f"pids {res.pids}")
        return _describe(1, notes, res, set(dirs), "freezer" in dirs)

    # ---- v2 --------------------------------------------------------------------------------------------------
    def _create_v2(self, name: str, res: Resources) -> Cgroup:
        own = self.fs_root / self._own_paths().get("", "/").lstrip("/")
        available = set((own / "cgroup.controllers").read_text().split())
        wanted = [c for c in V2_CONTROLLERS if c in available]
        if res.memory_bytes is not None and "memory" not in wanted:
            raise CgroupUnavailable("a memory limit is asked for but cgroup v2 has no memory controller here")
        mid = own / f"spacehub-{self.tag}"
        leaf = mid / name
        cg = _fresh(Cgroup(2, {"unified": str(leaf)}, ""))
        for parent in (own, mid):
            _mkdir(parent)
            for c in wanted:
                try:
                    with (parent / "cgroup.subtree_control").open("a") as f:
                        f.write(f"+{c}")
                except OSError as e:
                    if e.errno == errno.EBUSY:
                        raise CgroupUnavailable(
                            f"cgroup v2: {parent} holds processes, so controllers cannot be enabled below it "
                            "(give SpaceHub a cgroup of its own, e.g. systemd Delegate=yes)"
                        ) from e
                    raise
        _mkdir(leaf)
        with _undo_on_error(cg):
            return Cgroup(2, {"unified": str(leaf)}, self._limit_v2(leaf, wanted, res))

    def _limit_v2(self, leaf: Path, wanted: list[str], res: Resources) -> str:
        notes = []
        if res.memory_bytes is not None:
            (leaf / "memory.max").write_text(str(res.memory_bytes))
            if (leaf / "memory.swap.max").exists():
                (leaf / "memory.swap.max").write_text("0")
            notes.append(f"memory {_mib(res.memory_bytes)}")
        if res.cpus is not None and "cpu" in wanted:
            (leaf / "cpu.max").write_text(f"{max(1000, int(res.cpus * CPU_PERIOD_US))} {CPU_PERIOD_US}")
            notes.append(f"cpu {res.cpus:g}")
        if res.pids is not None and "pids" in wanted:
            (leaf / "pids.max").write_text(str(res.pids))
            notes.append(f"pids {res.pids}")
        return _describe(2, notes, res, set(wanted), True)


def _fresh(cg: Cgroup) -> Cgroup:
    """A cgroup of the same name left by a crash is emptied and removed first."""
    if cg.exists():
        cg.remove()
    return cg


@contextlib.contextmanager
def _undo_on_error(cg: Cgroup) -> Iterator[None]:
    """A limit that cannot be written leaves no half-made cgroup behind."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):
            cg.remove(timeout=1.0)
        raise


def _mkdir(d: Path) -> None:
    for _ in range(3):  # a concurrent remove() may take the per-root parent away between the two mkdirs
        try:
            d.mkdir(parents=True, exist_ok=True)
            return
        except FileNotFoundError:
            continue
    d.mkdir(parents=True, exist_ok=True)


def _keyed(path: Path) -> dict[str, int]:
    """``key value`` lines (memory.events, cgroup.events, memory.oom_control) as a dict."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            k, _, v = line.partition(" ")
            if v.strip().lstrip("-").isdigit():
                out[k] = int(v)
    return out


def _mib(n: int) -> str:
    return f"{n / 2**20:g} MiB"


def _describe(version: int, notes: list[str], res: Resources, present: set[str], freezer: bool) -> str:
    missing = [c for c, asked in (("cpu", res.cpus), ("pids", res.pids)) if asked is not None and c not in present]
    if missing:
        notes.append("not enforced: " + ", ".join(missing))
    if not freezer:
        notes.append("no freezer")
    return f"cgroup v{version}" + (f" ({', '.join(notes)})" if notes else "")
