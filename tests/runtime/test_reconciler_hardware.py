"""The reconciler with hardware (FakeBackend, real HTTP on threads, a ManualClock): GPU flavors get their devices and
never share them, a request that cannot run keeps the current release and says why, freed devices go to the Space
waiting for them, sleeping Spaces are stopped under memory pressure, and only running time is metered."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from spacehub.flavors import GB, Catalog, MachineInfo
from spacehub.runtime.backends.fake import FakeBackend
from spacehub.runtime.devices import Device
from spacehub.runtime.reconciler import METER_INTERVAL, Reconciler
from spacehub.runtime.scheduling import Scheduler
from spacehub.services import spaces
from spacehub.services.billing import STALE_AFTER
from spacehub.services.context import HubContext
from spacehub.storage.models import Repo
from tests.runtime.conftest import StartReconciler
from tests.runtime.reconciling import (
    README,
    clock_of,
    make_space,
    passes,
    serving_env,
    set_space,
    settle,
    stage_in_db,
    until,
)

pytestmark = pytest.mark.anyio


def one_t4() -> Scheduler:
    return Scheduler(Catalog(), MachineInfo(2, 24 * GB), (Device("0", "Tesla T4", 16),))


async def reconciler(start: StartReconciler, backend: FakeBackend, **deps: Any) -> Reconciler:
    return await start(backend, scheduler=one_t4(), **deps)


async def fall_asleep(rec: Reconciler, ctx: HubContext, space_id: str, mode: str = "frozen") -> None:
    """Idle past its sleep time (on the reconciler's clock), then a pass: it sleeps ``mode``."""
    clock_of(rec).advance(1.1)
    rec.kick(space_id)
    await settle(rec, space_id, lambda: stage_in_db(ctx, space_id).get("sleepMode") == mode)


async def test_one_gpu_two_spaces(ctx: HubContext, start_reconciler: StartReconciler) -> None:
    backend = FakeBackend()
    rec = await reconciler(start_reconciler, backend)
    a = make_space(ctx, {"README.md": README, "app.py": "a"})
    b = make_space(ctx, {"README.md": README, "app.py": "b"})
    for sid in (a, b):
        rec.kick(sid)
        await until(rec, sid, "RUNNING")
    set_space(ctx, a, hardware="t4-medium")
    rec.kick(a)
    await settle(rec, a, lambda: stage_in_db(ctx, a)["hardware"]["current"] == "t4-medium")
    env = serving_env(rec, backend, a)
    assert env["CUDA_VISIBLE_DEVICES"] == "0" and env["ACCELERATOR"] == "t4-medium"
    started = len(backend.started)

    set_space(ctx, b, hardware="t4-small")  # the only T4 is a's: b stays on cpu-basic and says why
    rec.kick(b)
    await settle(rec, b, lambda: "errorMessage" in stage_in_db(ctx, b))
    rt = stage_in_db(ctx, b)
    assert rt["stage"] == "RUNNING"
    assert rt["hardware"] == {"current": "cpu-basic", "requested": "t4-small"}
    assert "t4-small is not available" in rt["errorMessage"] and "used by alice/" in rt["errorMessage"]
    assert len(backend.started) == started  # nothing restarted
    assert "CUDA_VISIBLE_DEVICES" not in serving_env(rec, backend, b)

    set_space(ctx, a, hardware="cpu-basic")  # a gives the GPU back: b gets it, without waiting for a timer
    rec.kick(a)
    await settle(rec, b, lambda: stage_in_db(ctx, b)["hardware"]["current"] == "t4-small", wait=15)
    rt = stage_in_db(ctx, b)
    assert "errorMessage" not in rt
    assert serving_env(rec, backend, b)["CUDA_VISIBLE_DEVICES"] == "0"
    assert "CUDA_VISIBLE_DEVICES" not in serving_env(rec, backend, a)
    assert rec.scheduler.allocator.holders() == {b: ("0",)}


async def test_a_device_taken_between_the_read_and_the_claim_is_not_used(
    ctx: HubContext, start_reconciler: StartReconciler
) -> None:
    """Reading a Space offers it GPU 0 and takes nothing; here another Space's claim lands between that read and the
    plan's Claim. The pass ends without starting anything on the GPU, the next read falls back, and the Space runs on
    cpu-basic saying who has the GPU."""
    backend = FakeBackend()
    rec = await reconciler(start_reconciler, backend)
    offer = rec.scheduler.offer

    def offer_then_lose_it(space_id, flavor, devices=True):  # type: ignore[no-untyped-def]
        placement = offer(space_id, flavor, devices)
        if placement.resources.devices:
            assert rec.scheduler.allocator.holders() == {}  # the read took nothing
            assert rec.scheduler.claim("other", "bob/other", placement.resources.devices) is None
        return placement

    rec.scheduler.offer = offer_then_lose_it  # type: ignore[method-assign]
    a = make_space(ctx, {"README.md": README, "app.py": "a"})
    set_space(ctx, a, hardware="t4-small")
    rec.kick(a)
    await until(rec, a, "RUNNING")
    rt = stage_in_db(ctx, a)
    assert rt["hardware"] == {"current": "cpu-basic", "requested": "t4-small"}
    assert "used by bob/other" in rt["errorMessage"]
    assert len(backend.started) == 1 and "CUDA_VISIBLE_DEVICES" not in serving_env(rec, backend, a)
    assert rec.scheduler.allocator.holders() == {"other": ("0",)}


async def test_a_restart_on_the_gpu_keeps_it_and_adoption_remembers_it(
    ctx: HubContext, start_reconciler: StartReconciler
) -> None:
    backend = FakeBackend()
    rec = await reconciler(start_reconciler, backend)
    a = make_space(ctx, {"README.md": README, "app.py": "a"})
    set_space(ctx, a, hardware="t4-small")
    rec.kick(a)
    await until(rec, a, "RUNNING")
    first = rec.runs[a].serving
    with ctx.db.transaction() as s:
        spaces.restart(s, s.get(Repo, a), factory=False)
    rec.kick(a)
    await settle(rec, a, lambda: rec.runs[a].serving not in (None, first) and rec.runs[a].stage == "RUNNING")
    assert serving_env(rec, backend, a)["CUDA_VISIBLE_DEVICES"] == "0"
    await rec.stop()

    # SpaceHub restarts: the running instance is adopted with its GPU
    rec2 = await reconciler(start_reconciler, backend, clock=rec.clock)
    assert rec2.scheduler.allocator.holders() == {a: ("0",)}
    b = make_space(ctx, {"README.md": README, "app.py": "b"})
    set_space(ctx, b, hardware="t4-small")
    rec2.kick(b)
    await settle(rec2, b, lambda: "errorMessage" in stage_in_db(ctx, b))
    assert stage_in_db(ctx, a)["hardware"]["current"] == "t4-small"


async def test_memory_pressure_stops_frozen_spaces_and_usage_stops_while_asleep(
    ctx: HubContext, start_reconciler: StartReconciler
) -> None:
    backend = FakeBackend()
    metered: list[tuple[str, set[str]]] = []
    available = {"bytes": 8 * GB}
    rec = await reconciler(start_reconciler, backend, meter=lambda sid, flavors: metered.append((sid, flavors)),
                           available_memory=lambda: available["bytes"])  # fmt: skip
    rec.deep_sleep_after = 3600
    a = make_space(ctx, {"README.md": README, "app.py": "a"})
    set_space(ctx, a, hardware="cpu-upgrade", sleep_time=1)
    rec.kick(a)
    await until(rec, a, "RUNNING")
    assert metered[-1] == (a, {"cpu-upgrade"})
    await fall_asleep(rec, ctx, a)
    assert rec.runs[a].stage == "SLEEPING"
    assert metered[-1] == (a, set())  # frozen: not billed
    await rec._relieve_memory()  # plenty of memory: stays frozen
    assert stage_in_db(ctx, a)["sleepMode"] == "frozen"
    available["bytes"] = 100 * 2**20  # below the 512 MiB default
    await rec._relieve_memory()
    await until(rec, a, "SLEEPING")
    assert stage_in_db(ctx, a)["sleepMode"] == "stopped"
    assert backend.instances == {}
    log = (ctx.settings.data_dir / "spaces" / a / "logs" / "run.log").read_text()
    assert "memory is short (100 MiB available): stopping this sleeping Space" in log
    ep = await rec.wake(a, timeout=10)  # a visitor: it starts again
    assert ep is not None
    await until(rec, a, "RUNNING")
    assert rec.runs[a].evicted is False
    assert metered[-1] == (a, {"cpu-upgrade"})


async def test_a_wake_longer_than_the_sleep_time_is_not_put_back_to_sleep(
    ctx: HubContext, start_reconciler: StartReconciler
) -> None:
    """A visitor waits for a start (here a build held under way) that takes longer than the sleep time: the periodic
    passes meanwhile must not decide the Space is idle and stop what the wake is starting."""
    backend = FakeBackend()
    rec = await reconciler(start_reconciler, backend)
    clock = clock_of(rec)
    rec.deep_sleep_after = 0.5
    a = make_space(ctx, {"README.md": README, "app.py": "a"})
    set_space(ctx, a, sleep_time=1)
    rec.kick(a)
    await until(rec, a, "RUNNING")
    clock.advance(1.6)  # past the sleep time and the deep sleep after it
    rec.kick(a)
    await settle(rec, a, lambda: stage_in_db(ctx, a).get("sleepMode") == "stopped")
    backend.build_gate.clear()
    with ctx.db.transaction() as s:
        spaces.restart(s, s.get(Repo, a), factory=True)  # a new build: slower than the sleep time
    wake = asyncio.ensure_future(rec.wake(a, timeout=15))
    await until(rec, a, "BUILDING")
    for _ in range(3):  # a minute passes, with its periodic passes, while the build is under way
        clock.advance(20)
        await passes(rec, a)
        assert rec.runs[a].stage == "BUILDING" and not wake.done()
    backend.build_gate.set()
    ep = await wake
    assert ep is not None
    assert rec.runs[a].stage == "RUNNING"


async def test_a_first_build_longer_than_the_sleep_time_still_runs_then_sleeps(
    ctx: HubContext, start_reconciler: StartReconciler
) -> None:
    backend = FakeBackend()
    backend.build_gate.clear()
    rec = await reconciler(start_reconciler, backend)
    clock = clock_of(rec)
    a = make_space(ctx, {"README.md": README, "app.py": "a"})
    set_space(ctx, a, sleep_time=1)
    rec.kick(a)
    await until(rec, a, "BUILDING")
    clock.advance(5)  # the build outlasts the sleep time
    await passes(rec, a)
    assert rec.runs[a].stage == "BUILDING"
    backend.build_gate.set()
    await until(rec, a, "RUNNING")  # nothing ran yet: there was nothing to put to sleep
    await fall_asleep(rec, ctx, a)  # then its full sleep time from its start, and it sleeps


async def test_sleeping_spaces_stay_asleep_across_a_spacehub_restart(
    ctx: HubContext, start_reconciler: StartReconciler
) -> None:
    backend = FakeBackend()
    rec = await reconciler(start_reconciler, backend)
    clock = clock_of(rec)
    rec.deep_sleep_after = 3600
    frozen, stopped = (make_space(ctx, {"README.md": README, "app.py": x}) for x in "fs")
    for sid in (frozen, stopped):
        set_space(ctx, sid, sleep_time=1)
    for sid in (frozen, stopped):
        rec.kick(sid)
        await until(rec, sid, "RUNNING")
    for sid in (frozen, stopped):
        await fall_asleep(rec, ctx, sid)
    rec.runs[stopped].evicted = True  # as if memory had been short
    rec.kick(stopped)
    await settle(rec, stopped, lambda: stage_in_db(ctx, stopped).get("sleepMode") == "stopped")
    started = len(backend.started)
    await rec.stop()

    rec2 = await reconciler(start_reconciler, backend, clock=clock)
    rec2.deep_sleep_after = 3600
    clock.advance(30)  # a few periodic passes
    await passes(rec2, frozen, stopped, n=3)
    assert stage_in_db(ctx, frozen)["sleepMode"] == "frozen"
    assert stage_in_db(ctx, stopped)["sleepMode"] == "stopped"
    assert len(backend.started) == started  # nothing was started
    assert await rec2.wake(stopped, timeout=10) is not None
    assert await rec2.wake(frozen, timeout=10) is not None
    assert len(backend.started) == started + 1  # the stopped one started; the frozen one thawed


async def test_a_sleeping_space_gives_its_gpu_to_a_space_that_needs_it(
    ctx: HubContext, start_reconciler: StartReconciler
) -> None:
    backend = FakeBackend()
    rec = await reconciler(start_reconciler, backend)
    rec.deep_sleep_after = 3600  # without the waiter it would stay frozen, holding the GPU, for an hour
    a, b = (make_space(ctx, {"README.md": README, "app.py": x}) for x in "ab")
    set_space(ctx, a, hardware="t4-small", sleep_time=1)
    for sid in (a, b):
        rec.kick(sid)
        await until(rec, sid, "RUNNING")
    await fall_asleep(rec, ctx, a)
    assert rec.scheduler.allocator.holders() == {a: ("0",)}
    set_space(ctx, b, hardware="t4-medium")
    rec.kick(b)
    await settle(rec, b, lambda: stage_in_db(ctx, b)["hardware"]["current"] == "t4-medium")
    assert stage_in_db(ctx, a)["sleepMode"] == "stopped"
    assert rec.scheduler.allocator.holders() == {b: ("0",)}
    log = (ctx.settings.data_dir / "spaces" / a / "logs" / "run.log").read_text()
    assert "another Space needs this sleeping Space's accelerator: stopping it" in log
    assert await rec.wake(a, timeout=10) is not None  # a wakes on its fallback flavor and says why
    await settle(rec, a, lambda: "errorMessage" in stage_in_db(ctx, a))
    assert stage_in_db(ctx, a)["hardware"] == {"current": "cpu-basic", "requested": "t4-small"}


async def test_a_running_space_is_metered_between_passes(ctx: HubContext, start_reconciler: StartReconciler) -> None:
    """Passes come only on events now, yet billing must hear that a paid Space still runs more often than
    `billing.STALE_AFTER` (else its interval would end where it was last seen): every `METER_INTERVAL` it is told.
    (The meter itself does no database work for a Space on free hardware.)"""
    ctx.settings.runtime.reconcile_interval = 10**7
    backend = FakeBackend()
    metered: list[tuple[str, set[str]]] = []
    rec = await reconciler(start_reconciler, backend, meter=lambda sid, flavors: metered.append((sid, flavors)))
    paid = make_space(ctx, {"README.md": README, "app.py": "a"})
    free = make_space(ctx, {"README.md": README, "app.py": "b"})
    set_space(ctx, paid, hardware="cpu-upgrade", sleep_time=-1)
    set_space(ctx, free, sleep_time=-1)
    for sid in (paid, free):
        rec.kick(sid)
        await until(rec, sid, "RUNNING")
    metered.clear()
    for _ in range(int(STALE_AFTER // METER_INTERVAL) + 1):
        clock_of(rec).advance(METER_INTERVAL)
        await asyncio.sleep(0.05)
    assert metered.count((paid, {"cpu-upgrade"})) >= STALE_AFTER // METER_INTERVAL
    assert (free, {"cpu-basic"}) in metered
