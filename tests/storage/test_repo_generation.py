"""The repo generation (storage/repo_generation.py) and after-commit callbacks around savepoints (storage/db.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from spacehub.services import accounts
from spacehub.services.context import HubContext
from spacehub.storage.db import after_commit, utcnow
from spacehub.storage.models import Repo, Space, SpaceStatus, UsageInterval


@pytest.fixture
def repo_id(ctx: HubContext) -> str:
    with ctx.db.transaction() as s:
        owner = accounts.create_user(s, "gen")
        s.add(Repo(id="a" * 24, type="space", owner_id=owner.id, name="counted", sdk="gradio"))
    return "a" * 24


def generation(ctx: HubContext, repo_id: str) -> int:
    with ctx.db.transaction() as s:
        return int(s.scalar(select(Repo.generation).where(Repo.id == repo_id)) or 0)


def test_a_transaction_that_changes_a_repos_rows_moves_it_once(ctx: HubContext, repo_id: str) -> None:
    start = generation(ctx, repo_id)
    with ctx.db.transaction() as s:
        s.add(Space(repo_id=repo_id, hardware="cpu-basic", paused=False))
        s.flush()
        s.add(SpaceStatus(repo_id=repo_id, stage="BUILDING"))
        s.flush()
        s.get(Space, repo_id).paused = True  # type: ignore[union-attr]
    assert generation(ctx, repo_id) == start + 1
    with ctx.db.transaction() as s:
        s.get(SpaceStatus, repo_id).stage = "RUNNING"  # type: ignore[union-attr]  # pending at commit: flushed then
    assert generation(ctx, repo_id) == start + 2
    with ctx.db.transaction() as s:
        s.get(SpaceStatus, repo_id).stage = "RUNNING"  # type: ignore[union-attr]  # the same value: no change
        s.get(Repo, repo_id)
    assert generation(ctx, repo_id) == start + 2


def test_rows_no_answer_shows_and_rolled_back_changes_do_not_move_it(ctx: HubContext, repo_id: str) -> None:
    start = generation(ctx, repo_id)
    now = utcnow()
    with ctx.db.transaction() as s:
        s.add(UsageInterval(owner_id=1, repo_id=repo_id, space_name="gen/counted", flavor="cpu-basic",
                            unit_cost_micro_usd=0, started_at=now, last_seen_at=now))  # fmt: skip
    with pytest.raises(RuntimeError), ctx.db.transaction() as s:
        s.get(Repo, repo_id).sdk = "static"  # type: ignore[union-attr]
        s.flush()
        raise RuntimeError("rolled back")
    assert generation(ctx, repo_id) == start


def test_a_savepoint_rolled_back_keeps_what_the_transaction_changed_before_it(ctx: HubContext, repo_id: str) -> None:
    start = generation(ctx, repo_id)
    ran: list[str] = []
    with ctx.db.transaction() as s:
        s.get(Repo, repo_id).sdk = "static"  # type: ignore[union-attr]
        s.flush()
        after_commit(s, lambda: ran.append("before the savepoints"))
        with pytest.raises(RuntimeError), s.begin_nested():
            s.add(SpaceStatus(repo_id=repo_id, stage="BUILDING"))
            s.flush()
            raise RuntimeError("the savepoint is rolled back")
        with s.begin_nested():
            s.add(Space(repo_id=repo_id, hardware="cpu-basic", paused=False))
        assert ran == []  # a savepoint's release is no commit
    assert ran == ["before the savepoints"]
    assert generation(ctx, repo_id) == start + 1
    with ctx.db.transaction() as s:
        assert s.get(Repo, repo_id).sdk == "static"  # type: ignore[union-attr]
        assert s.get(SpaceStatus, repo_id) is None


def test_a_deleted_repo_is_a_change_too(ctx: HubContext, repo_id: str) -> None:
    with ctx.db.transaction() as s:
        s.delete(s.get(Repo, repo_id))
    with ctx.db.transaction() as s:
        assert s.get(Repo, repo_id) is None  # committed: the statement moving its counter touched no row
