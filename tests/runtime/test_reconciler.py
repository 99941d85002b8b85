"""The reconciler with the FakeBackend (real HTTP servers on threads, no processes): stages, zero-downtime switch,
crash restarts, give-up, pause, adoption after a restart. The local backend's real processes are tested elsewhere."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import replace

import httpx
import pytest

from spacehub.runtime.backends.fake import FakeBackend
from spacehub.runtime.clock import ManualClock
from spacehub.runtime.plan import MAX_RESTARTS
from spacehub.runtime.reconciler import Reconciler, RuntimeDeps
from spacehub.services import accounts, repos, spaces
from spacehub.services.accounts import Principal
from spacehub.services.context import HubContext
from spacehub.storage.git import Change

README = "---\ntitle: Demo\nsdk: gradio\n---\n"
pytestmark = pytest.mark.anyio


def make_space(ctx: HubContext, files: dict[str, str]) -> str:
    with ctx.db.transaction() as s:
        user = accounts.get_account(s, "alice") or accounts.create_user(s, "alice")
        p = Principal(user.id, "alice", "write")
        repo = repos.create_repo(ctx, s, p, "space", f"demo{time.monotonic_ns()}", None, sdk="gradio")
        repo_id = repo.id
    commit(ctx, repo_id, files)
    return repo_id


def commit(ctx: HubContext, repo_id: str, files: dict[str, str]) -> str:
    head = ctx.git.resolve(repo_id, "main")
    changes = [Change(p, ctx.git.write_blob(repo_id, d.encode())) for p, d in files.items()]
    return ctx.git.commit(repo_id, "refs/heads/main", head, changes, "update", "alice", "a@x")


def reconciler(ctx: HubContext, backend: FakeBackend, clock: ManualClock | None = None) -> Reconciler:
    deps = RuntimeDeps(settings=ctx.settings, db=ctx.db, git=ctx.git, backend=backend)
    return Reconciler(replace(deps, clock=clock) if clock is not None else deps)


async def until(rec: Reconciler, space_id: str, stage: str, wait: float = 10.0) -> None:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        run = rec.runs.get(space_id)
        if run is not None and run.stage == stage and not run.lock.locked():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"stage {rec.runs[space_id].stage!r} ({rec.runs[space_id].error}), wanted {stage}")


async def started(backend: FakeBackend, rid: str, times: int, wait: float = 10.0) -> None:
    """Until ``rid`` has been started ``times`` times (a crash restart happened)."""
    deadline = time.monotonic() + wait
    while backend.started.count(rid) < times:
        assert time.monotonic() < deadline, f"{rid} started {backend.started.count(rid)} times, wanted {times}"
        await asyncio.sleep(0.02)


def get(rec: Reconciler, space_id: str) -> str:
    ep = rec.serving_endpoint(space_id)
    assert ep is not None
    return httpx.get(f"http://{ep.host}:{ep.port}/").text


def stage_in_db(ctx: HubContext, space_id: str) -> dict:
    with ctx.db.transaction() as s:
        return spaces.runtime(s, s.get(repos.Repo, space_id))


async def test_space_builds_starts_and_runs(ctx: HubContext) -> None:
    backend = FakeBackend()
    rec = reconciler(ctx, backend)
    space = make_space(ctx, {"README.md": README, "app.py": "print(1)"})
    await rec.start()
    try:
        rec.kick(space)
        await until(rec, space, "RUNNING")
        assert get(rec, space).startswith("hello from r")
        rt = stage_in_db(ctx, space)
        assert rt["stage"] == "RUNNING" and rt["hardware"] == {"current": "cpu-basic", "requested": "cpu-basic"}
        env = backend.instances[backend.started[0]].spec.env
        assert env["SPACE_ID"].startswith("alice/demo") and env["SYSTEM"] == "spaces"
    finally:
        await rec.stop()


async def test_new_commit_switches_without_gap_and_stops_the_old(ctx: HubContext) -> None:
    backend = FakeBackend(slow_builds=0.3)
    rec = reconciler(ctx, backend)
    space = make_space(ctx, {"README.md": README, "app.py": "v1"})
    await rec.start()
    try:
        rec.kick(space)
        await until(rec, space, "RUNNING")
        first = backend.started[0]
        commit(ctx, space, {"app.py": "v2"})
        rec.kick(space)
        seen = set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (len(backend.started) < 2 or rec.runs[space].serving == first):
            seen.add(rec.runs[space].stage)
            assert get(rec, space)  # always served
            await asyncio.sleep(0.01)
        await until(rec, space, "RUNNING")
        assert "RUNNING_BUILDING" in seen
        assert rec.runs[space].serving == backend.started[1]
        assert first not in backend.instances  # the old one was stopped after the switch
    finally:
        await rec.stop()


async def test_failed_build_keeps_old_version_and_says_why(ctx: HubContext) -> None:
    backend = FakeBackend()
    rec = reconciler(ctx, backend)
    space = make_space(ctx, {"README.md": README, "app.py": "v1"})
    await rec.start()
    try:
        rec.kick(space)
        await until(rec, space, "RUNNING")
        first = rec.runs[space].serving
        backend.fail_builds["*"] = "ERROR: No matching distribution found for nopackage"
        commit(ctx, space, {"requirements.txt": "nopackage\n"})
        rec.kick(space)
        await asyncio.sleep(0.3)
        await until(rec, space, "RUNNING")
        assert rec.runs[space].serving == first
        assert "No matching distribution" in (stage_in_db(ctx, space).get("errorMessage") or "")
    finally:
        await rec.stop()


async def test_restart_retries_a_failed_build(ctx: HubContext) -> None:
    """A build that failed for a passing reason (the index was down) is built again by a restart."""
    backend = FakeBackend()
    rec = reconciler(ctx, backend)
    backend.fail_builds["*"] = "error: failed to fetch: connection refused"
    space = make_space(ctx, {"README.md": README, "app.py": "v1"})
    await rec.start()
    try:
        rec.kick(space)
        await until(rec, space, "BUILD_ERROR")
        rec.kick(space)
        await asyncio.sleep(0.2)
        await until(rec, space, "BUILD_ERROR")  # a pass alone does not retry
        backend.fail_builds.clear()
        with ctx.db.transaction() as s:
            spaces.restart(s, s.get(repos.Repo, space), factory=False)
            assert spaces.runtime(s, s.get(repos.Repo, space))["stage"] == "BUILDING"  # said at once
        rec.kick(space)
        await until(rec, space, "RUNNING")
    finally:
        await rec.stop()


async def test_crash_is_restarted_then_crash_loop_ends_in_runtime_error(ctx: HubContext, monkeypatch) -> None:
    monkeypatch.setattr("spacehub.runtime.plan.BACKOFF_BASE", 0.01)
    monkeypatch.setattr("spacehub.runtime.reconciler.MONITOR_INTERVAL", 0.05)
    backend = FakeBackend()
    rec = reconciler(ctx, backend)
    space = make_space(ctx, {"README.md": README, "app.py": "v1"})
    await rec.start()
    try:
        rec.kick(space)
        await until(rec, space, "RUNNING")
        rid = rec.runs[space].serving
        backend.crash(rid, 3)
        await started(backend, rid, 2)
        await until(rec, space, "RUNNING")
        for n in range(MAX_RESTARTS):  # each crash is followed by a restart, until the reconciler gives up
            await until(rec, space, "RUNNING")
            backend.crash(rid, 3)
            if n < MAX_RESTARTS - 1:
                await started(backend, rid, 3 + n)
        await until(rec, space, "RUNTIME_ERROR")
        assert "exited with code 3" in stage_in_db(ctx, space)["errorMessage"]
    finally:
        await rec.stop()


async def test_pause_stops_and_restart_starts_again(ctx: HubContext) -> None:
    backend = FakeBackend()
    rec = reconciler(ctx, backend)
    space = make_space(ctx, {"README.md": README, "app.py": "v1"})
    await rec.start()
    try:
        rec.kick(space)
        await until(rec, space, "RUNNING")
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
    finally:
        await rec.stop()


async def test_config_error_and_no_app_file(ctx: HubContext) -> None:
    rec = reconciler(ctx, FakeBackend())
    bad = make_space(ctx, {"README.md": "---\nsdk: flask\n---\n"})
    empty = make_space(ctx, {"README.md": README})
    await rec.start()
    try:
        rec.kick(bad)
        rec.kick(empty)
        await until(rec, bad, "CONFIG_ERROR")
        await until(rec, empty, "NO_APP_FILE")
        assert "unknown sdk" in stage_in_db(ctx, bad)["errorMessage"]
    finally:
        await rec.stop()


async def test_restart_of_spacehub_adopts_the_running_instance(ctx: HubContext) -> None:
    backend = FakeBackend()
    rec = reconciler(ctx, backend)
    space = make_space(ctx, {"README.md": README, "app.py": "v1"})
    await rec.start()
    rec.kick(space)
    await until(rec, space, "RUNNING")
    rid = rec.runs[space].serving
    backend.start(dataclasses.replace(backend.instances[rid].spec, release_id="orphan"))
    await rec.stop()

    again = reconciler(ctx, backend)
    await again.start()
    try:
        await until(again, space, "RUNNING")
        assert again.runs[space].serving == rid
        assert backend.started.count(rid) == 1  # adopted, not restarted
        assert "orphan" not in backend.instances  # an instance no Space serves is stopped
    finally:
        await again.stop()


async def test_temporary_backend_errors_are_retried_and_explained(ctx: HubContext) -> None:
    """An engine that cannot build or start now (kopf's temporary error) is tried again after its delay: the Space
    gets to RUNNING, and its logs say what happened; nothing is reported as the Space's own failure."""
    backend = FakeBackend(busy_builds=2, busy_starts=2)
    backend.run_log = lambda space_id: ctx.settings.data_dir / "spaces" / space_id / "logs" / "run.log"
    rec = reconciler(ctx, backend)
    space = make_space(ctx, {"README.md": README, "app.py": "print(1)"})
    await rec.start()
    try:
        rec.kick(space)
        await until(rec, space, "RUNNING")
        assert backend.busy_builds == backend.busy_starts == 0 and backend.build_count == 1
        logs = ctx.settings.data_dir / "spaces" / space / "logs"
        assert (logs / "build.log").read_text().count("cannot build now (the fake engine has no builder free)") == 2
        assert (logs / "run.log").read_text().count("cannot start yet (the fake engine is busy): trying again") == 2
        assert "started r" in (logs / "run.log").read_text()  # the backend wrote its output to the Space's run log
        assert "errorMessage" not in stage_in_db(ctx, space)
    finally:
        await rec.stop()


async def test_a_deleted_space_is_stopped_dropped_and_forgotten(ctx: HubContext) -> None:
    """Deletion is the plan's finalizer: the next pass stops what runs, drops the builds, then forgets the Space
    (its logs and in-memory state go last, once nothing of it runs)."""
    backend = FakeBackend()
    rec = reconciler(ctx, backend)
    space = make_space(ctx, {"README.md": README, "app.py": "print(1)"})
    await rec.start()
    try:
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
    finally:
        await rec.stop()


async def test_without_a_freezer_sleep_stops_the_app(ctx: HubContext) -> None:
    """Where the backend cannot freeze, the plan puts the Space to sleep stopped (traffic routed away first), and a
    visit starts it again."""
    backend, clock = FakeBackend(freezer=False), ManualClock()
    rec = reconciler(ctx, backend, clock)
    space = make_space(ctx, {"README.md": README, "app.py": "print(1)"})
    with ctx.db.transaction() as s:
        spaces.space_row(s, s.get(repos.Repo, space)).sleep_time = 300
    await rec.start()
    try:
        rec.kick(space)
        await until(rec, space, "RUNNING")
        clock.advance(301)  # five idle minutes, on the reconciler's clock
        rec.kick(space)
        await until(rec, space, "SLEEPING")
        assert stage_in_db(ctx, space)["sleepMode"] == "stopped" and not backend.instances
        assert rec.runs[space].serving is None
        assert await rec.wake(space, timeout=10) is not None
        assert get(rec, space).startswith("hello from r")
    finally:
        await rec.stop()


async def test_sleep_after_the_default_48_hours_on_a_virtual_clock(ctx: HubContext) -> None:
    """The default sleep time (48 h) and the deep sleep after it, without waiting: idle time is read from the
    reconciler's clock. Frozen first (memory kept), stopped after deep_sleep_after more; a visit wakes it."""
    backend, clock = FakeBackend(), ManualClock()
    rec = reconciler(ctx, backend, clock)
    space = make_space(ctx, {"README.md": README, "app.py": "print(1)"})
    await rec.start()
    try:
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
        for _ in range(500):  # the pass is under way: until it has written its answer (at most 10 s)
            if stage_in_db(ctx, space).get("sleepMode") == "stopped":
                break
            await asyncio.sleep(0.02)
        assert stage_in_db(ctx, space)["stage"] == "SLEEPING" and not backend.instances
        assert await rec.wake(space, timeout=10) is not None and get(rec, space).startswith("hello from r")
    finally:
        await rec.stop()


async def test_a_pass_that_changes_nothing_writes_nothing(ctx: HubContext) -> None:
    """Idle is free: a periodic pass over a Space that did not change leaves its status row as it was."""
    backend = FakeBackend()
    rec = reconciler(ctx, backend)
    space = make_space(ctx, {"README.md": README, "app.py": "print(1)"})
    await rec.start()
    try:
        rec.kick(space)
        await until(rec, space, "RUNNING")
        await asyncio.sleep(0.2)  # the probe's own kick has run its pass
        before = stage_in_db(ctx, space)["updatedAt"]
        for _ in range(3):
            await rec._reconcile(space)  # one whole pass, as the periodic sweep runs it
        assert rec.runs[space].stage == "RUNNING"
        assert stage_in_db(ctx, space)["updatedAt"] == before
    finally:
        await rec.stop()


async def test_the_status_listener_hears_each_change_and_cannot_break_the_status(ctx: HubContext) -> None:
    """`RuntimeDeps.status_listener` is called in the transaction that writes the status row, once per change of its
    stage or hardware (services.webhooks makes runtime events of it); a listener that fails costs nothing."""
    heard: list[tuple[str | None, str]] = []

    def listener(s, space_id, before, after) -> None:  # type: ignore[no-untyped-def]
        assert s.in_transaction()
        heard.append(((before or {}).get("stage"), after["stage"]))
        assert after["requested"] == "cpu-basic"
        raise RuntimeError("a listener that fails")

    backend = FakeBackend()
    deps = RuntimeDeps(settings=ctx.settings, db=ctx.db, git=ctx.git, backend=backend, status_listener=listener)
    rec = Reconciler(deps)
    space = make_space(ctx, {"README.md": README, "app.py": "print(1)"})
    await rec.start()
    try:
        rec.kick(space)
        await until(rec, space, "RUNNING")
        await asyncio.sleep(0.3)  # more passes: nothing new to hear
        assert stage_in_db(ctx, space)["stage"] == "RUNNING"  # saved, whatever the listener did
        assert heard[-1][1] == "RUNNING", heard
        assert heard[0][0] is None and len(heard) == len(set(heard)), heard  # once per change
    finally:
        await rec.stop()
