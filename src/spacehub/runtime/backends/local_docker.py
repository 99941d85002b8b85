"""docker Spaces on the local backend: image builds and ``run`` command lines for podman (preferred) or docker.

podman runs with runc (crun cannot drive hybrid cgroup v1 hosts) and explicit nofile/nproc ulimits (its defaults
exceed the hard limits of some hosts), as found in the runtime probes §2.3.

Builds are HF's: the Space's variables as ``--build-arg NAME`` (value in the engine's environment) and its secrets as
build secrets (``--secret id=NAME,src=FILE``, a 0600 file in a private folder outside the build context, deleted
after the build), for ``RUN --mount=type=secret,id=NAME`` to read at /run/secrets/NAME: never in a layer, never on a
command line. Builds run the author's code, so they lose the capabilities no Dockerfile step needs (``BUILD_CAP_DROP``;
apt, pip, useradd and chown keep working). Secret values are masked in the build log.

Apps run as HF's ``user`` (uid 1000) with no capability, ``no-new-privileges`` and SpaceHub's seccomp profile
(`sandbox.oci_seccomp_profile`: the engines' default profiles let anyone make a user namespace, and in it get the
capabilities for mounts and namespaces of its own; builds get it too), in a network namespace of their own with
loopback only (``--network none``); `container_net` connects it to the host. The app's environment reaches the
container as ``-e NAME`` without values, read from the engine's own environment: no secret is on a command line.
Limits are the engine's (``--memory``, ``--cpus``, ``--pids-limit``), storage is a volume on /data.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from spacehub.runtime import sandbox
from spacehub.runtime.backends.base import BuildFailed, Resources
from spacehub.runtime.backends.local_build import run_logged
from spacehub.runtime.backends.local_builder import BuildUser, hand_over, seed_bases
from spacehub.runtime.dockerfile import base_images, dockerfile_inputs

ENGINES = ("podman", "docker")
PODMAN_ULIMITS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]
APP_USER = "1000:1000"  # HF runs every docker Space as uid 1000 (its Dockerfiles: useradd -m -u 1000 user)
# Of podman's default capabilities, builds keep CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETUID and SETGID (apt
# drops to _apt, useradd, chown, pip): these go. (podman build has no no-new-privileges: "not supported".)
BUILD_CAP_DROP = "SETPCAP,SETFCAP,SYS_CHROOT,NET_BIND_SERVICE,NET_RAW,MKNOD,AUDIT_WRITE"
MASK = "********"


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
    build_args: Mapping[str, str] | None = None,
    build_secrets: Mapping[str, str] | None = None,
    seccomp: Path | None = None,
    builder: BuildUser | None = None,
) -> None:
    """Build the checkout's Dockerfile into ``tag``, with the Space's variables as build args and its secrets as
    build secrets; ``seccomp`` is the profile its RUN steps get (`write_seccomp_profile`). With ``builder``, podman
    builds rootless as that user and the image is then handed to root's store (`local_builder`). Raises:
    BuildFailed (secret values masked)."""
    name = Path(engine).name
    args, secrets = dict(build_args or {}), dict(build_secrets or {})
    if name == "docker":
        info = subprocess.run([engine, "info", "--format", "{{.ServerVersion}}"], env=dict(env), capture_output=True)
        if info.returncode != 0:
            why = (info.stderr.decode(errors="replace").strip().splitlines() or ["no answer"])[-1]
            raise BuildFailed(
                f"docker Spaces need a container engine: docker is installed but its daemon is not reachable ({why})"
            )
    dockerfile = _read_dockerfile(src)
    mounts_secrets = bool(dockerfile_inputs(dockerfile)[1])
    if use_cache and mounts_secrets:
        log("The Dockerfile mounts build secrets: building without the layer cache (it does not know their values)")
    cmd = [*engine_args(engine), "build", "-t", tag, *([] if use_cache and not mounts_secrets else ["--no-cache"])]
    if name == "podman":
        cmd += [*PODMAN_ULIMITS, f"--cap-drop={BUILD_CAP_DROP}"]
    if seccomp is not None:
        cmd += ["--security-opt", f"seccomp={seccomp}"]
    for key in sorted(args):
        cmd += ["--build-arg", key]  # the value comes from the engine's environment
    masked = _masker(secrets)
    with contextlib.ExitStack() as stack:
        context, run_env, workspace = src, {**env, **args}, None
        if builder is not None:
            builder.prepare()
            workspace = stack.enter_context(builder.workspace())
            context = workspace / "context"
            shutil.copytree(src, context, symlinks=True)
            builder.give(context)
            if seccomp is not None:  # root's folder may be closed to the build user
                shutil.copy(seccomp, workspace / "seccomp.json")
                os.chmod(workspace / "seccomp.json", 0o644)
                cmd[cmd.index(f"seccomp={seccomp}")] = f"seccomp={workspace / 'seccomp.json'}"
            seed_bases(engine_args(engine), builder, base_images(dockerfile), env, workspace, log)
            run_env = builder.env(run_env)
        files = stack.enter_context(secret_files(secrets, workspace, builder))
        for key, path in sorted(files.items()):
            cmd += ["--secret", f"id={key},src={path}"]
        who = f" (as {builder.name}, rootless)" if builder is not None else ""
        log(f"$ {name} {' '.join(cmd[cmd.index('build') :])} .{who}")
        full = [*cmd, str(context)]
        try:
            run_logged(builder.command(full) if builder else full, run_env, workspace or src,
                       lambda line: log(masked(line)), f"{name} build", timeout)  # fmt: skip
        except BuildFailed as e:
            raise BuildFailed(masked(str(e))) from None
        if builder is not None and workspace is not None:
            try:
                hand_over(engine_args(engine), tag, builder, None, env, workspace, log)
            except RuntimeError as e:
                raise BuildFailed(f"the built image could not be handed to the engine that runs it: {e}") from None


def write_seccomp_profile(path: Path) -> Path:
    """Write the docker Spaces' seccomp profile to ``path`` (atomically, when it differs); answers ``path``."""
    text = json.dumps(sandbox.oci_seccomp_profile(), indent=1)
    try:
        if path.read_text() == text:
            return path
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


