"""huggingface_hub 2.4.0 against the live server: discussions and pull requests as on the Hub (issue 11).

alice owns the repos; bob and carol may read them but not write. Numbers are per repo and shared by discussions and
pull requests; any signed-in reader opens and comments, the author or a writer renames and closes, writers merge.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download
from huggingface_hub.community import DiscussionComment, DiscussionCommit, DiscussionStatusChange, DiscussionTitleChange
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError


@pytest.fixture
def carol_api(server: Any) -> HfApi:
    return HfApi(endpoint=server.url, token=server.user("carol"))


def status_of(excinfo: pytest.ExceptionInfo[HfHubHTTPError]) -> int:
    return excinfo.value.response.status_code


@pytest.mark.parametrize("repo_type", ["model", "dataset", "space"])
def test_discussion_lifecycle(api: HfApi, bob_api: HfApi, unique: str, repo_type: str) -> None:
    repo_id = f"alice/{unique}"
    api.create_repo(repo_id, repo_type=repo_type, space_sdk="static" if repo_type == "space" else None)

    first = bob_api.create_discussion(repo_id, "Typo in the README", description="Line 3.", repo_type=repo_type)
    assert (first.num, first.author, first.status, first.is_pull_request) == (1, "bob", "open", False)
    assert first.repo_id == repo_id and first.repo_type == repo_type
    assert isinstance(first.events[0], DiscussionComment) and first.events[0].content == "Line 3."
    assert first.events[0].rendered == "<p>Line 3.</p>\n"

    reply = api.comment_discussion(repo_id, 1, "Thanks, **fixing** it <script>x</script>", repo_type=repo_type)
    assert reply.author == "alice" and reply.content.startswith("Thanks")
    assert "<strong>fixing</strong>" in reply.rendered and "<script>" not in reply.rendered
    renamed = bob_api.rename_discussion(repo_id, 1, "Typo in README.md", repo_type=repo_type)
    assert isinstance(renamed, DiscussionTitleChange)
    assert (renamed.old_title, renamed.new_title) == ("Typo in the README", "Typo in README.md")
    closed = api.change_discussion_status(repo_id, 1, "closed", comment="Fixed in main.", repo_type=repo_type)
    assert isinstance(closed, DiscussionStatusChange) and closed.new_status == "closed"

    second = api.create_discussion(repo_id, "Roadmap", repo_type=repo_type)
    pr = bob_api.create_pull_request(repo_id, "Add a license", repo_type=repo_type)
    assert (second.num, pr.num) == (2, 3)  # one sequence for discussions and pull requests
    assert pr.is_pull_request and pr.status == "draft" and pr.git_reference == "refs/pr/3"
    assert pr.target_branch == "refs/heads/main" and pr.conflicting_files == [] and pr.merge_commit_oid is None

    details = bob_api.get_discussion_details(repo_id, 1, repo_type=repo_type)
    assert details.title == "Typo in README.md" and details.status == "closed"
    kinds = [(type(e).__name__, e.author) for e in details.events]
    assert kinds == [
        ("DiscussionComment", "bob"),
        ("DiscussionComment", "alice"),
        ("DiscussionTitleChange", "bob"),
        ("DiscussionStatusChange", "alice"),
        ("DiscussionComment", "alice"),
    ]
    assert details.conflicting_files is None and details.target_branch is None  # not a pull request

    def nums(**filters: Any) -> list[int]:
        return [d.num for d in api.get_repo_discussions(repo_id, repo_type=repo_type, **filters)]

    assert nums() == [3, 2, 1]
    assert nums(discussion_type="pull_request") == [3]
    assert nums(discussion_type="discussion") == [2, 1]
    assert nums(discussion_status="closed") == [1]
    assert nums(discussion_status="open") == [3, 2]  # a draft is open
    assert nums(author="bob") == [3, 1]
    assert nums(author="nobody") == []

    reopened = bob_api.change_discussion_status(repo_id, 1, "open", repo_type=repo_type)
    assert reopened.new_status == "open" and nums(discussion_status="closed") == []


def test_discussions_are_paged_as_the_client_reads_them(server: Any, api: HfApi, alice: str, repo: str) -> None:
    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {alice}"}) as http:
        for i in range(53):
            r = http.post(f"/api/models/{repo}/discussions", json={"title": f"Question {i}", "description": "?"})
            assert r.status_code == 200, r.text
        page = http.get(f"/api/models/{repo}/discussions", params={"p": 1}).json()
    assert (page["count"], page["start"], len(page["discussions"])) == (53, 50, 3)
    listed = list(api.get_repo_discussions(repo))
    assert [d.num for d in listed] == list(range(53, 0, -1))
    assert listed[0].title == "Question 52"


def test_pull_request_from_a_user_without_write_access(
    server: Any, api: HfApi, bob_api: HfApi, alice: str, unique: str, cache_dir: Path
) -> None:
    """bob opens a pull request on alice's Space with upload_file(create_pr=True); alice reviews, comments and
    merges; main then holds bob's file and its history shows the merge."""
    space = f"alice/{unique}"
    api.create_repo(space, repo_type="space", space_sdk="static")
    main_before = api.space_info(space).sha

    with pytest.raises(HfHubHTTPError) as refused:  # bob may not write to main...
        bob_api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=space, repo_type="space")
    assert status_of(refused) == 403
    info = bob_api.upload_file(  # ...but may open a pull request
        path_or_fileobj=b"<h1>Hello from bob</h1>",
        path_in_repo="index.html",
        repo_id=space,
        repo_type="space",
        commit_message="Greet visitors",
        commit_description="A friendlier page.",
        create_pr=True,
    )
    assert info.pr_num == 1 and info.pr_revision == "refs/pr/1"
    assert info.pr_url == f"{server.url}/spaces/{space}/discussions/1"
    assert api.space_info(space).sha == main_before  # main is untouched

    got = hf_hub_download(
        space,
        "index.html",
        repo_type="space",
        revision="refs/pr/1",
        endpoint=server.url,
        token=alice,
        cache_dir=cache_dir,
    )
    assert Path(got).read_bytes() == b"<h1>Hello from bob</h1>"
    pr_commits = api.list_repo_commits(space, repo_type="space", revision="refs/pr/1")
    assert pr_commits[0].commit_id == info.oid and pr_commits[0].title == "Greet visitors"
    assert pr_commits[1].commit_id == main_before
    refs = api.list_repo_refs(space, repo_type="space", include_pull_requests=True)
    assert [(r.ref, r.target_commit) for r in refs.pull_requests or []] == [("refs/pr/1", info.oid)]
    assert [b.name for b in refs.branches] == ["main"]

    # alice lists, reads, comments; bob answers and edits his comment; bob adds a commit to his pull request
    (listed,) = api.get_repo_discussions(space, repo_type="space")
    assert (listed.num, listed.is_pull_request, listed.author, listed.title) == (1, True, "bob", "Greet visitors")
    details = api.get_discussion_details(space, 1, repo_type="space")
    assert details.status == "open" and details.target_branch == "refs/heads/main"
    assert details.conflicting_files == [] and "index.html" in (details.diff or "")
    assert isinstance(details.events[0], DiscussionComment) and details.events[0].content == "A friendlier page."
    assert isinstance(details.events[1], DiscussionCommit) and details.events[1].oid == info.oid
    api.comment_discussion(space, 1, "Could you add a stylesheet too?", repo_type="space")
    mine = bob_api.comment_discussion(space, 1, "Sure, on its way", repo_type="space")
    edited = bob_api.edit_discussion_comment(space, 1, mine.id, "Done: style.css updated", repo_type="space")
    assert edited.edited and edited.content == "Done: style.css updated" and edited.number_of_edits == 1
    assert edited.edit_history[0]["raw"] == "Sure, on its way"
    second = bob_api.create_commit(
        space,
        [CommitOperationAdd("style.css", b"h1 { color: teal; }")],
        commit_message="Style the greeting",
        repo_type="space",
        revision="refs/pr/1",
    )
    assert bob_api.list_repo_commits(space, repo_type="space", revision="refs/pr/1")[0].commit_id == second.oid

    with pytest.raises(HfHubHTTPError) as refused:
        bob_api.merge_pull_request(space, 1, repo_type="space")
    assert status_of(refused) == 403
    api.merge_pull_request(space, 1, comment="Thanks bob!", repo_type="space")

    merged = api.get_discussion_details(space, 1, repo_type="space")
    head = api.space_info(space).sha
    assert merged.status == "merged" and merged.merge_commit_oid == head
    assert merged.events[-2].type == "status-change" and merged.events[-2].new_status == "merged"  # type: ignore[attr-defined]
    assert merged.events[-1].content == "Thanks bob!"  # type: ignore[attr-defined]
    history = api.list_repo_commits(space, repo_type="space")
    assert history[0].commit_id == head and history[0].title == "Merge pull request #1: Greet visitors"
    assert {c.commit_id for c in history} >= {info.oid, second.oid, main_before}
    got = hf_hub_download(
        space,
        "index.html",
        repo_type="space",
        endpoint=server.url,
        token=alice,
        cache_dir=cache_dir,
        force_download=True,
    )
    assert Path(got).read_bytes() == b"<h1>Hello from bob</h1>"
    assert "style.css" in api.list_repo_files(space, repo_type="space")
    with pytest.raises(HfHubHTTPError) as refused:  # a merged pull request takes no more commits
        bob_api.upload_file(
            path_or_fileobj=b"late", path_in_repo="late.txt", repo_id=space, repo_type="space", revision="refs/pr/1"
        )
    assert status_of(refused) == 400


