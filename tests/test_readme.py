"""README's first steps run as written (issue 11): each command of its "First steps" block, against a live server,
with only what a reader would change (the server's address and the token the previous command printed)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Server

README = Path(__file__).resolve().parent.parent / "README.md"
VENV_BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow  # runs the client and git in subprocesses


def first_steps() -> list[str]:
    block = re.search(r"## First steps\n\n```bash\n(.*?)```", README.read_text(), re.S)
    assert block is not None, "README.md has a First steps block"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_every_python_line_uses_the_installed_client() -> None:
    """`make serve` installs the client in .venv: a bare `python` would not have it (ModuleNotFoundError)."""
    lines = [line for line in first_steps() if re.search(r"(^|/)python3? ", line)]
    assert lines and all(line.startswith(".venv/bin/python -c ") for line in lines), lines


def test_the_first_steps_run_as_written(start_hub: Callable[..., Server], tmp_path: Path) -> None:
    server = start_hub()
    host = server.url.removeprefix("http://")
    env = {**os.environ, "SPACEHUB_RUNTIME__BACKEND": "none"}
    printed = ""
    ran = []
    for line in first_steps():
        words = shlex.split(line)
        if words[0] in ("make", "curl"):  # the server is the fixture's; the proxy needs a runtime (tests/e2e)
            continue
        if words[0] == "export":
            for word in words[1:]:
                name, _, value = word.partition("=")
                env[name] = {"HF_ENDPOINT": server.url, "HF_TOKEN": printed.strip().splitlines()[-1]}.get(name, value)
            continue
        if words[0] == ".venv/bin/spacehub":
            cmd = [str(VENV_BIN / "spacehub"), *words[1:], "--data-dir", str(server.data_dir)]
        elif words[0] == ".venv/bin/python":
            cmd = [str(VENV_BIN / "python"), *words[1:]]
        elif words[0] == "git":
            cmd = [w.replace("127.0.0.1:8000", host).replace("$HF_TOKEN", env["HF_TOKEN"]) for w in words]
        else:
            raise AssertionError(f"a first step this test does not know: {line}")
        r = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"{line}\n{r.stdout}\n{r.stderr}"
        printed = r.stdout
        ran.append(printed.strip() if "whoami" in line else words[0])
    assert ran.count(".venv/bin/python") == 1 and "alice" in ran and "git" in ran  # whoami printed the user
    assert (tmp_path / "demo" / "README.md").is_file()  # the clone of the Space the client created
