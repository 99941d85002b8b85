"""`RuntimeRouteTable`: the proxy's `RouteTable` backed by the runtime (where each Space's traffic goes now: the
`runtime.front.Runs` of this process's reconciler, or of the controller that HTTP workers reach).

Host → Space is an in-memory index (subdomain → repo id, private flag); `lookup` is two dict reads. The index is
rebuilt from the database in the thread that commits a change to it, before that transaction's API call returns:
`watch(db)` listens to the ORM's flushes for a Space repo that is created, deleted, moved/renamed or changes
visibility, and rebuilds once the transaction has committed. So once `update_repo_settings(private=True)` has
returned, no anonymous request gets the Space (and nginx's direct path to it is closed, `sync_listeners`). A timer
rebuilds it too, for changes made by other processes; HTTP workers of one server share a generation counter
(`SharedGeneration`) so that a change committed by one is in every worker's index before its call returns. Rebuilds
are ordered: a rebuild that read the database before
a newer one was installed is dropped, so a slow timer rebuild never puts back an older visibility.

Private Spaces are authorized with the caller's token (header or web-login cookie), cached for a few seconds per
(token, Space).
"""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import logging
import mmap
import os
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session
from starlette.types import Receive, Scope, Send

from spacehub.errors import HubError
from spacehub.proxy import pages
from spacehub.proxy.routes import RouteTarget, request_token
from spacehub.proxy.static_space import StaticSpaceApp
from spacehub.runtime.front import Runs
from spacehub.runtime.types import Stage
from spacehub.services import accounts, space_grants
from spacehub.services.context import HubContext
from spacehub.services.formats import subdomain
from spacehub.storage import credentials, host_generation
from spacehub.storage.db import Database, outermost
from spacehub.storage.models import Account, Repo
from spacehub.storage.previews import parse_host_label, preview_id, repo_of

log = logging.getLogger("spacehub.routes")
AUTH_CACHE_SECONDS = 5.0
_CHANGED = "spacehub.space_hosts_changed"  # Session.info key: this transaction changed a Space's host or visibility
ERROR_STAGES = {Stage.BUILD_ERROR.value, Stage.RUNTIME_ERROR.value, Stage.CONFIG_ERROR.value, Stage.NO_APP_FILE.value}


@dataclass(frozen=True)
class _Space:
    repo_id: str
    private: bool
    index: str
    full_name: str = ""


class _Page:
    """A small status page (paused, error) as an ASGI app; it links to the Space's page on the Hub (its status and
    logs) when it knows the Space's name."""

    def __init__(self, status: int, reason: str, full_name: str = "", public_url: str | None = None) -> None:
        self.status, self.reason, self.full_name, self.public_url = status, reason, full_name, public_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if self.status != 503:
            return await pages.not_found(scope, send)
        link = pages.hub_page(scope, self.public_url, self.full_name) if self.full_name else None
        await pages.unavailable(scope, send, self.reason, link)


class SharedGeneration:
    """A counter that HTTP workers on one machine share in a small mapped file: a worker that committed a change to
    the host index bumps it before its API call returns; every worker compares it with the generation its own index
    holds before it routes a request (a read of 8 bytes), and catches up when it moved. So a Space made private
    through one worker is closed in every worker by the time the call returns, as with one process.

    After the counter, a ring of the ids of the Spaces each change was about (one slot per id, the counter moves by
    their number): a worker catching up reads those entries only (`changes`), and the whole index only when it fell
    more than a ring behind. The whole read, on the event loop, took ~50-100 ms at 10,000 Spaces, in every other
    worker after each create."""

    RING = 1024
    SLOT = 32  # bytes per id (a repo id is 24 characters); an empty slot means "read everything"
    HEAD = 8

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        size = self.HEAD + self.RING * self.SLOT
        if os.fstat(self._fd).st_size < size:
            os.ftruncate(self._fd, size)
        self._map = mmap.mmap(self._fd, size)

    def value(self) -> int:
        return int(struct.unpack_from("<Q", self._map)[0])

    def bump(self, ids: set[str] | frozenset[str] = frozenset()) -> tuple[int, int]:
        """Record a change to the index entries of ``ids`` (none: a change to be read whole), under a lock on the
        file, so no bump is lost; the values before and after (it moves by one per id, or by one without ids)."""
        slots = [i.encode() if len(i.encode()) <= self.SLOT else b"" for i in sorted(ids)] or [b""]
        fcntl.lockf(self._fd, fcntl.LOCK_EX)
        try:
            before = self.value()
            for k, raw in enumerate(slots):  # the ids first, then the counter that makes them visible
                at = self.HEAD + ((before + k) % self.RING) * self.SLOT
                self._map[at : at + self.SLOT] = raw.ljust(self.SLOT, b"\0")
            after = before + len(slots)
            struct.pack_into("<Q", self._map, 0, after)
            return before, after
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)

    def changes(self, since: int, upto: int) -> set[str] | None:
        """The ids changed between counter values ``since`` and ``upto``; None when they are not all known (more
        than a ring ago, overwritten while read, or a change to be read whole)."""
        if upto < since or upto - since > self.RING:
            return None
        out = set()
        for k in range(since, upto):
            at = self.HEAD + (k % self.RING) * self.SLOT
            raw = self._map[at : at + self.SLOT].rstrip(b"\0")
            if not raw:
                return None
            out.add(raw.decode())
        if self.value() - since > self.RING:  # a writer went round the ring while these were read
            return None
        return out

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)


