"""The Space use cases (services/space_changes.py) in-process: access first, one transaction, and the runtime hears
of a change only once it has committed, never of one that failed."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from spacehub.errors import BadRequest, Forbidden, PaymentRequired
from spacehub.services import accounts, creation, space_changes, space_settings, spaces
from spacehub.services.context import HubContext
from spacehub.services.space_changes import Caller
from spacehub.storage.models import Repo, Space, SpaceStatus


class Recorder:
    """A Runtime that writes down what it was told, and whether the change was durable when it was told."""

    def __init__(self, ctx: HubContext) -> None:
        self.ctx, self.told = ctx, []  # type: ignore[var-annotated]

    def _note(self, what: str, space_id: str) -> None:
        with self.ctx.db.transaction() as s:  # another session: sees only committed rows
            row = s.get(Space, space_id)
            self.told.append((what, row is not None and row.paused))

    def space_changed(self, space_id: str) -> None:
        self._note("changed", space_id)

    def wake(self, space_id: str) -> None:
        self._note("wake", space_id)

    def storage_changed(self, space_id: str) -> None:
        self._note("storage", space_id)

    def stage(self, space_id: str) -> str | None:
        return None


@pytest.fixture
def hub(ctx: HubContext) -> tuple[HubContext, Recorder, Caller, Caller]:
    with ctx.db.transaction() as s:
        accounts.create_user(s, "alice")
        accounts.create_user(s, "bob")
        alice, bob = accounts.create_token(s, "alice"), accounts.create_token(s, "bob")
    rec = Recorder(ctx)
    ctx.runtime = rec
    base = "http://hub.test:8000"
    creation.create_repo(ctx, alice, {"name": "alice/app", "type": "space", "sdk": "gradio"}, base)
    return ctx, rec, Caller(alice, base), Caller(bob, base)


def test_pause_then_restart_tell_the_runtime_after_the_commit(hub: tuple[HubContext, Recorder, Caller, Caller]):
    ctx, rec, alice, _ = hub
    out = space_changes.pause(ctx, alice, "alice/app")
    assert out["stage"] == "PAUSED" and out["domains"][0]["domain"] == "alice-app.localhost:8000"
    assert rec.told == [("changed", True)]  # the reconciler's read would already see the Space paused
    out = space_changes.restart(ctx, alice, "alice/app")
    assert out["stage"] == "BUILDING"
    assert rec.told[1:] == [("wake", False), ("changed", False)]


def test_a_refused_change_tells_the_runtime_nothing(hub: tuple[HubContext, Recorder, Caller, Caller]):
    ctx, rec, alice, bob = hub
    with pytest.raises(PaymentRequired):
        space_changes.request_hardware(ctx, alice, "alice/app", "cpu-upgrade")  # priced, and alice has no grant
    with pytest.raises(Forbidden):  # access is checked before the body: a stranger learns nothing of it
        space_changes.add_secret(ctx, bob, "alice/app", {"no": "key"})
    with pytest.raises(BadRequest):
        space_changes.add_secret(ctx, alice, "alice/app", {"no": "key"})
    assert rec.told == []


def test_a_secret_restarts_the_app_once_and_an_unchanged_one_not_at_all(
    hub: tuple[HubContext, Recorder, Caller, Caller],
):
    ctx, rec, alice, _ = hub
    body = {"key": "TOKEN", "value": "s3cr3t-value"}
    assert space_changes.add_secret(ctx, alice, "alice/app", body) == {}
    assert space_changes.add_secret(ctx, alice, "alice/app", body) == {}  # the same value: nothing to restart
    assert rec.told == [("changed", False)]
    with ctx.db.transaction() as s:
        repo = s.scalar(select(Repo).where(Repo.name == "app"))
        assert space_settings.env_reader(ctx.secrets)(s, repo)["TOKEN"] == "s3cr3t-value"


def test_the_status_row_is_the_runtimes_alone(hub: tuple[HubContext, Recorder, Caller, Caller]):
    """A change says at once what it leads to (so `wait_for_space` right after it never sees the stage of what came
    before), without writing the runtime's status row: the Space's row notes the change, and the runtime document
    answers the stage it leads to until the reconciler says it has seen it."""
    ctx, _, alice, _ = hub
    with ctx.db.transaction() as s:  # what the reconciler last wrote: the app runs
        repo = s.scalars(select(Repo).where(Repo.name == "app")).one()
        s.add(SpaceStatus(repo_id=repo.id, stage="RUNNING", serving_release="r1", error_message=None, seen_change=0))
        repo_id = repo.id

    def status() -> tuple[str, int]:
        with ctx.db.transaction() as s:
            st = s.get(SpaceStatus, repo_id)
            return st.stage, st.seen_change

    def runtime() -> dict:
        with ctx.db.transaction() as s:
            return spaces.runtime(s, s.get(Repo, repo_id))

    assert space_changes.restart(ctx, alice, "alice/app")["stage"] == "RUNNING_APP_STARTING"
    space_changes.add_secret(ctx, alice, "alice/app", {"key": "K", "value": "v"})  # a start, still
    assert runtime()["stage"] == "RUNNING_APP_STARTING"
    assert status() == ("RUNNING", 0), "no service wrote the runtime's row"
    with ctx.db.transaction() as s:  # the reconciler's next pass acts on both changes and says so
        seen = s.get(Space, repo_id).change_seq
        st = s.get(SpaceStatus, repo_id)
        st.stage, st.seen_change, st.error_message = "RUNNING", seen, "an old error"
    assert runtime()["stage"] == "RUNNING" and runtime()["errorMessage"] == "an old error"
    assert space_changes.pause(ctx, alice, "alice/app")["stage"] == "PAUSED"
    assert "errorMessage" not in runtime()  # the error is not the news
    assert status() == ("RUNNING", seen)
