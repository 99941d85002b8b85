"""huggingface_hub 2.4.0 against the live server: accounts, repo lifecycle, info, listing, tree, refs and history."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import (
    BadRequestError,
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import RepoFile, RepoFolder, SpaceInfo


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def is_sha(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 40 and all(c in "0123456789abcdef" for c in value)


# ---- accounts ------------------------------------------------------------------------------------------------
def test_whoami_returns_name_type_orgs_and_token_role(api: HfApi, acme: str) -> None:
    me = api.whoami()
    assert me["name"] == "alice"
    assert me["type"] == "user"
    assert {"name": acme, "roleInOrg": "write"}.items() <= next(o for o in me["orgs"] if o["name"] == acme).items()
    assert me["auth"]["accessToken"]["role"] == "write"
    assert me["auth"]["accessToken"]["displayName"]


def test_whoami_reports_a_read_token_role(server: Any, alice: str) -> None:
    read = HfApi(endpoint=server.url, token=server.user("alice", role="read"))
    assert read.whoami()["auth"]["accessToken"]["role"] == "read"


def test_whoami_with_a_bad_token_is_401(server: Any) -> None:
    with pytest.raises(HfHubHTTPError) as e:
        HfApi(endpoint=server.url, token="hf_definitely_not_a_token_0000000000").whoami()
    assert e.value.response.status_code == 401


def test_whoami_without_a_token_is_401(server: Any) -> None:
    r = httpx.get(f"{server.url}/api/whoami-v2")
    assert r.status_code == 401
    assert r.json()["error"]
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_a_bad_token_is_401_on_public_reads_too(server: Any, repo: str) -> None:
    with pytest.raises(HfHubHTTPError) as e:
        HfApi(endpoint=server.url, token="hf_definitely_not_a_token_0000000000").model_info(repo)
    assert e.value.response.status_code == 401


# ---- create / delete / move ----------------------------------------------------------------------------------
def test_create_repo_makes_model_dataset_and_space(api: HfApi, server: Any, unique: str) -> None:
    url = api.create_repo(f"alice/{unique}-m")
    assert url.repo_id == f"alice/{unique}-m" and url.repo_type == "model"
    assert str(url) == f"{server.url}/alice/{unique}-m"
    url = api.create_repo(f"alice/{unique}-d", repo_type="dataset")
    assert str(url) == f"{server.url}/datasets/alice/{unique}-d"
    url = api.create_repo(f"alice/{unique}-s", repo_type="space", space_sdk="static")
    assert str(url) == f"{server.url}/spaces/alice/{unique}-s"
    files = set(api.list_repo_files(f"alice/{unique}-s", repo_type="space"))
    assert files == {".gitattributes", "README.md", "index.html", "style.css"}
    assert api.list_repo_commits(f"alice/{unique}-m")[-1].title == "initial commit"


def test_create_repo_without_namespace_uses_the_token_user(api: HfApi, unique: str) -> None:
    assert api.create_repo(unique).repo_id == f"alice/{unique}"


def test_create_repo_private(api: HfApi, unique: str) -> None:
    api.create_repo(f"alice/{unique}", private=True)
    assert api.model_info(f"alice/{unique}").private is True


def test_create_repo_exist_ok_reads_the_url_of_the_409(api: HfApi, server: Any, repo: str) -> None:
    assert str(api.create_repo(repo, exist_ok=True)) == f"{server.url}/{repo}"
    r = httpx.post(
        f"{server.url}/api/repos/create",
        json={"name": repo.split("/")[1], "organization": "alice"},
        headers={"authorization": f"Bearer {api.token}"},
    )
    assert r.status_code == 409
    assert r.json()["url"] == f"{server.url}/{repo}"


def test_create_repo_twice_without_exist_ok_raises_409(api: HfApi, repo: str) -> None:
    with pytest.raises(HfHubHTTPError) as e:
        api.create_repo(repo)
    assert e.value.response.status_code == 409


def test_create_repo_with_an_invalid_name_is_a_bad_request(server: Any, alice: str) -> None:
    # the client refuses such names itself: send them raw
    for name in ("-bad-", "a--b", "x.git", "a" * 97):
        r = httpx.post(
            f"{server.url}/api/repos/create", json={"name": name}, headers={"authorization": f"Bearer {alice}"}
        )
        assert r.status_code == 400, name
        assert r.headers["x-error-message"]


def test_create_space_with_an_unknown_sdk_is_refused(server: Any, alice: str, unique: str) -> None:
    r = httpx.post(
        f"{server.url}/api/repos/create",
        json={"name": unique, "type": "space", "sdk": "flask"},
        headers={"authorization": f"Bearer {alice}"},
    )
    assert r.status_code == 400 and "sdk" in r.json()["error"]


def test_create_repo_under_another_user_is_forbidden(api: HfApi, bob: str, unique: str) -> None:
    with pytest.raises(HfHubHTTPError) as e:
        api.create_repo(f"bob/{unique}")
    assert e.value.response.status_code == 403


def test_write_with_a_read_token_is_forbidden(server: Any, repo: str, unique: str) -> None:
    read = HfApi(endpoint=server.url, token=server.user("alice", role="read"))
    assert read.model_info(repo).id == repo
    with pytest.raises(HfHubHTTPError) as e:
        read.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo)
    assert e.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as e:
        read.create_repo(f"alice/{unique}-by-read-token")
    assert e.value.response.status_code == 403


def test_delete_repo(api: HfApi, repo: str) -> None:
    api.delete_repo(repo)
    assert not api.repo_exists(repo)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(repo)


def test_delete_repo_missing_ok(api: HfApi, unique: str) -> None:
    api.delete_repo(f"alice/{unique}-never", missing_ok=True)
    with pytest.raises(RepositoryNotFoundError):
        api.delete_repo(f"alice/{unique}-never")


def test_delete_then_recreate_gives_a_fresh_repo(api: HfApi, repo: str) -> None:
    api.upload_file(path_or_fileobj=b"old", path_in_repo="old.txt", repo_id=repo)
    api.delete_repo(repo)
    api.create_repo(repo)
    assert api.list_repo_files(repo) == [".gitattributes"]


def test_delete_repo_of_another_user_is_refused(api: HfApi, bob_api: HfApi, repo: str) -> None:
    with pytest.raises(HfHubHTTPError) as e:
        bob_api.delete_repo(repo)
    assert e.value.response.status_code == 403
    assert api.repo_exists(repo)


def test_move_repo_renames_and_keeps_content(api: HfApi, repo: str, unique: str) -> None:
    api.upload_file(path_or_fileobj=b"kept", path_in_repo="kept.txt", repo_id=repo)
    sha = api.model_info(repo).sha
    api.move_repo(from_id=repo, to_id=f"alice/{unique}-moved")
    info = api.model_info(f"alice/{unique}-moved")
    assert info.id == f"alice/{unique}-moved" and info.sha == sha
    assert "kept.txt" in api.list_repo_files(f"alice/{unique}-moved")
    assert f"alice/{unique}-moved" in {m.id for m in api.list_models(author="alice", search=unique)}


def test_move_repo_onto_an_existing_repo_is_a_conflict(api: HfApi, repo: str, unique: str) -> None:
    api.create_repo(f"alice/{unique}-other")
    with pytest.raises(HfHubHTTPError) as e:
        api.move_repo(from_id=repo, to_id=f"alice/{unique}-other")
    assert e.value.response.status_code == 409


def test_move_repo_back_to_its_old_name(api: HfApi, repo: str, unique: str) -> None:
    api.move_repo(from_id=repo, to_id=f"alice/{unique}-tmp")
    api.move_repo(from_id=f"alice/{unique}-tmp", to_id=repo)
    assert api.model_info(repo).id == repo
    assert api.model_info(f"alice/{unique}-tmp").id == repo  # the other old name still leads to it


def test_move_repo_onto_the_old_name_of_another_repo(api: HfApi, repo: str, unique: str) -> None:
    api.move_repo(from_id=repo, to_id=f"alice/{unique}-renamed")
    api.create_repo(f"alice/{unique}-other")
    api.upload_file(path_or_fileobj=b"o", path_in_repo="other.txt", repo_id=f"alice/{unique}-other")
    api.move_repo(from_id=f"alice/{unique}-other", to_id=repo)  # only a redirect had that name
    assert "other.txt" in api.list_repo_files(repo)
    assert "other.txt" not in api.list_repo_files(f"alice/{unique}-renamed")


def test_a_new_repo_takes_the_old_name_of_a_moved_one(api: HfApi, repo: str, unique: str) -> None:
    api.move_repo(from_id=repo, to_id=f"alice/{unique}-renamed")
    with pytest.raises(HfHubHTTPError) as e:  # the live name is taken, in any case
        api.create_repo(f"alice/{unique}-RENAMED")
    assert e.value.response.status_code == 409
    api.create_repo(repo.upper().replace("ALICE/", "alice/"))  # only a redirect had that name
    api.upload_file(path_or_fileobj=b"n", path_in_repo="new.txt", repo_id=repo)
    assert "new.txt" in api.list_repo_files(repo)
    assert "new.txt" not in api.list_repo_files(f"alice/{unique}-renamed")


def test_move_then_delete_the_moved_repo(api: HfApi, repo: str, unique: str) -> None:
    api.move_repo(from_id=repo, to_id=f"alice/{unique}-moved")
    api.delete_repo(f"alice/{unique}-moved")
    assert not api.repo_exists(f"alice/{unique}-moved")
    assert not api.repo_exists(repo)


def test_move_space_to_an_org(api: HfApi, acme: str, unique: str) -> None:
    api.create_repo(f"alice/{unique}", repo_type="space", space_sdk="gradio")
    api.move_repo(from_id=f"alice/{unique}", to_id=f"{acme}/{unique}", repo_type="space")
    info = api.space_info(f"{acme}/{unique}")
    assert info.author == acme and info.subdomain == f"{acme}-{unique}".lower()


# ---- visibility and settings ---------------------------------------------------------------------------------
def test_update_repo_settings_private_flag(api: HfApi, repo: str) -> None:
    api.update_repo_settings(repo, private=True)
    assert api.model_info(repo).private is True
    api.update_repo_settings(repo, private=False)
    assert api.model_info(repo).private is False


def test_update_repo_settings_visibility(api: HfApi, unique: str) -> None:
    api.create_repo(f"alice/{unique}", repo_type="dataset")
    api.update_repo_settings(f"alice/{unique}", visibility="private", repo_type="dataset")
    assert api.dataset_info(f"alice/{unique}").private is True
    api.update_repo_settings(f"alice/{unique}", visibility="public", repo_type="dataset")
    assert api.dataset_info(f"alice/{unique}").private is False


def test_update_repo_settings_gated(api: HfApi, repo: str) -> None:
    api.update_repo_settings(repo, gated="auto")
    assert api.model_info(repo).gated == "auto"
    api.update_repo_settings(repo, gated=False)
    assert api.model_info(repo).gated is False


def test_settings_answer_json_for_old_update_repo_visibility(server: Any, alice: str, repo: str) -> None:
    # 0.21's update_repo_visibility sends {"private": bool} and returns r.json()
    r = httpx.put(
        f"{server.url}/api/models/{repo}/settings",
        content=b'{"private": true}',
        headers={"authorization": f"Bearer {alice}", "content-type": "application/json"},
    )
    assert r.status_code == 200 and r.json()["private"] is True


def test_update_repo_settings_by_a_non_owner_is_refused(api: HfApi, bob_api: HfApi, repo: str) -> None:
    with pytest.raises(HfHubHTTPError) as e:
        bob_api.update_repo_settings(repo, private=True)
    assert e.value.response.status_code == 403
    assert api.model_info(repo).private is False


# ---- info ----------------------------------------------------------------------------------------------------
def test_model_info_has_every_key_clients_read(api: HfApi, repo: str) -> None:
    api.upload_file(
        path_or_fileobj=b"---\ntags:\n- vision\nlicense: mit\n---\n", path_in_repo="README.md", repo_id=repo
    )
    info = api.model_info(repo)
    assert info.id == repo and info.author == "alice"
    assert is_sha(info.sha)
    assert info.private is False and info.likes == 0 and info.downloads == 0
    assert "vision" in info.tags
    assert isinstance(info.last_modified, dt.datetime) and isinstance(info.created_at, dt.datetime)
    assert {s.rfilename for s in info.siblings} == {".gitattributes", "README.md"}
    assert info.card_data is not None and info.card_data.license == "mit"


def test_repo_info_files_metadata(api: HfApi, repo: str) -> None:
    api.upload_file(path_or_fileobj=b"hello", path_in_repo="a.txt", repo_id=repo)
    siblings = {s.rfilename: s for s in api.model_info(repo, files_metadata=True).siblings}
    assert siblings["a.txt"].size == 5 and siblings["a.txt"].blob_id == git_sha1(b"hello")
    assert siblings["a.txt"].lfs is None


def test_dataset_info(api: HfApi, unique: str) -> None:
    api.create_repo(f"alice/{unique}", repo_type="dataset")
    info = api.dataset_info(f"alice/{unique}")
    assert info.id == f"alice/{unique}" and is_sha(info.sha) and info.private is False
    assert isinstance(info.last_modified, dt.datetime) and info.tags == [] and info.likes == 0
    assert [s.rfilename for s in info.siblings] == [".gitattributes"]


def test_space_info_has_sdk_subdomain_host_and_runtime(api: HfApi, server: Any, unique: str) -> None:
    api.create_repo(f"alice/{unique}", repo_type="space", space_sdk="gradio")
    info = api.space_info(f"alice/{unique}")
    assert isinstance(info, SpaceInfo)
    assert info.sdk == "gradio"
    assert info.subdomain == f"alice-{unique}".lower()
    port = server.url.rsplit(":", 1)[1]
    assert info.host == f"http://alice-{unique}.localhost:{port}".lower()
    assert info.runtime is not None and isinstance(info.runtime.stage, str)
    assert info.runtime.raw["hardware"] is not None
    assert isinstance(info.last_modified, dt.datetime) and is_sha(info.sha)
    assert info.card_data is not None and info.card_data.sdk == "gradio"
    assert {".gitattributes", "README.md"} <= {s.rfilename for s in info.siblings}


def test_repo_info_dispatches_on_repo_type(api: HfApi, unique: str) -> None:
    api.create_repo(f"alice/{unique}", repo_type="space", space_sdk="docker")
    assert type(api.repo_info(f"alice/{unique}", repo_type="space")).__name__ == "SpaceInfo"
    assert api.repo_info(f"alice/{unique}", repo_type="space").sdk == "docker"


def test_repo_info_at_a_revision(api: HfApi, repo: str) -> None:
    first = api.model_info(repo).sha
    api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo)
    assert api.model_info(repo, revision=first).sha == first
    assert {s.rfilename for s in api.model_info(repo, revision=first).siblings} == {".gitattributes"}
    with pytest.raises(RevisionNotFoundError):
        api.model_info(repo, revision="no-such-revision")


def test_repo_info_of_a_missing_repo(api: HfApi, unique: str) -> None:
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(f"alice/{unique}-missing")
    with pytest.raises(RepositoryNotFoundError):
        api.dataset_info(f"nobody-{unique}/x")


# ---- listing -------------------------------------------------------------------------------------------------
def test_list_models_by_author_search_and_limit(api: HfApi, unique: str) -> None:
    for suffix in ("a", "b", "c"):
        api.create_repo(f"alice/{unique}-{suffix}")
    found = list(api.list_models(author="alice", search=unique))
    assert {m.id for m in found} == {f"alice/{unique}-{s}" for s in "abc"}
    assert all(m.private is False and is_sha(m.sha) for m in found)
    assert len(list(api.list_models(author="alice", search=unique, limit=2))) == 2
    assert list(api.list_models(author="bob", search=unique)) == []


def test_list_search_matches_the_full_repo_id(api: HfApi, unique: str) -> None:
    api.create_repo(f"alice/{unique}-full")
    assert [m.id for m in api.list_models(search=f"alice/{unique}-full")] == [f"alice/{unique}-full"]


def test_list_search_keeps_underscores(api: HfApi, unique: str) -> None:
    api.create_repo(f"alice/{unique}_under_score")
    api.create_repo(f"alice/{unique}-underXscore")
    assert [m.id for m in api.list_models(search=f"{unique}_under_")] == [f"alice/{unique}_under_score"]


def test_list_datasets_and_spaces(api: HfApi, unique: str) -> None:
    api.create_repo(f"alice/{unique}", repo_type="dataset")
    api.create_repo(f"alice/{unique}", repo_type="space", space_sdk="static")
    assert [d.id for d in api.list_datasets(author="alice", search=unique)] == [f"alice/{unique}"]
    spaces = list(api.list_spaces(author="alice", search=unique, limit=10))
    assert [s.id for s in spaces] == [f"alice/{unique}"]
    assert spaces[0].sdk == "static"
    assert list(api.list_models(author="alice", search=unique)) == []


def test_list_models_sorted_by_last_modified(api: HfApi, unique: str) -> None:
    for suffix in ("old", "new"):
        api.create_repo(f"alice/{unique}-{suffix}")
    api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=f"alice/{unique}-old")
    ids = [m.id for m in api.list_models(search=unique, sort="last_modified")]
    assert ids == [f"alice/{unique}-old", f"alice/{unique}-new"]


def test_list_models_follows_pagination(server: Any, api: HfApi, unique: str) -> None:
    for i in range(3):
        api.create_repo(f"alice/{unique}-p{i}")
    r = httpx.get(f"{server.url}/api/models", params={"search": unique, "limit": 2})
    assert len(r.json()) == 2
    # a page smaller than what is left carries an absolute next link, that the client follows
    r = httpx.get(f"{server.url}/api/models", params={"search": unique, "limit": 5, "cursor": 1})
    assert [m["id"] for m in r.json()] and "link" not in r.headers
    assert len(list(api.list_models(search=unique))) == 3


# ---- files ---------------------------------------------------------------------------------------------------
@pytest.fixture
def tree_repo(api: HfApi, repo: str) -> str:
    ops = [
        CommitOperationAdd(path_in_repo=path, path_or_fileobj=path.encode())
        for path in ("top.txt", "sub/x.txt", "sub/y.txt", "sub/deep/z.txt", "other/o.txt")
    ]
    api.create_commit(repo, ops, commit_message="tree")
    return repo


def test_list_repo_files_is_recursive_and_files_only(api: HfApi, tree_repo: str) -> None:
    assert sorted(api.list_repo_files(tree_repo)) == sorted(
        [".gitattributes", "top.txt", "sub/x.txt", "sub/y.txt", "sub/deep/z.txt", "other/o.txt"]
    )


def test_list_repo_tree_root_and_recursive(api: HfApi, tree_repo: str) -> None:
    root = {e.path: type(e) for e in api.list_repo_tree(tree_repo)}
    assert root == {".gitattributes": RepoFile, "top.txt": RepoFile, "sub": RepoFolder, "other": RepoFolder}
    everything = {e.path: e for e in api.list_repo_tree(tree_repo, recursive=True)}
    assert isinstance(everything["sub/deep"], RepoFolder)
    z = everything["sub/deep/z.txt"]
    assert isinstance(z, RepoFile) and z.size == len(b"sub/deep/z.txt") and z.blob_id == git_sha1(b"sub/deep/z.txt")


def test_list_repo_tree_of_a_subfolder(api: HfApi, tree_repo: str) -> None:
    sub = {e.path: type(e) for e in api.list_repo_tree(tree_repo, path_in_repo="sub")}
    assert sub == {"sub/x.txt": RepoFile, "sub/y.txt": RepoFile, "sub/deep": RepoFolder}
    deep = [e.path for e in api.list_repo_tree(tree_repo, path_in_repo="sub/deep")]
    assert deep == ["sub/deep/z.txt"]
    recursive = {e.path for e in api.list_repo_tree(tree_repo, path_in_repo="sub", recursive=True)}
    assert recursive == {"sub/x.txt", "sub/y.txt", "sub/deep", "sub/deep/z.txt"}


def test_list_repo_tree_expand_gives_last_commits(api: HfApi, tree_repo: str) -> None:
    api.upload_file(path_or_fileobj=b"changed", path_in_repo="sub/x.txt", repo_id=tree_repo, commit_message="later")
    entries = {e.path: e for e in api.list_repo_tree(tree_repo, path_in_repo="sub", expand=True)}
    assert entries["sub/x.txt"].last_commit.title == "later"
    assert entries["sub/y.txt"].last_commit.title == "tree"
    assert isinstance(entries["sub/y.txt"].last_commit.date, dt.datetime)


def test_list_repo_tree_of_a_missing_folder_is_entry_not_found(api: HfApi, tree_repo: str) -> None:
    with pytest.raises(EntryNotFoundError):
        list(api.list_repo_tree(tree_repo, path_in_repo="nope"))
    with pytest.raises(RevisionNotFoundError):
        list(api.list_repo_tree(tree_repo, revision="nope"))


def test_list_repo_tree_pages_past_the_expanded_page_size(api: HfApi, repo: str) -> None:
    ops = [CommitOperationAdd(path_in_repo=f"many/f{i:03d}.txt", path_or_fileobj=b"%d" % i) for i in range(120)]
    api.create_commit(repo, ops, commit_message="many")
    expanded = list(api.list_repo_tree(repo, path_in_repo="many", expand=True))
    assert len(expanded) == 120 and len({e.path for e in expanded}) == 120
    assert all(e.last_commit is not None for e in expanded)
    assert len(list(api.list_repo_tree(repo, path_in_repo="many"))) == 120


def test_list_repo_tree_pages_past_a_thousand_entries(api: HfApi, repo: str) -> None:
    ops = [CommitOperationAdd(path_in_repo=f"k/{i:04d}", path_or_fileobj=b"") for i in range(1010)]
    api.create_commit(repo, ops, commit_message="1010 files")
    assert len(api.list_repo_files(repo)) == 1011


def test_get_paths_info(api: HfApi, tree_repo: str) -> None:
    infos = {i.path: i for i in api.get_paths_info(tree_repo, ["sub", "top.txt", "missing.txt", "sub/deep/z.txt"])}
    assert set(infos) == {"sub", "top.txt", "sub/deep/z.txt"}
    assert isinstance(infos["sub"], RepoFolder)
    assert infos["top.txt"].size == 7 and infos["top.txt"].blob_id == git_sha1(b"top.txt")
    expanded = api.get_paths_info(tree_repo, "top.txt", expand=True)
    assert expanded[0].last_commit is not None and expanded[0].last_commit.title == "tree"


def test_paths_and_revisions_with_special_characters(api: HfApi, repo: str) -> None:
    api.create_branch(repo, branch="feature/x")
    path = "dir with space/ünï #1.txt"
    api.upload_file(path_or_fileobj=b"special", path_in_repo=path, repo_id=repo, revision="feature/x")
    assert path in api.list_repo_files(repo, revision="feature/x")
    assert [e.path for e in api.list_repo_tree(repo, path_in_repo="dir with space", revision="feature/x")] == [path]
    assert api.get_paths_info(repo, [path], revision="feature/x")[0].size == 7
    assert api.file_exists(repo, path, revision="feature/x")
    assert api.list_repo_commits(repo, revision="feature/x")[0].title.startswith("Upload")


# ---- refs and history ----------------------------------------------------------------------------------------
def test_create_branch_and_exist_ok(api: HfApi, repo: str) -> None:
    api.create_branch(repo, branch="dev")
    api.create_branch(repo, branch="dev", exist_ok=True)
    with pytest.raises(HfHubHTTPError) as e:
        api.create_branch(repo, branch="dev")
    assert e.value.response.status_code == 409
    assert {b.name for b in api.list_repo_refs(repo).branches} == {"main", "dev"}


def test_create_branch_from_a_revision(api: HfApi, repo: str) -> None:
    first = api.model_info(repo).sha
    api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo)
    api.create_tag(repo, tag="v0", revision=first)
    api.create_branch(repo, branch="from-sha", revision=first)
    api.create_branch(repo, branch="from-tag", revision="v0")
    branches = {b.name: b.target_commit for b in api.list_repo_refs(repo).branches}
    assert branches["from-sha"] == first and branches["from-tag"] == first
    with pytest.raises(RevisionNotFoundError):
        api.create_branch(repo, branch="from-nothing", revision="no-such-rev")


def test_create_tag_lightweight_and_annotated(api: HfApi, repo: str) -> None:
    sha = api.model_info(repo).sha
    api.create_tag(repo, tag="v1")
    api.create_tag(repo, tag="v1.1", tag_message="annotated")
    api.create_tag(repo, tag="v1", exist_ok=True)
    with pytest.raises(HfHubHTTPError) as e:
        api.create_tag(repo, tag="v1")
    assert e.value.response.status_code == 409
    refs = api.list_repo_refs(repo)
    assert {t.name: t.target_commit for t in refs.tags} == {"v1": sha, "v1.1": sha}
    assert {t.ref for t in refs.tags} == {"refs/tags/v1", "refs/tags/v1.1"}
    assert api.model_info(repo, revision="v1.1").sha == sha


def test_delete_branch_and_tag(api: HfApi, repo: str) -> None:
    api.create_branch(repo, branch="gone")
    api.create_tag(repo, tag="gone-tag", tag_message="annotated tags delete too")
    api.create_tag(repo, tag="light")
    api.delete_branch(repo, branch="gone")
    api.delete_tag(repo, tag="gone-tag")
    api.delete_tag(repo, tag="light")
    refs = api.list_repo_refs(repo)
    assert [b.name for b in refs.branches] == ["main"] and refs.tags == []
    with pytest.raises(RevisionNotFoundError):
        api.delete_branch(repo, branch="gone")
    with pytest.raises(RevisionNotFoundError):
        api.delete_tag(repo, tag="gone-tag")
    with pytest.raises(BadRequestError):
        api.delete_branch(repo, branch="main")


def test_list_repo_refs_with_pull_requests(api: HfApi, repo: str) -> None:
    refs = api.list_repo_refs(repo, include_pull_requests=True)
    assert refs.pull_requests == [] and refs.converts == []
    assert refs.branches[0].name == "main" and refs.branches[0].ref == "refs/heads/main"


def test_list_repo_commits_newest_first_with_authors(api: HfApi, repo: str) -> None:
    api.upload_file(path_or_fileobj=b"1", path_in_repo="1.txt", repo_id=repo, commit_message="one")
    info = api.upload_file(
        path_or_fileobj=b"2", path_in_repo="2.txt", repo_id=repo, commit_message="two", commit_description="body"
    )
    commits = api.list_repo_commits(repo)
    assert [c.title for c in commits] == ["two", "one", "initial commit"]
    assert commits[0].commit_id == info.oid and commits[0].message == "body"
    assert commits[0].authors == ["alice"] and isinstance(commits[0].created_at, dt.datetime)
    assert [c.title for c in api.list_repo_commits(repo, revision=commits[1].commit_id)] == ["one", "initial commit"]
    api.create_tag(repo, tag="at-one", revision=commits[1].commit_id)
    assert [c.title for c in api.list_repo_commits(repo, revision="at-one")] == ["one", "initial commit"]
    assert sorted(api.list_repo_files(repo, revision="at-one")) == [".gitattributes", "1.txt"]
    formatted = api.list_repo_commits(repo, formatted=True)
    assert formatted[0].formatted_title and formatted[0].formatted_message is not None


def test_list_repo_commits_pages_past_a_hundred(api: HfApi, repo: str, server: Any, alice: str) -> None:
    for i in range(105):
        r = httpx.post(
            f"{server.url}/api/models/{repo}/commit/main",
            content=(
                b'{"key":"header","value":{"summary":"c%d"}}\n' % i
                + b'{"key":"file","value":{"path":"n.txt","content":"%s","encoding":"base64"}}\n'
                % __import__("base64").b64encode(b"%d" % i)
            ),
            headers={"authorization": f"Bearer {alice}", "content-type": "application/x-ndjson"},
        )
        assert r.status_code == 200, r.text
    commits = api.list_repo_commits(repo)
    assert len(commits) == 106 and len({c.commit_id for c in commits}) == 106
    assert commits[0].title == "c104" and commits[-1].title == "initial commit"


def test_exists_helpers(api: HfApi, tree_repo: str, unique: str) -> None:
    api.create_branch(tree_repo, branch="dev")
    assert api.repo_exists(tree_repo) and not api.repo_exists(f"alice/{unique}-missing")
    assert not api.repo_exists(tree_repo, repo_type="dataset")
    assert api.file_exists(tree_repo, "sub/x.txt") and not api.file_exists(tree_repo, "sub/nope.txt")
    assert not api.file_exists(tree_repo, "sub")  # a folder is not a file
    assert api.revision_exists(tree_repo, "dev") and not api.revision_exists(tree_repo, "nope")
    assert api.revision_exists(tree_repo, api.model_info(tree_repo).sha)
