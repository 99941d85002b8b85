"""LocalProcessBackend: what an app sees at /data (its Space's storage, with the tier's size enforced; else a scratch
folder of its own) and its volumes (repos mounted read-only), with real processes. Mounts need root."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pygit2
import pytest

from spacehub.runtime.backends.base import BuildFailed, VolumeMount
from spacehub.runtime.backends.local import LocalProcessBackend
from spacehub.runtime.backends.local_disks import images_supported, unmount_all
from tests.runtime.backends.conftest import README, SpaceRepo, build_spec, release_spec, wait_http

APP = (Path(__file__).resolve().parents[2] / "e2e" / "storage_app.py").read_text()
MIB = 2**20
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mount namespaces and loop devices need root")


@pytest.fixture
def storage_root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "storage"
    yield root
    unmount_all(tmp_path)


def started(backend: LocalProcessBackend, repo: SpaceRepo, tmp_path: Path, rid: str, **kw: object) -> str:
    """Start release ``rid`` of the storage app (built once as b1); answers its base URL."""
    if not backend.build_exists("b1"):
        sha = repo.commit({"app.py": APP, "README.md": README.format(sdk="gradio")})
        backend.build(build_spec(repo, sha), lambda line: None)
    ep = backend.start(release_spec(repo, release_id=rid, **kw))
    base = f"http://{ep.host}:{ep.port}"
    wait_http(base + "/")
    return base


def get(base: str, route: str, **params: str | int) -> str:
    return httpx.get(base + route, params=params, timeout=30).text


def test_storage_has_the_tiers_size_and_outlives_its_instances(
    backend: LocalProcessBackend, space_repo: SpaceRepo, tmp_path: Path, storage_root: Path
) -> None:
    if images_supported(storage_root) is not None:
        pytest.skip(str(images_supported(storage_root)))
    data = storage_root / "0123456789abcdef01234567-k1"
    one = started(backend, space_repo, tmp_path, "r1", storage=data.name, data_limit_bytes=32 * MIB)
    assert get(one, "/write", path="/data/keep.txt", text="kept") == "ok"
    assert get(one, "/write", path="/data/big", size=40 * MIB).startswith("error ENOSPC")
    assert get(one, "/env", name="SPACE_DATA_DIR") == "/data"
    launch = json.loads((backend.instances / "r1" / "launch.json").read_text())
    assert launch["storage"]["mode"] == "image" and launch["storage"]["limit"] == 32 * MIB
    # a second release meanwhile (zero-downtime restart) sees the same files; a bigger limit waits for a cold start
    two = started(backend, space_repo, tmp_path, "r2", storage=data.name, data_limit_bytes=64 * MIB)
    assert get(two, "/read", path="/data/keep.txt") == "kept"
    assert json.loads((backend.instances / "r2" / "launch.json").read_text())["storage"]["note"]
    backend.stop("r1")
    backend.stop("r2")
    three = started(backend, space_repo, tmp_path, "r3", storage=data.name, data_limit_bytes=64 * MIB)
    assert get(three, "/read", path="/data/keep.txt") == "kept"
    assert get(three, "/write", path="/data/big", size=40 * MIB) == "ok"  # grown while nothing used it
    assert not Path("/data/keep.txt").exists()


def test_without_storage_each_instance_has_a_scratch_data_of_its_own(
    backend: LocalProcessBackend, space_repo: SpaceRepo, tmp_path: Path
) -> None:
    one = started(backend, space_repo, tmp_path, "r1")
    assert get(one, "/write", path="/data/scratch.txt", text="mine") == "ok"
    two = started(backend, space_repo, tmp_path, "r2")
    assert get(two, "/read", path="/data/scratch.txt") == "<missing>"
    assert get(one, "/read", path="/data/scratch.txt") == "mine"
    assert get(one, "/env", name="SPACE_DATA_DIR") == "<unset>"
    assert not Path("/data/scratch.txt").exists()
    backend.stop("r1")
    assert not (backend.instances / "r1").exists()  # the scratch folder went with the instance


def model_repo(tmp_path: Path) -> tuple[SpaceRepo, str]:
    git_dir = tmp_path / "repos" / "model1.git"
    pygit2.init_repository(str(git_dir), bare=True, initial_head="main")
    repo = SpaceRepo(git_dir, tmp_path / "lfs", "model1")
    sha = repo.commit({"config.json": '{"n": 1}', "weights/readme.txt": "w"}, lfs={"weights/w.bin": b"\x00" * 2048})
    return repo, sha


def test_volumes_are_mounted_read_only(backend: LocalProcessBackend, space_repo: SpaceRepo, tmp_path: Path) -> None:
    _, sha = model_repo(tmp_path)
    whole = VolumeMount(f"{tmp_path}/mnt/model", "model1", sha)
    part = VolumeMount(f"{tmp_path}/mnt/weights", "model1", sha, "weights")
    base = started(backend, space_repo, tmp_path, "r1", volumes=(whole, part))
    assert get(base, "/read", path=f"{tmp_path}/mnt/model/config.json") == '{"n": 1}'
    assert json.loads(get(base, "/ls", path=f"{tmp_path}/mnt/weights")) == ["readme.txt", "w.bin"]
    assert get(base, "/write", path=f"{tmp_path}/mnt/model/x", text="no").startswith("error EROFS")
    assert not (tmp_path / "mnt" / "model" / "config.json").exists()  # bound for the app only
    checkout = backend.root / "volumes" / f"model1-{sha}"
    assert (checkout / "weights" / "w.bin").stat().st_nlink > 1  # an LFS file is a hard link to the blob store


def test_a_volume_that_cannot_be_mounted_fails_the_start(
    make_backend: Callable[..., LocalProcessBackend], space_repo: SpaceRepo, tmp_path: Path
) -> None:
    backend = make_backend()  # a host path in the way: a sandbox builds its own tree, where none is
    _, sha = model_repo(tmp_path)
    (tmp_path / "a-file").write_text("")
    bad = VolumeMount(f"{tmp_path}/a-file/model", "model1", sha)
    with pytest.raises(BuildFailed, match="could not mount the volume"):
        started(backend, space_repo, tmp_path, "r1", volumes=(bad,))
    no_folder = VolumeMount(f"{tmp_path}/m", "model1", sha, "nope")
    with pytest.raises(BuildFailed, match="not a folder"):
        started(backend, space_repo, tmp_path, "r2", volumes=(no_folder,))


def test_an_app_holds_no_other_spaces_storage(
    backend: LocalProcessBackend, space_repo: SpaceRepo, tmp_path: Path, storage_root: Path
) -> None:
    if images_supported(storage_root) is not None:
        pytest.skip(str(images_supported(storage_root)))
    other = storage_root / "0123456789abcdef01234567-k9"
    ours = storage_root / "0123456789abcdef01234567-k1"
    started(backend, space_repo, tmp_path, "r0", storage=other.name, data_limit_bytes=32 * MIB)  # mounts it on the host
    started(backend, space_repo, tmp_path, "r1", storage=ours.name, data_limit_bytes=32 * MIB)
    started(backend, space_repo, tmp_path, "r2")
    for rid in ("r1", "r2"):
        state = json.loads((backend.instances / rid / "state.json").read_text())
        # every process of the instance: the supervisor, and in a sandbox bwrap, the sandbox's init and the app
        procs = [state["supervisor_pid"], *descendants(state["supervisor_pid"])]
        views = [{line.split()[4] for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()} for pid in procs]
        for points in views:
            assert not {p for p in points if p.startswith(str(storage_root))}, points
        assert "/data" in views[-1]  # the app's


def descendants(pid: int) -> list[int]:
    """The processes below ``pid``, parents before children."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for kid in sorted(children.get(todo.pop(0), [])):
            out.append(kid)
            todo.append(kid)
    return out
