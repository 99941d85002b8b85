"""Who builds docker Spaces' images (`local_builder`): the rules on the build user, and a real rootless build."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from spacehub.runtime import sandbox
from spacehub.runtime.backends.base import BuildFailed
from spacehub.runtime.backends.local import LocalProcessBackend
from spacehub.runtime.backends.local_builder import (
    BuildUserUnavailable,
    find_build_user,
    overlaps_sandbox,
    subordinate_ranges,
)
from spacehub.runtime.dockerfile import base_images
from tests.runtime.backends.conftest import README, SpaceRepo, build_spec

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the build user is only used when SpaceHub is root")


def test_base_images_lists_what_a_dockerfile_builds_from() -> None:
    dockerfile = (
        "FROM --platform=linux/amd64 python:3.11-slim AS build\nRUN make\n"
        "FROM build\nFROM $BASE\nFROM scratch\nfrom debian:12 as d\nFROM python:3.11-slim\nFROM \\\n  alpine:3\n"
    )
    assert base_images(dockerfile) == ["python:3.11-slim", "debian:12", "alpine:3"]
    assert base_images(None) == [] and base_images("RUN true") == []


def test_subordinate_ranges_by_name_or_number(tmp_path: Path) -> None:
    f = tmp_path / "subuid"
    f.write_text("alice:100000:65536\nbuilder:1000000:65536\n999:2000000:10\nbroken:x:1\nbuilder:5\n")
    assert subordinate_ranges(f, "builder", 999) == [(1000000, 65536), (2000000, 10)]
    assert subordinate_ranges(f, "nobody", 12345) == []
    assert subordinate_ranges(tmp_path / "missing", "builder", 999) == []


def test_sandbox_uids_are_never_subordinate_ids() -> None:
    base, span = sandbox.HOST_UID_BASE, sandbox.HOST_UID_SPAN
    assert overlaps_sandbox(base - 10, 11) and overlaps_sandbox(base + span - 1, 5) and overlaps_sandbox(0, 2**32)
    assert not overlaps_sandbox(base - 65536, 65536) and not overlaps_sandbox(base + span, 65536)


@as_root
def test_the_build_user_must_exist_and_own_safe_subordinate_ids(tmp_path: Path) -> None:
    with pytest.raises(BuildUserUnavailable, match="does not exist: run scripts/setup-build-user"):
        find_build_user("no-such-user-here", etc=tmp_path)
    with pytest.raises(BuildUserUnavailable, match="is root"):
        find_build_user("root", etc=tmp_path)
    name = "nobody"  # exists everywhere; its home (/nonexistent) is checked after the ranges
    uid = pwd.getpwnam(name).pw_uid
    (tmp_path / "subuid").write_text(f"{name}:1000000:1000\n")
    (tmp_path / "subgid").write_text(f"{name}:1000000:65536\n")
    with pytest.raises(BuildUserUnavailable, match="no range of 65536 subordinate ids in /etc/subuid"):
        find_build_user(name, etc=tmp_path)
    (tmp_path / "subuid").write_text(f"{name}:1000000:65536\n{uid}:{sandbox.HOST_UID_BASE + 5}:10\n")
    with pytest.raises(BuildUserUnavailable, match="overlap the host uids of sandboxed Spaces"):
        find_build_user(name, etc=tmp_path)
    (tmp_path / "subuid").write_text(f"{name}:1000000:65536\n")
    with pytest.raises(BuildUserUnavailable, match="no home folder of its own"):
        find_build_user(name, etc=tmp_path)


@as_root
@pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed (scripts/install-system-deps)")
def test_a_docker_build_without_a_build_user_fails_and_says_how_to_fix_it(
    make_backend: Callable[..., LocalProcessBackend], space_repo: SpaceRepo
) -> None:
    """With the sandbox on, a root SpaceHub never runs a Dockerfile's RUN steps as root: no build user, no build."""
    backend = make_backend(sandbox="on", build_user="no-such-user-here")
    sha = space_repo.commit({"Dockerfile": "FROM scratch\nRUN true\n", "README.md": README.format(sdk="docker")})
    lines: list[str] = []
    with pytest.raises(BuildFailed, match="built as an unprivileged user, and the build user 'no-such-user-here' does"):
        backend.build(build_spec(space_repo, sha, sdk="docker"), lines.append)
    assert not backend.build_exists("b1")
    assert not any(line.startswith("$ podman build") for line in lines), lines


@as_root
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed (scripts/install-system-deps)")
def test_setup_build_user_makes_a_user_that_builds_rootless() -> None:
    """scripts/setup-build-user (run by install-system-deps) is idempotent and gives what find_build_user wants;
    a RUN step of a build as that user is root in its container and the build user on the host."""
    root = Path(__file__).resolve().parents[3]
    for _ in range(2):
        done = subprocess.run([str(root / "scripts" / "setup-build-user")], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    user = find_build_user("spacehub-builder")
    assert user is not None and user.uid != 0 and not overlaps_sandbox(*user.subuids)
    assert Path("/etc/subuid").read_text().count("spacehub-builder:") == 1
    user.prepare()
    engine = ["podman", *(["--runtime", "runc"] if shutil.which("runc") else [])]
    with user.workspace() as folder:
        rootfs = folder / "rootfs"
        for binary in ("/bin/sh", "/bin/cat"):
            libs = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout.split()
            for path in [binary, *(p for p in libs if p.startswith("/"))]:
                (rootfs / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, rootfs / path.lstrip("/"))
        (folder / "Dockerfile").write_text("FROM scratch\nCOPY rootfs/ /\nRUN cat /proc/self/uid_map\n")
        user.give(folder)
        cmd = [*engine, "build", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096", "--no-cache"]
        cmd += ["--iidfile", str(folder / "iid"), "."]
        done = subprocess.run(
            user.command(cmd), cwd=folder, env=user.env(os.environ), capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stdout + done.stderr
        rmi = user.command([*engine, "rmi", (folder / "iid").read_text()])
        subprocess.run(rmi, env=user.env(os.environ), cwd=folder)
        mapping = [line.split() for line in done.stdout.splitlines() if line.split()[:1] == ["0"]]
        assert mapping and mapping[0][:3] == ["0", str(user.uid), "1"], done.stdout
