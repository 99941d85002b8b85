"""Fixtures for driving the real ``git`` and ``git-lfs`` binaries against the live server: an isolated HOME and
global config (no prompts, no credential helpers, no user config leaking in), and small helpers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

Run = subprocess.CompletedProcess[str]
PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}

if shutil.which("git-lfs") is None:  # scripts/install-system-deps installs it
    pytest.skip("git-lfs is not installed (run scripts/install-system-deps)", allow_module_level=True)


@dataclass
class Git:
    env: dict[str, str]
    tmp: Path

    def run(self, *args: str, cwd: Path | None = None, check: bool = True, **env: str) -> Run:
        """Run ``git *args``; on failure (with ``check``) the assertion shows git's output."""
        out = subprocess.run(
            ["git", *args], cwd=cwd, env={**self.env, **env}, capture_output=True, text=True, timeout=120
        )
        if check:
            assert out.returncode == 0, f"git {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}"
        return out

    def clone(self, url: str, name: str, **env: str) -> Path:
        """Clone ``url`` into a fresh folder, with a committer identity configured in the clone."""
        dest = self.tmp / name
        self.run("clone", url, str(dest), **env)
        self.run("config", "user.name", "Alice Tester", cwd=dest)
        self.run("config", "user.email", "alice@example.com", cwd=dest)
        return dest

    def commit_file(self, repo: Path, path: str, data: bytes | str, message: str) -> str:
        f = repo / path
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(data.encode() if isinstance(data, str) else data)
        self.run("add", path, cwd=repo)
        self.run("commit", "-q", "-m", message, cwd=repo)
        return self.run("rev-parse", "HEAD", cwd=repo).stdout.strip()


@pytest.fixture(scope="session")
def git_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment in which git never prompts and reads only our own global config (with git-lfs's filters)."""
    home = tmp_path_factory.mktemp("git-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        GIT_CONFIG_GLOBAL=str(home / ".gitconfig"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS="",
        SSH_ASKPASS="",
        GCM_INTERACTIVE="never",
        GIT_LFS_SKIP_PUSH="0",
    )
    for key, value in (
        ("init.defaultBranch", "main"),
        ("credential.helper", ""),
        ("advice.detachedHead", "false"),
        ("protocol.version", "2"),
    ):
        subprocess.run(["git", "config", "--global", key, value], env=env, check=True)
    subprocess.run(["git", "lfs", "install", "--skip-repo"], env=env, check=True, capture_output=True)
    return env


@pytest.fixture
def git(git_env: dict[str, str], tmp_path: Path) -> Git:
    return Git(git_env, tmp_path)


def remote(base: str, repo_type: str, repo_id: str, token: str | None = None, suffix: str = "") -> str:
    """``http://[user:TOKEN@]host/{prefix}{repo_id}{suffix}``: the URL git uses, with the token as password."""
    u = urlsplit(base)
    auth = f"someone:{token}@" if token else ""
    return f"{u.scheme}://{auth}{u.netloc}/{PREFIX[repo_type]}{repo_id}{suffix}"


@pytest.fixture
def url() -> Any:
    return remote


@pytest.fixture(scope="module")
def small_server(server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A second server whose request limit (and so largest pushable file) is 1 MB."""
    root = sys.modules[type(server).__module__]  # tests/conftest.py (``import conftest`` would be this file)
    srv = root.start_server(
        tmp_path_factory.mktemp("small") / "data", {"SPACEHUB_STORAGE__MAX_REQUEST_BYTES": "1000000"}
    )
    yield srv
    root.stop_server(srv)
