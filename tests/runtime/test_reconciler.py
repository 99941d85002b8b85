"""The reconciler with the FakeBackend (real HTTP servers on threads, no processes) on a ManualClock: stages,
zero-downtime switch, crash restarts with their backoff, give-up, pause, adoption after a restart, sleep. Time passes
for the reconciler only when a test moves its clock. The local backend's real processes are tested elsewhere."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import pytest

from spacehub.runtime import plan as plan_mod
from spacehub.runtime.backends.fake import FakeBackend
from spacehub.runtime.plan import MAX_RESTARTS, backoff
from spacehub.runtime.reconciler import MONITOR_INTERVAL, MONITOR_SAFETY_ROUNDS, Reconciler
from spacehub.services import repos, spaces
from spacehub.services.context import HubContext
from tests.runtime.conftest import StartReconciler
from tests.runtime.reconciling import (
    README,
    clock_of,
    commit,
    get,
    make_space,
    passes,
    set_space,
    settle,
    stage_in_db,
    started,
    until,
)

pytestmark = pytest.mark.anyio


async def running_v1(
    start_reconciler: StartReconciler, ctx: HubContext, backend: FakeBackend
) -> tuple[Reconciler, str]:
    """A reconciler over ``backend`` and a Space of ``app.py`` "v1" it has brought to RUNNING."""
    rec = await start_reconciler(backend)
    space = make_space(ctx, {"README.md": README, "app.py": "v1"})
    rec.kick(space)
    await until(rec, space, "RUNNING")
    return rec, space


async def test_space_builds_starts_and_runs(ctx: HubContext, start_reconciler: StartReconciler) -> None:
    backend = FakeBackend()
    rec = await start_reconciler(backend)
    space = make_space(ctx, {"README.md": README, "app.py": "print(1)"})
    rec.kick(space)
    await until(rec, space, "RUNNING")
    assert get(rec, space).startswith("hello from r")
    rt = stage_in_db(ctx, space)
    assert rt["stage"] == "RUNNING" and rt["hardware"] == {"current": "cpu-basic", "requested": "cpu-basic"}
    env = backend.instances[backend.started[0]].spec.env
    assert env["SPACE_ID"].startswith("alice/demo") and env["SYSTEM"] == "spaces"


async def test_new_commit_switches_without_gap_and_stops_the_old(
    ctx: HubContext, start_reconciler: StartReconciler
) -> None:
    backend = FakeBackend()
    rec, space = await running_v1(start_reconciler, ctx, backend)
    first = backend.started[0]
    backend.build_gate.clear()  # the new commit's build stays under way until the test has looked
    commit(ctx, space, {"app.py": "v2"})
    rec.kick(space)
    await until(rec, space, "RUNNING_BUILDING")
    assert get(rec, space) == f"hello from {first}"  # the old version serves meanwhile
    seen = set()
    backend.build_gate.set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (len(backend.started) < 2 or rec.runs[space].serving == first):
        seen.add(rec.runs[space].stage)
        assert get(rec, space)  # always served
        await asyncio.sleep(0.01)
    await until(rec, space, "RUNNING")
    assert seen <= {"RUNNING_BUILDING", "RUNNING_APP_STARTING", "RUNNING"}
    assert rec.runs[space].serving == backend.started[1]
    assert first in backend.instances  # drained: requests sent to it just before the switch may still land
    await settle(rec, space, lambda: first not in backend.instances)  # then stopped, by a later pass


async def test_a_change_during_a_drain_is_acted_on_at_once(
    ctx: HubContext, start_reconciler: StartReconciler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old release drains for DRAIN_SECONDS (real time) after a switch, but no pass waits for it: a new commit
    right after a switch starts its release at once, and both older releases are stopped once drained."""
    monkeypatch.setattr(plan_mod, "DRAIN_SECONDS", 4.0)  # a pass that waited for it would be seen to
    backend = FakeBackend()
    rec, space = await running_v1(start_reconciler, ctx, backend)
    first = backend.started[0]
    commit(ctx, space, {"app.py": "v2"})
    rec.kick(space)
    await settle(rec, space, lambda: len(backend.started) == 2 and rec.runs[space].serving == backend.started[1])
    commit(ctx, space, {"app.py": "v3"})
    rec.kick(space)
    await settle(rec, space, lambda: len(backend.started) == 3 and rec.runs[space].serving == backend.started[2])
    assert first in backend.instances  # v3 serves while the first is still draining
    await settle(rec, space, lambda: set(backend.instances) == {backend.started[2]}, wait=20)
    assert get(rec, space) == f"hello from {backend.started[2]}"


