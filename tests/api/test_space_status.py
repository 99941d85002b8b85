"""A Space's status as streams, against a live server whose runtime is the FakeBackend (instant builds, a real HTTP
app whose CPU time grows at a quarter of a core and whose bytes are counted): ``GET /api/spaces/{id}/events`` (the
status at each change) and ``GET /api/spaces/{id}/metrics`` (the client's Jobs metrics format). huggingface_hub
2.4.0 has no caller for either (only `fetch_job_metrics` for Jobs), so the streams are read as the client reads SSE."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi

from tests.api.test_hardware import new_space
from tests.conftest import Server, start_server, stop_server

ENV = {"SPACEHUB_RUNTIME__BACKEND": "fake", "SPACEHUB_RUNTIME__RECONCILE_INTERVAL": "1"}
MIB = 1024**2


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("status") / "data", env=ENV)
    srv.user("alice")
    srv.user("bob")
    yield srv
    stop_server(srv)


@pytest.fixture
def api(hub: Server) -> HfApi:
    return HfApi(endpoint=hub.url, token=hub.tokens["alice"])


def read_events(
    hub: Server, path: str, token: str | None, until: Callable[[list[dict[str, Any]]], bool], timeout: float = 30.0
) -> list[tuple[str, dict[str, Any]]]:
    """(event, data) pairs of an SSE stream, until ``until`` holds for the data read so far."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    out: list[tuple[str, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout
    with httpx.stream("GET", hub.url + path, headers=headers, timeout=timeout) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        event = ""
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                out.append((event, json.loads(line.removeprefix("data: "))))
                if until([d for _, d in out]):
                    return out
            if time.monotonic() > deadline:
                break
    raise AssertionError(f"{path}: {out}")


def wait_running(api: HfApi, repo_id: str) -> None:
    deadline = time.monotonic() + 30
    while api.get_space_runtime(repo_id).stage != "RUNNING":
        assert time.monotonic() < deadline, api.get_space_runtime(repo_id).raw
        time.sleep(0.1)


def test_events_stream_each_stage_change(hub: Server, api: HfApi) -> None:
    repo_id = new_space(api, "events")
    seen = read_events(hub, f"/api/spaces/{repo_id}/events", hub.tokens["alice"],
                       lambda ds: ds[-1]["stage"] == "RUNNING")  # fmt: skip
    assert all(e == "status" for e, _ in seen)
    stages = [d["stage"] for _, d in seen]
    assert stages[0] in ("BUILDING", "APP_STARTING", "RUNNING") and stages[-1] == "RUNNING"
    strip = [{k: v for k, v in d.items() if k != "timestamp"} for _, d in seen]
    assert all(a != b for a, b in itertools.pairwise(strip))  # an event only when something changed
    last = seen[-1][1]
    assert last["hardware"] == {"current": "cpu-basic", "requested": "cpu-basic"}
    assert last["replicas"] == {"requested": 1, "current": 1} and last["errorMessage"] is None
    assert last["timestamp"].endswith("Z")

    def pause_soon() -> None:
        time.sleep(1.5)
        api.pause_space(repo_id)

    threading.Thread(target=pause_soon, daemon=True).start()
    after = read_events(hub, f"/api/spaces/{repo_id}/events", None, lambda ds: ds[-1]["stage"] == "PAUSED")
    assert after[0][1]["stage"] == "RUNNING"  # public Space: anyone may follow it; the status now comes first
    assert after[-1][1]["replicas"]["current"] == 0


def test_metrics_stream_in_the_jobs_format(hub: Server, api: HfApi) -> None:
    repo_id = new_space(api, "metrics")
    wait_running(api, repo_id)
    host = api.space_info(repo_id).host
    assert host is not None
    visits = 0

    def busy(ds: list[dict[str, Any]]) -> bool:
        nonlocal visits
        with httpx.Client(base_url=hub.url, headers={"Host": host.split("://", 1)[1]}, timeout=10) as c:
            for _ in range(5):  # traffic through the proxy: the app receives and sends bytes
                assert c.get("/").status_code == 200
                visits += 1
        return len(ds) >= 4

    samples = [d for _, d in read_events(hub, f"/api/spaces/{repo_id}/metrics", hub.tokens["alice"], busy)]
    for m in samples:
        assert set(m) == {"cpu_usage_pct", "cpu_millicores", "memory_used_bytes", "memory_total_bytes", "rx_bps",
                          "tx_bps", "gpus"}  # fmt: skip
        assert m["cpu_millicores"] == 2000 and m["memory_total_bytes"] == 16 * 1024**3  # cpu-basic: 2 vCPU, 16 GB
        assert m["memory_used_bytes"] == 64 * MIB and m["gpus"] == {}
    assert samples[0]["cpu_usage_pct"] == 0 and samples[0]["rx_bps"] == 0  # rates need two samples
    later = samples[1:]
    assert all(10 <= m["cpu_usage_pct"] <= 15 for m in later), later  # a quarter core of 2 = 12.5 %
    assert all(m["rx_bps"] > 0 and m["tx_bps"] > 0 for m in later[1:]), later
    assert visits >= 15


def test_streams_answer_like_the_space_itself(hub: Server, api: HfApi) -> None:
    """A private Space's streams do not exist for others (404 RepoNotFound), nor do a missing Space's; a Space that
    runs nowhere (paused) uses nothing."""
    repo_id = new_space(api, "private", private=True)
    for path in ("events", "metrics"):
        for token in (hub.tokens["bob"], None):
            headers = {"authorization": f"Bearer {token}"} if token else {}
            r = httpx.get(f"{hub.url}/api/spaces/{repo_id}/{path}", headers=headers, timeout=10)
            assert r.status_code == 404 and r.headers["x-error-code"] == "RepoNotFound", r.text
        r = httpx.get(f"{hub.url}/api/spaces/alice/no-such-space/{path}", timeout=10)
        assert r.status_code == 404 and r.headers["x-error-code"] == "RepoNotFound"
    api.pause_space(repo_id)
    (sample,) = [d for _, d in read_events(hub, f"/api/spaces/{repo_id}/metrics", hub.tokens["alice"],
                                           lambda ds: len(ds) == 1)]  # fmt: skip
    assert sample["memory_used_bytes"] == 0 and sample["cpu_usage_pct"] == 0 and sample["cpu_millicores"] == 2000
