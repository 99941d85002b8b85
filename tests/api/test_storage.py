"""Persistent storage and volumes through the API (no runtime here: what is stored and answered), on the Hub app
in-process (tests/inprocess.py; the fixtures below make ``server`` the in-process hub), and once on a live server.
Real processes are in tests/e2e/test_storage.py. Bad input is a 400 that changes nothing; others get 404 (private)
or 403 (public)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi, Volume
from huggingface_hub.errors import HfHubHTTPError

from tests.api.test_bad_input import assert_error
from tests.conftest import Server
from tests.inprocess import InProcessHub

Hub = Server | InProcessHub


@pytest.fixture(scope="module")
def server(hub: InProcessHub) -> InProcessHub:
    return hub


def auth(token: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"} if token else {}


def create(server: Hub, token: str, name: str, **body: Any) -> httpx.Response:
    return server.http.post(f"{server.url}/api/repos/create", json={"name": name, **body}, headers=auth(token))


def runtime(server: Hub, repo_id: str, token: str | None) -> dict[str, Any]:
    r = server.http.get(f"{server.url}/api/spaces/{repo_id}/runtime", headers=auth(token))
    assert r.status_code == 200, r.text
    return dict(r.json())


def storage(server: Hub, repo_id: str, token: str | None, **kw: Any) -> httpx.Response:
    return server.http.post(f"{server.url}/api/spaces/{repo_id}/storage", headers=auth(token), **kw)


def volumes(server: Hub, repo_id: str, token: str | None, **kw: Any) -> httpx.Response:
    return server.http.put(f"{server.url}/api/spaces/{repo_id}/volumes", headers=auth(token), **kw)


@pytest.fixture
def space(server: Hub, alice: str, unique: str) -> str:
    r = create(server, alice, unique, type="space", sdk="gradio")
    assert r.status_code == 200, r.text
    return f"alice/{unique}"


@pytest.fixture
def sources(server: Hub, alice: str, unique: str) -> dict[str, str]:
    """alice's public model (weights/ folder) and private dataset, with a v1 tag on the model."""
    api = HfApi(endpoint=server.url, token=alice)
    model, dataset = f"alice/{unique}-model", f"alice/{unique}-data"
    api.create_repo(model)
    api.upload_file(path_or_fileobj=b"w", path_in_repo="weights/w.bin", repo_id=model)
    api.create_tag(model, tag="v1")
    api.create_repo(dataset, repo_type="dataset", private=True)
    api.upload_file(path_or_fileobj=b"a,b\n", path_in_repo="train/data.csv", repo_id=dataset, repo_type="dataset")
    return {"model": model, "dataset": dataset}


# ---- storage -------------------------------------------------------------------------------------------------------
def test_request_space_storage_sets_upgrades_and_refuses_a_smaller_tier(server: Hub, alice: str, space: str) -> None:
    r = storage(server, space, alice, json={"tier": "small"})
    assert r.status_code == 200, r.text
    assert r.json()["storage"] == "small"
    assert r.json()["storageUsage"]["limit"] == 20 * 10**9
    assert storage(server, space, alice, json={"tier": "small"}).status_code == 200  # the same: nothing to do
    r = storage(server, space, alice, json={"tier": "large"})
    assert r.json()["storage"] == "large" and r.json()["storageUsage"]["limit"] == 10**12
    assert_error(storage(server, space, alice, json={"tier": "medium"}), 400, text="delete the storage first")
    assert runtime(server, space, alice)["storage"] == "large"
    r = server.http.delete(f"{server.url}/api/spaces/{space}/storage", headers=auth(alice))
    assert r.status_code == 200 and r.json()["storage"] is None and "storageUsage" not in r.json()
    assert server.http.delete(f"{server.url}/api/spaces/{space}/storage", headers=auth(alice)).status_code == 200
    assert storage(server, space, alice, json={"tier": "medium"}).json()["storage"] == "medium"  # after a delete


