"""Previews of a Space's pull requests in the reconciler and the proxy's route table, on the FakeBackend and a
virtual clock: what a preview gets of the Space (variables, not secrets; the default flavor; no storage), that it
follows refs/pr/N, sleeps after the Space's sleep time, is routed at its own host with the Space's privacy, and is
stopped and forgotten when its pull request is closed. End to end with real processes: tests/e2e/test_previews.py."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import delete

from spacehub.proxy.space_routes import RuntimeRouteTable
from spacehub.runtime.backends.fake import FakeBackend
from spacehub.runtime.front import FrontDoor
from spacehub.services import accounts, discussions, spaces
from spacehub.services.accounts import Principal
from spacehub.services.context import HubContext
from spacehub.services.formats import subdomain
from spacehub.storage.db import utcnow
from spacehub.storage.git import Change
from spacehub.storage.models import PreviewStatus, Repo, SpaceVariable
from spacehub.storage.previews import parse_host_label, parse_preview_id, preview_id
from tests.runtime.conftest import StartReconciler
from tests.runtime.reconciling import README, clock_of, get, make_space, serving_env, settle, until

pytestmark = pytest.mark.anyio
SECRET_ENV = {"VISIBLE": "yes", "TOKEN": "s3cret"}  # what the Space's env reader gives (variables + secrets)


def open_pull_request(ctx: HubContext, space: str, files: dict[str, str], preview: bool = True) -> int:
    with ctx.db.transaction() as s:
        repo = s.get(Repo, space)
        bob = accounts.get_account(s, "bob") or accounts.create_user(s, "bob")
        d = discussions.open_discussion(ctx, s, Principal(bob.id, "bob", "write"), repo, "Change", "x", True,
                                        status="open")  # fmt: skip
        d.preview_at = utcnow() if preview else None
        num = d.num
    commit_to_pr(ctx, space, num, files)
    return num


def commit_to_pr(ctx: HubContext, space: str, num: int, files: dict[str, str]) -> str:
    ref = f"refs/pr/{num}"
    head = ctx.git.ref_target(space, ref)
    changes = [Change(p, ctx.git.write_blob(space, d.encode())) for p, d in files.items()]
    return ctx.git.commit(space, ref, head, changes, "pr", "bob", "b@x")


async def test_preview_ids_and_hosts() -> None:
    assert preview_id("0123456789abcdef01234567", 3) == "0123456789abcdef01234567-pr-3"
    assert parse_preview_id("0123456789abcdef01234567-pr-3") == ("0123456789abcdef01234567", 3)
    assert parse_preview_id("0123456789abcdef01234567") is None
    assert parse_preview_id("0123456789abcdef01234567-pr-03") is None
    assert parse_host_label("alice-demo--pr-12") == ("alice-demo", 12)
    assert parse_host_label("alice-demo") is None and parse_host_label("alice-demo--pr-0") is None


async def test_a_preview_runs_the_pull_request_without_secrets_and_sleeps_like_the_space(
    ctx: HubContext, start_reconciler: StartReconciler
) -> None:
    backend = FakeBackend()
    rec = await start_reconciler(backend, user_env=lambda s, repo: dict(SECRET_ENV),
                                 space_host=lambda full_name: f"{subdomain(full_name)}.localhost:8000")  # fmt: skip
    space = make_space(ctx, {"README.md": README, "app.py": "print(1)"})
    with ctx.db.transaction() as s:
        s.add(SpaceVariable(repo_id=space, key="VISIBLE", value="yes"))
        spaces.space_row(s, s.get(Repo, space)).sleep_time = 600
        full_name = s.get(Repo, space).full_name
    rec.kick(space)
    await until(rec, space, "RUNNING")
    assert serving_env(rec, backend, space)["TOKEN"] == "s3cret"  # the Space itself gets its secret

    num = open_pull_request(ctx, space, {"app.py": "print(2)"})
    key = preview_id(space, num)
    rec.kick(key)
    await until(rec, key, "RUNNING")
    env = serving_env(rec, backend, key)
    assert "TOKEN" not in env and env["VISIBLE"] == "yes"
    assert env["SPACE_ID"] == full_name and env["SPACE_HOST"] == f"{subdomain(full_name)}--pr-{num}.localhost:8000"
    spec = backend.instances[rec.runs[key].serving].spec
    assert spec.storage is None and spec.volumes == () and spec.resources.devices == ()
    assert rec.runs[key].revisions[rec.runs[key].serving] == ctx.git.ref_target(space, f"refs/pr/{num}")
    assert spec.build_id != backend.instances[rec.runs[space].serving].spec.build_id
    assert get(rec, key).startswith("hello from r")

    # the proxy: the preview's host, private exactly when the Space is
    routes = RuntimeRouteTable(ctx, FrontDoor(rec))
    routes.refresh()
    host = f"{subdomain(full_name)}--pr-{num}.{ctx.settings.runtime.spaces_domain}"
    target = routes.lookup(host)
    assert target is not None and target.space_id == key and target.upstream is not None and not target.private
    assert routes.lookup(f"{subdomain(full_name)}--pr-{num + 1}.{ctx.settings.runtime.spaces_domain}") is None
    with ctx.db.transaction() as s:
        s.get(Repo, space).private = True
    routes.refresh()
    target = routes.lookup(host)
    assert target is not None and target.private

    # a new commit to refs/pr/N: the Space's pass (the commit's event) makes the preview look again
    new = commit_to_pr(ctx, space, num, {"app.py": "print(3)"})
    rec.kick(space)
    await settle(rec, key, lambda: rec.runs[key].revisions.get(rec.runs[key].serving or "") == new)

    # sleeps after the Space's sleep time, deeply after deep_sleep_after, and wakes for a visitor
    clock = clock_of(rec)
    clock.advance(601)
    rec.kick(key)
    await until(rec, key, "SLEEPING")
    assert backend.instances[rec.runs[key].serving].frozen
    clock.advance(rec.deep_sleep_after + 1)
    rec.kick(key)
    await settle(rec, key, lambda: not any(i.spec.space_id == key for i in backend.instances.values()))
    assert await rec.wake(key, timeout=10) is not None

    # closed: stopped, its builds dropped, forgotten; the Space runs on
    with ctx.db.transaction() as s:
        d = discussions.find(s, s.get(Repo, space), num)
        d.status = "closed"
    builds = {i.spec.build_id for i in backend.instances.values() if i.spec.space_id == key}
    rec.kick(key)
    await settle(rec, space, lambda: key not in rec.runs)
    assert not any(i.spec.space_id == key for i in backend.instances.values())
    assert not builds & backend.builds
    assert backend.forgotten == [key] and backend.spaces() == {space}  # what the backend kept of the preview only
    assert routes.lookup(host) is None
    assert await rec.wake(key, timeout=1) is None  # no preview: nothing to wake
    assert await rec.wake(space, timeout=10) is not None  # the Space (asleep too by now) is untouched


async def test_a_preview_not_asked_for_does_not_run(ctx: HubContext, start_reconciler: StartReconciler) -> None:
    backend = FakeBackend()
    rec = await start_reconciler(backend)
    space = make_space(ctx, {"README.md": README, "app.py": "print(1)"})
    num = open_pull_request(ctx, space, {"app.py": "print(2)"}, preview=False)
    key = preview_id(space, num)
    rec.kick(space)
    await until(rec, space, "RUNNING")
    rec.kick(key)
    await settle(rec, space, lambda: key not in rec.runs)
    assert len(backend.instances) == 1 and await rec.wake(key, timeout=1) is None


async def test_a_static_spaces_preview_is_served_from_the_pull_requests_files(
    ctx: HubContext, start_reconciler: StartReconciler
) -> None:
    backend = FakeBackend()
    rec = await start_reconciler(backend)
    space = make_space(ctx, {"README.md": "---\nsdk: static\n---\n", "index.html": "<p>main</p>"})
    num = open_pull_request(ctx, space, {"index.html": "<p>pull request</p>"})
    key = preview_id(space, num)
    rec.kick(key)
    await until(rec, key, "RUNNING")
    assert rec.runs[key].static_revision == ctx.git.ref_target(space, f"refs/pr/{num}") and not backend.instances
    routes = RuntimeRouteTable(ctx, FrontDoor(rec))
    routes.refresh()
    with ctx.db.transaction() as s:
        full_name = s.get(Repo, space).full_name
    target = routes.lookup(f"{subdomain(full_name)}--pr-{num}.{ctx.settings.runtime.spaces_domain}")
    assert target is not None and target.asgi is not None and target.space_id == key
    page = await httpx.AsyncClient(transport=httpx.ASGITransport(app=target.asgi), base_url="http://x").get("/")
    assert page.status_code == 200 and "pull request" in page.text


def live(backend: FakeBackend, key: str) -> list[str]:
    """The release ids of ``key``'s instances that run."""
    return sorted(rid for rid, i in backend.instances.items() if i.spec.space_id == key and i.exit_code is None)


