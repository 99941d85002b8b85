"""The LFS batch API: with the real git-lfs (push, clone, pull), and raw as huggingface_hub ≤ 1.19 speaks it."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from spacehub.git import signing

LFS = {"Accept": "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json"}


def batch(server, path: str, operation: str, objects, token: str | None = None, **extra) -> httpx.Response:  # type: ignore[no-untyped-def]
    headers = dict(LFS)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = {"operation": operation, "transfers": ["basic", "multipart", "xet"], "objects": objects, **extra}
    return httpx.post(f"{server.url}/{path}/info/lfs/objects/batch", json=body, headers=headers)


def obj(data: bytes) -> dict[str, object]:
    return {"oid": hashlib.sha256(data).hexdigest(), "size": len(data)}


def test_git_lfs_push_then_download_and_clone(server, alice, api, git, url, unique, tmp_path) -> None:  # type: ignore[no-untyped-def]
    repo_id = f"alice/{unique}"
    api.create_repo(repo_id, repo_type="space", space_sdk="static")
    origin = url(server.url, "space", repo_id, alice)
    clone = git.clone(origin, "c")
    git.run("lfs", "track", "*.bin", cwd=clone)
    data = os.urandom(300_000)
    git.run("add", ".gitattributes", cwd=clone)
    git.commit_file(clone, "model/weights.bin", data, "Add weights with git-lfs")
    assert git.run("cat-file", "-p", "HEAD:model/weights.bin", cwd=clone).stdout.startswith("version https://git-lfs")
    out = git.run("push", "origin", "main", cwd=clone)
    oid = hashlib.sha256(data).hexdigest()
    assert (server.data_dir / "lfs" / oid[:2] / oid[2:4] / oid).read_bytes() == data  # uploaded before the push
    assert "Locking support" not in out.stderr and alice not in out.stderr

    path = api.hf_hub_download(repo_id, "model/weights.bin", repo_type="space", cache_dir=tmp_path / "cache")
    assert Path(path).read_bytes() == data
    [entry] = api.get_paths_info(repo_id, ["model/weights.bin"], repo_type="space")
    assert entry.lfs is not None
    assert entry.lfs.sha256 == hashlib.sha256(data).hexdigest() and entry.lfs.size == len(data)

    second = git.clone(origin, "c2")
    assert (second / "model" / "weights.bin").read_bytes() == data
    third = git.clone(url(server.url, "space", repo_id, alice, ".git"), "c3", GIT_LFS_SKIP_SMUDGE="1")
    assert (third / "model" / "weights.bin").read_bytes().startswith(b"version https://git-lfs")
    git.run("lfs", "pull", cwd=third)
    assert (third / "model" / "weights.bin").read_bytes() == data


def test_batch_upload_put_verify_then_commit(server, alice, api, unique, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The huggingface_hub ≤ 1.19 sequence: batch (auth) → PUT (no auth) → verify (auth) → lfsFile commit."""
    repo_id = f"alice/{unique}"
    api.create_repo(repo_id, repo_type="dataset")
    data = os.urandom(70_000)
    r = batch(server, f"datasets/{repo_id}.git", "upload", [obj(data)], alice, ref={"name": "main"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.git-lfs+json")
    answer = r.json()
    assert answer["transfer"] == "basic"  # never xet, even when offered
    [item] = answer["objects"]
    assert item["oid"] == obj(data)["oid"] and item["size"] == len(data)
    upload, verify = item["actions"]["upload"], item["actions"]["verify"]
    assert upload["href"].startswith(f"{server.url}/datasets/{repo_id}.git/info/lfs/objects/")

    assert httpx.put(upload["href"], content=data).status_code == 200  # no Authorization at all
    v = httpx.post(verify["href"], json=obj(data), headers={**LFS, "Authorization": f"Bearer {alice}"})
    assert v.status_code == 200
    assert httpx.post(verify["href"], json=obj(data), headers=LFS).status_code == 401  # verify needs credentials
    missing = httpx.post(verify["href"], json=obj(b"nope"), headers={**LFS, "Authorization": f"Bearer {alice}"})
    assert missing.status_code == 404

    again = batch(server, f"datasets/{repo_id}", "upload", [obj(data)], alice).json()
    assert "actions" not in again["objects"][0]  # already there: the client skips it

    header = {"key": "header", "value": {"summary": "Add data.parquet via LFS"}}
    lfs_file = {"key": "lfsFile", "value": {"path": "data.parquet", "algo": "sha256", **obj(data)}}
    r = httpx.post(
        f"{server.url}/api/datasets/{repo_id}/commit/main",
        content="\n".join(json.dumps(x) for x in (header, lfs_file)) + "\n",
        headers={"Authorization": f"Bearer {alice}", "Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 200, r.text
    path = api.hf_hub_download(repo_id, "data.parquet", repo_type="dataset", cache_dir=tmp_path / "cache")
    assert Path(path).read_bytes() == data

    down = batch(server, f"datasets/{repo_id}.git", "download", [obj(data), obj(b"absent")], alice).json()
    ok, absent = down["objects"]
    assert httpx.get(ok["actions"]["download"]["href"]).content == data  # signed: no credentials needed
    assert absent["error"]["code"] == 404


def test_upload_of_wrong_content_is_rejected(server, alice, api, unique) -> None:  # type: ignore[no-untyped-def]
    repo_id = f"alice/{unique}"
    api.create_repo(repo_id)
    data = os.urandom(4096)
    href = batch(server, f"{repo_id}.git", "upload", [obj(data)], alice).json()["objects"][0]["actions"]["upload"]
    r = httpx.put(href["href"], content=os.urandom(4096))  # same size, other bytes
    assert r.status_code == 422 and "does not match" in r.json()["error"]
    assert httpx.put(href["href"], content=data + b"extra").status_code == 413
    still = batch(server, repo_id, "upload", [obj(data)], alice).json()["objects"][0]
    assert "upload" in still["actions"]  # nothing was stored
    assert httpx.put(href["href"], content=data).status_code == 200


def test_tampered_or_expired_signatures_are_rejected(server, alice, api, unique) -> None:  # type: ignore[no-untyped-def]
    repo_id = f"alice/{unique}"
    api.create_repo(repo_id, repo_type="space", space_sdk="static")
    api.create_repo(f"{repo_id}-other", repo_type="space", space_sdk="static")
    data = os.urandom(1000)
    oid = obj(data)["oid"]
    href = batch(server, f"spaces/{repo_id}", "upload", [obj(data)], alice).json()["objects"][0]["actions"]["upload"]
    base, query = href["href"].split("?")
    params = {k: v[0] for k, v in parse_qs(query).items()}

    def put(url: str, **changes: str) -> httpx.Response:
        return httpx.put(url, params={**params, **changes}, content=data)

    flipped = params["signature"][:-1] + ("0" if params["signature"][-1] != "0" else "1")
    assert put(base, signature=flipped).status_code == 403
    assert put(base, size="999").status_code == 403
    assert put(base, expires=str(int(params["expires"]) + 3600)).status_code == 403
    assert httpx.put(base, content=data).status_code == 403  # unsigned
    assert put(base.replace(repo_id, f"{repo_id}-other")).status_code == 403  # signed for another repo

    key_file = server.data_dir / signing.KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = bytes.fromhex(key_file.read_text().strip())
    repo_db_id = httpx.get(f"{server.url}/api/spaces/{repo_id}").json()["_id"]
    uploader = f"{repo_db_id}\nalice"  # an upload URL is signed for the repo and its uploader
    expired = signing.sign(key, "upload", uploader, oid, len(data), ttl=60, now=1_000_000)
    r = httpx.put(base, params={**expired, "by": "alice"}, content=data)
    assert r.status_code == 403 and "expired" in r.json()["error"]
    fresh = signing.sign(key, "upload", uploader, oid, len(data), ttl=60)
    assert httpx.put(base, params={**fresh, "by": "bob"}, content=data).status_code == 403  # signed for alice
    assert httpx.put(base, params={**fresh, "by": "alice"}, content=data).status_code == 200
    download = signing.sign(key, "download", repo_db_id, oid, len(data), ttl=60)
    assert httpx.put(base, params=download, content=data).status_code == 403  # a download URL cannot upload


def test_batch_permissions(server, alice, bob, api, unique) -> None:  # type: ignore[no-untyped-def]
    public, private = f"alice/{unique}", f"alice/{unique}-p"
    api.create_repo(public, repo_type="space", space_sdk="static")
    api.create_repo(private, repo_type="space", space_sdk="static", private=True)
    one = [obj(b"permission test")]
    read_only = server.user("alice", role="read")

    anon = batch(server, f"spaces/{public}.git", "upload", one)
    assert anon.status_code == 401 and anon.headers["www-authenticate"] == 'Basic realm="SpaceHub"'
    assert anon.headers["content-type"].startswith("application/vnd.git-lfs+json") and anon.json()["message"]
    assert batch(server, f"spaces/{public}.git", "upload", one, read_only).status_code == 403
    assert batch(server, f"spaces/{public}.git", "upload", one, bob).status_code == 403
    assert batch(server, f"spaces/{public}.git", "download", one).status_code == 200
    assert batch(server, f"spaces/{public}.git", "download", one, bob).status_code == 200

    for who, status in ((None, 401), (bob, 404), (read_only, 200)):
        assert batch(server, f"spaces/{private}.git", "download", one, who).status_code == status
    assert batch(server, f"spaces/{unique}-missing/x.git", "download", one).status_code == 401
    assert batch(server, f"spaces/alice/{unique}-missing.git", "download", one, bob).status_code == 404
    bad = httpx.post(
        f"{server.url}/spaces/{public}.git/info/lfs/objects/batch",
        json={"operation": "upload", "objects": one},
        auth=("anyone", "hf_not_a_token"),
    )
    assert bad.status_code == 401 and bad.headers["www-authenticate"].startswith("Basic")
    assert batch(server, f"spaces/{private}.git", "upload", one, alice).status_code == 200


def test_a_pull_requests_author_pushes_lfs_files_to_it(server, alice, bob, api, git, url, unique) -> None:  # type: ignore[no-untyped-def]
    """git-lfs names the ref it pushes to in its batch request: the author of an open pull request (no write access)
    may upload objects for ``refs/pr/N`` (theirs alone until committed), then push them there; not for a branch,
    nor for another's pull request."""
    from huggingface_hub import HfApi

    repo_id = f"alice/{unique}"
    api.create_repo(repo_id, repo_type="space", space_sdk="static")
    num = HfApi(endpoint=server.url, token=bob).create_pull_request(repo_id, "Weights", repo_type="space").num
    ref = f"refs/pr/{num}"
    one = [obj(b"bob's weights")]
    path = f"spaces/{repo_id}.git"
    assert batch(server, path, "upload", one, bob).status_code == 403  # no ref named: as before
    assert batch(server, path, "upload", one, bob, ref={"name": "refs/heads/main"}).status_code == 403
    assert batch(server, path, "upload", one, server.user("carol"), ref={"name": ref}).status_code == 403
    assert batch(server, path, "upload", one, bob, ref={"name": ref}).status_code == 200

    clone = git.clone(url(server.url, "space", repo_id, bob), "bob")
    git.run("fetch", "origin", f"{ref}:pr", cwd=clone)
    git.run("checkout", "-q", "pr", cwd=clone)
    git.run("lfs", "track", "*.bin", cwd=clone)
    git.run("add", ".gitattributes", cwd=clone)
    data = os.urandom(3000)
    git.commit_file(clone, "weights.bin", data, "Add weights")
    git.run("push", "origin", f"HEAD:{ref}", cwd=clone)
    [entry] = api.get_paths_info(repo_id, ["weights.bin"], repo_type="space", revision=ref)
    assert entry.lfs is not None and entry.lfs.sha256 == hashlib.sha256(data).hexdigest()
    assert Path(api.hf_hub_download(repo_id, "weights.bin", repo_type="space", revision=ref,
                                    cache_dir=git.tmp / "cache")).read_bytes() == data  # fmt: skip


def test_malformed_batch_requests(server, alice, api, unique) -> None:  # type: ignore[no-untyped-def]
    repo_id = f"alice/{unique}"
    api.create_repo(repo_id)
    path = f"{server.url}/{repo_id}.git/info/lfs/objects/batch"
    auth = {"Authorization": f"Bearer {alice}", **LFS}
    assert httpx.post(path, content=b"{not json", headers=auth).status_code == 400
    assert httpx.post(path, json=[1, 2], headers=auth).status_code == 400
    r = httpx.post(path, json={"operation": "delete", "objects": []}, headers=auth)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/vnd.git-lfs+json")
    assert httpx.post(path, json={"operation": "upload", "objects": "x"}, headers=auth).status_code == 422
    r = httpx.post(path, json={"operation": "upload", "objects": [], "hash_algo": "sha512"}, headers=auth)
    assert r.status_code == 409
    r = batch(server, repo_id, "upload", [{"oid": "xyz", "size": 1}, {"oid": "a" * 64, "size": -1}], alice)
    assert r.status_code == 200
    assert [o["error"]["code"] for o in r.json()["objects"]] == [422, 422]


@pytest.mark.slow  # a second server of its own (small_server)
def test_batch_refuses_objects_over_the_limit(small_server) -> None:  # type: ignore[no-untyped-def]
    from huggingface_hub import HfApi

    token = small_server.user("alice")
    HfApi(endpoint=small_server.url, token=token).create_repo("alice/big")
    r = batch(small_server, "alice/big.git", "upload", [{"oid": "c" * 64, "size": 2_000_000}], token)
    assert r.json()["objects"][0]["error"]["code"] == 422
    r = batch(small_server, "alice/big.git", "upload", [{"oid": "c" * 64, "size": 1000}], token)
    assert "upload" in r.json()["objects"][0]["actions"]
