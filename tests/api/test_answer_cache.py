"""Kept answers (api/answer_cache.py): ``get_space_runtime``, ``space_info`` and ``whoami`` asked again are answered
from the Hub's last answer, and every change to what an answer shows is in the next one, whichever process made it.

The real `huggingface_hub` client on the Hub app in-process (tests/inprocess.py); a change "by another process" is
made through a second `Database` on the same file, as the controller, an HTTP worker or the ``spacehub`` command
line would (its own engine, its own caches).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from spacehub.api import answer_cache
from spacehub.api.answer_cache import AnswerCache
from spacehub.services import accounts, repos
from spacehub.storage.db import Database, utcnow
from spacehub.storage.git import Change
from spacehub.storage.models import SpaceStatus, SpaceStorage, Token
from tests.inprocess import InProcessHub


def cache_of(hub: InProcessHub) -> AnswerCache:
    node: Any = hub.http.app.middleware_stack  # type: ignore[attr-defined]
    while not isinstance(node, AnswerCache):
        node = node.app
    return node


def served(hub: InProcessHub, read: Callable[[], Any]) -> tuple[Any, bool]:
    """What ``read`` got, and whether it came from a kept answer."""
    cache = cache_of(hub)
    before = cache.served
    got = read()
    return got, cache.served > before


def kept(hub: InProcessHub, read: Callable[[], Any]) -> Any:
    """Ask until the answer is served from the cache (the first asking fills it); what it then answers."""
    for _ in range(3):
        got, hit = served(hub, read)
        if hit:
            return got
    raise AssertionError("the read was never answered from a kept answer")


def other_process(hub: InProcessHub) -> Database:
    """The same database as another process opens it: its own engine, its own caches."""
    return Database(hub.ctx.settings.database_url)


@pytest.fixture
def space(hub: InProcessHub, api: HfApi, unique: str) -> str:
    repo_id = f"alice/kept-{unique}"
    api.create_repo(repo_id, repo_type="space", space_sdk="gradio")
    return repo_id


def test_the_three_reads_asked_again_are_answered_from_the_kept_answer(hub: InProcessHub, api: HfApi,
                                                                       space: str) -> None:  # fmt: skip
    headers = {"authorization": f"Bearer {hub.tokens['alice']}"}
    for path in (f"/api/spaces/{space}/runtime", f"/api/spaces/{space}", "/api/whoami-v2"):
        first = hub.http.get(path, headers=headers)
        assert first.status_code == 200
        again = kept(hub, lambda p=path: hub.http.get(p, headers=headers))
        assert again.content == first.content
        assert again.headers["content-type"] == first.headers["content-type"]
        assert again.headers["x-request-id"] != first.headers["x-request-id"]  # each answer still named anew
    runtime, hit = served(hub, lambda: api.get_space_runtime(space))
    assert hit and runtime.stage in ("BUILDING", "NO_APP_FILE", "RUNNING", "APP_STARTING")
    info, hit = served(hub, lambda: api.space_info(space))
    assert hit and info.id == space
    me, hit = served(hub, api.whoami)
    assert hit and me["name"] == "alice"


def test_every_change_to_a_space_is_in_the_next_answer(hub: InProcessHub, api: HfApi, space: str) -> None:
    kept(hub, lambda: api.get_space_runtime(space))
    api.pause_space(space)
    assert api.get_space_runtime(space).stage == "PAUSED"

    kept(hub, lambda: api.get_space_runtime(space))
    api.restart_space(space)
    assert api.get_space_runtime(space).stage != "PAUSED"

    before = kept(hub, lambda: api.space_info(space))
    api.upload_file(path_or_fileobj=b"print('hi')\n", path_in_repo="app.py", repo_id=space, repo_type="space")
    after = api.space_info(space)
    assert after.sha != before.sha and "app.py" in {s.rfilename for s in after.siblings or []}

    kept(hub, lambda: api.space_info(space))
    api.upload_file(path_or_fileobj=b"---\ntitle: Renamed card\nsdk: gradio\n---\n", path_in_repo="README.md",
                    repo_id=space, repo_type="space")  # fmt: skip
    assert api.space_info(space).card_data.title == "Renamed card"

    assert kept(hub, lambda: api.space_info(space)).likes == 0
    fan = hub.user("kept-answers-fan")  # not bob: tests/api/test_likes.py counts every like bob has in the session
    hub.http.post(f"/api/spaces/{space}/like", headers={"authorization": f"Bearer {fan}"}).raise_for_status()
    assert api.space_info(space).likes == 1


def test_a_space_made_private_is_closed_to_a_kept_anonymous_answer(hub: InProcessHub, api: HfApi,
                                                                    space: str) -> None:  # fmt: skip
    anonymous = hub.api(None)
    kept(hub, lambda: anonymous.space_info(space))
    kept(hub, lambda: anonymous.get_space_runtime(space))
    api.update_repo_settings(space, private=True, repo_type="space")
    with pytest.raises(RepositoryNotFoundError):
        anonymous.space_info(space)
    with pytest.raises(RepositoryNotFoundError):
        anonymous.get_space_runtime(space)
    assert api.space_info(space).private is True


def test_a_moved_space_is_not_answered_at_its_old_name(hub: InProcessHub, api: HfApi, space: str) -> None:
    before = kept(hub, lambda: api.get_space_runtime(space)).raw["domains"]
    new = space + "-moved"
    api.move_repo(space, new, repo_type="space")
    moved = api.get_space_runtime(new).raw["domains"]
    assert moved != before
    assert api.get_space_runtime(space).raw["domains"] == moved  # the old name leads to the moved Space


def test_a_change_another_process_commits_is_in_the_next_answer(hub: InProcessHub, api: HfApi, space: str) -> None:
    """The controller writes a Space's status in its own process; the HTTP side must not answer the older one."""
    kept(hub, lambda: api.get_space_runtime(space))
    db = other_process(hub)
    try:
        with db.transaction() as s:
            repo = repos.find_repo(s, "space", space)
            assert repo is not None
            row = s.get(SpaceStatus, repo.id) or SpaceStatus(repo_id=repo.id, stage="BUILDING")
            row.stage, row.error_message, row.updated_at = "RUNTIME_ERROR", "exit code 3 (kept-answer test)", utcnow()
            s.add(row)
        runtime = api.get_space_runtime(space)
        assert runtime.stage == "RUNTIME_ERROR" and runtime.raw["errorMessage"] == "exit code 3 (kept-answer test)"
    finally:
        db.engine.dispose()


