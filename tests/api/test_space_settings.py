"""Secrets, variables, create_repo's Space settings and duplicates, through the real client (2.4.0) and raw HTTP on
the Hub app in-process (tests/inprocess.py: no runtime, no socket; tests/e2e/test_guide_settings.py runs the apps),
and once on a live ``spacehub serve``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import BadRequestError, HfHubHTTPError, RepositoryNotFoundError

from tests.conftest import Server
from tests.inprocess import InProcessHub

SECRET = "sv-api-8f2c1d5e9a7b"


def auth(token: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"} if token else {}


def call(hub: InProcessHub, method: str, path: str, token: str | None, body: Any = None, raw: bytes | None = None):
    content = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {**auth(token), "content-type": "application/json"}
    return hub.http.request(method, hub.url + path, content=content, headers=headers, timeout=30)


def assert_error(r: httpx.Response, status: int, text: str = "") -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"] and r.headers["x-error-message"], r.text
    assert text.lower() in r.json()["error"].lower(), r.text


@pytest.fixture
def space(api: HfApi, unique: str) -> str:
    repo_id = f"alice/{unique}"
    api.create_repo(repo_id, repo_type="space", space_sdk="gradio")
    return repo_id


def repo_dirs(hub: InProcessHub) -> set[str]:
    return {p.name for p in (hub.data_dir / "repos").iterdir()}


# ---- secrets and variables -------------------------------------------------------------------------------------
def test_secrets_are_listed_without_their_values(hub: InProcessHub, api: HfApi, space: str, alice: str) -> None:
    api.add_space_secret(space, "HF_TOKEN", SECRET, description="to upload")
    api.add_space_secret(space, "OTHER", SECRET + "-2")
    secrets = api.get_space_secrets(space)
    assert set(secrets) == {"HF_TOKEN", "OTHER"}
    assert secrets["HF_TOKEN"].description == "to upload" and secrets["OTHER"].description is None
    assert all(isinstance(s.updated_at, dt.datetime) for s in secrets.values())
    before = secrets["HF_TOKEN"].updated_at
    api.add_space_secret(space, "HF_TOKEN", SECRET + "-new")  # upsert; the description stays
    after = api.get_space_secrets(space)["HF_TOKEN"]
    assert after.description == "to upload" and after.updated_at >= before
    r = call(hub, "GET", f"/api/spaces/{space}/secrets", alice)
    assert SECRET not in r.text and "value" not in r.text, r.text
    assert call(hub, "POST", f"/api/spaces/{space}/secrets", alice, {"key": "X", "value": SECRET}).json() == {}
    api.delete_space_secret(space, "OTHER")
    api.delete_space_secret(space, "MISSING_KEY")  # not an error: the client relies on it
    assert set(api.get_space_secrets(space)) == {"HF_TOKEN", "X"}


def test_variables_answer_the_full_dict(api: HfApi, space: str) -> None:
    out = api.add_space_variable(space, "MODEL_REPO_ID", "user/repo")
    assert {k: v.value for k, v in out.items()} == {"MODEL_REPO_ID": "user/repo"}
    out = api.add_space_variable(space, "foo", "456", description="updated description")
    assert out["foo"].description == "updated description" and isinstance(out["foo"].updated_at, dt.datetime)
    assert set(api.get_space_variables(space)) == {"MODEL_REPO_ID", "foo"}
    assert set(api.delete_space_variable(space, "MODEL_REPO_ID")) == {"foo"}
    assert set(api.delete_space_variable(space, "MODEL_REPO_ID")) == {"foo"}  # missing: 200, same dict
    assert api.add_space_variable(space, "EMPTY", "")["EMPTY"].value == ""


def test_keys_must_be_environment_names_the_platform_does_not_own(api: HfApi, space: str) -> None:
    for key in ("SPACE_ID", "PORT", "HF_ENDPOINT", "CUDA_VISIBLE_DEVICES", "1X", "A-B", "A B", "x" * 200):
        for add in (api.add_space_secret, api.add_space_variable):
            with pytest.raises(BadRequestError):
                add(space, key, "v")
    assert api.get_space_secrets(space) == {} and api.get_space_variables(space) == {}


def test_a_key_is_either_a_secret_or_a_variable(api: HfApi, space: str) -> None:
    api.add_space_variable(space, "SHARED", "v")
    with pytest.raises(HfHubHTTPError) as e:
        api.add_space_secret(space, "SHARED", SECRET)
    assert e.value.response.status_code == 409 and "already a variable" in str(e.value)
    assert api.get_space_secrets(space) == {}


@pytest.mark.parametrize("kind", ["secrets", "variables"])
def test_bad_bodies_get_400_and_change_nothing(hub: InProcessHub, alice: str, space: str, kind: str) -> None:
    path = f"/api/spaces/{space}/{kind}"
    assert call(hub, "POST", path, alice, {"key": "KEEP", "value": "v"}).status_code == 200
    before = call(hub, "GET", path, alice).json()
    for method, body, raw, text in (
        ("POST", {"key": "A", "value": "v", "unknown": 1}, None, "unknown fields"),
        ("POST", {"key": "A"}, None, "value"),
        ("POST", {"value": "v"}, None, "key"),
        ("POST", {"key": 5, "value": "v"}, None, "key"),
        ("POST", {"key": "A", "value": ["v"]}, None, "value"),
        ("POST", {"key": "A", "value": "v", "description": {}}, None, "description"),
        ("POST", None, b"{not json", "malformed json"),
        ("POST", ["A", "v"], None, "json object"),
        ("POST", None, b"", "key"),
        ("DELETE", {"key": "KEEP", "value": "v"}, None, "unknown fields"),
        ("DELETE", {}, None, "key"),
        ("DELETE", None, b"KEEP", "malformed json"),
    ):
        assert_error(call(hub, method, path, alice, body, raw), 400, text)
    assert call(hub, "GET", path, alice).json() == before


def test_changing_settings_needs_write_access(hub: InProcessHub, api: HfApi, space: str, alice: str, bob: str) -> None:
    api.add_space_variable(space, "V", "1")
    api.add_space_secret(space, "S", SECRET)
    reader = hub.user("alice", role="read")
    for token, status in ((bob, 403), (reader, 403), (None, 401)):
        for method, kind in (
            ("POST", "secrets"),
            ("DELETE", "secrets"),
            ("POST", "variables"),
            ("DELETE", "variables"),
        ):
            body = {"key": "S"} if method == "DELETE" else {"key": "N", "value": "x"}
            r = call(hub, method, f"/api/spaces/{space}/{kind}", token, body)
            assert r.status_code == status, (token, method, kind, r.text)
        assert call(hub, "GET", f"/api/spaces/{space}/secrets", token).status_code == status
        assert call(hub, "GET", f"/api/spaces/{space}/variables", token).json()["V"]["value"] == "1"  # public
    assert set(api.get_space_secrets(space)) == {"S"} and set(api.get_space_variables(space)) == {"V"}


def test_a_private_space_settings_are_invisible_to_others(hub: InProcessHub, api: HfApi, unique: str, bob: str) -> None:
    repo_id = f"alice/{unique}"
    api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=True)
    bob_api = HfApi(endpoint=hub.url, token=bob)
    for fn, args in (
        (bob_api.get_space_secrets, ()),
        (bob_api.get_space_variables, ()),
        (bob_api.add_space_secret, ("K", "v")),
        (bob_api.add_space_variable, ("K", "v")),
        (bob_api.delete_space_secret, ("K",)),
        (bob_api.delete_space_variable, ("K",)),
    ):
        with pytest.raises(RepositoryNotFoundError):
            fn(repo_id, *args)


def test_an_org_write_member_may_change_settings(hub: InProcessHub, alice: str, unique: str) -> None:
    org = f"o{unique.replace('-', '')[-20:]}"
    member = f"m{unique.replace('-', '')[-20:]}"  # a user of its own: bob's orgs are asserted in test_hf_orgs
    token = hub.user(member)
    hub.cli("orgs", "create", org)
    hub.cli("orgs", "add-member", org, "alice", "--role", "admin")
    hub.cli("orgs", "add-member", org, member, "--role", "write")
    HfApi(endpoint=hub.url, token=alice).create_repo(f"{org}/s", repo_type="space", space_sdk="static")
    bob_api = HfApi(endpoint=hub.url, token=token)
    bob_api.add_space_secret(f"{org}/s", "K", SECRET)
    assert set(bob_api.get_space_secrets(f"{org}/s")) == {"K"}


# ---- create_repo's Space settings ------------------------------------------------------------------------------
def test_create_repo_sets_secrets_and_variables(api: HfApi, unique: str) -> None:
    repo_id = f"alice/{unique}"
    api.create_repo(
        repo_id,
        repo_type="space",
        space_sdk="gradio",
        space_secrets=[{"key": "HF_TOKEN", "value": SECRET, "description": "d"}],
        space_variables=[{"key": "MODEL_REPO_ID", "value": "user/repo"}],
    )
    assert api.get_space_secrets(repo_id)["HF_TOKEN"].description == "d"
    assert api.get_space_variables(repo_id)["MODEL_REPO_ID"].value == "user/repo"


@pytest.mark.parametrize(
    "extra",
    [
        {"secrets": [{"key": "SPACE_ID", "value": "x"}]},
        {"secrets": [{"key": "A", "value": "x", "oops": 1}]},
        {"variables": [{"key": "A"}]},
        {"variables": "A=x"},
        {"secrets": [{"key": "A", "value": "1"}], "variables": [{"key": "A", "value": "2"}]},
    ],
)
def test_create_repo_with_bad_settings_creates_nothing(hub: InProcessHub, alice: str, unique: str, extra: dict) -> None:
    before = repo_dirs(hub)
    body = {"name": unique, "type": "space", "sdk": "gradio", "private": False, **extra}
    assert_error(call(hub, "POST", "/api/repos/create", alice, body), 400)
    assert call(hub, "GET", f"/api/spaces/alice/{unique}", alice).status_code == 404
    assert repo_dirs(hub) == before


def test_a_create_hook_failing_after_the_repo_exists_leaves_no_git_directory(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from spacehub.config import Settings
    from spacehub.errors import PaymentRequired
    from spacehub.services import accounts
    from spacehub.services.creation import SpaceOption
    from spacehub.wiring import assemble

    settings = Settings(data_dir=tmp_path / "data", runtime={"backend": "none"})
    parts = assemble(settings)
    app = parts.app
    with parts.ctx.db.transaction() as s:
        accounts.create_user(s, "alice")
        token = accounts.create_token(s, "alice")

    def refuse(ctx: Any, s: Any, p: Any, repo: Any, body: dict) -> None:  # e.g. a paid flavor without a grant
        if repo.name == "refused":
            raise PaymentRequired("a payment card or a community grant is required")

    parts.ctx.space_options.append(SpaceOption(lambda ctx, repo_type, body: None, refuse))
    with TestClient(app) as client:
        body = {"name": "refused", "type": "space", "sdk": "gradio", "secrets": [{"key": "A", "value": SECRET}]}
        r = client.post("/api/repos/create", json=body, headers=auth(token))
        assert r.status_code == 402, r.text
        assert client.get("/api/spaces/alice/refused").status_code == 404
        assert list((settings.data_dir / "repos").glob("*.git")) == []  # (.blank-*: what new repos are copied from)
        r = client.post("/api/repos/create", json={**body, "name": "accepted"}, headers=auth(token))
        assert r.status_code == 200, r.text
        assert len(list((settings.data_dir / "repos").glob("*.git"))) == 1


# ---- duplicate -------------------------------------------------------------------------------------------------
@pytest.fixture
def source(hub: InProcessHub, api: HfApi, space: str) -> str:
    api.upload_file(path_or_fileobj=b"print('hi')\n", path_in_repo="app.py", repo_id=space, repo_type="space")
    api.create_branch(space, branch="dev", repo_type="space")
    api.create_tag(space, tag="v1", repo_type="space")
    api.add_space_variable(space, "MODEL_REPO_ID", "user/repo", description="copied")
    api.add_space_secret(space, "HF_TOKEN", SECRET)
    return space


def test_duplicate_copies_files_and_variables_but_never_secrets(api: HfApi, source: str, unique: str) -> None:
    url = api.duplicate_repo(
        source,
        f"alice/{unique}-dup",
        repo_type="space",
        space_secrets=[{"key": "NEW_SECRET", "value": SECRET + "-dup"}],
        space_variables=[{"key": "EXTRA", "value": "x"}],
    )
    dup = f"alice/{unique}-dup"
    assert url.repo_id == dup and url.repo_type == "space" and str(url).startswith(api.endpoint)
    info = api.space_info(dup)
    assert info.private is True and info.sdk == "gradio"  # private by default
    assert api.space_info(source).sha == info.sha
    assert set(api.list_repo_files(dup, repo_type="space")) == set(api.list_repo_files(source, repo_type="space"))
    refs = api.list_repo_refs(dup, repo_type="space")
    assert {b.name for b in refs.branches} == {"main", "dev"} and {t.name for t in refs.tags} == {"v1"}
    commits = [c.commit_id for c in api.list_repo_commits(dup, repo_type="space")]
    assert commits == [c.commit_id for c in api.list_repo_commits(source, repo_type="space")]
    variables = api.get_space_variables(dup)
    assert {k: v.value for k, v in variables.items()} == {"MODEL_REPO_ID": "user/repo", "EXTRA": "x"}
    assert variables["MODEL_REPO_ID"].description == "copied"
    assert set(api.get_space_secrets(dup)) == {"NEW_SECRET"}
    rt = api.get_space_runtime(dup)
    assert rt.requested_hardware == "cpu-basic" and rt.stage == "BUILDING"


def test_duplicate_visibility_conflicts_and_missing_sources(
    hub: InProcessHub, api: HfApi, source: str, unique: str
) -> None:
    url = api.duplicate_repo(source, f"alice/{unique}-pub", repo_type="space", visibility="public")
    assert api.space_info(url.repo_id).private is False
    with pytest.raises(HfHubHTTPError) as e:
        api.duplicate_repo(source, f"alice/{unique}-pub", repo_type="space")
    assert e.value.response.status_code == 409 and e.value.response.json()["url"].endswith(
        f"/spaces/alice/{unique}-pub"
    )
    again = api.duplicate_repo(source, f"alice/{unique}-pub", repo_type="space", exist_ok=True)
    assert again.repo_id == f"alice/{unique}-pub"
    with pytest.raises(RepositoryNotFoundError):
        api.duplicate_repo(f"alice/{unique}-nope", f"alice/{unique}-x", repo_type="space")


def test_duplicate_of_a_private_space_needs_read_access(hub: InProcessHub, api: HfApi, unique: str, bob: str) -> None:
    api.create_repo(f"alice/{unique}", repo_type="space", space_sdk="static", private=True)
    bob_api = HfApi(endpoint=hub.url, token=bob)
    with pytest.raises(RepositoryNotFoundError):
        bob_api.duplicate_repo(f"alice/{unique}", repo_type="space")
    api.update_repo_settings(f"alice/{unique}", repo_type="space", visibility="public")
    api.add_space_variable(f"alice/{unique}", "PUBLIC_VAR", "1")
    api.add_space_secret(f"alice/{unique}", "PRIVATE", SECRET)
    url = bob_api.duplicate_repo(f"alice/{unique}", repo_type="space")  # no to_id: bob/<same name>
    assert url.repo_id == f"bob/{unique}"
    assert set(bob_api.get_space_variables(url.repo_id)) == {"PUBLIC_VAR"}
    assert bob_api.get_space_secrets(url.repo_id) == {}
    with pytest.raises(HfHubHTTPError) as e:  # bob may not create in alice's namespace
        bob_api.duplicate_repo(f"alice/{unique}", f"alice/{unique}-by-bob", repo_type="space")
    assert e.value.response.status_code == 403


@pytest.mark.parametrize("repo_type", ["model", "dataset"])
def test_duplicate_models_and_datasets(api: HfApi, unique: str, repo_type: str) -> None:
    api.create_repo(f"alice/{unique}", repo_type=repo_type)
    api.upload_file(path_or_fileobj=b"w" * 100, path_in_repo="w.bin", repo_id=f"alice/{unique}", repo_type=repo_type)
    url = api.duplicate_repo(f"alice/{unique}", f"alice/{unique}-copy", repo_type=repo_type, private=False)
    assert url.repo_type == repo_type
    info = api.repo_info(url.repo_id, repo_type=repo_type)
    assert info.private is False and "w.bin" in {s.rfilename for s in info.siblings}


def test_duplicate_payloads_of_older_clients_and_bad_ones(
    hub: InProcessHub, alice: str, source: str, unique: str
) -> None:
    path = f"/api/spaces/{source}/duplicate"
    old = {"repository": f"alice/{unique}-old", "private": False, "hardware": "cpu-basic", "storageTier": None,
           "secrets": [{"key": "S", "value": SECRET}], "variables": [{"key": "V", "value": "v"}]}  # fmt: skip
    r = call(hub, "POST", path, alice, old)  # 0.21 duplicate_space
    assert r.status_code == 200 and r.json() == {"url": f"{hub.url}/spaces/alice/{unique}-old"}, r.text
    assert call(hub, "GET", f"/api/spaces/alice/{unique}-old", None).json()["private"] is False
    call(hub, "POST", "/api/repos/create", alice, {"name": f"{unique}-m"})
    before = repo_dirs(hub)
    for body, status, text in (
        ({"repository": f"alice/{unique}-b1", "unknown": 1}, 400, "unknown keys"),
        ({"private": True}, 400, "repository"),
        ({"repository": "no-namespace"}, 400, "namespace/name"),
        ({"repository": f"alice/{unique}-b2", "private": "yes"}, 400, "boolean"),
        ({"repository": f"alice/{unique}-b3", "visibility": "secret"}, 400, "visibility"),
        ({"repository": f"alice/{unique}-b4", "secrets": [{"key": "PORT", "value": "1"}]}, 400, "reserved"),
        ({"repository": f"alice/{unique}-b5", "variables": [{"key": "A"}]}, 400, "value"),
        (
            {
                "repository": f"alice/{unique}-b6",
                "secrets": [{"key": "MODEL_REPO_ID", "value": "1"}],
                "variables": [{"key": "MODEL_REPO_ID", "value": "2"}],
            },
            400,
            "both",
        ),
    ):
        assert_error(call(hub, "POST", path, alice, body), status, text)
    assert_error(call(hub, "POST", path, alice, raw=b"{"), 400, "malformed")
    model = f"/api/models/alice/{unique}-m/duplicate"
    assert_error(call(hub, "POST", model, alice, {"repository": f"alice/{unique}-m2", "hardware": "t4"}), 400, "Spaces")
    assert repo_dirs(hub) == before


def test_duplicate_applies_hardware_sleep_and_storage_through_the_create_hooks(
    hub: InProcessHub, api: HfApi, alice: str, source: str, unique: str
) -> None:
    org = f"d{unique.replace('-', '')[-20:]}"
    hub.cli("orgs", "create", org)
    hub.cli("orgs", "add-member", org, "alice", "--role", "admin")
    before = repo_dirs(hub)
    with pytest.raises(HfHubHTTPError) as e:  # paid hardware without a billing account: nothing is created
        api.duplicate_repo(source, f"{org}/paid", repo_type="space", space_hardware="cpu-upgrade")
    assert e.value.response.status_code == 402, e.value
    assert repo_dirs(hub) == before and not api.repo_exists(f"{org}/paid", repo_type="space")
    hub.cli("billing", "grant", org)
    api.duplicate_repo(source, f"{org}/paid", repo_type="space", space_hardware="cpu-upgrade", space_sleep_time=7200)
    rt = api.get_space_runtime(f"{org}/paid")
    assert rt.requested_hardware == "cpu-upgrade" and rt.sleep_time == 7200, rt.raw
    old = {"repository": f"{org}/stored", "private": True, "storageTier": "small"}  # ≤ 1.33 duplicate_space
    assert call(hub, "POST", f"/api/spaces/{source}/duplicate", alice, old).status_code == 200
    assert api.get_space_runtime(f"{org}/stored").raw["storage"] == "small"


# ---- the same over a socket ------------------------------------------------------------------------------------
def test_secrets_variables_and_duplicate_on_a_live_server(server: Server, unique: str) -> None:
    """The smoke test of this area on a real ``spacehub serve`` (the in-process tests above cover the behaviour)."""
    api = HfApi(endpoint=server.url, token=server.user("alice"))
    repo_id = f"alice/{unique}"
    api.create_repo(repo_id, repo_type="space", space_sdk="gradio", space_secrets=[{"key": "S", "value": SECRET}])
    api.add_space_variable(repo_id, "V", "1", description="d")
    assert set(api.get_space_secrets(repo_id)) == {"S"} and api.get_space_variables(repo_id)["V"].description == "d"
    r = httpx.get(f"{server.url}/api/spaces/{repo_id}/secrets", headers=auth(server.user("alice")))
    assert r.status_code == 200 and SECRET not in r.text and "value" not in r.text
    url = api.duplicate_repo(repo_id, f"{repo_id}-dup", repo_type="space")
    assert url.repo_id == f"{repo_id}-dup" and str(url).startswith(server.url)
    assert set(api.get_space_variables(url.repo_id)) == {"V"} and api.get_space_secrets(url.repo_id) == {}
