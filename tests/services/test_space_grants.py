"""Grants of private Spaces and the sign-in throttle: the pure parts (signatures, expiry, windows)."""

from __future__ import annotations

from pathlib import Path

import pytest
from itsdangerous import TimestampSigner

from spacehub.services import space_grants


def test_a_url_grant_is_exchanged_only_for_its_own_space(tmp_path: Path) -> None:
    grant = space_grants.sign_url_grant(tmp_path, "space-a", 7)
    cookie = space_grants.exchange(tmp_path, "space-a", grant)
    assert cookie is not None and space_grants.is_grant(cookie) and not cookie.startswith("hf_")
    assert space_grants.exchange(tmp_path, "space-b", grant) is None
    i = len(grant) - 10  # inside the signature (its last character also holds padding bits)
    assert (
        space_grants.exchange(tmp_path, "space-a", grant[:i] + ("A" if grant[i] != "A" else "B") + grant[i + 1 :])
        is None
    )
    assert space_grants.exchange(tmp_path, "space-a", cookie.removeprefix(space_grants.COOKIE_PREFIX)) is None
    other_key = tmp_path / "other"
    other_key.mkdir()
    assert space_grants.exchange(other_key, "space-a", grant) is None  # another server's key


def test_a_url_grant_expires_after_a_minute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: real(self) - 61)
    old = space_grants.sign_url_grant(tmp_path, "space-a", 7)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", real)
    assert space_grants.exchange(tmp_path, "space-a", old) is None
    assert space_grants.exchange(tmp_path, "space-a", space_grants.sign_url_grant(tmp_path, "space-a", 7))
