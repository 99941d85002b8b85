"""Paid hardware: who may use it (billing accounts: a card or a community grant), and what it cost (usage metering).

Flavors with a price need their Space's owner (a user or an org) to have a billing account, which an admin sets with
``spacehub billing grant OWNER`` (``--card`` for a payment card on file, a grant otherwise). Without one, requesting
a priced flavor answers 402 with the guide's words.

Usage is metered per minute while a Space is *starting or running* on a priced flavor, never while it builds, sleeps
(frozen or stopped), is paused or has failed, as on HF. The reconciler reports after every pass which flavors each
Space runs on (`Meter.observe`); the meter keeps one open `UsageInterval` per (Space, flavor) in the database and
moves its ``last_seen_at`` on, so usage survives SpaceHub restarts: an app that kept running meanwhile (adopted) is
billed for the gap, one that did not is closed at its last sighting. Billed minutes per interval are the started
minutes (``ceil(seconds / 60)``), at the flavor's per-minute price when the interval opened.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from spacehub.errors import BadRequest, NotFound, PaymentRequired
from spacehub.flavors import Catalog, Flavor
from spacehub.services import accounts
from spacehub.services.accounts import Principal
from spacehub.storage.db import Database, utcnow
from spacehub.storage.models import Account, BillingAccount, Repo, UsageInterval

KINDS = ("grant", "card")
STALE_AFTER = 120.0  # seconds: an open interval not seen for longer ends where it was last seen (SpaceHub was down)


# ---- arithmetic (pure) ---------------------------------------------------------------------------------------
def unit_cost_micro_usd(price_per_hour: float) -> int:
    """Price per minute in micro-dollars, as `GET /api/spaces/hardware` shows it (``unitCostMicroUSD``)."""
    return round(price_per_hour * 1_000_000 / 60)


def billed_minutes(seconds: float) -> int:
    """Minutes billed for a stretch of ``seconds``: every started minute counts."""
    return math.ceil(seconds / 60 - 1e-9) if seconds > 0 else 0


def interval_end(last_seen: dt.datetime, now: dt.datetime, stale_after: float = STALE_AFTER) -> dt.datetime:
    """When a stretch that is no longer running ended: now, unless it was last seen too long ago (SpaceHub was down
    and the app with it), then at its last sighting."""
    return now if (now - last_seen).total_seconds() <= stale_after else last_seen


@dataclass(frozen=True)
class Line:
    owner: str
    space: str
    flavor: str
    minutes: int
    cost_micro_usd: int


def summarize(lines: Iterable[Line]) -> list[dict[str, Any]]:
    """Usage per owner, then per Space and flavor: ``[{owner, minutes, costMicroUSD, costUSD, spaces: […]}]``."""
    owners: dict[str, dict[tuple[str, str], list[int]]] = {}
    for line in lines:
        acc = owners.setdefault(line.owner, {}).setdefault((line.space, line.flavor), [0, 0])
        acc[0] += line.minutes
        acc[1] += line.cost_micro_usd
    out = []
    for owner in sorted(owners):
        spaces = [
            {"space": space, "flavor": flavor, "minutes": m, "costMicroUSD": c, "costUSD": c / 1e6}
            for (space, flavor), (m, c) in sorted(owners[owner].items())
        ]
        minutes, cost = sum(x["minutes"] for x in spaces), sum(x["costMicroUSD"] for x in spaces)
        out.append({"owner": owner, "minutes": minutes, "costMicroUSD": cost, "costUSD": cost / 1e6, "spaces": spaces})
    return out


# ---- billing accounts ----------------------------------------------------------------------------------------
def find_owner(s: Session, name: str) -> Account:
    """The user or org ``name``. Raises: NotFound."""
    account = accounts.get_account(s, name)
    if account is None:
        raise NotFound(f"No user or organization named {name!r}")
    return account


def grant(s: Session, owner: str, kind: str = "grant", note: str = "") -> BillingAccount:
    """Let ``owner`` use paid hardware. Raises: NotFound, BadRequest (unknown kind)."""
    if kind not in KINDS:
        raise BadRequest(f"Unknown billing kind {kind!r}; use one of {', '.join(KINDS)}")
    account = find_owner(s, owner)
    row = s.get(BillingAccount, account.id)
    if row is None:
        row = BillingAccount(account_id=account.id, kind=kind, note=note)
        s.add(row)
    row.kind, row.note, row.created_at = kind, note[:256], utcnow()
    return row


def revoke(s: Session, owner: str) -> bool:
    """Take paid hardware away from ``owner`` (True if it had it). Its Spaces keep their hardware until changed (see
    `paid_spaces`). Raises: NotFound."""
    row = s.get(BillingAccount, find_owner(s, owner).id)
    if row is None:
        return False
    s.delete(row)
    return True


def can_pay(s: Session, owner: Account) -> bool:
    return s.get(BillingAccount, owner.id) is not None


def billing_accounts(s: Session) -> list[tuple[str, str, str]]:
    """(owner, kind, note) of every billing account."""
    rows = s.execute(select(Account.name, BillingAccount.kind, BillingAccount.note).join(
        BillingAccount, BillingAccount.account_id == Account.id).order_by(Account.name))  # fmt: skip
    return [(r[0], r[1], r[2]) for r in rows]


def check_can_use(s: Session, owner: Account, flavor: Flavor) -> None:
    """Raises: PaymentRequired when ``flavor`` has a price and ``owner`` has no billing account."""
    if flavor.priced and not can_pay(s, owner):
        raise PaymentRequired(
            f"{flavor.name} costs ${flavor.price_per_hour:g}/hour: a payment card or a community grant is required "
            f"to upgrade a Space of {owner.name!r} to it. An administrator gives one with "
            f"`spacehub billing grant {owner.name}`."
        )


# ---- metering ------------------------------------------------------------------------------------------------
class Meter:
    """Records usage intervals from the reconciler's observations (called from worker threads)."""

    def __init__(self, db: Database, catalog: Catalog, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.db, self.catalog, self.clock = db, catalog, clock
        self._lock = threading.Lock()
        self._open: dict[tuple[str, str], int] | None = None  # (space id, flavor) → open interval id

    def _load(self, s: Session) -> dict[tuple[str, str], int]:
        if self._open is None:
            rows = s.execute(select(UsageInterval.repo_id, UsageInterval.flavor, UsageInterval.id).where(
                UsageInterval.ended_at.is_(None)))  # fmt: skip
            self._open = {(r[0], r[1]): r[2] for r in rows}
        return self._open

    def observe(self, space_id: str, flavors: set[str]) -> None:
        """``space_id`` runs (starting or answering) on ``flavors`` now; only priced ones are metered."""
        priced = {f for f in flavors if (fl := self.catalog.get(f)) is not None and fl.name == f and fl.priced}
        with self._lock:
            if self._open is not None and not priced and not any(k[0] == space_id for k in self._open):
                return  # the common case: a free or idle Space, nothing open: no database work
            with self.db.transaction() as s:
                opened = self._load(s)
                now = self.clock()
                for key in [k for k in opened if k[0] == space_id and k[1] not in priced]:
                    row = s.get(UsageInterval, opened.pop(key))
                    if row is not None:
                        row.ended_at = interval_end(row.last_seen_at, now)
                        row.last_seen_at = row.ended_at
                for flavor in priced:
                    self._extend(s, opened, space_id, flavor, now)

    def _extend(self, s: Session, opened: dict[tuple[str, str], int], space_id: str, flavor: str,
                now: dt.datetime) -> None:  # fmt: skip
        row = s.get(UsageInterval, opened[(space_id, flavor)]) if (space_id, flavor) in opened else None
        if row is not None:
            row.last_seen_at = now
            return
        repo = s.get(Repo, space_id)
        f = self.catalog.get(flavor)
        if repo is None or f is None:
            return
        row = UsageInterval(owner_id=repo.owner_id, repo_id=space_id, space_name=repo.full_name, flavor=flavor,
                            unit_cost_micro_usd=unit_cost_micro_usd(f.price_per_hour), started_at=now,
                            last_seen_at=now)  # fmt: skip
        s.add(row)
        s.flush()
        opened[(space_id, flavor)] = row.id


def usage_lines(s: Session, owner_ids: list[int] | None) -> list[Line]:
    """One line per interval (of ``owner_ids``, or everyone's)."""
    q = select(UsageInterval, Account.name).join(Account, Account.id == UsageInterval.owner_id)
    if owner_ids is not None:
        q = q.where(UsageInterval.owner_id.in_(owner_ids))
    lines = []
    for row, owner in s.execute(q):
        seconds = ((row.ended_at or row.last_seen_at) - row.started_at).total_seconds()
        minutes = billed_minutes(seconds)
        lines.append(Line(owner, row.space_name, row.flavor, minutes, minutes * row.unit_cost_micro_usd))
    return lines


def usage(s: Session, p: Principal, owner: str | None = None) -> list[dict[str, Any]]:
    """Usage the caller may see: their own and that of orgs they administer; a site admin sees everyone's.
    Raises: Unauthorized, NotFound (an owner they may not see)."""
    if p.anonymous:
        raise accounts.Unauthorized("You must be authenticated to read usage")
    if owner is not None:
        account = accounts.get_account(s, owner)
        if account is None or accounts.role_on(p, account) != "admin":
            raise NotFound(f"No usage of {owner!r} for you to see")
        return summarize(usage_lines(s, [account.id]))
    if p.is_admin:
        return summarize(usage_lines(s, None))
    assert p.user_id is not None
    ids = [p.user_id, *(org for org, role in p.org_roles.items() if role == "admin")]
    return summarize(usage_lines(s, ids))


def paid_spaces(s: Session, owner: Account, catalog: Catalog) -> list[Repo]:
    """``owner``'s Spaces whose requested hardware has a price."""
    from spacehub.storage.models import Space

    rows = s.execute(select(Repo, Space.hardware).join(Space, Space.repo_id == Repo.id).where(
        Repo.owner_id == owner.id))  # fmt: skip
    return [repo for repo, hw in rows if (f := catalog.get(hw)) is not None and f.priced]