async def test_failed_build_keeps_old_version_and_says_why(ctx: HubContext, start_reconciler: StartReconciler) -> None:
    backend = FakeBackend()
    rec, space = await running_v1(start_reconciler, ctx, backend)
    first = rec.runs[space].serving
    backend.fail_builds["*"] = "ERROR: No matching distribution found for nopackage"
    commit(ctx, space, {"requirements.txt": "nopackage\n"})
    rec.kick(space)
    await settle(rec, space, lambda: "No matching" in (stage_in_db(ctx, space).get("errorMessage") or ""))
    await until(rec, space, "RUNNING")
    assert rec.runs[space].serving == first
    assert "No matching distribution" in (stage_in_db(ctx, space).get("errorMessage") or "")


async def test_restart_retries_a_failed_build(ctx: HubContext, start_reconciler: StartReconciler) -> None:
    """A build that failed for a passing reason (the index was down) is built again by a restart."""
    backend = FakeBackend()
    rec = await start_reconciler(backend)
    backend.fail_builds["*"] = "error: failed to fetch: connection refused"
    space = make_space(ctx, {"README.md": README, "app.py": "v1"})
    rec.kick(space)
    await until(rec, space, "BUILD_ERROR")
    await passes(rec, space, n=2)
    await until(rec, space, "BUILD_ERROR")  # a pass alone does not retry
    assert backend.build_count == 1
    backend.fail_builds.clear()
    with ctx.db.transaction() as s:
        spaces.restart(s, s.get(repos.Repo, space), factory=False)
        assert spaces.runtime(s, s.get(repos.Repo, space))["stage"] == "BUILDING"  # said at once
    rec.kick(space)
    await until(rec, space, "RUNNING")


@pytest.mark.parametrize("exit_notices", [False, True], ids=["asked every second", "exit notices"])
async def test_crash_is_restarted_then_crash_loop_ends_in_runtime_error(
    ctx: HubContext, start_reconciler: StartReconciler, exit_notices: bool
) -> None:
    """The monitor notices a crash within a second; the restart waits its backoff (1, 2, 4… s), all on the
    reconciler's clock; after MAX_RESTARTS the Space is RUNTIME_ERROR with the app's last words."""
    backend = FakeBackend(exit_notices=exit_notices)
    rec, space = await running_v1(start_reconciler, ctx, backend)
    clock = clock_of(rec)
    rid = rec.runs[space].serving
    for n in range(MAX_RESTARTS + 1):  # each crash is followed by a restart, until the reconciler gives up
        if exit_notices:
            clock.advance(MONITOR_INTERVAL)  # the round that takes the instance's exit notice
            await settle(rec, space, lambda: backend.notices(rid))
        backend.crash(rid, 3)
        if not exit_notices:
            clock.advance(MONITOR_INTERVAL)  # the monitor looks (with a notice, the loop is told at once)
        await settle(rec, space, lambda: rec.runs[space].instances[rid].state in ("exited", "failed"))
        if n == MAX_RESTARTS:
            break
        await until(rec, space, "APP_STARTING")
        clock.advance(backoff(n) - 0.01)
        await passes(rec, space)
        assert backend.started.count(rid) == 1 + n  # not before its backoff
        clock.advance(0.01)
        await started(backend, rid, 2 + n)
        await until(rec, space, "RUNNING")
    await until(rec, space, "RUNTIME_ERROR")
    assert "exited with code 3" in stage_in_db(ctx, space)["errorMessage"]
    assert backend.started.count(rid) == 1 + MAX_RESTARTS


