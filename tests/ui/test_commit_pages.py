"""A commit's page (`/{repo}/commit/{sha}`, for Spaces, models and datasets): message, author, date, parent and git's
diff of each file, against a live server, with commits made by the real `huggingface_hub` client. Text is escaped,
binary and LFS files are named without their content, a large diff stops with a note, bad addresses are 404 pages,
and a private repo's commits are its readers' alone."""

from __future__ import annotations

import re

import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

from tests.conftest import Server
from tests.ui.conftest import Web

APP_V1 = 'def greet(name):\n    return "Hello " + name\n\n\nprint(greet("world"))\n'
APP_V2 = 'def greet(name):\n    return "<script>alert(1)</script> " + name\n\n\nprint(greet("world"))\n'
WEIGHTS = b"\x00weights that must not be shown\x01" * 64  # *.bin: LFS by the repo's .gitattributes
ICON = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR binary-icon-bytes"
BIG = "".join(f"line {i}\n" for i in range(8000))


def make_history(server: Server, owner: str, repo_type: str, repo_id: str, private: bool = False) -> list[str]:
    """Three commits on a new repo; their shas, oldest first."""
    api = HfApi(endpoint=server.url, token=server.tokens[owner])
    extra = {"space_sdk": "static"} if repo_type == "space" else {}
    api.create_repo(repo_id, repo_type=repo_type, private=private, **extra)
    first = api.create_commit(
        repo_id, repo_type=repo_type, commit_message="Add the app",
        operations=[CommitOperationAdd("app.py", APP_V1.encode()), CommitOperationAdd("NOTES.md", b"old notes\n")],
    )  # fmt: skip
    second = api.create_commit(
        repo_id, repo_type=repo_type, commit_message="Greet with markup",
        commit_description="The second line of the message.\n<b>not bold</b>",
        operations=[CommitOperationAdd("app.py", APP_V2.encode()), CommitOperationDelete("NOTES.md"),
                    CommitOperationAdd("model/weights.bin", WEIGHTS), CommitOperationAdd("icon.dat", ICON)],
    )  # fmt: skip
    third = api.create_commit(
        repo_id, repo_type=repo_type, commit_message="A big file",
        operations=[CommitOperationAdd("big.txt", BIG.encode())],
    )  # fmt: skip
    return [c.oid for c in (first, second, third)]


def section(page: str, path: str) -> str:
    """The part of a commit page about ``path``."""
    m = re.search(rf'<section class="diff-file"[^>]*data-path="{re.escape(path)}".*?</section>', page, re.S)
    assert m, f"{path} is not on the page"
    return m.group(0)


@pytest.fixture
def model(server: Server, carol: str, unique: str) -> tuple[str, list[str]]:
    repo_id = f"{carol}/{unique}-diffs"
    return repo_id, make_history(server, carol, "model", repo_id)


def test_the_history_links_each_commit_to_its_page(server: Server, web: Web, model: tuple[str, list[str]]) -> None:
    repo_id, shas = model
    history = web.get(f"/{repo_id}/commits/main")
    assert history.status_code == 200
    for sha in shas:
        assert f'href="/{repo_id}/commit/{sha}"' in history.text
    page = web.get(f"/{repo_id}/commit/{shas[2]}")
    assert page.status_code == 200 and "A big file" in page.text


def test_a_commit_page_shows_its_message_author_parent_and_each_files_diff(
    server: Server, web: Web, carol: str, model: tuple[str, list[str]]
) -> None:
    repo_id, shas = model
    page = web.get(f"/{repo_id}/commit/{shas[1]}")
    assert page.status_code == 200, page.text[:300]
    html = page.text
    assert "Greet with markup" in html and "The second line of the message." in html
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html and "<b>not bold</b>" not in html
    assert f'<dd id="commit-author">{carol}</dd>' in html
    assert re.search(r'<dd id="commit-date">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</dd>', html)
    assert f'href="/{repo_id}/commit/{shas[0]}">{shas[0][:7]}</a>' in html  # the parent, linked
    assert f'<dd class="mono" id="commit-id">{shas[1]}</dd>' in html

    app = section(html, "app.py")
    assert 'data-status="modified"' in app
    # line 2 removed and added, with its line number on each side; the rest is context
    removed = re.search(r'<tr class="del"><td class="ln">2</td><td class="ln"></td><td class="mono">(.*?)</td>', app)
    added = re.search(r'<tr class="add"><td class="ln"></td><td class="ln">2</td><td class="mono">(.*?)</td>', app)
    assert removed and "return &#34;Hello &#34; + name" in removed.group(1), app
    assert added and "&lt;script&gt;alert(1)&lt;/script&gt;" in added.group(1), app
    assert '<tr class="ctx"><td class="ln">1</td><td class="ln">1</td>' in app
    assert "<script>alert(1)</script>" not in html  # escaped everywhere
    assert "+1</span>" in app and "-1</span>" in app

    notes = section(html, "NOTES.md")
    assert 'data-status="removed"' in notes and "old notes" in notes and '<tr class="del">' in notes
    weights = section(html, "model/weights.bin")
    assert 'data-status="added"' in weights and f"Stored with LFS ({len(WEIGHTS)} bytes)" in weights
    icon = section(html, "icon.dat")
    assert 'data-status="added"' in icon and f"Binary file ({len(ICON)} bytes)" in icon and "<table" not in icon
    assert "sha256:" not in html and "weights that must not" not in html and "binary-icon-bytes" not in html
    assert '<p id="diff-summary">4 files changed' in html


