"""LFS objects are per repository: knowing an object's sha256 does not let a writer put another repo's object into
theirs (commit API ``lfsFile`` lines, pointer files, the LFS batch API) nor a reader download it; the uploader who
proves they hold the bytes may; the blob store keeps one copy. The real client (2.4.0) and raw HTTP on the Hub app
in-process; git pushes are in tests/git/test_smart_http.py."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationCopy, HfApi
from huggingface_hub.errors import BadRequestError

from tests.inprocess import InProcessHub

DATA = b"\x00secret weights\x01" * 1000  # *.bin is LFS-tracked: stored in the blob store
OID = hashlib.sha256(DATA).hexdigest()


def pointer(oid: str = OID, size: int = len(DATA)) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n".encode()


@pytest.fixture
def people(make_hub: Any) -> tuple[InProcessHub, HfApi, HfApi, HfApi]:
    hub = make_hub()
    alice, bob, carol = (hub.api(hub.user(n)) for n in ("alice", "bob", "carol"))
    hub.cli("orgs", "create", "team")
    for who in ("bob", "carol"):
        hub.cli("orgs", "add-member", "team", who, "--role", "write")
    alice.create_repo("alice/private-model", private=True)
    alice.upload_file(path_or_fileobj=DATA, path_in_repo="w.bin", repo_id="alice/private-model")
    bob.create_repo("bob/mine")
    bob.create_repo("team/shared")
    return hub, alice, bob, carol


def commit_lines(hub: InProcessHub, token: str, repo_id: str, *lines: dict[str, Any]) -> Any:
    body = [{"key": "header", "value": {"summary": "lfs"}}, *lines]
    data = b"".join(json.dumps(line).encode() + b"\n" for line in body)
    headers = {"authorization": f"Bearer {token}", "content-type": "application/x-ndjson"}
    return hub.http.post(f"{hub.url}/api/models/{repo_id}/commit/main", content=data, headers=headers)


def lfs_line(path: str, oid: str = OID, size: int | None = len(DATA)) -> dict[str, Any]:
    value: dict[str, Any] = {"path": path, "algo": "sha256", "oid": oid}
    if size is not None:
        value["size"] = size
    return {"key": "lfsFile", "value": value}


def batch(hub: InProcessHub, token: str, repo_id: str, operation: str) -> dict[str, Any]:
    body = {"operation": operation, "transfers": ["basic"], "objects": [{"oid": OID, "size": len(DATA)}]}
    headers = {"authorization": f"Bearer {token}", "content-type": "application/vnd.git-lfs+json"}
    r = hub.http.post(f"{hub.url}/{repo_id}.git/info/lfs/objects/batch", json=body, headers=headers)
    assert r.status_code == 200, r.text
    (obj,) = r.json()["objects"]
    return obj


def test_a_known_sha256_is_not_enough(people: Any) -> None:
    hub, _, bob, _ = people
    token = hub.tokens["bob"]
    r = commit_lines(hub, token, "bob/mine", lfs_line("stolen.bin"))
    assert r.status_code == 400 and "was not uploaded to this repo" in r.json()["error"]
    with pytest.raises(BadRequestError, match="was not uploaded to this repo"):  # a pointer file, through the client
        bob.upload_file(path_or_fileobj=pointer(), path_in_repo="stolen.txt", repo_id="bob/mine")
    assert bob.list_repo_files("bob/mine") == [".gitattributes"]
    down = batch(hub, token, "bob/mine", "download")  # nor can it be downloaded through bob's repo
    assert down["error"]["code"] == 404 and "actions" not in down
    up = batch(hub, token, "bob/mine", "upload")  # stored for another repo: bob must upload the bytes himself
    assert "upload" in up["actions"]
    r = hub.http.get(f"{hub.url}/bob/mine.git/info/lfs/objects/{OID}", headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 404


def test_the_uploader_who_holds_the_bytes_may_commit_them_and_the_store_keeps_one_copy(people: Any) -> None:
    hub, _, _, carol = people
    up = batch(hub, hub.tokens["bob"], "team/shared", "upload")
    href = up["actions"]["upload"]["href"]
    wrong = hub.http.put(href, content=b"x" * len(DATA))  # the URL wants the object's very bytes
    assert wrong.status_code == 422
    assert hub.http.put(href.replace("by=bob", "by=carol"), content=DATA).status_code == 403  # signed for bob
    assert hub.http.put(href, content=DATA).status_code == 200
    # uploaded by bob, not committed yet: carol (a writer of the same repo) may not use it, bob may
    r = commit_lines(hub, hub.tokens["carol"], "team/shared", lfs_line("c.bin"))
    assert r.status_code == 400, r.text
    assert batch(hub, hub.tokens["bob"], "team/shared", "upload").get("actions") is None  # his now: skipped
    r = commit_lines(hub, hub.tokens["bob"], "team/shared", lfs_line("b.bin"))
    assert r.status_code == 200, r.text
    # committed: the repo's own object, for any writer (a copy) and reader (a download)
    r = commit_lines(hub, hub.tokens["carol"], "team/shared", lfs_line("copy.bin", size=None))
    assert r.status_code == 200, r.text
    assert batch(hub, hub.tokens["carol"], "team/shared", "download")["actions"]["download"]["href"]
    assert carol.hf_hub_download("team/shared", "copy.bin", cache_dir=str(hub.data_dir / "c")) is not None
    stored = [p for p in (hub.data_dir / "lfs").rglob("*") if p.is_file() and p.name == OID]
    assert len(stored) == 1  # deduplicated underneath


def test_own_objects_stay_usable(people: Any) -> None:
    """Copies inside a repo, inline uploads, and a duplicate's copied history keep working."""
    hub, alice, bob, _ = people
    alice.create_commit(
        "alice/private-model",
        operations=[CommitOperationCopy("w.bin", "again/w.bin")],
        commit_message="copy",
    )
    assert "again/w.bin" in alice.list_repo_files("alice/private-model")
    r = commit_lines(hub, hub.tokens["alice"], "alice/private-model", lfs_line("third.bin"))
    assert r.status_code == 200, r.text
    alice.create_commit("alice/private-model", operations=[CommitOperationAdd("p.txt", pointer())],
                        commit_message="a pointer file of her own object")  # fmt: skip
    alice.update_repo_settings("alice/private-model", private=False)
    bob.duplicate_repo("alice/private-model", "bob/dup")
    r = commit_lines(hub, hub.tokens["bob"], "bob/dup", lfs_line("mine-now.bin"))  # the duplicate's own history
    assert r.status_code == 200, r.text
    r = commit_lines(hub, hub.tokens["bob"], "bob/mine", lfs_line("still-not.bin"))  # but not his other repos
    assert r.status_code == 400


def test_repos_from_before_the_index_list_their_objects_from_their_refs(people: Any) -> None:
    """A repo made before migration 0012 has no rows: its objects are listed from its refs at the first check."""
    from sqlalchemy import delete

    from spacehub.services import repos
    from spacehub.storage.models import RepoLfsObject

    hub = people[0]
    with hub.ctx.db.transaction() as s:
        repo = repos.find_repo(s, "model", "alice/private-model")
        assert repo is not None
        s.execute(delete(RepoLfsObject).where(RepoLfsObject.repo_id == repo.id))
        repo.lfs_indexed = False
    r = commit_lines(hub, hub.tokens["alice"], "alice/private-model", lfs_line("after.bin"))
    assert r.status_code == 200, r.text
    with hub.ctx.db.transaction() as s:
        rows = s.query(RepoLfsObject).filter(RepoLfsObject.sha256 == OID).all()
        assert [(row.uploader_id, row.repo_id == repo.id) for row in rows] == [(None, True)]
