"""The runtime's vocabulary: stages, what a Space should be (Desired), what is (Observed), and the Actions between.

A *build* is a checkout of one revision with its environment installed; its id hashes everything that changes the
result (revision, sdk and version, requirements, factory-reboot generation). A *release* is a build started with one
set of environment variables and hardware; its id hashes the build id, the env, the hardware and the restart
generation. An *instance* is a running release. Changing a secret makes a new release of the same build (no
reinstall); a new commit makes a new build.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Stage(StrEnum):
    NO_APP_FILE = "NO_APP_FILE"
    CONFIG_ERROR = "CONFIG_ERROR"
    BUILDING = "BUILDING"
    BUILD_ERROR = "BUILD_ERROR"
    APP_STARTING = "APP_STARTING"
    RUNNING = "RUNNING"
    RUNNING_BUILDING = "RUNNING_BUILDING"
    RUNNING_APP_STARTING = "RUNNING_APP_STARTING"
    RUNTIME_ERROR = "RUNTIME_ERROR"
    PAUSED = "PAUSED"
    SLEEPING = "SLEEPING"
    STOPPED = "STOPPED"
    DELETING = "DELETING"


class BuildState(StrEnum):
    BUILDING = "building"
    READY = "ready"
    FAILED = "failed"


class InstanceState(StrEnum):
    STARTING = "starting"  # process started, port not answering HTTP yet
    READY = "ready"  # answers HTTP
    EXITED = "exited"  # the process ended (crash or exit); may be restarted
    FROZEN = "frozen"  # asleep in the cgroup freezer: memory kept, no CPU
    FAILED = "failed"  # given up: start timeout or too many crashes


class SleepMode(StrEnum):
    AWAKE = "awake"
    FROZEN = "frozen"  # light sleep: instant wake
    STOPPED = "stopped"  # deep sleep: memory freed, wake = start


@dataclass(frozen=True)
class Desired:
    space_id: str
    revision: str | None
    build_id: str | None
    release_id: str | None
    problem: Stage | None = None  # NO_APP_FILE or CONFIG_ERROR found in the revision
    problem_message: str | None = None
    static: bool = False
    paused: bool = False
    deleting: bool = False
    sleep: SleepMode = SleepMode.AWAKE
    build_timeout: float = 1800.0
    start_timeout: float = 1800.0
    cold_start: bool = False  # the new release needs what the serving one holds (storage to grow): stop it first
    unmet: str | None = None  # why the requested hardware is not the release's (its devices are taken…)
    devices: tuple[str, ...] = ()  # the accelerators the release is placed on (offered when read, not yet taken)


@dataclass(frozen=True)
class BuildObs:
    build_id: str
    state: BuildState
    started_at: float
    error: str | None = None
    asked_by: str | None = None  # the release that started this build (a failure is final for it alone)


@dataclass(frozen=True)
class InstanceObs:
    release_id: str
    build_id: str
    state: InstanceState
    started_at: float
    restarts: int = 0  # crash restarts of this release so far
    exited_at: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class Observed:
    builds: dict[str, BuildObs] = field(default_factory=dict)
    instances: dict[str, InstanceObs] = field(default_factory=dict)
    serving: str | None = None  # the release traffic goes to
    can_freeze: bool = True  # False once the backend could not freeze an instance here: sleep then stops it
    held: frozenset[str] = frozenset()  # the accelerators this Space holds now (the allocator's record)
    replaced: dict[str, float] = field(default_factory=dict)  # release → when traffic switched from it to a newer one


# ---- actions -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StartBuild:
    build_id: str


@dataclass(frozen=True)
class FailBuild:
    build_id: str
    reason: str


@dataclass(frozen=True)
class StartInstance:
    release_id: str
    build_id: str
    restart: bool = False  # a crash restart (counts against the limit)


@dataclass(frozen=True)
class StopInstance:
    release_id: str
    drain: float = 0.0  # wait this long first: requests sent to it just before traffic switched may still land


@dataclass(frozen=True)
class FailInstance:
    release_id: str
    reason: str


@dataclass(frozen=True)
class Route:
    release_id: str | None  # None: no process serves (static, paused, stopped)


@dataclass(frozen=True)
class Freeze:
    release_id: str


@dataclass(frozen=True)
class Thaw:
    release_id: str


@dataclass(frozen=True)
class DropBuild:
    build_id: str


@dataclass(frozen=True)
class Forget:
    """The Space is gone and nothing of it runs: remove what the runtime keeps of it (its logs, its devices, its
    metering). The last action of a deletion, like a Kubernetes finalizer."""


@dataclass(frozen=True)
class Claim:
    """Take these accelerators for the desired release, before anything starts on them. Reading the desired state
    only offers them (takes nothing); another Space may take one meanwhile, and then the claim fails: the pass ends
    there and the next one reads again (its placement then falls back, and says why)."""

    devices: tuple[str, ...]


Action = (
    Claim
    | StartBuild
    | FailBuild
    | StartInstance
    | StopInstance
    | FailInstance
    | Route
    | Freeze
    | Thaw
    | DropBuild
    | Forget
)


# ---- across Spaces ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Resident:
    """A Space on this machine, as the decisions across Spaces see it (which sleepers to stop early)."""

    space_id: str
    last_activity: float  # the last visit, on the reconciler's clock
    asleep: bool = False  # its stage is SLEEPING (frozen or stopped)
    frozen: bool = False  # an instance of it is frozen: it keeps its memory (and its devices)
    devices: tuple[str, ...] = ()  # the accelerators it holds
    evicted: bool = False  # already told to sleep stopped (until its next visit)


@dataclass(frozen=True)
class Evict:
    """Stop a sleeping Space early, because another needs what it keeps (memory, accelerators): it sleeps stopped
    until its next visit (``evicted`` is an input of its sleep mode). ``reason`` goes to its run log."""

    space_id: str
    reason: str


@dataclass(frozen=True)
class Plan:
    actions: list[Action]
    stage: Stage
    error: str | None = None
    detail: str | None = None  # e.g. the sleep mode
    requeue_after: float | None = None  # come back then even without an event (backoff, timeouts)
