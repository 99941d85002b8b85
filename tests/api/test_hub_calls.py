"""Issue 11, "other calls": auth_check, typed errors for every form of a missing repo, short commit shas as revisions,
tags on missing revisions, deleting a folder by its path, repo ids in any case, listings as the client asks for them,
space templates. The real client (2.4.0) and raw HTTP on the Hub app in-process (tests/inprocess.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, hf_hub_url
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.git_objects import ambiguous_commits, repo_store
from tests.inprocess import InProcessHub


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
    repo_id = f"alice/{unique}"
    api.create_repo(repo_id)
    head = api.repo_info(repo_id).sha
    assert head is not None
    other, sha = ambiguous_commits(repo_store(hub, "model", repo_id), head)
    assert sha[:7] == other[:7] and sha != other
    with pytest.raises(HfHubHTTPError) as e:
        api.repo_info(repo_id, revision=sha[:7])
    assert e.value.response.status_code == 400
    assert "ambiguous revision" in str(e.value).lower()
    enough = next(n for n in range(8, 41) if sha[:n] != other[:n])  # one more digit tells them apart
    assert api.repo_info(repo_id, revision=sha[:enough]).sha == sha
    assert api.repo_info(repo_id, revision=other[:enough]).sha == other


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


# ---- listings ------------------------------------------------------------------------------------------------
def _card(yaml: str) -> bytes:
    return f"---\n{yaml}\n---\n# hello\n".encode()


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A hub of its own (pages of 2, so pagination shows with a handful of repos): carol's models, datasets and
    Spaces with cards, one private."""
    from tests.inprocess import start_inprocess_hub, stop_inprocess_hub

    h = start_inprocess_hub(tmp_path_factory.mktemp("listed") / "data", {"server": {"list_page_size": 2}})
    api = h.api(h.user("carol"))
    cards = {
        "carol/bert-a": "tags: [nlp, fast]\nlibrary_name: transformers\npipeline_tag: fill-mask\nlicense: mit",
        "carol/bert-b": "tags: [nlp]\nlibrary_name: transformers\npipeline_tag: text-classification",
        "carol/vision": "tags: [cv]\nlibrary_name: timm\ndatasets: [carol/pics]",
        "carol/plain": None,
    }
    for repo_id, yaml in cards.items():
        api.create_repo(repo_id, private=repo_id == "carol/plain")
        if yaml:
            api.upload_file(path_or_fileobj=_card(yaml), path_in_repo="README.md", repo_id=repo_id)
    api.create_repo("carol/pics", repo_type="dataset")
    api.upload_file(path_or_fileobj=_card("tags: [images]\nlanguage: [en]"), path_in_repo="README.md",
                    repo_id="carol/pics", repo_type="dataset")  # fmt: skip
    for name, sdk in (("demo-gradio", "gradio"), ("demo-static", "static"), ("other", "static")):
        api.create_repo(f"carol/{name}", repo_type="space", space_sdk=sdk)
    readme = "title: Bert demo\nsdk: gradio\nmodels: [carol/bert-a]\nshort_description: classify text with bert"
    api.upload_file(path_or_fileobj=_card(readme), path_in_repo="README.md", repo_id="carol/demo-gradio",
                    repo_type="space")  # fmt: skip
    yield h
    stop_inprocess_hub(h)


def test_list_models_filters_by_tags_as_the_client_sends_them(listed: Any) -> None:
    api = listed.api(listed.tokens["carol"])
    ids = lambda **kw: sorted(m.id for m in api.list_models(**kw))  # noqa: E731
    assert ids(filter="nlp") == ["carol/bert-a", "carol/bert-b"]
    assert ids(filter=["nlp", "fast"]) == ["carol/bert-a"]  # every filter must hold
    assert ids(filter="transformers") == ["carol/bert-a", "carol/bert-b"]  # library_name is a tag
    assert ids(filter="license:mit") == ["carol/bert-a"]
    assert ids(filter="dataset:carol/pics") == ["carol/vision"]
    assert ids(pipeline_tag="text-classification") == ["carol/bert-b"]
    assert ids(filter="nothing-has-this") == []
    assert ids(author="carol", search="bert") == ["carol/bert-a", "carol/bert-b"]
    assert "carol/plain" in ids() and "carol/plain" not in sorted(m.id for m in listed.api(None).list_models())
    assert [d.id for d in api.list_datasets(language="en")] == ["carol/pics"]  # sent as filter=language:en
    assert [d.id for d in api.list_datasets(filter="images", search="pics", dataset_name="carol/")] == ["carol/pics"]
    assert list(api.list_datasets(search="pics", dataset_name="nobody/")) == []  # both must match
    assert api.dataset_info("carol/pics").tags == ["images", "language:en"]
    assert api.model_info("carol/bert-a").tags == ["nlp", "fast", "transformers", "fill-mask", "license:mit"]


