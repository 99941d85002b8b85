"""plan(desired, observed, now) → Plan: the whole decision logic of the runtime, pure and without I/O.

Level-triggered, as kopf and Kubernetes controllers are: the plan depends only on what the Space should be and what
is, never on the event that woke us, so a missed event or a restart of SpaceHub is healed by the next pass.

The rules, in order:
1. Deleting (the repo is gone): stop everything, drop its builds, then Forget (a finalizer: the last step, once
   nothing runs).                                                          → DELETING
2. Paused: stop everything.                                                → PAUSED
3. No revision, no app file or a config error: keep an old release serving if one is (and say why), else stop.
                                                                           → RUNNING + error, NO_APP_FILE, CONFIG_ERROR
4. Static: SpaceHub serves the files itself; no process.                   → RUNNING
5. Asleep: freeze the serving instance (light sleep) or stop it (deep sleep, or where the backend cannot freeze).
                                                                           → SLEEPING (detail frozen|stopped)
6. Otherwise walk the desired release forward, zero-downtime: the serving release keeps serving until the new one
   answers HTTP; then traffic switches and the old one stops.
   its accelerators not held yet → Claim them first (placement is an action: reading the desired state takes nothing)
   build missing → StartBuild                                              → BUILDING / RUNNING_BUILDING
   build failed                                                            → BUILD_ERROR / RUNNING + error
     (final for the release that asked for it; a new release, i.e. a restart or a new setting, builds again:
     the failure may have been passing, such as the package index being down) → StartBuild
   instance missing → StartInstance                                        → APP_STARTING / RUNNING_APP_STARTING
     (desired.cold_start: Route away from and stop the serving one first)   → APP_STARTING
   instance starting past its timeout → FailInstance                       → RUNTIME_ERROR / RUNNING + error
   instance exited → restart with exponential backoff, up to MAX_RESTARTS  → then RUNTIME_ERROR (last log lines)
   instance ready → Route to it, stop every other instance                 → RUNNING
No intermediate stage lasts forever: builds and starts have timeouts, crashes a bounded number of restarts.
Requested hardware that cannot run now (its devices are taken) is not a rule: the desired release is then on the
flavor the Space runs on (desired.py), so nothing restarts, and ``desired.unmet`` becomes the plan's error unless
there is a more pressing one (not while paused or deleting).
Traffic leaves an instance before it is stopped: a Route away from it always comes before its StopInstance, so no
request is sent to an app that is shutting down (visitors get the paused or error page at once instead of a 502).
An instance that traffic left for a newer release is drained first: its StopInstance waits until DRAIN_SECONDS have
passed since the switch (requests routed to it just before may still be on their way).

More decisions are pure functions here, beside plan():
- ``visit(observed)``: what a visitor's arrival does at once, before any pass (a frozen serving instance is thawed:
  a light sleep wakes in milliseconds).
- ``freeze_overtaken(waking, last_activity, pass_started)``: a freeze this pass just made is undone at once when a
  visit came in meanwhile (the request may be at the app now).
- ``adopt(recorded, usable, alive)``: at start, which running instance each Space keeps (the serving release its
  status recorded, if it still runs and answers) and which instances are orphans to stop.
- ``stable(restarts, started_at, now)``: an instance ready for ``STABLE_AFTER`` has its crash count reset.
- ``relieve_memory(residents, available, min_available)``: which sleeping Space to stop next when memory is short
  (frozen ones keep theirs; the longest idle first, one at a time: the caller reads the memory again after each).
- ``free_devices(waiter, wanted, residents)``: which sleepers to stop because a Space waits for accelerators they
  hold (a frozen app keeps its GPU's memory).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from spacehub.runtime.sleep import eviction_order
from spacehub.runtime.types import (
    Action,
    BuildState,
    Claim,
    Desired,
    DropBuild,
    Evict,
    FailBuild,
    FailInstance,
    Forget,
    Freeze,
    InstanceState,
    Observed,
    Plan,
    Resident,
    Route,
    SleepMode,
    Stage,
    StartBuild,
    StartInstance,
    StopInstance,
    Thaw,
)

MAX_RESTARTS = 5
BACKOFF_BASE = 1.0
BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0  # an instance ready this long has its crash count reset
DRAIN_SECONDS = 1.0  # a release replaced by a newer one keeps running this long, for requests already sent to it
SERVING_STATES = (InstanceState.READY, InstanceState.FROZEN)


def backoff(restarts: int) -> float:
    """Seconds to wait before crash restart number ``restarts + 1``: 1, 2, 4, 8, 16, 30…"""
    return min(BACKOFF_BASE * 2**restarts, BACKOFF_MAX)


def _stop_all_but(observed: Observed, keep: set[str | None]) -> list[Action]:
    return [
        StopInstance(rid)
        for rid, inst in sorted(observed.instances.items())
        if rid not in keep and inst.state not in (InstanceState.FAILED,)
    ]


def _serving(observed: Observed) -> str | None:
    """The release that serves traffic now, if its instance is still up."""
    rid = observed.serving
    inst = observed.instances.get(rid) if rid else None
    return rid if inst is not None and inst.state in SERVING_STATES else None


def plan(desired: Desired, observed: Observed, now: float) -> Plan:
    p = _drained(_plan(desired, observed, now), observed, now)
    if desired.unmet and p.error is None and p.stage not in (Stage.DELETING, Stage.PAUSED):
        return replace(p, error=desired.unmet)
    return p


def _drained(p: Plan, observed: Observed, now: float) -> Plan:
    """Each StopInstance of a release that traffic left for a newer one (before, or by a Route of this plan) waits
    for the rest of DRAIN_SECONDS since the switch. Traffic sent nowhere (pause, sleep, errors) is not drained."""
    if any(isinstance(a, Route) and a.release_id is None for a in p.actions):
        return p  # traffic now goes nowhere: what was draining has no one left to serve (and may hold /data)
    switched = dict(observed.replaced)
    for a in p.actions:
        if isinstance(a, Route) and a.release_id is not None and observed.serving not in (None, a.release_id):
            switched[observed.serving] = now
    if not switched:
        return p
    actions = [
        replace(a, drain=min(DRAIN_SECONDS, max(0.0, switched[a.release_id] + DRAIN_SECONDS - now)))
        if isinstance(a, StopInstance) and a.release_id in switched
        else a
        for a in p.actions
    ]
    return replace(p, actions=actions)


def visit(observed: Observed) -> list[Action]:
    """What a visitor's arrival does at once, before the pass it asks for: a frozen serving instance is thawed (what
    that pass would do first), so a light sleep wakes in milliseconds; anything else waits for the pass."""
    serving = _serving(observed)
    if serving is not None and observed.instances[serving].state is InstanceState.FROZEN:
        return [Thaw(serving)]
    return []


def freeze_overtaken(waking: int, last_activity: float, pass_started: float) -> bool:
    """Whether a freeze just made must be undone at once (thawed, then another pass): a visitor waits in a wake
    (``waking``), or a request arrived (``last_activity``) after the pass that decided to freeze began."""
    return waking > 0 or last_activity > pass_started


def adopt(
    recorded: Mapping[str, str | None], usable: Iterable[str], alive: Iterable[str]
) -> tuple[dict[str, str], list[str]]:
    """At start (a restart or a takeover of SpaceHub): ``recorded`` is each Space's serving release as its status
    row has it, ``usable`` the instances that run and answer at an endpoint, ``alive`` every instance the backend
    runs. Answers (Space → the release it keeps serving from, the instances to stop): only a recorded serving
    release is adopted (anything else running was mid-switch or left by a crash: an orphan, stopped, never served)."""
    ok = set(usable)
    keep = {space: rid for space, rid in recorded.items() if rid is not None and rid in ok}
    kept = set(keep.values())
    return keep, sorted(rid for rid in alive if rid not in kept)


def stable(restarts: int, started_at: float, now: float) -> bool:
    """Whether a ready instance that was restarted after crashes has now run long enough (``STABLE_AFTER``) for
    its crash count to start again from zero (a crash next week is not the sixth of a loop)."""
    return restarts > 0 and now - started_at > STABLE_AFTER


def relieve_memory(residents: Iterable[Resident], available: int | None, min_available: int) -> Evict | None:
    """The sleeping Space to stop next while memory is short (``available`` below ``min_available`` bytes; None:
    unknown, 0: no minimum): of those with a frozen instance, the longest idle. One at a time: stopping one frees an
    unknown amount, so the caller reads the memory again before asking for the next."""
    if min_available <= 0 or available is None or available >= min_available:
        return None
    order = eviction_order((r.space_id, r.last_activity) for r in residents if r.frozen)
    if not order:
        return None
    return Evict(order[0], f"memory is short ({available // 2**20} MiB available): stopping this sleeping Space")


def free_devices(waiter: str, wanted: Iterable[str], residents: Iterable[Resident]) -> list[Evict]:
    """Sleepers to stop because ``waiter`` waits for accelerators (``wanted``: the devices that could serve its
    request) that they hold: a sleeping Space never blocks hardware. Each is stopped once (not if told already)."""
    want = set(wanted)
    return [
        Evict(r.space_id, "another Space needs this sleeping Space's accelerator: stopping it")
        for r in residents
        if r.space_id != waiter and r.asleep and not r.evicted and want & set(r.devices)
    ]


def _plan(desired: Desired, observed: Observed, now: float) -> Plan:
    if desired.deleting:
        drop: list[Action] = [DropBuild(b) for b in sorted(observed.builds)]
        return Plan([*_route(observed, None), *_stop_all_but(observed, set()), *drop, Forget()], Stage.DELETING)
    if desired.paused:
        return Plan([*_route(observed, None), *_stop_all_but(observed, set())], Stage.PAUSED)
    serving = _serving(observed)
    if desired.revision is None or desired.problem is not None:
        stage = desired.problem or Stage.NO_APP_FILE
        message = desired.problem_message or "The Space has no commit yet"
        if serving is not None:
            return Plan(_stop_all_but(observed, {serving}), Stage.RUNNING, f"{stage.value}: {message}")
        return Plan([*_route(observed, None), *_stop_all_but(observed, set())], stage, message)
    if desired.static:
        return Plan([*_route(observed, None), *_stop_all_but(observed, set())], Stage.RUNNING)
    assert desired.build_id is not None and desired.release_id is not None
    if desired.sleep is not SleepMode.AWAKE:
        return _asleep(desired, observed, serving)
    return _advance(desired, observed, serving, now)


def _route(observed: Observed, release_id: str | None) -> list[Action]:
    return [] if observed.serving == release_id else [Route(release_id)]


def _asleep(desired: Desired, observed: Observed, serving: str | None) -> Plan:
    """Sleep keeps (frozen) or frees (stopped) the serving instance; everything else stops."""
    if serving is None or desired.sleep is SleepMode.STOPPED or not observed.can_freeze:
        actions = [*_route(observed, None), *_stop_all_but(observed, set())]
        return Plan(actions, Stage.SLEEPING, detail=SleepMode.STOPPED.value)
    actions = _stop_all_but(observed, {serving})
    if observed.instances[serving].state is InstanceState.READY:
        actions.append(Freeze(serving))
    return Plan(actions, Stage.SLEEPING, detail=SleepMode.FROZEN.value)


def _advance(desired: Desired, observed: Observed, serving: str | None, now: float) -> Plan:
    want, build_id = desired.release_id, desired.build_id
    assert want is not None and build_id is not None
    actions: list[Action] = []
    if desired.devices and not set(desired.devices) <= observed.held:
        actions.append(Claim(desired.devices))  # first: if another Space took one meanwhile, nothing else happens
    if serving is not None and observed.instances[serving].state is InstanceState.FROZEN:
        actions.append(Thaw(serving))  # a wake: the serving instance answers again at once
    keep = {want, serving}

    def waiting(stage_alone: Stage, stage_serving: Stage, after: float | None = None) -> Plan:
        return Plan(
            actions + _stop_all_but(observed, keep), stage_serving if serving else stage_alone, requeue_after=after
        )

    def failed(stage_alone: Stage, reason: str) -> Plan:
        # ``want`` is never stopped here: FailInstance stops its process and keeps the FAILED record, so that the
        # next pass does not start it again.
        if serving is not None and serving != want:
            return Plan(actions + _stop_all_but(observed, {serving, want}), Stage.RUNNING, reason)
        return Plan(actions + _route(observed, None) + _stop_all_but(observed, {want}), stage_alone, reason)

    build = observed.builds.get(build_id)
    if build is None:
        actions.append(StartBuild(build_id))
        return waiting(Stage.BUILDING, Stage.RUNNING_BUILDING)
    if build.state is BuildState.BUILDING:
        if now - build.started_at > desired.build_timeout:
            actions.append(FailBuild(build_id, f"Build timed out after {desired.build_timeout:.0f}s"))
            return failed(Stage.BUILD_ERROR, f"Build timed out after {desired.build_timeout:.0f}s")
        return waiting(Stage.BUILDING, Stage.RUNNING_BUILDING, desired.build_timeout - (now - build.started_at))
    if build.state is BuildState.FAILED:
        if build.asked_by is not None and build.asked_by != want:
            actions.append(StartBuild(build_id))
            return waiting(Stage.BUILDING, Stage.RUNNING_BUILDING)
        return failed(Stage.BUILD_ERROR, build.error or "Build failed")

    inst = observed.instances.get(want)
    if inst is None:
        if desired.cold_start and serving is not None and serving != want:
            # not zero-downtime: the serving release must let go first (a storage upgrade grows the filesystem
            # while nothing has it mounted); the next pass starts ``want``
            stop = [Route(None), *_stop_all_but(observed, {want})]
            return Plan(actions + stop, Stage.APP_STARTING, requeue_after=0.0)
        actions.append(StartInstance(want, build_id))
        return waiting(Stage.APP_STARTING, Stage.RUNNING_APP_STARTING)
    if inst.state is InstanceState.STARTING:
        elapsed = now - inst.started_at
        if elapsed > desired.start_timeout:
            reason = f"The app did not answer HTTP within {desired.start_timeout:.0f}s (startup_duration_timeout)"
            actions.append(FailInstance(want, reason))
            return failed(Stage.RUNTIME_ERROR, reason)
        return waiting(Stage.APP_STARTING, Stage.RUNNING_APP_STARTING, desired.start_timeout - elapsed)
    if inst.state is InstanceState.EXITED:
        if inst.restarts >= MAX_RESTARTS:
            reason = inst.error or "The app keeps exiting"
            actions.append(FailInstance(want, reason))
            return failed(Stage.RUNTIME_ERROR, reason)
        wait = (inst.exited_at or now) + backoff(inst.restarts) - now
        if wait <= 0:
            actions.append(StartInstance(want, build_id, restart=True))
            return waiting(Stage.APP_STARTING, Stage.RUNNING_APP_STARTING)
        return waiting(Stage.APP_STARTING, Stage.RUNNING_APP_STARTING, wait)
    if inst.state is InstanceState.FAILED:
        return failed(Stage.RUNTIME_ERROR, inst.error or "The app failed")
    # READY (or FROZEN, being thawed above when it is the serving one)
    if inst.state is InstanceState.FROZEN and serving != want:
        actions.append(Thaw(want))
    actions += _route(observed, want)
    actions += _stop_all_but(observed, {want})
    return Plan(actions, Stage.RUNNING)
