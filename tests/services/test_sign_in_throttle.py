"""The web sign-in throttle (services/sessions.py): failures are rows in the database, so two processes on one
database (two HTTP workers, two replicas) count the same failures; a key is refused past its limit until its oldest
failure leaves the window, even with the right password; a success clears the user's failures."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from spacehub.config import Settings
from spacehub.errors import TooManyRequests, Unauthorized
from spacehub.services import accounts, sessions
from spacehub.services.context import HubContext
from spacehub.storage.db import utcnow
from spacehub.wiring import hub_context

PASSWORD = "correct horse battery"


@pytest.fixture
def two(tmp_path: Path) -> tuple[HubContext, HubContext]:
    """Two contexts on one data dir and database, as two worker processes have."""
    a, b = (hub_context(Settings(data_dir=tmp_path / "data")) for _ in range(2))
    with a.db.transaction() as s:
        for name in ("erin", "frank"):
            accounts.create_user(s, name)
            sessions.set_password(s, name, PASSWORD)
    return a, b


def test_failures_in_two_workers_add_up_and_refuse_even_the_right_password(two: tuple[HubContext, HubContext]) -> None:
    a, b = two
    limit, window = sessions.SIGN_IN_LIMITS["user"]
    for i in range(limit):
        with pytest.raises(Unauthorized):
            sessions.sign_in((a, b)[i % 2], "erin", "a wrong guess", f"10.0.0.{i}")
    for ctx in (a, b):
        with pytest.raises(TooManyRequests) as refused:
            sessions.sign_in(ctx, "Erin", PASSWORD, "10.0.0.99")  # names are matched without case
        assert 0 < int(refused.value.headers["Retry-After"]) <= window
    assert sessions.sign_in(b, "frank", PASSWORD, "10.0.0.1")  # another user is not held up


def test_the_window_moves_on_and_a_success_clears_the_users_failures(
    two: tuple[HubContext, HubContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = two
    limit, window = sessions.SIGN_IN_LIMITS["user"]
    for _ in range(limit):
        with pytest.raises(Unauthorized):
            sessions.sign_in(a, "erin", "a wrong guess", "10.0.0.1")
    later = utcnow() + dt.timedelta(seconds=window + 1)
    monkeypatch.setattr(sessions, "utcnow", lambda: later)
    assert sessions.sign_in(b, "erin", PASSWORD, "10.0.0.1")  # the failures left the window
    for _ in range(limit - 1):
        with pytest.raises(Unauthorized):
            sessions.sign_in(a, "erin", "a wrong guess", "10.0.0.1")
    assert sessions.sign_in(a, "erin", PASSWORD, "10.0.0.1")  # and a success forgets them
    for _ in range(limit - 1):
        with pytest.raises(Unauthorized):
            sessions.sign_in(a, "erin", "a wrong guess", "10.0.0.1")
    assert sessions.sign_in(a, "erin", PASSWORD, "10.0.0.1")


def test_one_address_guessing_across_names_is_capped(
    two: tuple[HubContext, HubContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = two
    limit = 3  # the same rule as the default 30, for less hashing
    monkeypatch.setitem(sessions.SIGN_IN_LIMITS, "client", (limit, 300.0))
    for i in range(limit):
        with pytest.raises(Unauthorized):
            sessions.sign_in(a, f"nobody-{i}", "a wrong guess", "192.0.2.7")
    with pytest.raises(TooManyRequests):
        sessions.sign_in(a, "frank", PASSWORD, "192.0.2.7")
    assert sessions.sign_in(a, "frank", PASSWORD, "192.0.2.8")