@pytest.mark.parametrize(
    ("kw", "text"),
    [
        ({"json": {"tier": "huge"}}, "use one of small, medium, large"),
        ({"json": {"tier": 5}}, "invalid storage tier"),
        ({"json": {"tier": None}}, "invalid storage tier"),
        ({"json": {}}, "invalid storage tier"),
        ({"json": ["small"]}, "expected a json object"),
        ({"json": {"tier": "small", "size": 3}}, "unknown keys: size"),
        ({"content": b"{tier: small", "headers": {"content-type": "application/json"}}, "malformed json"),
    ],
)
def test_bad_storage_requests_are_400_and_change_nothing(
    server: Hub, alice: str, space: str, kw: dict[str, Any], text: str
) -> None:
    assert storage(server, space, alice, json={"tier": "medium"}).status_code == 200
    headers = {**auth(alice), **kw.pop("headers", {})}
    r = server.http.post(f"{server.url}/api/spaces/{space}/storage", headers=headers, **kw)
    assert_error(r, 400, text=text)
    assert runtime(server, space, alice)["storage"] == "medium"


def test_storage_needs_write_access(server: Hub, alice: str, bob: str, space: str, unique: str) -> None:
    assert_error(storage(server, space, bob, json={"tier": "small"}), 403)
    assert_error(storage(server, space, None, json={"tier": "small"}), 401)
    assert_error(storage(server, space, server.user("alice", "read"), json={"tier": "small"}), 403)
    assert_error(server.http.delete(f"{server.url}/api/spaces/{space}/storage", headers=auth(bob)), 403)
    assert create(server, alice, f"{unique}-p", type="space", sdk="gradio", private=True).status_code == 200
    assert_error(storage(server, f"alice/{unique}-p", bob, json={"tier": "small"}), 404, "RepoNotFound")
    assert runtime(server, space, alice)["storage"] is None


def test_create_repo_with_a_storage_tier(server: Hub, alice: str, unique: str) -> None:
    assert create(server, alice, unique, type="space", sdk="gradio", storageTier="medium").status_code == 200
    assert runtime(server, f"alice/{unique}", alice)["storage"] == "medium"
    assert_error(create(server, alice, f"{unique}-bad", type="space", sdk="gradio", storageTier="xl"), 400)
    assert server.http.get(f"{server.url}/api/spaces/alice/{unique}-bad", headers=auth(alice)).status_code == 404


def test_static_spaces_take_no_storage_nor_volumes(server: Hub, alice: str, unique: str) -> None:
    assert create(server, alice, unique, type="space", sdk="static").status_code == 200
    assert_error(storage(server, f"alice/{unique}", alice, json={"tier": "small"}), 400, text="static")
    vol = {"type": "model", "source": "alice/x", "mountPath": "/m"}
    assert_error(volumes(server, f"alice/{unique}", alice, json={"volumes": [vol]}), 400, text="static")


# ---- volumes -------------------------------------------------------------------------------------------------------
def test_set_space_volumes_replaces_the_list_and_masks_private_sources(
    server: Hub, alice: str, bob: str, space: str, sources: dict[str, str]
) -> None:
    api = HfApi(endpoint=server.url, token=alice)
    api.set_space_volumes(space, [
        Volume(type="model", source=sources["model"], mount_path="/models/m", revision="v1", path="weights"),
        Volume(type="dataset", source=sources["dataset"], mount_path="/datasets/d", read_only=True),
    ])  # fmt: skip
    rt = api.get_space_runtime(space)
    assert [(v.type, v.source, v.mount_path, v.read_only) for v in rt.volumes] == [
        ("model", sources["model"], "/models/m", True),
        ("dataset", sources["dataset"], "/datasets/d", True),
    ]
    assert (rt.volumes[0].revision, rt.volumes[0].path) == ("v1", "weights")
    # bob may read the public Space but not alice's private dataset: its name is masked, everywhere
    for seen in (
        runtime(server, space, bob)["volumes"],
        HfApi(endpoint=server.url, token=bob).space_info(space).runtime.volumes,
    ):
        sources_seen = [v["source"] if isinstance(v, dict) else v.source for v in seen]
        assert sources_seen == [sources["model"], "****/******"]
    # the list is replaced, not extended
    api.set_space_volumes(space, [Volume(type="model", source=sources["model"], mount_path="/m")])
    assert [v.mount_path for v in api.get_space_runtime(space).volumes] == ["/m"]
    api.delete_space_volumes(space)
    assert api.get_space_runtime(space).volumes is None
    with pytest.raises(HfHubHTTPError) as e:
        api.delete_space_volumes(space)
    assert e.value.response.status_code == 400


