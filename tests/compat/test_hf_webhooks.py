"""`hf webhooks …`: the hf command line of huggingface_hub 2.4.0 (the test environment's own, a subprocess) against a
live `spacehub serve`, with a real receiver on loopback (which this server allows: the operator setting
``webhooks.allow_private_addresses``): ls, info, create, update, enable, disable, delete, and what the receiver gets
in between."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi

from tests.conftest import Server, start_server, stop_server
from tests.webhook_receiver import Receiver, receiver

HF = Path(sys.executable).with_name("hf")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"SPACEHUB_WEBHOOKS__ALLOW_PRIVATE_ADDRESSES": "true", "SPACEHUB_WEBHOOKS__RETRY_BASE_SECONDS": "0.3"}
    srv = start_server(tmp_path_factory.mktemp("hf-webhooks") / "data", env=env)
    srv.user("alice")
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def rec() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def hf(server: Server, home: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(
        HF_ENDPOINT=server.url,
        HF_TOKEN=server.tokens["alice"],
        HF_HOME=str(home),
        HF_HUB_DISABLE_UPDATE_CHECK="1",
        HF_HUB_DISABLE_TELEMETRY="1",
    )
    out = subprocess.run([str(HF), "webhooks", *args], capture_output=True, text=True, env=env, timeout=120)
    if ok:
        assert out.returncode == 0, f"hf webhooks {' '.join(args)}: {out.returncode}\n{out.stdout}\n{out.stderr}"
    return out


def as_json(out: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(out.stdout)


def test_hf_webhooks_commands(live: Server, rec: Receiver, tmp_path: Path) -> None:
    api = HfApi(endpoint=live.url, token=live.tokens["alice"])
    api.create_repo("alice/cli-model")
    home = tmp_path / "hf-home"
    assert as_json(hf(live, home, "ls", "--format", "json")) == []

    made = hf(live, home, "create", "--url", rec.url + "/cli", "--watch", "user:alice", "--watch",
              "model:alice/cli-model", "--domain", "repo", "--secret", "cli-secret-9", "--format", "json")  # fmt: skip
    hook_id = as_json(made)["id"]
    [listed] = as_json(hf(live, home, "ls", "--format", "json"))
    assert listed["id"] == hook_id and listed["url"] == rec.url + "/cli" and listed["disabled"] is False
    assert listed["watched"] == ["user:alice", "model:alice/cli-model"] and listed["domains"] == ["repo"]
    info = as_json(hf(live, home, "info", hook_id, "--format", "json"))
    assert info["id"] == hook_id and info.get("secret") is None  # write-only
    assert "cli-secret-9" not in hf(live, home, "info", hook_id).stdout

    commit = api.upload_file(path_or_fileobj=b"hi", path_in_repo="hi.txt", repo_id="alice/cli-model")
    [got] = rec.wait_for("/cli", lambda g: len(g) == 1, what="the commit")
    assert got.scope == "repo.content" and got.body["updatedRefs"][0]["newSha"] == commit.oid
    assert got.headers["x-webhook-secret"] == "cli-secret-9" and got.body["webhook"]["id"] == hook_id

    # update: the URL changes, what it watches is kept (the CLI sends no --watch)
    hf(live, home, "update", hook_id, "--url", rec.url + "/cli2")
    info = as_json(hf(live, home, "info", hook_id, "--format", "json"))
    assert info["url"] == rec.url + "/cli2" and [w["name"] for w in info["watched"]] == ["alice", "alice/cli-model"]

    # disabled: nothing is sent; enabled again: sent
    hf(live, home, "disable", hook_id)
    assert as_json(hf(live, home, "ls", "--format", "json"))[0]["disabled"] is True
    api.upload_file(path_or_fileobj=b"2", path_in_repo="two.txt", repo_id="alice/cli-model")
    time.sleep(1.0)
    assert rec.at("/cli2") == []
    hf(live, home, "enable", hook_id)
    api.upload_file(path_or_fileobj=b"3", path_in_repo="three.txt", repo_id="alice/cli-model")
    [again] = rec.wait_for("/cli2", lambda g: len(g) == 1, what="after enable")
    assert again.body["updatedRefs"][0]["ref"] == "refs/heads/main"

    # refusals reach the user as the server's message, with a failing exit code
    bad = hf(live, home, "create", "--url", rec.url + "/x", "--watch", "bucket:alice/b", ok=False)
    assert bad.returncode != 0 and "Buckets are not supported" in bad.stdout + bad.stderr
    missing = hf(live, home, "info", "0" * 24, ok=False)
    assert missing.returncode != 0 and "not found" in (missing.stdout + missing.stderr).lower()

    hf(live, home, "delete", hook_id, "--yes")
    assert as_json(hf(live, home, "ls", "--format", "json")) == []


def test_a_git_push_is_announced_with_the_refs_it_moved(live: Server, rec: Receiver, tmp_path: Path) -> None:
    """A push (git's smart HTTP) is a repo.content event like an API commit: oldSha is the branch before the push
    (which may be several commits back), newSha after it; so are tags pushed and deleted."""
    token = live.tokens["alice"]
    api = HfApi(endpoint=live.url, token=token)
    api.create_repo("alice/pushed")
    before = api.model_info("alice/pushed").sha
    hook = api.create_webhook(url=rec.url + "/push", watched=[{"type": "model", "name": "alice/pushed"}])
    env = {"HOME": str(tmp_path), "GIT_TERMINAL_PROMPT": "0", "PATH": os.environ["PATH"], "GIT_CONFIG_NOSYSTEM": "1"}

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=tmp_path / "w", env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    url = live.url.replace("http://", f"http://alice:{token}@") + "/alice/pushed"
    subprocess.run(["git", "clone", "-q", url, str(tmp_path / "w")], env=env, check=True, timeout=60)
    git("config", "user.name", "Alice")
    git("config", "user.email", "alice@example.com")
    for name in ("a.txt", "b.txt"):  # two commits, one push
        (tmp_path / "w" / name).write_text(name)
        git("add", name)
        git("commit", "-q", "-m", f"add {name}")
    git("push", "-q", "origin", "HEAD:main")
    head = git("rev-parse", "HEAD")
    [got] = rec.wait_for("/push", lambda g: len(g) == 1, what="the push")
    assert got.scope == "repo.content"
    assert got.body["updatedRefs"] == [{"ref": "refs/heads/main", "oldSha": before, "newSha": head}]
    # a tag pushed, then deleted with a push: each a repo.content event of its own
    git("tag", "v1")
    git("push", "-q", "origin", "v1")
    git("push", "-q", "origin", ":refs/tags/v1")
    tagged, untagged = rec.wait_for("/push", lambda g: len(g) == 3, what="the tag pushes")[1:]
    assert tagged.body["updatedRefs"] == [{"ref": "refs/tags/v1", "oldSha": None, "newSha": head}]
    assert untagged.body["updatedRefs"] == [{"ref": "refs/tags/v1", "oldSha": head, "newSha": None}]
    api.delete_webhook(hook.id)
