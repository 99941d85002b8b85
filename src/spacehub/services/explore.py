"""Read use cases of the web pages: Space cards for the explore page and profiles, and an account's profile.

A card is the listing the API answers (`listing.list_repos`, with its visibility rules and live runtime) plus what
the README's front matter says about the Space (emoji, colors, title, short description), as on the Hub.
"""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from spacehub.errors import NotFound, RevisionNotFound
from spacehub.services import accounts, cards, files, listing, repos
from spacehub.services.accounts import Principal
from spacehub.services.context import HubContext
from spacehub.storage.models import Account, Repo

COLORS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}  # the Hub's colorFrom/colorTo values
SORTS = {"likes": "likes", "updated": "lastModified", "created": "createdAt"}


def _text(card: dict[str, Any], key: str, default: str, limit: int) -> str:
    value = card.get(key)
    return value[:limit] if isinstance(value, str) and value.strip() else default


def card_of(ctx: HubContext, s: Session, item: dict[str, Any]) -> dict[str, Any]:
    """One Space listing item as a card (front matter values checked: anything unexpected falls back)."""
    repo = s.get(Repo, item["_id"])
    meta = files.card_data(ctx, repo, item["sha"]) if repo is not None and item.get("sha") else {}
    runtime = item.get("runtime") or {}
    owner, name = item["id"].split("/", 1)
    return {
        "id": item["id"],
        "owner": owner,
        "name": name,
        "title": _text(meta, "title", name, 80),
        "emoji": _text(meta, "emoji", "🚀", 8),
        "color_from": meta.get("colorFrom") if meta.get("colorFrom") in COLORS else "gray",
        "color_to": meta.get("colorTo") if meta.get("colorTo") in COLORS else "gray",
        "description": _text(meta, "short_description", "", 200),
        "stage": runtime.get("stage", "NO_APP_FILE" if item.get("sha") is None else "BUILDING"),
        "hardware": (runtime.get("hardware") or {}).get("requested") or "cpu-basic",
        "likes": item.get("likes", 0),
        "private": item.get("private", False),
        "sdk": item.get("sdk"),
        "updated": item.get("lastModified"),
    }


def space_cards(
    ctx: HubContext,
    s: Session,
    p: Principal,
    base_url: str,
    search: str | None = None,
    sort: str = "updated",
    author: str | None = None,
    limit: int = 120,
) -> list[dict[str, Any]]:
    """Cards of the Spaces ``p`` may see (``search``: a substring of owner/name; ``sort``: likes, updated,
    created; unknown sorts are "updated")."""
    key = SORTS.get(sort, "lastModified")
    query = listing.ListQuery("space", author=author, search=[search] if search else [], sort=key, limit=limit)
    items, _ = listing.list_repos(ctx, s, p, query, base_url)
    return [card_of(ctx, s, item) for item in items]


def repo_list(
    ctx: HubContext,
    s: Session,
    p: Principal,
    base_url: str,
    repo_type: str,
    search: str | None = None,
    sort: str = "updated",
    limit: int = 200,
) -> list[dict[str, Any]]:
    """The models or datasets ``p`` may see, for the explore lists (``search``: a substring of owner/name; ``sort``:
    likes, updated, created; unknown sorts are "updated"): the API's listing, with its visibility rules."""
    key = SORTS.get(sort, "lastModified")
    query = listing.ListQuery(repo_type, search=[search] if search else [], sort=key, limit=limit)
    items, _ = listing.list_repos(ctx, s, p, query, base_url)
    return [{"id": i["id"], "private": i["private"], "updated": i["lastModified"], "likes": i.get("likes", 0)}
            for i in items]  # fmt: skip


def profile(ctx: HubContext, s: Session, p: Principal, name: str, base_url: str) -> dict[str, Any]:
    """An account's page: who it is, its Spaces (cards), models and datasets that ``p`` may see. Raises: NotFound."""
    acct = accounts.get_account(s, name)
    if acct is None:
        raise NotFound(f"No user or organization named {name!r}")
    lists = {}
    for kind in ("model", "dataset"):
        query = listing.ListQuery(kind, author=acct.name, sort="lastModified", limit=100)
        items, _ = listing.list_repos(ctx, s, p, query, base_url)
        lists[kind] = [{"id": i["id"], "private": i["private"], "updated": i["lastModified"]} for i in items]
    return {
        "name": acct.name,
        "fullname": acct.fullname,
        "kind": acct.kind,
        "spaces": space_cards(ctx, s, p, base_url, author=acct.name, limit=200),
        "models": lists["model"],
        "datasets": lists["dataset"],
    }


