"""An abbreviated commit sha that two commits of the repo share (a real collision of 7 hex digits in its object store,
tests/git_objects.py) is a clear 400 everywhere a revision is read: the API's JSON error, and the files pages' HTML
page saying to give more digits, for Spaces, models and datasets; one more digit opens each commit."""

from __future__ import annotations

import html

import pytest

from tests.git_objects import ambiguous_commits, repo_store
from tests.inprocess import InProcessHub

PAGES = ("tree/{rev}", "blob/{rev}/README.md", "commits/{rev}", "commit/{rev}", "resolve/{rev}/README.md")
PREFIX = {"space": "spaces/", "model": "", "dataset": "datasets/"}


@pytest.fixture(scope="module")
def alice(hub: InProcessHub) -> str:
    return hub.user("alice")


@pytest.mark.parametrize("repo_type", ["space", "model", "dataset"])
def test_an_ambiguous_short_sha_is_a_400_page_and_answer(
    hub: InProcessHub, alice: str, unique: str, repo_type: str
) -> None:
    api = hub.api(alice)
    repo_id = f"alice/{unique}-{repo_type}"
    api.create_repo(repo_id, repo_type=repo_type, **({"space_sdk": "static"} if repo_type == "space" else {}))
    api.upload_file(path_or_fileobj=b"# Hello\n", path_in_repo="README.md", repo_id=repo_id, repo_type=repo_type)
    head = api.repo_info(repo_id, repo_type=repo_type).sha
    assert head is not None
    first, second = ambiguous_commits(repo_store(hub, repo_type, repo_id), head)
    short = first[:7]
    assert second.startswith(short) and first != second
    message = f"Ambiguous revision {short}: several objects start with it; give more digits of the commit sha"

    r = hub.http.get(f"/api/{repo_type}s/{repo_id}/revision/{short}")
    assert r.status_code == 400 and r.json() == {"error": message}
    r = hub.http.get(f"/api/{repo_type}s/{repo_id}/tree/{short}")
    assert r.status_code == 400 and r.json()["error"] == message

    base = f"/{PREFIX[repo_type]}{repo_id}"
    for path in PAGES:
        r = hub.http.get(f"{base}/{path.format(rev=short)}", headers={"accept": "text/html"})
        assert r.status_code == 400, (path, r.status_code, r.text[:300])
        if path.startswith("resolve/"):  # the raw download is the API's file route: its JSON error
            assert r.json()["error"] == message, path
            continue
        assert r.headers["content-type"].startswith("text/html"), path
        assert f'<p role="alert">{html.escape(message)}</p>' in r.text, path
        assert "<h1>Bad request</h1>" in r.text, path

    enough = next(n for n in range(8, 41) if first[:n] != second[:n])  # one more digit tells them apart
    for sha in (first, second):
        r = hub.http.get(f"{base}/commit/{sha[:enough]}", headers={"accept": "text/html"})
        assert r.status_code == 200 and sha in r.text
        r = hub.http.get(f"/api/{repo_type}s/{repo_id}/revision/{sha[:enough]}")
        assert r.status_code == 200 and r.json()["sha"] == sha