def test_a_large_diff_stops_with_a_note_and_a_first_commit_has_no_parent(
    server: Server, web: Web, model: tuple[str, list[str]]
) -> None:
    repo_id, shas = model
    html = web.get(f"/{repo_id}/commit/{shas[2]}").text
    big = section(html, "big.txt")
    assert "The diff stops here" in big and "line 100</td>" in big and "line 7999" not in big
    assert big.count('<tr class="add">') == 5000  # the line budget of a commit page
    first = web.get(f"/{repo_id}/commit/{shas[0]}")
    assert first.status_code == 200 and "Add the app" in first.text
    root = HfApi(endpoint=server.url).list_repo_commits(repo_id)[-1].commit_id
    root_page = web.get(f"/{repo_id}/commit/{root}").text
    assert "none (the first commit)" in root_page and ".gitattributes" in root_page


@pytest.mark.parametrize(
    "rev",
    ["0" * 40, "deadbeefdeadbeef", "not-a-commit", "..%2F..%2F..%2Fetc%2Fpasswd", "%2E%2E", "main%00x", "a" * 300],
)
def test_a_bad_commit_address_is_a_404_page(web: Web, model: tuple[str, list[str]], rev: str) -> None:
    repo_id, _ = model
    r = web.get(f"/{repo_id}/commit/{rev}")
    assert r.status_code == 404, (rev, r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("text/html") and "Page not found" in r.text


def test_a_short_sha_names_the_commit_and_a_blob_is_not_a_commit(
    server: Server, web: Web, model: tuple[str, list[str]]
) -> None:
    repo_id, shas = model
    r = web.get(f"/{repo_id}/commit/{shas[1][:7]}")
    assert r.status_code == 200 and f'id="commit-id">{shas[1]}<' in r.text
    app = next(f for f in HfApi(endpoint=server.url).list_repo_tree(repo_id) if f.path == "app.py")
    assert web.get(f"/{repo_id}/commit/{app.blob_id}").status_code == 404


def test_space_and_dataset_commit_pages(server: Server, web: Web, carol: str, unique: str) -> None:
    for repo_type, prefix in (("space", "/spaces"), ("dataset", "/datasets")):
        repo_id = f"{carol}/{unique}-{repo_type}"
        shas = make_history(server, carol, repo_type, repo_id)
        history = web.get(f"{prefix}/{repo_id}/commits/main")
        assert f'href="{prefix}/{repo_id}/commit/{shas[1]}"' in history.text
        page = web.get(f"{prefix}/{repo_id}/commit/{shas[1]}")
        assert page.status_code == 200 and 'data-path="app.py"' in page.text, (repo_type, page.text[:300])
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        # another repo's commit is not this repo's (each repo is its own git repository)
        assert web.get(f"{prefix}/{repo_id}/commit/{'1' * 40}").status_code == 404


def test_a_private_repos_commits_are_its_readers_alone(server: Server, carol: str, dave: str, unique: str) -> None:
    cases: list[str] = []
    for repo_type, prefix in (("model", ""), ("space", "/spaces"), ("dataset", "/datasets")):
        repo_id = f"{carol}/{unique}-hidden-{repo_type}"
        shas = make_history(server, carol, repo_type, repo_id, private=True)
        cases.append(f"{prefix}/{repo_id}/commit/{shas[1]}")
    owner, other, anonymous = Web(server), Web(server), Web(server)
    owner.login(carol)
    other.login(dave)
    for path in cases:
        assert owner.get(path).status_code == 200, path
        for web in (other, anonymous):
            r = web.get(path)
            assert r.status_code == 404 and "Greet with markup" not in r.text and 'id="commit' not in r.text, path
            assert "app.py" not in r.text and "The second line" not in r.text, path
