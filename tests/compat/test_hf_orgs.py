"""huggingface_hub 2.4.0 against the live server: organizations made with the CLI, and what each member role allows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError


def test_whoami_lists_the_org_with_the_role(api: HfApi, bob_api: HfApi, acme: str) -> None:
    orgs = {o["name"]: o for o in api.whoami()["orgs"]}
    assert orgs[acme]["roleInOrg"] == "write" and orgs[acme]["type"] == "org"
    assert {o["name"]: o["roleInOrg"] for o in bob_api.whoami()["orgs"]} == {acme: "read"}


def test_a_write_member_creates_and_changes_org_repos(api: HfApi, acme: str, unique: str) -> None:
    url = api.create_repo(f"{acme}/{unique}")
    assert url.repo_id == f"{acme}/{unique}"
    api.upload_file(path_or_fileobj=b"team", path_in_repo="team.txt", repo_id=f"{acme}/{unique}")
    info = api.model_info(f"{acme}/{unique}")
    assert info.author == acme and {s.rfilename for s in info.siblings} == {".gitattributes", "team.txt"}
    assert api.list_repo_commits(f"{acme}/{unique}")[0].authors == ["alice"]
    assert f"{acme}/{unique}" in {m.id for m in api.list_models(author=acme)}


def test_create_repo_with_the_organization_as_namespace_and_exist_ok(api: HfApi, acme: str, unique: str) -> None:
    api.create_repo(f"{acme}/{unique}", repo_type="space", space_sdk="gradio")
    assert api.create_repo(f"{acme}/{unique}", repo_type="space", space_sdk="gradio", exist_ok=True).repo_id == (
        f"{acme}/{unique}"
    )
    assert api.space_info(f"{acme}/{unique}").subdomain == f"{acme}-{unique}".lower()


def test_a_read_member_cannot_create_org_repos(bob_api: HfApi, acme: str, unique: str) -> None:
    with pytest.raises(HfHubHTTPError) as e:
        bob_api.create_repo(f"{acme}/{unique}")
    assert e.value.response.status_code == 403
    with pytest.raises(RepositoryNotFoundError):
        bob_api.model_info(f"{acme}/{unique}")


def test_exist_ok_for_a_read_member_falls_back_to_repo_info(
    api: HfApi, bob_api: HfApi, acme: str, unique: str, server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.create_repo(f"{acme}/{unique}")
    # The 403 of the create makes the client look the repo up instead. 2.4.0 then parses the URL it builds against
    # constants.ENDPOINT (HF_ENDPOINT), not HfApi(endpoint=…): set it, as every user of a self-hosted hub does.
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", server.url)
    assert bob_api.create_repo(f"{acme}/{unique}", exist_ok=True).repo_id == f"{acme}/{unique}"


def test_a_read_member_reads_private_org_repos_but_cannot_write(
    api: HfApi, bob_api: HfApi, acme: str, unique: str, server: Any, bob: str, cache_dir: Path
) -> None:
    repo = f"{acme}/{unique}"
    api.create_repo(repo, private=True)
    api.upload_file(path_or_fileobj=b"internal", path_in_repo="internal.txt", repo_id=repo)
    assert bob_api.model_info(repo).private is True
    assert repo in {m.id for m in bob_api.list_models(author=acme)}
    path = hf_hub_download(repo, "internal.txt", endpoint=server.url, token=bob, cache_dir=cache_dir)
    assert Path(path).read_bytes() == b"internal"
    for write in (
        lambda: bob_api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo),
        lambda: bob_api.create_branch(repo, branch="bob"),
        lambda: bob_api.update_repo_settings(repo, private=False),
        lambda: bob_api.delete_repo(repo),
    ):
        with pytest.raises(HfHubHTTPError) as e:
            write()
        assert e.value.response.status_code == 403
    assert api.model_info(repo).private is True


def test_a_non_member_does_not_see_private_org_repos(api: HfApi, acme: str, unique: str, server: Any) -> None:
    server.user("carol")
    carol = HfApi(endpoint=server.url, token=server.user("carol"))
    api.create_repo(f"{acme}/{unique}", private=True)
    with pytest.raises(RepositoryNotFoundError):
        carol.model_info(f"{acme}/{unique}")
    assert f"{acme}/{unique}" not in {m.id for m in carol.list_models(author=acme)}
    with pytest.raises(HfHubHTTPError) as e:
        carol.create_repo(f"{acme}/{unique}-carol")
    assert e.value.response.status_code == 403


def test_a_write_member_cannot_delete_or_administer_org_repos(api: HfApi, acme: str, unique: str) -> None:
    # deleting, moving and settings need admin on the org (the Hub's rule)
    api.create_repo(f"{acme}/{unique}")
    with pytest.raises(HfHubHTTPError) as e:
        api.delete_repo(f"{acme}/{unique}")
    assert e.value.response.status_code == 403
    assert api.repo_exists(f"{acme}/{unique}")


def test_an_org_admin_deletes_org_repos(server: Any, api: HfApi, unique: str) -> None:
    org = f"org-{unique}"[:40].rstrip("-")
    server.cli("orgs", "create", org)
    server.cli("orgs", "add-member", org, "alice", "--role", "admin")
    api.create_repo(f"{org}/x", private=True)
    api.update_repo_settings(f"{org}/x", private=False)
    api.move_repo(from_id=f"{org}/x", to_id=f"{org}/y")
    api.delete_repo(f"{org}/y")
    assert not api.repo_exists(f"{org}/y")
