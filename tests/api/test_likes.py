"""Likes through the real client (2.4.0: `unlike`, `list_liked_repos`, `list_repo_likers`, ``likes`` of infos and
listings) and raw HTTP for `like`, which only clients ≤ 0.x send (tests/compat/scenario.py runs it with 0.21.4), on
the Hub app in-process (tests/inprocess.py)."""

from __future__ import annotations

import pytest
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.inprocess import InProcessHub


def like(hub: InProcessHub, token: str | None, repo_type: str, repo_id: str) -> dict[str, object]:
    """POST /api/{T}/{id}/like, as `HfApi.like` of 0.21.4 sends it."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    r = hub.http.post(f"{hub.url}/api/{repo_type}s/{repo_id}/like", headers=headers)
    if r.status_code >= 400:
        from huggingface_hub.utils import hf_raise_for_status

        hf_raise_for_status(r)  # type: ignore[arg-type]
    return r.json()


def test_like_unlike_and_the_counts_in_infos_and_listings(hub: InProcessHub, alice: str, bob: str) -> None:
    a, b = hub.api(alice), hub.api(bob)
    a.create_repo("alice/liked-model")
    a.create_repo("alice/liked-data", repo_type="dataset")
    a.create_repo("alice/liked-space", repo_type="space", space_sdk="static")

    assert like(hub, bob, "model", "alice/liked-model") == {"liked": True, "likes": 1}
    assert like(hub, bob, "model", "alice/liked-model") == {"liked": True, "likes": 1}  # twice: still one like
    like(hub, alice, "model", "alice/liked-model")
    like(hub, bob, "dataset", "alice/liked-data")
    like(hub, bob, "space", "alice/liked-space")

    assert a.model_info("alice/liked-model").likes == 2
    assert a.dataset_info("alice/liked-data").likes == 1
    assert a.space_info("alice/liked-space").likes == 1
    assert {m.id: m.likes for m in a.list_models(author="alice")}["alice/liked-model"] == 2
    assert {d.id: d.likes for d in a.list_datasets(author="alice")}["alice/liked-data"] == 1
    assert {s.id: s.likes for s in a.list_spaces(author="alice")}["alice/liked-space"] == 1

    liked = b.list_liked_repos()  # the caller's (whoami), then GET /api/users/bob/likes
    assert (liked.user, liked.total) == ("bob", 3)
    assert (liked.models, liked.datasets, liked.spaces) == (["alice/liked-model"], ["alice/liked-data"],
                                                            ["alice/liked-space"])  # fmt: skip
    assert hub.api(None).list_liked_repos("bob").total == 3  # public: no token needed

    likers = list(hub.api(None).list_repo_likers("alice/liked-model"))
    assert [u.username for u in likers] == ["alice", "bob"]  # newest first
    assert likers[0].fullname and likers[0].avatar_url == ""

    b.unlike("alice/liked-model")
    b.unlike("alice/liked-model")  # not liked any more: nothing changes
    b.unlike("alice/liked-space", repo_type="space")
    assert a.model_info("alice/liked-model").likes == 1
    assert a.space_info("alice/liked-space").likes == 0
    assert b.list_liked_repos().datasets == ["alice/liked-data"] and b.list_liked_repos().total == 1
    assert [u.username for u in a.list_repo_likers("alice/liked-model")] == ["alice"]


def test_private_repos_and_refusals(hub: InProcessHub, alice: str, bob: str) -> None:
    a, b = hub.api(alice), hub.api(bob)
    a.create_repo("alice/secret-likes", private=True)
    like(hub, alice, "model", "alice/secret-likes")
    # bob may not read it: it does not exist for him, nor in alice's likes as he or anonymous sees them
    with pytest.raises(RepositoryNotFoundError):
        like(hub, bob, "model", "alice/secret-likes")
    with pytest.raises(RepositoryNotFoundError):
        b.unlike("alice/secret-likes")
    with pytest.raises(RepositoryNotFoundError):
        list(b.list_repo_likers("alice/secret-likes"))
    assert "alice/secret-likes" in a.list_liked_repos().models
    assert "alice/secret-likes" not in b.list_liked_repos("alice").models
    assert "alice/secret-likes" not in hub.api(None).list_liked_repos("alice").models
    # anonymous and read-only tokens may not like; a missing repo or user is a clear 404
    a.create_repo("alice/public-likes")
    with pytest.raises(HfHubHTTPError) as e:
        like(hub, None, "model", "alice/public-likes")
    assert e.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError) as e:
        like(hub, hub.user("bob", "read"), "model", "alice/public-likes")
    assert e.value.response.status_code == 403
    with pytest.raises(RepositoryNotFoundError):
        like(hub, bob, "model", "alice/missing")
    with pytest.raises(HfHubHTTPError) as e:
        hub.api(None).list_liked_repos("nobody-here")
    assert e.value.response.status_code == 404
    assert a.model_info("alice/public-likes").likes == 0


def test_deleting_a_repo_forgets_its_likes(hub: InProcessHub, alice: str, bob: str) -> None:
    a = hub.api(alice)
    a.create_repo("alice/short-lived")
    like(hub, bob, "model", "alice/short-lived")
    a.delete_repo("alice/short-lived")
    assert "alice/short-lived" not in hub.api(bob).list_liked_repos().models
    a.create_repo("alice/short-lived")  # the same name again: a new repo, no likes
    assert a.model_info("alice/short-lived").likes == 0


def test_likers_of_a_model_in_0_21_shape(hub: InProcessHub, alice: str) -> None:
    """0.21.4's `list_repo_likers` reads one answer (no pagination) as a JSON array of user, fullname, avatarUrl."""

    hub.api(alice).create_repo("alice/array-likers")
    like(hub, alice, "model", "alice/array-likers")
    r = hub.http.get(f"{hub.url}/api/models/alice/array-likers/likers")
    assert r.status_code == 200 and "link" not in r.headers
    assert r.json() == [{"user": "alice", "fullname": "alice", "avatarUrl": "", "type": "user"}]
