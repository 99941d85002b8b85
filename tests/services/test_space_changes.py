"""The Space use cases (services/space_changes.py) in-process: access first, one transaction, and the runtime hears
of a change only once it has committed, never of one that failed."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from spacehub.errors import BadRequest, Forbidden, PaymentRequired
from spacehub.services import accounts, creation, space_changes, space_settings
from spacehub.services.context import HubContext
from spacehub.services.space_changes import Caller
from spacehub.storage.models import Repo, Space


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
