"""Engine, session factory and schema upgrade (alembic) for SpaceHub's database."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Executable, Row, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.elements import ClauseElement

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_AFTER_COMMIT = "spacehub.after_commit"
log = logging.getLogger("spacehub.db")
SQLITE_POOL = 40  # SQLite connections kept open: one per request thread
PEEK_TIMEOUT_MS = 1000  # `Database.peek` on a database over a network: a read that takes longer fails


class Base(DeclarativeBase):
    pass


def utcnow() -> dt.datetime:
    """Naive UTC timestamp (what we store)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def make_engine(url: str, peeks: bool = False) -> Engine:
    """The engine of ``url``; with ``peeks``, one for `Database.peek` (a database over a network only)."""
    if peeks:  # read on the event loop (api/answer_cache.py): a read that stalls fails within a second or two
        args = {"connect_timeout": 2, "options": f"-c statement_timeout={PEEK_TIMEOUT_MS}"}
        return create_engine(url, isolation_level="AUTOCOMMIT", pool_size=4, max_overflow=8, connect_args=args)
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
        # the counters every ORM session moves as it writes (their listeners), in whichever process opens a database
        from spacehub.storage import credentials, host_generation, repo_generation  # noqa: F401

        self.url = url
        self.engine = make_engine(url)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite reads outside a transaction already (pysqlite begins one at the first write); elsewhere `peek` has
        # connections of its own in autocommit, without the pool's ping: one round trip a read
        self._peeker = self.engine if url.startswith("sqlite") else make_engine(url, peeks=True)
        self._peeks: dict[ClauseElement, tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}  # compiled once

    def session(self) -> Session:
        return self._factory()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self._factory() as s, s.begin():
            yield s

    def peek(self, statement: ClauseElement, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row of one small read (a Core statement, without expanding ``IN`` parameters), outside any
        transaction: no BEGIN, no COMMIT, no ORM, and no ping of the connection first (a broken one raises, and the
        pool replaces it). For the reads on every request that check a kept answer (api/answer_cache.py).

        The statement is compiled once, and run on the driver's own connection: its values come as the driver
        gives them (no result processing). SQLAlchemy's execution around a statement costs more than the
        statement (on PostgreSQL ~160 us of CPU against psycopg's ~90 us), and this read runs on the event loop
        at every kept answer."""
        sql, names, defaults = self._peeks.get(statement) or self._compile_peek(statement)
        values = {**defaults, **params}
        conn = self._peeker.raw_connection()
        try:
            cur = conn.cursor()
            try:
                cur.execute(sql, [values[n] for n in names] if names is not None else values)
                row = cur.fetchone()
            finally:
                cur.close()
        finally:
            conn.close()  # back to the pool
        return None if row is None else tuple(row)

    def _compile_peek(self, statement: ClauseElement) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
        compiled = statement.compile(dialect=self._peeker.dialect)
        positional = self._peeker.dialect.positional
        entry = (str(compiled), tuple(compiled.positiontup or ()) if positional else None, dict(compiled.params))
        if "POSTCOMPILE" in entry[0]:
            raise ValueError("Database.peek takes no expanding (IN) parameters")
        self._peeks[statement] = entry
        return entry

    def peek_all(self, statement: Executable, params: Mapping[str, Any] | None = None) -> list[Row[Any]]:
        """Every row of a small read (a Core statement), as `peek` reads: one round trip, for a read that needs no
        snapshot shared with another (the host index's entries of the repos a commit changed)."""
        with self._peeker.connect() as c:
            return list(c.execute(statement, params or {}).all())


def outermost(listener: Callable[..., Any]) -> Callable[..., Any]:
    """A session listener (``before_commit``, ``after_commit``, ``after_rollback``) called for the outermost
    transaction only. SQLAlchemy calls those for a savepoint too (``begin_nested``): at its release nothing is durable
    yet, and at its rollback the transaction goes on with what it did before the savepoint (so what the listeners keep
    for the transaction's end must stay)."""

    @functools.wraps(listener)
    def call(s: Session, *args: Any) -> Any:
        if not s.in_nested_transaction():
            return listener(s, *args)
        return None

    return call


def after_commit(s: Session, fn: Callable[[], None]) -> None:
    """Run ``fn`` once the transaction of ``s`` has committed, i.e. once what it wrote is durable and visible to
    other sessions (in the committing thread); never when it rolls back. At once when ``s`` is in no transaction."""
    if not s.in_transaction():
        fn()
        return
    s.info.setdefault(_AFTER_COMMIT, []).append(fn)


@event.listens_for(Session, "after_commit")
@outermost
def _committed(s: Session) -> None:
    for fn in s.info.pop(_AFTER_COMMIT, []):
        try:
            fn()
        except Exception:  # one listener's failure neither undoes the commit nor stops the others
            log.exception("an after-commit callback failed")


@event.listens_for(Session, "after_rollback")
@outermost
def _rolled_back(s: Session) -> None:
    s.info.pop(_AFTER_COMMIT, None)
