"""Persistent storage images and folders on this machine (root only for images: loop devices and mount)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from spacehub.runtime.backends import local_disks as disks
from spacehub.runtime.backends.base import BuildFailed

NAME = "0123456789abcdef01234567-k1"
MIB = 2**20


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    r = tmp_path / "storage"
    yield r
    disks.unmount_all(tmp_path)  # nothing stays mounted (the loop devices go with their mounts)


@pytest.fixture
def images(root: Path) -> Path:
    why = disks.images_supported(root)
    if why is not None:
        pytest.skip(f"images cannot be mounted here: {why}")
    return root


def fill(path: Path, size: int) -> None:
    with path.open("wb") as f:
        f.write(b"x" * size)
        f.flush()
        os.fsync(f.fileno())


def test_an_image_enforces_its_size_and_keeps_its_data_across_mounts(images: Path) -> None:
    ready = disks.prepare(images, NAME, 32 * MIB, disks.IMAGE, lambda: False)
    assert ready.mode == disks.IMAGE and os.path.ismount(ready.path)
    assert (images / f"{NAME}.img").stat().st_size == 32 * MIB
    assert (images / f"{NAME}.img").stat().st_blocks * 512 < 8 * MIB  # sparse: costs what is written
    fill(ready.path / "a", 4 * MIB)
    with pytest.raises(OSError, match="No space left on device"):
        fill(ready.path / "b", 40 * MIB)
    used = disks.usage(images, NAME)
    assert used is not None and used.total is not None and used.total <= 32 * MIB and used.used >= 4 * MIB
    disks.unmount_all(images)
    assert disks.usage(images, NAME) is None  # not mounted: nothing to measure
    again = disks.prepare(images, NAME, 32 * MIB, disks.FOLDER, lambda: False)  # an image stays an image
    assert again.mode == disks.IMAGE and (again.path / "a").stat().st_size == 4 * MIB


def test_growing_waits_until_nothing_uses_the_image(images: Path) -> None:
    ready = disks.prepare(images, NAME, 32 * MIB, disks.IMAGE, lambda: False)
    fill(ready.path / "a", MIB)
    busy = disks.prepare(images, NAME, 64 * MIB, disks.IMAGE, lambda: True)
    assert busy.note and "grows" in busy.note and disks.image_size(images, NAME) == 32 * MIB
    grown = disks.prepare(images, NAME, 64 * MIB, disks.IMAGE, lambda: False)
    assert grown.note is None and disks.image_size(images, NAME) == 64 * MIB
    used = disks.usage(images, NAME)
    assert used is not None and used.total is not None and used.total > 48 * MIB
    assert (grown.path / "a").stat().st_size == MIB
    fill(grown.path / "b", 40 * MIB)  # did not fit before


def test_remove_deletes_the_data_for_good(images: Path) -> None:
    ready = disks.prepare(images, NAME, 32 * MIB, disks.IMAGE, lambda: False)
    fill(ready.path / "a", MIB)
    other = "0123456789abcdef01234567-k2"
    disks.prepare(images, other, None, disks.FOLDER, lambda: False)
    assert disks.names(images) == {NAME, other}
    disks.remove(images, NAME)
    assert not os.path.ismount(images / NAME)
    assert not (images / NAME).exists() and not (images / f"{NAME}.img").exists()
    assert disks.names(images) == {other}
    disks.remove(images, "../../etc")  # not a storage name: ignored
    fresh = disks.prepare(images, NAME, 32 * MIB, disks.IMAGE, lambda: False)
    assert sorted(p.name for p in fresh.path.iterdir()) == ["lost+found"]


def test_a_folder_is_measured_by_walking_it(root: Path) -> None:
    ready = disks.prepare(root, NAME, 32 * MIB, disks.FOLDER, lambda: False)
    assert ready.mode == disks.FOLDER and not os.path.ismount(ready.path)
    fill(ready.path / "a", 3 * MIB)
    (ready.path / "sub").mkdir()
    fill(ready.path / "sub" / "b", MIB)
    os.link(ready.path / "a", ready.path / "sub" / "a-again")  # counted once
    (ready.path / "loop").symlink_to(ready.path)  # not followed
    used = disks.usage(root, NAME)
    assert used is not None and used.total is None and 4 * MIB <= used.used < 4 * MIB + 64 * 1024


def test_image_mode_is_refused_clearly_where_images_cannot_be_used(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(disks._probed, root.resolve(), "mounting an image needs root")
    assert disks.choose_mode("auto", root) == (disks.FOLDER, "mounting an image needs root")
    assert disks.choose_mode("monitor", root)[0] == disks.FOLDER
    with pytest.raises(BuildFailed, match="needs root"):
        disks.choose_mode("image", root)