def test_whoami_follows_memberships_and_a_revoked_token(hub: InProcessHub, unique: str) -> None:
    tag = unique.replace("-", "")[-10:]
    name, org = f"who{tag}", f"org{tag}"
    token = hub.user(name)
    me = hub.api(token)
    assert kept(hub, me.whoami)["orgs"] == []
    hub.cli("orgs", "create", org)
    hub.cli("orgs", "add-member", org, name, "--role", "write")  # the command line: another engine
    assert [o["name"] for o in me.whoami()["orgs"]] == [org]

    kept(hub, me.whoami)
    db = other_process(hub)
    try:
        with db.transaction() as s:
            s.delete(s.scalars(select(Token).where(Token.token_hash == accounts.hash_token(token))).one())
    finally:
        db.engine.dispose()
    with pytest.raises(HfHubHTTPError) as e:
        me.whoami()
    assert e.value.response.status_code == 401


def test_only_a_plain_get_that_succeeded_is_kept(hub: InProcessHub, api: HfApi, space: str) -> None:
    headers = {"authorization": f"Bearer {hub.tokens['alice']}"}
    kept(hub, lambda: hub.http.get(f"/api/spaces/{space}", headers=headers))
    with_query, hit = served(hub, lambda: hub.http.get(f"/api/spaces/{space}?blobs=true", headers=headers))
    assert with_query.status_code == 200 and not hit
    for _ in range(2):
        missing, hit = served(hub, lambda: hub.http.get(f"/api/spaces/{space}-none/runtime", headers=headers))
        assert missing.status_code == 404 and not hit
        bad, hit = served(hub, lambda: hub.http.get("/api/whoami-v2", headers={"authorization": "Bearer hf_nope"}))
        assert bad.status_code == 401 and not hit


def test_a_space_whose_answers_show_other_repos_is_not_kept(hub: InProcessHub, api: HfApi, space: str) -> None:
    """Volumes name other repos, masked by whether the caller may read them: their changes are theirs."""
    with hub.ctx.db.transaction() as s:
        repo = repos.find_repo(s, "space", space)
        assert repo is not None
        s.add(SpaceStorage(repo_id=repo.id, volumes='[{"type": "dataset", "repoId": "x", "mountPath": "/d"}]'))
    for _ in range(3):
        got, hit = served(hub, lambda: api.get_space_runtime(space))
        assert not hit
    assert got.raw["volumes"] is not None


def test_a_branch_moved_without_its_transaction_is_in_the_next_info(hub: InProcessHub, api: HfApi,
                                                                     space: str) -> None:  # fmt: skip
    """A commit whose ref moved but whose transaction never committed (a crash between the two) changes no
    generation: ``space_info`` still answers the files ``main`` points at."""
    before = kept(hub, lambda: api.space_info(space))
    with hub.ctx.db.transaction() as s:
        repo = repos.find_repo(s, "space", space)
        assert repo is not None
        repo_id = repo.id
    git = hub.ctx.git
    blob = git.write_blob(repo_id, b"written behind the Hub's back\n")
    sha = git.commit(repo_id, "refs/heads/main", before.sha, [Change("behind.txt", blob)], "behind", "x", "x@x")
    after = api.space_info(space)
    assert after.sha == sha and "behind.txt" in {s.rfilename for s in after.siblings or []}


