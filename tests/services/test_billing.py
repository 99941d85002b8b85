"""Paid hardware: billing accounts, the metering arithmetic, usage intervals on a virtual clock (restarts included),
and who sees what usage. A real SQLite database; no server."""

from __future__ import annotations

import datetime as dt

import pytest

from spacehub.errors import BadRequest, NotFound, PaymentRequired, Unauthorized
from spacehub.flavors import GB, Catalog, MachineInfo
from spacehub.runtime.scheduling import Scheduler
from spacehub.services import accounts, billing, hardware, repos, spaces
from spacehub.services.accounts import Principal
from spacehub.services.context import HubContext
from spacehub.storage.models import Repo, UsageInterval
from spacehub.wiring import hardware_policy

T0 = dt.datetime(2026, 11, 23, 12, 0, 0)
CAT = Catalog()


@pytest.mark.parametrize(
    ("seconds", "minutes"), [(0, 0), (-5, 0), (0.5, 1), (59.9, 1), (60, 1), (60.01, 2), (3600, 60), (3601, 61)]
)
def test_billed_minutes_count_every_started_minute(seconds: float, minutes: int) -> None:
    assert billing.billed_minutes(seconds) == minutes


def test_unit_costs_per_minute() -> None:
    assert billing.unit_cost_micro_usd(0.60) == 10_000  # t4-medium: $0.60/h = $0.01/min
    assert billing.unit_cost_micro_usd(0.03) == 500
    assert billing.unit_cost_micro_usd(0.0) == 0


def test_interval_end_after_a_gap() -> None:
    assert billing.interval_end(T0, T0 + dt.timedelta(seconds=30)) == T0 + dt.timedelta(seconds=30)
    assert billing.interval_end(T0, T0 + dt.timedelta(hours=1)) == T0  # SpaceHub was down: last sighting


def test_summarize() -> None:
    lines = [billing.Line("alice", "alice/a", "t4-medium", 3, 30_000), billing.Line("alice", "alice/a", "t4-medium", 2,
             20_000), billing.Line("alice", "alice/b", "cpu-upgrade", 1, 500), billing.Line("acme", "acme/x",
             "t4-small", 1, 6667)]  # fmt: skip
    out = billing.summarize(lines)
    assert [o["owner"] for o in out] == ["acme", "alice"]
    alice = out[1]
    assert alice["minutes"] == 6 and alice["costMicroUSD"] == 50_500 and alice["costUSD"] == pytest.approx(0.0505)
    assert alice["spaces"][0] == {"space": "alice/a", "flavor": "t4-medium", "minutes": 5, "costMicroUSD": 50_000,
                                  "costUSD": 0.05}  # fmt: skip


def space(ctx: HubContext, owner: str = "alice", name: str = "demo") -> str:
    with ctx.db.transaction() as s:
        user = accounts.get_account(s, owner) or accounts.create_user(s, owner)
        repo = repos.create_repo(ctx, s, Principal(user.id, owner, "write"), "space", name, None, sdk="gradio")
        return repo.id


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def intervals(ctx: HubContext) -> list[tuple[str, dt.datetime, dt.datetime, dt.datetime | None]]:
    with ctx.db.transaction() as s:
        return [(r.flavor, r.started_at, r.last_seen_at, r.ended_at) for r in s.query(UsageInterval).order_by("id")]


def test_meter_records_priced_running_time_only(ctx: HubContext) -> None:
    sid = space(ctx)
    clock = Clock()
    meter = billing.Meter(ctx.db, CAT, clock)
    meter.observe(sid, {"cpu-basic"})  # free: nothing
    assert intervals(ctx) == []
    meter.observe(sid, {"t4-medium"})  # starting on a priced flavor
    clock.tick(90)
    meter.observe(sid, {"t4-medium"})  # running
    clock.tick(30)
    meter.observe(sid, set())  # asleep or paused: the interval ends now
    (row,) = intervals(ctx)
    assert row == ("t4-medium", T0, T0 + dt.timedelta(seconds=120), T0 + dt.timedelta(seconds=120))
    clock.tick(600)  # asleep for 10 min: not billed
    meter.observe(sid, {"t4-medium"})
    clock.tick(10)
    meter.observe(sid, {"t4-medium", "cpu-upgrade"})  # a switch: both run for a moment
    clock.tick(5)
    meter.observe(sid, {"cpu-upgrade"})
    with ctx.db.transaction() as s:
        owners = billing.usage(s, Principal(1, "alice", "write"))
    (alice,) = owners
    # t4-medium: 120 s → 2 min, then 15 s → 1 min; cpu-upgrade: 5 s so far → 1 min
    assert alice["minutes"] == 4
    assert alice["costMicroUSD"] == 3 * 10_000 + 500


