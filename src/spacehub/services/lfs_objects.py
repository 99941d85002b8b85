"""Which LFS objects a repo may reference. The blob store underneath is one, addressed by sha256 and deduplicated;
knowing an object's sha256 must not be enough to put another repo's object into yours (and then download it).

A repo may reference an object (`allowed`) when its refs already reference it, or a commit put it there (rows with no
uploader: anyone who may write the repo may use it again, as a copy does), or when the user themself uploaded its
bytes to this repo (a row with that uploader, until they commit it). Every way in checks it: the commit API's
``lfsFile`` lines and pointer files (`services.commits`), the LFS batch API (an object stored for another repo gets
upload actions again, so the uploader proves they hold the bytes; a download answers only objects of the repo), and
pushes (the pre-receive hook is given this repo's list, `push_allowed`). So whatever the refs reference was checked
on its way in, and `index` may list a repo's objects from its refs when it must: for repos made before migration
0012, for a duplicate (its refs are copies) and after a push.
"""

from __future__ import annotations

import contextlib

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from spacehub.services import accounts
from spacehub.services.context import HubContext
from spacehub.storage.blobs import MAX_POINTER_SIZE, parse_pointer
from spacehub.storage.models import Repo, RepoLfsObject


def _pointers_at_refs(ctx: HubContext, repo: Repo) -> set[str]:
    """The sha256 of every LFS object a ref of the repo references (any branch, tag or pull request)."""
    found: set[str] = set()
    seen_blobs: set[str] = set()
    with contextlib.suppress(Exception):  # a repo without git data (being created) references nothing
        for sha in set(ctx.git.refs(repo.id).values()):
            for entry in ctx.git.list_tree(repo.id, sha, "", recursive=True):
                if entry.type != "file" or entry.size > MAX_POINTER_SIZE or entry.oid in seen_blobs:
                    continue
                seen_blobs.add(entry.oid)
                ptr = parse_pointer(ctx.git.read_blob(repo.id, entry.oid))
                if ptr is not None:
                    found.add(ptr.oid)
    return found


def index(ctx: HubContext, s: Session, repo: Repo) -> None:
    """List the objects the repo's refs reference, if that list is not known to be whole (``repos.lfs_indexed``)."""
    if repo.lfs_indexed:
        return
    known = set(
        s.scalars(
            select(RepoLfsObject.sha256).where(RepoLfsObject.repo_id == repo.id, RepoLfsObject.uploader_id.is_(None))
        )
    )
    for oid in sorted(_pointers_at_refs(ctx, repo) - known):
        s.add(RepoLfsObject(repo_id=repo.id, sha256=oid, uploader_id=None))
    repo.lfs_indexed = True
    s.flush()


def allowed(ctx: HubContext, s: Session, repo: Repo, oid: str, user_id: int | None) -> bool:
    """Whether ``user_id`` (None: anonymous) may reference or download object ``oid`` in ``repo``."""
    index(ctx, s, repo)
    who = RepoLfsObject.uploader_id.is_(None)
    if user_id is not None:
        who = or_(who, RepoLfsObject.uploader_id == user_id)
    q = select(RepoLfsObject.id).where(RepoLfsObject.repo_id == repo.id, RepoLfsObject.sha256 == oid, who).limit(1)
    return s.scalar(q) is not None


def record(s: Session, repo_id: str, oid: str, uploader_id: int | None = None) -> None:
    """``oid`` is now in the repo (``uploader_id`` None: a commit put it there) or was uploaded to it by that user."""
    q = select(RepoLfsObject.id).where(RepoLfsObject.repo_id == repo_id, RepoLfsObject.sha256 == oid)
    by = RepoLfsObject.uploader_id
    q = q.where(by.is_(None) if uploader_id is None else by == uploader_id)
    if s.scalar(q.limit(1)) is None:
        s.add(RepoLfsObject(repo_id=repo_id, sha256=oid, uploader_id=uploader_id))
        s.flush()


def committed(s: Session, repo: Repo, oids: set[str]) -> None:
    """A commit put ``oids`` into the repo: they are its own now, whoever uploaded them."""
    for oid in sorted(oids):
        record(s, repo.id, oid)


def refs_moved(s: Session, repo: Repo) -> None:
    """Refs moved outside the commit API (a push): list the repo's objects again at the next check."""
    repo.lfs_indexed = False
    s.flush()


def copied(s: Session, repo: Repo) -> None:
    """The repo's refs are copies of another's (a duplicate): its objects are listed from them at the first check."""
    s.execute(delete(RepoLfsObject).where(RepoLfsObject.repo_id == repo.id))
    repo.lfs_indexed = False
    s.flush()


def push_allowed(ctx: HubContext, s: Session, repo: Repo, user_id: int | None) -> set[str]:
    """What a push by ``user_id`` may reference: the repo's objects and those the user uploaded to it."""
    index(ctx, s, repo)
    who = RepoLfsObject.uploader_id.is_(None)
    if user_id is not None:
        who = or_(who, RepoLfsObject.uploader_id == user_id)
    return set(s.scalars(select(RepoLfsObject.sha256).where(RepoLfsObject.repo_id == repo.id, who)))


def usable(ctx: HubContext, repo_id: str, user: str | None, oids: list[str]) -> set[str]:
    """Those of ``oids`` that user ``user`` (a name; None: anonymous) may reference or download in the repo with id
    ``repo_id`` (for the LFS batch API, after its permission check)."""
    with ctx.db.transaction() as s:
        repo = s.get(Repo, repo_id)
        if repo is None:
            return set()
        account = accounts.get_account(s, user) if user else None
        uid = account.id if account is not None else None
        return {oid for oid in oids if allowed(ctx, s, repo, oid, uid)}


def uploaded(ctx: HubContext, repo_id: str, user: str, oid: str) -> None:
    """``user`` uploaded the bytes of ``oid`` to the repo (checked against its sha256): they may commit it."""
    with ctx.db.transaction() as s:
        account = accounts.get_account(s, user) if user else None
        if s.get(Repo, repo_id) is not None and account is not None:
            record(s, repo_id, oid, account.id)
