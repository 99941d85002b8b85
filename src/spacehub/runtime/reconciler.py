"""The reconciler: per Space, read what it should be (desired.py), what is (in-memory observations kept up to date by
the backend and HTTP probes), ask plan() what to do, do it through the backend, and write the stage down.

Level-triggered (kopf style): a pass depends on state, never on the event that caused it, so every trigger is just a
``kick(space_id)``: commits, settings changes, builds finishing, probes answering, processes exiting, timers.
Event-driven: a Space that does not change costs nothing between events. Its own timers bring the passes that time
alone calls for (its sleep time running out: ``sleep.next_sleep_check``; a plan's ``requeue_after``), and a slow
resync gives every Space one more pass per ``runtime.reconcile_interval``, spread evenly over it (never a burst),
to heal anything missed. At start, instances that survived a SpaceHub restart are adopted (the Space's last serving
release, recorded in ``space_status``) and any other instance is stopped: no orphans. Only the Spaces that need
it get a pass at once (`_needs_a_start_pass`): resting ones (asleep, paused, static) keep their recorded stage; and
what the backend still holds of Spaces deleted meanwhile (its ``spaces``) is deleted, as a deletion's last step
(``forget``) does.

Concurrency: one pass at a time per Space (a lock; kicks during a pass coalesce into one more pass). Builds and
backend calls run in worker threads; probes are asyncio tasks.

Time: every decision reads ``RuntimeDeps.clock`` and every timer runs on it (a plan's ``requeue_after``, a temporary
error's retry, each Space's sleep timer, the resync, the memory watch, the meter, the crash monitor), so tests move a
``ManualClock``. What is not decided here:
plan() (runtime/plan.py) decides each Space's actions, and which sleepers to stop for memory or for accelerators
and what a visit does at once; this module gathers their inputs, carries out their answers and records what happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from spacehub.flavors import Catalog, MachineInfo, this_machine
from spacehub.runtime import desired as desired_mod
from spacehub.runtime.backends.base import (
    Backend,
    Endpoint,
    InstanceStatus,
    PermanentBackendError,
    TemporaryBackendError,
)
from spacehub.runtime.clock import Clock, SystemClock
from spacehub.runtime.logs import SpaceLogs, delete_logs
from spacehub.runtime.plan import adopt, free_devices, freeze_overtaken, plan, relieve_memory, stable, visit
from spacehub.runtime.scheduling import Scheduler
from spacehub.runtime.sleep import available_memory, next_sleep_check, sleep_mode
from spacehub.runtime.types import (
    Action,
    BuildObs,
    BuildState,
    Claim,
    Desired,
    DropBuild,
    Evict,
    FailBuild,
    FailInstance,
    Forget,
    Freeze,
    InstanceObs,
    InstanceState,
    Observed,
    Resident,
    Route,
    SleepMode,
    Stage,
    StartBuild,
    StartInstance,
    StopInstance,
    Thaw,
)
from spacehub.storage.db import Database, utcnow
from spacehub.storage.git import GitStore
from spacehub.storage.models import PreviewStatus, Repo, Space, SpaceStatus
from spacehub.storage.previews import all_wanted, host_label, parse_preview_id, preview_id, repo_of, wanted

log = logging.getLogger("spacehub.runtime")
PROBE_INTERVAL = 0.1
FAST_PROBE_INTERVAL, FAST_PROBE_FOR = 0.01, 2.0  # a quick app (a wake from deep sleep) is seen within 10 ms
MONITOR_INTERVAL = 1.0
MONITOR_SAFETY_ROUNDS = 30  # an instance with an exit notice is asked anyway this often (rounds of the monitor)
MEMORY_INTERVAL = 10.0  # how often available memory is read (runtime.min_available_memory_mb)
METER_INTERVAL = 30.0  # running Spaces are metered this often between passes (under billing.STALE_AFTER)
RESYNC_TICK = 0.1  # the resync kicks a few Spaces at most this often (not one timer per Space)
LEFTOVERS_EVERY = 300.0  # after a resync round, what the backend holds of gone Spaces is looked for at most this often
DEFAULT_SLEEP = 48 * 3600


# Stages a Space can be left in across a restart of SpaceHub without a pass: nothing runs for it, and nothing will
# until a visit (asleep; static Spaces are served by SpaceHub itself, from git, after the pass that visit brings), an
# owner (paused) or a change.
RESTING_STAGES = frozenset({Stage.SLEEPING.value, Stage.PAUSED.value})


def _needs_a_start_pass(
    st: SpaceStatus | PreviewStatus | None, sdk: str | None, change_seq: int, adopted: bool
) -> bool:
    """Whether a Space needs a pass as soon as SpaceHub starts: one with an instance to look after, a change the
    runtime has not acted on, a stage that was under way (a build or a start stopped with SpaceHub) or an error (its
    build is tried again), or no status yet. The others (asleep, paused, a static Space that served, with nothing
    changed since) keep the stage their row says, and get their pass from a visit, a change or the resync: at start,
    10,000 resting Spaces cost a read of their rows, not 10,000 passes at once."""
    if adopted or st is None or not isinstance(st, SpaceStatus) or change_seq > (st.seen_change or 0):
        return True
    return not (st.stage in RESTING_STAGES or (sdk == "static" and st.stage == Stage.RUNNING.value))


def _id_key(path: Path) -> bytes:
    """A random key kept in ``path`` (created 0600 on first use), for keyed release ids."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = os.urandom(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes()
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        return key


def rid_asked(rid: str, rounds: int, notices: Mapping[str, int]) -> bool:
    """Whether the monitor asks the backend of a ready instance this round: every round without an exit notice, every
    ``MONITOR_SAFETY_ROUNDS`` rounds with one."""
    return rid not in notices or rounds % MONITOR_SAFETY_ROUNDS == 0


def _observe(backend: Backend, ask: list[str], watch: list[str]) -> tuple[list[Any], list[int | None]]:
    """The monitor's round in one worker thread: the status of each of ``ask`` (in one call where the backend reads
    them together, `Backend.statuses`), an exit notice for each of ``watch``."""
    statuses = getattr(backend, "statuses", None)
    found = statuses(ask) if statuses is not None and ask else [backend.status(r) for r in ask]
    return found, [backend.exit_notice(r) for r in watch]


def _each(call: Callable[..., Any], args: list[tuple[Any, ...]]) -> list[Any]:
    """``call(*a)`` for each ``a`` of ``args``, in order (many small backend or meter calls in one worker thread)."""
    return [call(*a) for a in args]


