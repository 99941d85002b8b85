"""SQLite (the embedded default) and PostgreSQL (a URL away) behave the same, through the services and end to end."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select

from spacehub.errors import BadRequest, Conflict, Forbidden, NotFound, RepoNotFound, Unauthorized
from spacehub.services import accounts, listing, repos
from spacehub.services.accounts import ANONYMOUS, Principal
from spacehub.services.context import HubContext
from spacehub.storage.db import MIGRATIONS_DIR, Database, upgrade_schema
from spacehub.storage.models import Account, LfsObject, Repo, RepoRedirect, Token

TABLES = {"accounts", "memberships", "tokens", "repos", "repo_redirects", "lfs_objects", "alembic_version"}


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    upgrade_schema(db_url)
    upgrade_schema(db_url)  # idempotent: every start runs it
    database = Database(db_url)
    yield database
    database.engine.dispose()


def _head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def test_schema_upgrade_is_idempotent(db: Database) -> None:
    insp = inspect(db.engine)
    assert set(insp.get_table_names()) >= TABLES
    with db.transaction() as s:
        versions = s.connection().exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
    assert versions == [_head()]


def test_concurrent_upgrades_of_a_fresh_database(db_url: str) -> None:
    """A server and admin commands starting at once on a new database: all succeed and the schema is whole."""
    code = "import sys; from spacehub.storage.db import upgrade_schema; upgrade_schema(sys.argv[1])"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, db_url], stderr=subprocess.PIPE, text=True) for _ in range(3)
    ]
    failures = [p.stderr.read() for p in procs if p.wait(120) != 0]  # type: ignore[union-attr]
    assert failures == []
    database = Database(db_url)
    assert set(inspect(database.engine).get_table_names()) >= TABLES
    database.engine.dispose()


def _people(db: Database) -> dict[str, str]:
    """alice owns org acme; bob writes in it, carol reads; dave is an outsider. Returns write tokens (+ bob-read)."""
    with db.transaction() as s:
        for name in ("alice", "bob", "carol", "dave"):
            accounts.create_user(s, name, email=f"{name}@example.com")
        accounts.create_org(s, "acme", "ACME Inc.")
        accounts.add_member(s, "acme", "alice", "admin")
        accounts.add_member(s, "acme", "bob", "read")
        accounts.add_member(s, "acme", "bob", "write")  # a second call changes the role
        accounts.add_member(s, "acme", "carol", "read")
        tokens = {name: accounts.create_token(s, name) for name in ("alice", "bob", "carol", "dave")}
        tokens["bob-read"] = accounts.create_token(s, "bob", "read", name="laptop")
    return tokens


def test_accounts_and_tokens(db: Database) -> None:
    tokens = _people(db)
    with db.transaction() as s:
        for taken in ("alice", "ALICE", "Acme"):  # one namespace for users and orgs, case-insensitively
            with pytest.raises(Conflict):
                accounts.create_user(s, taken)
        for bad in ("", "-x", "a--b", "api", "x" * 43, "a_b", "é"):
            with pytest.raises(BadRequest):
                accounts.create_org(s, bad)
        with pytest.raises(NotFound):
            accounts.add_member(s, "alice", "bob", "read")  # alice is no org
        with pytest.raises(NotFound):
            accounts.create_token(s, "acme")  # orgs have no tokens
        with pytest.raises(BadRequest):
            accounts.create_token(s, "alice", "admin")
        with pytest.raises(BadRequest):  # longer than the column: refused the same way by both databases
            accounts.create_token(s, "alice", name="t" * 200)
        with pytest.raises(BadRequest):
            accounts.create_user(s, "erin", fullname="f" * 300)
        assert accounts.get_account(s, "nul\x00") is None  # PostgreSQL refuses NUL in text: still just "not found"

    with db.transaction() as s:
        bob = accounts.authenticate(s, tokens["bob"])
        acme = accounts.get_account(s, "acme")
        assert acme is not None and acme.fullname == "ACME Inc." and acme.kind == "org"
        assert (bob.name, bob.token_role, bob.is_admin, bob.org_roles) == ("bob", "write", False, {acme.id: "write"})
        assert accounts.authenticate(s, tokens["bob-read"]).token_role == "read"
        assert accounts.authenticate(s, None) is ANONYMOUS
        for wrong in ("hf_nope", tokens["bob"].upper(), tokens["bob"] + "\x00"):
            with pytest.raises(Unauthorized):
                accounts.authenticate(s, wrong)
        me = accounts.whoami(s, bob, tokens["bob"], "http://hub")
        assert me["name"] == "bob" and me["email"] == "bob@example.com"
        assert me["avatarUrl"] == "http://hub/avatars/bob.svg"
        assert me["orgs"] == [
            {"type": "org", "name": "acme", "fullname": "ACME Inc.", "roleInOrg": "write", "id": f"{acme.id:024x}",
             "avatarUrl": "http://hub/avatars/acme.svg"}
        ]  # fmt: skip
        assert me["auth"]["accessToken"]["role"] == "write"  # type: ignore[index]

    with db.transaction() as s:  # timestamps come back naive UTC, on both
        tok = s.scalar(select(Token).join(Token.user).where(Account.name == "bob", Token.role == "write"))
        assert tok is not None and tok.last_used_at is not None and tok.last_used_at.tzinfo is None
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        assert abs((now - tok.last_used_at).total_seconds()) < 60
        assert tok.created_at <= tok.last_used_at
        assert len(tok.token_hash) == 64 and tokens["bob"] not in tok.token_hash


def test_repo_permissions(ctx: HubContext) -> None:
    tokens = _people(ctx.db)
    with ctx.db.transaction() as s:
        who = {name: accounts.authenticate(s, tok) for name, tok in tokens.items()}
        alice, bob, carol, dave, bob_read = (who[n] for n in ("alice", "bob", "carol", "dave", "bob-read"))
        repos.create_repo(ctx, s, bob, "model", "Secret", "acme", private=True)
        repos.create_repo(ctx, s, alice, "dataset", "open.data", None)
        repos.create_repo(ctx, s, dave, "space", "demo_1", None, sdk="static")
        with pytest.raises(Conflict):  # repo names are unique case-insensitively per owner and type
            repos.create_repo(ctx, s, alice, "model", "secret", "acme")
        with pytest.raises(Forbidden):
            repos.create_repo(ctx, s, carol, "model", "nope", "acme")
        with pytest.raises(Forbidden):
            repos.create_repo(ctx, s, bob_read, "model", "nope", None)
        with pytest.raises(Unauthorized):
            repos.create_repo(ctx, s, ANONYMOUS, "model", "nope", None)

    with ctx.db.transaction() as s:
        full = "acme/Secret"

        def check(p: Principal, need: str) -> None:
            accounts.check_repo_access(p, repos.find_repo(s, "model", full), need)

        for p in (ANONYMOUS, dave):
            with pytest.raises(RepoNotFound):  # a private repo you may not read does not exist for you
                check(p, "read")
        check(carol, "read")
        with pytest.raises(Forbidden):
            check(carol, "write")
        check(bob, "write")
        with pytest.raises(Forbidden):
            check(bob, "admin")
        with pytest.raises(Forbidden):  # a read token cannot write, whatever the role
            check(bob_read, "write")
        check(alice, "admin")
        pub = repos.find_repo(s, "dataset", "alice/open.data")
        accounts.check_repo_access(ANONYMOUS, pub, "read")
        with pytest.raises(Unauthorized):
            accounts.check_repo_access(ANONYMOUS, pub, "write")
        with pytest.raises(Forbidden):
            accounts.check_repo_access(dave, pub, "write")
        assert repos.find_repo(s, "model", "acme/Secret\x00") is None
        assert repos.find_repo(s, "model", "ACME/secret") is repos.find_repo(s, "model", full)  # any case, both DBs
        assert repos.find_repo(s, "model", "acme/secr\u212at") is None  # non-ASCII never folds into a name

    with ctx.db.transaction() as s:

        def names(p: Principal, repo_type: str = "model", search: str | None = None, **kw: Any) -> list[str]:
            query = listing.ListQuery(repo_type, search=[search] if search is not None else [], **kw)
            items, _ = listing.list_repos(ctx, s, p, query, base_url="http://hub")
            return [str(i["id"]) for i in items]

        assert names(ANONYMOUS) == [] and names(dave) == [] and names(carol) == [full]
        assert names(bob, search="SECR") == [full]  # search is case-insensitive
        assert names(bob, author="acme") == [full] and names(bob, author="ACME") == []
        assert names(dave, "space", search="demo_1") == ["dave/demo_1"]  # '_' is a character, not a wildcard
        assert names(dave, "space", search="demo%") == names(dave, "space", search="dem__") == []
        for odd in ("\\", "100%", "a'b", "\x00", "ü"):
            assert names(dave, "space", search=odd) == []
            assert names(dave, "space", author=odd) == []

    with ctx.db.transaction() as s:
        moved = repos.move_repo(ctx, s, alice, "model", full, "alice/renamed")
        assert moved.full_name == "alice/renamed"
        assert repos.find_repo(s, "model", full) is moved  # the old name redirects
        repos.delete_repo(ctx, s, alice, "model", "alice/renamed")
        repos.delete_repo(ctx, s, dave, "space", "dave/demo_1")
        assert s.scalars(select(RepoRedirect)).all() == []  # the redirect went with the repo (ON DELETE CASCADE)
        assert [r.full_name for r in s.scalars(select(Repo))] == ["alice/open.data"]


def test_large_lfs_objects(db: Database) -> None:
    """LFS objects can be larger than 2 GiB (a 32-bit column would overflow on PostgreSQL)."""
    big = 5 * 1024**3 + 7
    with db.transaction() as s:
        s.add(LfsObject(sha256="a" * 64, size=big, git_sha1="b" * 40))
    with db.transaction() as s:
        obj = s.get(LfsObject, "a" * 64)
        assert obj is not None and obj.size == big


# ---- end to end -----------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_server_on_postgresql(postgres_url: str, start_hub: Callable[..., Any], tmp_path: Path) -> None:
    """A live server and the CLI on PostgreSQL (SPACEHUB_DB__URL), driven by the real huggingface_hub client."""
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import RepositoryNotFoundError

    srv = start_hub({"SPACEHUB_DB__URL": postgres_url})
    token = srv.user("pgalice")
    srv.cli("orgs", "create", "pgorg")
    srv.cli("orgs", "add-member", "pgorg", "pgalice", "--role", "admin")
    api = HfApi(endpoint=srv.url, token=token)
    me = api.whoami()
    assert me["name"] == "pgalice" and [o["name"] for o in me["orgs"]] == ["pgorg"]

    repo_id = "pgorg/Pg-Model"
    api.create_repo(repo_id, private=True)
    src = tmp_path / "weights.bin"
    src.write_bytes(bytes(range(256)) * 64)
    api.upload_file(path_or_fileobj=str(src), path_in_repo="dir/weights.bin", repo_id=repo_id)
    api.upload_file(path_or_fileobj=b"# hello\n", path_in_repo="README.md", repo_id=repo_id)
    got = hf_hub_download(repo_id, "dir/weights.bin", endpoint=srv.url, token=token, cache_dir=tmp_path / "c")
    assert Path(got).read_bytes() == src.read_bytes()
    assert sorted(api.list_repo_files(repo_id)) == [".gitattributes", "README.md", "dir/weights.bin"]
    (weights,) = [f for f in api.list_repo_tree(repo_id, "dir") if f.path == "dir/weights.bin"]
    assert weights.lfs is not None and weights.lfs.size == src.stat().st_size  # *.bin went through LFS
    assert [m.id for m in api.list_models(author="pgorg")] == [repo_id]
    assert [m.id for m in api.list_models(search="pg-mod")] == [repo_id]
    assert list(HfApi(endpoint=srv.url, token=False).list_models(author="pgorg")) == []

    api.delete_repo(repo_id)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(repo_id)
    assert list(api.list_models(author="pgorg")) == []

    # it really was PostgreSQL: the accounts are there, and the data folder holds no SQLite file
    database = Database(postgres_url)
    with database.transaction() as s:
        assert set(s.scalars(select(Account.name))) == {"pgalice", "pgorg"}
        assert s.get(LfsObject, weights.lfs.sha256) is not None
    database.engine.dispose()
    assert not list(srv.data_dir.glob("*.db"))