def preview_row(ctx: HubContext, key: str) -> tuple[str, str | None] | None:
    parsed = parse_preview_id(key)
    assert parsed is not None
    with ctx.db.transaction() as s:
        row = s.get(PreviewStatus, parsed)
        return None if row is None else (row.stage, row.serving_release)


async def test_after_a_restart_a_running_preview_is_adopted_running(
    ctx: HubContext, start_reconciler: StartReconciler
) -> None:
    """Its status row (preview_status) records the release it serves from: a restart of SpaceHub adopts that
    instance, which serves on at once (no wake, no new start), and says RUNNING."""
    backend = FakeBackend()
    rec = await start_reconciler(backend)
    space = make_space(ctx, {"README.md": README, "app.py": "print(1)"})
    key = preview_id(space, open_pull_request(ctx, space, {"app.py": "print(2)"}))
    rec.kick(key)
    await until(rec, key, "RUNNING")
    serving = rec.runs[key].serving
    assert serving is not None and preview_row(ctx, key) == ("RUNNING", serving)
    starts = backend.started.count(serving)
    await rec.stop()

    again = await start_reconciler(backend)
    assert again.runs[key].serving == serving and again.serving_endpoint(key) is not None  # before any pass
    await until(again, key, "RUNNING")
    assert live(backend, key) == [serving] and backend.started.count(serving) == starts == 1
    assert get(again, key).startswith("hello from r")


