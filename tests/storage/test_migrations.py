"""The migrations build exactly the schema the models declare (no drift), and upgrading keeps the data."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from spacehub.storage import models  # noqa: F401  (registers the tables)
from spacehub.storage.db import MIGRATIONS_DIR, Base, upgrade_schema


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    return str(request.getfixturevalue("postgres_url"))


def _config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def test_one_head() -> None:
    assert len(ScriptDirectory.from_config(_config("sqlite://")).get_heads()) == 1


def _drift(url: str) -> list[object]:
    engine = create_engine(url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        diff = compare_metadata(ctx, Base.metadata)
    engine.dispose()
    return list(diff)


def test_models_and_migrations_agree(fresh_url: str) -> None:
    """What `alembic check` does: after `upgrade head`, autogenerate finds nothing to add, drop or change."""
    command.upgrade(_config(fresh_url), "0001")
    assert _drift(fresh_url) != []  # the check sees a difference (0001's 32-bit lfs_objects.size)...
    upgrade_schema(fresh_url)
    assert _drift(fresh_url) == []  # ...and none at head


def test_upgrade_keeps_data(fresh_url: str) -> None:
    command.upgrade(_config(fresh_url), "0001")
    engine = create_engine(fresh_url)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO lfs_objects (sha256, size, git_sha1, created_at) VALUES (:s, 12, NULL, :t)"),
            {"s": "c" * 64, "t": "2026-01-02 03:04:05"},
        )
    upgrade_schema(fresh_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE lfs_objects SET size = :n"), {"n": 3 * 1024**3})  # over 2 GiB since 0002
        assert conn.execute(text("SELECT sha256, size FROM lfs_objects")).all() == [("c" * 64, 3 * 1024**3)]
        conn.execute(text("DELETE FROM lfs_objects"))
    engine.dispose()
    command.downgrade(_config(fresh_url), "base")  # and back
