"""`GitStore.branch_head`: a branch's commit read from its loose ref file (no repository opened), and through
libgit2 when the ref is packed (as `git pack-refs` or `git gc` leaves it); never a path outside refs/heads."""

from __future__ import annotations

import subprocess
from pathlib import Path

from spacehub.storage.git import Change, GitStore


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
