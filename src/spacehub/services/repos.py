"""Repos: create, delete, move, visibility, info and listing (the JSON shapes the clients read)."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, contains_eager

from spacehub.errors import BadRequest, Conflict
from spacehub.services import accounts, cards
from spacehub.services.accounts import Principal
from spacehub.services.context import HubContext, RepoEvent
from spacehub.services.formats import SDKS, URL_PREFIX, iso, split_repo_id, subdomain, validate_repo_name
from spacehub.storage.db import utcnow
from spacehub.storage.git import Change
from spacehub.storage.models import Account, Membership, Repo, RepoRedirect

VISIBILITIES = ("public", "private", "protected")


def repo_url(base_url: str, repo_type: str, full_name: str) -> str:
    return f"{base_url.rstrip('/')}/{URL_PREFIX[repo_type]}{full_name}"


def find_repo(s: Session, repo_type: str, repo_id: str) -> Repo | None:
    """The repo named ``repo_id`` (or formerly named so, after a move), or None."""
    if "\x00" in repo_id:  # no name has one, and PostgreSQL refuses NUL in text parameters
        return None
    ns, _, name = repo_id.partition("/")
    query = select(Repo).join(Repo.owner).options(contains_eager(Repo.owner))  # the owner comes with it (full_name)
    repo = s.scalar(query.where(Repo.type == repo_type, Account.name == ns, Repo.name == name))
    if repo is None:
        redirect = s.scalar(
            select(RepoRedirect).where(RepoRedirect.type == repo_type, RepoRedirect.full_name == repo_id)
        )
        if redirect is not None:
            repo = s.get(Repo, redirect.repo_id)
    return repo


def get_repo(s: Session, p: Principal, repo_type: str, repo_id: str, need: str = "read") -> Repo:
    """The repo, checked for ``need`` (read/write/admin). Raises: RepoNotFound, Unauthorized, Forbidden."""
    return accounts.check_repo_access(p, find_repo(s, repo_type, repo_id), need)


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
    full = f"{owner.name}/{name}"
    existing = find_repo(s, repo_type, full)
    if existing is not None and existing.full_name.lower() == full.lower():
        if accounts.can_read(p, existing):
            raise Conflict(f"You already created this {repo_type} repo", url=repo_url(base_url, repo_type, full))
        raise Conflict(f"A {repo_type} repo with this name already exists", url=repo_url(base_url, repo_type, full))
    clash = s.scalar(
        select(Repo).where(Repo.type == repo_type, Repo.owner_id == owner.id, func.lower(Repo.name) == name.lower())
    )
    if clash is not None:
        raise Conflict(f"A {repo_type} repo with this name already exists", url=repo_url(base_url, repo_type, full))
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
    else:
        _initial_commit(ctx, repo)
    ctx.events.publish(RepoEvent("created", repo.id, repo_type, "refs/heads/main"), s)
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
    s.execute(RepoRedirect.__table__.delete().where(RepoRedirect.type == repo_type, RepoRedirect.full_name == to_id))
    repo.owner_id, repo.owner, repo.name = owner.id, owner, name
    repo.updated_at = utcnow()
    s.add(RepoRedirect(type=repo_type, full_name=old, repo_id=repo.id))
    s.flush()
    ctx.events.publish(RepoEvent("moved", repo.id, repo_type), s)
    return repo


def update_settings(s: Session, p: Principal, repo_type: str, repo_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """``PUT /api/{T}/{id}/settings``: visibility (``private`` or ``visibility``) and ``gated``.

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
    repo.private = _private_from(body.get("private"), body.get("visibility"), repo.private)
    repo.gated = gated or None
    repo.updated_at = utcnow()
    s.flush()
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


def list_repos(
    ctx: HubContext,
    s: Session,
    p: Principal,
    repo_type: str,
    author: str | None,
    search: str | None,
    sort: str | None,
    direction: int,
    limit: int | None,
    offset: int,
    base_url: str,
) -> tuple[list[dict[str, Any]], bool]:
    """A page of repos ``p`` can see, and whether more follow."""
    if "\x00" in (author or "") + (search or ""):  # matches no name; PostgreSQL refuses NUL in text parameters
        return [], False
    q = select(Repo).join(Repo.owner).where(Repo.type == repo_type)
    if p.anonymous:
        q = q.where(Repo.private.is_(False))
    elif not p.is_admin:
        orgs = select(Membership.org_id).where(Membership.user_id == p.user_id)
        q = q.where(or_(Repo.private.is_(False), Repo.owner_id == p.user_id, Repo.owner_id.in_(orgs)))
    if author:
        q = q.where(Account.name == author)
    if search:
        # A substring of the full id, as on the Hub ("alice/my_model" finds it); LIKE wildcards match literally.
        escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        q = q.where((Account.name + "/" + Repo.name).ilike(f"%{escaped}%", escape="\\"))
    column = {"lastModified": Repo.updated_at, "createdAt": Repo.created_at, "likes": Repo.likes}.get(
        sort or "", Repo.updated_at if sort else Repo.created_at
    )
    q = q.order_by(column.asc() if direction == 1 else column.desc(), Repo.id)
    page = min(limit or 1000, 1000)
    rows = list(s.scalars(q.offset(offset).limit(page + 1)))
    more = len(rows) > page
    out = []
    for repo in rows[:page]:
        try:
            sha = ctx.git.resolve(repo.id, "main")
        except Exception:  # an empty repo (no main): still listed
            sha = None
        out.append(base_info(ctx, repo, sha, base_url, p))
    return out, more