def space_view(ctx: HubContext, s: Session, p: Principal, repo_id: str, base_url: str) -> dict[str, Any]:
    """What the Space page shows: its card, live runtime, its app's URL, and what ``p`` may do there.
    Raises: RepoNotFound (missing, or private and ``p`` may not read it: the same 404 as the API)."""
    repo = repos.get_repo(s, p, "space", repo_id)
    try:
        sha: str | None = ctx.git.resolve(repo.id, "main")
    except RevisionNotFound:  # an empty repo (no main yet)
        sha = None
    info = repos.base_info(ctx, repo, sha, base_url, p)
    role = accounts.role_on(p, repo.owner)
    return {
        **card_of(ctx, s, info),
        "space_id": repo.id,
        "sha": sha,
        "runtime": info["runtime"],
        "url": info["host"] + "/",
        "can_write": role in ("write", "admin") and p.token_role == "write",
        "can_admin": role == "admin" and p.token_role == "write",
    }


def space_stage(ctx: HubContext, s: Session, p: Principal, repo_id: str) -> dict[str, Any]:
    """The live stage of a Space ``p`` may read, for the page's badge: stage, hardware, error message."""
    from spacehub.services import spaces

    rt = spaces.runtime(s, repos.get_repo(s, p, "space", repo_id))
    return {"stage": rt["stage"], "hardware": rt["hardware"], "errorMessage": rt.get("errorMessage")}


def space_settings_view(ctx: HubContext, s: Session, p: Principal, repo_id: str, base_url: str) -> dict[str, Any]:
    """The settings tab of a Space ``p`` may write: secret names (never values), variables, the hardware catalog with
    what this machine says of each flavor, sleep time. Raises: RepoNotFound, Unauthorized, Forbidden (as the API)."""
    from spacehub.services import hardware, space_settings

    repo = repos.get_repo(s, p, "space", repo_id, "write")
    view = space_view(ctx, s, p, repo_id, base_url)
    secrets = space_settings.get_space_secrets(s, repo)
    return {
        **view,
        "secrets": [{"key": k, "description": v.get("description")} for k, v in sorted(secrets.items())],
        "variables": sorted(space_settings.get_space_variables(s, repo).items()),
        "flavors": hardware.list_hardware(ctx.hardware),
        "full_name": repo.full_name,
        "tiers": [(t, ctx.settings.runtime.storage_tier_bytes(t)) for t in ("small", "medium", "large")],
    }


def namespaces(s: Session, p: Principal) -> list[str]:
    """Where ``p`` may create repos: their own name, then the orgs where they write."""
    if p.name is None:
        return []
    orgs = [s.get(Account, org_id) for org_id, role in p.org_roles.items() if role in ("write", "admin")]
    return [p.name, *sorted(o.name for o in orgs if o is not None)]


# ---- files and versions ------------------------------------------------------------------------------------------
MAX_SHOWN_BYTES = 512 * 1024


def tree_view(
    ctx: HubContext, s: Session, p: Principal, repo_id: str, rev: str, path: str, repo_type: str = "space"
) -> dict[str, Any]:
    """A folder of a repo at ``rev`` (what `list_repo_tree` lists). Raises: RepoNotFound, RevisionNotFound,
    EntryNotFound."""
    repo = repos.get_repo(s, p, repo_type, repo_id)
    sha = ctx.git.resolve(repo.id, rev)
    items = files.tree(ctx, repo, sha, path, False, False)
    items.sort(key=lambda i: (i["type"] != "directory", i["path"]))
    return {"sha": sha, "items": items}


def blob_view(
    ctx: HubContext, s: Session, p: Principal, repo_id: str, rev: str, path: str, repo_type: str = "space"
) -> dict[str, Any]:
    """One file of a repo at ``rev``: its text when it is UTF-8 and at most `MAX_SHOWN_BYTES` (None otherwise).
    Raises: RepoNotFound, RevisionNotFound, EntryNotFound."""
    repo = repos.get_repo(s, p, repo_type, repo_id)
    f = files.resolve_file(ctx, repo, ctx.git.resolve(repo.id, rev), path)
    text = None
    if f.size <= MAX_SHOWN_BYTES:
        data = f.lfs_path.read_bytes() if f.lfs_path is not None else ctx.git.read_blob(repo.id, f.blob_oid)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    return {"sha": f.commit, "size": f.size, "lfs": f.lfs is not None, "text": text}


def commits_view(
    ctx: HubContext, s: Session, p: Principal, repo_id: str, rev: str, repo_type: str = "space"
) -> list[dict[str, Any]]:
    """The last 100 commits of ``rev`` (what `list_repo_commits` lists). Raises: RepoNotFound, RevisionNotFound."""
    from spacehub.services import refs

    repo = repos.get_repo(s, p, repo_type, repo_id)
    return refs.list_commits(ctx, repo, rev, 0, 100)[0]


