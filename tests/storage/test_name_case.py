"""Repo ids in any case name the same repo, and the database itself keeps names from differing only in case: on
SQLite and on PostgreSQL (migration 0011's unique indexes on lower(name))."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from spacehub.errors import Conflict
from spacehub.services import accounts, repos
from spacehub.services.context import HubContext
from spacehub.storage.db import MIGRATIONS_DIR, upgrade_schema
from spacehub.storage.models import Account, Repo


def test_ids_in_any_case_name_one_repo(ctx: HubContext) -> None:
    with ctx.db.transaction() as s:
        accounts.create_user(s, "Alice")
        alice = accounts.principal_of(s, accounts.get_account(s, "alice"), "write")  # type: ignore[arg-type]
        made = repos.create_repo(ctx, s, alice, "model", "My-Model", None)
        assert made.full_name == "Alice/My-Model"
        for spelling in ("Alice/My-Model", "alice/my-model", "ALICE/MY-MODEL", "aLiCe/mY-mOdEl"):
            assert repos.find_repo(s, "model", spelling) is made
        assert repos.find_repo(s, "dataset", "alice/my-model") is None  # the type still matters
        with pytest.raises(Conflict):
            repos.create_repo(ctx, s, alice, "model", "my-model", "ALICE")
        with pytest.raises(Conflict):
            accounts.create_user(s, "ALICE")
        other = repos.create_repo(ctx, s, alice, "model", "Other", None)
        with pytest.raises(Conflict):  # a move may not make two names differ only in case either
            repos.move_repo(ctx, s, alice, "model", "alice/other", "alice/MY-MODEL")
        moved = repos.move_repo(ctx, s, alice, "model", "alice/OTHER", "alice/Renamed")
        assert moved is other and repos.find_repo(s, "model", "alice/other") is other  # the old name, in any case


def test_the_database_refuses_names_that_differ_only_in_case(ctx: HubContext) -> None:
    with ctx.db.transaction() as s:
        owner = accounts.create_user(s, "bob")
        s.add(Repo(id="a" * 24, type="space", owner_id=owner.id, name="Demo"))
        s.add(Repo(id="b" * 24, type="model", owner_id=owner.id, name="demo"))  # another type: allowed
    with pytest.raises(IntegrityError), ctx.db.transaction() as s:
        s.add(Repo(id="c" * 24, type="space", owner_id=owner.id, name="DEMO"))
    with pytest.raises(IntegrityError), ctx.db.transaction() as s:
        s.add(Account(name="BOB", kind="org"))
    with ctx.db.transaction() as s:
        assert s.query(Repo).count() == 2 and s.query(Account).count() == 1


def test_the_migration_stops_on_names_that_already_clash(db_url: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    command.upgrade(cfg, "0009")
    engine = create_engine(db_url)
    with engine.begin() as conn:
        for name in ("carol", "Carol"):
            conn.execute(
                text(
                    "INSERT INTO accounts (name, kind, fullname, is_admin, created_at)"
                    " VALUES (:n, 'user', :n, false, :t)"
                ),
                {"n": name, "t": "2026-01-01 00:00:00"},
            )
    with pytest.raises(RuntimeError, match="account carol"):
        upgrade_schema(db_url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM accounts WHERE name = 'Carol'"))
    upgrade_schema(db_url)  # now it goes through
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM accounts")).scalar() == 1
    engine.dispose()