# What the host index is made from, in one small read: its Spaces (the host generation moves with any create, deletion,
# rename, move or change of visibility, storage/host_generation.py) and their owners' names (the credential generation
# moves with any change to an account, storage/credentials.py). Not the Spaces' own generations: every status write
# moves those, and each move cost a whole read here (~50-100 ms of the interpreter at 10,000 Spaces).
_FINGERPRINT = select(
    host_generation.CURRENT.scalar_subquery(),
    credentials.CURRENT.scalar_subquery(),
)


class RuntimeRouteTable:
    """``shared``: with HTTP workers in several processes, the counter they bump when a commit changed the index,
    so that each rebuilds its own before it routes another request (`SharedGeneration`)."""

    def __init__(self, ctx: HubContext, runs: Runs, shared: SharedGeneration | None = None) -> None:
        self.ctx, self.runs, self.shared = ctx, runs, shared
        self.by_host: dict[str, _Space] = {}
        self._host_of: dict[str, str] = {}  # repo id → its host in ``by_host`` (changed under the lock only)
        self.suffix = "." + ctx.settings.runtime.spaces_domain.strip(".").lower()
        self._static: dict[tuple[str, str], StaticSpaceApp] = {}
        self._auth: dict[tuple[str, str], tuple[float, bool]] = {}
        self.listeners: list[Callable[[], None]] = []  # called in the loop after the host index changed
        # called with (old index, new index) in the rebuilding thread, before the new index is in use, in order
        self.sync_listeners: list[Callable[[Mapping[str, _Space], Mapping[str, _Space]], None]] = []
        self.loop: asyncio.AbstractEventLoop | None = None  # where ``listeners`` run (set at startup)
        self._lock = threading.Lock()
        self._reads = itertools.count(1)
        self._installed = 0  # the read number of the index in use
        self._seen = shared.value() if shared is not None else 0  # the shared generation the index holds
        self._whole_mark: tuple[Any, ...] | None = None  # `_FINGERPRINT` as of the last whole read

    def refresh(self) -> bool:
        """Rebuild the host index from the database (call from a thread); True when it changed.

        First a fingerprint of what the index is made from (`_FINGERPRINT`: two counters in one read): when it has
        not moved since the last whole read, nothing is read again. At 10,000 Spaces the whole read
        costs ~50-100 ms of the interpreter (rows to entries), which every periodic refresh took from the requests
        of the process, at rest too. The fingerprint is read before the index: a change that commits in between
        is in the index, and moves the fingerprint for the next refresh.

        A rebuild whose read started before the read of the index in use is dropped: it may predate a commit."""
        read = next(self._reads)
        mark = self.ctx.db.peek(_FINGERPRINT, {})
        if mark is not None and None not in mark and mark == self._whole_mark:
            return False
        index = self._read(Repo.type == "space")
        with self._lock:
            if read < self._installed:
                return False
            self._installed = read
            self._whole_mark = mark
            return self._install(index)

    def update(self, repo_ids: set[str]) -> bool:
        """Rebuild the entries of ``repo_ids`` only (a commit changed them); True when the index changed. Read under
        the lock, so each update reads after the one installed before it. Its cost does not grow with the count of
        Spaces but for one copy of the index (in C, ~0.2 ms at 10,000): filtering and comparing the whole index in
        Python took ~8 ms of every create's CPU at 10,000 Spaces."""
        with self._lock:
            self._installed = next(self._reads)
            fresh = self._read(Repo.id.in_(repo_ids), Repo.type == "space", whole=False)
            old = self.by_host
            before = {h: old[h] for h in (self._host_of.get(r) for r in repo_ids) if h is not None and h in old}
            if before == fresh:
                return False
            index = dict(old)  # a new one: lookups read the installed index without the lock
            for host, sp in before.items():
                del index[host]
                self._host_of.pop(sp.repo_id, None)
            index.update(fresh)
            self._host_of.update((sp.repo_id, host) for host, sp in fresh.items())
            self._switch(old, index)
            return True

    def _read(self, *where: Any, whole: bool = True) -> dict[str, _Space]:
        """Columns, not objects: ~10x less work per Space. The whole index is read in a transaction; a few entries
        outside one (`Database.peek_all`: on PostgreSQL one round trip instead of four, at every create)."""
        query = select(Repo.id, Account.name, Repo.name, Repo.private).join(Account, Account.id == Repo.owner_id)
        if whole:
            with self.ctx.db.transaction() as s:
                rows = s.execute(query.where(*where)).all()
        else:
            rows = self.ctx.db.peek_all(query.where(*where))
        return {subdomain(f"{o}/{n}") + self.suffix: _Space(repo_id, private, "index.html", f"{o}/{n}")
                for repo_id, o, n, private in rows}  # fmt: skip

    def _install(self, index: dict[str, _Space]) -> bool:
        """Put a whole new index in use (under the lock); True when it differs from the one in use."""
        old = self.by_host
        if index == old:
            return False
        self._host_of = {sp.repo_id: host for host, sp in index.items()}
        self._switch(old, index)
        return True

    def _switch(self, old: dict[str, _Space], index: dict[str, _Space]) -> None:
        for listener in self.sync_listeners:
            listener(old, index)
        self.by_host = index

    def notify(self) -> None:
        """Run ``listeners`` (in the loop) after the index changed."""
        for listener in self.listeners:
            listener()

    # ---- rebuilt at commit -----------------------------------------------------------------------------------
    def watch(self, db: Database) -> None:
        """Rebuild the index when a transaction of ``db`` that changed a Space's host or visibility commits, in the
        committing thread (so before the API call that made the change returns)."""
        factory = db._factory  # the sessionmaker: its events are this database's sessions only
        event.listen(factory, "after_flush", self._flushed)
        event.listen(factory, "after_commit", outermost(self._committed))
        event.listen(factory, "after_rollback", outermost(lambda s: s.info.pop(_CHANGED, None)))

    @staticmethod
    def _flushed(session: Session, _flush: object) -> None:
        for obj in (*session.new, *session.deleted, *session.dirty):
            if host_generation.changes_host(obj, session):
                session.info.setdefault(_CHANGED, set()).add(obj.id)

    def _committed(self, session: Session) -> None:
        repo_ids = session.info.pop(_CHANGED, None)
        if not repo_ids:
            return
        try:
            changed = self.update(repo_ids)
        except Exception:
            log.exception("rebuilding the Space host index failed (the timer will retry)")
            return
        if self.shared is not None:  # the other workers catch up before their next request
            before, after = self.shared.bump(repo_ids)
            if before == self._seen:  # this index was current, and now holds this commit too
                self._seen = after
        loop = self.loop
        if changed and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.notify)

    # ---- RouteTable ------------------------------------------------------------------------------------------
    def lookup(self, host: str) -> RouteTarget | None:
        if self.shared is not None and self.shared.value() != self._seen:
            self._catch_up()
        space = self.by_host.get(host) or self._preview(host)
        if space is None:
            return None
        st = self.runs.state(space.repo_id)
        name = space.full_name or None
        if st is None:
            return RouteTarget.sleeping(space.repo_id, private=space.private, name=name)
        if st.static_revision is not None and st.stage == Stage.RUNNING.value:
            return RouteTarget.to_asgi(space.repo_id, self._static_app(space, st.static_revision),
                                       private=space.private)  # fmt: skip
        if st.upstream is not None:
            return RouteTarget.to_upstream(space.repo_id, *st.upstream, private=space.private)
        if st.stage == Stage.PAUSED.value:
            return RouteTarget.to_asgi(space.repo_id, self._page("This Space is paused by its owner.", space),
                                       private=space.private)  # fmt: skip
        if st.stage in ERROR_STAGES:
            reason = f"This Space has an error ({st.stage}). Its owner can read the logs."
            return RouteTarget.to_asgi(space.repo_id, self._page(reason, space), private=space.private)
        # asleep, building or starting: wait (a browser gets the page that says which, and links the build log)
        return RouteTarget.sleeping(space.repo_id, private=space.private, stage=st.stage, name=name)

    def _catch_up(self) -> None:
        """Another worker committed a change to the index: read the entries it changed before routing (on the event
        loop: one small read), or the whole index when they are not all known (`SharedGeneration.changes`)."""
        assert self.shared is not None
        seen = self.shared.value()
        ids = self.shared.changes(self._seen, seen)
        if ids is None:
            self.refresh()
        else:
            self.update(ids)
        self._seen = seen

    def _preview(self, host: str) -> _Space | None:
        """A pull request preview's host, ``{subdomain}--pr-{num}.{domain}`` (`storage.previews`), as the entry of
        its runtime id: private exactly when its Space is, and known only while the runtime runs it (asleep
        included). A Space's own host wins: such a name can only clash within one owner's namespace."""
        label, dot, rest = host.partition(".")
        parsed = parse_host_label(label)
        space = self.by_host.get(parsed[0] + dot + rest) if parsed else None
        if space is None or parsed is None:
            return None
        key = preview_id(space.repo_id, parsed[1])
        st = self.runs.state(key)
        if st is None or st.stage == Stage.DELETING.value:
            return None
        return _Space(key, space.private, space.index, space.full_name)

    def _page(self, reason: str, space: _Space | None) -> _Page:
        return _Page(503, reason, space.full_name if space else "", self.ctx.settings.server.public_url)

    def _static_app(self, space: _Space, revision: str) -> StaticSpaceApp:
        key = (space.repo_id, revision)
        app = self._static.get(key)
        if app is None:
            if len(self._static) > 256:
                self._static.clear()
            app = self._static[key] = StaticSpaceApp(self.ctx, repo_of(space.repo_id), revision, space.index)
        return app

    def touch(self, space_id: str) -> None:
        self.runs.touch(space_id)

    async def wake(self, space_id: str) -> RouteTarget:
        of = repo_of(space_id)  # a preview is private when its Space is
        space = next((s for s in self.by_host.values() if s.repo_id == of), None)
        private = space.private if space is not None else False
        if space is not None and of != space_id:
            space = _Space(space_id, space.private, space.index, space.full_name)
        st = await self.runs.serve(space_id, self.ctx.settings.proxy.wake_timeout)
        if st is not None and st.upstream is not None:
            return RouteTarget.to_upstream(space_id, *st.upstream, private=private)
        if space is not None and st is not None and st.static_revision is not None:
            return RouteTarget.to_asgi(space_id, self._static_app(space, st.static_revision), private=private)
        stage = st.stage if st is not None else "STOPPED"
        reason = "This Space is paused by its owner." if stage == "PAUSED" else f"This Space could not start ({stage})."
        return RouteTarget.to_asgi(space_id, self._page(reason, space), private=private)

    async def authorize(self, space_id: str, headers: Mapping[str, str]) -> bool:
        token = request_token(headers)
        if not token:
            return False
        key = (token, space_id)
        hit = self._auth.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < AUTH_CACHE_SECONDS:
            return hit[1]
        ok = await asyncio.to_thread(self._can_read, token, space_id)
        if len(self._auth) > 10_000:
            self._auth.clear()
        self._auth[key] = (now, ok)
        return ok

    def exchange_grant(self, space_id: str, grant: str) -> str | None:
        return space_grants.exchange(self.ctx.settings.data_dir, repo_of(space_id), grant)

    def _can_read(self, token: str, space_id: str) -> bool:
        space_id = repo_of(space_id)  # a preview's readers are its Space's
        if space_grants.is_grant(token):  # the cookie a Space page's grant was exchanged for, on this host
            return space_grants.may_read(self.ctx, space_id, token)
        with self.ctx.db.transaction() as s:
            try:
                p = accounts.authenticate(s, token)
            except HubError:
                return False
            repo = s.get(Repo, space_id)
            return repo is not None and accounts.can_read(p, repo)

    def public_upstreams(self) -> dict[str, tuple[str, int]]:
        """Host → app address of running public Spaces (what the nginx data plane serves without SpaceHub)."""
        out = {}
        for host, space in self.by_host.items():
            if space.private:
                continue
            target = self.lookup(host)
            if target is not None and target.upstream is not None:
                out[host] = target.upstream
        return out
