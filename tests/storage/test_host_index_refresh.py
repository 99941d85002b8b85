"""The proxy's periodic rebuild of its host index (`RuntimeRouteTable.refresh`), on both databases: at rest it reads
two counters in one statement and nothing more; a change made where this process's commit hooks never saw it
(another process or replica: here another `Database` on the same database) is in the index after the next refresh,
and a change to anything else about a Space (its status, its settings) costs no whole read."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from spacehub.proxy.space_routes import RuntimeRouteTable, SharedGeneration
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


def _statements(db: Database, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement ``db`` runs from now: through SQLAlchemy, or on the driver's connection (`Database.peek`)."""
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", before)
    peek = db.peek

    def peeked(statement: Any, params: Any) -> Any:
        seen.append(str(statement))
        return peek(statement, params)

    monkeypatch.setattr(db, "peek", peeked)
    return seen


def test_a_refresh_at_rest_reads_two_counters_and_a_change_elsewhere_is_caught(
    ctx: HubContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    _create(ctx.db, ctx, "first")
    routes = _routes(ctx)
    assert routes.refresh() is True
    assert routes.lookup(_host(ctx, "first")) is not None

    seen = _statements(ctx.db, monkeypatch)
    assert routes.refresh() is False  # nothing changed: the fingerprint only
    assert len(seen) == 1 and "host_generation" in seen[0].lower(), seen

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

        seen.clear()
        with other.transaction() as s:  # a commit elsewhere (its generation moves, as with a status write): no host
            repo = s.get(Repo, rid)
            assert repo is not None
            before = repo.generation
            repo.updated_at = repo.updated_at + dt.timedelta(seconds=1)
        with other.transaction() as s:
            assert s.get(Repo, rid).generation > before  # type: ignore[union-attr]
        seen.clear()
        assert routes.refresh() is False
        assert len(seen) == 1, seen  # the two counters, no whole read

        with other.transaction() as s:  # deleted elsewhere
            s.delete(s.get(Repo, rid))
        assert routes.refresh() is True
        assert routes.lookup(_host(ctx, "second")) is None
        assert routes.refresh() is False
    finally:
        other.engine.dispose()


def test_a_worker_catches_up_with_the_entries_another_worker_changed(ctx: HubContext, tmp_path: Path) -> None:
    """HTTP workers of one server: each its own database engine and index, one shared generation file. A change
    committed through one is in the other's index at its next lookup, read by its ids alone; only a change of unknown
    ids (or one more than a ring behind) makes it read the whole index."""
    path = tmp_path / "hosts.gen"
    one_db, two_db = Database(ctx.db.url), Database(ctx.db.url)
    one_gen, two_gen = SharedGeneration(path), SharedGeneration(path)
    try:
        one = RuntimeRouteTable(replace(ctx, db=one_db), _Asleep(), one_gen)
        two = RuntimeRouteTable(replace(ctx, db=two_db), _Asleep(), two_gen)
        one.watch(one_db)
        two.watch(two_db)
        two.refresh()
        reads: list[bool] = []  # the second worker's reads of its index: whole or not
        read = two._read

        def spy(*where: Any, whole: bool = True) -> Any:
            reads.append(whole)
            return read(*where, whole=whole)

        two._read = spy  # type: ignore[method-assign]
        rid = _create(one_db, ctx, "made-by-one")  # committed through the first worker
        assert one.lookup(_host(ctx, "made-by-one")) is not None
        assert two.lookup(_host(ctx, "made-by-one")) is not None  # caught up before routing
        assert reads == [False]  # its entry only, not the whole index

        with one_db.transaction() as s:
            s.get(Repo, rid).private = True  # type: ignore[union-attr]
        target = two.lookup(_host(ctx, "made-by-one"))
        assert target is not None and target.private
        with one_db.transaction() as s:
            s.delete(s.get(Repo, rid))
        assert two.lookup(_host(ctx, "made-by-one")) is None
        assert reads == [False] * 3

        _create(one_db, ctx, "read-whole")
        one_gen.bump()  # a change of unknown ids: the other reads its whole index
        assert two.lookup(_host(ctx, "read-whole")) is not None
        assert reads[3:] == [True]
    finally:
        for gen in (one_gen, two_gen):
            gen.close()
        for db in (one_db, two_db):
            db.engine.dispose()


def test_the_shared_generation_keeps_the_ids_of_the_last_changes(tmp_path: Path) -> None:
    one, two = SharedGeneration(tmp_path / "hosts.gen"), SharedGeneration(tmp_path / "hosts.gen")
    try:
        assert one.bump({"a" * 24, "b" * 24}) == (0, 2) and two.value() == 2
        assert two.changes(0, 2) == {"a" * 24, "b" * 24} and two.changes(1, 2) == {"b" * 24}
        assert two.bump() == (2, 3) and two.changes(0, 3) is None  # a change to be read whole
        for k in range(SharedGeneration.RING):
            one.bump({f"{k:024d}"})
        assert two.changes(3, 3 + SharedGeneration.RING) is not None
        assert two.changes(2, 3 + SharedGeneration.RING) is None  # more than a ring behind
        assert two.changes(5, 4) is None
    finally:
        one.close()
        two.close()
