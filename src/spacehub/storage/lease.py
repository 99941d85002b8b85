"""A lease in the database: at most one holder of a name at a time, for as long as it keeps renewing.

The runtime's controller (reconciler, sleep, wake) must run in exactly one process: two would start the same
Space twice and fight over its status. ``spacehub serve`` takes the ``runtime`` lease before it starts the runtime
and renews it every third of its term; a second process on the same database waits, and takes the lease once the
first releases it (a clean stop) or lets it expire (a crash, a hang), then adopts the apps that run. A holder that
cannot renew in time stops: it may no longer be the only one. A holder on this machine whose process is gone (a
SIGKILL) frees the lease at once, without waiting for its term.

Taking and renewing is one conditional UPDATE (the row is free, expired, or already ours), else an INSERT that the
primary key lets only one process win: atomic on SQLite and PostgreSQL alike. Time is each process's clock (UTC):
holders on one machine, or on machines kept in sync, as a cluster's are.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
from dataclasses import dataclass

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from spacehub.storage.db import Database, utcnow
from spacehub.storage.models import Lease as LeaseRow


def holder_id() -> str:
    """Who this process is, for the lease row and the logs: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _gone(holder: str) -> bool:
    """Whether ``holder`` (a `holder_id`) was a process of this machine that no longer runs."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it runs, as another user
        return False
    return False


@dataclass(frozen=True)
class Holder:
    holder: str
    expires_at: dt.datetime


class Lease:
    def __init__(self, db: Database, name: str, holder: str, seconds: float) -> None:
        self.db, self.name, self.holder, self.seconds = db, name, holder, seconds

    def acquire(self) -> bool:
        """Take the lease, or extend it if it is ours: True if we hold it for ``seconds`` from now."""
        now = utcnow()
        until = now + dt.timedelta(seconds=self.seconds)
        mine_or_free = or_(LeaseRow.holder == self.holder, LeaseRow.expires_at < now)
        with self.db.transaction() as s:
            held_by = s.execute(select(LeaseRow.holder).where(LeaseRow.name == self.name)).scalar()
            ours = held_by == self.holder
            if held_by is not None and not ours and _gone(held_by):
                mine_or_free = or_(mine_or_free, LeaseRow.holder == held_by)  # a dead process on this machine
            values = {"holder": self.holder, "expires_at": until} | ({} if ours else {"acquired_at": now})
            done = s.execute(update(LeaseRow).where(LeaseRow.name == self.name, mine_or_free).values(**values))
            if done.rowcount == 1:  # type: ignore[attr-defined]
                return True
        try:
            with self.db.transaction() as s:
                s.add(LeaseRow(name=self.name, holder=self.holder, expires_at=until, acquired_at=now))
            return True
        except IntegrityError:  # someone holds it (or took it just now)
            return False

    renew = acquire

    def release(self) -> None:
        """Give the lease up if it is ours (a clean stop: the next holder need not wait for it to expire)."""
        with self.db.transaction() as s:
            s.execute(delete(LeaseRow).where(LeaseRow.name == self.name, LeaseRow.holder == self.holder))

    def current(self) -> Holder | None:
        """Who holds it now (an expired row counts as no one)."""
        with self.db.transaction() as s:
            row = s.get(LeaseRow, self.name)
            if row is None or row.expires_at < utcnow():
                return None
            return Holder(row.holder, row.expires_at)
