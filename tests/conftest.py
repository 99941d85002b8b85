"""Shared fixtures: a live SpaceHub server (a real uvicorn process) with users, orgs and tokens made by the CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType

import httpx
import pytest

from spacehub.config import Settings
from spacehub.services.context import HubContext
from spacehub.wiring import hub_context
from tests.inprocess import InProcessHub, start_inprocess_hub, stop_inprocess_hub

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_UPDATE_CHECK", "1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "spacehub", *args, "--data-dir", str(data_dir)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "SPACEHUB_RUNTIME__BACKEND": "none", "SPACEHUB_SERVER__ACCESS_LOG": "true", **(env or {})},
    )
    return out.stdout


@dataclass
class Server:
    url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log: Path
    tokens: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # extra environment, also given to the CLI (SPACEHUB_DB__URL)

    def cli(self, *args: str) -> str:
        return cli(self.data_dir, *args, env=self.env)

    @property
    def http(self) -> httpx.Client:
        """Raw HTTP to any server (absolute URLs): the same attribute as `InProcessHub.http`, so request helpers
        serve both."""
        return _HTTP

    def user(self, name: str, role: str = "write") -> str:
        """Create ``name`` (if new) and return a fresh token of ``role``."""
        if name not in self.tokens:
            try:
                self.cli("users", "create", name)
            except subprocess.CalledProcessError as e:  # made by another fixture on this server (the web UI's)
                if "already taken" not in (e.stdout or "") + (e.stderr or ""):
                    raise
            self.tokens[name] = self.cli("tokens", "create", name).strip().splitlines()[-1]
        if role == "write":
            return self.tokens[name]
        return self.cli("tokens", "create", name, "--role", role).strip().splitlines()[-1]


_HTTP = httpx.Client(timeout=60)


def start_server(data_dir: Path, env: dict[str, str] | None = None, port: int | None = None) -> Server:
    """Start ``spacehub serve`` on ``data_dir`` (on ``port``, else a free one) and wait until it answers.

    Only an end-to-end test may (``slow``, see `pytest_collection_modifyitems`): inside any other test this fails, so
    a live server the automatic marking did not see fails the fast run at once instead of quietly slowing it."""
    if _running is not None and _running.get_closest_marker("slow") is None:
        pytest.fail(
            f"{_running.nodeid} starts a live `spacehub serve` but is not marked slow: it is end-to-end. Reach the "
            "server through a fixture that calls start_server (it is then marked slow automatically), or mark it "
            "@pytest.mark.slow; for API behaviour use the in-process hub (fixtures hub, make_hub) instead.",
            pytrace=False,
        )
    port = port or free_port()
    log = data_dir.parent / f"server-{port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "spacehub", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "SPACEHUB_RUNTIME__BACKEND": "none", "SPACEHUB_SERVER__ACCESS_LOG": "true", **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180  # generous: on a loaded machine a cold start took over 60 s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        try:
            httpx.get(url + "/api/agent-harnesses", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("server did not start")
    return Server(url, data_dir, proc, log, env=dict(env or {}))


def stop_server(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(10)
    except subprocess.TimeoutExpired:
        server.proc.kill()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("hub") / "data")
    yield srv
    stop_server(srv)


@pytest.fixture
def start_hub(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start extra servers for one test, each with its own data dir and extra env; all are stopped after it."""
    started: list[Server] = []

    def start(env: dict[str, str] | None = None) -> Server:
        started.append(start_server(tmp_path / f"hub{len(started)}" / "data", env))
        return started[-1]

    yield start
    for srv in started:
        stop_server(srv)


@pytest.fixture(scope="session")
def alice(server: Server) -> str:
    return server.user("alice")


@pytest.fixture(scope="session")
def bob(server: Server) -> str:
    return server.user("bob")


@pytest.fixture
def api(server: Server, alice: str):  # type: ignore[no-untyped-def]
    from huggingface_hub import HfApi

    return HfApi(endpoint=server.url, token=alice)


_counter = iter(range(10**9))