def test_list_spaces_filters_and_linked(listed: Any) -> None:
    api = listed.api(listed.tokens["carol"])
    assert sorted(s.id for s in api.list_spaces(filter="gradio")) == ["carol/demo-gradio"]
    assert sorted(s.id for s in api.list_spaces(filter=["static", "region:us"])) == [
        "carol/demo-static", "carol/other"]  # fmt: skip
    assert [s.id for s in api.list_spaces(models="carol/bert-a")] == ["carol/demo-gradio"]
    (linked,) = [s for s in api.list_spaces(linked=True, search="gradio")]
    assert linked.models == ["carol/bert-a"] and linked.datasets == []
    assert api.space_info("carol/demo-gradio").tags == ["gradio", "region:us"]


def test_sort_and_direction(listed: Any) -> None:
    api = listed.api(listed.tokens["carol"])
    newest = [m.id for m in api.list_models(sort="created_at")]
    assert newest[0] == "carol/plain" and newest[-1] == "carol/bert-a"
    r = listed.http.get(f"{listed.url}/api/models", params={"sort": "createdAt", "direction": "1"},
                        headers={"authorization": f"Bearer {listed.tokens['carol']}"})  # fmt: skip
    first_page = [m["id"] for m in r.json()]
    assert first_page == ["carol/bert-a", "carol/bert-b"]
    by_modified = [m.id for m in api.list_models(sort="last_modified")]
    assert by_modified == ["carol/plain", "carol/vision", "carol/bert-b", "carol/bert-a"]  # last change first
    r = listed.http.get(f"{listed.url}/api/models?sort=id&direction=1&limit=3")  # pages of 2, anonymous
    assert [m["id"] for m in r.json()] == ["carol/bert-a", "carol/bert-b"]
    assert [m["id"] for m in listed.http.get(r.links["next"]["url"]).json()] == ["carol/vision"]
    for bad in ({"sort": "bogus"}, {"direction": "0"}, {"direction": "x"}, {"limit": "-1"}, {"expand": "nope"},
                {"inference": "warm"}, {"num_parameters": "min:1B"}):  # fmt: skip
        r = listed.http.get(f"{listed.url}/api/models", params=bad)
        assert r.status_code == 400 and r.json()["error"], (bad, r.text)


def test_pagination_follows_link_headers(listed: Any) -> None:
    """Pages of 2 here: the client follows `Link: rel="next"` until the last page, and stops at ``limit``."""
    api = listed.api(listed.tokens["carol"])
    assert len(list(api.list_models())) == 4
    assert len(list(api.list_models(limit=3))) == 3
    r = listed.http.get(f"{listed.url}/api/models", headers={"authorization": f"Bearer {listed.tokens['carol']}"})
    assert len(r.json()) == 2 and 'rel="next"' in r.headers["link"]
    assert r.headers["link"].startswith(f"<{listed.url}/api/models?")
    r = listed.http.get(f"{listed.url}/api/models?limit=2")
    assert len(r.json()) == 2 and "link" not in r.headers  # limit reached: no next page
    pages, url = [], f"{listed.url}/api/models?filter=nlp&limit=10"
    while url:
        r = listed.http.get(url)
        pages.append([m["id"] for m in r.json()])
        url = r.links.get("next", {}).get("url")
    assert pages == [["carol/bert-b", "carol/bert-a"]]  # filtered in pages too: 2 match, one page
    r = listed.http.get(f"{listed.url}/api/spaces?filter=region:us")  # 3 Spaces match: a page of 2, then 1
    assert len(r.json()) == 2 and len(listed.http.get(r.links["next"]["url"]).json()) == 1


