"""Persistent storage of local Spaces: one sparse ext4 image per Space, loop-mounted on the host, so that a tier's
size is a real limit (a write past it fails with "No space left on device"); where images cannot be mounted (not
root, no loop device, no ``mkfs.ext4``), a plain folder whose usage the storage monitor measures.

Layout under ``root`` (``{data_dir}/storage``)::

    <name>.img     the image: a sparse file of the tier's size. Disk is used only as data is written, and given back
                   when files are deleted (mounted with ``discard``, which punches holes in the file).
    <name>/        its mount point on the host (the app's /data is a bind mount of it), or the plain folder
    .locks/<name>  one flock per storage: creating, growing, mounting and removing it never interleave

``<name>`` is ``<space id>-<key>``; the key is new after each deletion, so deleted data is never seen again. An image
is mounted once on the host and stays mounted (across SpaceHub restarts too); every instance of the Space binds it.

Growing (a tier upgrade) is done offline: ``resize2fs`` on a mounted ext4 needs CAP_SYS_RESOURCE, which SpaceHub may
not have (this test machine's root does not), so the image is unmounted, checked and grown while no instance uses it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from spacehub.runtime.backends.base import BuildFailed
from spacehub.runtime.backends.local_build import file_lock

IMAGE, FOLDER = "image", "folder"
NAME_RE = re.compile(r"^[0-9a-f]{24}-[0-9a-z]{1,16}$")  # <space id>-<key>: what `names` and `remove` manage
SAFE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
MKFS = ["mkfs.ext4", "-q", "-F", "-m", "0", "-L", "spacehub-data"]
MKFS += ["-E", "nodiscard,lazy_itable_init=1,lazy_journal_init=1"]  # writes ~16 MB for 1 TB, in 0.1 s
MOUNT_OPTIONS = "loop,discard,noatime,noinit_itable"  # inode tables of a sparse file read as zeros: no need to init
TOOLS = ("mkfs.ext4", "mount", "umount", "e2fsck", "resize2fs")
_probed: dict[Path, str | None] = {}


@dataclass(frozen=True)
class Prepared:
    path: Path  # what the app sees at /data
    mode: str  # image | folder
    note: str | None = None  # something the user should know (a grow that has to wait)


@dataclass(frozen=True)
class Usage:
    used: int  # bytes
    total: int | None  # the filesystem's size (image), None for a folder
    available: int | None


def _run(cmd: list[str], ok: tuple[int, ...] = (0,)) -> None:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={"PATH": os.environ.get("PATH", "")})
    if out.returncode not in ok:
        raise OSError(f"{' '.join(cmd[:2])}… failed ({out.returncode}): {(out.stderr or out.stdout).strip()[-500:]}")


def images_supported(root: Path) -> str | None:
    """None when loop-mounted images work here, else why not. Tried once per root with a real 16 MiB image."""
    root = root.resolve()
    if root not in _probed:
        _probed[root] = _probe(root)
    return _probed[root]


def _probe(root: Path) -> str | None:
    if os.geteuid() != 0:
        return "mounting an image needs root"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return f"{', '.join(missing)} not installed"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".probe-") as tmp:
        img, mnt = Path(tmp) / "probe.img", Path(tmp) / "mnt"
        mnt.mkdir()
        try:
            _make_image(img, 16 * 2**20)
            _mount(img, mnt)
        except OSError as e:
            return f"cannot mount an image here: {e}"
        try:
            _run(["umount", str(mnt)])
        except OSError:
            _detach(mnt)
    return None


def choose_mode(setting: str, root: Path) -> tuple[str, str | None]:
    """The mode for new storage (``setting`` is runtime.storage_enforcement) and, for a folder, why no image."""
    if setting == "monitor":
        return FOLDER, "runtime.storage_enforcement is monitor"
    why = images_supported(root)
    if why is None:
        return IMAGE, None
    if setting == "image":
        raise BuildFailed(f"The Space's storage cannot be created: {why} (runtime.storage_enforcement is image)")
    return FOLDER, why


def prepare(root: Path, name: str, limit: int | None, mode: str, busy: Callable[[], bool]) -> Prepared:
    """Make the storage ``name`` ready to be bound at /data: create it (as ``mode`` says, unless it exists already:
    existing data keeps its form), mount its image and grow it to ``limit`` when nothing (``busy``) uses it.
    Raises: BuildFailed."""
    if not SAFE_NAME_RE.match(name):
        raise BuildFailed(f"invalid storage name {name!r}")
    path, img = root / name, root / f"{name}.img"
    with file_lock(root / ".locks" / name):
        try:
            if not img.exists() and (path.exists() or mode == FOLDER):
                path.mkdir(parents=True, exist_ok=True)
                return Prepared(path, FOLDER)
            return _prepare_image(img, path, limit, busy)
        except OSError as e:
            raise BuildFailed(f"The Space's storage could not be prepared: {e}") from e


def _prepare_image(img: Path, path: Path, limit: int | None, busy: Callable[[], bool]) -> Prepared:
    note = None
    if not img.exists():  # the image first: a mount point without an image would be taken for a folder
        tmp = img.with_name(img.name + ".tmp")
        _make_image(tmp, limit or 20 * 10**9)
        tmp.rename(img)
    elif limit is not None and img.stat().st_size < limit:
        if busy():
            note = f"the storage grows to {limit} bytes when no instance of the Space uses it (next restart)"
        else:
            if os.path.ismount(path):
                _run(["umount", str(path)])
            if _attached(img):  # still mounted somewhere (another mount namespace): growing would corrupt it
                note = f"the storage grows to {limit} bytes when nothing has it mounted (next restart)"
            else:
                os.truncate(img, limit)
                _run(["e2fsck", "-f", "-p", str(img)], ok=(0, 1))
                _run(["resize2fs", str(img)])
    path.mkdir(parents=True, exist_ok=True)
    if not os.path.ismount(path):
        _mount(img, path)
    return Prepared(path, IMAGE, note)


def _attached(img: Path, wait: float = 2.0) -> bool:
    """A loop device still holds ``img`` (after an unmount, one goes once its last user has let go)."""
    deadline = time.monotonic() + wait
    while True:
        held = False
        for backing in Path("/sys/block").glob("loop*/loop/backing_file"):
            with contextlib.suppress(OSError):
                held = held or backing.read_text().strip().removesuffix(" (deleted)") == str(img.resolve())
        if not held or time.monotonic() > deadline:
            return held
        time.sleep(0.05)


def _make_image(img: Path, size: int) -> None:
    with img.open("wb") as f:
        f.truncate(size)
    try:
        _run([*MKFS, str(img)])
    except OSError:
        img.unlink(missing_ok=True)
        raise


def _mount(img: Path, path: Path) -> None:
    _run(["mount", "-t", "ext4", "-o", MOUNT_OPTIONS, str(img), str(path)])


def _detach(path: Path) -> None:
    """Unmount lazily: gone from the host at once; instances that bound it keep their view until they stop."""
    _run(["umount", "-l", str(path)])


def image_size(root: Path, name: str) -> int | None:
    """The size of the storage's image, None when it has none (a folder, or not created yet)."""
    try:
        return (root / f"{name}.img").stat().st_size
    except FileNotFoundError:
        return None