async def test_an_exit_notice_is_acted_on_at_once_and_a_lost_one_by_the_safety_round(
    ctx: HubContext, start_reconciler: StartReconciler
) -> None:
    """With exit notices (the local backend's pidfds), the monitor does not ask the backend of a ready instance
    every round, notices its end with no round at all, and still finds an end whose notice was lost within
    MONITOR_SAFETY_ROUNDS rounds."""
    backend = FakeBackend()
    rec, space = await running_v1(start_reconciler, ctx, backend)
    clock = clock_of(rec)
    rid = rec.runs[space].serving
    clock.advance(MONITOR_INTERVAL)  # the round that takes its notice (and asks once more)
    await settle(rec, space, lambda: backend.notices(rid))
    asked = backend.asked[rid]
    for _ in range(5):
        clock.advance(MONITOR_INTERVAL)
        await asyncio.sleep(0.05)
    assert backend.asked[rid] == asked  # five rounds, not asked
    backend.crash(rid, 3)  # no clock move: only the notice can tell
    await settle(rec, space, lambda: rec.runs[space].instances[rid].state == "exited")
    assert backend.asked[rid] == asked + 1
    clock.advance(backoff(0))
    await started(backend, rid, 2)
    await until(rec, space, "RUNNING")

    clock.advance(MONITOR_INTERVAL)  # the restarted instance's notice
    await settle(rec, space, lambda: backend.notices(rid))
    backend.crash(rid, 4, notify=False)  # lost: found by a safety round
    for _ in range(MONITOR_SAFETY_ROUNDS - 1):
        clock.advance(MONITOR_INTERVAL)
        await asyncio.sleep(0.01)
        if rec.runs[space].instances[rid].state == "exited":
            break
    await settle(rec, space, lambda: rec.runs[space].instances[rid].state == "exited")
    assert "exited with code 4" in rec.runs[space].instances[rid].error


async def test_pause_stops_and_restart_starts_again(ctx: HubContext, start_reconciler: StartReconciler) -> None:
    backend = FakeBackend()
    rec, space = await running_v1(start_reconciler, ctx, backend)
    with ctx.db.transaction() as s:
        spaces.pause(s, s.get(repos.Repo, space))
    rec.kick(space)
    await until(rec, space, "PAUSED")
    assert backend.instances == {}
    with ctx.db.transaction() as s:
        spaces.restart(s, s.get(repos.Repo, space), factory=False)
    rec.kick(space)
    await until(rec, space, "RUNNING")
    assert backend.build_count == 1  # restart reuses the build


async def test_config_error_and_no_app_file(ctx: HubContext, start_reconciler: StartReconciler) -> None:
    rec = await start_reconciler(FakeBackend())
    bad = make_space(ctx, {"README.md": "---\nsdk: flask\n---\n"})
    empty = make_space(ctx, {"README.md": README})
    rec.kick(bad)
    rec.kick(empty)
    await until(rec, bad, "CONFIG_ERROR")
    await until(rec, empty, "NO_APP_FILE")
    assert "unknown sdk" in stage_in_db(ctx, bad)["errorMessage"]