@pytest.fixture
def unique() -> str:
    """A fresh repo name per test (tests share one server)."""
    return f"r{os.getpid()}-{next(_counter)}-{int(time.time() * 1000) % 100000}"


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (``pytest.mark.anyio``) run on asyncio, the loop SpaceHub runs on."""
    return "asyncio"


@pytest.fixture
def ctx(tmp_path: Path) -> HubContext:
    """A HubContext on a fresh data dir (SQLite), for in-process service and runtime tests."""
    return hub_context(Settings(data_dir=tmp_path / "data"))


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessHub]:
    """The Hub app in-process (no runtime), shared by the tests of a worker: the real huggingface_hub client reaches
    it at ``hub.url`` (``hub.api(token)``), raw HTTP through ``hub.http`` (tests/inprocess.py)."""
    h = start_inprocess_hub(tmp_path_factory.mktemp("inproc") / "data")
    yield h
    stop_inprocess_hub(h)


@pytest.fixture
def make_hub(tmp_path: Path) -> Iterator[Callable[..., InProcessHub]]:
    """Extra in-process hubs for one test, each on its own data dir with Settings overrides; stopped after it."""
    started: list[InProcessHub] = []

    def make(**settings: object) -> InProcessHub:
        started.append(start_inprocess_hub(tmp_path / f"inproc{len(started)}" / "data", settings))
        return started[-1]

    yield make
    for h in started:
        stop_inprocess_hub(h)


# ---- what is end-to-end (``slow``): `make test-fast` runs the rest (``-m "not slow"``), `make test` everything ----
SLOW_FOLDERS = ("e2e", "compat", "bench")  # whole folders of end-to-end tests: real apps, clients, benchmarks
# What starts something real outside the test process: a live `spacehub serve` (start_server), the Kubernetes control
# plane (ControlPlane). A test is end-to-end when it, or any fixture it uses (as resolved for it, overrides included,
# and whatever fixtures they use in turn), calls one of them: found in the code, so no list of fixtures to keep.
END_TO_END_CALLS = frozenset({"start_server", "ControlPlane"})

_running: pytest.Item | None = None  # the test being set up, run or torn down (start_server checks it)
_fast_run = False  # this run leaves out the slow tests (``-m "not slow"``)


def fast_run() -> bool:
    """Whether this run leaves out the slow tests: test_fuzz.py then generates fewer requests per operation."""
    return _fast_run


def pytest_configure(config: pytest.Config) -> None:
    from _pytest.mark.expression import Expression

    global _fast_run
    expr = config.option.markexpr
    _fast_run = bool(expr) and not Expression.compile(expr).evaluate(lambda name, **kwargs: name == "slow")


def _calls(code: CodeType, names: frozenset[str]) -> bool:
    """Whether ``code`` (or a function defined inside it) names one of ``names``."""
    return bool(names.intersection(code.co_names)) or any(
        _calls(c, names) for c in code.co_consts if isinstance(c, CodeType)
    )


def is_end_to_end(item: pytest.Item) -> bool:
    root = Path(__file__).parent
    parts = Path(item.path).relative_to(root).parts
    if parts and parts[0] in SLOW_FOLDERS:
        return True
    funcs = [getattr(item, "function", None)]
    info = getattr(item, "_fixtureinfo", None)
    for name in getattr(item, "fixturenames", ()):
        defs = list(info.name2fixturedefs.get(name, ())) if info is not None else []
        while defs:  # the one this test gets, and those it overrides if it asks for its own name
            fixturedef = defs.pop()
            funcs.append(fixturedef.func)
            if name not in fixturedef.argnames:
                break
    return any(_calls(f.__code__, END_TO_END_CALLS) for f in funcs if hasattr(f, "__code__"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the end-to-end tests ``slow``: those under tests/e2e, tests/compat and tests/bench, and those that start a
    live server or the Kubernetes control plane (`is_end_to_end`). Tests marked ``slow`` by hand stay so (a real app
    of their own, a long run)."""
    for item in items:
        if is_end_to_end(item):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    global _running
    _running = item
    try:
        return (yield)
    finally:
        _running = None
