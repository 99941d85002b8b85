"""The credential generation: a counter that every transaction changing who a token is moves, in that transaction.

Changing a token (created, revoked, its role), an account (removed, made admin, renamed) or a membership (added,
removed, its role) is seen at flush by a listener on every ORM session, in whichever process makes it (the server,
an HTTP worker, the ``spacehub`` command line), and the counter row is incremented on the same connection before
the transaction commits. So a cache of "token → principal" (`services.accounts.authenticate`) that remembers the
counter it was filled at is exact: one read of one row says whether anything it holds may have changed. A token's
``last_used_at``, written at most once a minute by authentication itself, does not move it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect, select, update
from sqlalchemy.orm import Session

from spacehub.storage.db import outermost
from spacehub.storage.models import Account, CredentialGeneration, Membership, Token

_WATCHED = (Token, Account, Membership)
_QUIET = {"last_used_at"}  # what authentication writes by itself
_MOVED = "spacehub.credentials_moved"  # Session.info: this transaction has moved the counter already
CURRENT = select(CredentialGeneration.n).where(CredentialGeneration.id == 1)  # the counter, one primary-key read


def current(s: Session) -> int | None:
    """The counter now (as this transaction sees it): one primary-key read. None without its row (nothing may be
    cached then)."""
    n = s.connection().execute(CURRENT).scalar_one_or_none()
    return None if n is None else int(n)


def _changes_who(obj: Any, s: Session) -> bool:
    if not isinstance(obj, _WATCHED):
        return False
    if obj in s.new or obj in s.deleted:
        return True
    state = inspect(obj)
    return any(attr.key not in _QUIET and attr.history.has_changes() for attr in state.attrs)


@event.listens_for(Session, "before_flush")
def _before_flush(s: Session, _flush: object, _instances: object) -> None:
    if s.info.get(_MOVED):
        return
    if any(_changes_who(obj, s) for obj in (*s.new, *s.dirty, *s.deleted)):
        # on the session's connection: a Core statement, no autoflush, committed or rolled back with the rest
        s.connection().execute(update(CredentialGeneration).values(n=CredentialGeneration.n + 1))
        s.info[_MOVED] = True


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
@outermost
def _ended(s: Session) -> None:
    s.info.pop(_MOVED, None)