async def test_restart_of_spacehub_adopts_the_running_instance(
    ctx: HubContext, start_reconciler: StartReconciler
) -> None:
    backend = FakeBackend()
    rec, space = await running_v1(start_reconciler, ctx, backend)
    rid = rec.runs[space].serving
    backend.start(dataclasses.replace(backend.instances[rid].spec, release_id="orphan"))
    await rec.stop()

    again = await start_reconciler(backend, rec.clock)
    await until(again, space, "RUNNING")
    assert again.runs[space].serving == rid
    assert backend.started.count(rid) == 1  # adopted, not restarted
    assert "orphan" not in backend.instances  # an instance no Space serves is stopped
    # the crash monitor watches the adopted instance (it looks only at Spaces with an instance)
    backend.crash(rid, 3)
    clock_of(again).advance(MONITOR_INTERVAL)
    await settle(again, space, lambda: again.runs[space].instances[rid].state in ("exited", "failed"))


async def test_a_restart_of_spacehub_passes_only_the_spaces_that_need_it(
    ctx: HubContext, start_reconciler: StartReconciler
) -> None:
    """At start, a pass at once for a Space with an instance to adopt or a change not acted on yet; a static Space
    that served, a paused or a sleeping one keeps its stage without a pass (10,000 of them cost a read, not 10,000
    passes), and a static one gets its pass from the first visit."""
    backend = FakeBackend()
    rec = await start_reconciler(backend)
    running = make_space(ctx, {"README.md": README, "app.py": "v1"})
    changed = make_space(ctx, {"README.md": README, "app.py": "v1"})
    paused = make_space(ctx, {"README.md": README, "app.py": "v1"})
    static = make_space(ctx, {"README.md": "---\nsdk: static\n---\n", "index.html": "<p>hi</p>"})
    with ctx.db.transaction() as s:
        s.get(repos.Repo, static).sdk = "static"  # as a commit of that README records it (services.commits)
    set_space(ctx, paused, paused=True)
    for space, stage in [(running, "RUNNING"), (changed, "RUNNING"), (paused, "PAUSED"), (static, "RUNNING")]:
        rec.kick(space)
        await until(rec, space, stage)
    await rec.stop()
    backend.stop(rec.runs[changed].serving)  # its app is gone too, and its owner changed something meanwhile
    with ctx.db.transaction() as s:
        spaces.under_way(s, s.get(repos.Repo, changed), building=False)

    again = await start_reconciler(backend, rec.clock)
    passed: list[str] = []
    again.state_listeners.append(passed.append)  # before the start's passes run (they are tasks, not begun yet)
    await until(again, running, "RUNNING")
    await until(again, changed, "RUNNING")
    await asyncio.sleep(0.2)
    assert set(passed) == {running, changed}, passed  # (a start takes a few passes)
    assert again.runs[paused].stage == "PAUSED" and again.runs[static].stage == "RUNNING"
    assert again.runs[static].static_revision is None  # not served yet: the first visit brings its pass
    await again.wake(static, timeout=10)
    assert again.runs[static].static_revision == ctx.git.resolve(static, "main") and static in passed


async def test_temporary_backend_errors_are_retried_and_explained(
    ctx: HubContext, start_reconciler: StartReconciler
) -> None:
    """An engine that cannot build or start now (kopf's temporary error) is tried again after its delay (on the
    reconciler's clock): the Space gets to RUNNING, and its logs say what happened; nothing is reported as the
    Space's own failure."""
    backend = FakeBackend(busy_builds=2, busy_starts=2)
    backend.run_log = lambda space_id: ctx.settings.data_dir / "spaces" / space_id / "logs" / "run.log"
    rec = await start_reconciler(backend)
    clock = clock_of(rec)
    space = make_space(ctx, {"README.md": README, "app.py": "print(1)"})
    logs = ctx.settings.data_dir / "spaces" / space / "logs"

    def said(kind: str, text: str) -> int:
        path = logs / f"{kind}.log"
        return path.read_text().count(text) if path.exists() else 0

    rec.kick(space)
    for kind, text, times in [("build", "cannot build now", 1), ("build", "cannot build now", 2),
                              ("run", "cannot start yet", 1), ("run", "cannot start yet", 2)]:  # fmt: skip
        await settle(rec, space, lambda kind=kind, text=text, times=times: said(kind, text) == times)
        clock.advance(0.2)  # the engine's delay
    await until(rec, space, "RUNNING")
    assert backend.busy_builds == backend.busy_starts == 0 and backend.build_count == 1
    assert (logs / "build.log").read_text().count("cannot build now (the fake engine has no builder free)") == 2
    assert (logs / "run.log").read_text().count("cannot start yet (the fake engine is busy): trying again") == 2
    assert "started r" in (logs / "run.log").read_text()  # the backend wrote its output to the Space's run log
    assert "errorMessage" not in stage_in_db(ctx, space)


