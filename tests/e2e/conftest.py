"""End-to-end fixtures: a live SpaceHub with the local backend (real processes, uv environments, the Space proxy),
driven with the real ``huggingface_hub`` client, and the example Spaces of ``examples/spaces/``.

One server per test module (``hub``), so that the Python environments it builds (gradio is one) are reused by the
module's tests. uv's package cache is shared by every server of the run, xdist workers included
(``runtime.uv_cache_dir``), so a second server installs gradio from hard links in a few seconds.

Every wait is bounded, and a timeout says what the Space was doing: its last runtime, the tails of its build and run
logs, and the tail of the server's own log.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi

from tests.conftest import ROOT, Server, start_server, stop_server

EXAMPLES = ROOT / "examples" / "spaces"
INTERMEDIATE = {"BUILDING", "RUNNING_BUILDING", "APP_STARTING", "RUNNING_APP_STARTING"}


def runtime_env(uv_cache: Path, **extra: str) -> dict[str, str]:
    return {
        "SPACEHUB_RUNTIME__BACKEND": "local",
        "SPACEHUB_RUNTIME__UV_CACHE_DIR": str(uv_cache),
        "SPACEHUB_RUNTIME__RECONCILE_INTERVAL": "2",
        **extra,
    }


@pytest.fixture(scope="session")
def uv_cache(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """One uv cache for the whole run: under xdist, the workers' base temp dirs share a parent."""
    base = tmp_path_factory.getbasetemp()
    path = (base.parent if worker_id != "master" else base) / "e2e-uv-cache"
    path.mkdir(exist_ok=True)
    return path


