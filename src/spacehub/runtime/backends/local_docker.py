"""docker Spaces on the local backend: image builds and ``run`` command lines for podman (preferred) or docker.

podman runs with runc (crun cannot drive hybrid cgroup v1 hosts) and explicit nofile/nproc ulimits (its defaults
exceed the hard limits of some hosts), as found in the runtime probes §2.3. The app's environment reaches the
container as ``-e NAME`` without values, read from the engine's own environment: no secret is on a command line.
Limits are the engine's (``--memory``, ``--cpus``, ``--pids-limit``), storage is a volume on /data, and the port is
published on 127.0.0.1 only.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from spacehub.runtime.backends.base import BuildFailed, Resources
from spacehub.runtime.backends.local_build import run_logged

ENGINES = ("podman", "docker")
PODMAN_ULIMITS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]


def find_engine() -> str | None:
    """The path of podman or docker, whichever is installed (podman first: it needs no daemon)."""
    for name in ENGINES:
        path = shutil.which(name)
        if path:
            return path
    return None


def engine_args(engine: str) -> list[str]:
    if Path(engine).name == "podman" and shutil.which("runc"):
        return [engine, "--runtime", "runc"]
    return [engine]


def engine_call(engine: str, args: Sequence[str], env: Mapping[str, str], timeout: float = 30.0) -> bool:
    """Run one engine command, quietly; True when it succeeded."""
    try:
        done = subprocess.run([*engine_args(engine), *args], env=dict(env), capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def image_tag(space_id: str, build_id: str) -> str:
    clean = re.sub(r"[^a-z0-9_.-]+", "-", space_id.lower()).strip("-.") or "space"
    return f"localhost/spacehub-{clean[:60]}:{re.sub(r'[^A-Za-z0-9_.-]+', '-', build_id)[:100]}"


def container_name(tag: str, release_id: str) -> str:
    return f"spacehub-{tag}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', release_id)}"[:200]


def build_image(
    engine: str,
    src: Path,
    tag: str,
    env: Mapping[str, str],
    log: Callable[[str], None],
    timeout: float,
    use_cache: bool,
) -> None:
    """Build the checkout's Dockerfile into ``tag``. Raises: BuildFailed."""
    name = Path(engine).name
    if name == "docker":
        info = subprocess.run([engine, "info", "--format", "{{.ServerVersion}}"], env=dict(env), capture_output=True)
        if info.returncode != 0:
            why = (info.stderr.decode(errors="replace").strip().splitlines() or ["no answer"])[-1]
            raise BuildFailed(
                f"docker Spaces need a container engine: docker is installed but its daemon is not reachable ({why})"
            )
    cmd = [*engine_args(engine), "build", "-t", tag, *([] if use_cache else ["--no-cache"])]
    if name == "podman":
        cmd += PODMAN_ULIMITS
    log(f"$ {name} build -t {tag} .")
    run_logged([*cmd, str(src)], env, src, log, f"{name} build", timeout)


def docker_run_command(
    engine: str,
    name: str,
    image: str,
    port: int,
    app_port: int,
    env_names: Sequence[str],
    res: Resources,
    data_dir: Path | None,
) -> list[str]:
    """``<engine> run`` for one instance; environment variables are passed by name only."""
    cmd = [*engine_args(engine), "run", "--rm", "--name", name, "--pull", "never", "-p", f"127.0.0.1:{port}:{app_port}"]
    if Path(engine).name == "podman":
        cmd += PODMAN_ULIMITS
    if res.memory_bytes is not None:
        cmd += ["--memory", f"{res.memory_bytes}b", "--memory-swap", f"{res.memory_bytes}b"]
    if res.cpus is not None:
        cmd += ["--cpus", f"{res.cpus:g}"]
    if res.pids is not None:
        cmd += ["--pids-limit", str(res.pids)]
    if data_dir is not None:
        cmd += ["-v", f"{data_dir}:/data"]
    for key in env_names:
        cmd += ["-e", key]
    return [*cmd, image]