BAD_VOLUMES: list[tuple[Any, str]] = [
    ("not a list", "must be a list"),
    ([["model"]], "must be an object"),
    ([{"source": "{model}", "mountPath": "/m"}], "type is required"),
    ([{"type": "model", "mountPath": "/m"}], "source is required"),
    ([{"type": "model", "source": "{model}"}], "mountpath is required"),
    ([{"type": "model", "source": "{model}", "mountPath": 3}], "mountpath is required"),
    ([{"type": "bucket", "source": "{model}", "mountPath": "/m"}], "buckets are not supported"),
    ([{"type": "model", "source": "{model}", "mountPath": "m"}], "absolute path"),
    ([{"type": "model", "source": "{model}", "mountPath": "/a/../m"}], "normalized"),
    ([{"type": "model", "source": "{model}", "mountPath": "/data"}], "collides with /data"),
    ([{"type": "model", "source": "{model}", "mountPath": "/data/m"}], "collides with /data"),
    ([{"type": "model", "source": "{model}", "mountPath": "/"}], "collides with /data"),
    ([{"type": "model", "source": "{model}", "mountPath": "/usr/lib/m"}], "system files"),
    ([{"type": "model", "source": "{model}", "mountPath": "/m", "readOnly": "yes"}], "readonly must be a boolean"),
    ([{"type": "model", "source": "{model}", "mountPath": "/m", "revision": 1}], "revision must be"),
    ([{"type": "model", "source": "{model}", "mountPath": "/m", "path": "../x"}], "path must be a folder"),
    ([{"type": "model", "source": "{model}", "mountPath": "/m", "path": "nope"}], "not a folder"),
    ([{"type": "model", "source": "{model}", "mountPath": "/m", "mode": "rw"}], "unknown keys: mode"),
    ([{"type": "model", "source": "nope", "mountPath": "/m"}], "namespace/name"),
    (
        [
            {"type": "model", "source": "{model}", "mountPath": "/m"},
            {"type": "model", "source": "{model}", "mountPath": "/m/x"},
        ],
        "overlap",
    ),
]


@pytest.mark.parametrize(("volume_list", "text"), BAD_VOLUMES)
def test_bad_volumes_are_400_and_change_nothing(
    server: Hub, alice: str, space: str, sources: dict[str, str], volume_list: Any, text: str
) -> None:
    keep = [{"type": "model", "source": sources["model"], "mountPath": "/keep"}]
    assert volumes(server, space, alice, json={"volumes": keep}).status_code == 200
    import json

    body = json.loads(json.dumps(volume_list).replace("{model}", sources["model"]))
    assert_error(volumes(server, space, alice, json={"volumes": body}), 400, text=text)
    assert [v["mountPath"] for v in runtime(server, space, alice)["volumes"]] == ["/keep"]


def test_volume_sources_must_be_readable_and_exist(
    server: Hub, alice: str, bob: str, sources: dict[str, str], unique: str
) -> None:
    assert create(server, bob, f"{unique}-b", type="space", sdk="gradio").status_code == 200
    bobs = f"bob/{unique}-b"
    private = [{"type": "dataset", "source": sources["dataset"], "mountPath": "/d"}]
    assert_error(volumes(server, bobs, bob, json={"volumes": private}), 404, "RepoNotFound")
    missing = [{"type": "model", "source": "alice/does-not-exist", "mountPath": "/d"}]
    assert_error(volumes(server, bobs, bob, json={"volumes": missing}), 404, "RepoNotFound")
    wrong_type = [{"type": "dataset", "source": sources["model"], "mountPath": "/d"}]
    assert_error(volumes(server, bobs, bob, json={"volumes": wrong_type}), 404, "RepoNotFound")
    no_rev = [{"type": "model", "source": sources["model"], "mountPath": "/d", "revision": "v9"}]
    assert_error(volumes(server, bobs, bob, json={"volumes": no_rev}), 404, "RevisionNotFound")
    assert runtime(server, bobs, bob)["volumes"] is None
    # and only writers change them
    public = [{"type": "model", "source": sources["model"], "mountPath": "/d"}]
    assert_error(volumes(server, bobs, alice, json={"volumes": public}), 403)
    assert_error(server.http.delete(f"{server.url}/api/spaces/{bobs}/volumes", headers=auth(alice)), 403)


