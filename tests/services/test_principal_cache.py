"""`accounts.authenticate` answers a token it resolved before from memory, and only while nothing about who that
token is has changed anywhere: the credential generation (storage/credentials.py) moves in the same transaction as
any change to a token, an account or a membership, made by any process on the database (here: a second context on
the same database, as another HTTP worker or the command line would be)."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from sqlalchemy import event, select

from spacehub.config import Settings
from spacehub.errors import Unauthorized
from spacehub.services import accounts
from spacehub.services.context import HubContext
from spacehub.storage import credentials
from spacehub.storage.db import utcnow
from spacehub.storage.models import Account, Token
from spacehub.wiring import hub_context


@pytest.fixture
def two(tmp_path: Path) -> tuple[HubContext, HubContext]:
    a, b = (hub_context(Settings(data_dir=tmp_path / "data")) for _ in range(2))
    with a.db.transaction() as s:
        accounts.create_user(s, "alice")
        accounts.create_org(s, "acme")
    return a, b


def who(ctx: HubContext, token: str) -> accounts.Principal:
    with ctx.db.transaction() as s:
        return accounts.authenticate(s, token)


def generation(ctx: HubContext) -> int | None:
    with ctx.db.transaction() as s:
        return credentials.current(s)


def test_a_token_revoked_elsewhere_is_refused_at_once(two: tuple[HubContext, HubContext]) -> None:
    a, b = two
    with a.db.transaction() as s:
        token = accounts.create_token(s, "alice", "write", "laptop")
    assert who(a, token).name == "alice"
    assert who(a, token).name == "alice"  # from memory now
    with b.db.transaction() as s:  # another process revokes it
        s.delete(s.scalar(select(Token).where(Token.name == "laptop")))
    with pytest.raises(Unauthorized):
        who(a, token)


def test_a_role_changed_elsewhere_is_seen_at_once(two: tuple[HubContext, HubContext]) -> None:
    a, b = two
    with a.db.transaction() as s:
        token = accounts.create_token(s, "alice", "write")
    assert who(a, token).org_roles == {}
    with b.db.transaction() as s:
        accounts.add_member(s, "acme", "alice", "admin")
    (role,) = who(a, token).org_roles.values()
    assert role == "admin"
    with b.db.transaction() as s:
        s.scalar(select(Account).where(Account.name == "alice")).is_admin = True
    assert who(a, token).is_admin is True


def test_using_a_token_does_not_move_the_generation_but_an_expiry_still_refuses(
    two: tuple[HubContext, HubContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = two
    with a.db.transaction() as s:
        token = accounts.create_token(s, "alice", "write", expires_at=utcnow() + dt.timedelta(hours=1))
    before = generation(a)
    assert before is not None
    later = utcnow() + dt.timedelta(minutes=2)  # its last_used_at is written again: not a change of who it is
    monkeypatch.setattr(accounts, "utcnow", lambda: later)
    assert who(a, token).name == "alice"
    assert generation(a) == before
    expired = utcnow() + dt.timedelta(hours=2)
    monkeypatch.setattr(accounts, "utcnow", lambda: expired)
    with pytest.raises(Unauthorized):
        who(a, token)


def test_a_change_that_rolls_back_moves_nothing(two: tuple[HubContext, HubContext]) -> None:
    a, _ = two
    before = generation(a)
    with pytest.raises(RuntimeError), a.db.transaction() as s:
        accounts.create_token(s, "alice", "read")
        raise RuntimeError("rolled back")
    assert generation(a) == before
    with a.db.transaction() as s:
        accounts.create_token(s, "alice", "read")
    assert generation(a) == (before or 0) + 1


def statements(ctx: HubContext) -> list[str]:
    """The SQL ``ctx`` runs from now on."""
    seen: list[str] = []
    event.listen(ctx.db.engine, "before_cursor_execute", lambda *a: seen.append(a[2].split()[0].upper()))
    return seen


def last_used(ctx: HubContext) -> dt.datetime | None:
    with ctx.db.transaction() as s:
        return s.scalar(select(Token.last_used_at).where(Token.name == "poller"))


def remembered_then_due(ctx: HubContext, monkeypatch: pytest.MonkeyPatch) -> tuple[str, dt.datetime]:
    """A token resolved once (in memory, its last_used_at written), then the clock a little past `TOUCH_EVERY`:
    the token, and that time."""
    with ctx.db.transaction() as s:
        token = accounts.create_token(s, "alice", "write", "poller")
    assert who(ctx, token).name == "alice" and last_used(ctx) is not None
    later = utcnow() + accounts.TOUCH_EVERY + dt.timedelta(seconds=1)
    monkeypatch.setattr(accounts, "utcnow", lambda: later)
    return token, later


def test_a_due_last_used_at_is_written_by_one_request_while_the_others_go_on_from_memory(
    two: tuple[HubContext, HubContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = two
    token, later = remembered_then_due(a, monkeypatch)
    seen = statements(a)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(who(a, token).name)) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["alice"] * 16
    assert seen.count("UPDATE") == 1  # one write of last_used_at, not one per request
    assert seen.count("SELECT") == 16  # each: the credential generation only, never the token again
    assert last_used(a) == later


def test_kept_answers_leave_the_due_write_to_one_thread(
    two: tuple[HubContext, HubContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = two
    token, later = remembered_then_due(a, monkeypatch)
    gen = generation(a)
    assert gen is not None
    # as the kept answers ask 64 times at once, on the event loop: all are answered, nothing is read or written
    seen = statements(a)
    assert {accounts.known_principal(a.db.engine, token, gen).name for _ in range(64)} == {"alice"}  # type: ignore[union-attr]
    assert seen == [] and accounts.last_used_due(a.db.engine)
    assert accounts.write_last_used(a.db) == 1 and not accounts.last_used_due(a.db.engine)
    assert last_used(a) == later and seen.count("UPDATE") == 1
    assert accounts.write_last_used(a.db) == 0  # written once