def test_when_the_mark_cannot_be_read_the_app_answers(hub: InProcessHub, api: HfApi, space: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    kept(hub, lambda: api.get_space_runtime(space))

    def away(*_: object) -> None:
        raise OperationalError("SELECT", {}, Exception("the database is away"))

    monkeypatch.setattr(hub.ctx.db, "peek", away)
    runtime, hit = served(hub, lambda: api.get_space_runtime(space))
    assert not hit and runtime.raw["domains"]


def test_a_token_due_for_its_last_used_at_is_still_answered_and_written_once(
    hub: InProcessHub, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a minute a token's ``last_used_at`` is due: every kept read of it used to go to the app at once (64
    connections: 64 reads of the token and 64 writes, a stall of 100-500 ms). Now the kept answers go on, and one
    thread writes it."""
    token = hub.user(f"due{unique.replace('-', '')[-10:]}")
    me = hub.api(token)
    kept(hub, me.whoami)
    later = utcnow() + accounts.TOUCH_EVERY + dt.timedelta(seconds=5)
    monkeypatch.setattr(accounts, "utcnow", lambda: later)
    for _ in range(5):
        _, hit = served(hub, me.whoami)
        assert hit
    deadline = time.monotonic() + 10
    while True:
        with hub.ctx.db.transaction() as s:
            used = s.scalar(select(Token.last_used_at).where(Token.token_hash == accounts.hash_token(token)))
        if used == later:
            break
        assert time.monotonic() < deadline, f"last_used_at is {used}, not {later}"
        time.sleep(0.05)
    assert not accounts.last_used_due(hub.ctx.db.engine)


def test_a_full_store_lets_its_oldest_answer_go_and_keeps_the_others(
    hub: InProcessHub, space: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With more reads than it keeps, the store drops the oldest answer, not all of them: a poller of more Spaces
    than ``LIMIT`` once emptied it at every turn, and every other caller's reads went to the app again."""
    monkeypatch.setattr(answer_cache, "LIMIT", 2)
    headers = {"authorization": f"Bearer {hub.tokens['alice']}"}
    runtime, info = f"/api/spaces/{space}/runtime", f"/api/spaces/{space}"
    kept(hub, lambda: hub.http.get(runtime, headers=headers))
    kept(hub, lambda: hub.http.get(info, headers=headers))
    kept(hub, lambda: hub.http.get("/api/whoami-v2", headers=headers))  # a third: the runtime's answer goes
    assert len(cache_of(hub).kept) == 2
    _, hit = served(hub, lambda: hub.http.get(info, headers=headers))
    assert hit  # still kept
    _, hit = served(hub, lambda: hub.http.get(runtime, headers=headers))
    assert not hit  # the oldest went (and is kept again now, in place of the info)


def test_requests_the_loop_starts_in_one_turn_share_a_mark_read_and_later_ones_read_again(hub: InProcessHub) -> None:
    """The mark read for one request serves the others the loop starts in the same turn (their bytes were all
    received before it began), and no request started after it: the next turn reads again."""
    marks: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"made"})

    async def call(cache: AnswerCache) -> None:
        scope = {"type": "http", "method": "GET", "path": "/api/whoami-v2", "query_string": b"", "scheme": "http",
                 "headers": [(b"host", b"hub"), (b"authorization", b"Bearer hf_x")]}  # fmt: skip

        async def send(message: Any) -> None:
            pass

        await cache(scope, None, send)  # type: ignore[arg-type]

    async def main() -> list[int]:
        cache = AnswerCache(app, hub.ctx)

        def mark(read: Any, token: Any) -> tuple[Any, ...]:
            marks.append(len(marks))
            return (len(marks),)

        cache._mark = mark  # type: ignore[method-assign]
        await asyncio.gather(*(call(cache) for _ in range(8)))  # eight started in one turn
        first = cache.reads
        await asyncio.sleep(0)
        await call(cache)  # a later turn
        await asyncio.gather(*(call(cache) for _ in range(3)))
        return [first, cache.reads, cache.served]

    first, reads, hits = asyncio.run(main())
    assert first == 1  # one read for the eight
    assert reads == 3  # one for the lone request, one for the three started together
    assert hits == 7 + 2  # the first request of each turn was made by the app (each turn read a new mark here)