@dataclass
class Hub:
    """A live server with the local runtime, and the user ``alice`` who owns the Spaces the tests make."""

    server: Server
    alice: str
    api: HfApi
    names: Iterator[int] = field(default_factory=lambda: iter(range(10**6)))

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return int(self.server.url.rsplit(":", 1)[1])

    def name(self, prefix: str) -> str:
        return f"alice/{prefix}-{os.getpid()}-{next(self.names)}"

    # ---- Spaces ----------------------------------------------------------------------------------------------
    def upload(
        self,
        repo_id: str,
        example: str,
        tmp: Path,
        *,
        replace: dict[str, tuple[str, str]] | None = None,
        files: dict[str, str] | None = None,
        delete: Iterable[str] = (),
        private: bool = False,
        create: bool = True,
    ) -> str:
        """Upload ``examples/spaces/<example>`` (changed: ``replace`` maps a file to (old, new) text, ``files`` adds
        or overwrites files, ``delete`` leaves files out) as ``repo_id``; answers the commit sha."""
        folder = tmp / f"upload-{repo_id.replace('/', '-')}-{time.monotonic_ns()}"
        shutil.copytree(EXAMPLES / example, folder)
        for path, (old, new) in (replace or {}).items():
            text = (folder / path).read_text()
            assert old in text, f"{old!r} is not in {example}/{path}"
            (folder / path).write_text(text.replace(old, new))
        for path, text in (files or {}).items():
            (folder / path).write_text(text)
        for path in delete:
            (folder / path).unlink()
        if create:
            sdk = "static" if example == "static" else "streamlit" if example == "streamlit" else "gradio"
            self.api.create_repo(repo_id, repo_type="space", space_sdk=sdk, private=private, exist_ok=True)
        info = self.api.upload_folder(repo_id=repo_id, repo_type="space", folder_path=folder)
        return info.oid

    def runtime(self, repo_id: str) -> Any:
        return self.api.get_space_runtime(repo_id)

    def wait(
        self,
        repo_id: str,
        stages: str | set[str],
        timeout: float,
        *,
        seen: list[str] | None = None,
        until: Callable[[Any], bool] | None = None,
        after: str | None = None,
    ) -> Any:
        """Poll the runtime until its stage is one of ``stages`` (and ``until(runtime)`` holds); answers the runtime.
        ``seen`` collects every stage observed; ``after`` (a commit sha) waits for the runtime to be past it: the
        stage of an older commit does not count, as long as the Space has not left it."""
        want = {stages} if isinstance(stages, str) else stages
        deadline = time.monotonic() + timeout
        rt = None
        while True:
            rt = self.runtime(repo_id)
            if seen is not None and (not seen or seen[-1] != rt.stage):
                seen.append(rt.stage)
            if rt.stage in want and (until is None or until(rt)):
                return rt
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        raise AssertionError(
            f"{repo_id}: no stage in {sorted(want)} after {timeout:.0f}s; stages seen {seen}\n" + self.report(repo_id)
        )

    def report(self, repo_id: str) -> str:
        """What a failing wait shows: the last runtime, the logs' tails, the server log's tail."""
        try:
            raw = self.api.get_space_runtime(repo_id).raw
        except Exception as e:
            raw = repr(e)
        out = [f"last runtime: {raw}"]
        for kind in ("build", "run"):
            lines = self.logs(repo_id, kind)
            out.append(f"--- {kind} log (last 40 of {len(lines)} lines) ---\n" + "\n".join(lines[-40:]))
        server_log = self.server.log.read_text(errors="replace").splitlines()
        out.append("--- server log (last 40 lines) ---\n" + "\n".join(server_log[-40:]))
        return "\n".join(out)

    def logs(self, repo_id: str, kind: str = "run", quiet: float = 1.0, limit: float = 20.0,
             token: str | None = None) -> list[str]:  # fmt: skip
        """The log's lines (no timestamps) as the SSE route sends them, read until ``quiet`` seconds pass without
        a new line (the stream stays open while the Space runs), with alice's token unless ``token``. Faster than
        fetch_space_logs' 5 s."""
        lines: list[str] = []
        deadline = time.monotonic() + limit
        try:
            with httpx.stream(
                "GET",
                f"{self.url}/api/spaces/{repo_id}/logs/{kind}",
                headers={"authorization": f"Bearer {token or self.alice}"},
                timeout=httpx.Timeout(10.0, read=quiet),
            ) as r:
                if r.status_code != 200:
                    return [f"(logs: HTTP {r.status_code} {r.read()[:200]!r})"]
                for line in r.iter_lines():
                    if line.startswith("data: {"):
                        lines.append(json.loads(line[6:])["data"].rstrip("\n"))
                    if time.monotonic() > deadline:
                        break
        except httpx.ReadTimeout:
            pass
        except httpx.HTTPError as e:
            lines.append(f"(logs: {e!r})")
        return lines

    def space_id(self, repo_id: str) -> str:
        """The Space's database id (``_id``), which names its runtime files: logs in ``{data_dir}/spaces/<id>/``,
        ``space_id`` in each instance's launch.json."""
        r = httpx.get(f"{self.url}/api/spaces/{repo_id}", headers={"authorization": f"Bearer {self.alice}"})
        r.raise_for_status()
        return str(r.json()["_id"])

    def instances(self, repo_id: str) -> list[dict[str, Any]]:
        """launch.json of every instance the local backend runs for the Space (state.json merged in)."""
        space_id, out = self.space_id(repo_id), []
        for launch in sorted((self.server.data_dir / "runtime" / "instances").glob("*/launch.json")):
            try:
                data = json.loads(launch.read_text())
                state = launch.with_name("state.json")
                data.update(json.loads(state.read_text()) if state.exists() else {})
            except (OSError, ValueError):
                continue
            if data.get("space_id") == space_id:
                out.append(data)
        return out

    def only_instance(self, repo_id: str, wait: float = 15.0) -> dict[str, Any]:
        """The Space's one instance, once the release a switch replaced has drained and stopped (plan.DRAIN_SECONDS
        after the switch, while the stage already says RUNNING)."""
        deadline = time.monotonic() + wait
        while len(found := self.instances(repo_id)) != 1:
            assert time.monotonic() < deadline, f"instances of {repo_id}: {found}"
            time.sleep(0.1)
        return found[0]

    # ---- the proxy -------------------------------------------------------------------------------------------
    def host(self, repo_id: str) -> str:
        return f"{self.api.space_info(repo_id).subdomain}.localhost:{self.port}"

    def get(self, repo_id: str, path: str = "/", token: str | None = None, **kw: Any) -> httpx.Response:
        """GET ``path`` of the Space through the proxy (``Host: {subdomain}.localhost:{port}``)."""
        headers = {"host": self.host(repo_id), **kw.pop("headers", {})}
        if token:
            headers["authorization"] = f"Bearer {token}"
        return httpx.get(self.url + path, headers=headers, timeout=kw.pop("timeout", 30.0), **kw)

    def answers(self, repo_id: str, status: int, timeout: float = 30.0, **kw: Any) -> httpx.Response:
        """Wait until the Space's page (through the proxy) answers ``status``. A pause or a failure is in the runtime
        document at once (the accepted stage) and in the proxy's routes after the runtime's next pass."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.get(repo_id, **kw)
            if r.status_code == status or time.monotonic() > deadline:
                assert r.status_code == status, f"{repo_id}: {r.status_code} {r.text[:300]!r}\n" + self.report(repo_id)
                return r
            time.sleep(0.2)

    def serves(self, repo_id: str, text: str, timeout: float = 30.0) -> httpx.Response:
        """Wait until the Space's page (through the proxy) answers 200 with ``text`` in it."""
        deadline = time.monotonic() + timeout
        r: httpx.Response | None = None
        while time.monotonic() < deadline:
            try:
                r = self.get(repo_id)
                if r.status_code == 200 and text in r.text:
                    return r
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        got = f"{r.status_code} {r.text[:300]!r}" if r is not None else "no answer"
        raise AssertionError(f"{repo_id} does not serve {text!r} after {timeout:.0f}s: {got}\n" + self.report(repo_id))