def commit_view(
    ctx: HubContext, s: Session, p: Principal, repo_id: str, rev: str, repo_type: str = "space"
) -> dict[str, Any]:
    """One commit of a repo ``p`` may read: its message, author, date, parents, and what it changed against its first
    parent (git's diff through `GitStore.commit_diff`). A file stored with LFS is named with its size, never its
    pointer or content. Raises: RepoNotFound, RevisionNotFound (not a commit of this repo), BadRequest (an
    ambiguous abbreviated sha)."""
    from spacehub.storage.blobs import MAX_POINTER_SIZE, parse_pointer

    repo = repos.get_repo(s, p, repo_type, repo_id)
    sha = ctx.git.resolve(repo.id, rev)
    info = ctx.git.commit_info(repo.id, sha)
    diffs, total = ctx.git.commit_diff(repo.id, sha)

    def lfs_size(oid: str | None, size: int) -> int | None:
        if oid is None or size > MAX_POINTER_SIZE:
            return None
        ptr = parse_pointer(ctx.git.read_blob(repo.id, oid))
        return ptr.size if ptr is not None else None

    changed = []
    for d in diffs:
        lfs = [lfs_size(d.old_oid, d.old_size), lfs_size(d.new_oid, d.new_size)]
        item: dict[str, Any] = {
            "status": d.status,
            "path": d.path,
            "old_path": d.old_path,
            "additions": d.additions,
            "deletions": d.deletions,
            "hunks": d.hunks,
            "skipped": d.skipped,
            "truncated": d.truncated,
            "size": d.new_size if d.new_oid else d.old_size,
            "lfs": None,
        }
        if lfs != [None, None]:  # an LFS file: its pointer's diff says nothing a reader wants
            item.update(hunks=None, skipped="lfs", additions=0, deletions=0, truncated=False,
                        lfs={"old": lfs[0], "new": lfs[1]})  # fmt: skip
            shown = lfs[1] if d.new_oid else lfs[0]
            item["size"] = shown if shown is not None else item["size"]
        changed.append(item)
    return {
        "id": info.id,
        "title": info.title,
        "message": info.message,
        "author": info.author,
        "date": info.date.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "parents": list(info.parents),
        "files": changed,
        "total_files": total,
        "additions": sum(f["additions"] for f in changed),
        "deletions": sum(f["deletions"] for f in changed),
    }


def repo_view(ctx: HubContext, s: Session, p: Principal, repo_type: str, repo_id: str, base_url: str) -> dict[str, Any]:
    """A model's or dataset's page: who owns it, its card's metadata and README body (front matter removed, None
    without a README), likes. Raises: RepoNotFound (missing, or private and ``p`` may not read it: as the API)."""
    from spacehub.frontmatter import split_front_matter

    repo = repos.get_repo(s, p, repo_type, repo_id)
    try:
        sha: str | None = ctx.git.resolve(repo.id, "main")
    except RevisionNotFound:
        sha = None
    readme, card = None, {}
    if sha is not None:
        try:
            f = files.resolve_file(ctx, repo, sha, "README.md")
        except NotFound:
            f = None
        if f is not None and f.lfs is None and f.size <= MAX_SHOWN_BYTES:
            text = ctx.git.read_blob(repo.id, f.blob_oid).decode("utf-8", errors="replace")
            card = cards.parse_card(text)
            readme = split_front_matter(text)[1]
    info = repos.base_info(ctx, repo, sha, base_url, p)
    tags = [t for t in card.get("tags", []) if isinstance(t, str)] if isinstance(card.get("tags"), list) else []
    return {
        "id": repo.full_name,
        "type": repo_type,
        "owner": repo.owner.name,
        "name": repo.name,
        "title": repo.full_name,
        "private": repo.private,
        "likes": info["likes"],
        "sha": sha,
        "updated": info["lastModified"],
        "readme": readme,
        "license": card.get("license") if isinstance(card.get("license"), str) else None,
        "tags": tags[:30],
    }


def duplicate_view(ctx: HubContext, s: Session, p: Principal, repo_id: str, base_url: str) -> dict[str, Any]:
    """What the duplicate form asks: the source's variables (readable by its readers, as `get_space_variables`),
    the names of its secrets when ``p`` may see them (writers, as `get_space_secrets`), where ``p`` may create, and
    the hardware catalog. Raises: RepoNotFound."""
    from spacehub.services import hardware, space_settings

    view = space_view(ctx, s, p, repo_id, base_url)
    repo = repos.get_repo(s, p, "space", repo_id)
    secrets = sorted(space_settings.get_space_secrets(s, repo)) if view["can_write"] else []
    owners = namespaces(s, p)
    return {
        **view,
        "variables": sorted(space_settings.get_space_variables(s, repo).items()),
        "secret_names": secrets,
        "owners": owners,
        "free_name": free_space_name(s, owners[0], repo.name) if owners else repo.name,
        "flavors": hardware.list_hardware(ctx.hardware),
    }


def free_space_name(s: Session, owner: str, name: str) -> str:
    """``name`` when ``owner`` has no Space of that name (any case, as `create_repo` compares), else the first free
    ``{name}-2``, ``{name}-3``… (cut to fit the Hub's 96 characters): the duplicate form's default, so that taking
    it as offered does not conflict."""
    query = select(Repo.name).join(Account, Account.id == Repo.owner_id)
    taken = {n.lower() for n in s.scalars(query.where(Repo.type == "space", Account.name == owner))}
    if name.lower() not in taken:
        return name
    for n in itertools.count(2):
        candidate = f"{name[: 96 - len(str(n)) - 1].rstrip('-_.')}-{n}"
        if candidate.lower() not in taken:
            return candidate
    raise AssertionError("unreachable")