@dataclass
class SpaceRun:
    """Everything the reconciler observes of one Space (in memory; rebuilt from the backend at start)."""

    builds: dict[str, BuildObs] = field(default_factory=dict)
    instances: dict[str, InstanceObs] = field(default_factory=dict)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    hardware: dict[str, str] = field(default_factory=dict)  # release → flavor it runs on
    revisions: dict[str, str] = field(default_factory=dict)  # release → revision
    limits: dict[str, str] = field(default_factory=dict)  # release → how the backend enforces its limits
    serving: str | None = None
    static_revision: str | None = None
    last_activity: float = 0.0  # on the reconciler's clock (`Reconciler._run` sets it)
    stage: str = Stage.STOPPED.value
    error: str | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    dirty: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    replaced: dict[str, float] = field(default_factory=dict)  # release → when traffic switched from it (clock.time)
    draining: set[str] = field(default_factory=set)  # releases given their drain time (real time) before a stop
    drained: set[str] = field(default_factory=set)  # releases whose drain time has passed: stopped without a wait
    devices: dict[str, tuple[str, ...]] = field(default_factory=dict)  # release → accelerators it was given
    evicted: bool = False  # frozen, then stopped early to free memory (until the next visit)
    waking: int = 0  # requests waiting in wake(): the Space is being visited, it must not fall asleep meanwhile
    can_freeze: bool = True  # False once the backend could not freeze it: it sleeps stopped
    pass_started: float = 0.0  # when the current pass began (a visit since then cancels a freeze)
    retried_builds: set[str] = field(default_factory=set)  # builds tried again after a temporary error: log kept
    sleep_check: float | None = None  # seconds from the last read until it may sleep deeper (`next_sleep_check`)
    timer_due: float | None = None  # when its timer brings its next pass (clock.monotonic), None: no timer
    saved: tuple[Any, ...] | None = None  # what the last pass wrote to its status row (a pass that changed nothing
    # writes nothing, and does not read the row either)

    def observed(self, held: frozenset[str] = frozenset()) -> Observed:
        """What plan() sees of this Space; ``held``: the accelerators the allocator records for it."""
        return Observed(dict(self.builds), dict(self.instances), self.serving, self.can_freeze, held,
                        dict(self.replaced))  # fmt: skip


@dataclass
class RuntimeDeps:
    settings: Any
    db: Database
    git: GitStore
    backend: Backend
    catalog: Catalog = field(default_factory=Catalog)
    machine: MachineInfo = field(default_factory=this_machine)
    user_env: Callable[[Session, Repo], Mapping[str, str]] = lambda s, r: {}
    hub_url: Callable[[], str] = lambda: "http://127.0.0.1:8000"
    space_host: Callable[[str], str] = lambda full_name: ""
    storage: Callable[[Session, Repo], Any] | None = None  # persistent storage and volumes (space_storage.py)
    scheduler: Scheduler | None = None  # limits and accelerators per flavor (default: capped, no devices)
    meter: Callable[[str, set[str]], None] | None = None  # (space id, flavors it runs on now): usage metering
    available_memory: Callable[[], int | None] = available_memory
    clock: Clock = field(default_factory=SystemClock)  # what decisions read; tests move a ManualClock by hand
    # Called in the transaction that writes a Space's status row when its stage or hardware changes: (session, space
    # id, before, after), each {stage, hardware, requested, error}; before is None for a first status. The services
    # own it (services.webhooks.space_status_listener: the Space's runtime events for webhooks).
    status_listener: Callable[[Session, str, Mapping[str, Any] | None, Mapping[str, Any]], None] | None = None


