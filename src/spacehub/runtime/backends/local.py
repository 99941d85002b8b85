"""LocalProcessBackend: Spaces as processes on this machine, each under a supervisor that outlives SpaceHub.

Layout under ``root`` (e.g. ``{data_dir}/runtime``)::

    builds/<build_id>/src         the checkout (the app's working directory), LFS files materialized
    builds/<build_id>/build.json  what was built: sdk, revision, environment or image; written last, then the folder
                                  is renamed from builds/.tmp-<build_id>-…, so a build exists whole or not at all
    envs/, uv-cache/              shared Python environments and uv's cache (local_build.py)
    instances/<release_id>/       launch.json (by us), state.json and exit.json (by the supervisor), supervisor.log
    instances/.locks/             flocks: one per release, one for port allocation
    homes/<space_id>/             HOME of the Space's processes, kept until the Space is deleted (forget)
    volumes/<repo id>-<commit>/   read-only checkouts of mounted repos (local_volumes.py)

Outside it, given at construction: the repos it checks out (``repos``, a `RepoFiles`), the persistent storage
(``storage_root/<name>``: folders or disk images, local_disks.py) and the Spaces' run logs (``run_log(space id)``,
the runtime's log store, appended to by the supervisor).

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
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from spacehub.runtime import sandbox
from spacehub.runtime.backends import local_disks
from spacehub.runtime.backends.base import (
    BuildFailed,
    BuildSpec,
    Endpoint,
    InstanceStatus,
    ReleaseSpec,
    ResourceUsage,
)
from spacehub.runtime.backends.local_build import PythonEnvs, file_lock, stop_builds
from spacehub.runtime.backends.local_builder import BuildUser, BuildUserUnavailable, find_build_user, remove_image
from spacehub.runtime.backends.local_disks import image_size
from spacehub.runtime.backends.local_docker import (
    build_image,
    engine_args,
    engine_call,
    find_engine,
    image_tag,
    write_seccomp_profile,
)
from spacehub.runtime.backends.local_launch import (
    HOST,
    SYSTEM_PATH,
    apply_limits,
    build_env,
    container_launch,
    home_dir,
    home_path,
    launch_for,
)
from spacehub.runtime.backends.local_mounts import add_container_volumes, mounts_for
from spacehub.runtime.cgroups import Cgroup, CgroupHost
from spacehub.runtime.checkout import RepoFiles
from spacehub.runtime.procs import alive, boot_id, group_members, kill_instance, usage_of
from spacehub.runtime.supervise import write_json

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def _check_id(kind: str, value: str) -> None:
    if not ID_RE.match(value):
        raise BuildFailed(f"invalid {kind} {value!r}")


def _hostname(spec: ReleaseSpec) -> str:
    """The sandbox's host name, as HF's pods have one: r-<owner>-<name>, or the Space's id."""
    name = re.sub(r"[^a-z0-9-]+", "-", spec.env.get("SPACE_ID", spec.space_id).lower()).strip("-")
    return f"r-{name}"[:63].rstrip("-")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


