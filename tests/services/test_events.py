"""Repo events reach their subscribers once the change is durable: after the commit, never after a rollback."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from spacehub.services import accounts, repos
from spacehub.services.accounts import Principal
from spacehub.services.context import HubContext, RepoEvent
from spacehub.storage.db import after_commit
from spacehub.storage.models import Repo


def alice(ctx: HubContext) -> Principal:
    with ctx.db.transaction() as s:
        user = accounts.create_user(s, "alice")
        return Principal(user_id=user.id, name=user.name, token_role="write")


def test_a_create_is_announced_after_its_commit_and_the_subscriber_sees_the_row(ctx: HubContext) -> None:
    p = alice(ctx)
    seen: list[tuple[RepoEvent, bool]] = []

    def subscriber(event: RepoEvent) -> None:
        # read from another thread's session, as the reconciler does: the row must be there already
        found: list[bool] = []

        def read() -> None:
            with ctx.db.transaction() as s:
                found.append(s.scalar(select(Repo).where(Repo.id == event.repo_id)) is not None)

        t = threading.Thread(target=read)
        t.start()
        t.join()
        seen.append((event, found[0]))

    ctx.events.subscribe(subscriber)
    with ctx.db.transaction() as s:
        repo = repos.create_repo(ctx, s, p, "space", "demo", None, sdk="static", base_url="http://hub")
        assert seen == []  # not while the transaction is open
    assert [(e.kind, e.repo_id, found) for e, found in seen] == [("created", repo.id, True)]


def test_a_rolled_back_change_is_never_announced(ctx: HubContext) -> None:
    p = alice(ctx)
    seen: list[RepoEvent] = []
    ctx.events.subscribe(seen.append)
    with pytest.raises(RuntimeError), ctx.db.transaction() as s:
        repos.create_repo(ctx, s, p, "space", "doomed", None, sdk="static", base_url="http://hub")
        raise RuntimeError("a later step failed")
    assert seen == []
    with ctx.db.transaction() as s:  # and the session's next transaction does not inherit it
        s.execute(select(Repo.id)).all()
    assert seen == []


def test_after_commit_outside_a_transaction_runs_at_once_and_a_failing_callback_spares_the_rest(
    ctx: HubContext,
) -> None:
    ran: list[str] = []
    with ctx.db.session() as s:
        after_commit(s, lambda: ran.append("now"))
    assert ran == ["now"]
    with ctx.db.transaction() as s:
        after_commit(s, lambda: 1 / 0)  # type: ignore[func-returns-value]
        after_commit(s, lambda: ran.append("second"))
    assert ran == ["now", "second"]
