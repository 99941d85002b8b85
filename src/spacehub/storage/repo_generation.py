"""A repo's generation (``repos.generation``): a counter that every transaction changing the repo's rows moves,
once, as it commits.

What a flush changes is seen by a listener on every ORM session, in whichever process makes the change (the server,
an HTTP worker, the controller's reconciler, the ``spacehub`` command line): a `Repo` itself, and every row that
belongs to one (it has a ``repo_id``: the Space's settings, status, storage, variables, secrets, likes,
discussions…). Before the transaction commits, one statement on its connection moves the counter of each repo it
touched, so the counter and the change become visible together. So an answer about a repo that remembers the
counter it was made at (`api.answer_cache`, `services.spaces.answer_mark`) is exact: one read of one row says
whether anything it shows may have changed.

Rows that no answer about the repo shows and that are written on their own schedule do not move it (`_UNRELATED`:
the meter's usage intervals, moved on with every runtime pass; the LFS object index). Core statements bypass the
listener: the two that change a repo's rows (likes, the discussion counter) go with an ORM change of the same repo
in the same transaction (the `Like` row, the new `Discussion`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, event, update
from sqlalchemy.orm import Session

from spacehub.storage import host_generation
from spacehub.storage.db import outermost
from spacehub.storage.models import Repo, RepoLfsObject, UsageInterval

_UNRELATED = (UsageInterval, RepoLfsObject)
_TOUCHED = "spacehub.repos_touched"  # Session.info: the ids of the repos this transaction changed
_MOVE = (
    update(Repo)
    .where(Repo.id.in_(bindparam("ids", expanding=True)))
    .values(generation=Repo.generation + 1)
    .execution_options(synchronize_session=False)
)


def _repo_of(obj: Any) -> str | None:
    if isinstance(obj, Repo):
        return obj.id
    if isinstance(obj, _UNRELATED):
        return None
    repo_id = getattr(obj, "repo_id", None)
    return repo_id if isinstance(repo_id, str) else None


@event.listens_for(Session, "before_flush")
def _before_flush(s: Session, _flush: object, _instances: object) -> None:
    touched: set[str] | None = None
    for obj in (*s.new, *s.deleted, *s.dirty):
        repo_id = _repo_of(obj)
        if repo_id is None or (obj in s.dirty and not s.is_modified(obj)):
            continue
        if touched is None:
            touched = s.info.setdefault(_TOUCHED, set())
        touched.add(repo_id)


@event.listens_for(Session, "before_commit")
@outermost
def _before_commit(s: Session) -> None:
    s.flush()  # what is still pending is flushed after this hook: see it now
    touched = s.info.pop(_TOUCHED, None)
    if touched:
        # on the session's connection, last: a row lock (PostgreSQL) held only while the transaction commits
        s.connection().execute(_MOVE, {"ids": sorted(touched)})
    host_generation.at_commit(s)  # after the repos' rows: the one lock every host change takes comes last


@event.listens_for(Session, "after_rollback")
@outermost
def _rolled_back(s: Session) -> None:
    s.info.pop(_TOUCHED, None)