def test_expand_and_full(listed: Any) -> None:
    api = listed.api(listed.tokens["carol"])
    (m,) = [m for m in api.list_models(search="bert-a", expand=["pipeline_tag", "likes", "cardData", "sha"])]
    assert m.id == "carol/bert-a" and m.pipeline_tag == "fill-mask" and m.likes == 0 and m.sha
    assert m.card_data is not None and m.card_data.license == "mit"
    assert m.downloads is None and m.tags is None  # not asked for: not sent
    raw = listed.http.get(f"{listed.url}/api/models?search=bert-a&expand=author&expand=tags").json()
    assert raw == [{"_id": raw[0]["_id"], "id": "carol/bert-a", "author": "carol",
                    "tags": ["nlp", "fast", "transformers", "fill-mask", "license:mit"]}]  # fmt: skip
    (s,) = [s for s in api.list_spaces(search="demo-gradio", expand=["runtime", "sdk", "models"])]
    assert s.sdk == "gradio" and s.runtime is not None and s.models == ["carol/bert-a"]
    (full,) = [m for m in api.list_models(search="bert-b", full=True)]
    assert {x.rfilename for x in full.siblings or []} == {".gitattributes", "README.md"}
    assert full.card_data is not None and full.card_data.library_name == "transformers"
    (plain,) = [m for m in api.list_models(search="bert-b")]
    assert plain.siblings is None and plain.card_data is None


def test_search_spaces(listed: Any) -> None:
    """Full-text: words of the query in the id, title, short description or tags; running Spaces only unless asked
    (this hub has no runtime, so none runs)."""
    api = listed.api(listed.tokens["carol"])
    assert list(api.search_spaces("bert demo")) == []
    results = list(api.search_spaces("classify bert", include_non_running=True))
    assert [r.id for r in results] == ["carol/demo-gradio"]
    assert results[0].title == "Bert demo" and results[0].ai_short_description == "classify text with bert"
    assert results[0].semantic_relevancy_score == 1.0 and results[0].sdk == "gradio"
    assert {r.id for r in api.search_spaces("demo", include_non_running=True, sdk="static")} == {"carol/demo-static"}
    some = {r.id: r.semantic_relevancy_score for r in api.search_spaces("demo other", include_non_running=True)}
    assert some == {"carol/demo-gradio": 0.5, "carol/demo-static": 0.5, "carol/other": 0.5}
    r = listed.http.get(f"{listed.url}/api/spaces/semantic-search")
    assert r.status_code == 400 and r.json()["error"]


# ---- people --------------------------------------------------------------------------------------------------
def test_full_name_and_avatar_in_whoami_and_overviews(hub: InProcessHub, unique: str) -> None:
    name, org = f"dora{unique[-6:]}", f"team{unique[-6:]}"
    hub.cli("users", "create", name, "--fullname", "Dora Explorer")
    hub.cli("orgs", "create", org, "--fullname", "The Team")
    hub.cli("orgs", "add-member", org, name, "--role", "write")
    api = hub.api(hub.user(name))
    me = api.whoami()
    assert me["fullname"] == "Dora Explorer"
    assert me["avatarUrl"] == f"{hub.url}/avatars/{name}.svg"
    assert me["orgs"][0]["avatarUrl"] == f"{hub.url}/avatars/{org}.svg"
    api.create_repo(f"{name}/m1")
    api.create_repo(f"{name}/m2", private=True)
    api.create_repo(f"{name}/s1", repo_type="space", space_sdk="static")
    user = api.get_user_overview(name)
    assert (user.username, user.fullname, user.avatar_url) == (name, "Dora Explorer", me["avatarUrl"])
    assert (user.num_models, user.num_datasets, user.num_spaces) == (2, 0, 1)
    assert [o.name for o in user.orgs] == [org] and user.orgs[0].fullname == "The Team"
    assert hub.api(None).get_user_overview(name.upper()).num_models == 1  # others see public repos only
    team = api.get_organization_overview(org)
    assert (team.name, team.fullname, team.num_users) == (org, "The Team", 1)
    assert team.avatar_url == f"{hub.url}/avatars/{org}.svg"
    svg = hub.http.get(me["avatarUrl"])
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert svg.text.startswith("<svg") and ">D</text>" in svg.text
    for missing in (lambda: api.get_user_overview("nobody-at-all"), lambda: api.get_organization_overview(name)):
        with pytest.raises(HfHubHTTPError) as e:
            missing()
        assert e.value.response.status_code == 404
    assert hub.http.get(f"{hub.url}/avatars/nobody-at-all.svg").status_code == 404


