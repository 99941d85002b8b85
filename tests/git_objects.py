"""Objects written straight into a repo's git object store, for what no client can make on purpose."""

from __future__ import annotations

import hashlib

import pygit2

from tests.inprocess import InProcessHub


def repo_store(hub: InProcessHub, repo_type: str, repo_id: str) -> pygit2.Repository:
    """The git repository that holds ``repo_id`` on an in-process hub."""
    from spacehub.services import repos

    with hub.ctx.db.transaction() as s:
        repo = repos.find_repo(s, repo_type, repo_id)
        assert repo is not None
        return pygit2.Repository(str(hub.ctx.git.path(repo.id)))


def commit_sha(body: bytes) -> str:
    """git's id of a commit object with this body."""
    return hashlib.sha1(b"commit %d\0" % len(body) + body).hexdigest()


def ambiguous_commits(store: pygit2.Repository, head: str, digits: int = 7) -> tuple[str, str]:
    """Write two commits (children of ``head``, with its tree) whose shas share their first ``digits`` hex digits,
    and return their shas. By the birthday bound such a pair takes about 1.2 * 16**(digits/2) candidates (~20,000
    for 7 digits): they are hashed in memory (git's own object format) and only the colliding two are written, so
    the object store really holds an ambiguous prefix."""
    tree = str(store[head].tree_id)
    seen: dict[str, bytes] = {}
    for i in range(50 * 16 ** (digits // 2 + 1)):
        body = f"tree {tree}\nparent {head}\nauthor a <a@x> 0 +0000\ncommitter a <a@x> 0 +0000\n\n{i}\n".encode()
        sha = commit_sha(body)
        if sha[:digits] in seen:
            first = seen[sha[:digits]]
            for data in (first, body):
                store.odb.write(pygit2.enums.ObjectType.COMMIT, data)
            return commit_sha(first), sha
        seen[sha[:digits]] = body
    raise AssertionError(f"no two of the candidates share {digits} hex digits")