class Reconciler:
    def __init__(self, deps: RuntimeDeps) -> None:
        self.d = deps
        self.clock = deps.clock
        self.runs: dict[str, SpaceRun] = {}
        self._previews: dict[str, set[str]] = {}  # a Space's repo id → its previews' ids in ``runs``
        self.logs_root: Path = deps.settings.data_dir / "spaces"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._http = httpx.AsyncClient(timeout=2.0)
        self._closing = False
        self.deep_sleep_after = float(getattr(deps.settings.runtime, "deep_sleep_after", 3600))
        self.min_available = int(getattr(deps.settings.runtime, "min_available_memory_mb", 0)) * 2**20
        self.scheduler = deps.scheduler or Scheduler(deps.catalog, deps.machine)
        self._waiting: set[str] = set()  # Spaces whose requested hardware waits for devices
        self._start_passes: list[str] = []  # what `_adopt` found needs a pass at once (`_needs_a_start_pass`)
        # Spaces with an instance record (running, starting, frozen, exited): what the per-second crash monitor, the
        # meter and the memory watch look at, instead of every Space (a record is made and dropped only by a pass or
        # by the adoption at start, so it is brought up to date after each)
        self._live: set[str] = set()
        self._notices: dict[str, int] = {}  # release id → the exit notice the loop waits on (`_monitor`)
        self._unwatched: set[str] = set()  # ready release ids with no notice: asked every round
        self._swept = self.clock.monotonic()  # when the backend was last looked for leftovers (at start: `_adopt`)
        self.id_key = _id_key(deps.settings.data_dir / "runtime-id.key")  # release ids hash secret values
        self.route_listeners: list[Callable[[], None]] = []  # called (in the loop) after each pass
        self.state_listeners: list[Callable[[str], None]] = []  # called (in the loop) with the Space after its pass

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    # ---- lifecycle ---------------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._adopt)
        self._spawn(self._resync())
        self._spawn(self._monitor())
        if self.min_available > 0:
            self._spawn(self._watch_memory())
        if self.d.meter is not None:
            self._spawn(self._meter_running())
        for space_id in self._start_passes:
            self.kick(space_id)
        self._start_passes = []

    async def stop(self) -> None:
        """Stop reconciling. Running apps keep running: the next start adopts them. Builds under way are stopped
        (the backend's optional ``close``): the next start builds again."""
        self._closing = True
        for rid in list(self._notices):
            self._drop_notice(rid)
        for t in list(self._tasks):
            t.cancel()
        close = getattr(self.d.backend, "close", None)
        if close is not None:
            await asyncio.to_thread(close)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._http.aclose()

    def _spawn(self, coro: Any) -> None:
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def _held(self) -> set[str]:
        """The runtime ids the backend holds anything of (its optional ``spaces``; empty when it cannot say)."""
        spaces = getattr(self.d.backend, "spaces", None)
        if spaces is None:
            return set()
        try:
            return set(spaces())
        except Exception as e:
            log.warning("cannot list what the backend holds: %s", e)
            return set()

    def _leftovers(self) -> list[str]:
        """The runtime ids the backend holds something of that are neither a Space nor a preview that should run: a
        Space deleted while SpaceHub was down, a preview that ended meanwhile, a `forget` that failed. Each gets a
        pass, which reads the database again: what is gone is deleted (plan's finalizer, ending in Forget), anything
        else is reconciled as usual. The backend is listed before the database is read (its objects of a Space are
        made only after the Space was committed, so one the read misses was deleted)."""
        held = self._held()
        if not held:
            return []
        with self.d.db.transaction() as s:
            known = set(s.scalars(select(Repo.id).where(Repo.type == "space"))) | set(all_wanted(s))
        return sorted(held - known)

    def _adopt(self) -> None:
        held = self._held()  # before the database is read (see `_leftovers`)
        alive = {i.release_id: i for i in self.d.backend.list_instances()}
        with self.d.db.transaction() as s:
            sdks: dict[str, str | None] = {
                rid: sdk for rid, sdk in s.execute(select(Repo.id, Repo.sdk).where(Repo.type == "space"))
            }
            spaces = list(sdks)
            statuses = {st.repo_id: st for st in s.scalars(select(SpaceStatus))}
            rows = {sp.repo_id: (sp.sleep_time, sp.change_seq) for sp in s.scalars(select(Space))}
            sleep_times = {repo_id: row[0] for repo_id, row in rows.items()}
            previews = all_wanted(s)
            wanted_previews = set(previews)
            preview_rows: dict[str, PreviewStatus] = {}
            for row in s.scalars(select(PreviewStatus)):
                pid = preview_id(row.repo_id, row.num)
                if pid in wanted_previews:
                    preview_rows[pid] = row
                else:
                    s.delete(row)  # ended while nothing ran its finalizer (e.g. SpaceHub stopped mid-pass)
        known = set(spaces)
        recorded = {space_id: st.serving_release for space_id, st in statuses.items() if space_id in known}
        recorded |= {pid: row.serving_release for pid, row in preview_rows.items()}
        usable = [rid for rid, i in alive.items() if i.running and i.endpoint is not None]
        keep, orphans = adopt(recorded, usable, alive)
        saved: list[tuple[str, Any]] = [(sid, statuses.get(sid)) for sid in spaces]
        saved += [(pid, preview_rows.get(pid)) for pid in previews]
        for space_id, st in saved:
            run = self._run(space_id)
            if st is not None and space_id in keep:
                inst = alive[keep[space_id]]
                assert inst.endpoint is not None
                state = InstanceState.FROZEN if inst.frozen else InstanceState.READY
                run.builds[inst.build_id] = BuildObs(inst.build_id, BuildState.READY, self.clock.time())
                run.instances[inst.release_id] = InstanceObs(inst.release_id, inst.build_id, state, self.clock.time())
                run.endpoints[inst.release_id] = inst.endpoint
                run.hardware[inst.release_id] = st.current_hardware or "cpu-basic"
                run.revisions[inst.release_id] = st.serving_revision or ""
                run.limits[inst.release_id] = inst.limits
                devices = getattr(st, "devices", None)  # a preview has none (never accelerators)
                run.devices[inst.release_id] = tuple(devices.split(",")) if devices else ()
                self.scheduler.allocator.hold(space_id, run.devices[inst.release_id])
                run.serving = inst.release_id
                self._live.add(space_id)
            # It stays asleep, as deeply as it was. A preview that a SpaceHub before its status rows ran (no row)
            # sleeps stopped until a visit.
            if (st is not None and st.stage == Stage.SLEEPING.value) or (st is None and space_id not in known):
                sleep_time = sleep_times.get(repo_of(space_id))
                idle = float(DEFAULT_SLEEP if sleep_time is None else max(sleep_time, 0))
                run.stage = Stage.SLEEPING.value
                deep = self.deep_sleep_after if run.serving is None else 0
                run.last_activity = self.clock.monotonic() - idle - deep
            if _needs_a_start_pass(st, sdks.get(space_id), rows.get(space_id, (None, 0))[1], space_id in keep):
                self._start_passes.append(space_id)
            elif st is not None:
                run.stage = st.stage
        for rid in orphans:
            log.info("stopping orphan instance %s", rid)
            self.d.backend.stop(rid)
        for space_id in sorted(held - known - wanted_previews):  # deleted while SpaceHub was down: deleted now
            log.info("%s is gone: removing what the backend still holds of it", space_id)
            self._run(space_id)
            self._start_passes.append(space_id)

    def _run(self, space_id: str) -> SpaceRun:
        """The Space's record, made on first use (its idle time counted from now, on the reconciler's clock)."""
        run = self.runs.get(space_id)
        if run is None:
            run = self.runs[space_id] = SpaceRun(last_activity=self.clock.monotonic())
            if (pr := parse_preview_id(space_id)) is not None:
                self._previews.setdefault(pr[0], set()).add(space_id)
        return run

    # ---- triggers ------------------------------------------------------------------------------------------------
    def kick(self, space_id: str) -> None:
        """Ask for a pass over ``space_id`` (from the event loop)."""
        if self._closing:
            return
        run = self._run(space_id)
        if run.lock.locked():
            run.dirty = True
            return
        self._spawn(self._reconcile(space_id))

    def kick_threadsafe(self, space_id: str) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.kick, space_id)

    def touch(self, space_id: str) -> None:
        """A request reached the Space (the proxy calls this on every request: it must stay cheap)."""
        run = self.runs.get(space_id)
        if run is not None:
            run.last_activity = self.clock.monotonic()

    async def wake(self, space_id: str, timeout: float = 600.0) -> Endpoint | None:  # noqa: ASYNC109
        """Wake a sleeping Space and wait until it serves; None if it cannot (error, paused, timeout)."""
        if space_id not in self.runs and parse_preview_id(space_id) is not None:
            return None  # a preview runs only once asked for (its run exists from then on until it ends)
        run = self._run(space_id)
        run.last_activity = self.clock.monotonic()
        run.waking += 1
        try:
            return await self._wake(space_id, run, timeout)
        finally:
            run.waking -= 1
            run.last_activity = self.clock.monotonic()

    async def _wake(self, space_id: str, run: SpaceRun, timeout: float) -> Endpoint | None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        for action in visit(run.observed()):  # a light sleep's fast path (a thaw), then the pass confirms
            await self._apply(space_id, run, None, action)
        self.kick(space_id)
        while time.monotonic() < deadline:
            ep = self.serving_endpoint(space_id)
            if ep is not None:
                return ep
            if run.stage in (Stage.PAUSED, Stage.BUILD_ERROR, Stage.RUNTIME_ERROR, Stage.CONFIG_ERROR,
                             Stage.NO_APP_FILE, Stage.DELETING) or self.runs.get(space_id) is not run:  # fmt: skip
                return None
            run.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.changed.wait(), timeout=min(1.0, deadline - time.monotonic()))
        return None

    def serving_endpoint(self, space_id: str) -> Endpoint | None:
        run = self.runs.get(space_id)
        if run is None or run.serving is None:
            return None
        inst = run.instances.get(run.serving)
        return run.endpoints.get(run.serving) if inst and inst.state is InstanceState.READY else None

    async def _resync(self) -> None:
        """Heal anything missed: every Space gets a pass once per ``runtime.reconcile_interval``, the passes spread
        evenly over it (a few Spaces every ``RESYNC_TICK`` at most), so that its cost per second stays flat and
        small whatever the number of Spaces (events, not this, drive what changes). After each round, what the
        backend holds of Spaces that are gone gets a pass too (`_leftovers`, at most every LEFTOVERS_EVERY), which
        deletes it."""
        interval = float(getattr(self.d.settings.runtime, "reconcile_interval", 10800.0))
        while True:
            ids = await asyncio.to_thread(self._space_ids)
            if not ids:
                await self.clock.sleep(interval)
            else:
                tick = max(interval / len(ids), RESYNC_TICK)
                per = max(1, round(len(ids) * tick / interval))
                for i in range(0, len(ids), per):
                    await self.clock.sleep(tick)
                    for space_id in ids[i : i + per]:
                        self.kick(space_id)
            if self.clock.monotonic() - self._swept >= LEFTOVERS_EVERY:  # what deletions left (a short interval
                self._swept = self.clock.monotonic()  # would list the backend's objects too often)
                for space_id in await asyncio.to_thread(self._leftovers):
                    self.kick(space_id)

    def _space_ids(self) -> list[str]:
        with self.d.db.transaction() as s:
            return list(s.scalars(select(Repo.id).where(Repo.type == "space")))

    async def _watch_memory(self) -> None:
        while True:
            await self.clock.sleep(MEMORY_INTERVAL)
            await self._relieve_memory()

    async def _meter_running(self) -> None:
        """Between passes, tell the meter which Spaces still run, and on what (an open usage interval not seen for
        `billing.STALE_AFTER` ends where it was last seen); Spaces on free hardware cost it no database work."""
        meter = self.d.meter
        assert meter is not None
        while True:
            await self.clock.sleep(METER_INTERVAL)
            running = [(space_id, flavors) for space_id, run in self._live_runs() if (flavors := self._billable(run))]
            if running:
                await asyncio.to_thread(_each, meter, running)

    async def _relieve_memory(self) -> None:
        """Below ``runtime.min_available_memory_mb`` of available memory, stop frozen Spaces until there is enough
        again (which, and in what order: `plan.relieve_memory`), each Space once per sweep, reading the memory again
        after each: they stay asleep, stopped instead of frozen, until their next visitor."""
        if self.min_available <= 0:
            return
        stopped: set[str] = set()
        while True:
            available = await asyncio.to_thread(self.d.available_memory)  # first: with enough, nothing else is read
            if available is None or available >= self.min_available:
                return
            candidates = [r for r in self._residents() if r.space_id not in stopped]
            evict = relieve_memory(candidates, available, self.min_available)  # None: no frozen one left
            if evict is None:
                return
            stopped.add(evict.space_id)
            if self._evict(evict):
                await self._reconcile(evict.space_id)

    def _residents(self) -> list[Resident]:
        """Every Space with an instance, as `plan.relieve_memory` and `plan.free_devices` see them (what they stop
        is asleep and holds memory or devices: an instance)."""
        holders = self.scheduler.allocator.holders()
        return [
            Resident(
                space_id,
                run.last_activity,
                asleep=run.stage == Stage.SLEEPING.value,
                frozen=any(i.state is InstanceState.FROZEN for i in run.instances.values()),
                devices=holders.get(space_id, ()),
                evicted=run.evicted,
            )
            for space_id, run in self._live_runs()
        ]

    def _evict(self, evict: Evict) -> bool:
        """Carry out an `Evict`: the Space sleeps stopped until its next visit (its next pass stops it). False if the
        Space is gone."""
        run = self.runs.get(evict.space_id)
        if run is None:
            return False
        run.evicted = True
        SpaceLogs(self.logs_root, evict.space_id).append("run", f"===== {evict.reason} =====")
        return True

    async def _monitor(self) -> None:
        """Notice ready instances that exited (crash) and reset crash counts of stable ones.

        Where the backend gives an exit notice (`Backend.exit_notice`: the local one's is a pidfd of the supervisor),
        the loop waits on it and the instance is asked only every ``MONITOR_SAFETY_ROUNDS`` rounds, in case a notice
        was missed; the others are asked every round (``MONITOR_INTERVAL``), in one worker-thread call per round.
        At 50 running apps that was 300 stats and 150 opens a second, and most of the runtime's CPU at rest."""
        backend = self.d.backend
        notice = getattr(backend, "exit_notice", None)
        rounds = 0
        while True:
            await self.clock.sleep(MONITOR_INTERVAL)
            rounds += 1
            ready = [(space_id, run, rid) for space_id, run in self._live_runs()
                     for rid, inst in list(run.instances.items()) if inst.state is InstanceState.READY]  # fmt: skip
            ready_ids = {rid for _, _, rid in ready}
            for rid in [r for r in self._notices if r not in ready_ids]:
                self._drop_notice(rid)
            self._unwatched &= ready_ids
            new = [(space_id, rid) for space_id, _, rid in ready
                   if notice is not None and rid not in self._notices and rid not in self._unwatched]  # fmt: skip
            ask = [rid for _, _, rid in ready if rid_asked(rid, rounds, self._notices)]
            answers: dict[str, InstanceStatus | None] = {}
            if ask or new:
                found, fds = await asyncio.to_thread(_observe, backend, ask, [r for _, r in new])
                for (space_id, rid), fd in zip(new, fds, strict=True):
                    self._watch_exit(space_id, rid, fd)
                answers = dict(zip(ask, found, strict=True))
            for space_id, run, rid in ready:
                self._judge(space_id, run, rid, answers.get(rid), asked=rid in answers)

    def _judge(self, space_id: str, run: SpaceRun, rid: str, st: InstanceStatus | None, asked: bool) -> None:
        """What the monitor makes of a ready instance: exited when the backend was ``asked`` and answered that it
        does not run, else its crash count is reset once it is stable."""
        inst = run.instances.get(rid)
        if inst is None or inst.state is not InstanceState.READY:  # changed while the backend answered
            return
        if asked and (st is None or not st.running):
            self._drop_notice(rid)
            self._exited(space_id, run, rid, st.exit_code if st else None)
        elif stable(inst.restarts, inst.started_at, self.clock.time()):
            run.instances[rid] = replace(inst, restarts=0)

    def _watch_exit(self, space_id: str, rid: str, fd: int | None) -> None:
        """Wait on an exit notice (None: the instance is asked every round instead)."""
        if fd is None or self._loop is None or self._closing:
            if fd is not None:
                os.close(fd)
            self._unwatched.add(rid)
            return
        self._notices[rid] = fd
        self._loop.add_reader(fd, self._noticed, space_id, rid)

    def _drop_notice(self, rid: str) -> None:
        fd = self._notices.pop(rid, None)
        if fd is not None:
            if self._loop is not None:
                self._loop.remove_reader(fd)
            os.close(fd)

    def _noticed(self, space_id: str, rid: str) -> None:
        """An exit notice is readable: ask the backend now (whatever it says, the instance is asked every round from
        now on: its notice is spent)."""
        self._drop_notice(rid)
        self._unwatched.add(rid)
        self._spawn(self._ask_now(space_id, rid))

    async def _ask_now(self, space_id: str, rid: str) -> None:
        st = await asyncio.to_thread(self.d.backend.status, rid)
        run = self.runs.get(space_id)
        if run is not None:
            self._judge(space_id, run, rid, st, asked=True)

    def _exited(self, space_id: str, run: SpaceRun, rid: str, code: int | None) -> None:
        inst = run.instances.get(rid)
        if inst is None:
            return
        tail = SpaceLogs(self.logs_root, space_id).tail("run")
        reason = f"The app exited with code {code}" + (f":\n{tail}" if tail else "")
        run.instances[rid] = replace(inst, state=InstanceState.EXITED, exited_at=self.clock.time(), error=reason)
        SpaceLogs(self.logs_root, space_id).append("run", f"===== app exited (code {code}) =====")
        self.kick(space_id)

    # ---- one pass --------------------------------------------------------------------------------------------
    async def _reconcile(self, space_id: str) -> None:
        run = self._run(space_id)
        async with run.lock:
            while True:
                run.dirty = False
                try:
                    await self._pass(space_id, run)
                except Exception:
                    log.exception("reconcile %s failed", space_id)
                finally:
                    self._note_live(space_id, run)
                if not run.dirty or self._closing:
                    break

    def _note_live(self, space_id: str, run: SpaceRun) -> None:
        if run.instances and self.runs.get(space_id) is run:
            self._live.add(space_id)
        else:
            self._live.discard(space_id)

    def _live_runs(self) -> list[tuple[str, SpaceRun]]:
        return [(space_id, run) for space_id in list(self._live) if (run := self.runs.get(space_id)) is not None]

    def _sleep_mode(self, space: Space | None, run: SpaceRun) -> SleepMode:
        sleep_time = space.sleep_time if space is not None and space.sleep_time is not None else DEFAULT_SLEEP
        mode = sleep_mode(
            self.clock.monotonic() - run.last_activity, sleep_time, self.deep_sleep_after, run.evicted,
            visiting=run.waking > 0, nothing_runs=run.serving is None, was_asleep=run.stage == Stage.SLEEPING.value,
        )  # fmt: skip
        if mode is SleepMode.AWAKE:
            run.evicted = False  # visited since: the next sleep starts frozen again
        idle = self.clock.monotonic() - run.last_activity
        run.sleep_check = next_sleep_check(idle, float(sleep_time), self.deep_sleep_after, mode)
        return mode

    def _read(self, space_id: str, run: SpaceRun) -> desired_mod.SpaceState | None:
        """What the Space (or the pull request preview, `storage.previews`) should be; None once it is gone (a
        preview: no longer asked for, or its pull request is no longer open)."""
        pr = parse_preview_id(space_id)
        with self.d.db.transaction() as s:
            repo = s.get(Repo, pr[0] if pr else space_id)
            if repo is None:
                return None
            space = s.get(Space, repo.id)
            host, preview = self.d.space_host(repo.full_name), None
            if pr is not None:
                d = wanted(s, repo.id, pr[1])
                if d is None or d.preview_at is None:
                    return None
                head = self.d.git.ref_target(repo.id, f"refs/pr/{pr[1]}")
                preview = desired_mod.PreviewOf(space_id, head, d.preview_at.isoformat())
                label, dot, rest = host.partition(".")
                host = host_label(label, pr[1]) + dot + rest
            state = desired_mod.read_space(
                s,
                self.d.git,
                repo,
                space,
                catalog=self.d.catalog,
                machine=self.d.machine,
                hub_url=self.d.hub_url(),
                host=host,
                user_env=self.d.user_env,
                sleep=self._sleep_mode(space, run),
                storage=self.d.storage,
                place=lambda f, devices: self.scheduler.offer(space_id, f, devices),
                fallback=run.hardware.get(run.serving) if run.serving else None,
                id_key=self.id_key,
                preview=preview,
            )
            return replace(state, change_seq=space.change_seq if space is not None and pr is None else 0)

    async def _pass(self, space_id: str, run: SpaceRun) -> None:
        run.pass_started = self.clock.monotonic()
        for preview in self._previews_of(space_id):  # a commit to refs/pr/N, a deletion: each preview looks again
            self.kick(preview)
        state = await asyncio.to_thread(self._read, space_id, run)
        if state is None:  # the Space is gone: the plan stops what runs, drops its builds and forgets it
            gone = Desired(space_id, revision=None, build_id=None, release_id=None, deleting=True)
            run.stage = Stage.DELETING.value  # said before acting: a visitor waiting in wake() stops waiting
            run.changed.set()
            for action in plan(gone, run.observed(), self.clock.time()).actions:
                await self._apply(space_id, run, None, action)
            for state_listener in self.state_listeners:
                state_listener(space_id)
            return
        p = plan(state.desired, run.observed(self.scheduler.allocator.held(space_id)), self.clock.time())
        for claim in [a for a in p.actions if isinstance(a, Claim)]:
            why = self.scheduler.claim(space_id, state.full_name, claim.devices)
            if why is not None:  # taken since the read offered them: read again (the placement then falls back)
                log.info("%s: devices %s taken since they were offered (%s): reading again", space_id, claim.devices,
                         why)  # fmt: skip
                run.dirty = True
                return
        run.stage, run.error = p.stage.value, p.error  # said before acting: the proxy's pages follow it at once
        for action in p.actions:
            await self._apply(space_id, run, state, action)
        if state.desired.static:
            run.static_revision = state.desired.revision
        run.stage, run.error = p.stage.value, p.error
        run.changed.set()
        for listener in self.route_listeners:
            listener()
        for state_listener in self.state_listeners:
            state_listener(space_id)
        self._account(space_id, run, state.desired, state.release)
        if state.desired.unmet and state.requested:
            self._wake_holders_up(space_id, state.requested)
        await asyncio.to_thread(self._save_status, space_id, run, p.stage, p.error, p.detail, state)
        if self.d.meter is not None:
            await asyncio.to_thread(self.d.meter, space_id, self._billable(run))
        if p.requeue_after is not None:
            self._later(space_id, max(p.requeue_after, 0.05))
        d = state.desired
        if run.sleep_check is not None and not (d.static or d.paused or d.deleting):
            self._pass_in(space_id, run, run.sleep_check)  # its sleep time runs out then: no sweep needed

    def _previews_of(self, space_id: str) -> list[str]:
        """The previews of a Space's pull requests that this reconciler keeps (none for a preview): an index kept as
        runs come and go (a scan of every run cost ~1 ms of each pass at 10,000 Spaces)."""
        return sorted(self._previews.get(space_id, ()))

    def _account(self, space_id: str, run: SpaceRun, desired: Any, release: Any) -> None:
        """Record the devices the Space holds after this pass: its live instances' and, when it should run, its
        desired release's. Devices it no longer uses are free again: Spaces waiting for one get a pass."""
        live = [rid for rid, inst in run.instances.items() if inst.state is not InstanceState.FAILED]
        held = {d for rid in live for d in run.devices.get(rid, ())}
        awake = not (desired.paused or desired.deleting or desired.static or desired.sleep is not SleepMode.AWAKE)
        if awake and release is not None:
            held |= set(release.resources.devices)
        freed = self.scheduler.allocator.hold(space_id, held)
        if desired.unmet:
            self._waiting.add(space_id)
        else:
            self._waiting.discard(space_id)
        if freed:
            for other in self._waiting - {space_id}:
                self.kick(other)

    def _wake_holders_up(self, space_id: str, requested: str) -> None:
        """A Space waits for accelerators that sleeping Spaces hold (frozen keeps the GPU's memory): stop those
        sleepers (which: `plan.free_devices`), as memory pressure would. Their passes free the devices, and the
        waiter gets a pass then."""
        wanted = self.scheduler.wanted(requested)
        if not wanted:
            return
        for evict in free_devices(space_id, wanted, self._residents()):
            if self._evict(evict):
                self.kick(evict.space_id)

    @staticmethod
    def _billable(run: SpaceRun) -> set[str]:
        """The flavors the Space runs on now: instances starting or answering (not frozen, not exited or failed).
        Builds, sleep (frozen or stopped) and pauses are never billed."""
        live = (InstanceState.STARTING, InstanceState.READY)
        return {run.hardware[rid] for rid, inst in run.instances.items() if inst.state in live and rid in run.hardware}

    def _drain(self, space_id: str, run: SpaceRun, rid: str, delay: float) -> None:
        """Once ``delay`` seconds (real time) have passed, a pass over the Space stops ``rid`` without a wait."""
        if rid in run.draining or self._loop is None:
            return
        run.draining.add(rid)

        def drained() -> None:
            run.draining.discard(rid)
            if self.runs.get(space_id) is run and rid in run.instances:  # not stopped meanwhile
                run.drained.add(rid)
                self.kick(space_id)

        self._loop.call_later(delay, drained)

    def _later(self, space_id: str, delay: float) -> None:
        self.clock.call_later(delay, lambda: self.kick(space_id))

    def _pass_in(self, space_id: str, run: SpaceRun, delay: float) -> None:
        """The Space's timer: a pass in ``delay`` seconds. One per Space: an earlier one already set stands (its
        pass sets the next), a later one is replaced (it comes, finds itself replaced and does nothing)."""
        now = self.clock.monotonic()
        due = now + delay
        if run.timer_due is not None and now <= run.timer_due <= due:
            return

        def due_now() -> None:
            if self.runs.get(space_id) is run and run.timer_due == due:
                run.timer_due = None
                self.kick(space_id)

        run.timer_due = due
        self.clock.call_later(delay, due_now)

    def _retry_later(self, space_id: str, run: SpaceRun, forget: Callable[[], object], delay: float) -> None:
        """After ``delay`` (a temporary backend error's), forget the observation that stands for the attempt, so
        that the next pass makes it again."""

        def retry() -> None:
            if self.runs.get(space_id) is run:
                forget()
                self.kick(space_id)

        self.clock.call_later(max(delay, 0.05), retry)

    def _save_status(
        self, space_id: str, run: SpaceRun, stage: Stage, error: str | None, detail: str | None, state: Any
    ) -> None:
        preview = parse_preview_id(space_id)
        if preview is not None:  # no space_status row (nor webhooks): FrontDoor.stage says its stage
            self._save_preview_status(preview, run, stage)
            return
        serving = run.serving
        enforced = run.limits.get(serving) if serving else None
        hardware = run.hardware.get(serving) if serving else None
        if stage is Stage.RUNNING and state.desired.static:
            hardware = state.hardware  # served by SpaceHub itself, on the flavor it asks for
        values = {  # the row's columns as this pass sees them
            "stage": stage.value,
            "error_message": error or None,
            "detail": detail,
            "serving_release": serving,
            "serving_revision": run.revisions.get(serving) if serving else None,
            "current_hardware": hardware,
            "devices": (",".join(run.devices.get(serving, ())) or None) if serving else None,
            "limits": "; ".join(x for x in (enforced, state.limits_note) if x)[:256] or None,
        }
        key = (tuple(values.values()), state.change_seq)
        if key == run.saved:  # what the last pass wrote (the row is the reconciler's alone): nothing to read or write
            return
        with self.d.db.transaction() as s:
            row = s.get(SpaceStatus, space_id)
            before = None if row is None else {"stage": row.stage, "hardware": row.current_hardware}
            if row is None:
                row = SpaceStatus(repo_id=space_id, stage=stage.value)
                s.add(row)
            for column, value in values.items():
                setattr(row, column, value)
            row.seen_change = max(row.seen_change or 0, state.change_seq)  # the changes this pass acted on
            if s.is_modified(row) or row.updated_at is None:  # a pass that changed nothing writes nothing
                row.updated_at = utcnow()
            after = {"stage": row.stage, "hardware": row.current_hardware}
            if self.d.status_listener is not None and after != before:
                requested = getattr(state, "requested", None) or getattr(state, "hardware", None)
                after |= {"requested": requested, "error": row.error_message}
                try:
                    with s.begin_nested():  # a listener that fails undoes its own writes, never the status
                        self.d.status_listener(s, space_id, before, after)
                except Exception:
                    log.exception("the status listener failed for %s", space_id)
        run.saved = key  # committed

    def _save_preview_status(self, preview: tuple[str, int], run: SpaceRun, stage: Stage) -> None:
        """A preview's `PreviewStatus` row: what a restart needs to bring it back as it is (adopt its instance, or
        keep it asleep). Written only when it changes."""
        serving = run.serving
        values = {
            "stage": stage.value,
            "serving_release": serving,
            "serving_revision": run.revisions.get(serving) if serving else None,
            "current_hardware": run.hardware.get(serving) if serving else None,
        }
        key = tuple(values.values())
        if key == run.saved:
            return
        repo_id, num = preview
        try:
            with self.d.db.transaction() as s:
                if s.get(Repo, repo_id) is None:
                    return  # the Space is gone: its preview is being deleted
                row = s.get(PreviewStatus, (repo_id, num))
                if row is None:
                    row = PreviewStatus(repo_id=repo_id, num=num, stage=stage.value)
                    s.add(row)
                for column, value in values.items():
                    setattr(row, column, value)
                row.updated_at = utcnow()
        except IntegrityError:  # the Space was deleted meanwhile
            return
        run.saved = key

    def _forget_preview_status(self, preview: tuple[str, int]) -> None:
        with self.d.db.transaction() as s:
            row = s.get(PreviewStatus, preview)
            if row is not None:
                s.delete(row)

    def _factory_done(self, space_id: str) -> None:
        """A factory reboot's build without caches is done: later builds may use the caches again."""
        with self.d.db.transaction() as s:
            space, row = s.get(Space, space_id), s.get(SpaceStatus, space_id)
            if space is not None and row is not None:
                row.factory_done = space.factory_generation

    async def _forget(self, space_id: str) -> None:
        """The Space is gone and nothing of it runs any more (plan's Forget): the backend removes what it still
        holds of it (its ``forget``: storage, secrets, objects), then its runtime state goes, the in-memory record
        last (until then, a kick of the Space coalesces into this pass). A backend that cannot now (a temporary
        error) is asked again after its delay: the record stays, and the next pass plans Forget again. Any other
        failure is logged, and the backend is asked again by the leftover sweep (at start and at each resync),
        which finds the Space among what the backend holds (`_leftovers`)."""
        if self.scheduler.allocator.hold(space_id, ()):
            for other in self._waiting - {space_id}:
                self.kick(other)
        self._waiting.discard(space_id)
        if self.d.meter is not None:
            await asyncio.to_thread(self.d.meter, space_id, set())
        forget = getattr(self.d.backend, "forget", None)
        if forget is not None:
            try:
                await asyncio.to_thread(forget, space_id)
            except TemporaryBackendError as e:
                log.warning("cannot remove what is left of %s yet (%s): trying again in %gs", space_id, e, e.delay)
                self._later(space_id, e.delay)
                return
            except Exception:
                log.exception("removing what is left of %s failed: the leftover sweep tries again", space_id)
        await asyncio.to_thread(delete_logs, self.logs_root, space_id)
        preview = parse_preview_id(space_id)
        if preview is not None:
            await asyncio.to_thread(self._forget_preview_status, preview)
        self.runs.pop(space_id, None)
        if preview is not None and (keys := self._previews.get(preview[0])) is not None:
            keys.discard(space_id)
            if not keys:
                del self._previews[preview[0]]

    # ---- doing -------------------------------------------------------------------------------------------------
    async def _apply(self, space_id: str, run: SpaceRun, state: Any, action: Action) -> None:
        now = self.clock.time()
        logs = SpaceLogs(self.logs_root, space_id)
        if isinstance(action, Claim):  # taken by _pass before anything else
            pass
        elif isinstance(action, StartBuild):
            run.builds[action.build_id] = BuildObs(action.build_id, BuildState.BUILDING, now,
                                                   asked_by=state.desired.release_id)  # fmt: skip
            self._spawn(self._build(space_id, run, state.build, logs))
        elif isinstance(action, FailBuild):
            asked_by = run.builds[action.build_id].asked_by if action.build_id in run.builds else None
            run.builds[action.build_id] = BuildObs(action.build_id, BuildState.FAILED, now, action.reason, asked_by)
            logs.build_line(action.reason)
            logs.keep_failed_build()
        elif isinstance(action, StartInstance):
            prev = run.instances.get(action.release_id)
            restarts = prev.restarts + 1 if (prev is not None and action.restart) else 0
            logs.append("run", f"===== starting {state.full_name} ({state.desired.revision[:7]}, {state.hardware}) "
                               f"=====")  # fmt: skip
            try:
                ep = await asyncio.to_thread(self.d.backend.start, state.release)
                if ep is None:
                    raise PermanentBackendError("the backend started a task where a service was asked for")
            except TemporaryBackendError as e:
                # The engine cannot start it now: the instance counts as starting (the start timeout still holds)
                # and the start is tried again after the engine's delay.
                logs.append("run", f"===== cannot start yet ({e}): trying again in {e.delay:g}s =====")
                run.instances[action.release_id] = InstanceObs(
                    action.release_id, action.build_id, InstanceState.STARTING, now, restarts
                )
                self._retry_later(space_id, run, lambda: run.instances.pop(action.release_id, None), e.delay)
                return  # fmt: skip
            except PermanentBackendError as e:
                run.instances[action.release_id] = InstanceObs(
                    action.release_id, action.build_id, InstanceState.FAILED, now, restarts, now, str(e)
                )
                return  # fmt: skip
            run.instances[action.release_id] = InstanceObs(
                action.release_id, action.build_id, InstanceState.STARTING, now, restarts
            )
            run.endpoints[action.release_id] = ep
            run.hardware[action.release_id] = state.hardware
            run.devices[action.release_id] = tuple(state.release.resources.devices)
            run.revisions[action.release_id] = state.desired.revision
            path = "/_stcore/health" if state.release.sdk == "streamlit" else "/"
            self._spawn(self._probe(space_id, run, action.release_id, ep, path))
        elif isinstance(action, (StopInstance, FailInstance)):
            rid = action.release_id
            if isinstance(action, StopInstance) and action.drain > 0 and rid not in run.drained:
                # Requests routed to it just before the switch may still be on their way: let them land (real time).
                if state is None:  # a deletion's or a wake's actions: at once, in order
                    await asyncio.sleep(action.drain)
                else:  # a pass goes on (a change meanwhile is not kept waiting): a later one stops it
                    self._drain(space_id, run, rid, action.drain)
                    return
            run.drained.discard(rid)
            run.replaced.pop(action.release_id, None)
            await asyncio.to_thread(self.d.backend.stop, action.release_id)
            if isinstance(action, FailInstance):
                inst = run.instances[action.release_id]
                run.instances[action.release_id] = replace(inst, state=InstanceState.FAILED, error=action.reason)
                logs.append("run", f"===== giving up: {action.reason.splitlines()[0]} =====")
            else:
                run.instances.pop(action.release_id, None)
                run.endpoints.pop(action.release_id, None)
                run.devices.pop(action.release_id, None)
        elif isinstance(action, Route):
            if run.serving is not None and action.release_id is not None and run.serving != action.release_id:
                run.replaced[run.serving] = now
            run.serving = action.release_id
        elif isinstance(action, Freeze):
            if await asyncio.to_thread(self.d.backend.freeze, action.release_id):
                run.instances[action.release_id] = replace(run.instances[action.release_id],
                                                           state=InstanceState.FROZEN)  # fmt: skip
                if freeze_overtaken(run.waking, run.last_activity, run.pass_started):
                    # a request came in while this pass decided to freeze: it may be at the app now, so thaw at
                    # once and look again (the next pass sees the visit)
                    await asyncio.to_thread(self.d.backend.thaw, action.release_id)
                    run.instances[action.release_id] = replace(run.instances[action.release_id],
                                                               state=InstanceState.READY)  # fmt: skip
                    run.dirty = True
            else:  # no freezer here: the next pass plans sleep as stopped (traffic leaves the instance first)
                run.can_freeze = False
                run.dirty = True
        elif isinstance(action, Thaw):
            await asyncio.to_thread(self.d.backend.thaw, action.release_id)
            inst = run.instances.get(action.release_id)  # a visit's thaw runs beside the passes: it may be gone
            if inst is not None:
                run.instances[action.release_id] = replace(inst, state=InstanceState.READY)
        elif isinstance(action, DropBuild):
            await asyncio.to_thread(self.d.backend.drop_build, action.build_id)
            run.builds.pop(action.build_id, None)
        elif isinstance(action, Forget):
            await self._forget(space_id)

    async def _build(self, space_id: str, run: SpaceRun, spec: Any, logs: SpaceLogs) -> None:
        if spec.build_id in run.retried_builds:
            run.retried_builds.discard(spec.build_id)  # the same build again: its log goes on
        else:
            logs.start_build()
        logs.build_line(f"===== building {spec.revision[:7]} ({spec.sdk}) =====")
        asked_by = run.builds[spec.build_id].asked_by if spec.build_id in run.builds else None
        try:
            await asyncio.to_thread(self.d.backend.build, spec, logs.build_line)
        except TemporaryBackendError as e:
            # Not the build's fault: it stays "building" and starts again after the engine's delay.
            logs.build_line(f"===== the engine cannot build now ({e}): trying again in {e.delay:g}s =====")
            if self.runs.get(space_id) is run:
                run.retried_builds.add(spec.build_id)
                self._retry_later(space_id, run, lambda: run.builds.pop(spec.build_id, None), e.delay)
            return
        except PermanentBackendError as e:
            result = BuildObs(spec.build_id, BuildState.FAILED, self.clock.time(), str(e), asked_by)
            logs.build_line(f"===== build failed: {str(e).splitlines()[0] if str(e) else 'error'} =====")
            logs.keep_failed_build()
        except Exception as e:  # a bug or an engine fault: still a terminal, explained state
            log.exception("build %s crashed", spec.build_id)
            result = BuildObs(spec.build_id, BuildState.FAILED, self.clock.time(), f"Build crashed: {e!r}", asked_by)
            logs.keep_failed_build()
        else:
            result = BuildObs(spec.build_id, BuildState.READY, self.clock.time(), asked_by=asked_by)
            logs.build_line("===== build done =====")
            if not spec.use_cache:
                await asyncio.to_thread(self._factory_done, space_id)
        if self.runs.get(space_id) is not run:  # the Space was deleted while it built: leave nothing behind
            await asyncio.to_thread(self.d.backend.drop_build, spec.build_id)
            await asyncio.to_thread(delete_logs, self.logs_root, space_id)
            return
        current = run.builds.get(spec.build_id)
        if current is not None and current.state is BuildState.BUILDING:  # not timed out meanwhile
            run.builds[spec.build_id] = result
        self.kick(space_id)

    async def _probe(self, space_id: str, run: SpaceRun, rid: str, ep: Endpoint, path: str) -> None:
        """Poll until the app answers HTTP (→ READY) or its process ends (→ EXITED)."""
        url = f"http://{ep.host}:{ep.port}{path}"
        started = time.monotonic()
        while True:
            inst = run.instances.get(rid)
            if inst is None or inst.state is not InstanceState.STARTING:
                return
            st = await asyncio.to_thread(self.d.backend.status, rid)
            if st is None or not st.running:
                self._exited(space_id, run, rid, st.exit_code if st else None)
                return
            try:
                await self._http.get(url)
            except httpx.HTTPError:
                fast = time.monotonic() - started < FAST_PROBE_FOR
                await asyncio.sleep(FAST_PROBE_INTERVAL if fast else PROBE_INTERVAL)
                continue
            inst = run.instances.get(rid)
            if inst is not None and inst.state is InstanceState.STARTING:
                run.instances[rid] = replace(inst, state=InstanceState.READY)
                run.limits[rid] = st.limits
                run.last_activity = max(run.last_activity, self.clock.monotonic())  # a started app: its full sleep time
                self.kick(space_id)
            return
