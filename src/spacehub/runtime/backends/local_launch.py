"""What one local instance runs: its command line, environment and limits, as ``launch.json`` plus an environment.

``launch.json`` never holds a secret: the environment goes to the supervisor on a pipe. The app sees ``spec.env``
plus PATH/HOME/LANG defaults, the port variables and `QUIET_ENV`, which always wins: nothing phones home at start
(runtime probes §4.3). ``/data`` is a bind mount in a private mount namespace when we are root; otherwise the app
gets ``SPACE_DATA_DIR`` and the status says /data is unavailable.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from spacehub.runtime.backends.base import ReleaseSpec
from spacehub.runtime.backends.local_docker import container_name, docker_run_command, loopback_hub, own_data_dir
from spacehub.runtime.cgroups import CgroupHost, CgroupUnavailable
from spacehub.runtime.procs import boot_id

HOST = "127.0.0.1"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
QUIET_ENV = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    "STREAMLIT_SERVER_HEADLESS": "true",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}
PASSED_TO_BUILDS = (
    *("HOME", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR"),
    *("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy", "all_proxy"),
)
MAX_LOG_BYTES = 20 * 2**20  # the supervisor rotates the run log to <name>.1 past this (as runtime/logs.py does)


def build_env() -> dict[str, str]:
    """The environment of build tools: a few variables of the server's, and its PATH without version-manager shims
    (pyenv's shims answer for interpreters that are not there, which stops uv's interpreter discovery)."""
    env = {k: v for k, v in os.environ.items() if k in PASSED_TO_BUILDS}
    path = [p for p in os.environ.get("PATH", SYSTEM_PATH).split(":") if p and Path(p).name != "shims"]
    env["PATH"] = ":".join(path) or SYSTEM_PATH
    return env


def launch_for(
    spec: ReleaseSpec, build: dict[str, Any], port: int, log_path: Path, src: Path, home: Path, data_dir: Path | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """launch.json and the app's environment for a gradio or streamlit build (see `container_launch` for docker).
    A run-to-exit task runs its own command line instead of the SDK's server (in the same environment)."""
    launch = _common(spec, port, log_path, src, data_dir)
    python = str(Path(build["env"]) / "bin" / "python")
    app = spec.app_file or "app.py"
    if spec.run_to_exit:
        launch["command"] = [python if c == "python" else c for c in spec.command] or [python, app]
    elif build["sdk"] == "streamlit":
        flags = ["--server.port", str(port), "--server.address", HOST, "--server.headless", "true"]
        launch["command"] = [python, "-m", "streamlit", "run", app, *flags]
    else:
        launch["command"] = [python, app]
    env = {"PATH": f"{build['env']}/bin:{SYSTEM_PATH}", "HOME": str(home), "LANG": "C.UTF-8"}
    env |= {"PYTHONUNBUFFERED": "1", "VIRTUAL_ENV": build["env"], **spec.env, **QUIET_ENV}
    env |= {"PORT": str(port), "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": HOST}
    if spec.resources.devices:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(spec.resources.devices)
    if data_dir is not None:
        launch["data_mode"] = "mount" if os.geteuid() == 0 else "env"
        launch["data_reason"] = "a private mount namespace needs root"
    return launch, env


def container_launch(
    spec: ReleaseSpec,
    build: dict[str, Any],
    port: int,
    log_path: Path,
    src: Path,
    data_dir: Path | None,
    tag: str,
    engine_env: dict[str, str],
    seccomp: Path | None = None,
    id_base: int | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """launch.json and the engine's environment for a docker build; limits are the engine's. The container runs as
    uid 1000 without capabilities, in a network namespace of its own, and with ``id_base`` in a user namespace of
    its own whose uid 1000 is host uid ``id_base + 1000`` (`local_docker.docker_run_command`)."""
    launch = _common(spec, port, log_path, src, data_dir)
    app_env = {**spec.env, **QUIET_ENV, "PORT": str(spec.app_port)}
    if spec.resources.devices:
        app_env["CUDA_VISIBLE_DEVICES"] = ",".join(spec.resources.devices)
    if data_dir is not None:
        app_id = 1000 + (id_base or 0)
        own_data_dir(data_dir, app_id, app_id)
    name = container_name(tag, spec.release_id)
    launch["container"] = {"engine": build["engine"], "name": name}
    launch["command"] = docker_run_command(
        build["engine"], name, build["image"], port, spec.app_port, sorted(app_env), spec.resources, data_dir,
        hub=loopback_hub(spec.env.get("HF_ENDPOINT")), seccomp=seccomp, id_base=id_base,
    )  # fmt: skip
    launch["limits"] = f"{Path(build['engine']).name} (container limits)"
    return launch, {**engine_env, **app_env}


def apply_limits(launch: dict[str, Any], spec: ReleaseSpec, cgroups: CgroupHost | None) -> None:
    """Make the instance's cgroup and record it in ``launch``; without one, say why (``none: <why>``)."""
    try:
        if cgroups is None:
            raise CgroupUnavailable("cgroups are turned off for this backend")
        cg = cgroups.create(spec.release_id, spec.resources)
    except CgroupUnavailable as e:
        launch["limits"] = f"none: {e}"
        return
    launch["cgroup"] = cg.to_json()
    launch["cgroup_procs"] = cg.procs_files
    launch["limits"] = cg.limits
    mem = cg.dirs.get("memory") if cg.version == 1 else cg.dirs["unified"]
    if mem:
        launch["oom_file"] = str(Path(mem) / ("memory.oom_control" if cg.version == 1 else "memory.events"))


def home_path(homes: Path, space_id: str) -> Path:
    """The HOME folder of the Space's processes (made by `home_dir`)."""
    return homes / re.sub(r"[^A-Za-z0-9._-]", "_", space_id)


def home_dir(homes: Path, space_id: str) -> Path:
    home = home_path(homes, space_id)
    home.mkdir(parents=True, exist_ok=True)
    return home


def _common(spec: ReleaseSpec, port: int, log_path: Path, src: Path, data_dir: Path | None) -> dict[str, Any]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
    return {
        "release_id": spec.release_id,
        "build_id": spec.build_id,
        "space_id": spec.space_id,
        "host": HOST,
        "port": port,
        "cwd": str(src),
        "log_path": str(log_path),
        "max_log_bytes": MAX_LOG_BYTES,
        "boot_id": boot_id(),
        "data_dir": str(data_dir) if data_dir else None,
        "run_to_exit": spec.run_to_exit,
    }
