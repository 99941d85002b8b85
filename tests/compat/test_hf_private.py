"""huggingface_hub 2.4.0 against the live server: a private repo does not exist for anyone but its owner (and the
members of its owning org): 404 RepoNotFound everywhere, never listed, never downloadable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError


@pytest.fixture
def private_repo(api: HfApi, unique: str) -> str:
    repo = f"alice/{unique}-private"
    api.create_repo(repo, private=True)
    api.upload_file(path_or_fileobj=b"secret", path_in_repo="secret.txt", repo_id=repo)
    api.create_branch(repo, branch="dev")
    return repo


@pytest.fixture(params=["anonymous", "bob"])
def outsider(request: pytest.FixtureRequest, server: Any, bob: str) -> tuple[HfApi, str | bool]:
    """A client that may not see alice's private repos, and the token its downloads use."""
    token: str | bool = False if request.param == "anonymous" else bob
    return HfApi(endpoint=server.url, token=token), token


def test_owner_sees_the_private_repo(api: HfApi, private_repo: str, server: Any, alice: str, cache_dir: Path) -> None:
    info = api.model_info(private_repo)
    assert info.private is True and {s.rfilename for s in info.siblings} == {".gitattributes", "secret.txt"}
    assert private_repo in {m.id for m in api.list_models(author="alice")}
    assert "secret.txt" in api.list_repo_files(private_repo)
    assert api.get_paths_info(private_repo, ["secret.txt"])[0].size == 6
    assert {b.name for b in api.list_repo_refs(private_repo).branches} == {"main", "dev"}
    assert api.list_repo_commits(private_repo)[0].title.startswith("Upload")
    path = hf_hub_download(private_repo, "secret.txt", endpoint=server.url, token=alice, cache_dir=cache_dir)
    assert Path(path).read_bytes() == b"secret"


def test_owner_with_a_read_token_sees_the_private_repo(server: Any, private_repo: str) -> None:
    read = HfApi(endpoint=server.url, token=server.user("alice", role="read"))
    assert read.model_info(private_repo).private is True


def test_private_repo_info_is_not_found(outsider: tuple[HfApi, Any], private_repo: str) -> None:
    client, _ = outsider
    with pytest.raises(RepositoryNotFoundError):
        client.model_info(private_repo)
    with pytest.raises(RepositoryNotFoundError):
        client.model_info(private_repo, revision="dev")
    assert not client.repo_exists(private_repo)


def test_private_repo_is_not_listed(outsider: tuple[HfApi, Any], private_repo: str, unique: str) -> None:
    client, _ = outsider
    assert private_repo not in {m.id for m in client.list_models(author="alice")}
    assert list(client.list_models(search=unique)) == []


def test_private_repo_tree_paths_refs_commits_are_not_found(outsider: tuple[HfApi, Any], private_repo: str) -> None:
    client, _ = outsider
    with pytest.raises(RepositoryNotFoundError):
        list(client.list_repo_tree(private_repo))
    with pytest.raises(RepositoryNotFoundError):
        client.list_repo_files(private_repo)
    with pytest.raises(RepositoryNotFoundError):
        client.get_paths_info(private_repo, ["secret.txt"])
    with pytest.raises(RepositoryNotFoundError):
        client.list_repo_refs(private_repo)
    with pytest.raises(RepositoryNotFoundError):
        client.list_repo_commits(private_repo)
    assert not client.file_exists(private_repo, "secret.txt")


def test_private_repo_files_cannot_be_downloaded(
    outsider: tuple[HfApi, Any], private_repo: str, server: Any, cache_dir: Path
) -> None:
    _, token = outsider
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(private_repo, "secret.txt", endpoint=server.url, token=token, cache_dir=cache_dir)
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download(private_repo, endpoint=server.url, token=token, cache_dir=cache_dir)


def test_private_repo_resolve_is_a_bare_404(server: Any, bob: str, private_repo: str) -> None:
    for headers in ({}, {"authorization": f"Bearer {bob}"}):
        for method in ("HEAD", "GET"):
            r = httpx.request(method, f"{server.url}/{private_repo}/resolve/main/secret.txt", headers=headers)
            assert r.status_code == 404 and r.headers["x-error-code"] == "RepoNotFound"
            assert "x-repo-commit" not in r.headers  # nothing about the repo leaks
            assert b"secret" not in r.content


def test_private_repo_cannot_be_changed_by_outsiders(
    outsider: tuple[HfApi, Any], private_repo: str, api: HfApi
) -> None:
    client, token = outsider
    with pytest.raises(RepositoryNotFoundError):
        client.create_branch(private_repo, branch="x")
    with pytest.raises(RepositoryNotFoundError):
        client.update_repo_settings(private_repo, private=False)
    if token:  # the anonymous client refuses to write without a token before asking
        with pytest.raises(RepositoryNotFoundError):
            client.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=private_repo)
        with pytest.raises(RepositoryNotFoundError):
            client.delete_repo(private_repo)
    assert api.model_info(private_repo).private is True
    assert sorted(api.list_repo_files(private_repo)) == [".gitattributes", "secret.txt"]


def test_create_over_a_private_repo_of_someone_else_does_not_reveal_it(
    bob_api: HfApi, private_repo: str, server: Any, alice: str
) -> None:
    with pytest.raises(HfHubHTTPError) as e:
        bob_api.create_repo(private_repo)
    assert e.value.response.status_code == 403


def test_making_a_repo_public_shows_it(api: HfApi, bob_api: HfApi, private_repo: str, unique: str) -> None:
    api.update_repo_settings(private_repo, private=False)
    assert bob_api.model_info(private_repo).private is False
    assert private_repo in {m.id for m in bob_api.list_models(search=unique)}
    api.update_repo_settings(private_repo, visibility="private")
    with pytest.raises(RepositoryNotFoundError):
        bob_api.model_info(private_repo)


def test_private_datasets_and_spaces_are_hidden_too(api: HfApi, bob_api: HfApi, unique: str) -> None:
    api.create_repo(f"alice/{unique}", repo_type="dataset", private=True)
    api.create_repo(f"alice/{unique}", repo_type="space", space_sdk="static", private=True)
    with pytest.raises(RepositoryNotFoundError):
        bob_api.dataset_info(f"alice/{unique}")
    with pytest.raises(RepositoryNotFoundError):
        bob_api.space_info(f"alice/{unique}")
    assert list(bob_api.list_datasets(search=unique)) == [] and list(bob_api.list_spaces(search=unique)) == []
    assert api.space_info(f"alice/{unique}").private is True
