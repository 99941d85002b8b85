"""The `hf` command line of huggingface_hub 2.4.0 (the test environment's own, run as a subprocess, as a user types
it) against a live `spacehub serve` with the local runtime: `hf repos` (create, duplicate, settings, delete),
`hf upload` (also `--create-pr` by another user), `hf discussions list`, and `hf spaces` (wait, info, ls, variables,
secrets, settings, hardware, pause, restart, logs). `hf webhooks` has its own module (tests/compat)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import RepositoryNotFoundError

from tests.e2e.conftest import EXAMPLES, Hub, start_hub, stop_hub

pytestmark = pytest.mark.slow
HF = Path(sys.executable).with_name("hf")
SECRET = "cli-secret-value-8c1e4"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, uv_cache: Path) -> Iterator[Hub]:
    h = start_hub(tmp_path_factory.mktemp("e2e-hf-cli") / "data", uv_cache)
    yield h
    stop_hub(h)


def hf(hub: Hub, *args: str, token: str | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(
        HF_ENDPOINT=hub.url,
        HF_TOKEN=token or hub.alice,
        HF_HOME=str(hub.server.data_dir.parent / "hf-home"),
        HF_HUB_DISABLE_UPDATE_CHECK="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
    )
    out = subprocess.run([str(HF), *args], capture_output=True, text=True, env=env, timeout=300)
    if ok:
        assert out.returncode == 0, f"hf {' '.join(args)}: {out.returncode}\n{out.stdout}\n{out.stderr}"
    assert SECRET not in out.stdout + out.stderr  # a secret's value is never printed back
    return out


def as_json(out: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(out.stdout)


def static_folder(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "site"
    folder.mkdir(exist_ok=True)
    (folder / "README.md").write_text("---\ntitle: CLI\nsdk: static\n---\n")
    (folder / "index.html").write_text(f"<html><body>{text}</body></html>\n")
    return folder


def test_a_space_made_and_managed_with_hf_spaces(hub: Hub) -> None:
    repo_id = hub.name("cli")
    hf(hub, "repos", "create", repo_id, "--type", "space", "--space-sdk", "gradio")
    hf(hub, "upload", repo_id, str(EXAMPLES / "python-http"), ".", "--type", "space")  # a plain Python app
    hf(hub, "spaces", "wait", repo_id, "--timeout", "180s")
    hub.serves(repo_id, "python-http-v1")

    info = as_json(hf(hub, "spaces", "info", repo_id, "--json"))
    assert info["id"] == repo_id and info["sdk"] == "gradio", info
    listed = as_json(hf(hub, "spaces", "ls", "--author", "alice", "--json"))
    assert repo_id in {s["id"] for s in listed}, listed

    hf(hub, "spaces", "variables", "add", repo_id, "-e", "THEME=dark")
    variables = hf(hub, "spaces", "variables", "list", repo_id, "--json").stdout
    assert "THEME" in variables and "dark" in variables, variables
    hf(hub, "spaces", "secrets", "add", repo_id, "-s", f"API_KEY={SECRET}")
    secrets = hf(hub, "spaces", "secrets", "list", repo_id, "--json").stdout
    assert "API_KEY" in secrets, secrets  # the name, never the value (checked in `hf`)
    hf(hub, "spaces", "variables", "delete", repo_id, "THEME", "--yes")
    assert "THEME" not in hf(hub, "spaces", "variables", "list", repo_id, "--json").stdout

    hf(hub, "spaces", "settings", repo_id, "--sleep-time", "3600")
    assert hub.runtime(repo_id).sleep_time == 48 * 3600  # accepted; cpu-basic keeps its 48 h rule, as on the Hub
    flavors = hf(hub, "spaces", "hardware", "--json").stdout
    assert "cpu-basic" in flavors, flavors

    hf(hub, "spaces", "pause", repo_id)
    hub.wait(repo_id, "PAUSED", 60)
    hub.answers(repo_id, 503)
    hf(hub, "spaces", "restart", repo_id)
    hf(hub, "spaces", "wait", repo_id, "--timeout", "180s")
    hub.serves(repo_id, "python-http-v1")
    assert hf(hub, "spaces", "logs", repo_id, "--build").stdout.strip()


def test_hf_repos_duplicate_settings_and_delete(hub: Hub, tmp_path: Path) -> None:
    source = hub.name("cli-source")
    hf(hub, "repos", "create", source, "--type", "space", "--space-sdk", "static")
    hf(hub, "upload", source, str(static_folder(tmp_path, "the source")), ".", "--type", "space")
    copy = hub.name("cli-copy")
    hf(hub, "repos", "duplicate", source, copy, "--type", "space")
    hub.wait(copy, "RUNNING", 120)
    assert hub.api.space_info(copy).private is True  # a duplicate is private unless asked otherwise, as on the Hub
    assert httpx.get(hub.url + "/", headers={"host": hub.host(copy)}, timeout=30).status_code == 404
    assert "the source" in hub.get(copy, token=hub.alice).text  # its owner sees it
    hf(hub, "repos", "settings", copy, "--public", "--type", "space")
    assert hub.api.space_info(copy).private is False
    hub.serves(copy, "the source")  # anonymously now
    hf(hub, "repos", "delete", copy, "--type", "space", "--yes")
    with pytest.raises(RepositoryNotFoundError):
        hub.api.space_info(copy)


def test_hf_upload_create_pr_by_another_user_and_hf_discussions(hub: Hub, tmp_path: Path) -> None:
    repo_id = hub.name("cli-pr")
    hf(hub, "repos", "create", repo_id, "--type", "space", "--space-sdk", "static")
    hf(hub, "upload", repo_id, str(static_folder(tmp_path, "main")), ".", "--type", "space")
    bob = hub.server.user("bob")  # no write access to alice's Space: a pull request is how he proposes a change
    note = tmp_path / "notes.txt"
    note.write_text("a change from bob\n")
    out = hf(hub, "upload", repo_id, str(note), "notes.txt", "--type", "space", "--create-pr", token=bob)
    assert "Uploaded" in out.stdout and "/commit/" in out.stdout, out  # the commit's URL, as on the Hub
    denied = hf(hub, "upload", repo_id, str(note), "notes.txt", "--type", "space", token=bob, ok=False)
    assert denied.returncode != 0  # straight to main: refused
    listed = as_json(hf(hub, "discussions", "list", repo_id, "--type", "space", "--json"))
    (pr,) = listed
    assert pr["num"] == 1 and pr["is_pull_request"] and pr["author"] == "bob", pr
    files = HfApi(endpoint=hub.url, token=hub.alice).list_repo_files(repo_id, repo_type="space", revision="refs/pr/1")
    assert "notes.txt" in files
