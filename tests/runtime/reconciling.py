"""Driving a reconciler in tests as the Hub does: a Space made and committed to as a user would, its settings
changed, kicks and visits; waits for what the reconciler does, and time moved by hand (the `start_reconciler`
fixture gives every reconciler a ManualClock)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx

from spacehub.runtime.backends.fake import FakeBackend
from spacehub.runtime.clock import ManualClock
from spacehub.runtime.reconciler import Reconciler
from spacehub.services import accounts, repos, spaces
from spacehub.services.accounts import Principal
from spacehub.services.context import HubContext
from spacehub.storage.git import Change
from spacehub.storage.models import Repo

README = "---\ntitle: Demo\nsdk: gradio\n---\n"


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


def set_space(ctx: HubContext, space_id: str, **fields: object) -> None:
    with ctx.db.transaction() as s:
        row = spaces.space_row(s, s.get(Repo, space_id))
        for k, v in fields.items():
            setattr(row, k, v)


def stage_in_db(ctx: HubContext, space_id: str) -> dict:
    with ctx.db.transaction() as s:
        return spaces.runtime(s, s.get(Repo, space_id))


def get(rec: Reconciler, space_id: str) -> str:
    ep = rec.serving_endpoint(space_id)
    assert ep is not None
    return httpx.get(f"http://{ep.host}:{ep.port}/").text


def serving_env(rec: Reconciler, backend: FakeBackend, space_id: str) -> dict[str, str]:
    return dict(backend.instances[rec.runs[space_id].serving].spec.env)


def clock_of(rec: Reconciler) -> ManualClock:
    assert isinstance(rec.clock, ManualClock)
    return rec.clock


async def settle(rec: Reconciler, space_id: str, check: Callable[[], object], wait: float = 10.0) -> None:
    """Until ``check()`` holds while no pass over the Space is under way (real time: the reconciler's work)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        run = rec.runs.get(space_id)
        if run is not None and not run.lock.locked() and check():
            return
        await asyncio.sleep(0.02)
    run = rec.runs.get(space_id)
    raise AssertionError(f"not settled: {run.stage if run else 'no record'} ({run.error if run else ''})")


async def until(rec: Reconciler, space_id: str, stage: str, wait: float = 10.0) -> None:
    """Until the Space's stage is ``stage`` and no pass over it is under way."""
    await settle(rec, space_id, lambda: rec.runs[space_id].stage == stage, wait)


async def started(backend: FakeBackend, rid: str, times: int, wait: float = 10.0) -> None:
    """Until ``rid`` has been started ``times`` times (a crash restart happened)."""
    deadline = time.monotonic() + wait
    while backend.started.count(rid) < times:
        assert time.monotonic() < deadline, f"{rid} started {backend.started.count(rid)} times, wanted {times}"
        await asyncio.sleep(0.02)


async def passes(rec: Reconciler, *space_ids: str, n: int = 1) -> None:
    """``n`` whole passes over each Space, as a kick or the periodic sweep runs them (one after another)."""
    for _ in range(n):
        for space_id in space_ids:
            await rec._reconcile(space_id)
