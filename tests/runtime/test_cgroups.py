"""cgroups.py on a fake cgroup filesystem (v1 hybrid and v2 layouts): which files get which values."""

from __future__ import annotations

from pathlib import Path

import pytest

from spacehub.runtime.backends.base import Resources
from spacehub.runtime.cgroups import Cgroup, CgroupHost, CgroupUnavailable

LIMITS = Resources(cpus=0.5, memory_bytes=128 * 2**20, pids=64)


def v1_host(tmp_path: Path, controllers: tuple[str, ...] = ("memory", "cpu,cpuacct", "pids", "freezer")) -> CgroupHost:
    fs, proc = tmp_path / "cg", tmp_path / "proc"
    proc.mkdir(parents=True)
    mountinfo, own = [], []
    for i, c in enumerate(controllers):
        (fs / c).mkdir(parents=True)
        mountinfo.append(f"{30 + i} 23 0:{30 + i} / {fs / c} rw,relatime - cgroup cgroup rw,{c}")
        own.append(f"{i + 1}:{c}:{'/server' if c == 'memory' else '/'}")
    mountinfo.append(f"99 23 0:99 / {fs / 'unified'} rw,relatime - cgroup2 cgroup2 rw")
    (proc / "mountinfo").write_text("\n".join(mountinfo) + "\n")
    (proc / "cgroup").write_text("\n".join([*own, "0::/"]) + "\n")
    return CgroupHost("tag", fs_root=fs, proc_self=proc)


def v2_host(tmp_path: Path) -> CgroupHost:
    fs, proc = tmp_path / "cg2", tmp_path / "proc"
    (fs / "server").mkdir(parents=True)
    proc.mkdir()
    (fs / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (fs / "server" / "cgroup.controllers").write_text("cpu memory pids\n")
    (proc / "cgroup").write_text("0::/server\n")
    (proc / "mountinfo").write_text(f"41 31 0:38 / {fs} rw - cgroup2 cgroup2 rw\n")
    return CgroupHost("tag", fs_root=fs, proc_self=proc)


def test_v1_limits_go_to_each_hierarchy_nested_under_our_own_cgroup(tmp_path: Path) -> None:
    host = v1_host(tmp_path)
    assert host.version() == 1
    cg = host.create("r1", LIMITS)
    mem = tmp_path / "cg" / "memory" / "server" / "spacehub-tag" / "r1"
    cpu = tmp_path / "cg" / "cpu,cpuacct" / "spacehub-tag" / "r1"
    assert (mem / "memory.limit_in_bytes").read_text() == str(128 * 2**20)
    assert (cpu / "cpu.cfs_quota_us").read_text() == "50000"
    assert (cpu / "cpu.cfs_period_us").read_text() == "100000"
    assert (tmp_path / "cg" / "pids" / "spacehub-tag" / "r1" / "pids.max").read_text() == "64"
    assert cg.limits == "cgroup v1 (memory 128 MiB, cpu 0.5, pids 64)"
    assert str(mem / "cgroup.procs") in cg.procs_files
    assert len(cg.procs_files) == 4
    assert Cgroup.from_json(cg.to_json()) == cg


def test_v1_freezer_and_oom_counter(tmp_path: Path) -> None:
    cg = v1_host(tmp_path).create("r1", Resources())
    assert cg.can_freeze and not cg.frozen()
    assert cg.set_frozen(True)
    assert (Path(cg.dirs["freezer"]) / "freezer.state").read_text() == "FROZEN"
    assert cg.frozen()
    assert cg.set_frozen(False) and not cg.frozen()
    (Path(cg.dirs["memory"]) / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert cg.oom_kills() == 2


def test_v1_missing_controllers_are_reported(tmp_path: Path) -> None:
    cg = v1_host(tmp_path, ("memory",)).create("r1", LIMITS)
    assert cg.limits == "cgroup v1 (memory 128 MiB, not enforced: cpu, pids, no freezer)"
    assert not cg.can_freeze and cg.set_frozen(True) is False
    with pytest.raises(CgroupUnavailable, match="memory controller is not mounted"):
        v1_host(tmp_path / "other", ("pids",)).create("r1", LIMITS)


def test_v2_enables_controllers_below_our_cgroup(tmp_path: Path) -> None:
    host = v2_host(tmp_path)
    assert host.version() == 2
    cg = host.create("r1", LIMITS)
    own = tmp_path / "cg2" / "server"
    leaf = own / "spacehub-tag" / "r1"
    assert (own / "cgroup.subtree_control").read_text() == "+memory+cpu+pids"
    assert (own / "spacehub-tag" / "cgroup.subtree_control").read_text() == "+memory+cpu+pids"
    assert (leaf / "memory.max").read_text() == str(128 * 2**20)
    assert (leaf / "cpu.max").read_text() == "50000 100000"
    assert (leaf / "pids.max").read_text() == "64"
    assert cg.procs_files == [str(leaf / "cgroup.procs")]
    assert cg.limits == "cgroup v2 (memory 128 MiB, cpu 0.5, pids 64)"
    (leaf / "memory.events").write_text("low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n")
    assert cg.oom_kills() == 1


def test_v2_freezer(tmp_path: Path) -> None:
    cg = v2_host(tmp_path).create("r1", Resources())
    leaf = Path(cg.dirs["unified"])
    assert not cg.can_freeze  # no cgroup.freeze: a kernel before 5.2
    (leaf / "cgroup.freeze").write_text("0")
    (leaf / "cgroup.events").write_text("populated 1\nfrozen 1\n")
    assert cg.set_frozen(True)
    assert (leaf / "cgroup.freeze").read_text() == "1" and cg.frozen()


def test_no_cgroup_filesystem(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "mountinfo").write_text("")
    (tmp_path / "proc" / "cgroup").write_text("0::/\n")
    host = CgroupHost("tag", fs_root=tmp_path / "nothing", proc_self=tmp_path / "proc")
    assert host.version() is None
    with pytest.raises(CgroupUnavailable, match="no cgroup filesystem"):
        host.create("r1", LIMITS)
