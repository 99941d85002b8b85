"""The host generation: a counter that every transaction changing what the proxy's host index is made of moves, in
that transaction.

The index maps a Space's host to its repo and visibility (`proxy.space_routes`): it changes when a Space is created
or deleted, renamed or moved (its name, its owner), or made private or public; an account's rename changes it too,
and moves the credential generation (`storage.credentials`). Each such change is seen at flush by a listener on every
ORM session, in whichever process makes it, and the counter row is incremented on the same connection before the
transaction commits. A process whose index remembers both counters knows with one read whether another process
changed any host; the Spaces' own generations (which every status write moves) would say so at every change of
anything.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect, select, update
from sqlalchemy.orm import Session

from spacehub.storage.db import outermost
from spacehub.storage.models import HostGeneration, Repo

HOST_COLUMNS = ("private", "name", "owner_id")  # a Space's row: what its host and visibility are made of
_CHANGED = "spacehub.hosts_changed"  # Session.info: this transaction changed a host (a savepoint's too: one more move)
CURRENT = select(HostGeneration.n).where(HostGeneration.id == 1)


def changes_host(obj: Any, s: Session) -> bool:
    """Whether this flush of ``obj`` changes a Space's host or visibility (before the flush, or right after it)."""
    if not isinstance(obj, Repo) or obj.type != "space":
        return False
    if obj in s.new or obj in s.deleted:
        return True
    attrs = inspect(obj).attrs
    return any(attrs[name].history.has_changes() for name in HOST_COLUMNS)


@event.listens_for(Session, "before_flush")
def _before_flush(s: Session, _flush: object, _instances: object) -> None:
    if not s.info.get(_CHANGED) and any(changes_host(obj, s) for obj in (*s.new, *s.dirty, *s.deleted)):
        s.info[_CHANGED] = True


def at_commit(s: Session) -> None:
    """Move the counter if this transaction changed a host: the transaction's very last statement, called by the one
    before-commit hook of storage/repo_generation.py after its own (flushed) statements. Its row lock (PostgreSQL) is
    held only while the transaction commits, and no row lock is taken after it: two transactions cannot each hold
    what the other waits for (a repo's row, this row)."""
    if s.info.pop(_CHANGED, None):
        s.connection().execute(update(HostGeneration).values(n=HostGeneration.n + 1))


@event.listens_for(Session, "after_rollback")
@outermost
def _rolled_back(s: Session) -> None:
    s.info.pop(_CHANGED, None)