async def test_after_a_restart_a_preview_whose_app_died_starts_again_running(
    ctx: HubContext, start_reconciler: StartReconciler
) -> None:
    backend = FakeBackend()
    rec = await start_reconciler(backend)
    space = make_space(ctx, {"README.md": README, "app.py": "print(1)"})
    key = preview_id(space, open_pull_request(ctx, space, {"app.py": "print(2)"}))
    rec.kick(key)
    await until(rec, key, "RUNNING")
    await rec.stop()
    for rid in live(backend, key):
        backend.stop(rid)  # e.g. the machine rebooted

    again = await start_reconciler(backend)
    assert again.runs[key].stage != "SLEEPING"
    await until(again, key, "RUNNING")
    assert len(live(backend, key)) == 1 and get(again, key).startswith("hello from r")


async def test_after_a_restart_a_sleeping_preview_sleeps_as_deeply_as_it_did(
    ctx: HubContext, start_reconciler: StartReconciler
) -> None:
    backend = FakeBackend()
    rec = await start_reconciler(backend)
    space = make_space(ctx, {"README.md": README, "app.py": "print(1)"})
    with ctx.db.transaction() as s:
        spaces.space_row(s, s.get(Repo, space)).sleep_time = 600
    key = preview_id(space, open_pull_request(ctx, space, {"app.py": "print(2)"}))
    rec.kick(key)
    await until(rec, key, "RUNNING")
    clock_of(rec).advance(601)
    rec.kick(key)
    await until(rec, key, "SLEEPING")
    (frozen,) = live(backend, key)
    assert backend.instances[frozen].frozen and preview_row(ctx, key) == ("SLEEPING", frozen)
    await rec.stop()

    again = await start_reconciler(backend)  # frozen: adopted frozen, asleep; a visit thaws it
    assert again.runs[key].stage == "SLEEPING" and again.runs[key].serving == frozen
    again.kick(key)
    await until(again, key, "SLEEPING")
    assert live(backend, key) == [frozen] and backend.instances[frozen].frozen
    clock_of(again).advance(again.deep_sleep_after + 1)
    again.kick(key)
    await settle(again, key, lambda: not live(backend, key))
    await settle(again, key, lambda: preview_row(ctx, key) == ("SLEEPING", None))
    await again.stop()

    third = await start_reconciler(backend)  # stopped: asleep, nothing started until a visit
    third.kick(key)
    await until(third, key, "SLEEPING")
    assert not live(backend, key)
    assert await third.wake(key, timeout=10) is not None and get(third, key).startswith("hello from r")


async def test_a_preview_that_ended_while_spacehub_was_down_stays_ended(
    ctx: HubContext, start_reconciler: StartReconciler
) -> None:
    backend = FakeBackend()
    rec = await start_reconciler(backend)
    space = make_space(ctx, {"README.md": README, "app.py": "print(1)"})
    num = open_pull_request(ctx, space, {"app.py": "print(2)"})
    key = preview_id(space, num)
    rec.kick(key)
    await until(rec, key, "RUNNING")
    await rec.stop()
    with ctx.db.transaction() as s:
        discussions.find(s, s.get(Repo, space), num).status = "closed"

    again = await start_reconciler(backend)
    assert not live(backend, key)  # its instance was an orphan: stopped
    assert preview_row(ctx, key) is None
    assert await again.wake(key, timeout=1) is None
    # what the backend still held of it is removed (a deletion pass of its own, which then forgets it)
    for _ in range(500):
        if key not in again.runs:
            break
        await asyncio.sleep(0.02)
    assert key not in again.runs and key in backend.forgotten and key not in backend.spaces()
    assert space not in backend.forgotten  # the Space's own runtime id is not the preview's


async def test_a_preview_without_a_status_row_sleeps_until_its_next_visit(
    ctx: HubContext, start_reconciler: StartReconciler
) -> None:
    """A preview started by a SpaceHub without preview_status (before migration 0015): its instance is not adopted,
    the preview is known again (its host answers) and asleep, and a visit starts it."""
    backend = FakeBackend()
    rec = await start_reconciler(backend)
    space = make_space(ctx, {"README.md": README, "app.py": "print(1)"})
    key = preview_id(space, open_pull_request(ctx, space, {"app.py": "print(2)"}))
    rec.kick(key)
    await until(rec, key, "RUNNING")
    await rec.stop()
    with ctx.db.transaction() as s:
        s.execute(delete(PreviewStatus))

    again = await start_reconciler(backend)
    assert again.runs[key].stage == "SLEEPING"
    assert not live(backend, key)
    assert await again.wake(key, timeout=10) is not None and get(again, key).startswith("hello from r")