def usage(root: Path, name: str) -> Usage | None:
    """What the storage holds: the filesystem's counts for a mounted image, a walk of the tree (``du``) for a
    folder; None when it does not exist (yet)."""
    path = root / name
    if os.path.ismount(path):
        st = os.statvfs(path)
        return Usage((st.f_blocks - st.f_bfree) * st.f_frsize, st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize)
    if not path.is_dir() or (root / f"{name}.img").exists():
        return None
    return Usage(du(path), None, None)


def du(path: Path) -> int:
    """Bytes of disk the tree under ``path`` uses (allocated blocks, each inode once, symlinks not followed)."""
    total, seen = 0, set()
    stack = [str(path)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for e in entries:
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
            if e.is_dir(follow_symlinks=False):
                stack.append(e.path)
    return total


def names(root: Path) -> set[str]:
    """Every storage under ``root`` (images and folders)."""
    if not root.is_dir():
        return set()
    found = {p.name.removesuffix(".img") for p in root.iterdir()}
    return {n for n in found if NAME_RE.match(n)}


def remove(root: Path, name: str) -> None:
    """Delete the storage for good: unmount its image from the host, delete the image and the folder. Idempotent."""
    if not NAME_RE.match(name):
        return
    path, img = root / name, root / f"{name}.img"
    with file_lock(root / ".locks" / name):
        if os.path.ismount(path):
            _detach(path)
        img.unlink(missing_ok=True)
        img.with_name(img.name + ".tmp").unlink(missing_ok=True)
        shutil.rmtree(path, ignore_errors=True)
    (root / ".locks" / name).unlink(missing_ok=True)


def unmount_all(root: Path) -> list[str]:
    """Unmount every mount under ``root`` (tests and operators clearing a data dir); answers what was unmounted."""
    prefix = str(root.resolve()) + "/"
    done = []
    with open("/proc/self/mounts") as f:
        points = [line.split()[1].replace("\\040", " ") for line in f]
    for point in sorted(points, reverse=True):  # deepest first
        if point.startswith(prefix):
            try:
                _detach(Path(point))
                done.append(point)
            except OSError:
                continue
    return done
