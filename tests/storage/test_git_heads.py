"""`GitStore.branch_head`: a branch's commit read from its loose ref file (no repository opened), and through
libgit2 when the ref is packed (as `git pack-refs` or `git gc` leaves it); never a path outside refs/heads."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from spacehub.errors import PreconditionFailed
from spacehub.storage.git import REPO_CONFIG, Change, GitStore, config_text


def test_loose_packed_missing_and_invalid(tmp_path: Path) -> None:
    git = GitStore(tmp_path / "repos")
    git.init("r1")
    first = git.commit("r1", "refs/heads/main", None, [Change("a.txt", git.write_blob("r1", b"a"))], "one", "a", "a@x")
    assert (git.path("r1") / "refs/heads/main").is_file()
    assert git.branch_head("r1", "main") == first == git.resolve("r1", "main")
    subprocess.run(["git", "-C", str(git.path("r1")), "pack-refs", "--all"], check=True)
    assert not (git.path("r1") / "refs/heads/main").exists()
    assert git.branch_head("r1", "main") == first  # packed: through libgit2
    second = git.commit("r1", "refs/heads/main", first, [Change("b.txt", git.write_blob("r1", b"b"))], "two", "a",
                        "a@x")  # fmt: skip
    assert git.branch_head("r1", "main") == second  # a loose ref again, newer than the packed one
    assert git.branch_head("r1", "nope") is None
    (git.path("r1") / "refs/heads/broken").write_text("not a sha\n")
    assert git.branch_head("r1", "broken") is None  # not a valid ref either way
    assert git.branch_head("r1", "../../HEAD") is None and git.branch_head("r1", "a\x00b") is None
    git.init("empty")
    assert git.branch_head("empty", "main") is None


def test_a_new_repos_settings_are_written_in_one_go_and_read_back_by_git_and_libgit2(tmp_path: Path) -> None:
    hooks = tmp_path / 'ho"ok #s;x\\y'  # a comment sign, a quote and a backslash stay in the value
    store = GitStore(tmp_path / "repos", hooks_dir=hooks)
    store.init("r1")
    path = store.path("r1")
    for name, value in {**REPO_CONFIG, "core.hooksPath": str(hooks)}.items():
        got = subprocess.run(["git", "config", "--get", name], cwd=path, capture_output=True, text=True, check=True)
        assert got.stdout.rstrip("\n") == value, name
    assert store.open("r1").config["core.hooksPath"] == str(hooks)
    with pytest.raises(ValueError):
        config_text({"core.hooksPath": "a\nb"})
    with pytest.raises(ValueError):
        config_text({"remote.origin.url": "x"})


def test_a_ref_is_created_once(tmp_path: Path) -> None:
    store = GitStore(tmp_path / "repos")
    store.init("r1")
    blob = store.write_blob("r1", b"x")
    sha = store.commit("r1", "refs/heads/main", None, [Change("x", blob)], "m", "a", "a@a")
    with pytest.raises(PreconditionFailed):
        store.commit("r1", "refs/heads/main", None, [Change("y", blob)], "m", "a", "a@a")
    assert store.branch_head("r1", "main") == sha
