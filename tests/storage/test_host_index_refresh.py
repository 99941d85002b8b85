"""The proxy's periodic rebuild of its host index (`RuntimeRouteTable.refresh`), on both databases: at rest it reads
one aggregate and nothing more; a change made where this process's commit hooks never saw it (another process or
replica: here another `Database` on the same database) is in the index after the next refresh."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from spacehub.proxy.space_routes import RuntimeRouteTable
from spacehub.services import accounts, repos
from spacehub.services.accounts import Principal
from spacehub.services.context import HubContext
from spacehub.services.formats import subdomain
from spacehub.storage.db import Database
from spacehub.storage.models import Repo


class _Asleep:
    """The runtime as the proxy sees it (`runtime.front.Runs`), holding nothing: every Space sleeps."""

    def state(self, space_id: str) -> None:
        return None

    def touch(self, space_id: str) -> None:
        pass

    async def serve(self, space_id: str, timeout: float) -> None:  # noqa: ASYNC109
        return None


def _routes(ctx: HubContext) -> RuntimeRouteTable:
    return RuntimeRouteTable(ctx, _Asleep())


def _host(ctx: HubContext, name: str) -> str:
    return f"{subdomain('alice/' + name)}.{ctx.settings.runtime.spaces_domain}"


def _create(db: Database, ctx: HubContext, name: str) -> str:
    with db.transaction() as s:
        user = accounts.get_account(s, "alice") or accounts.create_user(s, "alice")
        return repos.create_repo(ctx, s, Principal(user.id, "alice", "write"), "space", name, None, sdk="static").id


def _statements(db: Database) -> list[str]:
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", before)
    return seen


def test_a_refresh_at_rest_reads_one_aggregate_and_a_change_elsewhere_is_caught(ctx: HubContext) -> None:
    _create(ctx.db, ctx, "first")
    routes = _routes(ctx)
    assert routes.refresh() is True
    assert routes.lookup(_host(ctx, "first")) is not None

    seen = _statements(ctx.db)
    assert routes.refresh() is False  # nothing changed: the fingerprint only
    assert len(seen) == 1 and "count" in seen[0].lower(), seen

    other = Database(ctx.db.url)  # another process: this table's commit hooks do not see its commits
    try:
        rid = _create(other, ctx, "second")
        assert routes.lookup(_host(ctx, "second")) is None
        assert routes.refresh() is True
        assert routes.lookup(_host(ctx, "second")) is not None

        with other.transaction() as s:  # made private elsewhere: the next refresh knows
            s.get(Repo, rid).private = True  # type: ignore[union-attr]
        assert routes.refresh() is True
        target = routes.lookup(_host(ctx, "second"))
        assert target is not None and target.private

        with other.transaction() as s:  # deleted elsewhere
            s.delete(s.get(Repo, rid))
        assert routes.refresh() is True
        assert routes.lookup(_host(ctx, "second")) is None
        assert routes.refresh() is False
    finally:
        other.engine.dispose()
