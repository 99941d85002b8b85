"""Commit folders (settings.tmp_dir/commit-*): a crash's are removed at start-up, never one a living process uses."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from spacehub.services import commits


def test_a_folder_in_use_is_kept_and_a_dead_process_folder_removed(tmp_path: Path) -> None:
    # a process that took a commit folder and died without cleaning up (as SIGKILL leaves it)
    code = ("import os, sys; from pathlib import Path; from spacehub.services import commits\n"
            "with commits.commit_folder(Path(sys.argv[1])) as d:\n"
            "    (d / 'str-1').write_bytes(b'x' * 100); print(d.name, flush=True); os._exit(0)")  # fmt: skip
    dead = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    dead_name = dead.stdout.strip()
    assert (tmp_path / dead_name / "str-1").exists()
    with commits.commit_folder(tmp_path) as live:  # a commit under way in this process
        (live / "str-2").write_bytes(b"y")
        assert commits.remove_leftover_folders(tmp_path) == [dead_name]
        assert (live / "str-2").read_bytes() == b"y"
    assert not (tmp_path / dead_name).exists()
    assert not live.exists()  # removed when its commit ended
    other = tmp_path / "stage-abc"  # not a commit folder: not touched
    other.write_bytes(b"z")
    assert commits.remove_leftover_folders(tmp_path) == []
    assert other.exists()


def test_a_folder_without_its_lock_is_kept_while_young(tmp_path: Path) -> None:
    """Between its creation and its lock a folder has no lock file: young, it may be under way; old, a crash left it."""
    young = tmp_path / "commit-young"
    young.mkdir()
    old = tmp_path / "commit-old"
    old.mkdir()
    past = time.time() - 3600
    os.utime(old, (past, past))
    assert commits.remove_leftover_folders(tmp_path) == ["commit-old"]
    assert young.exists() and not old.exists()
