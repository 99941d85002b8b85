"""Bad input gets a clear 4xx with X-Error-Code / X-Error-Message, and changes nothing: the Hub app in-process
(tests/inprocess.py; the fixtures below make ``server`` the in-process hub). What needs a socket (one keep-alive
connection surviving a bad request, header limits, streamed bodies) is in test_bad_input_live.py."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import Server
from tests.inprocess import InProcessHub


@pytest.fixture(scope="module")
def server(hub: InProcessHub) -> InProcessHub:
    return hub


def ndjson(*lines: dict) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def header(**extra: str) -> dict:
    return {"key": "header", "value": {"summary": "bad", "description": "", **extra}}


def add(path: str, data: bytes = b"x") -> dict:
    return {"key": "file", "value": {"path": path, "content": base64.b64encode(data).decode(), "encoding": "base64"}}


@pytest.fixture
def repo(server: InProcessHub, alice: str, unique: str) -> str:
    r = server.http.post(
        f"{server.url}/api/repos/create",
        json={"name": unique, "type": "model"},
        headers={"authorization": f"Bearer {alice}"},
    )
    assert r.status_code == 200, r.text
    return f"alice/{unique}"


def head(server: Server | InProcessHub, repo: str, token: str) -> str:
    r = server.http.get(f"{server.url}/api/models/{repo}", headers={"authorization": f"Bearer {token}"})
    return r.json()["sha"]


def commit(server: Server | InProcessHub, repo: str, token: str, body: bytes, rev: str = "main") -> httpx.Response:
    auth = {"authorization": f"Bearer {token}"} if token else {}
    return server.http.post(
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
def test_commit_with_invalid_path_is_refused_and_writes_nothing(server: InProcessHub, alice: str, repo: str, path: str):
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
def test_malformed_commit_bodies_get_400_and_write_nothing(server: InProcessHub, alice: str, repo: str, body, text):
    before = head(server, repo, alice)
    assert_error(commit(server, repo, alice, body), 400, text=text)
    assert head(server, repo, alice) == before


def test_deleting_a_missing_file_is_entry_not_found(server: InProcessHub, alice: str, repo: str):
    before = head(server, repo, alice)
    r = commit(server, repo, alice, ndjson(header(), add("new.txt"), {"key": "deletedFile", "value": {"path": "nope"}}))
    assert_error(r, 404, "EntryNotFound")
    assert head(server, repo, alice) == before


def test_stale_parent_commit_is_412_and_writes_nothing(server: InProcessHub, alice: str, repo: str):
    before = head(server, repo, alice)
    assert commit(server, repo, alice, ndjson(header(), add("one.txt"))).status_code == 200
    after = head(server, repo, alice)
    r = commit(server, repo, alice, ndjson(header(parentCommit=before), add("two.txt")))
    assert_error(r, 412, text="updated since")
    assert head(server, repo, alice) == after


def test_unknown_revision_is_revision_not_found(server: InProcessHub, alice: str, repo: str):
    auth = {"authorization": f"Bearer {alice}"}
    assert_error(commit(server, repo, alice, ndjson(header(), add("a.txt")), rev="nobranch"), 404, "RevisionNotFound")
    for url in (
        f"/api/models/{repo}/revision/nobranch",
        f"/api/models/{repo}/tree/nobranch",
        f"/api/models/{repo}/commits/nobranch",
        f"/{repo}/resolve/nobranch/README.md",
        f"/{repo}/resolve/{'0' * 40}/README.md",
    ):
        assert_error(server.http.get(server.url + url, headers=auth), 404, "RevisionNotFound")


def test_missing_file_is_entry_not_found_with_commit_header(server: InProcessHub, alice: str, repo: str):
    r = server.http.get(f"{server.url}/{repo}/resolve/main/missing.txt", headers={"authorization": f"Bearer {alice}"})
    assert_error(r, 404, "EntryNotFound")
    assert len(r.headers["x-repo-commit"]) == 40


@pytest.mark.parametrize(
    "name",
    ["bad name", "-lead", "trail-", "a--b", "a..b", "x" * 97, "ends.git", "", "sl/ash/es", "ünï"],
)
def test_invalid_repo_names_are_refused(server: InProcessHub, alice: str, name: str):
    r = server.http.post(
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
def test_create_repo_with_bad_json_is_400_and_creates_nothing(server: InProcessHub, alice: str, body: bytes, text: str):
    auth = {"authorization": f"Bearer {alice}", "content-type": "application/json"}
    assert_error(server.http.post(f"{server.url}/api/repos/create", content=body, headers=auth), 400, text=text)
    for t in ("models", "spaces"):
        assert server.http.get(f"{server.url}/api/{t}/alice/ok-name", headers=auth).status_code == 404


def test_write_without_token_is_401_and_with_bad_token_says_invalid_credentials(server: InProcessHub, repo: str):
    assert_error(commit(server, repo, "", ndjson(header(), add("a.txt"))), 401)
    r = server.http.get(f"{server.url}/api/whoami-v2", headers={"authorization": "Bearer hf_nope"})
    assert_error(r, 401, text="invalid credentials")
    assert r.headers["x-error-message"] == "Invalid credentials in Authorization header"


def test_preupload_and_paths_info_refuse_bad_shapes(server: InProcessHub, alice: str, repo: str):
    auth = {"authorization": f"Bearer {alice}"}
    r = server.http.post(f"{server.url}/api/models/{repo}/preupload/main", json={"files": "nope"}, headers=auth)
    assert_error(r, 400)
    r = server.http.post(
        f"{server.url}/api/models/{repo}/preupload/main", json={"files": [{"path": "../x"}]}, headers=auth
    )
    assert_error(r, 422)


def test_inline_lfs_pointer_to_a_missing_object_is_refused(server: InProcessHub, alice: str, repo: str):
    before = head(server, repo, alice)
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{'b' * 64}\nsize 12\n".encode()
    assert_error(commit(server, repo, alice, ndjson(header(), add("weights.bin", pointer))), 400, text="not uploaded")
    assert head(server, repo, alice) == before


@dataclass
class Raw:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


PRINTABLE = re.compile(r"[\x20-\x7e]+")  # a valid X-Error-Message: printable ASCII, nothing the server could drop


def assert_hub_error(r: Any, status: int, code: str | None = None, text: str = "") -> str:
    """The Hub's error format with a valid X-Error-Message (and X-Error-Code for typed errors); the JSON message."""
    got = r.status if isinstance(r, Raw) else r.status_code
    assert got == status, (got, r.headers, r.json() if got != 500 else "")
    message = r.headers["x-error-message"]
    assert PRINTABLE.fullmatch(message), message
    if code is None:
        assert "x-error-code" not in r.headers or PRINTABLE.fullmatch(r.headers["x-error-code"])
    else:
        assert r.headers["x-error-code"] == code
    body = r.json()
    assert isinstance(body, dict) and isinstance(body["error"], str) and body["error"], body
    assert text.lower() in body["error"].lower(), body
    return body["error"]