async def test_a_deleted_space_is_stopped_dropped_and_forgotten(
    ctx: HubContext, start_reconciler: StartReconciler
) -> None:
    """Deletion is the plan's finalizer: the next pass stops what runs, drops the builds, then forgets the Space
    (its logs and in-memory state go last, once nothing of it runs)."""
    backend = FakeBackend()
    rec = await start_reconciler(backend)
    space = make_space(ctx, {"README.md": README, "app.py": "print(1)"})
    rec.kick(space)
    await until(rec, space, "RUNNING")
    logs = ctx.settings.data_dir / "spaces" / space
    assert logs.is_dir() and backend.builds and backend.instances
    with ctx.db.transaction() as s:
        s.delete(s.get(repos.Repo, space))
    rec.kick(space)
    for _ in range(500):  # at most 10 s
        if space not in rec.runs:
            break
        await asyncio.sleep(0.02)
    assert space not in rec.runs
    assert not backend.instances and not backend.builds and not logs.exists()


async def test_a_deleted_space_is_forgotten_by_the_backend_and_retried_while_it_cannot(
    ctx: HubContext, start_reconciler: StartReconciler
) -> None:
    """The deletion's last step asks the backend to remove what it still holds of the Space (its storage, secrets,
    objects: ``forget``); an engine that cannot now is asked again after its delay, and the Space's record and logs
    stay until it could. Another Space is not touched."""
    backend = FakeBackend(busy_forgets=2)
    rec = await start_reconciler(backend)
    space, other = (make_space(ctx, {"README.md": README, "app.py": f"print({i})"}) for i in (1, 2))
    for s_ in (space, other):
        rec.kick(s_)
        await until(rec, s_, "RUNNING")
    logs = ctx.settings.data_dir / "spaces" / space
    with ctx.db.transaction() as s:
        s.delete(s.get(repos.Repo, space))
    rec.kick(space)
    clock = clock_of(rec)
    for tries in (1, 2):
        await settle(rec, space, lambda tries=tries: backend.busy_forgets == 2 - tries)
        assert space in rec.runs and rec.runs[space].stage == "DELETING" and logs.is_dir()  # not forgotten yet
        assert backend.forgotten == []
        clock.advance(0.2)  # the engine's delay
    for _ in range(500):
        if space not in rec.runs:
            break
        await asyncio.sleep(0.02)
    assert backend.forgotten == [space] and space not in rec.runs and not logs.exists()
    assert space not in backend.spaces() and backend.spaces() == {other}
    assert rec.runs[other].stage == "RUNNING" and get(rec, other).startswith("hello from")


async def test_a_space_deleted_while_spacehub_was_down_is_forgotten_at_start(
    ctx: HubContext, start_reconciler: StartReconciler
) -> None:
    """What the backend holds of a Space the Hub no longer has (deleted while SpaceHub was down: nothing ran its
    deletion) is removed when SpaceHub starts; a Space that still exists is adopted as before."""
    backend = FakeBackend()
    rec = await start_reconciler(backend)
    gone, kept = (make_space(ctx, {"README.md": README, "app.py": f"print({i})"}) for i in (1, 2))
    for s_ in (gone, kept):
        rec.kick(s_)
        await until(rec, s_, "RUNNING")
    serving = rec.runs[kept].serving
    await rec.stop()
    with ctx.db.transaction() as s:
        s.delete(s.get(repos.Repo, gone))
    assert backend.spaces() == {gone, kept}

    again = await start_reconciler(backend, rec.clock)
    for _ in range(500):
        if backend.forgotten:
            break
        await asyncio.sleep(0.02)
    await settle(again, kept, lambda: gone not in again.runs)
    assert backend.forgotten == [gone] and backend.spaces() == {kept}
    assert again.runs[kept].serving == serving and backend.started.count(serving) == 1  # adopted, untouched