def _read_dockerfile(src: Path) -> str | None:
    try:
        return (src / "Dockerfile").read_text(errors="replace")
    except OSError:
        return None


@contextlib.contextmanager
def secret_files(
    secrets: Mapping[str, str], parent: Path | None = None, owner: BuildUser | None = None
) -> Iterator[dict[str, Path]]:
    """Each secret in a 0600 file of a private (0700) temporary folder (in ``parent``, of ``owner``), removed on
    exit: ``{name: path}``."""
    if not secrets:
        yield {}
        return
    folder = Path(tempfile.mkdtemp(prefix="spacehub-build-secrets-", dir=parent))  # mode 0700
    try:
        files = {}
        for key, value in secrets.items():
            path = folder / key
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(value)
            files[key] = path
        if owner is not None:
            owner.give(folder)
        yield files
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _masker(secrets: Mapping[str, str]) -> Callable[[str], str]:
    """Replaces secret values (of 4 characters or more: shorter ones would mask ordinary text) in a log line."""
    values = sorted({v for v in secrets.values() if len(v) >= 4}, key=len, reverse=True)
    if not values:
        return lambda line: line
    pattern = re.compile("|".join(re.escape(v) for v in values))
    return lambda line: pattern.sub(MASK, line)


def docker_run_command(
    engine: str,
    name: str,
    image: str,
    port: int,
    app_port: int,
    env_names: Sequence[str],
    res: Resources,
    data_dir: Path | None,
    hub: str | None = None,
    seccomp: Path | None = None,
    id_base: int | None = None,
) -> list[str]:
    """The command the supervisor runs for one instance: `container_net` (listening on 127.0.0.1:``port``) around
    ``<engine> run``. Environment variables are passed by name only. ``hub`` (HOST:PORT of a Hub on the host's
    loopback) is offered at the same port on the container's loopback; ``seccomp`` is the profile's file; with
    ``id_base`` the container's ids 0..65535 are host ids ``id_base``.. (`sandbox.container_id_base`)."""
    run = [*engine_args(engine), "run", "--rm", "--replace", "--init", "--name", name, "--pull", "never"]
    if Path(engine).name == "docker":
        run.remove("--replace")
    run += ["--network", "none", "--user", APP_USER, "--cap-drop", "all", "--security-opt", "no-new-privileges"]
    if seccomp is not None:
        run += ["--security-opt", f"seccomp={seccomp}"]
    if id_base is not None:
        size = sandbox.CONTAINER_ID_SIZE
        run += ["--uidmap", f"0:{id_base}:{size}", "--gidmap", f"0:{id_base}:{size}"]
    if Path(engine).name == "podman":
        run += PODMAN_ULIMITS
    if res.memory_bytes is not None:
        run += ["--memory", f"{res.memory_bytes}b", "--memory-swap", f"{res.memory_bytes}b"]
    if res.cpus is not None:
        run += ["--cpus", f"{res.cpus:g}"]
    if res.pids is not None:
        run += ["--pids-limit", str(res.pids)]
    if data_dir is not None:
        run += ["-v", f"{data_dir}:/data"]
    for key in env_names:
        run += ["-e", key]
    net = [sys.executable, "-I", "-m", "spacehub.runtime.backends.container_net", "--listen", f"127.0.0.1:{port}"]
    net += ["--app-port", str(app_port), "--engine", " ".join(engine_args(engine)), "--name", name]
    if hub:
        net += ["--hub", hub]
    return [*net, "--", *run, image]


def loopback_hub(url: str | None) -> str | None:
    """HOST:PORT of ``url`` when it is on this host's loopback (the container reaches it through `container_net`);
    None otherwise (a public address: reachable only if the container had a network, which it has not)."""
    if not url:
        return None
    parsed = urlsplit(url)
    if parsed.hostname not in ("127.0.0.1", "localhost") or parsed.scheme not in ("http", "https"):
        return None
    return f"127.0.0.1:{parsed.port or (443 if parsed.scheme == 'https' else 80)}"


def own_data_dir(data_dir: Path, uid: int = 1000, gid: int = 1000) -> None:
    """The app (uid 1000) must be able to write its /data: the folder is handed over once (with what is in it, e.g.
    written by an earlier process Space), not at every start."""
    if os.geteuid() != 0 or data_dir.stat().st_uid == uid:
        return
    for root, dirs, files in os.walk(data_dir):
        for entry in (*dirs, *files):
            with contextlib.suppress(OSError):
                os.lchown(os.path.join(root, entry), uid, gid)
    os.chown(data_dir, uid, gid)
