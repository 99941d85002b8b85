"""Rootless image builds for docker Spaces: a Dockerfile's RUN steps are the author's code, so they never run as the
host's root.

When SpaceHub runs as root, ``podman build`` runs as an unprivileged system user (``runtime.build_user``, default
``spacehub-builder``, made by ``scripts/setup-build-user``) with rootless podman: the build container's root is that
user's uid on the host and every other id in it is one of the user's subordinate ids (``/etc/subuid``), which lie
outside the range of the sandboxed Spaces' host uids (`sandbox.HOST_UID_BASE`). RUN steps get a network namespace of
their own (slirp4netns, without the host's loopback, as a sandboxed Python build). The user's image store is its
own (overlay, under its home); the finished image is handed to the engine that runs it (root's store) with ``podman
save`` and ``load`` (layers root has already, such as the base image's, are not stored twice), and base images that
are in root's store but not in the builder's (e.g. loaded offline by ``scripts/build-base-images``) are handed the
other way once.

When SpaceHub itself is not root, podman is rootless already and builds as SpaceHub's user; `find_build_user`
answers None.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from spacehub.runtime import sandbox

MIN_SUBORDINATE_IDS = 65536  # the ids of an ordinary image (nobody is 65534)
RUNTIME_ROOT = Path("/run")


class BuildUserUnavailable(Exception):
    """Why builds cannot run as the build user (the message says what to do)."""


@dataclass(frozen=True)
class BuildUser:
    name: str
    uid: int
    gid: int
    home: Path
    subuids: tuple[int, int]  # first id, count
    subgids: tuple[int, int]

    @property
    def runtime_dir(self) -> Path:
        """XDG_RUNTIME_DIR of its podman (locks, the pause process): on /run, so that a reboot clears it."""
        return RUNTIME_ROOT / f"{self.name}-{self.uid}"

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        keep = {k: v for k, v in base.items() if k not in ("HOME", "TMPDIR", "XDG_RUNTIME_DIR", "USER", "LOGNAME")}
        return keep | {
            "HOME": str(self.home),
            "USER": self.name,
            "LOGNAME": self.name,
            "XDG_RUNTIME_DIR": str(self.runtime_dir),
            "TMPDIR": str(self.home / "tmp"),
        }

    def command(self, cmd: Sequence[str]) -> list[str]:
        """``cmd`` run as this user, with no supplementary group (setpriv, from util-linux)."""
        setpriv = shutil.which("setpriv") or "setpriv"
        return [setpriv, f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", "--", *cmd]

    def prepare(self) -> None:
        """Its runtime folder and temporary folder exist and are its own (0700)."""
        for folder in (self.runtime_dir, self.home / "tmp", self.home / "contexts"):
            folder.mkdir(parents=True, exist_ok=True)
            os.chown(folder, self.uid, self.gid)
            os.chmod(folder, 0o700)

    @contextlib.contextmanager
    def workspace(self) -> Iterator[Path]:
        """A fresh 0700 folder of this user's, for one build's context, secrets and image archive; removed after."""
        folder = Path(tempfile.mkdtemp(prefix="build-", dir=self.home / "contexts"))
        try:
            os.chown(folder, self.uid, self.gid)
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def give(self, path: Path) -> None:
        """Hand ``path`` (and what is in it) to this user."""
        os.chown(path, self.uid, self.gid)
        for root, dirs, files in os.walk(path):
            for entry in (*dirs, *files):
                os.lchown(os.path.join(root, entry), self.uid, self.gid)


def subordinate_ranges(path: Path, name: str, uid: int) -> list[tuple[int, int]]:
    """The ranges ``/etc/subuid`` (or subgid) gives ``name`` (or its number), as (first, count); podman maps them
    all."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        parts = line.strip().split(":")
        if len(parts) != 3 or parts[0] not in (name, str(uid)):
            continue
        with contextlib.suppress(ValueError):
            out.append((int(parts[1]), int(parts[2])))
    return out


def overlaps_sandbox(first: int, count: int) -> bool:
    """Whether ids first..first+count-1 meet the sandboxed Spaces' host uids."""
    lo, hi = sandbox.HOST_UID_BASE, sandbox.HOST_UID_BASE + sandbox.HOST_UID_SPAN
    return first < hi and lo < first + count