async def test_the_resync_forgets_what_a_failed_forget_left(ctx: HubContext, start_reconciler: StartReconciler) -> None:
    """A forget that failed for good (not a temporary error) is logged and the Space's record goes; what the backend
    still holds of it is found by the next resync round, which asks again."""
    backend = FakeBackend()
    rec = await start_reconciler(backend)
    space = make_space(ctx, {"README.md": README, "app.py": "print(1)"})
    rec.kick(space)
    await until(rec, space, "RUNNING")
    broken = backend.forget

    def fail(space_id: str) -> None:
        raise RuntimeError("the engine said no")

    backend.forget = fail  # type: ignore[method-assign]
    with ctx.db.transaction() as s:
        s.delete(s.get(repos.Repo, space))
    rec.kick(space)
    for _ in range(500):
        if space not in rec.runs:
            break
        await asyncio.sleep(0.02)
    assert space not in rec.runs and backend.forgotten == [] and not backend.instances and not backend.builds
    assert backend.spaces() == {space}  # what it keeps of a Space beyond instances and builds
    backend.forget = broken  # type: ignore[method-assign]
    clock_of(rec).advance(float(ctx.settings.runtime.reconcile_interval))
    for _ in range(500):
        if backend.forgotten:
            break
        await asyncio.sleep(0.02)
    assert set(backend.forgotten) == {space} and backend.spaces() == set()  # (a kick of the round's may ask twice)


async def test_without_a_freezer_sleep_stops_the_app(ctx: HubContext, start_reconciler: StartReconciler) -> None:
    """Where the backend cannot freeze, the plan puts the Space to sleep stopped (traffic routed away first), and a
    visit starts it again."""
    backend = FakeBackend(freezer=False)
    rec = await start_reconciler(backend)
    space = make_space(ctx, {"README.md": README, "app.py": "print(1)"})
    with ctx.db.transaction() as s:
        spaces.space_row(s, s.get(repos.Repo, space)).sleep_time = 300
    rec.kick(space)
    await until(rec, space, "RUNNING")
    clock_of(rec).advance(301)  # five idle minutes, on the reconciler's clock
    rec.kick(space)
    await until(rec, space, "SLEEPING")
    assert stage_in_db(ctx, space)["sleepMode"] == "stopped" and not backend.instances
    assert rec.runs[space].serving is None
    assert await rec.wake(space, timeout=10) is not None
    assert get(rec, space).startswith("hello from r")


async def test_sleep_after_the_default_48_hours_on_a_virtual_clock(
    ctx: HubContext, start_reconciler: StartReconciler
) -> None:
    """The default sleep time (48 h) and the deep sleep after it, without waiting: idle time is read from the
    reconciler's clock. Frozen first (memory kept), stopped after deep_sleep_after more; a visit wakes it."""
    backend = FakeBackend()
    rec = await start_reconciler(backend)
    clock = clock_of(rec)
    space = make_space(ctx, {"README.md": README, "app.py": "print(1)"})
    rec.kick(space)
    await until(rec, space, "RUNNING")
    clock.advance(47 * 3600)
    rec.kick(space)
    await until(rec, space, "RUNNING")
    clock.advance(3600 + 1)
    rec.kick(space)
    await until(rec, space, "SLEEPING")
    assert stage_in_db(ctx, space)["sleepMode"] == "frozen" and backend.instances[rec.runs[space].serving].frozen
    clock.advance(rec.deep_sleep_after)
    rec.kick(space)
    await settle(rec, space, lambda: stage_in_db(ctx, space).get("sleepMode") == "stopped")
    assert stage_in_db(ctx, space)["stage"] == "SLEEPING" and not backend.instances
    assert await rec.wake(space, timeout=10) is not None and get(rec, space).startswith("hello from r")