# ---- Space templates -----------------------------------------------------------------------------------------
def test_space_templates_are_the_starter_apps(hub: InProcessHub, api: HfApi, unique: str) -> None:
    templates = {t.name: t for t in api.list_space_templates()}
    assert {t.sdk for t in templates.values()} == {"gradio", "streamlit", "static", "docker"}
    assert templates["Gradio"].repo_id == "templates/gradio" and templates["Gradio"].preferred_private is False
    api.create_repo(f"alice/{unique}-g", repo_type="space", space_template="gradio")  # by name: the client resolves
    files = set(api.list_repo_files(f"alice/{unique}-g", repo_type="space"))
    assert files == {".gitattributes", "README.md", "app.py"}
    assert api.space_info(f"alice/{unique}-g").sdk == "gradio"
    cache = str(hub.data_dir / f"t-{unique}")
    app = api.hf_hub_download(f"alice/{unique}-g", "app.py", repo_type="space", cache_dir=cache)
    assert "gr.Interface" in Path(app).read_text()
    api.create_repo(f"alice/{unique}-d", repo_type="space", space_template="templates/docker", space_sdk="docker")
    assert {"Dockerfile", "index.html"} <= set(api.list_repo_files(f"alice/{unique}-d", repo_type="space"))
    token = {"authorization": f"Bearer {hub.tokens['alice']}"}
    for body, text in (
        (
            {"name": f"{unique}-x", "type": "space", "sdk": "gradio", "template": "templates/nope"},
            "Unknown Space template",
        ),
        ({"name": f"{unique}-x", "type": "space", "sdk": "static", "template": "templates/gradio"}, "must be 'gradio'"),
        ({"name": f"{unique}-x", "type": "model", "template": "templates/gradio"}, "for Spaces only"),
        ({"name": f"{unique}-x", "type": "space", "sdk": "gradio", "template": 3}, "must be a string"),
    ):
        r = hub.http.post(f"{hub.url}/api/repos/create", json=body, headers=token)
        assert r.status_code == 400 and text in r.json()["error"], r.text
    assert not api.repo_exists(f"alice/{unique}-x", repo_type="space")  # refused before anything was written


# ---- model card warnings -------------------------------------------------------------------------------------
def test_the_hubs_warnings_for_empty_or_invalid_card_metadata(api: HfApi, unique: str) -> None:
    """validate-yaml answers warnings (the upload goes on), which the client shows as a UserWarning."""
    import warnings

    repo_id = f"alice/{unique}"
    api.create_repo(repo_id)
    with pytest.warns(UserWarning, match="empty or missing yaml metadata in repo card"):
        api.upload_file(path_or_fileobj=b"# No metadata\n", path_in_repo="README.md", repo_id=repo_id)
    with pytest.warns(UserWarning, match="empty or missing yaml metadata"):
        api.upload_file(path_or_fileobj=b"---\n---\n# Empty\n", path_in_repo="README.md", repo_id=repo_id)
    with pytest.warns(UserWarning, match='"license" should be a string or a list of strings'):
        api.upload_file(path_or_fileobj=b"---\nlicense: 3\n---\n", path_in_repo="README.md", repo_id=repo_id)
    assert api.model_info(repo_id).card_data is not None  # accepted all the same
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        api.upload_file(path_or_fileobj=b"---\nlicense: mit\n---\n# Fine\n", path_in_repo="README.md", repo_id=repo_id)
    assert not [w for w in caught if "metadata" in str(w.message)]  # good metadata: no warning
    with pytest.raises(ValueError, match="Invalid metadata"):  # errors still refuse
        api.upload_file(path_or_fileobj=b"---\ntags: 3\n---\n", path_in_repo="README.md", repo_id=repo_id)
