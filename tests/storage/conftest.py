"""A throwaway PostgreSQL cluster for the test session (one per xdist worker, tests/postgres.py) and a fresh database
for each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.postgres import PostgresCluster, pg_bindir, throwaway_cluster

from spacehub.config import Settings
from spacehub.services.context import HubContext
from spacehub.wiring import hub_context


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    if pg_bindir() is None:
        pytest.fail("PostgreSQL server binaries not found: run scripts/install-system-deps (Debian's postgresql)")
    with throwaway_cluster() as cluster:
        yield cluster


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """The URL of a fresh PostgreSQL database (``postgresql+psycopg://spacehub@127.0.0.1:PORT/t_…``)."""
    return postgres_cluster.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each kind: a SQLite file, then a PostgreSQL database (the test runs once on each)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def ctx(db_url: str, tmp_path: Path) -> Iterator[HubContext]:
    """A HubContext on ``db_url`` (in this folder, the root conftest's SQLite-only ``ctx`` runs on both databases)."""
    context = hub_context(Settings(data_dir=tmp_path / "data", db={"url": db_url}))  # type: ignore[arg-type]
    yield context
    context.db.engine.dispose()