def test_json_depth_limit_is_64_levels(server: InProcessHub, alice: str, repo: str):
    auth = {"authorization": f"Bearer {alice}", "content-type": "application/json"}
    url = f"{server.url}/api/models/{repo}/paths-info/main"
    ok = '{"paths": ["README.md"], "x": ' + nested(63) + "}"  # the object is level 1
    r = server.http.post(url, content=ok, headers=auth)
    assert r.status_code == 200, r.text
    r = server.http.post(url, content='{"paths": ["README.md"], "x": ' + nested(64) + "}", headers=auth)
    assert_hub_error(r, 400, text="nested more than 64 levels")


def test_error_header_escapes_control_and_non_latin1_characters_but_the_body_keeps_them():
    from spacehub.app import error_response
    from spacehub.errors import RevisionNotFound

    r = error_response(RevisionNotFound("Invalid rev id: a\rb\x00c\x08d\ne€f\u2028g"), "rid\x01")
    message = r.headers["x-error-message"]
    assert PRINTABLE.fullmatch(message), message
    assert message == "Invalid rev id: a\\rb\\x00c\\x08d e?f?g"
    assert PRINTABLE.fullmatch(r.headers["x-request-id"])
    assert json.loads(r.body)["error"] == "Invalid rev id: a\rb\x00c\x08d\ne€f\u2028g"


def test_deeply_nested_readme_metadata_is_refused_and_never_breaks_repo_info(
    server: InProcessHub, alice: str, repo: str
):
    auth = {"authorization": f"Bearer {alice}"}
    readme = "---\nx: " + nested(3000) + "\n---\nhi\n"
    r = server.http.post(f"{server.url}/api/validate-yaml", json={"content": readme, "repoType": "model"}, headers=auth)
    assert_hub_error(r, 400, text="invalid metadata")
    assert "nested more than 64 levels" in json.dumps(r.json()["errors"])
    bomb = (
        "---\na: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
            for p, c in zip("abcdefg", "bcdefgh", strict=True)
        )
        + "---\n"
    )
    for text in (readme, bomb):
        assert commit(server, repo, alice, ndjson(header(), add("README.md", text.encode()))).status_code == 200
        info = server.http.get(f"{server.url}/api/models/{repo}", headers=auth)
        assert info.status_code == 200 and info.json()["cardData"] == {}, info.text[:300]


@pytest.mark.anyio
async def test_an_exception_after_the_response_does_not_reach_the_server():
    """Starlette re-raises after its 500, and uvicorn closes the connection of an app that raised: RequestLimits
    stops an exception raised once the response is complete, and answers 500 (Hub format) one raised before."""
    from spacehub.limits import RequestLimits

    async def after(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b"x"})
        raise RuntimeError("boom")

    async def before(scope, receive, send):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    async def midway(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x", "more_body": True})
        raise RuntimeError("boom")

    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}

    async def receive():  # type: ignore[no-untyped-def]
        return {"type": "http.request", "body": b""}

    for app, status in ((after, 500), (before, 500)):
        sent: list[dict[str, Any]] = []

        async def send(message, sent=sent):  # type: ignore[no-untyped-def]
            sent.append(message)

        await RequestLimits(app)(scope, receive, send)
        assert sent[0]["status"] == status
        if app is before:
            headers = dict(sent[0]["headers"])
            assert PRINTABLE.fullmatch(headers[b"x-error-message"].decode())
            assert json.loads(sent[1]["body"])["error"]
    with pytest.raises(RuntimeError):  # a truncated response: only closing the connection says so
        await RequestLimits(midway)(scope, receive, lambda m: _noop())


async def _noop() -> None:
    return None


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth
