"""Users and organizations as the client reads them: `get_user_overview` / `get_organization_overview` (full name,
avatar, counts of what the caller may see), and the avatar itself.

SpaceHub stores no pictures: an account's avatar is an SVG drawn from its name (its initial on a colour taken from
a hash of the name), served at ``/avatars/{name}.svg``, so ``avatarUrl`` in whoami, overviews and anything else
that shows a person is a URL that answers, on any installation.
"""

from __future__ import annotations

import hashlib
from html import escape
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from spacehub.errors import NotFound
from spacehub.services import accounts, listing
from spacehub.services.accounts import Principal
from spacehub.services.formats import iso
from spacehub.storage.models import Account, Membership, Repo

COLORS = ("#ef4444", "#f59e0b", "#10b981", "#3b82f6", "#6366f1", "#8b5cf6", "#ec4899", "#6b7280")


def avatar_svg(s: Session, name: str) -> str:
    """The avatar of account ``name``. Raises: NotFound."""
    acct = accounts.get_account(s, name)
    if acct is None:
        raise NotFound(f"No user or organization named {name!r}")
    color = COLORS[hashlib.sha256(acct.name.lower().encode()).digest()[0] % len(COLORS)]
    initial = escape((acct.fullname or acct.name).strip()[:1].upper() or "?")
    shape = '<rect width="64" height="64" rx="12"' if acct.kind == "org" else '<circle cx="32" cy="32" r="32"'
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
        f'{shape} fill="{color}"/>'
        '<text x="32" y="42" font-family="sans-serif" font-size="30" text-anchor="middle" fill="#fff">'
        f"{initial}</text></svg>"
    )


def _counts(s: Session, p: Principal, owner: Account) -> dict[str, int]:
    out = {}
    for repo_type, key in (("model", "numModels"), ("dataset", "numDatasets"), ("space", "numSpaces")):
        q = listing.visible(p, repo_type).where(Repo.owner_id == owner.id).with_only_columns(func.count())
        out[key] = int(s.scalar(q) or 0)
    return out


def _account(s: Session, name: str, kind: str) -> Account:
    acct = accounts.get_account(s, name)
    if acct is None or acct.kind != kind:
        raise NotFound(f"{'User' if kind == 'user' else 'Organization'} {name!r} not found")
    return acct


def user_overview(s: Session, p: Principal, name: str, base_url: str) -> dict[str, Any]:
    """``GET /api/users/{name}/overview``. Raises: NotFound."""
    user = _account(s, name, "user")
    orgs = s.scalars(select(Account).join(Membership, Membership.org_id == Account.id).where(
        Membership.user_id == user.id
    ).order_by(Account.name))  # fmt: skip
    return {
        "_id": accounts.hexid(user.id),
        "user": user.name,
        "fullname": user.fullname,
        "avatarUrl": accounts.avatar_url(base_url, user.name),
        "type": "user",
        "isPro": False,
        "createdAt": iso(user.created_at),
        **_counts(s, p, user),
        "orgs": [
            {"name": o.name, "fullname": o.fullname, "avatarUrl": accounts.avatar_url(base_url, o.name)} for o in orgs
        ],
    }


def organization_overview(s: Session, p: Principal, name: str, base_url: str) -> dict[str, Any]:
    """``GET /api/organizations/{name}/overview``. Raises: NotFound."""
    org = _account(s, name, "org")
    members = s.scalar(select(func.count()).select_from(Membership).where(Membership.org_id == org.id))
    return {
        "_id": accounts.hexid(org.id),
        "name": org.name,
        "fullname": org.fullname,
        "avatarUrl": accounts.avatar_url(base_url, org.name),
        "type": "org",
        "numUsers": int(members or 0),
        **_counts(s, p, org),
    }
