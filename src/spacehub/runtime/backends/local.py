"""LocalProcessBackend: Spaces as processes on this machine, each under a supervisor that outlives SpaceHub.

Layout under ``root`` (e.g. ``{data_dir}/runtime``)::

    builds/<build_id>/src         the checkout (the app's working directory), LFS files materialized
    builds/<build_id>/build.json  what was built: sdk, revision, environment or image; written last, then the folder
                                  is renamed from builds/.tmp-<build_id>-…, so a build exists whole or not at all
    envs/, uv-cache/              shared Python environments and uv's cache (local_build.py)
    instances/<release_id>/       launch.json (by us), state.json and exit.json (by the supervisor), supervisor.log
    homes/<space_id>/             HOME of the Space's processes, kept across restarts

Instances are found again from their files after a SpaceHub restart (adoption): a process counts as alive when its
pid still runs with the start time recorded in state.json. Limits come from cgroups (cgroups.py); the supervisor
(supervise.py) joins the cgroup before starting the app, so every child of the app inherits it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from spacehub.runtime.backends.base import BuildFailed, BuildSpec, Endpoint, InstanceStatus, ReleaseSpec
from spacehub.runtime.backends.local_build import PythonEnvs, file_lock
from spacehub.runtime.backends.local_docker import (
    build_image,
    container_name,
    docker_run_command,
    engine_call,
    find_engine,
    image_tag,
)
from spacehub.runtime.cgroups import Cgroup, CgroupHost, CgroupUnavailable
from spacehub.runtime.checkout import write_checkout
from spacehub.runtime.supervise import proc_starttime, write_json

HOST = "127.0.0.1"
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Always set, whatever the Space asks: nothing phones home when an app starts (see the runtime probes, §4.3).
QUIET_ENV = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    "STREAMLIT_SERVER_HEADLESS": "true",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}
PASSED_TO_BUILDS = (
    "HOME",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
)


def build_env() -> dict[str, str]:
    """The environment of build tools: a few variables of the server's, and its PATH without version-manager shims
    (pyenv's shims answer for interpreters that are not there, which stops uv's interpreter discovery)."""
    env = {k: v for k, v in os.environ.items() if k in PASSED_TO_BUILDS}
    path = [p for p in os.environ.get("PATH", SYSTEM_PATH).split(":") if p and Path(p).name != "shims"]
    env["PATH"] = ":".join(path) or SYSTEM_PATH
    return env


def _check_id(kind: str, value: str) -> None:
    if not ID_RE.match(value):
        raise BuildFailed(f"invalid {kind} {value!r}")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _alive(pid: int | None, starttime: int | None) -> bool:
    return pid is not None and starttime is not None and proc_starttime(pid) == starttime


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                    found.append(int(d.name))
    return found


def _boot_id() -> str:
    with contextlib.suppress(OSError):
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return ""


class LocalProcessBackend:
    """Runs Spaces as local processes. ``sdk_packages`` replaces the packages an SDK installs (tests use
    ``{"gradio": []}``); ``use_cgroups=False`` runs without limits; ``uv_bin`` defaults to the ``uv`` package's;
    ``uv_cache_dir`` defaults to ``{root}/uv-cache`` (keep it on the same filesystem: uv hard-links from it)."""

    name = "local"

    def __init__(
        self,
        root: Path,
        *,
        index_url: str | None = None,
        sdk_packages: Mapping[str, Sequence[str]] | None = None,
        use_cgroups: bool = True,
        port_range: tuple[int, int] = (20000, 30000),
        build_timeout: float = 3600.0,
        stop_grace: float = 5.0,
        uv_bin: str | None = None,
        uv_cache_dir: Path | None = None,
        cgroup_host: CgroupHost | None = None,
    ) -> None:
        self.root = root.resolve()
        self.builds, self.instances, self.homes = (self.root / d for d in ("builds", "instances", "homes"))
        for d in (self.builds, self.instances, self.homes):
            d.mkdir(parents=True, exist_ok=True)
        self.tag = hashlib.sha256(str(self.root).encode()).hexdigest()[:8]
        self.use_cgroups = use_cgroups
        self.cgroups = cgroup_host or CgroupHost(self.tag)
        self.port_range = port_range
        self.build_timeout = build_timeout
        self.stop_grace = stop_grace
        self.env = build_env()
        if uv_bin is None:
            import uv  # the wheel ships the binary

            uv_bin = uv.find_uv_bin()
        self.envs = PythonEnvs(self.root, uv_bin, self.env, index_url, sdk_packages, build_timeout, uv_cache_dir)

    # ---- builds ----------------------------------------------------------------------------------------------
    def build(self, spec: BuildSpec, log: Callable[[str], None]) -> None:
        """Check out ``spec.revision`` into builds/<build_id>/src and prepare what the SDK needs. Raises:
        BuildFailed."""
        _check_id("build id", spec.build_id)
        final = self.builds / spec.build_id
        with file_lock(self.builds / f".{spec.build_id}.lock"):
            if self.build_exists(spec.build_id):
                log(f"Build {spec.build_id} exists already")
                return
            for stale in self.builds.glob(f".tmp-{spec.build_id}-*"):
                shutil.rmtree(stale, ignore_errors=True)
            tmp = self.builds / f".tmp-{spec.build_id}-{os.getpid()}"
            started = time.monotonic()
            try:
                self._build_into(tmp, spec, log)
                tmp.rename(final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        log(f"Build done in {time.monotonic() - started:.1f}s")

    def _build_into(self, tmp: Path, spec: BuildSpec, log: Callable[[str], None]) -> None:
        if spec.sdk not in ("gradio", "streamlit", "docker", "static"):
            raise BuildFailed(f"Unknown sdk {spec.sdk!r}: use gradio, streamlit, docker or static")
        log(f"Checking out {spec.revision}")
        stats = write_checkout(spec.git_dir, spec.revision, spec.lfs_dir, tmp / "src", log)
        how = f", {stats.copied} copied" if stats.copied else ""
        log(f"Checked out {stats.files} files ({stats.lfs_files} from LFS, {stats.lfs_bytes} bytes{how})")
        meta: dict[str, Any] = {
            "build_id": spec.build_id,
            "space_id": spec.space_id,
            "revision": spec.revision,
            "sdk": spec.sdk,
            "sdk_version": spec.sdk_version,
            "env": None,
            "image": None,
            "engine": None,
        }
        if spec.sdk in ("gradio", "streamlit"):
            env = self.envs.ensure(
                spec.sdk, spec.sdk_version, spec.python_version, tmp / "src", spec.use_cache, log, tmp / "env.pin"
            )
            meta["env"] = str(env)
        elif spec.sdk == "docker":
            engine = find_engine()
            if engine is None:
                raise BuildFailed(
                    "docker Spaces need a container engine: podman or docker is not installed on this host"
                )
            meta["engine"], meta["image"] = engine, image_tag(spec.space_id, spec.build_id)
            build_image(engine, tmp / "src", meta["image"], self.env, log, self.build_timeout, spec.use_cache)
        write_json(tmp / "build.json", meta)

    def build_exists(self, build_id: str) -> bool:
        return ID_RE.match(build_id) is not None and (self.builds / build_id / "build.json").is_file()

    def drop_build(self, build_id: str) -> None:
        """Remove the checkout (and a docker build's image); environments superseded by a factory reboot go when
        no build uses them any more. Idempotent."""
        _check_id("build id", build_id)
        final = self.builds / build_id
        meta = _read_json(final / "build.json") or {}
        with file_lock(self.builds / f".{build_id}.lock"):
            if not final.exists():
                return
            trash = self.builds / f".trash-{build_id}-{os.getpid()}"
            final.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        if meta.get("image"):
            engine_call(meta["engine"], ["rmi", "-f", meta["image"]], self.env)
        if meta.get("env"):
            self.envs.prune(Path(meta["env"]).parent.name, self._pinned_envs())

    def _pinned_envs(self) -> set[Path]:
        return {Path(p.read_text().strip()) for p in self.builds.glob("*/env.pin") if p.is_file()} | {
            Path(p.read_text().strip()) for p in self.builds.glob(".tmp-*/env.pin") if p.is_file()
        }

    # ---- instances -------------------------------------------------------------------------------------------
    def start(self, spec: ReleaseSpec, log_path: Path) -> Endpoint:
        """Start the app under its supervisor and return where it will listen. Idempotent while it runs.
        Raises: BuildFailed when it cannot be started (no build, static Space, nothing to run)."""
        _check_id("release id", spec.release_id)
        meta = _read_json(self.builds / spec.build_id / "build.json") if ID_RE.match(spec.build_id) else None
        if meta is None:
            raise BuildFailed(f"Build {spec.build_id} does not exist: build it first")
        if meta["sdk"] == "static":
            raise BuildFailed("Static Spaces are served by SpaceHub itself: there is no process to start")
        if meta["env"] and not (Path(meta["env"]) / "bin" / "python").exists():
            raise BuildFailed(f"The Python environment of build {spec.build_id} is gone: rebuild it")
        inst = self.instances / spec.release_id
        with file_lock(self.instances / ".lock"):
            current = self.status(spec.release_id)
            if current is not None and current.running and current.endpoint is not None:
                return current.endpoint
            if current is not None:
                self._teardown(spec.release_id)
            port = self._free_port()
            inst.mkdir()
            launch, env = self._launch(spec, meta, port, log_path.resolve())
            write_json(inst / "launch.json", launch)
        self._spawn(inst, env)
        return Endpoint(HOST, port)

    def _launch(
        self, spec: ReleaseSpec, meta: dict[str, Any], port: int, log_path: Path
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """launch.json (no secret in it) and the app's environment (handed to the supervisor on a pipe)."""
        src = self.builds / spec.build_id / "src"
        home = self.homes / re.sub(r"[^A-Za-z0-9._-]", "_", spec.space_id)
        home.mkdir(exist_ok=True)
        launch: dict[str, Any] = {
            "release_id": spec.release_id,
            "build_id": spec.build_id,
            "space_id": spec.space_id,
            "host": HOST,
            "port": port,
            "cwd": str(src),
            "log_path": str(log_path),
            "boot_id": _boot_id(),
            "data_dir": str(spec.data_dir) if spec.data_dir else None,
        }
        log_path.parent.mkdir(parents=True, exist_ok=True)
        if spec.data_dir is not None:
            spec.data_dir.mkdir(parents=True, exist_ok=True)
        if meta["sdk"] == "docker":
            return self._launch_container(spec, meta, launch)
        python = str(Path(meta["env"]) / "bin" / "python")
        app = spec.app_file or "app.py"
        if meta["sdk"] == "streamlit":
            args = ["--server.port", str(port), "--server.address", HOST, "--server.headless", "true"]
            launch["command"] = [python, "-m", "streamlit", "run", app, *args]
        else:
            launch["command"] = [python, app]
        env = {"PATH": f"{meta['env']}/bin:{SYSTEM_PATH}", "HOME": str(home), "LANG": "C.UTF-8"}
        env |= {"PYTHONUNBUFFERED": "1", "VIRTUAL_ENV": meta["env"], **spec.env, **QUIET_ENV}
        env |= {"PORT": str(port), "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": HOST}
        if spec.resources.devices:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(spec.resources.devices)
        if spec.data_dir is not None:
            launch["data_mode"] = "mount" if os.geteuid() == 0 else "env"
            launch["data_reason"] = "a private mount namespace needs root"
        self._limits(spec, launch)
        return launch, env

    def _launch_container(
        self, spec: ReleaseSpec, meta: dict[str, Any], launch: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        app_env = {**spec.env, **QUIET_ENV, "PORT": str(spec.app_port)}
        if spec.resources.devices:
            app_env["CUDA_VISIBLE_DEVICES"] = ",".join(spec.resources.devices)
        name = container_name(self.tag, spec.release_id)
        launch["container"] = {"engine": meta["engine"], "name": name}
        launch["command"] = docker_run_command(
            meta["engine"],
            name,
            meta["image"],
            launch["port"],
            spec.app_port,
            sorted(app_env),
            spec.resources,
            spec.data_dir,
        )
        launch["limits"] = f"{Path(meta['engine']).name} (container limits)"
        return launch, {**self.env, **app_env}

    def _limits(self, spec: ReleaseSpec, launch: dict[str, Any]) -> None:
        try:
            if not self.use_cgroups:
                raise CgroupUnavailable("cgroups are turned off for this backend")
            cg = self.cgroups.create(spec.release_id, spec.resources)
        except CgroupUnavailable as e:
            launch["limits"] = f"none: {e}"
            return
        launch["cgroup"] = cg.to_json()
        launch["cgroup_procs"] = cg.procs_files
        launch["limits"] = cg.limits
        mem = cg.dirs.get("memory") if cg.version == 1 else cg.dirs["unified"]
        if mem:
            launch["oom_file"] = str(Path(mem) / ("memory.oom_control" if cg.version == 1 else "memory.events"))

    def _spawn(self, inst: Path, env: dict[str, str]) -> None:
        cmd = [sys.executable, "-I", "-m", "spacehub.runtime.supervise", str(inst)]
        proc = subprocess.Popen(
            cmd,
            cwd=inst,
            env={"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"},
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        _, err = proc.communicate(json.dumps(env).encode(), timeout=30)
        deadline = time.monotonic() + 30
        while not (inst / "state.json").exists() and not (inst / "exit.json").exists():
            if time.monotonic() > deadline or proc.returncode:
                self._teardown(inst.name)
                raise BuildFailed(f"The app's supervisor did not start: {err.decode(errors='replace')[-2000:]}")
            time.sleep(0.005)
        failed = _read_json(inst / "exit.json")
        if failed and failed.get("error") and not (inst / "state.json").exists():
            self._teardown(inst.name)
            raise BuildFailed(f"The app cannot be started: {failed['error']}")

    def _free_port(self) -> int:
        """A port no instance holds and nothing listens on (held: ``instances/.lock``)."""
        held = {d.get("port") for d in (_read_json(p) for p in self.instances.glob("*/launch.json")) if d}
        low, high = self.port_range
        for _ in range(500):
            port = random.randint(low, high - 1)
            if port in held:
                continue
            with socket.socket() as s:
                try:
                    s.bind((HOST, port))
                except OSError:
                    continue
            return port
        raise BuildFailed(f"No free port between {low} and {high}")

    # ---- observing -------------------------------------------------------------------------------------------
    def _files(self, release_id: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None, dict[str, Any] | None]:
        inst = self.instances / release_id
        return _read_json(inst / "launch.json"), _read_json(inst / "state.json"), _read_json(inst / "exit.json")

    def status(self, release_id: str) -> InstanceStatus | None:
        if not ID_RE.match(release_id):
            return None
        launch, state, done = self._files(release_id)
        if launch is None:
            return None
        same_boot = launch.get("boot_id") == _boot_id()
        running = same_boot and done is None and state is not None and _alive(state["pid"], state["starttime"])
        if not running and done is None and state is not None and same_boot:
            # The app just ended: its supervisor is writing exit.json.
            deadline = time.monotonic() + 2
            while _alive(state["supervisor_pid"], state["supervisor_starttime"]) and time.monotonic() < deadline:
                time.sleep(0.01)
                if (done := _read_json(self.instances / release_id / "exit.json")) is not None:
                    break
        limits = launch.get("limits", "none")
        if state and state.get("data") and state["data"] != "/data":
            limits += f"; {state['data']}"
        return InstanceStatus(
            release_id=release_id,
            build_id=launch["build_id"],
            running=running,
            frozen=running and self._frozen(release_id, launch),
            endpoint=Endpoint(launch["host"], launch["port"]) if running else None,
            exit_code=done.get("code") if done and not running else None,
            limits=limits,
        )

    def _frozen(self, release_id: str, launch: dict[str, Any]) -> bool:
        if launch.get("container"):
            return (self.instances / release_id / "paused").exists()
        return bool(launch.get("cgroup")) and Cgroup.from_json(launch["cgroup"]).frozen()

    def list_instances(self) -> list[InstanceStatus]:
        found = (self.status(d.name) for d in sorted(self.instances.iterdir()) if d.is_dir())
        return [s for s in found if s is not None]

    # ---- stopping and sleeping -------------------------------------------------------------------------------
    def stop(self, release_id: str) -> None:
        """SIGTERM the app's process group (and cgroup), SIGKILL what is left after the grace period, then forget
        the instance. Idempotent."""
        if ID_RE.match(release_id):
            with file_lock(self.instances / ".lock"):
                self._teardown(release_id)

    def _teardown(self, release_id: str) -> None:
        inst = self.instances / release_id
        launch, state, _ = self._files(release_id)
        if launch is not None and launch.get("boot_id") == _boot_id():
            cg = Cgroup.from_json(launch["cgroup"]) if launch.get("cgroup") else None
            if launch.get("container"):
                c = launch["container"]
                engine_call(c["engine"], ["stop", "-t", str(int(self.stop_grace)), c["name"]], self.env)
                engine_call(c["engine"], ["rm", "-f", c["name"]], self.env)
            if cg is not None and cg.frozen():
                cg.set_frozen(False)
            if state is not None:
                self._kill_group(state, cg)
            if cg is not None:
                cg.remove()
        shutil.rmtree(inst, ignore_errors=True)

    def _kill_group(self, state: dict[str, Any], cg: Cgroup | None) -> None:
        pgid = state["pgid"]
        # After the app is gone its group may still hold children; while the group exists its id is not reused.
        ours = _alive(state["pid"], state["starttime"]) or bool(_group_members(pgid))

        def members() -> list[int]:
            return (_group_members(pgid) if ours else []) + sorted(cg.pids() if cg else [])

        for sig, wait in ((signal.SIGTERM, self.stop_grace), (signal.SIGKILL, 2.0)):
            if ours:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, sig)
            if cg is not None:
                for pid in cg.pids():
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while members() and time.monotonic() < deadline:
                time.sleep(0.02)
        deadline = time.monotonic() + 2
        while _alive(state["supervisor_pid"], state["supervisor_starttime"]):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(state["supervisor_pid"], signal.SIGKILL)
            time.sleep(0.01)

    def freeze(self, release_id: str) -> bool:
        """Freeze every process of the instance (cgroup freezer; ``pause`` for containers). False when the
        instance runs without a freezer (no cgroup) or is not running."""
        st = self.status(release_id)
        launch, _, _ = self._files(release_id)
        if st is None or not st.running or launch is None:
            return False
        if launch.get("container"):
            c = launch["container"]
            if engine_call(c["engine"], ["pause", c["name"]], self.env):
                (self.instances / release_id / "paused").touch()
                return True
            return False
        cg = Cgroup.from_json(launch["cgroup"]) if launch.get("cgroup") else None
        return cg is not None and cg.can_freeze and cg.set_frozen(True)

    def thaw(self, release_id: str) -> None:
        launch, _, _ = self._files(release_id)
        if launch is None:
            return
        if launch.get("container"):
            c = launch["container"]
            engine_call(c["engine"], ["unpause", c["name"]], self.env)
            (self.instances / release_id / "paused").unlink(missing_ok=True)
        elif launch.get("cgroup"):
            Cgroup.from_json(launch["cgroup"]).set_frozen(False)
