"""The Backend protocol: what the reconciler asks of any engine that runs Spaces (local processes, Kubernetes…).

The reconciler decides (plan.py); a backend only does. Everything process-, container- or cluster-specific stays
behind this interface. Methods are blocking and called from worker threads; they must be idempotent where noted, so
that a reconciler pass interrupted by a crash can simply run again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Resources:
    """Limits of one app instance, from its hardware flavor (already capped to the machine by the caller)."""

    cpus: float | None = None  # cores
    memory_bytes: int | None = None
    pids: int | None = 4096
    devices: tuple[str, ...] = ()  # accelerator ids allocated to this instance (e.g. GPU indices "0", "1")


@dataclass(frozen=True)
class VolumeMount:
    """A repo mounted read-only in the app (2.x volumes): a checkout of ``revision``, or of its ``path`` folder."""

    mount_path: str  # absolute path in the app
    repo_id: str  # the source repo's database id (names its checkouts)
    git_dir: Path
    lfs_dir: Path
    revision: str  # commit sha
    path: str | None = None  # a folder of the repo to mount instead of its root


@dataclass(frozen=True)
class BuildSpec:
    space_id: str  # the repo's database id: stable across renames
    build_id: str
    git_dir: Path  # the Space's bare git repository
    revision: str  # commit sha to build
    lfs_dir: Path  # LFS blob store root (objects at lfs/ab/cd/<sha256>); pointer files are materialized from it
    sdk: str  # gradio | streamlit | docker | static
    sdk_version: str | None
    python_version: str | None
    use_cache: bool = True  # False on factory reboot: rebuild the environment from nothing
    # docker builds, as on HF: the Space's variables the Dockerfile declares with ARG (``--build-arg``), and its
    # secrets the Dockerfile mounts (``RUN --mount=type=secret,id=NAME``). Values are secret: kept out of repr.
    build_args: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    build_secrets: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class ReleaseSpec:
    space_id: str
    release_id: str
    build_id: str
    sdk: str
    app_file: str | None  # relative to the checkout (None for docker)
    app_port: int  # the port a docker app listens on inside its container (README app_port)
    env: Mapping[str, str]  # everything the app sees, secrets included: never log it
    resources: Resources = field(default_factory=Resources)
    data_dir: Path | None = None  # persistent storage to expose at /data (None: no storage)
    data_limit_bytes: int | None = None  # the storage tier's size, enforced by the backend where it can
    volumes: tuple[VolumeMount, ...] = ()  # repos mounted read-only in the app


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int


@dataclass(frozen=True)
class InstanceStatus:
    release_id: str
    build_id: str
    running: bool  # the process (group) is alive (frozen counts as alive)
    frozen: bool
    endpoint: Endpoint | None
    exit_code: int | None  # when not running
    limits: str  # how resource limits are enforced, e.g. "cgroup v1", "cgroup v2", "none: <why>"


class BuildFailed(Exception):
    """The build cannot succeed as it is (bad requirements, missing engine…): the message is shown to the user."""


class Backend(Protocol):
    name: str

    def build(self, spec: BuildSpec, log: Callable[[str], None]) -> None:
        """Check out ``spec.revision`` and prepare its environment; ``log`` gets each build log line.
        Idempotent: a build that exists already returns at once. Raises: BuildFailed."""

    def build_exists(self, build_id: str) -> bool: ...

    def drop_build(self, build_id: str) -> None:
        """Remove a build's checkout (not shared caches). Idempotent."""

    def start(self, spec: ReleaseSpec, log_path: Path) -> Endpoint:
        """Start the app in the background (it need not answer yet); its output is appended to ``log_path`` as
        timestamped lines. Raises: BuildFailed when it cannot be started at all."""

    def status(self, release_id: str) -> InstanceStatus | None: ...

    def list_instances(self) -> list[InstanceStatus]:
        """Every instance this backend knows of, including ones started before a SpaceHub restart (adoption)."""

    def stop(self, release_id: str) -> None:
        """Stop and forget the instance (SIGTERM, then SIGKILL after a grace period). Idempotent."""

    def freeze(self, release_id: str) -> bool:
        """Suspend the instance without losing its memory; False when this backend or machine cannot."""

    def thaw(self, release_id: str) -> None: ...
