"""Key rotation of Space secrets on SQLite and PostgreSQL while a "server" keeps writing secrets: every secret ends
under the new key and decrypts, and the old key is gone (the secrets lock serializes the writers and the rotation)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from spacehub.services import accounts, space_settings
from spacehub.services.crypto import SecretBox, rotate_key
from spacehub.services.space_settings import Entry
from spacehub.storage.db import Database, upgrade_schema
from spacehub.storage.models import Repo, SpaceSecret


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'hub.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    upgrade_schema(url)
    return Database(url)


def test_rotation_while_a_server_writes_secrets(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "secrets.key"
    server = SecretBox(path)
    with db.transaction() as s:
        owner = accounts.create_user(s, "alice")
        repo = Repo(id=os.urandom(12).hex(), type="space", owner_id=owner.id, name="s", private=False, sdk="gradio")
        s.add(repo)
        for i in range(20):
            space_settings.add_space_secret(server, s, repo, Entry(f"K{i}", f"value-{i}"))
    written: list[int] = []
    stop = threading.Event()

    def write() -> None:  # the running server: a secret change every few milliseconds
        i = 0
        while not stop.is_set() or i < 5:
            with db.transaction() as s:
                space_settings.add_space_secret(server, s, s.get(Repo, repo.id), Entry(f"W{i % 7}", f"w-{i}"))
            written.append(i)
            i += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        results = [rotate_key(db, path) for _ in range(3)]
    finally:
        stop.set()
        writer.join(60)
    new_id = results[-1][0]
    assert results[0][1] >= 20 and len({r[0] for r in results}) == 3
    assert list(json.loads(path.read_text())["keys"]) == [new_id]
    with db.transaction() as s:
        rows = list(s.scalars(select(SpaceSecret)))
        assert {r.key_id for r in rows} == {new_id}
        env = space_settings.env_reader(SecretBox(path))(s, s.get(Repo, repo.id))
    last = written[-1]
    assert {k: v for k, v in env.items() if k.startswith("K")} == {f"K{i}": f"value-{i}" for i in range(20)}
    assert env[f"W{last % 7}"] == f"w-{last}"
