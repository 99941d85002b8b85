"""Bad input gets a clear 4xx with X-Error-Code / X-Error-Message, and changes nothing."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from tests.conftest import Server, start_server, stop_server


def ndjson(*lines: dict) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def header(**extra: str) -> dict:
    return {"key": "header", "value": {"summary": "bad", "description": "", **extra}}


def add(path: str, data: bytes = b"x") -> dict:
    return {"key": "file", "value": {"path": path, "content": base64.b64encode(data).decode(), "encoding": "base64"}}


@pytest.fixture
def repo(server: Server, alice: str, unique: str) -> str:
    r = httpx.post(
        f"{server.url}/api/repos/create",
        json={"name": unique, "type": "model"},
        headers={"authorization": f"Bearer {alice}"},
    )
    assert r.status_code == 200, r.text
    return f"alice/{unique}"


def head(server: Server, repo: str, token: str) -> str:
    r = httpx.get(f"{server.url}/api/models/{repo}", headers={"authorization": f"Bearer {token}"})
    return r.json()["sha"]


def commit(server: Server, repo: str, token: str, body: bytes, rev: str = "main") -> httpx.Response:
    auth = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.post(
        f"{server.url}/api/models/{repo}/commit/{rev}",
        content=body,
        headers={**auth, "content-type": "application/x-ndjson"},
    )


def assert_error(r: httpx.Response, status: int, code: str | None = None, text: str = "") -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert isinstance(body, dict) and body["error"], body
    assert r.headers["x-error-message"]
    if code:
        assert r.headers["x-error-code"] == code
    assert text.lower() in body["error"].lower()


@pytest.mark.parametrize(
    "path",
    ["../escape.txt", "a/../../b", "/abs/path.txt", ".git/config", "sub/.git/hooks/x", "nul\x00byte", "a//b", "./a",
     "back\\slash", "x" * 300],
)  # fmt: skip
def test_commit_with_invalid_path_is_refused_and_writes_nothing(server: Server, alice: str, repo: str, path: str):
    before = head(server, repo, alice)
    r = commit(server, repo, alice, ndjson(header(), add("ok.txt"), add(path)))
    assert_error(r, 422, text="invalid path")
    assert head(server, repo, alice) == before


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b'{"key": "header", "value": {"summary": "x"}}\n{"key": "file", "value": {"path": "a"', "malformed ndjson"),
        (b"not json at all\n", "malformed ndjson"),
        (b'[1, 2]\n', "malformed ndjson"),
        (ndjson(add("a.txt")), "header"),
        (ndjson(header(), {"key": "rename", "value": {"path": "a"}}), "unknown commit operation"),
        (ndjson(header(), {"key": "file", "value": {"path": "a", "content": "%%%not base64", "encoding": "base64"}}),
         "base64"),
        (ndjson(header(), {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": "a" * 64, "size": 3}}),
         "not uploaded"),
        (ndjson(header(parentCommit="zzz")), "parentcommit"),
    ],
)  # fmt: skip
def test_malformed_commit_bodies_get_400_and_write_nothing(server: Server, alice: str, repo: str, body, text):
    before = head(server, repo, alice)
    assert_error(commit(server, repo, alice, body), 400, text=text)
    assert head(server, repo, alice) == before


def test_deleting_a_missing_file_is_entry_not_found(server: Server, alice: str, repo: str):
    before = head(server, repo, alice)
    r = commit(server, repo, alice, ndjson(header(), add("new.txt"), {"key": "deletedFile", "value": {"path": "nope"}}))
    assert_error(r, 404, "EntryNotFound")
    assert head(server, repo, alice) == before


def test_stale_parent_commit_is_412_and_writes_nothing(server: Server, alice: str, repo: str):
    before = head(server, repo, alice)
    assert commit(server, repo, alice, ndjson(header(), add("one.txt"))).status_code == 200
    after = head(server, repo, alice)
    r = commit(server, repo, alice, ndjson(header(parentCommit=before), add("two.txt")))
    assert_error(r, 412, text="updated since")
    assert head(server, repo, alice) == after


def test_unknown_revision_is_revision_not_found(server: Server, alice: str, repo: str):
    auth = {"authorization": f"Bearer {alice}"}
    assert_error(commit(server, repo, alice, ndjson(header(), add("a.txt")), rev="nobranch"), 404, "RevisionNotFound")
    for url in (
        f"/api/models/{repo}/revision/nobranch",
        f"/api/models/{repo}/tree/nobranch",
        f"/api/models/{repo}/commits/nobranch",
        f"/{repo}/resolve/nobranch/README.md",
        f"/{repo}/resolve/{'0' * 40}/README.md",
    ):
        assert_error(httpx.get(server.url + url, headers=auth), 404, "RevisionNotFound")


def test_missing_file_is_entry_not_found_with_commit_header(server: Server, alice: str, repo: str):
    r = httpx.get(f"{server.url}/{repo}/resolve/main/missing.txt", headers={"authorization": f"Bearer {alice}"})
    assert_error(r, 404, "EntryNotFound")
    assert len(r.headers["x-repo-commit"]) == 40


@pytest.mark.parametrize(
    "name",
    ["bad name", "-lead", "trail-", "a--b", "a..b", "x" * 97, "ends.git", "", "sl/ash/es", "ünï"],
)
def test_invalid_repo_names_are_refused(server: Server, alice: str, name: str):
    r = httpx.post(
        f"{server.url}/api/repos/create",
        json={"name": name, "type": "model"},
        headers={"authorization": f"Bearer {alice}"},
    )
    assert_error(r, 400)


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b"{not json", "malformed json"),
        (b"[1, 2]", "json object"),
        (b'{"name": 5}', "name"),
        (b'{"name": "ok-name", "type": "rocket"}', "repo type"),
        (b'{"name": "ok-name", "type": "space"}', "sdk"),
        (b'{"name": "ok-name", "type": "space", "sdk": "flask"}', "sdk"),
        (b'{"name": "ok-name", "visibility": "secret"}', "visibility"),
        (b'{"name": "ok-name", "private": "yes"}', "private"),
    ],
)
def test_create_repo_with_bad_json_is_400_and_creates_nothing(server: Server, alice: str, body: bytes, text: str):
    auth = {"authorization": f"Bearer {alice}", "content-type": "application/json"}
    assert_error(httpx.post(f"{server.url}/api/repos/create", content=body, headers=auth), 400, text=text)
    for t in ("models", "spaces"):
        assert httpx.get(f"{server.url}/api/{t}/alice/ok-name", headers=auth).status_code == 404


def test_write_without_token_is_401_and_with_bad_token_says_invalid_credentials(server: Server, repo: str):
    assert_error(commit(server, repo, "", ndjson(header(), add("a.txt"))), 401)
    r = httpx.get(f"{server.url}/api/whoami-v2", headers={"authorization": "Bearer hf_nope"})
    assert_error(r, 401, text="invalid credentials")
    assert r.headers["x-error-message"] == "Invalid credentials in Authorization header"


def test_preupload_and_paths_info_refuse_bad_shapes(server: Server, alice: str, repo: str):
    auth = {"authorization": f"Bearer {alice}"}
    r = httpx.post(f"{server.url}/api/models/{repo}/preupload/main", json={"files": "nope"}, headers=auth)
    assert_error(r, 400)
    r = httpx.post(f"{server.url}/api/models/{repo}/preupload/main", json={"files": [{"path": "../x"}]}, headers=auth)
    assert_error(r, 422)


def test_body_over_the_limit_is_413_and_writes_nothing(tmp_path, unique: str):
    srv = start_server(tmp_path / "data", env={"SPACEHUB_STORAGE__MAX_REQUEST_BYTES": "100000"})
    try:
        token = srv.user("alice")
        auth = {"authorization": f"Bearer {token}"}
        assert httpx.post(f"{srv.url}/api/repos/create", json={"name": unique}, headers=auth).status_code == 200
        before = head(srv, f"alice/{unique}", token)
        r = commit(srv, f"alice/{unique}", token, ndjson(header(), add("big.bin", b"\0" * 200_000)))
        assert_error(r, 413)

        def chunks():  # no Content-Length: the limit is enforced while streaming
            yield ndjson(header())
            for _ in range(20):
                yield ndjson(add("f.bin", b"\1" * 10_000))

        r = httpx.post(
            f"{srv.url}/api/models/alice/{unique}/commit/main",
            content=chunks(),
            headers={**auth, "content-type": "application/x-ndjson"},
        )
        assert_error(r, 413)
        assert head(srv, f"alice/{unique}", token) == before
    finally:
        stop_server(srv)


def test_inline_lfs_pointer_to_a_missing_object_is_refused(server: Server, alice: str, repo: str):
    before = head(server, repo, alice)
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{'b' * 64}\nsize 12\n".encode()
    assert_error(commit(server, repo, alice, ndjson(header(), add("weights.bin", pointer))), 400, text="not uploaded")
    assert head(server, repo, alice) == before
