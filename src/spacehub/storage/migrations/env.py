"""Alembic environment: runs migrations against the URL set by ``spacehub.storage.db.upgrade_schema``.

All migrations run in one transaction that first takes a database-wide lock, so that processes starting at once on a
new database (a server and an admin command, or two replicas on PostgreSQL) migrate one after the other; the later
ones then find the schema current and do nothing.
"""

from alembic import context
from sqlalchemy import create_engine, event, pool

from spacehub.storage import models  # noqa: F401  (registers the tables)
from spacehub.storage.db import Base

config = context.config
target_metadata = Base.metadata
PG_LOCK_KEY = 0x7370616365687562  # "spacehub": the key of the advisory lock held while migrating


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    is_sqlite = url.startswith("sqlite")
    engine = create_engine(url, poolclass=pool.NullPool, connect_args={"timeout": 300} if is_sqlite else {})
    if is_sqlite:
        # pysqlite issues no BEGIN before DDL: take over transaction control and take the write lock up front.
        @event.listens_for(engine, "connect")
        def _no_implicit_transactions(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn):  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    with engine.connect() as connection, connection.begin():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_LOCK_KEY})")
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        context.run_migrations()
    engine.dispose()


run_migrations_online()
