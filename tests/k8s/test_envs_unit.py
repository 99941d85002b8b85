"""The environment cache's garbage collection without a cluster: which keys the cluster's pod specs mount
(`envs.keys_in_use`), and what the collection's program (`envs.GC_SCRIPT`, the Job's) removes from a real folder:
an environment neither in use nor used within the days, never one in use or used lately, a kubelet's empty subPath
folder, a build's scratch older than a build may run, a collection's trash; and a build's prepare container marks the
key it looks for as used (`manifests.PREPARE_SCRIPT`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from spacehub.runtime.backends.kubernetes import envs
from spacehub.runtime.backends.kubernetes import manifests as m

DAY = 86400.0
A, B, C, D, E, F = (f"{c}" * 32 for c in "abcdef")


def mount(key: str) -> dict[str, object]:
    return {"name": "envs", "mountPath": m.ENV_CACHE_PATH, "subPath": key, "readOnly": True}


def test_the_keys_in_use_are_the_subpaths_of_every_envs_mount_of_templates_and_pods() -> None:
    deployment = {
        "spec": {
            "replicas": 0,
            "template": {
                "spec": {  # asleep: its template still counts
                    "initContainers": [{"name": "install", "volumeMounts": [mount(A)]}],
                    "containers": [{"name": "app", "volumeMounts": [mount(A), {"name": "code", "mountPath": "/code"}]}],
                }
            },
        }
    }
    replica_set = {"spec": {"replicas": 0, "template": {"spec": {"containers": [{"volumeMounts": [mount(B)]}]}}}}
    pod = {"spec": {"containers": [{"volumeMounts": [mount(C)]}]}}
    build = {
        "spec": {
            "template": {
                "spec": {
                    "initContainers": [  # a build's root and scratch mounts are no key
                        {"volumeMounts": [{"name": "envs", "mountPath": m.ENVS_ROOT}]},
                        {
                            "volumeMounts": [
                                {"name": "envs", "mountPath": m.NEW_ENV_PATH, "subPathExpr": ".tmp/$(POD_NAME)"}
                            ]
                        },
                    ]
                }
            }
        }
    }
    other = {"spec": {"containers": [{"volumeMounts": [{"name": "data", "subPath": D}]}]}}  # not the cache
    assert envs.keys_in_use([deployment, replica_set, pod, build, other, {"spec": {}}, {}]) == {A, B, C}


def age(path: Path, days: float) -> None:
    t = time.time() - days * DAY
    os.utime(path, (t, t))


def env(root: Path, key: str, days: float) -> Path:
    """An environment a build kept ``days`` ago."""
    d = root / key
    (d / "site-packages").mkdir(parents=True)
    (d / "site-packages" / "six.py").write_text("")
    (d / ".complete").write_text("")
    for p in (d / "site-packages" / "six.py", d / "site-packages", d / ".complete", d):
        age(p, days)
    return d


def collect(root: Path, in_use: set[str], keep_days: float = 7, scratch: float = 5400,
            user: int | None = None) -> dict[str, object]:  # fmt: skip
    """Run the collection's program on ``root`` as the Job would (as ``user``: the app user's uid, from root)."""
    (root.parent / "in-use").write_text("".join(f"{k}\n" for k in in_use))
    report = root.parent / "report.json"
    report.write_text("")
    environ = {**os.environ, "SPACEHUB_ENVS": str(root), "SPACEHUB_IN_USE": str(root.parent / "in-use"),
               "SPACEHUB_KEEP_SECONDS": str(keep_days * DAY), "SPACEHUB_SCRATCH_SECONDS": str(scratch),
               "SPACEHUB_REPORT": str(report)}  # fmt: skip
    python = sys.executable
    if user is not None:
        os.chown(report, user, user)
        python = "/usr/bin/python3"  # the standard library is enough; this one any user may run
    run = subprocess.run([python, "-c", envs.GC_SCRIPT], env=environ, capture_output=True, text=True, check=True,
                         user=user, group=user)  # fmt: skip
    out = json.loads(report.read_text())
    out["log"] = run.stdout
    return out


def test_the_collection_removes_only_what_nothing_mounts_and_nothing_used_within_the_days(tmp_path: Path) -> None:
    root = tmp_path / "envs"
    root.mkdir()
    env(root, A, 30)  # in use (a Deployment's template), kept since long ago
    env(root, B, 8)  # unused for 8 days: goes
    env(root, C, 2)  # unused, kept 2 days ago: stays
    env(root, D, 30)  # kept long ago, but a build found it yesterday (its prepare touched the ledger): stays
    (root / ".used").mkdir()
    (root / ".used" / D).touch()
    age(root / ".used" / D, 1)
    (root / E).mkdir()  # an empty folder the kubelet made for a pod's subPath, long ago: goes
    age(root / E, 30)
    (root / ".tmp" / "build-x-abc").mkdir(parents=True)  # a build cut off before it published, 2 days ago
    (root / ".tmp" / "build-x-abc.key").write_text(F)
    (root / ".tmp" / "build-y-def").mkdir()  # a build under way
    for p in (root / ".tmp" / "build-x-abc", root / ".tmp" / "build-x-abc.key"):
        age(p, 2)
    (root / ".trash" / f"{F}.1").mkdir(parents=True)  # a collection cut off

    report = collect(root, {A})
    assert sorted(report["removed"]) == [B, E] and report["removed_count"] == 2, report  # type: ignore[arg-type]
    assert report["kept"] == 2 and report["scratch"] == 2, report
    assert f"removed environment {B}: unused for 8.0 days" in str(report["log"])
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == [A, C, D]
    assert (root / A / "site-packages" / "six.py").is_file() and (root / A / ".complete").is_file()
    assert [p.name for p in (root / ".tmp").iterdir()] == ["build-y-def"]
    assert not any((root / ".trash").iterdir())
    # the key in use is seen in use now: once nothing mounts it, it stays for the days
    assert time.time() - (root / ".used" / A).stat().st_mtime < 60
    report = collect(root, set())
    assert report["removed"] == [] and report["kept"] == 3, report
    # with no days to keep, everything nothing mounts goes
    report = collect(root, {C}, keep_days=0)
    assert sorted(report["removed"]) == [A, D], report  # type: ignore[arg-type]
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == [C]
    assert sorted(p.name for p in (root / ".used").iterdir()) == [C]  # the ledger of what is gone goes too


def test_a_folder_no_build_ever_wrote_is_left_alone() -> None:
    """A hostPath folder the kubelet made (root's) on a node where no build ran: the collection, as the app user,
    has nothing to do and writes nothing."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the folder is root's and the collection runs as the app user")
    base = Path(tempfile.mkdtemp(prefix="envs-gc-"))  # a folder uid 1000 may enter (pytest's are root's only)
    try:
        base.chmod(0o755)
        root = base / "envs"
        root.mkdir()
        env(root, B, 30)
        report = collect(root, set(), user=1000)
        assert report["removed"] == [] and "no environment is kept here" in str(report["log"])
        assert (root / B / ".complete").is_file() and not (root / ".used").exists()
    finally:
        shutil.rmtree(base)


def test_a_builds_prepare_marks_the_key_it_looks_for_as_used(tmp_path: Path) -> None:
    src, root = tmp_path / "code", tmp_path / "envs"
    src.mkdir()
    root.mkdir()
    (src / "requirements.txt").write_text("six\n")
    environ = {**os.environ, "SPACEHUB_CODE": str(src), "SPACEHUB_ENVS": str(root), "POD_NAME": "build-1",
               "SPACEHUB_IMAGE": "python:3.11-slim"}  # fmt: skip
    subprocess.run([sys.executable, "-c", m.PREPARE_SCRIPT], env=environ, check=True, capture_output=True)
    key = (root / ".tmp" / "build-1.key").read_text()
    assert time.time() - (root / ".used" / key).stat().st_mtime < 60
