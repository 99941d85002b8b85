"""The Backend protocol: what the reconciler asks of any engine that runs Spaces (local processes, Kubernetes…).

The reconciler decides (plan.py); a backend only does. Everything process-, container- or cluster-specific stays
behind this interface. Methods are blocking and called from worker threads; they must be idempotent where noted, so
that a reconciler pass interrupted by a crash can simply run again.

Engine-neutral: nothing in a spec is a host path. Code is named by repo id and commit (a backend is built with the
means to fetch it: the local one reads the git store, a cluster's would fetch a snapshot from the Hub); persistent
storage by its name (a folder or disk image here, a PersistentVolumeClaim on a cluster); a workload's output goes to
the runtime's log store, which the backend is built with (the local supervisor appends to the Space's run log itself,
so output written while SpaceHub is down is kept; a cluster backend relays its pods' logs there).

A workload is a long-running service (a Space: it listens on a port, it is restarted by the reconciler when it
exits) or a run-to-exit task (``ReleaseSpec.run_to_exit``: no port; it is done when it exits, and its exit code is
its result; Jobs build on it).

Errors (kopf's split): `TemporaryBackendError` (the engine cannot do it now: the reconciler tries again after
``delay``, the Space's stage unchanged but explained), `PermanentBackendError` (it cannot succeed as it is: the
message becomes the Space's error). `BuildFailed` is the permanent error of builds and starts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from spacehub.errors import PermanentBackendError, TemporaryBackendError

__all__ = ["BuildFailed", "PermanentBackendError", "TemporaryBackendError"]


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
    revision: str  # commit sha
    path: str | None = None  # a folder of the repo to mount instead of its root


@dataclass(frozen=True)
class BuildSpec:
    space_id: str  # the repo's database id: stable across renames
    build_id: str
    revision: str  # commit sha of the Space's repo (``space_id``) to build; LFS pointer files are materialized
    sdk: str  # gradio | streamlit | docker | static
    sdk_version: str | None
    python_version: str | None
    use_cache: bool = True  # False on factory reboot: rebuild the environment from nothing
    # docker builds, as on HF: the Space's variables the Dockerfile declares with ARG (``--build-arg``), and its
    # secrets the Dockerfile mounts (``RUN --mount=type=secret,id=NAME``). Values are secret: kept out of repr.
    build_args: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    build_secrets: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    # The repo whose ``revision`` is built when it is not ``space_id``'s: a pull request's preview runs under a
    # runtime id of its own (`storage.previews`), with the code of the Space it previews.
    repo_id: str = ""

    @property
    def repo(self) -> str:
        """The repo id to read ``revision`` from."""
        return self.repo_id or self.space_id


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
    storage: str | None = None  # the name of the persistent storage to expose at /data (None: no storage)
    data_limit_bytes: int | None = None  # the storage tier's size, enforced by the backend where it can
    volumes: tuple[VolumeMount, ...] = ()  # repos mounted read-only in the app
    run_to_exit: bool = False  # a task: no port, done when it exits (its exit code is its result), never restarted
    command: tuple[str, ...] = ()  # a task's command line, run in the app's folder and environment


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


@dataclass(frozen=True, slots=True)
class GpuUsage:
    """What one GPU is doing now: its utilization (percent, as nvidia-smi says it) and its memory."""

    utilization: int
    memory_used_bytes: int
    memory_total_bytes: int


@dataclass(frozen=True)
class ResourceUsage:
    """What one instance uses now, as counters: CPU time and network bytes grow (rates are the reader's business),
    memory is the current amount. A counter the backend cannot measure is None (e.g. network bytes of an app that
    shares the host's network namespace, where they cannot be told from other traffic)."""

    cpu_seconds: float
    memory_bytes: int
    rx_bytes: int | None = None
    tx_bytes: int | None = None
    gpus: Mapping[str, GpuUsage] = field(default_factory=dict)  # device id → figures, its own devices only


class BuildFailed(PermanentBackendError):
    """The build or start cannot succeed as it is (bad requirements, missing engine…): the message is shown to the
    user."""


class Backend(Protocol):
    name: str

    def build(self, spec: BuildSpec, log: Callable[[str], None]) -> None:
        """Check out ``spec.revision`` and prepare its environment; ``log`` gets each build log line.
        Idempotent: a build that exists already returns at once. Raises: BuildFailed."""

    def build_exists(self, build_id: str) -> bool: ...

    def drop_build(self, build_id: str) -> None:
        """Remove a build's checkout (not shared caches). Idempotent."""

    def start(self, spec: ReleaseSpec) -> Endpoint | None:
        """Start the workload in the background (a service need not answer yet) and answer where it will listen
        (None for a run-to-exit task). Its output goes to the Space's run log as timestamped lines. Idempotent while
        it runs. Raises: BuildFailed (PermanentBackendError) when it cannot be started at all,
        TemporaryBackendError when the engine cannot start it now."""

    def status(self, release_id: str) -> InstanceStatus | None: ...

    def list_instances(self) -> list[InstanceStatus]:
        """Every instance this backend knows of, including ones started before a SpaceHub restart (adoption)."""

    def stop(self, release_id: str) -> None:
        """Stop and forget the instance (SIGTERM, then SIGKILL after a grace period). Idempotent."""

    def freeze(self, release_id: str) -> bool:
        """Suspend the instance without losing its memory; False when this backend or machine cannot."""

    def thaw(self, release_id: str) -> None: ...

    def usage(self, release_id: str) -> ResourceUsage | None:
        """What the instance uses now (None: it is not running, or this backend cannot measure it)."""

    def storage_size(self, name: str) -> int | None:
        """The size persistent storage ``name`` was provisioned with (None: not yet, or no fixed size). A larger
        tier on a running Space then needs a cold start (this one's disk grows only while nothing uses it)."""

    # Optional (the reconciler asks with getattr; a backend that keeps nothing of a Space beyond its builds and
    # instances need not have them):

    def forget(self, space_id: str) -> None:
        """The Space (or preview: a runtime id) is gone for good: remove everything this backend still holds of it,
        whatever its kind (what still runs, builds, persistent storage, secrets, per-Space folders or objects), and
        nothing of any other. Called by the reconciler's last step of a deletion (plan's `Forget`), again until it
        succeeds, and at start for the ids `spaces` lists that the Hub no longer has. Idempotent. Raises:
        TemporaryBackendError (tried again after its delay)."""

    def exit_notice(self, release_id: str) -> int | None:
        """A file descriptor, now the caller's, that becomes readable once the running instance has ended (the local
        backend's: a pidfd). The crash monitor waits on it instead of asking `status` every second, and asks anyway
        now and then. None: none can be had for this instance (it is asked every second)."""

    def statuses(self, release_ids: Sequence[str]) -> list[InstanceStatus | None]:
        """`status` of each, in order, read together (the crash monitor's round; a cluster's backend lists each kind
        of object once instead of reading it for each release)."""

    def spaces(self) -> set[str]:
        """The runtime ids this backend holds anything of (so that those of Spaces deleted while SpaceHub was down,
        or left by a failed `forget`, are forgotten). Raises: TemporaryBackendError."""