def find_build_user(name: str, etc: Path = Path("/etc")) -> BuildUser | None:
    """The build user when SpaceHub is root, None when it is not (its podman is rootless already). Raises:
    BuildUserUnavailable with what is missing and how to fix it."""
    if os.geteuid() != 0:
        return None
    fix = "run scripts/setup-build-user as root (or name another user in runtime.build_user)"
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise BuildUserUnavailable(f"the build user {name!r} does not exist: {fix}") from None
    if entry.pw_uid == 0:
        raise BuildUserUnavailable(f"the build user {name!r} is root: name an unprivileged user in runtime.build_user")
    ranges = []
    for file in ("subuid", "subgid"):
        got = subordinate_ranges(etc / file, name, entry.pw_uid)
        if not any(count >= MIN_SUBORDINATE_IDS for _, count in got):
            raise BuildUserUnavailable(
                f"the build user {name!r} has no range of {MIN_SUBORDINATE_IDS} subordinate ids in /etc/{file}: {fix}"
            )
        for first, count in got:
            if overlaps_sandbox(first, count):
                lo, hi = sandbox.HOST_UID_BASE, sandbox.HOST_UID_BASE + sandbox.HOST_UID_SPAN - 1
                raise BuildUserUnavailable(
                    f"the subordinate ids of {name!r} in /etc/{file} ({first}-{first + count - 1}) overlap the host "
                    f"uids of sandboxed Spaces ({lo}-{hi}): {fix}"
                )
        ranges.append(max(got, key=lambda r: r[1]))
    if not shutil.which("newuidmap") or not shutil.which("newgidmap"):
        raise BuildUserUnavailable("rootless builds need newuidmap and newgidmap: apt-get install uidmap")
    home = Path(entry.pw_dir)
    if not home.is_dir() or home.stat().st_uid != entry.pw_uid:
        raise BuildUserUnavailable(f"the build user {name!r} has no home folder of its own ({home}): {fix}")
    return BuildUser(name, entry.pw_uid, entry.pw_gid, home, ranges[0], ranges[1])


def quiet(
    cmd: Sequence[str], env: Mapping[str, str], timeout: float = 600.0, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` quietly (in ``cwd``: a command run as the build user must not start in a folder closed to it)."""
    try:
        return subprocess.run(
            list(cmd), env=dict(env), capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return subprocess.CompletedProcess(list(cmd), 1, "", str(e))


def hand_over(
    engine: list[str],
    image: str,
    sender: BuildUser | None,
    receiver: BuildUser | None,
    env: Mapping[str, str],
    folder: Path,
    log: Callable[[str], None],
) -> None:
    """Copy ``image`` from one store to another (``None`` is root's) through an archive in ``folder`` (the build
    user's). Raises: RuntimeError with the engine's message."""
    archive = folder / "image.tar"
    user = sender or receiver
    assert user is not None

    def run(who: BuildUser | None, args: list[str]) -> None:
        cmd = [*engine, *args]
        done = quiet(who.command(cmd) if who else cmd, who.env(env) if who else env, cwd=folder)
        if done.returncode != 0:
            raise RuntimeError((done.stderr.strip().splitlines() or [f"{' '.join(args[:1])} failed"])[-1])

    run(sender, ["save", "-o", str(archive), image])
    if sender is None:
        os.chown(archive, user.uid, user.gid)
    run(receiver, ["load", "-q", "-i", str(archive)])
    archive.unlink(missing_ok=True)
    log(f"Image {image} handed to {'root' if receiver is None else receiver.name}'s store")


def seed_bases(
    engine: list[str],
    user: BuildUser,
    images: Sequence[str],
    env: Mapping[str, str],
    folder: Path,
    log: Callable[[str], None],
) -> None:
    """Base images that root's store has and the build user's has not are copied to it (offline machines load
    them as root); the others the build pulls as usual."""
    for image in images:
        if quiet(user.command([*engine, "image", "exists", image]), user.env(env), cwd=user.home).returncode == 0:
            continue
        if quiet([*engine, "image", "exists", image], env).returncode != 0:
            continue
        try:
            hand_over(engine, image, None, user, env, folder, log)
        except RuntimeError as e:
            log(f"Could not copy the base image {image} to the build user's store ({e}); the build will pull it")


def remove_image(engine: list[str], user: BuildUser, image: str, env: Mapping[str, str]) -> None:
    quiet(user.command([*engine, "rmi", "-f", image]), user.env(env), timeout=60, cwd=user.home)