def test_create_repo_with_volumes(server: Hub, alice: str, sources: dict[str, str], unique: str) -> None:
    api = HfApi(endpoint=server.url, token=alice)
    vol = Volume(type="dataset", source=sources["dataset"], mount_path="/datasets/d", path="train")
    api.create_repo(f"alice/{unique}", repo_type="space", space_sdk="gradio", space_volumes=[vol])
    (shown,) = api.get_space_runtime(f"alice/{unique}").volumes
    assert (shown.source, shown.mount_path, shown.path) == (sources["dataset"], "/datasets/d", "train")


# ---- duplicates ----------------------------------------------------------------------------------------------------
def test_a_duplicate_gets_the_storage_and_volumes_asked_never_the_sources(
    server: Hub, alice: str, space: str, sources: dict[str, str], unique: str
) -> None:
    assert storage(server, space, alice, json={"tier": "large"}).status_code == 200
    vol = {"type": "model", "source": sources["model"], "mountPath": "/m"}
    assert volumes(server, space, alice, json={"volumes": [vol]}).status_code == 200
    dup = f"{server.url}/api/spaces/{space}/duplicate"
    r = server.http.post(dup, json={"repository": f"alice/{unique}-d1", "storageTier": "small"}, headers=auth(alice))
    assert r.status_code == 200, r.text
    rt = runtime(server, f"alice/{unique}-d1", alice)
    assert (rt["storage"], rt["volumes"]) == ("small", None)
    api = HfApi(endpoint=server.url, token=alice)  # 2.x: duplicate_repo with volumes (no storage any more)
    other = Volume(type="dataset", source=sources["dataset"], mount_path="/d")
    api.duplicate_repo(space, f"alice/{unique}-d2", repo_type="space", space_volumes=[other])
    rt = runtime(server, f"alice/{unique}-d2", alice)
    assert rt["storage"] is None and [v["source"] for v in rt["volumes"]] == [sources["dataset"]]
    for bad in ({"storageTier": "xl"}, {"volumes": [{"type": "model"}]}, {"volumes": [{**vol, "mountPath": "/data"}]}):
        r = server.http.post(dup, json={"repository": f"alice/{unique}-bad", **bad}, headers=auth(alice))
        assert_error(r, 400)
        assert server.http.get(f"{server.url}/api/spaces/alice/{unique}-bad", headers=auth(alice)).status_code == 404


@pytest.mark.slow  # a server of its own
def test_storage_and_volumes_on_a_live_server(start_hub, unique: str) -> None:  # type: ignore[no-untyped-def]
    """The smoke test of this area on a real ``spacehub serve`` (the in-process tests above cover the behaviour)."""
    live = start_hub()
    alice = live.user("alice")
    assert create(live, alice, unique, type="space", sdk="gradio").status_code == 200
    space = f"alice/{unique}"
    assert storage(live, space, alice, json={"tier": "small"}).status_code == 200
    assert runtime(live, space, alice)["storage"] == "small"
    HfApi(endpoint=live.url, token=alice).create_repo(f"alice/{unique}-m")
    r = volumes(
        live, space, alice, json={"volumes": [{"type": "model", "source": f"alice/{unique}-m", "mountPath": "/m"}]}
    )
    assert r.status_code == 200, r.text
    assert [v["source"] for v in runtime(live, space, None)["volumes"]] == [f"alice/{unique}-m"]
