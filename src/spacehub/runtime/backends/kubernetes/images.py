"""docker Spaces on Kubernetes: the Space's Dockerfile built with podman where SpaceHub runs, the local backend's
build path (`local_docker.build_image`: rootless as the build user when SpaceHub is root, the Space's variables as
build args, its secrets as build secrets, never in a layer, the docker Spaces' seccomp profile for RUN steps), then
pushed to the registry the operator names (``kubernetes.registry``), which the cluster's nodes pull from. A registry
that needs a login: podman pushes with the operator's auth file (``kubernetes.registry_auth_file``, ``--authfile``),
and the nodes pull with a ``kubernetes.io/dockerconfigjson`` Secret made from it (`pull_secret`), or with the pull
secret the operator names (``kubernetes.registry_pull_secret``). The credentials are never logged.

The code is the Space's snapshot at the commit, fetched from the Hub's API with the token scoped to the Space, by
the same program the pods' fetch container runs (`manifests.FETCH_SCRIPT`), so the build reads exactly what a pod
would.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from spacehub.runtime.backends.base import BuildFailed, BuildSpec
from spacehub.runtime.backends.kubernetes import manifests as m
from spacehub.runtime.backends.local_build import run_logged
from spacehub.runtime.backends.local_builder import BuildUserUnavailable, find_build_user, remove_image
from spacehub.runtime.backends.local_docker import build_image, engine_args, find_engine, write_seccomp_profile

PULL_SECRET = "spacehub-registry-auth"  # the pull secret made from kubernetes.registry_auth_file


def read_auth_file(path: Path) -> bytes:
    """The registry credentials file (a docker ``config.json`` or a containers ``auth.json``: ``{"auths": {host:
    {"auth": base64(user:password)}}}``), checked. Raises: BuildFailed, saying what is wrong, never what it holds."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BuildFailed(f"kubernetes.registry_auth_file {path} cannot be read: {e.strerror}") from None
    try:
        auths = json.loads(data).get("auths")
    except (ValueError, AttributeError):
        auths = None
    if not isinstance(auths, dict) or not auths:
        raise BuildFailed(f'kubernetes.registry_auth_file {path} is not a registry auth file ({{"auths": {{…}}}})')
    return data


def pull_secret(data: bytes, namespace: str) -> dict[str, object]:
    """The ``kubernetes.io/dockerconfigjson`` Secret the nodes pull docker Spaces' images with (shared by them)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {
            "name": PULL_SECRET,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": m.MANAGED_BY},
            "annotations": {},  # (applying again merges them)
        },
        "data": {".dockerconfigjson": base64.b64encode(data).decode()},
    }


def image_name(registry: str, space_id: str, build_id: str) -> str:
    """Where a build's image goes: one repository per Space, one tag per build."""
    return f"{registry.rstrip('/')}/space-{space_id}:{build_id}"


def fetch(hub_url: str, repo: str, revision: str, token: str, dest: Path, log: Callable[[str], None]) -> None:
    """The Space's files at ``revision`` into ``dest`` (the pods' fetch program, run here). Raises: BuildFailed."""
    folder = dest.parent
    token_file = folder / "fetch-token"
    token_file.touch(mode=0o600)
    token_file.write_text(token)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HF_ENDPOINT": hub_url.rstrip("/"),
           "SPACEHUB_REPO": repo, "SPACEHUB_REVISION": revision, "SPACEHUB_TOKEN_FILE": str(token_file),
           "SPACEHUB_CODE": str(dest)}  # fmt: skip
    try:
        done = subprocess.run([sys.executable, "-I", "-c", m.FETCH_SCRIPT], env=env, capture_output=True, text=True,
                              timeout=600)  # fmt: skip
    finally:
        token_file.unlink(missing_ok=True)
    for line in (done.stdout + done.stderr).splitlines():
        log(line.replace(token, "***"))
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1].replace(token, "***")
        raise BuildFailed(f"fetching the Space's code from the Hub failed: {tail}")


def build_and_push(
    spec: BuildSpec,
    repo: str,
    token: str,
    hub_url: str,
    tag: str,
    *,
    build_user: str,
    tls_verify: bool,
    timeout: float,
    log: Callable[[str], None],
    env: Mapping[str, str] | None = None,
    authfile: Path | None = None,
) -> None:
    """Fetch, build ``tag`` with podman and push it (with the registry credentials in ``authfile``, if any, read by
    podman only). Raises: BuildFailed (secret values masked)."""
    engine = find_engine()
    if engine is None or Path(engine).name != "podman":
        raise BuildFailed("docker Spaces on Kubernetes are built with podman where SpaceHub runs: install podman")
    try:
        builder = find_build_user(build_user) if os.geteuid() == 0 else None
    except BuildUserUnavailable as e:
        raise BuildFailed(f"docker Spaces are built as an unprivileged user, and {e}") from None
    run_env = dict(env if env is not None else os.environ)
    with tempfile.TemporaryDirectory(prefix="spacehub-k8s-build-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        fetch(hub_url, repo, spec.revision, token, src, log)
        if not (src / "Dockerfile").is_file():
            raise BuildFailed("a docker Space needs a Dockerfile at the root of its repo")
        seccomp = write_seccomp_profile(Path(tmp) / "seccomp.json")
        build_image(engine, src, tag, run_env, log, timeout, spec.use_cache, spec.build_args, spec.build_secrets,
                    seccomp, builder)  # fmt: skip
        try:
            log(f"$ podman push {tag}")
            auth = ["--authfile", str(authfile)] if authfile is not None else []
            run_logged([*engine_args(engine), "push", f"--tls-verify={'true' if tls_verify else 'false'}", *auth, tag],
                       run_env, Path(tmp), log, "podman push", timeout)  # fmt: skip
        except BuildFailed as e:
            raise BuildFailed(f"the image could not be pushed to the registry: {e}") from None
        finally:  # the registry keeps the image; this machine's stores need not
            subprocess.run([*engine_args(engine), "rmi", "-f", tag], env=run_env, capture_output=True, timeout=120)
            if builder is not None:
                remove_image(engine_args(engine), builder, tag, run_env)
