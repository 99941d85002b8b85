"""Webhooks through the real client (2.4.0: `create_webhook`, `list_webhooks`, `get_webhook`, `update_webhook`,
`enable_webhook`, `disable_webhook`, `delete_webhook`) on the Hub app in-process (tests/inprocess.py), delivering to
a real HTTP receiver on loopback (tests/webhook_receiver.py): every Hub scope with its payload, the secret header,
retries with backoff and the delivery log, and the private-address rule. The Space runtime events need a runtime:
tests/e2e/test_webhooks_runtime.py; the `hf webhooks` CLI: tests/compat/test_hf_webhooks.py."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import CommitOperationAdd, WebhookPayload, WebhookWatchedItem
from huggingface_hub.errors import BadRequestError, HfHubHTTPError

from tests.inprocess import InProcessHub, start_inprocess_hub, stop_inprocess_hub
from tests.webhook_receiver import Receiver, receiver

FAST = {"allow_private_addresses": True, "retry_base_seconds": 0.3, "max_attempts": 3, "timeout_seconds": 5}


@pytest.fixture(scope="module")
def whub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessHub]:
    """An in-process hub whose webhooks may post to loopback, with fast retries."""
    h = start_inprocess_hub(tmp_path_factory.mktemp("webhooks") / "data", {"webhooks": FAST})
    yield h
    stop_inprocess_hub(h)


@pytest.fixture(scope="module")
def rec() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def status_of(e: pytest.ExceptionInfo[BaseException]) -> int:
    return e.value.response.status_code  # type: ignore[attr-defined]


def deliveries(hub: InProcessHub, token: str, webhook_id: str) -> list[dict[str, Any]]:
    r = hub.http.get(
        f"{hub.url}/api/settings/webhooks/{webhook_id}/deliveries", headers={"authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_create_list_get_update_enable_disable_delete(whub: InProcessHub, rec: Receiver) -> None:
    alice, bob = whub.user("alice"), whub.user("bob")
    a, b = whub.api(alice), whub.api(bob)
    a.create_repo("alice/crud-model")
    hook = a.create_webhook(
        url=rec.url + "/crud",
        watched=[WebhookWatchedItem(type="user", name="alice"), {"type": "model", "name": "alice/crud-model"}],
        domains=["repo"],
        secret="crud-secret-1",
    )
    assert hook.url == rec.url + "/crud" and hook.domains == ["repo"] and hook.disabled is False
    assert [(w.type, w.name) for w in hook.watched] == [("user", "alice"), ("model", "alice/crud-model")]
    assert hook.secret is None and hook.job is None  # the secret is write-only: never answered
    raw = whub.http.get(f"{whub.url}/api/settings/webhooks/{hook.id}", headers={"authorization": f"Bearer {alice}"})
    assert "crud-secret-1" not in raw.text and raw.json()["webhook"]["hasSecret"] is True
    assert [w.id for w in a.list_webhooks()] == [hook.id]
    assert a.get_webhook(hook.id) == hook

    # update: only what is given changes (2.4.0 sends "watched": [] when it is not given: the list is kept)
    moved = a.update_webhook(hook.id, url=rec.url + "/crud2", domains=["repo", "discussion"])
    assert moved.url == rec.url + "/crud2" and moved.domains == ["repo", "discussion"]
    assert [(w.type, w.name) for w in moved.watched] == [("user", "alice"), ("model", "alice/crud-model")]
    rewatched = a.update_webhook(hook.id, watched=[WebhookWatchedItem(type="model", name="alice/crud-model")])
    assert [(w.type, w.name) for w in rewatched.watched] == [("model", "alice/crud-model")]
    assert a.disable_webhook(hook.id).disabled is True
    assert a.get_webhook(hook.id).disabled is True
    assert a.enable_webhook(hook.id).disabled is False

    # someone else's webhook does not exist for you; anonymous callers and read tokens are refused
    with pytest.raises(HfHubHTTPError) as e:
        b.get_webhook(hook.id)
    assert status_of(e) == 404
    with pytest.raises(HfHubHTTPError) as e:
        b.delete_webhook(hook.id)
    assert status_of(e) == 404
    assert b.list_webhooks() == []
    with pytest.raises(HfHubHTTPError) as e:
        whub.api(None).list_webhooks()
    assert status_of(e) == 401
    with pytest.raises(HfHubHTTPError) as e:
        whub.api(whub.user("alice", "read")).create_webhook(url=rec.url, watched=[{"type": "user", "name": "alice"}])
    assert status_of(e) == 403

    a.delete_webhook(hook.id)
    with pytest.raises(HfHubHTTPError) as e:
        a.get_webhook(hook.id)
    assert status_of(e) == 404
    assert a.list_webhooks() == []


@pytest.mark.parametrize(
    ("kwargs", "status", "text"),
    [
        ({"watched": [{"type": "bucket", "name": "alice/b"}]}, 400, "Buckets are not supported"),
        ({"watched": [{"type": "user", "name": "nobody-at-all"}]}, 400, "not found"),
        ({"watched": [{"type": "org", "name": "alice"}]}, 400, "not found"),  # a user, not an org
        ({"watched": [{"type": "model", "name": "alice/missing"}]}, 400, "not found"),
        ({"watched": []}, 400, "non-empty"),
        ({"domains": ["repo", "everything"]}, 400, "domains"),
        ({"url": "ftp://example.com/hook"}, 400, "http or https"),
        ({"url": "http:///nohost"}, 400, "http or https"),
        ({"secret": "caf\u00e9"}, 400, "ASCII"),
        ({"url": None, "job_id": "687f911eaea852de79c4a50a"}, 400, "Job"),
    ],
)
def test_bad_webhooks_are_clear_4xx(
    whub: InProcessHub, rec: Receiver, kwargs: dict[str, Any], status: int, text: str
) -> None:
    a = whub.api(whub.user("alice"))
    args: dict[str, Any] = {"url": rec.url + "/bad", "watched": [{"type": "user", "name": "alice"}], **kwargs}
    with pytest.raises(HfHubHTTPError) as e:
        a.create_webhook(**args)
    assert status_of(e) == status, e.value
    assert text in str(e.value)
    if status == 400:
        assert isinstance(e.value, BadRequestError)
    assert a.list_webhooks() == [] or all(w.url != rec.url + "/bad" for w in a.list_webhooks())


def test_private_addresses_are_refused_by_default(hub: InProcessHub, rec: Receiver) -> None:
    """The default rule (``webhooks.allow_private_addresses`` off): SpaceHub never posts to loopback, private or
    link-local addresses, whether the URL names one or a host name resolves to one."""
    alice = hub.user("alice")
    a = hub.api(alice)
    a.create_repo("alice/guarded")
    for url in (
        rec.url + "/x",
        "http://localhost:8000/api/whoami-v2",
        "http://[::1]:8000/",
        "http://[::ffff:127.0.0.1]:8000/",
        "http://10.1.2.3/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0:8000/",
    ):
        with pytest.raises(BadRequestError) as e:
            a.create_webhook(url=url, watched=[{"type": "user", "name": "alice"}])
        assert "webhooks.allow_private_addresses" in str(e.value), url
    # "127.1" is no IP literal to a URL parser, but resolves to 127.0.0.1: caught when delivering, never posted
    port = rec.url.rsplit(":", 1)[1]
    sneaky = a.create_webhook(url=f"http://127.1:{port}/sneaky", watched=[{"type": "model", "name": "alice/guarded"}])
    a.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="alice/guarded")
    deadline = time.monotonic() + 20
    while not (log := deliveries(hub, alice, sneaky.id)) or log[0]["attempts"] == 0:
        assert time.monotonic() < deadline, log
        time.sleep(0.05)
    assert "not a public address" in log[0]["lastError"] and log[0]["lastStatus"] is None, log[0]
    assert rec.at("/sneaky") == []
    a.delete_webhook(sneaky.id)


def by_scope(got: list[Any]) -> Counter[tuple[str, str]]:
    return Counter((d.scope, d.action) for d in got)


def test_every_scope_is_delivered_with_the_hubs_payload(whub: InProcessHub, rec: Receiver, tmp_path: Path) -> None:
    alice, bob = whub.user("alice"), whub.user("bob")
    a, b = whub.api(alice), whub.api(bob)
    model, space, private = "alice/wh-model", "alice/wh-space", "alice/wh-private"
    a.create_repo(model)  # before the webhooks: not announced to them
    every = a.create_webhook(url=rec.url + "/all", watched=[{"type": "user", "name": "alice"}], secret="hunter2-hook")
    talk = a.create_webhook(url=rec.url + "/talk", watched=[{"type": "model", "name": model}], domains=["discussion"])
    nosy = b.create_webhook(url=rec.url + "/nosy", watched=[{"type": "user", "name": "alice"}])

    # repo.content: a commit, a branch, a tag, a deleted branch
    before = a.model_info(model).sha
    commit = a.upload_file(path_or_fileobj=b"hello", path_in_repo="hello.txt", repo_id=model)
    a.create_branch(model, branch="dev")
    a.create_tag(model, tag="v1")
    a.delete_branch(model, branch="dev")
    # repo.config: visibility, and a Space's settings
    a.update_repo_settings(model, private=True)
    a.update_repo_settings(model, private=False)
    a.create_repo(space, repo_type="space", space_sdk="static")
    a.add_space_secret(space, "TOKEN", "shh")
    a.restart_space(space)  # an action, not a change of settings: no event
    # discussion and discussion.comment: bob opens, alice answers, edits, renames, closes
    question = b.create_discussion(model, title="A question", description="What is this?")
    num = question.num
    c = a.comment_discussion(model, num, "An answer")
    a.edit_discussion_comment(model, num, c.id, "A better answer")
    a.rename_discussion(model, num, "A good question")
    a.change_discussion_status(model, num, "closed")
    # a pull request by bob, merged by alice
    pr = b.create_commit(model, [CommitOperationAdd("bob.txt", b"bob")], commit_message="Add bob.txt", create_pr=True)
    a.merge_pull_request(model, pr.pr_num)
    merge_sha = a.model_info(model).sha
    # a private repo of alice's: bob's webhook must hear nothing of it
    a.create_repo(private, private=True)
    a.upload_file(path_or_fileobj=b"secret", path_in_repo="s.txt", repo_id=private)
    # repo: move and delete
    a.move_repo(model, "alice/wh-moved")
    a.delete_repo("alice/wh-moved")

    expected = Counter(
        {
            ("repo", "create"): 2,  # the Space and the private repo
            # commit, branch, tag, deleted branch, refs/pr/2, its commit, the merge, the private repo's commit
            ("repo.content", "update"): 8,
            ("repo.config", "update"): 3,  # private, public, the Space's secret
            ("discussion", "create"): 2,  # the discussion and the pull request, each with its first comment
            ("discussion.comment", "create"): 1,
            ("discussion.comment", "update"): 1,
            ("discussion", "update"): 3,  # renamed, closed, merged
            ("repo", "move"): 1,
            ("repo", "delete"): 1,
        }
    )
    got = rec.wait_for("/all", lambda g: by_scope(g) == expected, what="every scope")
    for d in got:
        payload = WebhookPayload(**d.body)  # the client's own model parses each one
        assert payload.webhook.id == every.id and payload.webhook.version == 3
        assert d.headers["x-webhook-secret"] == "hunter2-hook"
        assert d.headers["content-type"] == "application/json"

    def find(scope: str, pred: Any = lambda d: True) -> list[Any]:
        return [d for d in got if d.scope == scope and pred(d)]

    main = find("repo.content", lambda d: d.body["updatedRefs"][0]["ref"] == "refs/heads/main")
    first = next(d for d in main if d.body["updatedRefs"][0]["newSha"] == commit.oid)
    assert first.body["updatedRefs"] == [{"ref": "refs/heads/main", "oldSha": before, "newSha": commit.oid}]
    assert first.body["repo"]["name"] == model and first.body["repo"]["type"] == "model"
    assert first.body["repo"]["url"]["api"].endswith(f"/api/models/{model}") and "headSha" in first.body["repo"]
    refs = {
        (u["ref"], u["oldSha"] is None, u["newSha"] is None)
        for d in find("repo.content")
        for u in d.body["updatedRefs"]
    }
    assert {("refs/heads/dev", True, False), ("refs/tags/v1", True, False), ("refs/heads/dev", False, True),
            ("refs/pr/2", True, False), ("refs/pr/2", False, False)} <= refs  # fmt: skip
    configs = [d.body["updatedConfig"] for d in find("repo.config")]
    assert sorted(map(str, configs)) == sorted(map(str, [{"private": True}, {"private": False}, {}]))
    assert find("repo.config", lambda d: d.body["repo"]["name"] == space)[0].body["repo"]["subdomain"]
    opened = find("discussion", lambda d: d.action == "create" and not d.body["discussion"]["isPullRequest"])[0]
    assert opened.body["discussion"]["num"] == num and opened.body["discussion"]["title"] == "A question"
    assert opened.body["comment"]["content"] == "What is this?" and opened.body["comment"]["hidden"] is False
    assert opened.body["discussion"]["url"]["web"].endswith(f"/{model}/discussions/{num}")
    assert "headSha" not in opened.body["repo"]  # only on repo scopes, as on the Hub
    edited = find("discussion.comment", lambda d: d.action == "update")[0]
    assert edited.body["comment"]["content"] == "A better answer" and edited.body["comment"]["id"] == c.id
    merged = find("discussion", lambda d: d.body["discussion"]["status"] == "merged")[0]
    assert merged.body["discussion"]["changes"]["base"] == "refs/heads/main"
    assert merged.body["discussion"]["changes"]["mergeCommitId"] == merge_sha
    moved = find("repo", lambda d: d.action == "move")[0]
    assert moved.body["repo"]["name"] == model and moved.body["movedTo"]["name"] == "alice/wh-moved"
    assert find("repo", lambda d: d.action == "delete")[0].body["repo"]["name"] == "alice/wh-moved"

    # the discussion-only webhook watching the model: its discussion events only, without the secret header
    talk_got = rec.wait_for("/talk", lambda g: len(g) == 7, what="discussion webhook")
    assert {d.scope for d in talk_got} == {"discussion", "discussion.comment"}
    assert all("x-webhook-secret" not in d.headers and d.body["webhook"]["id"] == talk.id for d in talk_got)
    # bob watches alice too, but may not read her private repo: never told of it
    nosy_got = rec.wait_for("/nosy", lambda g: by_scope(g)[("repo", "delete")] == 1, what="bob's webhook")
    assert all(d.body["repo"]["name"] != private for d in nosy_got)
    assert any(d.body["repo"]["name"] == model for d in nosy_got)
    for w, token in ((every, alice), (talk, alice), (nosy, bob)):
        whub.api(token).delete_webhook(w.id)


def test_a_failing_receiver_is_retried_with_backoff_and_the_log_shows_it(whub: InProcessHub, rec: Receiver) -> None:
    alice = whub.user("alice")
    a = whub.api(alice)
    a.create_repo("alice/flaky-target")
    rec.fail["/flaky"] = 2
    rec.always_fail.add("/down")
    flaky = a.create_webhook(url=rec.url + "/flaky", watched=[{"type": "model", "name": "alice/flaky-target"}])
    down = a.create_webhook(url=rec.url + "/down", watched=[{"type": "model", "name": "alice/flaky-target"}])
    a.upload_file(path_or_fileobj=b"1", path_in_repo="one.txt", repo_id="alice/flaky-target")

    got = rec.wait_for("/flaky", lambda g: len(g) == 3, what="three attempts")
    assert got[0].body == got[2].body  # the same payload each time
    deadline = time.monotonic() + 20
    while deliveries(whub, alice, flaky.id)[0]["state"] != "delivered":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    [log] = deliveries(whub, alice, flaky.id)
    assert (log["state"], log["attempts"], log["lastStatus"], log["lastError"]) == ("delivered", 3, 200, None)
    assert [x["status"] for x in log["log"]] == [500, 500, 200]
    assert [x["error"] for x in log["log"]] == ["HTTP 500", "HTTP 500", None]
    assert log["scope"] == "repo.content" and log["payload"]["webhook"]["id"] == flaky.id

    rec.wait_for("/down", lambda g: len(g) == 3, what="the failing receiver")
    deadline = time.monotonic() + 20
    while deliveries(whub, alice, down.id)[0]["state"] != "failed":
        assert time.monotonic() < deadline, deliveries(whub, alice, down.id)
        time.sleep(0.05)
    [log] = deliveries(whub, alice, down.id)
    assert log["attempts"] == 3 and [x["status"] for x in log["log"]] == [500, 500, 500]
    assert log["nextAttemptAt"] is None
    # backoff: 0.3 s, then 0.6 s between attempts (retry_base_seconds 0.3, doubling)
    at = [dt.datetime.strptime(x["at"], "%Y-%m-%dT%H:%M:%S.%fZ") for x in log["log"]]
    gaps = [(y - x).total_seconds() for x, y in itertools.pairwise(at)]
    assert gaps[0] >= 0.29 and gaps[1] >= 0.59, gaps
    time.sleep(0.5)
    assert len(rec.at("/down")) == 3  # given up: no fourth attempt

    # a disabled webhook is sent nothing
    a.disable_webhook(flaky.id)
    a.upload_file(path_or_fileobj=b"2", path_in_repo="two.txt", repo_id="alice/flaky-target")
    rec.wait_for("/down", lambda g: len(g) == 4, what="the other webhook still hears")
    time.sleep(0.3)
    assert len(rec.at("/flaky")) == 3 and len(deliveries(whub, alice, flaky.id)) == 1
    for w in (flaky, down):
        a.delete_webhook(w.id)


def test_the_delivery_log_is_its_owners_only(whub: InProcessHub, rec: Receiver) -> None:
    alice, bob = whub.user("alice"), whub.user("bob")
    hook = whub.api(alice).create_webhook(url=rec.url + "/mine", watched=[{"type": "user", "name": "alice"}])
    r = whub.http.get(
        f"{whub.url}/api/settings/webhooks/{hook.id}/deliveries", headers={"authorization": f"Bearer {bob}"}
    )
    assert r.status_code == 404 and r.json()["error"]
    r = whub.http.get(f"{whub.url}/api/settings/webhooks/{hook.id}/deliveries")
    assert r.status_code == 401
    assert deliveries(whub, alice, hook.id) == []
    whub.api(alice).delete_webhook(hook.id)


def test_the_secret_survives_a_rotation_of_the_secrets_key(whub: InProcessHub, rec: Receiver) -> None:
    """`spacehub secrets rotate-key` re-encrypts webhook secrets with the Spaces' (the old key is retired)."""
    alice = whub.user("alice")
    a = whub.api(alice)
    a.create_repo("alice/rotated-target")
    hook = a.create_webhook(
        url=rec.url + "/rotated", watched=[{"type": "model", "name": "alice/rotated-target"}], secret="before-rotation"
    )
    whub.cli("secrets", "rotate-key")
    a.upload_file(path_or_fileobj=b"r", path_in_repo="r.txt", repo_id="alice/rotated-target")
    [got] = rec.wait_for("/rotated", lambda g: len(g) == 1, what="after the rotation")
    assert got.headers["x-webhook-secret"] == "before-rotation"
    a.delete_webhook(hook.id)