def start_hub(data_dir: Path, uv_cache: Path, port: int | None = None) -> Hub:
    server = start_server(data_dir, env=runtime_env(uv_cache), port=port)
    alice = server.user("alice")
    return Hub(server, alice, HfApi(endpoint=server.url, token=alice))


def restart_hub(hub: Hub, uv_cache: Path) -> None:
    """Stop the server with SIGTERM (as an operator or systemd would) and start it again on the same data dir and
    port. Apps keep running meanwhile."""
    old = hub.server
    stop_server(old)
    assert old.proc.returncode is not None
    hub.server = start_server(old.data_dir, env=runtime_env(uv_cache), port=hub.port)
    hub.server.tokens = old.tokens


def stop_hub(hub: Hub) -> None:
    """Stop the server (SIGTERM; apps keep running, as after any SpaceHub restart), then every app it left, then
    unmount the Spaces' storage images (they stay mounted across SpaceHub restarts; their loop devices go with them)."""
    from spacehub.runtime.backends.local_disks import unmount_all

    stop_server(hub.server)
    stop_apps(hub.server.data_dir)
    unmount_all(hub.server.data_dir)


def docker_builds(data_dir: Path) -> list[dict[str, Any]]:
    """The build.json of every docker build under ``data_dir`` (read before the server stops)."""
    metas = [json.loads(p.read_text()) for p in (data_dir / "runtime" / "builds").glob("*/build.json")]
    return [m for m in metas if m.get("image")]


def remove_images(builds: Iterable[dict[str, Any]]) -> None:
    """Remove the images of ``docker_builds``: from root's store, and from the build user's (rootless builds keep
    theirs as a layer cache), as the backend's drop_build does."""
    from spacehub.runtime.backends.local_builder import BuildUserUnavailable, find_build_user, remove_image
    from spacehub.runtime.backends.local_docker import engine_args, engine_call

    for meta in builds:
        engine_call(meta["engine"], ["rmi", "-f", meta["image"]], os.environ)
        if meta.get("builder"):
            try:
                user = find_build_user(meta["builder"])
            except BuildUserUnavailable:
                continue
            if user is not None:
                remove_image(engine_args(meta["engine"]), user, meta["image"], os.environ)


def stop_apps(data_dir: Path) -> None:
    """Stop the apps recorded under ``data_dir``: with the local backend's own stop, which thaws frozen ones first (a
    frozen process does not act on signals), then by the pids of any state.json left (nothing else)."""
    from spacehub.runtime.backends.local import LocalProcessBackend
    from spacehub.runtime.procs import kill_instance

    if (data_dir / "runtime").is_dir():
        backend = LocalProcessBackend(data_dir / "runtime")
        for inst in backend.list_instances():
            backend.stop(inst.release_id)
    for state in (data_dir / "runtime" / "instances").glob("*/state.json"):
        try:
            kill_instance(json.loads(state.read_text()), None, 1.0)
        except (OSError, ValueError, KeyError):
            continue


def pid_alive(pid: int, starttime: int | None) -> bool:
    """True when ``pid`` still runs with the start time the supervisor recorded (pids get reused)."""
    from spacehub.runtime.procs import alive

    return alive(pid, starttime)


def processes_with(text: str) -> list[str]:
    """Command lines of this machine's processes that contain ``text`` (to look for orphans), from /proc."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if text in args:
            found.append(f"{cmdline.parent.name} {args}")
    return found


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, uv_cache: Path) -> Iterator[Hub]:
    h = start_hub(tmp_path_factory.mktemp("e2e") / "data", uv_cache)
    yield h
    stop_hub(h)
