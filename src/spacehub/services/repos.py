"""Repos: create, delete, move, visibility, info and listing (the JSON shapes the clients read)."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session, contains_eager

from spacehub.errors import BadRequest, Conflict
from spacehub.services import accounts, cards, lfs_objects, webhooks
from spacehub.services.accounts import Principal
from spacehub.services.context import HubContext, RepoEvent
from spacehub.services.formats import SDKS, URL_PREFIX, iso, split_repo_id, subdomain, validate_repo_name
from spacehub.storage.db import utcnow
from spacehub.storage.git import Change
from spacehub.storage.models import Account, Repo, RepoRedirect

VISIBILITIES = ("public", "private", "protected")


def repo_url(base_url: str, repo_type: str, full_name: str) -> str:
    return f"{base_url.rstrip('/')}/{URL_PREFIX[repo_type]}{full_name}"


# Built once, with bound parameters: building the expression anew cost more than running it (issue 12).
_BY_NAME = (
    select(Repo)
    .join(Repo.owner)
    .options(contains_eager(Repo.owner))  # the owner comes with it (full_name)
    .where(
        Repo.type == bindparam("type"),
        func.lower(Account.name) == bindparam("ns"),
        func.lower(Repo.name) == bindparam("name"),
    )
)


def find_repo(s: Session, repo_type: str, repo_id: str) -> Repo | None:
    """The repo named ``repo_id`` in any case (``Alice/My-Model`` is ``alice/my-model``, as on the Hub; the database
    keeps two repos from differing only in case), or formerly named so after a move; or None."""
    if "\x00" in repo_id or not repo_id.isascii():  # no name has either; PostgreSQL refuses NUL in text parameters
        return None
    ns, _, name = repo_id.lower().partition("/")
    repo = s.scalar(_BY_NAME, {"type": repo_type, "ns": ns, "name": name})
    if repo is None:
        redirect = s.scalar(
            select(RepoRedirect)
            .where(RepoRedirect.type == repo_type, func.lower(RepoRedirect.full_name) == repo_id.lower())
            .order_by(RepoRedirect.id.desc())
        )
        if redirect is not None:
            repo = s.get(Repo, redirect.repo_id)
    return repo


def get_repo(s: Session, p: Principal, repo_type: str, repo_id: str, need: str = "read") -> Repo:
    """The repo, checked for ``need`` (read/write/admin). Raises: RepoNotFound, Unauthorized, Forbidden."""
    return accounts.check_repo_access(p, find_repo(s, repo_type, repo_id), need)


def auth_check(s: Session, p: Principal, repo_type: str, repo_id: str, write: bool) -> None:
    """``HfApi.auth_check``: may ``p`` read (or, with ``write``, change the content of) the repo?

    Raises: RepoNotFound (missing, or private and not theirs), Unauthorized, Forbidden.
    """
    get_repo(s, p, repo_type, repo_id, "write" if write else "read")


def _private_from(private: bool | None, visibility: str | None, default: bool) -> bool:
    if visibility is not None:
        if visibility not in VISIBILITIES:
            raise BadRequest(f"Invalid visibility {visibility!r}; use one of {', '.join(VISIBILITIES)}")
        return visibility == "private"
    if private is not None:
        if not isinstance(private, bool):
            raise BadRequest("'private' must be a boolean")
        return private
    return default


def create_repo(
    ctx: HubContext,
    s: Session,
    p: Principal,
    repo_type: str,
    name: str,
    organization: str | None,
    private: bool | None = None,
    visibility: str | None = None,
    sdk: str | None = None,
    base_url: str = "",
    copy_from: Repo | None = None,
) -> Repo:
    """Create a repo with its initial commit (``.gitattributes``; for Spaces a README with the sdk), or with every
    branch of ``copy_from`` (a duplicate).

    Raises: BadRequest (invalid name/sdk), Unauthorized, Forbidden, Conflict (exists; carries ``url``).
    """
    namespace = organization or p.name
    if not namespace:
        raise accounts.Unauthorized("You must be authenticated to create a repo")
    validate_repo_name(name)
    if repo_type == "space":
        if sdk is None:
            raise BadRequest("No sdk provided: a Space needs one of " + ", ".join(SDKS))
        if sdk not in SDKS:
            raise BadRequest(f"Invalid sdk {sdk!r}; use one of {', '.join(SDKS)}")
    owner = accounts.check_namespace_write(s, p, namespace)
    # Only a live repo holds a name (an old name of a moved repo is free): one read, not `find_repo`'s redirects.
    existing = s.scalar(_BY_NAME, {"type": repo_type, "ns": owner.name.lower(), "name": name.lower()})
    if existing is not None:
        url = repo_url(base_url, repo_type, existing.full_name)  # its own spelling, whatever the case asked
        if accounts.can_read(p, existing):
            raise Conflict(f"You already created this {repo_type} repo", url=url)
        raise Conflict(f"A {repo_type} repo with this name already exists", url=url)
    repo = Repo(
        id=secrets.token_hex(12),
        type=repo_type,
        owner_id=owner.id,
        name=name,
        private=_private_from(private, visibility, False),
        sdk=sdk if repo_type == "space" else None,
    )
    repo.owner = owner
    s.add(repo)
    s.flush()
    if copy_from is not None:
        ctx.git.copy(copy_from.id, repo.id)
        lfs_objects.copied(s, repo)  # the copied refs' LFS objects are this repo's too
    else:
        _initial_commit(ctx, repo)
    ctx.events.publish(RepoEvent("created", repo.id, repo_type, "refs/heads/main"), s)
    webhooks.emit(ctx, s, repo, "repo", "create")
    return repo


def _initial_commit(ctx: HubContext, repo: Repo) -> None:
    ctx.git.init(repo.id)
    files = {".gitattributes": cards.DEFAULT_GITATTRIBUTES.encode()}
    if repo.type == "space":
        assert repo.sdk is not None
        files["README.md"] = cards.default_space_readme(repo.name, repo.sdk).encode()
        if repo.sdk == "static":
            files["index.html"] = cards.STATIC_INDEX.encode()
            files["style.css"] = cards.STATIC_CSS.encode()
    changes = [Change(path, ctx.git.write_blob(repo.id, data)) for path, data in files.items()]
    ctx.git.commit(repo.id, "refs/heads/main", None, changes, "initial commit", "system", "system@spacehub")


def delete_repo(ctx: HubContext, s: Session, p: Principal, repo_type: str, repo_id: str) -> None:
    """Raises: RepoNotFound, Forbidden (needs admin on the repo)."""
    repo = get_repo(s, p, repo_type, repo_id, "admin")
    rid = repo.id
    webhooks.emit(ctx, s, repo, "repo", "delete")  # while its row and git directory still say what it was
    s.delete(repo)
    s.flush()
    ctx.git.delete(rid)
    ctx.events.publish(RepoEvent("deleted", rid, repo_type), s)


def move_repo(ctx: HubContext, s: Session, p: Principal, repo_type: str, from_id: str, to_id: str) -> Repo:
    """Rename and/or change owner. Old URLs keep resolving to the repo. Raises: BadRequest, RepoNotFound, Forbidden,
    Conflict."""
    repo = get_repo(s, p, repo_type, from_id, "admin")
    ns, name = split_repo_id(to_id)
    validate_repo_name(name)
    owner = accounts.check_namespace_write(s, p, ns)
    old = repo.full_name
    if f"{owner.name}/{name}" == old:
        return repo
    # Only a live repo takes a name: an old name of a moved repo (a redirect) is free, also to move back to.
    clash = s.scalar(
        select(Repo).where(
            Repo.type == repo_type, Repo.owner_id == owner.id, func.lower(Repo.name) == name.lower(), Repo.id != repo.id
        )
    )
    if clash is not None:
        raise Conflict(f"A {repo_type} repo named {to_id} already exists")
    s.execute(
        RepoRedirect.__table__.delete().where(
            RepoRedirect.type == repo_type, func.lower(RepoRedirect.full_name) == to_id.lower()
        )
    )
    moved_to = {"name": f"{owner.name}/{name}", "owner": {"id": f"{owner.id:024x}"}}
    webhooks.emit(ctx, s, repo, "repo", "move", movedTo=moved_to)  # the repo as it was named, and where it went
    repo.owner_id, repo.owner, repo.name = owner.id, owner, name
    repo.updated_at = utcnow()
    s.add(RepoRedirect(type=repo_type, full_name=old, repo_id=repo.id))
    s.flush()
    ctx.events.publish(RepoEvent("moved", repo.id, repo_type), s)
    return repo


def update_settings(
    s: Session, p: Principal, repo_type: str, repo_id: str, body: dict[str, Any], ctx: HubContext | None = None
) -> dict[str, Any]:
    """``PUT /api/{T}/{id}/settings``: visibility (``private`` or ``visibility``) and ``gated``. With ``ctx``, a
    change of visibility is a ``repo.config`` event for webhooks (``updatedConfig: {private}``).

    Raises: BadRequest, RepoNotFound, Forbidden.
    """
    repo = get_repo(s, p, repo_type, repo_id, "admin")
    known = {"private", "visibility", "gated", "discussionsDisabled", "xetEnabled"}
    unknown = set(body) - known
    if unknown:
        raise BadRequest(f"Unknown settings: {', '.join(sorted(unknown))}")
    gated = body.get("gated", repo.gated or False)
    if gated is not False and gated not in ("auto", "manual"):  # not `in (False, …)`: 0 == False would pass
        raise BadRequest("'gated' must be false, 'auto' or 'manual'")
    was_private = repo.private
    repo.private = _private_from(body.get("private"), body.get("visibility"), repo.private)
    repo.gated = gated or None
    repo.updated_at = utcnow()
    s.flush()
    if ctx is not None and repo.private != was_private:
        webhooks.emit(ctx, s, repo, "repo.config", "update", updatedConfig={"private": repo.private})
    return {"private": repo.private, "visibility": "private" if repo.private else "public", "gated": gated}


# ---- info and listing ------------------------------------------------------------------------------------------
def base_info(
    ctx: HubContext, repo: Repo, sha: str | None, base_url: str, viewer: Principal | None = None
) -> dict[str, Any]:
    """The keys every client version reads, for list items and single-repo GETs alike (``viewer``: who asks)."""
    info: dict[str, Any] = {
        "_id": repo.id,
        "id": repo.full_name,
        "author": repo.owner.name,
        "sha": sha,
        "createdAt": iso(repo.created_at),
        "lastModified": iso(repo.updated_at),
        "private": repo.private,
        "gated": repo.gated or False,
        "disabled": False,
        "likes": repo.likes,
        "tags": [],
        "xetEnabled": False,
        "trendingScore": 0,
    }
    if repo.type != "space":
        info.update(downloads=0, modelId=repo.full_name) if repo.type == "model" else info.update(downloads=0)
    else:
        sub = subdomain(repo.full_name)
        from sqlalchemy.orm import object_session

        from spacehub.services.spaces import runtime

        session = object_session(repo)
        host = space_host(ctx, base_url, sub)
        rt = runtime(session, repo, host.split("://", 1)[1], viewer) if session is not None else None
        info.update(sdk=repo.sdk, subdomain=sub, host=host, runtime=rt)
    return info


def space_host(ctx: HubContext, base_url: str, sub: str) -> str:
    """``http://{subdomain}.{spaces_domain}[:port]``, with the scheme and port of the URL the client used."""
    from urllib.parse import urlsplit

    u = urlsplit(base_url or f"http://{ctx.settings.server.host}:{ctx.settings.server.port}")
    port = f":{u.port}" if u.port else ""
    return f"{u.scheme}://{sub}.{ctx.settings.runtime.spaces_domain}{port}"
