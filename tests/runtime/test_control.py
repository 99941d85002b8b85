"""The controller's channel (`runtime.control`): the route feed's versions and deltas as tables, and a worker's
`ControllerClient` against the real `control_app` served by uvicorn on a Unix socket (a stand-in front door records
what reaches the runtime), and the shared generation of the workers' host indexes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from spacehub.proxy.space_routes import SharedGeneration
from spacehub.runtime.backends.base import GpuUsage, ResourceUsage
from spacehub.runtime.control import ControllerClient, RouteFeed, control_app
from spacehub.runtime.front import RouteState

UP = RouteState("RUNNING", ("10.0.0.2", 7860))
STATIC = RouteState("RUNNING", None, "abc123")
PAUSED = RouteState("PAUSED")


@dataclass
class FakeReconciler:
    runs: dict[str, Any] = field(default_factory=dict)
    touched: list[str] = field(default_factory=list)
    kicked: list[str] = field(default_factory=list)

    def touch(self, space_id: str) -> None:
        self.touched.append(space_id)

    def kick(self, space_id: str) -> None:
        self.kicked.append(space_id)


@dataclass
class FakeFront:
    """What `control_app` and `RouteFeed` use of `FrontDoor`, with states set by the test."""

    states: dict[str, RouteState] = field(default_factory=dict)
    reconciler: FakeReconciler = field(default_factory=FakeReconciler)
    woken: list[str] = field(default_factory=list)
    storage: list[str] = field(default_factory=list)

    def state(self, space_id: str) -> RouteState | None:
        return self.states.get(space_id)

    def wake(self, space_id: str) -> None:
        self.woken.append(space_id)

    def storage_changed(self, space_id: str) -> None:
        self.storage.append(space_id)

    async def serve(self, space_id: str, timeout: float) -> RouteState | None:  # noqa: ASYNC109
        self.states[space_id] = UP
        return UP

    def usage(self, space_id: str) -> ResourceUsage | None:
        if space_id == "gpu":  # a Space holding a GPU: its figures come through too
            return ResourceUsage(0.5, 1024, None, None, {"1": GpuUsage(91, 8 * 2**30, 16 * 2**30)})
        return ResourceUsage(1.5, 2048, 10, None) if space_id in self.states else None


def test_the_feed_records_a_version_only_when_a_state_changes() -> None:
    front = FakeFront({"a": UP})
    feed = RouteFeed(front)  # type: ignore[arg-type]
    feed.publish("a")
    feed.publish("a")  # unchanged: nothing new
    assert feed.version == 1
    front.states["b"] = PAUSED
    feed.publish("b")
    del front.states["a"]
    feed.publish("a")
    assert feed.version == 3


@pytest.mark.parametrize(
    ("epoch", "since", "full", "states"),
    [
        ("mine", 3, False, {}),  # up to date
        ("mine", 1, False, {"b": PAUSED.to_json(), "a": None}),  # the changes since 1: b's state, a is gone
        ("mine", 2, False, {"a": None}),
        ("mine", 0, False, {"a": None, "b": PAUSED.to_json()}),  # a worker at version 0 gets all three changes
        ("", -1, True, {"b": PAUSED.to_json()}),  # first contact: every state
        ("another", 3, True, {"b": PAUSED.to_json()}),  # another controller's history: every state again
        ("mine", 9, True, {"b": PAUSED.to_json()}),  # ahead of this feed: every state
    ],
)
def test_the_feed_answers_what_a_worker_lacks(epoch: str, since: int, full: bool, states: dict[str, Any]) -> None:
    front = FakeFront({"a": UP})
    feed = RouteFeed(front)  # type: ignore[arg-type]
    feed.epoch = "mine"
    feed.publish("a")
    front.states["b"] = PAUSED
    feed.publish("b")
    del front.states["a"]
    feed.publish("a")
    answer = feed.since(epoch, since)
    assert (answer["full"], answer["states"], answer["version"], answer["epoch"]) == (full, states, 3, "mine")


def test_a_worker_far_behind_the_kept_changes_gets_every_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("spacehub.runtime.control.FEED_KEEP", 2)
    front = FakeFront()
    feed = RouteFeed(front)  # type: ignore[arg-type]
    for i in range(4):
        front.states[f"s{i}"] = UP
        feed.publish(f"s{i}")
    assert feed.since(feed.epoch, 2)["full"] is False  # versions 3 and 4 are kept
    answer = feed.since(feed.epoch, 1)  # version 2 is gone: everything
    assert answer["full"] is True and set(answer["states"]) == {"s0", "s1", "s2", "s3"}


async def eventually(check: Any, timeout: float = 5.0) -> None:  # noqa: ASYNC109
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "not within the time"
        await asyncio.sleep(0.01)


@pytest.fixture(autouse=True)
def short_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """A route poll waits half a second, not 20 (a server stops once its polls have answered)."""
    monkeypatch.setattr("spacehub.runtime.control.FEED_WAIT", 0.5)


@contextlib.asynccontextmanager
async def controller(front: FakeFront, socket: Path) -> AsyncIterator[RouteFeed]:
    feed = RouteFeed(front)  # type: ignore[arg-type]
    webhooks: list[bool] = []
    app = control_app(front, feed, lambda: webhooks.append(True), None)  # type: ignore[arg-type]
    app.state.webhooks = webhooks
    server = uvicorn.Server(uvicorn.Config(app, uds=str(socket), log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started)
    try:
        yield feed
    finally:
        server.should_exit = True
        await task


@pytest.mark.anyio
async def test_a_worker_mirrors_states_and_its_notices_reach_the_runtime(tmp_path: Path) -> None:
    front = FakeFront({"a": UP})
    socket = tmp_path / "control.sock"
    async with controller(front, socket) as feed:
        feed.publish("a")
        client = ControllerClient(socket, tmp_path / "spaces")
        await client.start()
        try:
            await asyncio.wait_for(client.synced.wait(), 5)
            assert client.state("a") == UP and client.stage("a") == "RUNNING"
            front.states["b"] = STATIC  # a change while the worker's poll waits: it arrives at once
            feed.publish("b")
            await eventually(lambda: client.state("b") == STATIC)
            del front.states["a"]
            feed.publish("a")
            await eventually(lambda: client.state("a") is None)

            await asyncio.to_thread(client.space_changed, "a")  # from a request's thread, after its commit
            client.storage_changed("b")
            client.wake("c")
            client.webhooks_due()
            await eventually(lambda: front.reconciler.kicked == ["a"] and front.storage == ["b"])
            assert front.woken == ["c"]
            client.touch("a")
            client.touch("a")
            await eventually(lambda: front.reconciler.touched == ["a"])  # a batch: one touch per Space

            assert await client.serve("z", 5.0) == UP  # a wake, answered once it serves
            assert client.state("z") == UP
            usage = await asyncio.to_thread(client.usage, "z")
            assert usage == ResourceUsage(1.5, 2048, 10, None)
            assert await asyncio.to_thread(client.usage, "nothing") is None
            gpu = await asyncio.to_thread(client.usage, "gpu")
            assert gpu == ResourceUsage(0.5, 1024, None, None, {"1": GpuUsage(91, 8 * 2**30, 16 * 2**30)})
        finally:
            await client.stop()


@pytest.mark.anyio
async def test_a_worker_follows_a_new_controller(tmp_path: Path) -> None:
    """A takeover: the new controller's feed is another epoch, and the worker takes all of it."""
    socket = tmp_path / "control.sock"
    client = ControllerClient(socket, tmp_path / "spaces")
    async with controller(FakeFront({"a": UP}), socket) as feed:
        feed.load = lambda: None  # type: ignore[method-assign]
        feed.publish("a")
        await client.start()
        await asyncio.wait_for(client.synced.wait(), 5)
        assert client.state("a") == UP
    try:
        async with controller(FakeFront({"b": PAUSED}), socket) as feed2:
            feed2.publish("b")  # one version, as the first feed had: the epoch tells them apart
            await eventually(lambda: client.epoch == feed2.epoch, timeout=30)
            assert client.state("a") is None and client.state("b") == PAUSED
    finally:
        await client.stop()


def test_the_shared_generation_is_seen_by_every_mapping(tmp_path: Path) -> None:
    one, two = SharedGeneration(tmp_path / "hosts.gen"), SharedGeneration(tmp_path / "hosts.gen")
    assert one.value() == two.value() == 0
    assert one.bump() == (0, 1) and two.bump() == (1, 2)
    assert one.value() == two.value() == 2
    one.close()
    two.close()
