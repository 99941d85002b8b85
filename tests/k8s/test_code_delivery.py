"""How a Space's code reaches a pod without a registry: the fetch init container's program (manifests.FETCH_SCRIPT),
run here as the container would run it, against a real SpaceHub server, with the token the composition root mints
for the Space (wiring.fetch_access). No cluster is needed for this part: what the pod spec looks like on a 1.20 API
server is in test_backend.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from spacehub.runtime.backends.kubernetes.manifests import FETCH_SCRIPT
from spacehub.services import repos
from spacehub.storage.db import Database
from spacehub.wiring import fetch_access
from tests.conftest import Server

pytestmark = pytest.mark.slow

FILES = {
    "README.md": b"---\ntitle: Demo\nsdk: gradio\n---\n",
    "app.py": b"print('hello')\n",
    "requirements.txt": b"requests\n",
    "pkg/deep/module.py": b"X = 1\n",
    "weights.bin": bytes(range(256)) * 64,  # binary (whether it is stored as LFS is the Hub's choice)
}


def private_space(api: HfApi, name: str) -> tuple[str, str]:
    repo_id = f"alice/{name}"
    api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=True)
    for path, content in FILES.items():
        api.upload_file(path_or_fileobj=content, path_in_repo=path, repo_id=repo_id, repo_type="space")
    sha = api.space_info(repo_id).sha
    assert sha is not None
    return repo_id, sha


def mint(server: Server, repo_id: str, current: str | None = None) -> tuple[str, str]:
    """What the Kubernetes backend asks at a build or start: the Space's token (``current``: the one its Secret
    holds)."""
    db = Database(f"sqlite:///{server.data_dir / 'spacehub.db'}")
    with db.transaction() as s:
        repo = repos.find_repo(s, "space", repo_id)
        assert repo is not None
        space_id = repo.id
    return fetch_access(db)(space_id, current)


def fetch(server: Server, repo_id: str, sha: str, token: str, dest: Path) -> subprocess.CompletedProcess[str]:
    token_file = dest.parent / "token"
    token_file.write_text(token + "\n")
    env = {"PATH": os.environ["PATH"], "HF_ENDPOINT": server.url, "SPACEHUB_REPO": repo_id,
           "SPACEHUB_REVISION": sha, "SPACEHUB_TOKEN_FILE": str(token_file), "SPACEHUB_CODE": str(dest)}  # fmt: skip
    dest.mkdir()
    return subprocess.run([sys.executable, "-c", FETCH_SCRIPT], env=env, capture_output=True, text=True, timeout=120)


def test_the_fetch_container_gets_the_space_at_its_commit_with_the_scoped_token(
    server: Server, api: HfApi, unique: str, tmp_path: Path
) -> None:
    repo_id, sha = private_space(api, unique)
    name, token = mint(server, repo_id)
    assert name == repo_id
    done = fetch(server, repo_id, sha, token, tmp_path / "code")
    assert done.returncode == 0, done.stderr
    assert f"fetched {len(FILES) + 1} files of {repo_id} at {sha[:7]}" in done.stdout  # and .gitattributes
    assert sorted(str(p.relative_to(tmp_path / "code")) for p in (tmp_path / "code").rglob("*") if p.is_file()) \
        == sorted([*FILES, ".gitattributes"])  # fmt: skip
    for path, content in FILES.items():
        assert (tmp_path / "code" / path).read_bytes() == content, path
    # the commit, not the branch: a later commit does not change what this release fetches
    api.upload_file(path_or_fileobj=b"print('changed')\n", path_in_repo="app.py", repo_id=repo_id, repo_type="space")
    again = fetch(server, repo_id, sha, token, tmp_path / "again")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again" / "app.py").read_bytes() == FILES["app.py"]


def test_the_scoped_token_reads_its_space_and_nothing_else_and_the_next_but_one_revokes_it(
    server: Server, api: HfApi, unique: str, tmp_path: Path
) -> None:
    repo_id, sha = private_space(api, unique)
    other, other_sha = private_space(api, f"{unique}-other")  # alice's too: the token is not alice's
    _, token = mint(server, repo_id)
    scoped = HfApi(endpoint=server.url, token=token)
    assert scoped.space_info(repo_id).sha == sha
    with pytest.raises(RepositoryNotFoundError):
        scoped.space_info(other)
    denied = fetch(server, other, other_sha, token, tmp_path / "other")
    assert denied.returncode != 0 and "404" in denied.stderr
    assert not any((tmp_path / "other").iterdir())
    with pytest.raises(HfHubHTTPError) as e:  # read only: no commit
        scoped.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id, repo_type="space")
    assert e.value.response.status_code in (401, 403)
    r = httpx.get(f"{server.url}/api/whoami-v2", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401, "it is nobody's token"
    _, newer = mint(server, repo_id)  # the next start mints a new one; a pod still given the old one fetches
    assert newer != token
    assert scoped.space_info(repo_id).sha == sha
    _, newest = mint(server, repo_id)  # the one after: the first stops working
    with pytest.raises(HfHubHTTPError) as e:
        scoped.space_info(repo_id)
    assert e.value.response.status_code == 401
    for t in (newer, newest):
        assert HfApi(endpoint=server.url, token=t).space_info(repo_id).sha == sha


def test_a_start_keeps_the_token_its_space_holds_while_it_is_valid(server: Server, api: HfApi, unique: str) -> None:
    """Starts in a row (a build, a start, its retries) must not rotate the token: a pod may still be given the
    Secret's older value for a minute, and its fetch would get 401 until then."""
    repo_id, sha = private_space(api, unique)
    other, _ = private_space(api, f"{unique}-other")
    _, token = mint(server, repo_id)
    for _ in range(3):
        assert mint(server, repo_id, token)[1] == token
    assert HfApi(endpoint=server.url, token=token).space_info(repo_id).sha == sha
    _, others = mint(server, other)
    assert mint(server, repo_id, others)[1] not in (others, token)  # another Space's token is never kept
    assert mint(server, repo_id, "hf_not_a_token")[1] != "hf_not_a_token"


def test_the_fetch_refuses_a_path_outside_its_folder(tmp_path: Path) -> None:
    """A file list naming ../ (a hostile or broken server) does not write outside /code."""
    import http.server
    import json
    import threading

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"siblings": [{"rfilename": "../escaped.txt"}]}).encode() if "/api/" in self.path \
                else b"pwned"  # fmt: skip
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        fake = Server(f"http://127.0.0.1:{srv.server_address[1]}", tmp_path, None, tmp_path / "log")  # type: ignore[arg-type]
        done = fetch(fake, "a/b", "a" * 40, "t", tmp_path / "code")
    finally:
        srv.shutdown()
    assert done.returncode != 0 and "refusing to write '../escaped.txt'" in done.stderr
    assert not (tmp_path / "escaped.txt").exists()