def test_upload_folder_opens_a_pull_request(api: HfApi, bob_api: HfApi, repo: str, tmp_path: Path) -> None:
    """2.x's upload_folder(create_pr=True) opens the pull request first, then commits to refs/pr/N."""
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text('{"a": 1}')
    (folder / "sub" / "weights.bin").write_bytes(b"\0" * 2048)
    info = bob_api.upload_folder(folder_path=folder, repo_id=repo, commit_message="Add weights", create_pr=True)
    assert info.pr_revision == "refs/pr/1"
    assert set(api.list_repo_files(repo, revision="refs/pr/1")) >= {"config.json", "sub/weights.bin"}
    assert "config.json" not in api.list_repo_files(repo)
    api.merge_pull_request(repo, 1)
    assert set(api.list_repo_files(repo)) >= {"config.json", "sub/weights.bin"}


def test_pull_request_refusals(server: Any, api: HfApi, bob_api: HfApi, carol_api: HfApi, repo: str, bob: str) -> None:
    bob_pr = bob_api.create_commit(repo, [CommitOperationAdd("a.txt", b"bob")], commit_message="Add a", create_pr=True)
    assert bob_pr.pr_num == 1
    with pytest.raises(HfHubHTTPError) as refused:  # carol may not write to bob's pull request
        carol_api.create_commit(repo, [CommitOperationAdd("c.txt", b"c")], commit_message="c", revision="refs/pr/1")
    assert status_of(refused) == 403
    with pytest.raises(HfHubHTTPError) as refused:  # nor rename or close it
        carol_api.rename_discussion(repo, 1, "Hijacked")
    assert status_of(refused) == 403
    with pytest.raises(HfHubHTTPError) as refused:
        carol_api.change_discussion_status(repo, 1, "closed")
    assert status_of(refused) == 403
    with pytest.raises(HfHubHTTPError) as refused:  # nor edit bob's comment
        first = api.get_discussion_details(repo, 1).events[0]
        carol_api.edit_discussion_comment(repo, 1, first.id, "mine now")
    assert status_of(refused) == 403
    with pytest.raises(RevisionNotFoundError):  # no such pull request
        bob_api.create_commit(repo, [CommitOperationAdd("c.txt", b"c")], commit_message="c", revision="refs/pr/9")
    api.create_discussion(repo, "Not a pull request")
    with pytest.raises(RevisionNotFoundError):  # a discussion has no ref
        api.create_commit(repo, [CommitOperationAdd("c.txt", b"c")], commit_message="c", revision="refs/pr/2")
    with pytest.raises(HfHubHTTPError) as refused:
        api.merge_pull_request(repo, 2)
    assert status_of(refused) == 400
    with pytest.raises(HfHubHTTPError) as refused:
        api.get_discussion_details(repo, 99)
    assert status_of(refused) == 404
    with pytest.raises(HfHubHTTPError) as refused:
        api.comment_discussion(repo, 99, "hello?")
    assert status_of(refused) == 404
    with pytest.raises(HfHubHTTPError) as refused:
        bob_api.create_discussion(repo, "no")  # titles are 3 to 200 characters
    assert status_of(refused) == 400
    read_only = HfApi(endpoint=server.url, token=server.user("bob", role="read"))
    with pytest.raises(HfHubHTTPError) as refused:
        read_only.create_discussion(repo, "From a read token")
    assert status_of(refused) == 403
    anonymous = HfApi(endpoint=server.url, token=False)
    with pytest.raises(HfHubHTTPError) as refused:
        anonymous.comment_discussion(repo, 1, "who am I")
    assert status_of(refused) == 401
    assert [d.num for d in anonymous.get_repo_discussions(repo)] == [2, 1]  # reading needs no account

    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {bob}"}) as http:
        for path in ("/discussions/abc", "/discussions/0", "/discussions/-1"):
            r = http.get(f"/api/models/{repo}{path}")
            assert r.status_code == 400 and "discussion number" in r.json()["error"], path
        r = http.post(f"/api/models/{repo}/discussions/1/status", json={"status": "merged"})
        assert r.status_code == 400 and "Invalid status" in r.headers["x-error-message"]
        r = http.get(f"/api/models/{repo}/discussions", params={"type": "issue"})
        assert r.status_code == 400
        r = http.get(f"/api/models/{repo}/discussions", params={"p": "x"})
        assert r.status_code == 400
        r = http.post(f"/api/models/{repo}/discussions", json={"title": "Fine title", "pullRequest": "yes"})
        assert r.status_code == 400
        r = http.post(f"/api/models/{repo}/discussions/1/comment", json={"comment": ""})
        assert r.status_code == 400
    assert [d.num for d in api.get_repo_discussions(repo)] == [2, 1]  # nothing was created by the refusals
    assert api.get_discussion_details(repo, 1).status == "open"

    bob_api.change_discussion_status(repo, 1, "closed")  # the author closes his own
    with pytest.raises(HfHubHTTPError) as refused:
        api.merge_pull_request(repo, 1)
    assert status_of(refused) == 400
    with pytest.raises(HfHubHTTPError) as refused:
        bob_api.create_commit(repo, [CommitOperationAdd("c.txt", b"c")], commit_message="c", revision="refs/pr/1")
    assert status_of(refused) == 400