def test_finished_deliveries_are_pruned_after_30_days(whub: InProcessHub, rec: Receiver) -> None:
    from sqlalchemy import update

    from spacehub.storage.models import WebhookDelivery

    alice = whub.user("alice")
    a = whub.api(alice)
    a.create_repo("alice/pruned-target")
    hook = a.create_webhook(url=rec.url + "/pruned", watched=[{"type": "model", "name": "alice/pruned-target"}])
    for name in ("a.txt", "b.txt"):
        a.upload_file(path_or_fileobj=b"p", path_in_repo=name, repo_id="alice/pruned-target")
    rec.wait_for("/pruned", lambda g: len(g) == 2)
    deadline = time.monotonic() + 20
    while {d["state"] for d in deliveries(whub, alice, hook.id)} != {"delivered"}:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    old, new = sorted(d["id"] for d in deliveries(whub, alice, hook.id))
    with whub.ctx.db.transaction() as s:
        month_ago = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=31)
        s.execute(update(WebhookDelivery).where(WebhookDelivery.id == old).values(created_at=month_ago))
    assert whub.ctx.webhook_sender is not None and whub.ctx.webhook_sender.prune() == 1
    assert [d["id"] for d in deliveries(whub, alice, hook.id)] == [new]
    a.delete_webhook(hook.id)


