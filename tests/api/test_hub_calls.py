"""Issue 11, "other calls": auth_check, typed errors for every form of a missing repo, short commit shas as revisions,
tags on missing revisions, deleting a folder by its path, repo ids in any case, listings as the client asks for them,
space templates. The real client (2.4.0) and raw HTTP on the Hub app in-process (tests/inprocess.py)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, hf_hub_url
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.inprocess import InProcessHub


@pytest.fixture(scope="module")
def alice(hub: InProcessHub) -> str:
    return hub.user("alice")


@pytest.fixture(scope="module")
def bob(hub: InProcessHub) -> str:
    return hub.user("bob")


@pytest.fixture
def api(hub: InProcessHub, alice: str) -> HfApi:
    return hub.api(alice)


@pytest.fixture
def repo(api: HfApi, unique: str) -> str:
    repo_id = f"alice/{unique}"
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=b"weights", path_in_repo="sub/w.txt", repo_id=repo_id)
    return repo_id


def assert_typed(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, (r.request.url, r.status_code, r.text)
    assert r.headers.get("x-error-code") == code, (r.request.url, dict(r.headers))
    assert r.json()["error"], r.text


# ---- auth_check ----------------------------------------------------------------------------------------------
def test_auth_check_reads_and_writes(hub: InProcessHub, api: HfApi, bob: str, unique: str) -> None:
    api.create_repo(f"alice/{unique}", repo_type="space", space_sdk="static")
    api.create_repo(f"alice/{unique}-p", private=True)
    api.auth_check(f"alice/{unique}", repo_type="space")
    api.auth_check(f"alice/{unique}", repo_type="space", write=True)
    api.auth_check(f"alice/{unique}-p", write=True)
    other = hub.api(bob)
    other.auth_check(f"alice/{unique}", repo_type="space")  # public: anyone reads
    with pytest.raises(HfHubHTTPError) as e:
        other.auth_check(f"alice/{unique}", repo_type="space", write=True)
    assert e.value.response.status_code == 403
    with pytest.raises(RepositoryNotFoundError):  # private: bob cannot see it
        other.auth_check(f"alice/{unique}-p")
    with pytest.raises(RepositoryNotFoundError):
        hub.api(None).auth_check(f"alice/{unique}-p")
    with pytest.raises(HfHubHTTPError) as e:
        hub.api(None).auth_check(f"alice/{unique}", repo_type="space", write=True)
    assert e.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError) as e:
        hub.api(hub.user("alice", role="read")).auth_check(f"alice/{unique}", repo_type="space", write=True)
    assert e.value.response.status_code == 403
    with pytest.raises(RepositoryNotFoundError):
        api.auth_check(f"alice/{unique}-missing", repo_type="dataset")


# ---- a missing repo, in every form ---------------------------------------------------------------------------
MISSING_FORMS = [
    "/api/{T}/{id}",
    "/api/{T}/{id}/revision/main",
    "/api/{T}/{id}/revision/refs%2Fpr%2F1",
    "/api/{T}/{id}/tree/main",
    "/api/{T}/{id}/tree/main/sub%2Fdir",
    "/api/{T}/{id}/refs",
    "/api/{T}/{id}/commits/main",
    "/api/{T}/{id}/auth-check",
    "/api/{T}/{id}/auth-check/write",
    "/{P}{id}/resolve/main/config.json",
    "/{P}{id}/resolve/main/sub/config.json",
]


@pytest.mark.parametrize("repo_type", ["model", "dataset", "space"])
@pytest.mark.parametrize("repo_id", ["nobody-here/missing", "alice/missing-repo-x", "missing", "gpt2"])
def test_a_missing_repo_is_repo_not_found_on_every_route(
    hub: InProcessHub, alice: str, repo_type: str, repo_id: str
) -> None:
    prefix = {"model": "", "dataset": "datasets/", "space": "spaces/"}[repo_type]
    for form in MISSING_FORMS:
        path = form.format(T=repo_type + "s", id=repo_id, P=prefix)
        for method in ("GET", "HEAD") if "/resolve/" in path else ("GET",):
            for token in (alice, None):
                headers = {"authorization": f"Bearer {token}"} if token else {}
                r = hub.http.request(method, hub.url + path, headers=headers)
                assert r.status_code == 404, (method, path, r.status_code, r.text)
                assert r.headers.get("x-error-code") == "RepoNotFound", (method, path, dict(r.headers))
                if method == "GET":
                    assert r.json()["error"], r.text


@pytest.mark.parametrize("repo_id", ["gpt2", "nobody-here/missing"])
def test_the_client_raises_repository_not_found_for_a_missing_repo(hub: InProcessHub, api: HfApi, repo_id: str) -> None:
    for repo_type in ("model", "dataset", "space"):
        with pytest.raises(RepositoryNotFoundError):
            api.repo_info(repo_id, repo_type=repo_type)
        with pytest.raises(RepositoryNotFoundError):
            api.repo_info(repo_id, repo_type=repo_type, revision="v1")
        with pytest.raises(RepositoryNotFoundError):
            api.list_repo_files(repo_id, repo_type=repo_type)
        with pytest.raises(RepositoryNotFoundError):
            list(api.list_repo_tree(repo_id, path_in_repo="a/b", repo_type=repo_type))
        with pytest.raises(RepositoryNotFoundError):
            api.get_hf_file_metadata(url=hf_hub_url(repo_id, "x.json", repo_type=repo_type, endpoint=hub.url))
        assert api.repo_exists(repo_id, repo_type=repo_type) is False
        assert api.file_exists(repo_id, "x.json", repo_type=repo_type) is False
    api.delete_repo(repo_id, missing_ok=True)


def test_a_missing_revision_or_file_keeps_its_own_code(hub: InProcessHub, repo: str) -> None:
    assert_typed(hub.http.get(f"{hub.url}/api/models/{repo}/revision/nope"), 404, "RevisionNotFound")
    assert_typed(hub.http.get(f"{hub.url}/api/models/{repo}/tree/nope"), 404, "RevisionNotFound")
    assert_typed(hub.http.get(f"{hub.url}/{repo}/resolve/main/nope.txt"), 404, "EntryNotFound")
    assert_typed(hub.http.get(f"{hub.url}/api/models/{repo}/tree/main/nope"), 404, "EntryNotFound")


# ---- tags, short shas ----------------------------------------------------------------------------------------
def test_a_tag_on_a_missing_revision_is_revision_not_found(api: HfApi, repo: str) -> None:
    with pytest.raises(RevisionNotFoundError):
        api.create_tag(repo, tag="v1", revision="no-such-branch")
    with pytest.raises(RevisionNotFoundError):
        api.create_tag(repo, tag="v1", revision="0123456789abcdef0123456789abcdef01234567")
    with pytest.raises(RevisionNotFoundError):
        api.delete_tag(repo, tag="never-made")
    assert api.list_repo_refs(repo).tags == []


def test_short_commit_shas_are_revisions(hub: InProcessHub, api: HfApi, repo: str) -> None:
    full = api.repo_info(repo).sha
    assert full is not None
    for short in (full[:7], full[:12], full[:7].upper()):
        assert api.repo_info(repo, revision=short).sha == full
        assert "sub/w.txt" in api.list_repo_files(repo, revision=short)
        assert api.list_repo_commits(repo, revision=short)[0].commit_id == full
    path = api.hf_hub_download(repo, "sub/w.txt", revision=full[:8], cache_dir=str(hub.data_dir / f"c-{full[:6]}"))
    assert Path(path).read_bytes() == b"weights"
    api.create_tag(repo, tag="short", revision=full[:9])
    assert {t.name: t.target_commit for t in api.list_repo_refs(repo).tags} == {"short": full}
    api.create_branch(repo, branch="from-short", revision=full[:10])
    assert {b.name: b.target_commit for b in api.list_repo_refs(repo).branches}["from-short"] == full
    for too_short in (full[:6], full[:4]):  # fewer than 7 hex digits are not a revision
        with pytest.raises(RevisionNotFoundError):
            api.repo_info(repo, revision=too_short)


def test_an_ambiguous_short_sha_is_a_clear_error(hub: InProcessHub, api: HfApi, unique: str) -> None:
    """Two commits sharing 7 hex digits take about 20,000 commits to occur by chance; the pair is found by hashing
    candidate commit objects (git's own object format) and only those two are written to the repo's object store."""
    import hashlib

    import pygit2

    repo_id = f"alice/{unique}"
    api.create_repo(repo_id)
    head = api.repo_info(repo_id).sha
    assert head is not None
    store = pygit2.Repository(str(hub.ctx.git.path(_repo_db_id(hub, repo_id))))
    tree = str(store[head].tree_id)
    seen: dict[str, bytes] = {}
    for i in range(2_000_000):
        body = f"tree {tree}\nparent {head}\nauthor a <a@x> 0 +0000\ncommitter a <a@x> 0 +0000\n\n{i}\n".encode()
        sha = hashlib.sha1(b"commit %d\0" % len(body) + body).hexdigest()
        if sha[:7] in seen:
            break
        seen[sha[:7]] = body
    else:
        raise AssertionError("no collision")
    for data in (seen[sha[:7]], body):
        store.odb.write(pygit2.enums.ObjectType.COMMIT, data)
    with pytest.raises(HfHubHTTPError) as e:
        api.repo_info(repo_id, revision=sha[:7])
    assert e.value.response.status_code == 400
    assert "ambiguous revision" in str(e.value).lower()
    other = seen_sha(seen[sha[:7]])
    enough = next(n for n in range(8, 41) if sha[:n] != other[:n])  # one more digit tells them apart
    assert api.repo_info(repo_id, revision=sha[:enough]).sha == sha
    assert api.repo_info(repo_id, revision=other[:enough]).sha == other


def seen_sha(body: bytes) -> str:
    import hashlib

    return hashlib.sha1(b"commit %d\0" % len(body) + body).hexdigest()


def _repo_db_id(hub: InProcessHub, repo_id: str) -> str:
    from spacehub.services import repos

    with hub.ctx.db.transaction() as s:
        repo = repos.find_repo(s, "model", repo_id)
        assert repo is not None
        return repo.id


# ---- deleting a folder ---------------------------------------------------------------------------------------
def test_delete_a_folder_by_its_path(api: HfApi, unique: str) -> None:
    repo_id = f"alice/{unique}"
    api.create_repo(repo_id)
    api.create_commit(
        repo_id,
        operations=[
            CommitOperationAdd("a/b/one.txt", b"1"),
            CommitOperationAdd("a/two.txt", b"2"),
            CommitOperationAdd("ab.txt", b"3"),
            CommitOperationAdd("c/three.txt", b"4"),
        ],
        commit_message="files",
    )
    api.create_commit(repo_id, operations=[CommitOperationDelete("a", is_folder=True)], commit_message="rm a")
    assert set(api.list_repo_files(repo_id)) == {".gitattributes", "ab.txt", "c/three.txt"}
    api.delete_folder("c/", repo_id)
    assert set(api.list_repo_files(repo_id)) == {".gitattributes", "ab.txt"}
    with pytest.raises(EntryNotFoundError):
        api.delete_folder("a", repo_id)
    with pytest.raises(EntryNotFoundError) as e:  # a file is not a folder
        api.create_commit(repo_id, operations=[CommitOperationDelete("ab.txt", is_folder=True)], commit_message="x")
    assert "folder" in str(e.value)


def test_delete_file_on_a_folder_path_says_to_delete_the_folder(api: HfApi, unique: str) -> None:
    repo_id = f"alice/{unique}"
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=b"1", path_in_repo="d/x.txt", repo_id=repo_id)
    with pytest.raises(EntryNotFoundError) as e:
        api.delete_file("d", repo_id)
    assert "is a folder" in str(e.value)
    assert "d/x.txt" in api.list_repo_files(repo_id)


# ---- repo ids in any case ------------------------------------------------------------------------------------
def test_repo_ids_in_any_case_resolve_to_the_repo(hub: InProcessHub, api: HfApi, unique: str) -> None:
    repo_id = f"alice/{unique}-Case"
    api.create_repo(repo_id, repo_type="space", space_sdk="static")
    shouting = repo_id.upper()
    info = api.space_info(shouting)
    assert info.id == repo_id  # the canonical spelling comes back
    api.upload_file(path_or_fileobj=b"hi", path_in_repo="x.txt", repo_id=shouting, repo_type="space")
    assert "x.txt" in api.list_repo_files(repo_id.lower(), repo_type="space")
    path = api.hf_hub_download(shouting, "x.txt", repo_type="space", cache_dir=str(hub.data_dir / f"cc-{unique}"))
    assert Path(path).read_bytes() == b"hi"
    api.auth_check(repo_id.lower(), repo_type="space", write=True)
    assert api.repo_exists(shouting, repo_type="space")
    with pytest.raises(HfHubHTTPError) as e:  # two repos never differ only in case
        api.create_repo(repo_id.lower(), repo_type="space", space_sdk="static")
    assert e.value.response.status_code == 409
    assert api.create_repo(shouting, repo_type="space", space_sdk="static", exist_ok=True).repo_id == repo_id
    assert len([s for s in api.list_spaces(author="alice") if s.id.lower() == repo_id.lower()]) == 1
