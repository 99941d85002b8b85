"""Engine, session factory and schema upgrade (alembic) for SpaceHub's database."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_AFTER_COMMIT = "spacehub.after_commit"
log = logging.getLogger("spacehub.db")
SQLITE_POOL = 40  # SQLite connections kept open: one per request thread


class Base(DeclarativeBase):
    pass


def utcnow() -> dt.datetime:
    """Naive UTC timestamp (what we store)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # A connection kept per request thread (anyio's 40 by default): with the default pool (5 kept, 10 more
        # opened and closed again), concurrent requests opened a new connection (and ran the pragmas) for most
        # of their units of work, and waited for one past 15.
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=SQLITE_POOL, max_overflow=20
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def upgrade_schema(url: str) -> None:
    """Bring the database to the newest migration (run at every start; idempotent)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, "head")


class Database:
    """Holds the engine and hands out sessions; ``transaction()`` commits or rolls back as one unit."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self._factory()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self._factory() as s, s.begin():
            yield s


def after_commit(s: Session, fn: Callable[[], None]) -> None:
    """Run ``fn`` once the transaction of ``s`` has committed, i.e. once what it wrote is durable and visible to
    other sessions (in the committing thread); never when it rolls back. At once when ``s`` is in no transaction."""
    if not s.in_transaction():
        fn()
        return
    s.info.setdefault(_AFTER_COMMIT, []).append(fn)


@event.listens_for(Session, "after_commit")
def _committed(s: Session) -> None:
    for fn in s.info.pop(_AFTER_COMMIT, []):
        try:
            fn()
        except Exception:  # one listener's failure neither undoes the commit nor stops the others
            log.exception("an after-commit callback failed")


@event.listens_for(Session, "after_rollback")
def _rolled_back(s: Session) -> None:
    s.info.pop(_AFTER_COMMIT, None)