def test_a_checked_delivery_goes_to_the_address_checked_under_the_hosts_name(
    hub: InProcessHub, rec: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With private addresses refused, each attempt resolves the host, checks every address and sends the request to
    the checked one with the original Host (so a DNS answer that changes after the check is never used). Here the
    name resolves to the loopback receiver, which the check is told to take for public."""
    from spacehub.services import webhooks
    from tests.services.test_webhook_events import FakeDNS

    monkeypatch.setattr(webhooks, "socket", FakeDNS({"receiver.example.com": ["127.0.0.1"]}))
    monkeypatch.setattr(webhooks, "_non_public", lambda addr: False)
    alice = hub.user("alice")
    a = hub.api(alice)
    a.create_repo("alice/pinned-target")
    port = rec.url.rsplit(":", 1)[1]
    hook = a.create_webhook(
        url=f"http://receiver.example.com:{port}/pinned?k=v", watched=[{"type": "model", "name": "alice/pinned-target"}]
    )
    a.upload_file(path_or_fileobj=b"p", path_in_repo="p.txt", repo_id="alice/pinned-target")
    [got] = rec.wait_for("/pinned?k=v", lambda g: len(g) == 1, what="the pinned delivery")
    assert got.headers["host"] == f"receiver.example.com:{port}" and got.scope == "repo.content"
    a.delete_webhook(hook.id)


def test_a_failed_delivery_is_replayed_once_the_receiver_is_fixed(whub: InProcessHub, rec: Receiver) -> None:
    alice = whub.user("alice")
    a = whub.api(alice)
    a.create_repo("alice/replayed-target")
    rec.always_fail.add("/replay")
    hook = a.create_webhook(url=rec.url + "/replay", watched=[{"type": "model", "name": "alice/replayed-target"}])
    a.upload_file(path_or_fileobj=b"r", path_in_repo="r.txt", repo_id="alice/replayed-target")
    deadline = time.monotonic() + 20
    while not (log := deliveries(whub, alice, hook.id)) or log[0]["state"] != "failed":
        assert time.monotonic() < deadline, log
        time.sleep(0.05)
    failed = log[0]
    rec.always_fail.discard("/replay")  # the receiver is fixed
    auth = {"authorization": f"Bearer {alice}"}
    path = f"{whub.url}/api/settings/webhooks/{hook.id}/deliveries/{failed['id']}/replay"
    r = whub.http.post(path, headers=auth)
    assert r.status_code == 200 and r.json()["state"] == "pending" and r.json()["payload"] == failed["payload"]
    got = rec.wait_for("/replay", lambda g: len(g) == 4, what="the replay")
    assert got[3].body == got[0].body
    deadline = time.monotonic() + 20
    while deliveries(whub, alice, hook.id)[0]["state"] != "delivered":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    new, old = deliveries(whub, alice, hook.id)
    assert (new["attempts"], new["eventId"], old["state"]) == (1, failed["eventId"], "failed")
    # someone else's delivery, or one that does not exist, is not found
    bob = {"authorization": f"Bearer {whub.user('bob')}"}
    assert whub.http.post(path, headers=bob).status_code == 404
    missing = f"{whub.url}/api/settings/webhooks/{hook.id}/deliveries/999999/replay"
    assert whub.http.post(missing, headers=auth).status_code == 404
    assert whub.http.post(missing.replace("999999", "x1"), headers=auth).status_code == 404
    a.delete_webhook(hook.id)


def test_a_slow_receiver_holds_up_no_other_webhook_and_each_gets_its_events_in_order(
    whub: InProcessHub, rec: Receiver
) -> None:
    alice = whub.user("alice")
    a = whub.api(alice)
    a.create_repo("alice/ordered-target")
    rec.delay["/slow"] = 1.5
    watched = [{"type": "model", "name": "alice/ordered-target"}]
    slow = a.create_webhook(url=rec.url + "/slow", watched=watched)
    fast = a.create_webhook(url=rec.url + "/fast", watched=watched)
    shas = [
        a.upload_file(path_or_fileobj=str(i).encode(), path_in_repo=f"{i}.txt", repo_id="alice/ordered-target").oid
        for i in range(3)
    ]
    started = time.monotonic()
    got = rec.wait_for("/fast", lambda g: len(g) == 3, what="the fast receiver")
    assert time.monotonic() - started < 3.0  # not behind the slow one's 3 x 1.5 s
    assert len(rec.at("/slow")) < 3
    assert [d.body["updatedRefs"][0]["newSha"] for d in got] == shas
    slow_got = rec.wait_for("/slow", lambda g: len(g) == 3, what="the slow receiver", timeout=30)
    assert [d.body["updatedRefs"][0]["newSha"] for d in slow_got] == shas  # one at a time, in order
    for w in (slow, fast):
        a.delete_webhook(w.id)
