"""`GitStore.commit_diff`: what a commit changed against its first parent, path by path, within its limits (a blob
over the size limit named, not diffed; a line budget, then a note; a cap on the paths listed), and entries that are
not plain files (a mode change, a gitlink whose commit is in no object store here)."""

from __future__ import annotations

from pathlib import Path

from spacehub.storage.git import EXEC_MODE, Change, GitStore

GITLINK = 0o160000


def commit(git: GitStore, parent: str | None, files: dict[str, bytes | None], mode: int | None = None) -> str:
    changes = [
        Change(path, None) if data is None else Change(path, git.write_blob("r", data), mode or 0o100644)
        for path, data in files.items()
    ]
    return git.commit("r", "refs/heads/main", parent, changes, "change", "alice", "alice@x")


def test_limits_and_odd_entries(tmp_path: Path) -> None:
    git = GitStore(tmp_path / "repos")
    git.init("r")
    first = commit(git, None, {"small.txt": b"a\nb", "big.txt": b"x" * 5000, "run.sh": b"echo hi\n"})
    diffs, total = git.commit_diff("r", first, max_blob=4096)
    by_path = {d.path: d for d in diffs}
    assert total == 3 and set(by_path) == {"small.txt", "big.txt", "run.sh"}
    assert by_path["big.txt"].skipped == "large" and by_path["big.txt"].hunks is None
    assert by_path["big.txt"].new_size == 5000 and by_path["big.txt"].status == "added"
    lines = by_path["small.txt"].hunks[0][1]
    assert [(x.origin, x.old, x.new, x.text) for x in lines] == [
        ("+", None, 1, "a"), ("+", None, 2, "b"), ("\\", None, None, "No newline at end of file")
    ]  # fmt: skip

    second = commit(git, first, {"run.sh": b"echo hi\n"}, mode=EXEC_MODE)  # only the mode changes
    (only,), _ = git.commit_diff("r", second)
    assert only.path == "run.sh" and only.status == "modified" and only.hunks == () and not only.skipped

    gitlink = git.commit("r", "refs/heads/main", second, [Change("vendor/lib", "ab" * 20, GITLINK)], "sub", "a", "a@x")
    (sub,), _ = git.commit_diff("r", gitlink)  # the commit it names is not here: no error, no size
    assert sub.path == "vendor/lib" and sub.status == "added" and sub.new_size == 0

    many = commit(git, gitlink, {f"f{i:02}.txt": f"{i}\n".encode() for i in range(12)})
    diffs, total = git.commit_diff("r", many, max_files=5, max_lines=3)
    assert total == 12 and len(diffs) == 5
    assert [d.skipped for d in diffs] == [None, None, None, "limit", "limit"]  # one line each, three lines in all
    assert all(len(d.hunks[0][1]) == 1 and not d.truncated for d in diffs[:3])
