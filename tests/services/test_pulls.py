"""Pull requests in-process: a merge is announced like any commit (the Space rebuilds from it), it moves the branch
only by compare-and-swap, and numbers stay unique when discussions are opened at once."""

from __future__ import annotations

import base64
import io
import json
import threading
from typing import Any

import pytest
from sqlalchemy import select

from spacehub.errors import PreconditionFailed
from spacehub.services import accounts, commits, discussions, pulls, repos
from spacehub.services.accounts import Principal
from spacehub.services.context import HubContext, RepoEvent
from spacehub.storage.models import Discussion, DiscussionEvent, Space


def user(ctx: HubContext, name: str) -> Principal:
    with ctx.db.transaction() as s:
        u = accounts.create_user(s, name)
        return Principal(user_id=u.id, name=u.name, token_role="write")


def ndjson(summary: str, files: dict[str, bytes]) -> io.BytesIO:
    lines: list[dict[str, Any]] = [{"key": "header", "value": {"summary": summary, "description": ""}}]
    for path, data in files.items():
        content = base64.b64encode(data).decode()
        lines.append({"key": "file", "value": {"path": path, "content": content, "encoding": "base64"}})
    return io.BytesIO(b"".join(json.dumps(line).encode() + b"\n" for line in lines))


@pytest.fixture
def space(ctx: HubContext) -> tuple[str, Principal, Principal]:
    """alice's static Space, and bob (no role on it) with pull request #1 adding ``hello.txt``."""
    alice, bob = user(ctx, "alice"), user(ctx, "bob")
    with ctx.db.transaction() as s:
        repo = repos.create_repo(ctx, s, alice, "space", "demo", None, sdk="static", base_url="http://hub")
    with ctx.db.transaction() as s:
        repo, ref = pulls.commit_access(s, bob, "space", "alice/demo", "main", create_pr=True)
        out = commits.create_commit(ctx, s, bob, repo, ref, ndjson("Say hello", {"hello.txt": b"hi"}), create_pr=True)
    assert out["pullRequestNum"] == 1
    return repo.id, alice, bob


def test_a_merge_is_announced_like_any_commit(ctx: HubContext, space: tuple[str, Principal, Principal]) -> None:
    repo_id, alice, _ = space
    seen: list[RepoEvent] = []
    ctx.events.subscribe(seen.append)
    with ctx.db.transaction() as s:
        row = s.get(Space, repo_id)
        before = row.change_seq if row is not None else 0
    with ctx.db.transaction() as s:
        pulls.merge_pull_request(ctx, s, alice, "space", "alice/demo", 1, None)
        assert seen == []  # announced once committed, not before
    head = ctx.git.branches(repo_id)["main"]
    assert [(e.kind, e.ref, e.sha) for e in seen] == [("committed", "refs/heads/main", head)]
    assert ctx.git.commit_info(repo_id, head).parents[1] == ctx.git.pull_requests(repo_id)["1"]
    with ctx.db.transaction() as s:
        row = s.get_one(Space, repo_id)
        assert (row.change, row.change_seq) == ("build", before + 1)  # the runtime rebuilds from the merge
        assert s.scalar(select(Discussion.merge_commit).where(Discussion.repo_id == repo_id)) == head


def test_a_merge_that_loses_the_race_for_the_branch_is_merged_again_on_the_new_head(
    ctx: HubContext, space: tuple[str, Principal, Principal], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo_id, alice, _ = space
    real_merge = ctx.git.merge_trees
    moved: list[str] = []

    def main_moves_meanwhile(rid: str, ours: str, theirs: str) -> tuple[str | None, list[str]]:
        if not moved:  # another writer commits to main between the merge's read and its swap, once
            with ctx.db.transaction() as s:
                repo, ref = pulls.commit_access(s, alice, "space", "alice/demo", "main", create_pr=False)
                moved.append(
                    commits.create_commit(ctx, s, alice, repo, ref, ndjson("Meanwhile", {"o.txt": b"x"}))["commitOid"]
                )
        return real_merge(rid, ours, theirs)

    monkeypatch.setattr(ctx.git, "merge_trees", main_moves_meanwhile)
    with ctx.db.transaction() as s:
        pulls.merge_pull_request(ctx, s, alice, "space", "alice/demo", 1, None)
    head = ctx.git.branches(repo_id)["main"]
    merge = ctx.git.commit_info(repo_id, head)
    assert merge.title.startswith("Merge pull request #1") and merge.parents[0] == moved[0]  # on top, nothing lost
    assert {"o.txt", "hello.txt"} <= set(ctx.git.files(repo_id, head))


def test_a_merge_whose_branch_keeps_moving_gives_up_and_changes_nothing(
    ctx: HubContext, space: tuple[str, Principal, Principal], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo_id, alice, _ = space
    monkeypatch.setattr(commits, "COMMIT_ATTEMPTS", 2)
    real_commit_tree = ctx.git.commit_tree

    def always_beaten(rid: str, ref: str, old: str, *args: Any) -> str:
        with ctx.db.transaction() as s:  # a writer lands first every time
            repo, branch = pulls.commit_access(s, alice, "space", "alice/demo", "main", create_pr=False)
            commits.create_commit(ctx, s, alice, repo, branch, ndjson("Meanwhile", {"o.txt": old.encode()}))
        return real_commit_tree(rid, ref, old, *args)

    monkeypatch.setattr(ctx.git, "commit_tree", always_beaten)
    with pytest.raises(PreconditionFailed), ctx.db.transaction() as s:
        pulls.merge_pull_request(ctx, s, alice, "space", "alice/demo", 1, None)
    assert ctx.git.commit_info(repo_id, ctx.git.branches(repo_id)["main"]).title == "Meanwhile"
    with ctx.db.transaction() as s:
        assert s.scalar(select(Discussion.status).where(Discussion.repo_id == repo_id)) == "open"


def test_numbers_stay_unique_when_discussions_are_opened_at_once(
    ctx: HubContext, space: tuple[str, Principal, Principal]
) -> None:
    _, _, bob = space
    errors: list[BaseException] = []

    def open_three() -> None:
        try:
            for _ in range(3):
                with ctx.db.transaction() as s:
                    body = {"title": "Concurrent question", "description": "?"}
                    discussions.create_discussion(ctx, s, bob, "space", "alice/demo", body, "http://hub")
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=open_three) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with ctx.db.transaction() as s:
        nums = sorted(s.scalars(select(Discussion.num)))
    assert nums == list(range(1, 20))  # the pull request is #1, then 18 discussions


def test_deleting_a_repo_deletes_its_discussions(ctx: HubContext, space: tuple[str, Principal, Principal]) -> None:
    repo_id, alice, bob = space
    with ctx.db.transaction() as s:
        discussions.create_discussion(ctx, s, bob, "space", "alice/demo", {"title": "A question"}, "http://hub")
        discussions.comment_discussion(ctx, s, alice, "space", "alice/demo", 2, {"comment": "An answer"})
    with ctx.db.transaction() as s:
        repos.delete_repo(ctx, s, alice, "space", "alice/demo")
    with ctx.db.transaction() as s:
        assert s.scalars(select(Discussion).where(Discussion.repo_id == repo_id)).all() == []
        assert s.scalars(select(DiscussionEvent)).all() == []
