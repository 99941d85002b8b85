"""What a kept answer (api/answer_cache.py) is made from, read in one statement outside any transaction
(`Database.peek`): the credential generation (storage/credentials.py), and for a Space its id and generation
(storage/repo_generation.py), by its exact name. Who the token is comes from `accounts.known_principal` (memory)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select, true

from spacehub.services import accounts
from spacehub.storage import credentials
from spacehub.storage.db import Database
from spacehub.storage.models import Account, CredentialGeneration, Repo, SpaceStorage

_SPACE_ROW = (
    select(Repo.id, Repo.generation, SpaceStorage.volumes)
    .join(Account, Account.id == Repo.owner_id)
    .outerjoin(SpaceStorage, SpaceStorage.repo_id == Repo.id)
    .where(Repo.type == "space", Account.name == bindparam("ns"), Repo.name == bindparam("name"))
    .subquery()
)
_SPACE = (
    select(CredentialGeneration.n, _SPACE_ROW.c.id, _SPACE_ROW.c.generation, _SPACE_ROW.c.volumes)
    .select_from(CredentialGeneration)
    .outerjoin(_SPACE_ROW, true())
    .where(CredentialGeneration.id == 1)
)


def of_caller(db: Database, token: str | None) -> tuple[Any, ...] | None:
    """(credential generation, principal) for an answer about the caller alone (whoami); None: not known now."""
    row = db.peek(credentials.CURRENT, {})
    if row is None:
        return None
    principal = accounts.known_principal(db.engine, token, int(row[0]))
    return None if principal is None else (int(row[0]), principal)


def of_space(db: Database, token: str | None, ns: str, name: str) -> tuple[Any, ...] | None:
    """(principal, Space id, Space generation) for an answer about the Space named exactly ``ns/name`` to this
    caller. The principal, not the credential generation: a change to some other account moves that.

    None: not to be answered from a kept answer. No Space has that exact name (another case of it, a redirect: the
    app decides), the caller is not known now, or the Space's answers show other repos (volumes: whether the caller
    may see a source is that repo's, and its changes do not move this Space's generation)."""
    row = db.peek(_SPACE, {"ns": ns, "name": name})
    if row is None or row[1] is None or row[3]:
        return None
    principal = accounts.known_principal(db.engine, token, int(row[0]))
    return None if principal is None else (principal, row[1], int(row[2]))
