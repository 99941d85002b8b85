"""Bad requests that need a real socket: each is a clear 4xx in the Hub's format and the keep-alive connection
survives it (raw requests on one connection to a live ``spacehub serve``), header limits (431), bodies over the limit
while they stream (413). The rest of the bad-input behaviour runs in-process: test_bad_input.py."""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from tests.api.test_bad_input import (
    Raw,
    add,
    assert_error,
    assert_hub_error,
    commit,
    head,
    header,
    ndjson,
    nested,
)
from tests.conftest import Server, start_server, stop_server


@pytest.fixture
def alice(server: Server) -> str:
    """alice's token on the live server (tests/api/conftest.py's is the in-process hub's)."""
    return server.user("alice")


@pytest.fixture
def repo(server: Server, alice: str, unique: str) -> str:
    r = httpx.post(
        f"{server.url}/api/repos/create",
        json={"name": unique, "type": "model"},
        headers={"authorization": f"Bearer {alice}"},
    )
    assert r.status_code == 200, r.text
    return f"alice/{unique}"


@pytest.mark.slow  # a server of its own, with a small request limit
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


def raw_request(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def read_response(sock: socket.socket, buf: bytearray) -> Raw:
    """One response (Content-Length framed, as every Hub JSON answer is); a reset or a close raises."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection without a response")
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection in the middle of a response")
        rest += chunk
    buf[:] = rest[length:]
    return Raw(int(status_line.split()[1]), headers, rest[:length])


def on_one_connection(server: Server, *requests: bytes) -> list[Raw]:
    """Send the requests one after the other on ONE keep-alive connection; their responses."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        buf = bytearray()
        out = []
        for req in requests:
            sock.sendall(req)
            out.append(read_response(sock, buf))
        return out


def still_usable(server: Server, bad: bytes, repo: str | None = None) -> Raw:
    """Send ``bad`` then a good request on the same connection: the second must be answered 200."""
    first, second = on_one_connection(server, bad, raw_request("GET", f"/api/models/{repo}" if repo else "/api/models"))
    assert second.status == 200, second
    return first


DEEP = nested(1000)


def json_endpoints(repo: str) -> list[tuple[str, str, str]]:
    """(method, path, body) of every kind of JSON endpoint, each with a body nested 1,000 deep somewhere."""
    space = repo  # the same name works as a model repo; the space routes answer 404/400 before using it
    return [
        ("POST", "/api/repos/create", DEEP),
        ("POST", "/api/repos/create", '{"name": "deep-x", "type": "model", "extra": ' + DEEP + "}"),
        ("PUT", f"/api/models/{repo}/settings", '{"private": ' + DEEP + "}"),
        ("POST", f"/api/models/{repo}/paths-info/main", DEEP),
        ("POST", f"/api/models/{repo}/preupload/main", '{"files": ' + DEEP + "}"),
        ("POST", f"/{repo}.git/info/lfs/objects/batch", '{"operation": "download", "objects": ' + DEEP + "}"),
        ("POST", f"/{repo}.git/info/lfs/verify", DEEP),
        ("POST", f"/api/models/{repo}/branch/deep-branch", '{"startingPoint": ' + DEEP + "}"),
        ("POST", f"/api/models/{repo}/tag/main", '{"tag": ' + DEEP + "}"),
        ("POST", "/api/validate-yaml", '{"content": ' + DEEP + "}"),
        ("POST", "/api/repos/move", DEEP),
        ("DELETE", "/api/repos/delete", DEEP),
        ("POST", f"/api/spaces/{space}/secrets", DEEP),
        ("POST", f"/api/spaces/{space}/variables", DEEP),
        ("POST", f"/api/models/{repo}/duplicate", DEEP),
    ]


@pytest.mark.parametrize("anonymous", [False, True])
def test_json_nested_1000_deep_is_400_on_every_json_endpoint(server: Server, alice: str, repo: str, anonymous: bool):
    auth = {} if anonymous else {"Authorization": f"Bearer {alice}"}
    before = head(server, repo, alice)
    for method, path, body in json_endpoints(repo):
        r = still_usable(server, raw_request(method, path, body.encode(), {**auth, "Content-Type": "application/json"}))
        assert_hub_error(r, 400, text="nested more than 64 levels")
    assert head(server, repo, alice) == before
    assert (
        httpx.get(f"{server.url}/api/models/alice/deep-x", headers={"authorization": f"Bearer {alice}"}).status_code
        == 404
    )
    refs = httpx.get(f"{server.url}/api/models/{repo}/refs", headers={"authorization": f"Bearer {alice}"}).json()
    assert [b["name"] for b in refs["branches"]] == ["main"] and refs["tags"] == []


@pytest.mark.parametrize("big", [False, True])  # small lines go through json.loads, long ones the streaming reader
def test_commit_line_nested_1000_deep_is_400_and_writes_nothing(server: Server, alice: str, repo: str, big: bool):
    before = head(server, repo, alice)
    filler = ', "pad": "' + "a" * (9 << 20) + '"' if big else ""
    line = '{"key": "file", "value": {"path": "a.txt", "content": "eA==", "encoding": "base64", "x": ' + DEEP
    body = ndjson(header()) + (line + filler + "}}\n").encode()
    headers = {"Authorization": f"Bearer {alice}", "Content-Type": "application/x-ndjson"}
    r = still_usable(server, raw_request("POST", f"/api/models/{repo}/commit/main", body, headers))
    assert_hub_error(r, 400, text="malformed ndjson at line 2")
    assert "nested more than 64 levels" in r.json()["error"]
    assert head(server, repo, alice) == before


def test_commit_deep_path_is_refused(server: Server, alice: str, repo: str):
    before = head(server, repo, alice)
    headers = {"Authorization": f"Bearer {alice}", "Content-Type": "application/x-ndjson"}
    for depth in (1000, 129):
        body = ndjson(header(), add("a/" * (depth - 1) + "f.txt"))
        r = still_usable(server, raw_request("POST", f"/api/models/{repo}/commit/main", body, headers))
        assert_hub_error(r, 422, text="nested more than 128 levels")
        assert head(server, repo, alice) == before
    assert commit(server, repo, alice, ndjson(header(), add("a/" * 127 + "f.txt"))).status_code == 200  # 128 is fine


@pytest.mark.parametrize("body", ["[1, 2]", '[{"paths": ["README.md"]}]', '"README.md"', "5", "true", "{"])
def test_paths_info_with_a_json_body_that_is_not_an_object_is_400(server: Server, alice: str, repo: str, body: str):
    for auth in ({"Authorization": f"Bearer {alice}"}, {}):
        req = raw_request(
            "POST", f"/api/models/{repo}/paths-info/main", body.encode(), {**auth, "Content-Type": "application/json"}
        )
        assert_hub_error(still_usable(server, req), 400)


CONTROL = ["%0D", "%08", "%00", "%0A", "%7F", "%1B"]


@pytest.mark.parametrize("ch", CONTROL)
@pytest.mark.parametrize("anonymous", [False, True])
def test_control_characters_in_revisions_paths_and_branches_get_valid_errors(
    server: Server, alice: str, repo: str, ch: str, anonymous: bool
):
    auth = {} if anonymous else {"Authorization": f"Bearer {alice}"}
    before = head(server, repo, alice)
    char = unquote(ch)
    json_h = {**auth, "Content-Type": "application/json"}
    cases = [  # (request, status if authenticated, X-Error-Code)
        (raw_request("GET", f"/api/models/{repo}/revision/main{ch}x", headers=auth), 404, "RevisionNotFound"),
        (raw_request("GET", f"/api/models/{repo}/revision/a{ch}b", headers=auth), 404, "RevisionNotFound"),
        (raw_request("GET", f"/api/models/{repo}/tree/main{ch}x", headers=auth), 404, "RevisionNotFound"),
        (raw_request("GET", f"/api/models/{repo}/commits/main{ch}x", headers=auth), 404, "RevisionNotFound"),
        (raw_request("GET", f"/api/models/{repo}/tree/main/README.md{ch}x", headers=auth), 404, "EntryNotFound"),
        (raw_request("GET", f"/{repo}/resolve/main{ch}/README.md", headers=auth), 404, "RevisionNotFound"),
        (raw_request("GET", f"/{repo}/resolve/main/.gitattributes{ch}x", headers=auth), 404, "EntryNotFound"),
        (raw_request("POST", f"/api/models/{repo}/preupload/main{ch}x", b'{"files": []}', json_h), 404,
         "RevisionNotFound"),
        (raw_request("POST", f"/api/models/{repo}/commit/main{ch}x", ndjson(header(), add("c.txt")),
                     {**auth, "Content-Type": "application/x-ndjson"}), 404, "RevisionNotFound"),
        (raw_request("POST", f"/api/models/{repo}/branch/b{ch}x", b"{}", json_h), 400, None),
        (raw_request("POST", f"/api/models/{repo}/branch/from-ctl",
                     json.dumps({"startingPoint": f"main{char}x"}).encode(), json_h), 404, "RevisionNotFound"),
        (raw_request("POST", f"/api/models/{repo}/tag/main", json.dumps({"tag": f"t{char}x"}).encode(), json_h), 400,
         None),
        (raw_request("DELETE", f"/api/models/{repo}/branch/main{ch}x", headers=auth), 400, None),
    ]  # fmt: skip
    for req, status, code in cases:
        r = still_usable(server, req, repo)
        writes = not req.startswith(b"GET ")  # every POST and DELETE here needs write access
        if anonymous and writes:
            assert_hub_error(r, 401)  # writing needs a token: refused before the name is looked at
            continue
        message = assert_hub_error(r, status, code)
        assert char in message or "x" in message  # the JSON body keeps the message whole
    form = {**auth, "Content-Type": "application/x-www-form-urlencoded"}
    r = still_usable(
        server, raw_request("POST", f"/api/models/{repo}/paths-info/main", f"paths=.gitattributes{ch}x".encode(), form)
    )
    assert r.status == 200 and r.json() == [], r  # not .gitattributes: libgit2 would stop reading at a NUL
    assert head(server, repo, alice) == before
    refs = httpx.get(f"{server.url}/api/models/{repo}/refs", headers={"authorization": f"Bearer {alice}"}).json()
    assert [b["name"] for b in refs["branches"]] == ["main"] and refs["tags"] == []


@pytest.mark.parametrize("operation", [["upload"], {"upload": 1}, 5, None, True])
@pytest.mark.parametrize("anonymous", [False, True])
def test_lfs_batch_with_an_operation_that_is_not_a_string_is_422(
    server: Server, alice: str, repo: str, operation: Any, anonymous: bool
):
    auth = {} if anonymous else {"Authorization": f"Bearer {alice}"}
    for body in (
        {"operation": operation, "objects": []},
        {"operation": "upload", "objects": [], "hash_algo": operation},
    ):
        if body.get("hash_algo") is None and "hash_algo" in body:
            continue  # an explicit null hash_algo is the default
        req = raw_request("POST", f"/{repo}.git/info/lfs/objects/batch", json.dumps(body).encode(),
                          {**auth, "Content-Type": "application/vnd.git-lfs+json"})  # fmt: skip
        r = still_usable(server, req)
        assert r.status in (422, 409), r
        assert_hub_error(r, r.status)
        assert r.headers["content-type"].startswith("application/vnd.git-lfs+json")
        assert r.json()["message"]  # git-lfs prints "message"


def test_oversized_json_bodies_are_413(server: Server, alice: str, repo: str):
    auth = {"authorization": f"Bearer {alice}", "content-type": "application/json"}
    big = b'{"name": "big-json", "x": "' + b"a" * (17 << 20) + b'"}'
    for path in ("/api/repos/create", f"/api/models/{repo}/paths-info/main", f"/{repo}.git/info/lfs/objects/batch",
                 f"/api/models/{repo}/preupload/main", f"/api/models/{repo}/settings"):  # fmt: skip
        method = "PUT" if path.endswith("/settings") else "POST"
        for content in (big, iter([big[i : i + (1 << 20)] for i in range(0, len(big), 1 << 20)])):  # sized, chunked
            with httpx.Client(timeout=60) as client:
                r = client.request(method, server.url + path, content=content, headers=auth)
                assert_hub_error(r, 413, text="larger than")
                assert client.get(f"{server.url}/api/models/{repo}").status_code == 200
    assert httpx.get(f"{server.url}/api/models/alice/big-json", headers=auth).status_code == 404


def header_bytes(count: int, size: int = 1) -> dict[str, str]:
    return {f"X-Extra-{i}": "v" * size for i in range(count)}


@pytest.mark.parametrize("host", ["127.0.0.1", "alice-nothing-here.localhost"])  # the Hub, and the Space proxy
def test_too_many_or_too_large_headers_are_431_and_the_connection_survives(server: Server, host: str):
    def req(headers: dict[str, str]) -> bytes:
        return raw_request("GET", "/api/models", headers=headers).replace(b"Host: 127.0.0.1", f"Host: {host}".encode())

    for headers, text in ((header_bytes(5000), "too many"), (header_bytes(1, 100_000), "too large"),
                          (header_bytes(40, 2000), "too large")):  # fmt: skip
        r = still_usable(server, req(headers))
        assert_hub_error(r, 431, text=text)
    ok = on_one_connection(server, raw_request("GET", "/api/models", headers=header_bytes(90, 500)))[0]
    assert ok.status == 200  # 90 more headers and 45 KB are fine
    r = httpx.get(f"{server.url}/api/models", headers=header_bytes(5000))
    assert_hub_error(r, 431, text="too many")


@pytest.mark.parametrize("host", ["127.0.0.1", "alice-nothing-here.localhost"])
def test_a_2mb_header_is_431_then_a_clean_close(server: Server, host: str):
    """A head over 1 MiB is not read to its end: 431 with Connection: close, then an orderly close (never a reset)."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"GET /api/models HTTP/1.1\r\nHost: {host}\r\nX-Big: ".encode() + b"a" * 2_000_000 + b"\r\n\r\n")
        buf = bytearray()
        r = read_response(sock, buf)
        assert_hub_error(r, 431, text="too large")
        assert r.headers["connection"] == "close"
        assert sock.recv(100) == b""  # EOF: an orderly close (a reset would raise ConnectionResetError)
    r = httpx.get(f"{server.url}/api/models", headers={"X-Big": "a" * 2_000_000})
    assert_hub_error(r, 431, text="too large")
    assert httpx.get(f"{server.url}/api/models").status_code == 200