class LocalProcessBackend:
    """Runs Spaces as local processes. ``sdk_packages`` replaces the packages an SDK installs (tests use
    ``{"gradio": []}``); ``use_cgroups=False`` runs without limits; ``uv_bin`` defaults to the ``uv`` package's;
    ``uv_cache_dir`` defaults to ``{root}/uv-cache`` (keep it on the same filesystem: uv hard-links from it).
    ``repos`` is where builds and volumes read code (without it the backend can only observe and stop instances);
    ``run_log`` defaults to ``{root}/logs/<space id>/run.log``, ``storage_root`` to ``{root}/../storage``."""

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
        storage_enforcement: str = "auto",
        sandbox: str | None = None,
        outbound: str = "open",
        build_user: str = "spacehub-builder",
        repos: RepoFiles | None = None,
        run_log: Callable[[str], Path] | None = None,
        storage_root: Path | None = None,
    ) -> None:
        self.root = root.resolve()
        self._json_cache: dict[Path, tuple[tuple[int, int, int], dict[str, Any]]] = {}  # `_known_json`
        self.repos = repos
        self.run_log = run_log or (lambda space_id: self.root / "logs" / space_id / "run.log")
        self.storage_root = (storage_root or self.root.parent / "storage").resolve()
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
        self.storage_enforcement = storage_enforcement  # runtime.storage_enforcement: image, monitor or auto
        self.sandbox = sandbox  # runtime.sandbox: on or off (None: unconfined, unreported, for unit tests)
        self.outbound = outbound  # runtime.outbound: open, hub-only or none
        self.build_user = build_user  # runtime.build_user: who runs docker builds when SpaceHub is root
        self._sandbox_state: str | sandbox.SandboxUnavailable | None = None  # bwrap's version once checked, or why not
        if uv_bin is None:
            import uv  # the wheel ships the binary

            uv_bin = uv.find_uv_bin()
        self.uv_bin = uv_bin
        self.envs = PythonEnvs(self.root, uv_bin, self.env, index_url, sdk_packages, build_timeout, uv_cache_dir,
                               self._build_sandbox if sandbox == "on" else None)  # fmt: skip

    # ---- builds ----------------------------------------------------------------------------------------------
    def build(self, spec: BuildSpec, log: Callable[[str], None]) -> None:
        """Check out ``spec.revision`` into builds/<build_id>/src and prepare what the SDK needs. Raises:
        BuildFailed."""
        _check_id("build id", spec.build_id)
        self.require_sandbox()
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
        stats = self._repos().write(spec.repo, spec.revision, tmp / "src", log)
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
            src, pin = tmp / "src", tmp / "env.pin"
            env = self.envs.ensure(spec.sdk, spec.sdk_version, spec.python_version, src, spec.use_cache, log, pin,
                                   spec.space_id)  # fmt: skip
            meta["env"] = str(env)
        elif spec.sdk == "docker":
            engine = find_engine()
            if engine is None:
                raise BuildFailed(
                    "docker Spaces need a container engine: podman or docker is not installed on this host"
                )
            meta["engine"], meta["image"] = engine, image_tag(spec.space_id, spec.build_id)
            builder = self._docker_builder(engine, log)
            meta["builder"] = builder.name if builder is not None else None
            build_image(engine, tmp / "src", meta["image"], self.env, log, self.build_timeout, spec.use_cache,
                        spec.build_args, spec.build_secrets, write_seccomp_profile(self.oci_seccomp_file),
                        builder)  # fmt: skip
        write_json(tmp / "build.json", meta)

    def _docker_builder(self, engine: str, log: Callable[[str], None]) -> BuildUser | None:
        """Who runs a Dockerfile's RUN steps: never the host's root while the sandbox is on (`local_builder`).
        Raises: BuildFailed when no unprivileged build is possible here."""
        if self.sandbox != "on":
            if os.geteuid() == 0 and self.sandbox == "off":
                log("runtime.sandbox is off: the Dockerfile's RUN steps run as the host's root")
            return None
        if Path(engine).name != "podman":
            if os.geteuid() != 0:
                return None
            raise BuildFailed(
                "docker Spaces are built rootless with podman (a Dockerfile's RUN steps are the author's code, and "
                'dockerd runs them as the host\'s root): install podman, or set runtime.sandbox = "off"'
            )
        try:
            return find_build_user(self.build_user)
        except BuildUserUnavailable as e:
            raise BuildFailed(f"docker Spaces are built as an unprivileged user, and {e}") from None

    def _repos(self) -> RepoFiles:
        if self.repos is None:
            raise BuildFailed("this backend was set up without a repository store: it cannot check code out")
        return self.repos

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
            with contextlib.suppress(BuildUserUnavailable):
                builder = find_build_user(meta["builder"]) if meta.get("builder") else None
                if builder is not None:
                    remove_image(engine_args(meta["engine"]), builder, meta["image"], self.env)
        if meta.get("env"):
            self.envs.prune(Path(meta["env"]).parent.name, self._pinned_envs())

    # ---- a deleted Space -------------------------------------------------------------------------------------
    def _owned(self) -> list[tuple[str, str, str]]:
        """(kind, what, runtime id) of everything kept here for a Space: instances, builds (their checkouts,
        images and environment pins), HOME folders and persistent storage (``<space id>-<key>``)."""
        found: list[tuple[str, str, str]] = []
        for kind, root, meta in (("instance", self.instances, "launch.json"), ("build", self.builds, "build.json")):
            for d in sorted(root.iterdir()):
                if d.name.startswith(".") or not d.is_dir():
                    continue
                owner = (_read_json(d / meta) or {}).get("space_id")
                if isinstance(owner, str):
                    found.append((kind, d.name, owner))
        found += [("home", d.name, d.name) for d in sorted(self.homes.iterdir()) if d.is_dir()]
        found += [("storage", n, n.rsplit("-", 1)[0]) for n in sorted(local_disks.names(self.storage_root))]
        return found

    def spaces(self) -> set[str]:
        return {owner for _, _, owner in self._owned()}

    def forget(self, space_id: str) -> None:
        """Everything kept here for the Space: its instances stopped, its builds dropped, its HOME folder and its
        persistent storage deleted (the storage monitor deletes storage no Space owns too; this is at once).
        Nothing of another Space: a preview (``<space id>-pr-<n>``) is a runtime id of its own. Idempotent."""
        if not ID_RE.match(space_id):
            return  # nothing here is named by it
        for kind, what, owner in self._owned():
            if owner != space_id:
                continue
            if kind == "instance":
                self.stop(what)
            elif kind == "build":
                self.drop_build(what)
            elif kind == "storage":
                local_disks.remove(self.storage_root, what)
        shutil.rmtree(home_path(self.homes, space_id), ignore_errors=True)

    def _pinned_envs(self) -> set[Path]:
        return {Path(p.read_text().strip()) for p in self.builds.glob("*/env.pin") if p.is_file()} | {
            Path(p.read_text().strip()) for p in self.builds.glob(".tmp-*/env.pin") if p.is_file()
        }

    # ---- instances -------------------------------------------------------------------------------------------
    def start(self, spec: ReleaseSpec) -> Endpoint | None:
        """Start the app (or task) under its supervisor and return where it will listen (None for a task).
        Idempotent while it runs. Raises: BuildFailed when it cannot be started (no build, static Space, nothing to
        run)."""
        _check_id("release id", spec.release_id)
        meta = _read_json(self.builds / spec.build_id / "build.json") if ID_RE.match(spec.build_id) else None
        if meta is None:
            raise BuildFailed(f"Build {spec.build_id} does not exist: build it first")
        if meta["sdk"] == "static":
            raise BuildFailed("Static Spaces are served by SpaceHub itself: there is no process to start")
        if meta["env"] and not (Path(meta["env"]) / "bin" / "python").exists():
            raise BuildFailed(f"The Python environment of build {spec.build_id} is gone: rebuild it")
        self.require_sandbox()
        inst = self.instances / spec.release_id
        with self._release_lock(spec.release_id):
            current = self.status(spec.release_id)
            if current is not None and current.running and (current.endpoint is not None or spec.run_to_exit):
                return current.endpoint
            if current is not None:
                self._teardown(spec.release_id)
            data_dir = self.data_dir(spec)
            mounts = mounts_for(spec, data_dir, inst, self._repos,
                                self.root / "volumes", self.storage_enforcement,
                                lambda: self._storage_busy(data_dir, spec.release_id))  # fmt: skip
            with file_lock(self.instances / ".locks" / "ports"):
                port = self._free_port()
                inst.mkdir()
                launch, env = self._launch(spec, meta, port, self.run_log(spec.space_id).resolve(), data_dir)
                launch.update(mounts)
                if launch.get("container"):
                    add_container_volumes(launch["command"], mounts.get("volumes", []))
                elif self.sandbox == "on":
                    self._sandbox_launch(spec, meta, inst, launch, env)
                write_json(inst / "launch.json", launch)
            self._spawn(inst, env)
        return None if spec.run_to_exit else Endpoint(HOST, port)

    def data_dir(self, spec: ReleaseSpec) -> Path | None:
        """Where the persistent storage of ``spec`` lives on this machine (None: it has none)."""
        if spec.storage is None:
            return None
        _check_id("storage name", spec.storage)
        return self.storage_root / spec.storage

    def storage_size(self, name: str) -> int | None:
        return image_size(self.storage_root, name) if ID_RE.match(name) else None

    # ---- the sandbox ------------------------------------------------------------------------------------------
    def require_sandbox(self) -> None:
        """Raises: BuildFailed saying why, when ``sandbox`` is on and this host cannot set one up (checked once)."""
        if self.sandbox != "on":
            return
        if self._sandbox_state is None:
            try:
                self._sandbox_state = sandbox.check(sandbox.host_uid("check"))
                self.seccomp_file.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.seccomp_file.with_name(f".seccomp.{os.getpid()}.tmp")
                tmp.write_bytes(sandbox.seccomp_program())
                os.chmod(tmp, 0o644)
                os.replace(tmp, self.seccomp_file)
            except sandbox.SandboxUnavailable as e:
                self._sandbox_state = e
        if isinstance(self._sandbox_state, sandbox.SandboxUnavailable):
            raise BuildFailed(
                f"Spaces cannot run here: the sandbox cannot be set up ({self._sandbox_state}). An operator can "
                'install what is missing, or set runtime.sandbox = "off" to run Spaces unconfined.'
            )

    @property
    def seccomp_file(self) -> Path:
        return self.root / "sandbox" / "seccomp.bpf"

    @property
    def oci_seccomp_file(self) -> Path:
        """docker Spaces' seccomp profile (`local_docker.write_seccomp_profile`), whatever ``sandbox`` says: a
        container is their sandbox."""
        return self.root / "sandbox" / "seccomp-oci.json"

    def _build_sandbox(self, space_id: str, src: Path, env: Path, python: str, home: Path) -> dict[str, Any]:
        """The sandbox plan of a build step that runs the Space's code (see PythonEnvs)."""
        return sandbox.build_plan(
            space_id=space_id, hostname="r-build", src=str(src), python=python, env_dir=str(env), home=str(home),
            uv=self.uv_bin, seccomp_file=str(self.seccomp_file),
        )  # fmt: skip

    def _sandbox_launch(
        self, spec: ReleaseSpec, build: dict[str, Any], inst: Path, launch: dict[str, Any], env: dict[str, str]
    ) -> None:
        """Put the app in its sandbox: the plan in ``launch["sandbox"]``, and its environment as seen from inside."""
        data = launch.get("data_dir")
        if data is None:
            data = str(inst / "ephemeral-data")  # HF's ephemeral disk: a /data of the instance's own
            Path(data).mkdir(parents=True, exist_ok=True)
        python = str(Path(build["env"]) / "bin" / "python")
        launch["sandbox"] = sandbox.plan(
            space_id=spec.space_id,
            hostname=_hostname(spec),
            app_dir=launch["cwd"],
            python=python,
            home=str(home_dir(self.homes, spec.space_id)),
            data=data,
            data_writable=True,
            volumes=[(v["src"], v["dst"]) for v in launch.get("volumes") or []],
            devices=spec.resources.devices,
            hub_url=spec.env.get("HF_ENDPOINT"),
            outbound=self.outbound,
            seccomp_file=str(self.seccomp_file),
            app_port=launch["port"],
        )
        launch["sandbox_cwd"] = sandbox.APP_DIR
        for key in ("data_mode", "data_reason", "ephemeral_data"):
            launch.pop(key, None)
        env["HOME"] = sandbox.HOME
        host_env = str(build["env"])  # the environment is at sandbox.VENV inside
        launch["command"] = [c.replace(host_env, sandbox.VENV, 1) if c.startswith(host_env) else c
                             for c in launch["command"]]  # fmt: skip
        env["PATH"] = env["PATH"].replace(host_env, sandbox.VENV)
        env["VIRTUAL_ENV"] = sandbox.VENV
        if launch.get("data_dir"):
            env["SPACE_DATA_DIR"] = "/data"
            env.setdefault("HF_HOME", "/data/.huggingface")

    def _storage_busy(self, data_dir: Path | None, release_id: str) -> bool:
        """Another running instance than ``release_id`` uses ``data_dir`` (so its image cannot be grown now)."""
        for launch in self.instances.glob("*/launch.json"):
            data = _read_json(launch) or {}
            if data.get("data_dir") == str(data_dir) and launch.parent.name != release_id:
                st = self.status(launch.parent.name)
                if st is not None and st.running:
                    return True
        return False

    def _release_lock(self, release_id: str) -> contextlib.AbstractContextManager[None]:
        """Held by start, stop, freeze and thaw of one release: they never interleave, across threads, backend
        objects and processes."""
        return file_lock(self.instances / ".locks" / release_id)

    def _launch(
        self, spec: ReleaseSpec, build: dict[str, Any], port: int, log_path: Path, data_dir: Path | None
    ) -> tuple[dict[str, Any], dict[str, str]]:
        src = self.builds / spec.build_id / "src"
        if build["sdk"] == "docker":
            if spec.run_to_exit:
                raise BuildFailed("run-to-exit tasks run in a Python environment; docker tasks are not supported yet")
            seccomp = write_seccomp_profile(self.oci_seccomp_file)
            ids = sandbox.container_id_base(spec.space_id) if self.sandbox == "on" else None
            return container_launch(spec, build, port, log_path, src, data_dir, self.tag, self.env, seccomp, ids)
        home = home_dir(self.homes, spec.space_id)
        launch, env = launch_for(spec, build, port, log_path, src, home, data_dir)
        apply_limits(launch, spec, self.cgroups if self.use_cgroups else None)
        if self.sandbox == "off":
            launch["limits"] += '; sandbox off (runtime.sandbox = "off"): the app runs unconfined, as SpaceHub\'s user'
        return launch, env

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
        """A port no instance holds and nothing listens on (under the ``ports`` lock)."""
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
        return (
            self._known_json(inst / "launch.json"),
            self._known_json(inst / "state.json"),
            _read_json(inst / "exit.json"),
        )

    def _known_json(self, path: Path) -> dict[str, Any] | None:
        """``path``'s JSON, read again only when the file changed (its inode, size or mtime: launch.json and
        state.json are written once per start, by replacing them; the crash monitor asks for every running instance
        every second)."""
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            self._json_cache.pop(path, None)
            return None
        sig = (st.st_ino, st.st_size, st.st_mtime_ns)
        hit = self._json_cache.get(path)
        if hit is not None and hit[0] == sig:
            return hit[1]
        data = _read_json(path)
        if len(self._json_cache) > 4096:
            self._json_cache.clear()
        if data is not None:
            self._json_cache[path] = (sig, data)
        return data

    def status(self, release_id: str) -> InstanceStatus | None:
        if not ID_RE.match(release_id):
            return None
        launch, state, done = self._files(release_id)
        if launch is None:
            return None
        same_boot = launch.get("boot_id") == boot_id()
        running = same_boot and done is None and state is not None and alive(state["pid"], state["starttime"])
        if not running and done is None and state is not None and same_boot:
            # The app just ended: its supervisor is writing exit.json.
            deadline = time.monotonic() + 2
            while alive(state["supervisor_pid"], state["supervisor_starttime"]) and time.monotonic() < deadline:
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
            endpoint=Endpoint(launch["host"], launch["port"]) if running and not launch.get("run_to_exit") else None,
            exit_code=done.get("code") if done and not running else None,
            limits=limits,
        )

    def exit_notice(self, release_id: str) -> int | None:
        """A pidfd of the instance's supervisor: readable once it has ended, which it does right after writing the
        app's exit.json (so `status` then answers at once). None when the instance is not running under a live
        supervisor of this boot, or pidfds are missing (Linux before 5.3)."""
        if not ID_RE.match(release_id):
            return None
        launch, state, done = self._files(release_id)
        if launch is None or state is None or done is not None or launch.get("boot_id") != boot_id():
            return None
        pid, starttime = state.get("supervisor_pid"), state.get("supervisor_starttime")
        if pid is None:
            return None
        try:
            fd = os.pidfd_open(pid)
        except (OSError, AttributeError):
            return None
        if not alive(pid, starttime):  # checked after opening: the fd names that process for good, the pid may not
            os.close(fd)
            return None
        return fd

    def usage(self, release_id: str) -> ResourceUsage | None:
        """Counted over the instance's processes: its cgroup's, else its process group's (procs.usage_of)."""
        if not ID_RE.match(release_id):
            return None
        launch, state, done = self._files(release_id)
        if launch is None or state is None or done is not None or not alive(state["pid"], state["starttime"]):
            return None
        pids: set[int] = Cgroup.from_json(launch["cgroup"]).pids() if launch.get("cgroup") else set()
        if not pids and state.get("pgid"):
            pids = set(group_members(state["pgid"]))
        cpu, memory, rx, tx = usage_of(pids or {state["pid"]})
        return ResourceUsage(cpu, memory, rx, tx)

    def _frozen(self, release_id: str, launch: dict[str, Any]) -> bool:
        if launch.get("container"):
            return (self.instances / release_id / "paused").exists()
        return bool(launch.get("cgroup")) and Cgroup.from_json(launch["cgroup"]).frozen()

    def list_instances(self) -> list[InstanceStatus]:
        found = (self.status(d.name) for d in sorted(self.instances.iterdir()) if d.is_dir())
        return [s for s in found if s is not None]

    def close(self) -> None:
        """SpaceHub is stopping: kill the builds under way (apps keep running, to be adopted at the next start)."""
        stop_builds()

    # ---- stopping and sleeping -------------------------------------------------------------------------------
    def stop(self, release_id: str) -> None:
        """SIGTERM the app's process group (and cgroup), SIGKILL what is left after the grace period, then forget
        the instance. Idempotent."""
        if ID_RE.match(release_id):
            with self._release_lock(release_id):
                self._teardown(release_id)

    def _teardown(self, release_id: str) -> None:
        inst = self.instances / release_id
        launch, state, _ = self._files(release_id)
        if launch is not None and launch.get("boot_id") == boot_id():
            cg = Cgroup.from_json(launch["cgroup"]) if launch.get("cgroup") else None
            if launch.get("container"):
                c = launch["container"]
                engine_call(c["engine"], ["stop", "-t", str(int(self.stop_grace)), c["name"]], self.env)
                engine_call(c["engine"], ["rm", "-f", c["name"]], self.env)
            if cg is not None and cg.frozen():
                cg.set_frozen(False)
            if state is not None:
                kill_instance(state, cg, self.stop_grace)
            if cg is not None:
                cg.remove()
        shutil.rmtree(inst, ignore_errors=True)

    def freeze(self, release_id: str) -> bool:
        """Freeze every process of the instance (cgroup freezer; ``pause`` for containers). False when the
        instance runs without a freezer (no cgroup) or is not running."""
        if not ID_RE.match(release_id):
            return False
        with self._release_lock(release_id):
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
        if not ID_RE.match(release_id):
            return
        with self._release_lock(release_id):
            launch, _, _ = self._files(release_id)
            if launch is None:
                return
            if launch.get("container"):
                c = launch["container"]
                engine_call(c["engine"], ["unpause", c["name"]], self.env)
                (self.instances / release_id / "paused").unlink(missing_ok=True)
            elif launch.get("cgroup"):
                Cgroup.from_json(launch["cgroup"]).set_frozen(False)