async def test_a_visit_thaws_a_frozen_space_before_any_pass(ctx: HubContext, start_reconciler: StartReconciler) -> None:
    """The light sleep's fast path (plan.visit): a visitor's wake thaws the frozen app itself, so it answers even
    while a pass over the Space is under way (here: held), and the pass then only confirms."""
    backend = FakeBackend()
    rec = await start_reconciler(backend)
    space = make_space(ctx, {"README.md": README, "app.py": "print(1)"})
    with ctx.db.transaction() as s:
        spaces.space_row(s, s.get(repos.Repo, space)).sleep_time = 60
    rec.kick(space)
    await until(rec, space, "RUNNING")
    clock_of(rec).advance(61)
    rec.kick(space)
    await until(rec, space, "SLEEPING")
    rid = rec.runs[space].serving
    assert backend.instances[rid].frozen
    async with rec.runs[space].lock:  # a pass is under way: the visit does not wait for it
        ep = await asyncio.wait_for(rec.wake(space, timeout=5), timeout=5)
        assert ep is not None and not backend.instances[rid].frozen
        assert get(rec, space) == f"hello from {rid}"
        assert rec.runs[space].dirty  # the visit's kick waits for the pass under way
    await passes(rec, space)  # (what that pass does next: it runs again)
    assert rec.runs[space].stage == "RUNNING"
    assert backend.started.count(rid) == 1  # thawed, not started again


async def test_a_pass_that_changes_nothing_writes_nothing(ctx: HubContext, start_reconciler: StartReconciler) -> None:
    """Idle is free: a periodic pass over a Space that did not change leaves its status row as it was."""
    backend = FakeBackend()
    rec = await start_reconciler(backend)
    space = make_space(ctx, {"README.md": README, "app.py": "print(1)"})
    rec.kick(space)
    await until(rec, space, "RUNNING")
    await passes(rec, space)  # after the probe's own kick
    before = stage_in_db(ctx, space)["updatedAt"]
    await passes(rec, space, n=3)  # whole passes, as the periodic sweep runs them
    assert rec.runs[space].stage == "RUNNING"
    assert stage_in_db(ctx, space)["updatedAt"] == before


async def test_the_status_listener_hears_each_change_and_cannot_break_the_status(
    ctx: HubContext, start_reconciler: StartReconciler
) -> None:
    """`RuntimeDeps.status_listener` is called in the transaction that writes the status row, once per change of its
    stage or hardware (services.webhooks makes runtime events of it); a listener that fails costs nothing."""
    heard: list[tuple[str | None, str]] = []

    def listener(s, space_id, before, after) -> None:  # type: ignore[no-untyped-def]
        assert s.in_transaction()
        heard.append(((before or {}).get("stage"), after["stage"]))
        assert after["requested"] == "cpu-basic"
        raise RuntimeError("a listener that fails")

    rec = await start_reconciler(FakeBackend(), status_listener=listener)
    space = make_space(ctx, {"README.md": README, "app.py": "print(1)"})
    rec.kick(space)
    await until(rec, space, "RUNNING")
    await passes(rec, space, n=3)  # more passes: nothing new to hear
    assert stage_in_db(ctx, space)["stage"] == "RUNNING"  # saved, whatever the listener did
    assert heard[-1][1] == "RUNNING", heard
    assert heard[0][0] is None and len(heard) == len(set(heard)), heard  # once per change