def test_a_conflicting_pull_request_is_not_merged(api: HfApi, bob_api: HfApi, repo: str) -> None:
    api.upload_file(path_or_fileobj=b"one\n", path_in_repo="notes.txt", repo_id=repo)
    bob_api.upload_file(path_or_fileobj=b"bob's\n", path_in_repo="notes.txt", repo_id=repo, create_pr=True)
    api.upload_file(path_or_fileobj=b"alice's\n", path_in_repo="notes.txt", repo_id=repo)
    head = api.model_info(repo).sha
    assert api.get_discussion_details(repo, 1).conflicting_files == ["notes.txt"]
    with pytest.raises(HfHubHTTPError) as refused:
        api.merge_pull_request(repo, 1)
    assert status_of(refused) == 409 and "notes.txt" in str(refused.value)
    assert api.model_info(repo).sha == head and api.get_discussion_details(repo, 1).status == "open"


def test_private_repo_discussions_are_invisible(api: HfApi, bob_api: HfApi, unique: str) -> None:
    private = f"alice/{unique}-private"
    api.create_repo(private, private=True)
    api.create_discussion(private, "Internal")
    with pytest.raises(RepositoryNotFoundError):
        list(bob_api.get_repo_discussions(private))
    with pytest.raises(RepositoryNotFoundError):
        bob_api.get_discussion_details(private, 1)
    with pytest.raises(RepositoryNotFoundError):
        bob_api.create_discussion(private, "Let me in")
    with pytest.raises(RepositoryNotFoundError):
        bob_api.comment_discussion(private, 1, "hello")
    with pytest.raises(RepositoryNotFoundError):
        bob_api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=private, create_pr=True)
    assert [d.num for d in api.get_repo_discussions(private)] == [1]


def test_hidden_comment_loses_its_text(api: HfApi, bob_api: HfApi, repo: str) -> None:
    d = bob_api.create_discussion(repo, "Oops", description="my token is hf_secret")
    with pytest.warns(UserWarning):
        hidden = api.hide_discussion_comment(repo, d.num, d.events[0].id)  # a writer hides it
    assert hidden.hidden and "hf_secret" not in hidden.content
    details = api.get_discussion_details(repo, d.num)
    assert "hf_secret" not in str(details.events[0]._event)
    with pytest.raises(HfHubHTTPError) as refused:
        bob_api.edit_discussion_comment(repo, d.num, d.events[0].id, "again")
    assert status_of(refused) == 400
