"""Space runtime events for webhooks (beyond the Hub): a live SpaceHub with the local runtime (real builds and
processes) tells a webhook that watches the Space of each stage the reconciler records: running, hardware granted,
sleeping, woke, build failed, runtime error. The receiver is a real HTTP server on loopback (tests/webhook_receiver.py),
which this hub allows (``webhooks.allow_private_addresses``). Each payload is the Hub's shape (`WebhookPayload`
parses it) with scope ``space.runtime`` and a ``runtime`` object."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi, WebhookPayload

from tests.conftest import start_server
from tests.e2e.conftest import Hub, runtime_env, stop_hub
from tests.webhook_receiver import Delivery, Receiver, receiver

pytestmark = pytest.mark.slow

RUN_TIMEOUT = 180
SLEEP = 2


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, uv_cache: Path) -> Iterator[Hub]:
    env = runtime_env(
        uv_cache,
        SPACEHUB_RUNTIME__RECONCILE_INTERVAL="0.5",
        SPACEHUB_RUNTIME__CUSTOM_SLEEP_ON_FREE_HARDWARE="true",
        SPACEHUB_RUNTIME__MIN_AVAILABLE_MEMORY_MB="0",
        SPACEHUB_WEBHOOKS__ALLOW_PRIVATE_ADDRESSES="true",
        SPACEHUB_WEBHOOKS__RETRY_BASE_SECONDS="0.5",
    )
    server = start_server(tmp_path_factory.mktemp("e2e-hooks") / "data", env=env)
    alice = server.user("alice")
    server.cli("billing", "grant", "alice")  # paid hardware may be granted
    h = Hub(server, alice, HfApi(endpoint=server.url, token=alice))
    yield h
    stop_hub(h)


@pytest.fixture(scope="module")
def rec() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def runtime_events(got: list[Delivery], repo_id: str) -> list[dict[str, Any]]:
    return [d.body["runtime"] for d in got if d.scope == "space.runtime" and d.body["repo"]["name"] == repo_id]


def wait_event(
    rec: Receiver, path: str, repo_id: str, event: str, after: int = 0, timeout: float = 60
) -> dict[str, Any]:
    """The first ``event`` of ``repo_id`` among its runtime events from index ``after`` on."""

    def seen(got: list[Delivery]) -> bool:
        return any(e["event"] == event for e in runtime_events(got, repo_id)[after:])

    got = rec.wait_for(path, seen, timeout, what=f"{repo_id}: {event}")
    return next(e for e in runtime_events(got, repo_id)[after:] if e["event"] == event)


def watch(hub: Hub, rec: Receiver, path: str, repo_id: str) -> None:
    hub.api.create_webhook(url=rec.url + path, watched=[{"type": "space", "name": repo_id}], secret="rt-secret")


def test_running_hardware_sleeping_and_woke(hub: Hub, rec: Receiver, tmp_path: Path) -> None:
    repo_id = hub.name("hooked")
    hub.api.create_repo(repo_id, repo_type="space", space_sdk="gradio")
    watch(hub, rec, "/life", repo_id)
    hub.upload(repo_id, "python-http", tmp_path, create=False)
    hub.wait(repo_id, "RUNNING", RUN_TIMEOUT)
    running = wait_event(rec, "/life", repo_id, "running")
    assert running["stage"] == "RUNNING" and running["hardware"]["current"] == "cpu-basic", running
    got = rec.at("/life")
    for d in got:
        WebhookPayload(**d.body)  # the client's own model parses every payload
        assert d.headers["x-webhook-secret"] == "rt-secret"
    assert [e["event"] for e in runtime_events(got, repo_id)] == ["running"]  # building said nothing

    # paid hardware granted (capped to this machine), then running on it
    n = len(runtime_events(rec.at("/life"), repo_id))
    hub.api.request_space_hardware(repo_id, "cpu-upgrade")
    granted = wait_event(rec, "/life", repo_id, "hardware_granted", after=n, timeout=RUN_TIMEOUT)
    assert granted["hardware"] == {"current": "cpu-upgrade", "requested": "cpu-upgrade"}, granted
    hub.wait(repo_id, "RUNNING", RUN_TIMEOUT, until=lambda rt: rt.hardware == "cpu-upgrade")

    # left alone it sleeps; a visit wakes it
    n = len(runtime_events(rec.at("/life"), repo_id))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        hub.api.set_space_sleep_time(repo_id, SLEEP)
    asleep = wait_event(rec, "/life", repo_id, "sleeping", after=n, timeout=SLEEP + 60)
    assert asleep["stage"] == "SLEEPING" and asleep["previousStage"] == "RUNNING", asleep
    n = len(runtime_events(rec.at("/life"), repo_id))
    hub.serves(repo_id, "python-http-v1")
    woke = wait_event(rec, "/life", repo_id, "woke", after=n, timeout=60)
    assert woke["previousStage"] == "SLEEPING" and woke["stage"] in ("RUNNING", "APP_STARTING"), woke
    assert wait_event(rec, "/life", repo_id, "running", after=n)["stage"] == "RUNNING"

    # the owner's delivery log shows them delivered, next to the repo's own events (repo.content of the upload)
    [hook] = hub.api.list_webhooks()
    r = httpx.get(
        f"{hub.url}/api/settings/webhooks/{hook.id}/deliveries", headers={"authorization": f"Bearer {hub.alice}"}
    )
    runtime = [d for d in r.json() if d["scope"] == "space.runtime"]
    assert len(runtime) == len(runtime_events(rec.at("/life"), repo_id)), r.json()
    assert all(d["state"] == "delivered" and d["attempts"] == 1 for d in runtime), runtime
    assert any(d["scope"] == "repo.content" for d in r.json())
    hub.api.delete_webhook(hook.id)


def test_build_failed_and_runtime_error(hub: Hub, rec: Receiver, tmp_path: Path) -> None:
    broken = hub.name("hooked-broken")
    hub.api.create_repo(broken, repo_type="space", space_sdk="gradio")
    watch(hub, rec, "/broken", broken)
    hub.upload(broken, "python-http", tmp_path, create=False,
               files={"requirements.txt": "spacehub-no-such-package-4f7a9==1.0\n"})  # fmt: skip
    failed = wait_event(rec, "/broken", broken, "build_failed", timeout=RUN_TIMEOUT)
    assert failed["stage"] == "BUILD_ERROR" and "spacehub-no-such-package-4f7a9" in (failed["errorMessage"] or "")

    crash = hub.name("hooked-crash")
    hub.api.create_repo(crash, repo_type="space", space_sdk="gradio")
    watch(hub, rec, "/crash", crash)
    hub.upload(crash, "crash", tmp_path, create=False)
    # restarts with backoff 1+2+4+8+16 s before giving up (plan.MAX_RESTARTS), after the build
    error = wait_event(rec, "/crash", crash, "runtime_error", timeout=RUN_TIMEOUT + 60)
    assert error["stage"] == "RUNTIME_ERROR" and "exited with code 1" in (error["errorMessage"] or ""), error
    assert "running" not in [e["event"] for e in runtime_events(rec.at("/crash"), crash)]
    for hook in hub.api.list_webhooks():
        hub.api.delete_webhook(hook.id)