def count_passes(rec: Reconciler) -> dict[str, list[float]]:
    """Each Space's passes from now on, as the times (the reconciler's clock) they started at."""
    seen: dict[str, list[float]] = {}
    real = rec._pass

    async def counted(space_id: str, run: Any) -> None:
        seen.setdefault(space_id, []).append(rec.clock.monotonic())
        await real(space_id, run)

    rec._pass = counted  # type: ignore[method-assign]
    return seen


async def quiet(rec: Reconciler) -> None:
    """Until no pass is under way or about to start (real time: the reconciler's work in threads)."""
    calm = 0
    while calm < 3:  # three looks in a row with no pass under way
        await asyncio.sleep(0.02)
        calm = 0 if any(run.lock.locked() for run in rec.runs.values()) else calm + 1


async def test_a_space_falls_asleep_on_its_own_timer_with_no_sweep(
    ctx: HubContext, start_reconciler: StartReconciler
) -> None:
    """Event-driven sleep: nothing kicks the Space after its start and the healing resync is far off, yet it falls
    asleep when its sleep time runs out (its own timer brings that pass) and sleeps stopped when deep sleep is due;
    in between, not one pass."""
    ctx.settings.runtime.reconcile_interval = 10**7
    backend = FakeBackend()
    rec = await start_reconciler(backend)
    clock = clock_of(rec)
    space = make_space(ctx, {"README.md": README, "app.py": "print(1)"})
    with ctx.db.transaction() as s:
        spaces.space_row(s, s.get(repos.Repo, space)).sleep_time = 300
    rec.kick(space)
    await until(rec, space, "RUNNING")
    await quiet(rec)
    seen = count_passes(rec)
    clock.advance(299)
    await quiet(rec)
    assert seen == {} and rec.runs[space].stage == "RUNNING"  # idle, not yet sleepy: nothing runs for it
    clock.advance(1.5)
    await until(rec, space, "SLEEPING")
    assert stage_in_db(ctx, space)["sleepMode"] == "frozen" and len(seen[space]) == 1
    clock.advance(rec.deep_sleep_after - 10)
    await quiet(rec)
    assert len(seen[space]) == 1 and stage_in_db(ctx, space)["sleepMode"] == "frozen"
    clock.advance(10)
    await settle(rec, space, lambda: stage_in_db(ctx, space).get("sleepMode") == "stopped")
    assert not backend.instances and len(seen[space]) == 2
    clock.advance(10 * rec.deep_sleep_after)  # stopped: as deep as it goes, no timer left
    await quiet(rec)
    assert len(seen[space]) == 2
    assert await rec.wake(space, timeout=10) is not None  # a visit still wakes it


async def test_idle_spaces_get_only_the_resync_spread_over_its_interval(
    ctx: HubContext, start_reconciler: StartReconciler
) -> None:
    """Idle is free: static Spaces that do not change get no pass and no status write, except the healing resync:
    one pass each per ``runtime.reconcile_interval``, spread evenly over it rather than all at once."""
    ctx.settings.runtime.reconcile_interval = 600
    static = "---\ntitle: S\nsdk: static\n---\n"
    ids = [make_space(ctx, {"README.md": static, "index.html": f"<p>{i}</p>"}) for i in range(4)]
    rec = await start_reconciler(FakeBackend())
    clock = clock_of(rec)
    for space in ids:
        await until(rec, space, "RUNNING")
    await quiet(rec)
    written = {space: stage_in_db(ctx, space)["updatedAt"] for space in ids}
    seen = count_passes(rec)
    start = clock.monotonic()
    for _ in range(60):  # ten minutes in ten-second steps
        clock.advance(10)
        await quiet(rec)
    assert sorted(seen) == sorted(ids)
    assert all(len(times) == 1 for times in seen.values()), seen  # one pass each in the interval
    times = sorted(round(t - start, 3) for (t,) in seen.values())
    assert times == [150, 300, 450, 600]  # 600 s / 4 Spaces apart: never a burst
    assert {space: stage_in_db(ctx, space)["updatedAt"] for space in ids} == written  # nothing changed: no writes