def test_meter_survives_a_restart(ctx: HubContext) -> None:
    sid = space(ctx)
    clock = Clock()
    billing.Meter(ctx.db, CAT, clock).observe(sid, {"t4-small"})
    clock.tick(40)
    # SpaceHub restarts: a new meter finds the open interval. The app kept running (adopted): billed through.
    billing.Meter(ctx.db, CAT, clock).observe(sid, {"t4-small"})
    clock.tick(20)
    again = billing.Meter(ctx.db, CAT, clock)
    clock.tick(3600)  # down for an hour, and the app died with the machine: closed at its last sighting
    again.observe(sid, set())
    (row,) = intervals(ctx)
    assert row[1:] == (T0, T0 + dt.timedelta(seconds=40), T0 + dt.timedelta(seconds=40))


def test_meter_keeps_usage_of_a_deleted_space(ctx: HubContext) -> None:
    sid = space(ctx, name="gone")
    clock = Clock()
    meter = billing.Meter(ctx.db, CAT, clock)
    meter.observe(sid, {"t4-small"})
    clock.tick(61)
    meter.observe(sid, {"t4-small"})
    with ctx.db.transaction() as s:
        s.delete(s.get(Repo, sid))
    meter.observe(sid, set())
    with ctx.db.transaction() as s:
        (owner,) = billing.usage(s, Principal(1, "alice", "write"))
    assert owner["spaces"] == [{"space": "alice/gone", "flavor": "t4-small", "minutes": 2,
                                "costMicroUSD": 2 * billing.unit_cost_micro_usd(0.40),
                                "costUSD": 2 * billing.unit_cost_micro_usd(0.40) / 1e6}]  # fmt: skip


def test_grants_and_the_402(ctx: HubContext) -> None:
    sid = space(ctx)
    policy = hardware_policy(Scheduler(CAT, MachineInfo(2, 24 * GB)))
    with ctx.db.transaction() as s:
        repo = s.get(Repo, sid)
        with pytest.raises(PaymentRequired, match="a payment card or a community grant is required"):
            hardware.request_hardware(s, repo, policy, "cpu-upgrade")
        assert spaces.space_row(s, repo).hardware == "cpu-basic"  # nothing changed
        billing.grant(s, "alice", "grant", "research")
        assert hardware.request_hardware(s, repo, policy, "cpu-upgrade", 3600) is True
        assert spaces.space_row(s, repo).sleep_time == 3600
        assert billing.billing_accounts(s) == [("alice", "grant", "research")]
        assert [r.full_name for r in billing.paid_spaces(s, repo.owner, CAT)] == ["alice/demo"]
        assert billing.revoke(s, "alice") is True
        assert billing.revoke(s, "alice") is False
        with pytest.raises(NotFound):
            billing.grant(s, "nobody")
        with pytest.raises(BadRequest):
            billing.grant(s, "alice", "coupon")


def test_usage_visibility(ctx: HubContext) -> None:
    a, b = space(ctx, "alice", "a"), space(ctx, "bob", "b")
    with ctx.db.transaction() as s:
        accounts.create_org(s, "acme")
        accounts.add_member(s, "acme", "alice", "admin")
        accounts.add_member(s, "acme", "bob", "write")
        acme = accounts.get_account(s, "acme")
        alice, bob = accounts.get_account(s, "alice"), accounts.get_account(s, "bob")
        x = repos.create_repo(ctx, s, Principal(alice.id, "alice", "write", org_roles={acme.id: "admin"}), "space",
                              "x", "acme", sdk="gradio").id  # fmt: skip
        ids = (alice.id, bob.id, acme.id)
    clock = Clock()
    meter = billing.Meter(ctx.db, CAT, clock)
    for sid in (a, b, x):
        meter.observe(sid, {"t4-small"})
    clock.tick(30)
    for sid in (a, b, x):
        meter.observe(sid, set())
    alice_p = Principal(ids[0], "alice", "write", org_roles={ids[2]: "admin"})
    bob_p = Principal(ids[1], "bob", "write", org_roles={ids[2]: "write"})
    with ctx.db.transaction() as s:
        assert [o["owner"] for o in billing.usage(s, alice_p)] == ["acme", "alice"]
        assert [o["owner"] for o in billing.usage(s, bob_p)] == ["bob"]  # a write member does not see the org's
        assert [o["owner"] for o in billing.usage(s, Principal(99, "root", "write", True))] == ["acme", "alice", "bob"]
        assert [o["owner"] for o in billing.usage(s, alice_p, "acme")] == ["acme"]
        with pytest.raises(NotFound):
            billing.usage(s, bob_p, "acme")
        with pytest.raises(NotFound):
            billing.usage(s, bob_p, "alice")
        with pytest.raises(Unauthorized):
            billing.usage(s, Principal())
