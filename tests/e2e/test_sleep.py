"""Sleep and wake with real processes behind the proxy: an idle Space goes to sleep frozen (cgroup freezer, same
process), a proxied request wakes it at once; after ``deep_sleep_after`` it is stopped (no process), and a request
starts it again; a browser gets the page of a frozen Space directly and the "waking up" page of a stopped one; no
usage is metered while asleep. The hub allows custom sleep times on free hardware (an admin setting) so that the
tests can use seconds."""

from __future__ import annotations

import sqlite3
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi

from tests.conftest import start_server
from tests.e2e.conftest import Hub, pid_alive, runtime_env, stop_hub

pytestmark = pytest.mark.slow

RUN_TIMEOUT = 180
SLEEP = 2  # seconds without a visit before sleeping
DEEP = 5  # seconds frozen before being stopped


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, uv_cache: Path) -> Iterator[Hub]:
    env = runtime_env(
        uv_cache,
        SPACEHUB_RUNTIME__RECONCILE_INTERVAL="0.5",
        SPACEHUB_RUNTIME__CUSTOM_SLEEP_ON_FREE_HARDWARE="true",
        SPACEHUB_RUNTIME__DEEP_SLEEP_AFTER=str(DEEP),
        SPACEHUB_RUNTIME__MIN_AVAILABLE_MEMORY_MB="0",
    )
    server = start_server(tmp_path_factory.mktemp("e2e-sleep") / "data", env=env)
    alice = server.user("alice")
    h = Hub(server, alice, HfApi(endpoint=server.url, token=alice))
    yield h
    stop_hub(h)


def page_boot(text: str) -> str:
    """The random id the app drew at start: another start, another id (in a sandbox the pid is always the same)."""
    return text.split("<p id='boot'>")[1].split("<")[0]


def sleeping(hub: Hub, tmp_path: Path, prefix: str, mode: str, **kw: Any) -> tuple[str, str]:
    """A running python-http Space with a short sleep time, left alone until it sleeps in ``mode``."""
    repo_id = hub.name(prefix)
    hub.upload(repo_id, "python-http", tmp_path, **kw)
    hub.wait(repo_id, "RUNNING", RUN_TIMEOUT)
    boot = page_boot(hub.serves(repo_id, "python-http-v1").text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the client warns on cpu-basic; this hub allows it
        assert hub.api.set_space_sleep_time(repo_id, SLEEP).sleep_time == SLEEP
    hub.wait(repo_id, "SLEEPING", SLEEP + DEEP + 20, until=lambda rt: rt.raw.get("sleepMode") == mode)
    return repo_id, boot


def frozen_state(hub: Hub, repo_id: str) -> str | None:
    (inst,) = hub.instances(repo_id)
    cg = inst.get("cgroup") or {}
    freezer = (cg.get("dirs") or {}).get("freezer") or (cg.get("dirs") or {}).get("unified")
    if freezer is None:
        return None
    f = Path(freezer) / ("freezer.state" if cg["version"] == 1 else "cgroup.freeze")
    return f.read_text().strip()


def test_light_sleep_freezes_and_a_request_thaws_at_once(hub: Hub, tmp_path: Path) -> None:
    repo_id, boot = sleeping(hub, tmp_path, "light", "frozen")
    rt = hub.runtime(repo_id)
    assert rt.stage == "SLEEPING" and rt.raw["sleepMode"] == "frozen"
    assert rt.hardware == "cpu-basic"  # still placed: the process is there, frozen
    (inst,) = hub.instances(repo_id)
    assert pid_alive(inst["pid"], inst["starttime"])
    assert frozen_state(hub, repo_id) in ("FROZEN", "1")
    t0 = time.monotonic()
    r = hub.get(repo_id, "/wake")
    took = time.monotonic() - t0
    assert r.status_code == 200 and page_boot(r.text) == boot  # the same process, thawed
    print(f"waking a frozen Space through the proxy took {took:.3f}s")  # the figure is bench/'s; this is a test
    assert frozen_state(hub, repo_id) in ("THAWED", "0")
    hub.wait(repo_id, "RUNNING", 10)
    assert "sleepMode" not in hub.runtime(repo_id).raw

    # a browser visiting a frozen Space gets the page itself (the thaw fits in the browser grace)
    hub.wait(repo_id, "SLEEPING", SLEEP + 10, until=lambda rt: rt.raw.get("sleepMode") == "frozen")
    page = hub.get(repo_id, headers={"accept": "text/html"})
    assert page.status_code == 200 and page_boot(page.text) == boot

    # restart_space wakes a sleeping Space, and wait_for_space right after it waits for the new process
    hub.wait(repo_id, "SLEEPING", SLEEP + 10, until=lambda rt: rt.raw.get("sleepMode") == "frozen")
    hub.api.restart_space(repo_id)
    assert hub.api.wait_for_space(repo_id, timeout=60, poll_interval=0.2).stage == "RUNNING"
    assert page_boot(hub.serves(repo_id, "python-http-v1").text) != boot


def test_deep_sleep_stops_and_a_request_starts_it_again(hub: Hub, tmp_path: Path) -> None:
    repo_id, boot = sleeping(hub, tmp_path, "deep", "stopped")
    assert hub.instances(repo_id) == []  # no process, memory given back
    assert hub.runtime(repo_id).hardware is None
    page = hub.get(repo_id, headers={"accept": "text/html"})  # a browser: the waking page, the start under way
    if page.status_code == 503:
        assert "Waking up" in page.text
    r = hub.get(repo_id, "/again")  # an API client waits for the app
    assert r.status_code == 200 and page_boot(r.text) != boot
    hub.wait(repo_id, "RUNNING", 10)
    assert any("served GET /again" in line for line in hub.logs(repo_id))


def test_no_usage_is_metered_while_asleep(hub: Hub, tmp_path: Path) -> None:
    hub.server.cli("billing", "grant", "alice")
    repo_id = hub.name("metered")
    hub.upload(repo_id, "python-http", tmp_path)
    hub.api.request_space_hardware(repo_id, "cpu-upgrade", sleep_time=SLEEP)
    hub.wait(repo_id, "RUNNING", RUN_TIMEOUT, until=lambda rt: rt.hardware == "cpu-upgrade")
    space_id = hub.space_id(repo_id)

    def intervals() -> list[tuple[str, str | None]]:
        with sqlite3.connect(hub.server.data_dir / "spacehub.db") as db:
            q = "SELECT started_at, ended_at FROM usage_intervals WHERE repo_id = ? ORDER BY id"
            return list(db.execute(q, (space_id,)))

    assert [end for _, end in intervals()] == [None]  # running: one open interval
    hub.wait(repo_id, "SLEEPING", SLEEP + 20)
    deadline = time.monotonic() + 10  # the stage is said before the pass acts; the meter closes at the pass's end
    while intervals()[0][1] is None and time.monotonic() < deadline:
        time.sleep(0.1)
    (first,) = intervals()
    assert first[1] is not None  # closed when it fell asleep
    time.sleep(1.5)
    assert intervals() == [first]  # nothing while asleep
    assert hub.get(repo_id, "/").status_code == 200  # a visitor wakes it: metered again
    deadline = time.monotonic() + 10
    while len(intervals()) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert intervals()[0] == first and intervals()[1][1] is None
    hub.api.request_space_hardware(repo_id, "cpu-basic")
    hub.server.cli("billing", "revoke", "alice")
