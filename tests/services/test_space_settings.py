"""Secrets at rest (the key file, AES-GCM bound to the Space and name, rotation) and the rules for keys and values."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from spacehub.errors import BadRequest, Conflict
from spacehub.runtime.backends import local_launch
from spacehub.runtime.desired import PLATFORM_ENV
from spacehub.services import accounts, crypto, space_settings
from spacehub.services.crypto import SecretBox, SecretKeyError, rotate_key
from spacehub.services.space_settings import Entry
from spacehub.storage.db import Database, upgrade_schema
from spacehub.storage.models import Repo, SpaceSecret

VALUE = "s3cr3t-value-\u00e9-42"


@pytest.fixture
def db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade_schema(url)
    return Database(url)


def make_space(db: Database, name: str) -> str:
    with db.transaction() as s:
        owner = accounts.get_account(s, "alice") or accounts.create_user(s, "alice")
        repo = Repo(id=os.urandom(12).hex(), type="space", owner_id=owner.id, name=name, private=False, sdk="gradio")
        s.add(repo)
        return repo.id


def secret_rows(db: Database) -> list[SpaceSecret]:
    with db.transaction() as s:
        return list(s.scalars(select(SpaceSecret).order_by(SpaceSecret.key)))


# ---- the key file and the cipher -------------------------------------------------------------------------------
def test_the_key_file_is_made_at_first_use_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "secrets.key"
    box = SecretBox(path)
    assert path.stat().st_mode & 0o777 == 0o600
    data = json.loads(path.read_text())
    assert data["current"] == box.current_key_id and list(data["keys"]) == [box.current_key_id]
    assert SecretBox(path).current_key_id == box.current_key_id  # a second process reads the same key


def test_concurrent_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    code = "import sys, spacehub.services.crypto as c\nprint(c.SecretBox(c.Path(sys.argv[1])).current_key_id)"
    cmd = [sys.executable, "-c", code, str(tmp_path / "k")]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(4)]
    ids = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(ids) == 1 and ids != {""}
    assert [p.name for p in tmp_path.iterdir()] == ["k"]  # no temporary file left


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secrets.key"
    SecretBox(path)
    path.chmod(0o644)
    with pytest.raises(SecretKeyError, match="chmod 600"):
        SecretBox(path)


def test_a_damaged_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secrets.key"
    SecretBox(path)
    path.write_text('{"version": 1, "current": "x", "keys": {}}')
    with pytest.raises(SecretKeyError, match="damaged"):
        SecretBox(path)


def test_ciphertext_is_bound_to_its_space_and_name(tmp_path: Path) -> None:
    box = SecretBox(tmp_path / "secrets.key")
    key_id, blob = box.encrypt("space-a", "TOKEN", VALUE)
    assert VALUE.encode() not in blob and len(blob) == len(VALUE.encode()) + crypto.NONCE_BYTES + 16
    assert box.decrypt("space-a", "TOKEN", key_id, blob) == VALUE
    assert box.encrypt("space-a", "TOKEN", VALUE)[1] != blob  # a fresh nonce each time
    for space, name in (("space-b", "TOKEN"), ("space-a", "OTHER")):
        with pytest.raises(SecretKeyError, match="does not decrypt"):
            box.decrypt(space, name, key_id, blob)
    with pytest.raises(SecretKeyError, match="does not decrypt"):
        box.decrypt("space-a", "TOKEN", key_id, blob[:-1] + bytes([blob[-1] ^ 1]))
    with pytest.raises(SecretKeyError, match="not in"):
        box.decrypt("space-a", "TOKEN", "0000", blob)


# ---- rotation --------------------------------------------------------------------------------------------------
def test_rotation_reencrypts_every_secret_and_retires_the_old_key(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "secrets.key"
    server = SecretBox(path)  # a running server's box, made before the rotation
    spaces = [make_space(db, f"s{i}") for i in range(3)]
    with db.transaction() as s:
        for i, sid in enumerate(spaces):
            space_settings.add_space_secret(server, s, s.get(Repo, sid), Entry("TOKEN", f"{VALUE}-{i}"))
    old_id = server.current_key_id
    new_id, count = rotate_key(db, path)
    assert count == 3 and new_id != old_id
    assert json.loads(path.read_text())["keys"].keys() == {new_id}
    assert path.stat().st_mode & 0o777 == 0o600
    rows = secret_rows(db)
    assert {r.key_id for r in rows} == {new_id}
    env = space_settings.env_reader(server)  # the running server follows the new file
    with db.transaction() as s:
        assert [env(s, s.get(Repo, sid))["TOKEN"] for sid in spaces] == [f"{VALUE}-{i}" for i in range(3)]
        space_settings.add_space_secret(server, s, s.get(Repo, spaces[0]), Entry("OTHER", VALUE))
    assert {r.key_id for r in secret_rows(db)} == {new_id}


def test_an_interrupted_rotation_leaves_every_secret_readable_and_can_be_run_again(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "secrets.key"
    box = SecretBox(path)
    sid = make_space(db, "s")
    with db.transaction() as s:
        space_settings.add_space_secret(box, s, s.get(Repo, sid), Entry("A", "va"))
        space_settings.add_space_secret(box, s, s.get(Repo, sid), Entry("B", "vb"))
    old_id = box.current_key_id
    real = crypto._reencrypt

    def crash(b: SecretBox, rows: list[SpaceSecret]) -> int:
        real(b, rows[:1])  # one row re-encrypted, then the process "dies": the transaction rolls back
        raise KeyboardInterrupt

    monkeypatch.setattr(crypto, "_reencrypt", crash)
    with pytest.raises(KeyboardInterrupt):
        rotate_key(db, path)
    assert {r.key_id for r in secret_rows(db)} == {old_id}  # all or nothing
    assert old_id in json.loads(path.read_text())["keys"]
    with db.transaction() as s:
        assert space_settings.env_reader(SecretBox(path))(s, s.get(Repo, sid)) == {"A": "va", "B": "vb"}
    monkeypatch.setattr(crypto, "_reencrypt", real)
    new_id, count = rotate_key(db, path)
    assert count == 2 and {r.key_id for r in secret_rows(db)} == {new_id}
    with db.transaction() as s:
        assert space_settings.env_reader(SecretBox(path))(s, s.get(Repo, sid)) == {"A": "va", "B": "vb"}


def test_rotation_refuses_when_a_secret_cannot_be_decrypted(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "secrets.key"
    box = SecretBox(path)
    sid = make_space(db, "s")
    with db.transaction() as s:
        space_settings.add_space_secret(box, s, s.get(Repo, sid), Entry("A", "va"))
    before = secret_rows(db)[0].ciphertext
    path.unlink()  # the key is lost: nothing can be re-encrypted, and nothing is changed
    with pytest.raises(SecretKeyError):
        rotate_key(db, path)
    assert secret_rows(db)[0].ciphertext == before


# ---- keys, values and the environment --------------------------------------------------------------------------
def test_reserved_names_cover_what_the_runtime_sets() -> None:
    forced = {"PATH", "HOME", "PYTHONUNBUFFERED", "VIRTUAL_ENV", "PORT", "GRADIO_SERVER_PORT", "GRADIO_SERVER_NAME"}
    runtime_owned = set(PLATFORM_ENV) | set(local_launch.QUIET_ENV) | forced
    missing = runtime_owned - space_settings.RESERVED_ENV
    assert not missing, f"add these to services/space_settings.py RESERVED_ENV: {sorted(missing)}"


@pytest.mark.parametrize(
    "key", ["", "1ABC", "A-B", "A B", "É", "A=B", "x" * 129, "SPACE_ID", "PORT", "HF_ENDPOINT", "PATH", None, 5]
)
def test_bad_keys_are_refused(key: object) -> None:
    with pytest.raises(BadRequest):
        space_settings.parse_entry({"key": key, "value": "v"}, "secret")


@pytest.mark.parametrize("key", ["HF_TOKEN", "_x", "a1", "MODEL_REPO_ID", "x" * 128])
def test_good_keys_pass(key: str) -> None:
    assert space_settings.parse_entry({"key": key, "value": ""}, "variable") == Entry(key, "")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"key": "A"}, "needs a 'value'"),
        ({"key": "A", "value": 3}, "needs a 'value'"),
        ({"key": "A", "value": "v", "extra": 1}, "Unknown fields"),
        ({"key": "A", "value": "v", "description": 5}, "description"),
        ({"key": "A", "value": "v\x00w"}, "NUL"),
        ({"key": "A", "value": "x" * (64 * 1024 + 1)}, "too large"),
        ("A=v", "must be an object"),
    ],
)
def test_bad_entries_are_refused_without_quoting_the_value(body: object, message: str) -> None:
    with pytest.raises(BadRequest, match=message) as e:
        space_settings.parse_entry(body, "secret")
    assert "v\x00w" not in e.value.message and "xxxx" not in e.value.message


def test_lists_of_a_create_body() -> None:
    body = {"secrets": [{"key": "A", "value": "1"}], "variables": [{"key": "B", "value": "2", "description": "d"}]}
    assert space_settings.parse_settings_body(body, "space") == ([Entry("A", "1")], [Entry("B", "2", "d")])
    for bad, message in (
        ({"secrets": {"key": "A"}}, "must be a list"),
        ({"secrets": [{"key": "A", "value": "1"}, {"key": "A", "value": "2"}]}, "more than once"),
        ({"secrets": [{"key": "A", "value": "1"}], "variables": [{"key": "A", "value": "2"}]}, "both"),
        ({"variables": [{"key": "A", "value": "1"}] * 101}, "Too many"),
    ):
        with pytest.raises(BadRequest, match=message):
            space_settings.parse_settings_body(bad, "space")
    with pytest.raises(BadRequest, match="only apply to Spaces"):
        space_settings.parse_settings_body(body, "model")


def test_a_key_is_a_secret_or_a_variable_and_the_environment_has_both(db: Database, tmp_path: Path) -> None:
    box = SecretBox(tmp_path / "secrets.key")
    sid = make_space(db, "s")
    with db.transaction() as s:
        repo = s.get(Repo, sid)
        assert space_settings.add_space_variable(s, repo, Entry("MODEL", "user/repo"))
        assert not space_settings.add_space_variable(s, repo, Entry("MODEL", "user/repo", "same value: no restart"))
        assert space_settings.add_space_secret(box, s, repo, Entry("TOKEN", VALUE))
        assert not space_settings.add_space_secret(box, s, repo, Entry("TOKEN", VALUE, "described"))
        assert space_settings.add_space_secret(box, s, repo, Entry("TOKEN", VALUE + "2"))
        with pytest.raises(Conflict):
            space_settings.add_space_secret(box, s, repo, Entry("MODEL", "x"))
        with pytest.raises(Conflict):
            space_settings.add_space_variable(s, repo, Entry("TOKEN", "x"))
        assert space_settings.env_reader(box)(s, repo) == {"MODEL": "user/repo", "TOKEN": VALUE + "2"}
        assert space_settings.get_space_secrets(s, repo)["TOKEN"]["description"] == "described"
        assert "value" not in space_settings.get_space_secrets(s, repo)["TOKEN"]
        assert not space_settings.delete_space_secret(s, repo, "MISSING")
        assert space_settings.delete_space_secret(s, repo, "TOKEN")
        assert space_settings.env_reader(box)(s, repo) == {"MODEL": "user/repo"}


def test_a_space_environment_has_a_size_limit(db: Database, tmp_path: Path) -> None:
    sid = make_space(db, "s")
    with db.transaction() as s:
        repo = s.get(Repo, sid)
        for i in range(7):
            space_settings.add_space_variable(s, repo, Entry(f"V{i}", "x" * 64 * 1024))
        with pytest.raises(BadRequest, match="at most"):
            space_settings.add_space_variable(s, repo, Entry("V8", "x" * 64 * 1024))


def test_a_secret_whose_key_was_lost_can_be_set_again(db: Database, tmp_path: Path) -> None:
    sid = make_space(db, "s")
    with db.transaction() as s:
        space_settings.add_space_secret(SecretBox(tmp_path / "old.key"), s, s.get(Repo, sid), Entry("A", "va"))
    box = SecretBox(tmp_path / "new.key")  # the old key file is gone
    with db.transaction() as s, pytest.raises(SecretKeyError, match="'A'"):
        space_settings.env_reader(box)(s, s.get(Repo, sid))
    with db.transaction() as s:
        assert space_settings.add_space_secret(box, s, s.get(Repo, sid), Entry("A", "va"))
        assert space_settings.env_reader(box)(s, s.get(Repo, sid)) == {"A": "va"}
