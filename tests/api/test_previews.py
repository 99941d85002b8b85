"""The preview routes of a Space's pull requests (POST/GET/DELETE /api/spaces/{id}/discussions/{num}/preview): who may
ask, see and stop, and what is refused, on the Hub app in-process (no runtime: the stage stays the accepted
BUILDING). The preview running, with real processes behind the proxy: tests/e2e/test_previews.py."""

from __future__ import annotations

import pytest
from huggingface_hub import CommitOperationAdd

from tests.inprocess import InProcessHub


@pytest.fixture(scope="module")
def alice(hub: InProcessHub) -> str:
    return hub.user("alice")


@pytest.fixture(scope="module")
def bob(hub: InProcessHub) -> str:
    return hub.user("bob")


def call(hub: InProcessHub, method: str, path: str, token: str | None = None) -> tuple[int, dict[str, object]]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    r = hub.http.request(method, f"{hub.url}{path}", headers=headers)
    return r.status_code, r.json()


def test_who_may_ask_for_see_and_stop_a_preview(hub: InProcessHub, alice: str, bob: str) -> None:
    carol = hub.user("carol")
    a = hub.api(alice)
    a.create_repo("alice/previewed", repo_type="space", space_sdk="static")
    a.create_repo("alice/previewed-model")
    pr = hub.api(bob).create_commit("alice/previewed", [CommitOperationAdd("index.html", b"<p>bob</p>")],
                                    commit_message="bob's page", repo_type="space", create_pr=True)  # fmt: skip
    talk = hub.api(bob).create_discussion("alice/previewed", "A question", repo_type="space")
    route = f"/api/spaces/alice/previewed/discussions/{pr.pr_num}/preview"

    assert call(hub, "GET", route)[0] == 404
    assert call(hub, "POST", route)[0] == 401
    status, body = call(hub, "POST", route, carol)
    assert status == 403 and "author of pull request" in str(body["error"])
    assert call(hub, "POST", route, hub.user("bob", role="read"))[0] == 403  # a read token writes nothing
    status, body = call(hub, "POST", route, bob)
    assert status == 200, body
    assert body["url"] == f"http://alice-previewed--pr-{pr.pr_num}.localhost"  # the scheme and port of the call
    assert body["revision"] == pr.oid and body["stage"] == "BUILDING" and body["num"] == pr.pr_num
    assert call(hub, "GET", route)[1] == body  # anyone who may read the Space
    headers = {"authorization": f"Bearer {bob}"}
    logs = hub.http.get(f"{hub.url}{route}/logs/build", headers=headers)  # its author (no runtime: nothing kept)
    assert logs.status_code == 200 and logs.headers["content-type"].startswith("text/event-stream")
    assert hub.http.get(f"{hub.url}{route}/logs/run", headers={"authorization": f"Bearer {carol}"}).status_code == 403
    assert hub.http.get(f"{hub.url}{route}/logs/other", headers=headers).status_code == 400

    assert call(hub, "POST", f"/api/spaces/alice/previewed/discussions/{talk.num}/preview", alice)[0] == 400
    assert call(hub, "POST", "/api/spaces/alice/previewed/discussions/99/preview", alice)[0] == 404
    assert call(hub, "POST", "/api/spaces/alice/previewed/discussions/x/preview", alice)[0] == 400
    assert call(hub, "POST", "/api/spaces/alice/previewed-model/discussions/1/preview", alice)[0] == 404

    assert call(hub, "DELETE", route, carol)[0] == 403
    assert call(hub, "DELETE", route, alice) == (200, {})  # a writer stops it
    assert call(hub, "GET", route)[0] == 404 and call(hub, "DELETE", route, alice)[0] == 404
    assert hub.http.get(f"{hub.url}{route}/logs/run", headers=headers).status_code == 404

    assert call(hub, "POST", route, alice)[0] == 200
    hub.api(bob).change_discussion_status("alice/previewed", pr.pr_num, "closed", repo_type="space")
    assert call(hub, "GET", route)[0] == 404  # closing ends it
    hub.api(bob).change_discussion_status("alice/previewed", pr.pr_num, "open", repo_type="space")
    assert call(hub, "GET", route)[0] == 404  # and reopening does not start it again
    status, body = call(hub, "POST", route, bob)
    assert status == 200
    a.merge_pull_request("alice/previewed", pr.pr_num, repo_type="space")
    assert call(hub, "GET", route)[0] == 404  # merged: ended
    status, body = call(hub, "POST", route, alice)
    assert status == 400 and "merged" in str(body["error"])


def test_a_private_spaces_previews_are_its_readers(hub: InProcessHub, alice: str, bob: str) -> None:
    a = hub.api(alice)
    a.create_repo("alice/secret-previewed", repo_type="space", space_sdk="static", private=True)
    num = a.create_pull_request("alice/secret-previewed", "Mine", repo_type="space").num
    route = f"/api/spaces/alice/secret-previewed/discussions/{num}/preview"
    assert call(hub, "POST", route, alice)[0] == 200
    assert call(hub, "GET", route, alice)[0] == 200
    assert call(hub, "GET", route, bob)[0] == 404 and call(hub, "GET", route)[0] == 404
