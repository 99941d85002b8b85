"""The same scenario (tests/compat/scenario.py) run by older huggingface_hub clients, each in its own virtual
environment, against the session's live server; and by the test environment's own client (2.4.0).

The environments are made once and kept in ``.venv-compat/hf-<version>/`` (remade when their pins change). A file
lock per version makes their creation safe when pytest runs on several workers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from spacehub.runtime.backends.local_build import file_lock

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = Path(__file__).with_name("scenario.py")
VENVS = ROOT / ".venv-compat"

# What each client's environment installs. 0.21.4 predates the current requests/urllib3/fsspec majors: it gets the
# versions of its own time (all have wheels for Python 3.11), so that it installs and behaves the same every day.
PINS: dict[str, list[str]] = {
    "0.21.4": [
        "huggingface_hub==0.21.4",
        "requests==2.32.3",
        "urllib3==2.2.3",
        "charset-normalizer==3.3.2",
        "idna==3.6",
        "certifi==2024.2.2",
        "fsspec==2024.2.0",
        "filelock==3.13.1",
        "tqdm==4.66.2",
        "packaging==24.0",
        "pyyaml==6.0.1",
        "typing-extensions==4.10.0",
    ],
    # hf_xet installed, as for every real 1.33 user: upload_folder then takes the multi-commit pipeline.
    "1.33.0": ["huggingface_hub==1.33.0", "httpx==0.28.1", "hf-xet==1.8.0"],
}

# Every step of scenario.py, in order: each must report "ok" for every version.
STEPS = [
    "whoami",
    "whoami_unauthorized",
    "create_repos",
    "create_repo_exist_ok",
    "repo_info",
    "visibility",
    "list_repos",
    "upload_file",
    "readme_upload",
    "upload_folder",
    "create_commit",
    "delete_file_and_folder",
    "stale_parent_commit",
    "list_repo_tree",
    "get_paths_info",
    "branches_and_tags",
    "list_repo_commits",
    "exists_helpers",
    "hf_hub_download",
    "download_uses_cache",
    "file_metadata",
    "range_request",
    "download_errors",
    "snapshot_download",
    "delete_branch_and_tag",
    "private_repos",
    "orgs",
    "move_repo",
    "delete_repo",
    "upload_many_files",
    "lfs_upload",
    "lfs_tree",
    "lfs_download",
    "hub_calls",
    "list_filters",
    "lfs_per_repo",
    "pull_request",
    "likes",
    "webhooks",
]


def client_python(version: str) -> Path:
    """The python of a virtual environment with huggingface_hub==``version`` (made on first use, then reused)."""
    venv = VENVS / f"hf-{version}"
    python = venv / "bin" / "python"
    stamp = venv / ".spacehub-pins"
    wanted = "\n".join(PINS[version]) + "\n"
    with file_lock(VENVS / f"hf-{version}.lock"):
        if python.exists() and stamp.exists() and stamp.read_text() == wanted:
            return python
        shutil.rmtree(venv, ignore_errors=True)
        base = getattr(sys, "_base_executable", sys.executable)  # the interpreter the test venv was made from
        run([base, "-m", "venv", str(venv)], timeout=300)
        run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *PINS[version]], timeout=900)
        out = run([str(python), "-c", "import huggingface_hub as h; print(h.__version__)"], timeout=120)
        assert out.stdout.strip() == version, out.stdout
        stamp.write_text(wanted)
    return python


def run(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if out.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd[:4])}… exited {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        )
    return out


def run_scenario(python: Path | str, version: str, server: Any, alice: str, bob: str, org: str, workdir: Path) -> str:
    """Run scenario.py with ``python``; assert that every step passed. Returns the prefix of the repos it made."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "PYTHON", "VIRTUAL_ENV"))}
    env.update(SCENARIO_TOKEN=alice, SCENARIO_BOB_TOKEN=bob)
    prefix = f"v{version.replace('.', '-')}-{os.getpid()}"  # one run per version and server: unique repo names
    cmd = [str(python), str(SCENARIO), "--endpoint", server.url, "--org", org, "--prefix", prefix]
    proc = subprocess.run([*cmd, "--workdir", str(workdir)], capture_output=True, text=True, env=env, timeout=600)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    report = "\n".join(proc.stdout.splitlines()[-40:]) + "\n--- stderr ---\n" + proc.stderr[-6000:]
    assert proc.returncode == 0, f"huggingface_hub {version}: scenario failed\n{report}"
    assert lines[0]["step"] == "start" and lines[0]["version"] == version, report
    assert [line["step"] for line in lines[1:-1]] == STEPS, report
    assert all(line["status"] == "ok" for line in lines), report
    assert lines[-1] == {"step": "done", "status": "ok", "version": version, "steps": len(STEPS)}, report
    return prefix


def lfs_batch_calls(server: Any, prefix: str) -> list[str]:
    """The server's access-log lines of LFS batch calls for the scenario's model repo."""
    needle = f"POST /alice/{prefix}-model.git/info/lfs/objects/batch "
    return [line for line in server.log.read_text(errors="replace").splitlines() if needle in line]


@pytest.mark.slow
@pytest.mark.compat
@pytest.mark.parametrize("version", ["0.21.4", "1.33.0"])
def test_older_client_runs_the_scenario(
    version: str, server: Any, alice: str, bob: str, acme: str, tmp_path: Path
) -> None:
    prefix = run_scenario(client_python(version), version, server, alice, bob, acme, tmp_path / "work")
    calls = lfs_batch_calls(server, prefix)
    if version == "0.21.4":  # told "lfs" for *.bin (User-Agent sniffing): it went through the LFS batch API
        assert calls and all(" 200" in c for c in calls), calls
    else:  # told "regular": inline upload, never LFS (nor Xet)
        assert calls == []


def test_test_venv_client_runs_the_scenario(server: Any, alice: str, bob: str, acme: str, tmp_path: Path) -> None:
    import huggingface_hub

    prefix = run_scenario(sys.executable, huggingface_hub.__version__, server, alice, bob, acme, tmp_path / "work")
    assert lfs_batch_calls(server, prefix) == []
