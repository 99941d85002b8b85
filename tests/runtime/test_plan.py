"""plan() as a table: desired x observed -> actions and stage; and the decisions beside it (a visit's fast thaw,
which sleepers to stop for memory or for accelerators), also tables. Pure: no processes, no clock."""

from __future__ import annotations

from dataclasses import replace

import pytest

from spacehub.runtime.plan import (
    DRAIN_SECONDS,
    MAX_RESTARTS,
    STABLE_AFTER,
    adopt,
    backoff,
    free_devices,
    freeze_overtaken,
    plan,
    relieve_memory,
    stable,
    visit,
)
from spacehub.runtime.types import (
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

NOW = 1000.0


def want(**kw) -> Desired:
    base = dict(space_id="s", revision="rev2", build_id="b2", release_id="r2", start_timeout=60, build_timeout=600)
    return Desired(**{**base, **kw})


def built(*ids: str, state=BuildState.READY, started=NOW - 10, error=None, asked_by=None) -> dict[str, BuildObs]:
    return {i: BuildObs(i, state, started, error, asked_by) for i in ids}


def inst(rid: str, state=InstanceState.READY, build="b2", started=NOW - 5, restarts=0, exited=None, error=None):
    return {rid: InstanceObs(rid, build, state, started, restarts, exited, error)}


OLD = inst("r1", build="b1")  # an older release, ready

CASES = [
    # (name, desired, observed, actions, stage)
    ("fresh space builds", want(), Observed(), [StartBuild("b2")], Stage.BUILDING),
    ("new commit builds while old serves", want(), Observed(built("b1"), OLD, "r1"), [StartBuild("b2")],
     Stage.RUNNING_BUILDING),
    ("building", want(), Observed(built("b2", state=BuildState.BUILDING)), [], Stage.BUILDING),
    ("build done: start", want(), Observed(built("b2")), [StartInstance("r2", "b2")], Stage.APP_STARTING),
    ("build done while old serves", want(), Observed(built("b1", "b2"), OLD, "r1"), [StartInstance("r2", "b2")],
     Stage.RUNNING_APP_STARTING),
    ("starting", want(), Observed(built("b2"), inst("r2", InstanceState.STARTING)), [], Stage.APP_STARTING),
    ("ready: route", want(), Observed(built("b2"), inst("r2")), [Route("r2")], Stage.RUNNING),
    ("switch: route new, stop old", want(), Observed(built("b1", "b2"), {**OLD, **inst("r2")}, "r1"),
     [Route("r2"), StopInstance("r1", drain=DRAIN_SECONDS)], Stage.RUNNING),
    ("steady state does nothing", want(), Observed(built("b2"), inst("r2"), "r2"), [], Stage.RUNNING),
    ("failed build keeps old serving", want(), Observed({**built("b1"), **built("b2", state=BuildState.FAILED,
     error="pip exploded")}, OLD, "r1"), [], Stage.RUNNING),
    ("failed build alone", want(), Observed(built("b2", state=BuildState.FAILED, error="pip exploded")), [],
     Stage.BUILD_ERROR),
    ("build timeout", want(), Observed(built("b2", state=BuildState.BUILDING, started=NOW - 601)),
     [FailBuild("b2", "Build timed out after 600s")], Stage.BUILD_ERROR),
    ("start timeout", want(), Observed(built("b2"), inst("r2", InstanceState.STARTING, started=NOW - 61)),
     [FailInstance("r2", "The app did not answer HTTP within 60s (startup_duration_timeout)")], Stage.RUNTIME_ERROR),
    ("crash: restart after backoff", want(), Observed(built("b2"), inst("r2", InstanceState.EXITED, exited=NOW - 2,
     restarts=1)), [StartInstance("r2", "b2", restart=True)], Stage.APP_STARTING),
    ("crash: wait for backoff", want(), Observed(built("b2"), inst("r2", InstanceState.EXITED, exited=NOW - 0.5,
     restarts=1)), [], Stage.APP_STARTING),
    ("crash loop gives up", want(), Observed(built("b2"), inst("r2", InstanceState.EXITED, exited=NOW - 100,
     restarts=MAX_RESTARTS, error="Traceback: boom")), [FailInstance("r2", "Traceback: boom")], Stage.RUNTIME_ERROR),
    ("failed instance stays failed", want(), Observed(built("b2"), inst("r2", InstanceState.FAILED, error="boom")),
     [], Stage.RUNTIME_ERROR),
    ("new release crash-looping keeps old serving", want(), Observed(built("b1", "b2"), {**OLD, **inst("r2",
     InstanceState.FAILED, error="boom")}, "r1"), [], Stage.RUNNING),
    ("secret change: new release of the same build", want(release_id="r3"), Observed(built("b2"), inst("r2"), "r2"),
     [StartInstance("r3", "b2")], Stage.RUNNING_APP_STARTING),
    ("paused stops all", want(paused=True), Observed(built("b2"), inst("r2"), "r2"), [Route(None),
     StopInstance("r2")], Stage.PAUSED),
    ("deleting: stop, drop the builds, forget", want(deleting=True), Observed(built("b1", "b2"), inst("r2"), "r2"),
     [Route(None), StopInstance("r2"), DropBuild("b1"), DropBuild("b2"), Forget()], Stage.DELETING),
    ("deleting what never ran", want(deleting=True, revision=None, build_id=None, release_id=None), Observed(),
     [Forget()], Stage.DELETING),
    ("failed build stays failed for its release", want(), Observed(built("b2", state=BuildState.FAILED,
     error="index down", asked_by="r2")), [], Stage.BUILD_ERROR),
    ("a new release tries a failed build again", want(release_id="r3"), Observed(built("b2", state=BuildState.FAILED,
     error="index down", asked_by="r2")), [StartBuild("b2")], Stage.BUILDING),
    ("no freezer: sleep stops", want(sleep=SleepMode.FROZEN), Observed(built("b2"), inst("r2"), "r2",
     can_freeze=False), [Route(None), StopInstance("r2")], Stage.SLEEPING),
    ("config error alone", want(problem=Stage.CONFIG_ERROR, problem_message="bad sdk"), Observed(), [],
     Stage.CONFIG_ERROR),
    ("config error keeps old serving", want(problem=Stage.CONFIG_ERROR, problem_message="bad sdk"),
     Observed(built("b1"), OLD, "r1"), [], Stage.RUNNING),
    ("no app file", want(problem=Stage.NO_APP_FILE, problem_message="app.py missing"), Observed(), [],
     Stage.NO_APP_FILE),
    ("static has no process", want(static=True), Observed(built("b1"), OLD, "r1"), [Route(None), StopInstance("r1")],
     Stage.RUNNING),
    ("light sleep freezes", want(sleep=SleepMode.FROZEN), Observed(built("b2"), inst("r2"), "r2"), [Freeze("r2")],
     Stage.SLEEPING),
    ("frozen stays frozen", want(sleep=SleepMode.FROZEN), Observed(built("b2"), inst("r2", InstanceState.FROZEN),
     "r2"), [], Stage.SLEEPING),
    ("deep sleep stops", want(sleep=SleepMode.STOPPED), Observed(built("b2"), inst("r2", InstanceState.FROZEN), "r2"),
     [Route(None), StopInstance("r2")], Stage.SLEEPING),
    ("wake from frozen thaws", want(), Observed(built("b2"), inst("r2", InstanceState.FROZEN), "r2"), [Thaw("r2")],
     Stage.RUNNING),
    ("wake from stopped starts", want(), Observed(built("b2")), [StartInstance("r2", "b2")], Stage.APP_STARTING),
    ("stray instances are stopped", want(), Observed(built("b2"), {**inst("r2"), **inst("rx", build="bx")}, "r2"),
     [StopInstance("rx")], Stage.RUNNING),
    # placement is an action: the read offered devices, the plan claims them before anything starts on them
    ("a GPU release claims its devices first", want(devices=("0",)), Observed(), [Claim(("0",)), StartBuild("b2")],
     Stage.BUILDING),
    ("devices held already: no claim", want(devices=("0",)), Observed(built("b2"), inst("r2"), "r2",
     held=frozenset({"0"})), [], Stage.RUNNING),
    ("a move to a GPU claims, then starts next to the serving one", want(release_id="r3", devices=("0", "1")),
     Observed(built("b2"), inst("r2"), "r2", held=frozenset({"0"})), [Claim(("0", "1")), StartInstance("r3", "b2")],
     Stage.RUNNING_APP_STARTING),
    ("a claim comes before the thaw of a wake", want(devices=("0",)), Observed(built("b2"), inst("r2",
     InstanceState.FROZEN), "r2"), [Claim(("0",)), Thaw("r2")], Stage.RUNNING),
    ("paused claims nothing", want(paused=True, devices=("0",)), Observed(built("b2"), inst("r2"), "r2"),
     [Route(None), StopInstance("r2")], Stage.PAUSED),
    ("asleep claims nothing", want(sleep=SleepMode.FROZEN, devices=("0",)), Observed(built("b2"), inst("r2"), "r2"),
     [Freeze("r2")], Stage.SLEEPING),
    # drain: traffic that left a release for a newer one may still be on its way when it is stopped
    ("a release replaced a moment ago drains the rest of its time", want(), Observed(built("b1", "b2"), {**OLD,
     **inst("r2")}, "r2", replaced={"r1": NOW - 0.25}), [StopInstance("r1", drain=0.75)], Stage.RUNNING),
    ("a release replaced long ago stops at once", want(), Observed(built("b1", "b2"), {**OLD, **inst("r2")}, "r2",
     replaced={"r1": NOW - 5}), [StopInstance("r1")], Stage.RUNNING),
    ("a clock set back never drains longer than the drain time", want(), Observed(built("b1", "b2"), {**OLD,
     **inst("r2")}, "r2", replaced={"r1": NOW + 100}), [StopInstance("r1", drain=DRAIN_SECONDS)], Stage.RUNNING),
    ("traffic sent nowhere is not drained", want(paused=True), Observed(built("b2"), inst("r2"), "r2"),
     [Route(None), StopInstance("r2")], Stage.PAUSED),
    ("a failed release is not drained", want(), Observed(built("b1", "b2"), {**OLD, **inst("r2",
     InstanceState.STARTING, started=NOW - 61)}, "r1", replaced={"r2": NOW}),
     [FailInstance("r2", "The app did not answer HTTP within 60s (startup_duration_timeout)")], Stage.RUNNING),
]  # fmt: skip


@pytest.mark.parametrize(("name", "desired", "observed", "actions", "stage"), CASES, ids=[c[0] for c in CASES])
def test_plan_table(name, desired, observed, actions, stage) -> None:
    p = plan(desired, observed, NOW)
    assert p.actions == actions
    assert p.stage is stage


def test_sleep_says_how_deep() -> None:
    asleep = Observed(built("b2"), inst("r2"), "r2")
    assert plan(want(sleep=SleepMode.FROZEN), asleep, NOW).detail == "frozen"
    assert plan(want(sleep=SleepMode.FROZEN), replace(asleep, can_freeze=False), NOW).detail == "stopped"


def test_errors_say_why() -> None:
    failed = built("b2", state=BuildState.FAILED, error="pip exploded")
    assert plan(want(), Observed(failed), NOW).error == "pip exploded"
    p = plan(want(), Observed({**built("b1"), **failed}, OLD, "r1"), NOW)
    assert p.stage is Stage.RUNNING and p.error == "pip exploded"
    p = plan(want(problem=Stage.CONFIG_ERROR, problem_message="bad sdk"), Observed(built("b1"), OLD, "r1"), NOW)
    assert p.error == "CONFIG_ERROR: bad sdk"


def test_waiting_plans_ask_to_come_back_in_time() -> None:
    p = plan(want(), Observed(built("b2"), inst("r2", InstanceState.EXITED, exited=NOW - 0.5, restarts=2)), NOW)
    assert p.requeue_after == pytest.approx(backoff(2) - 0.5)
    p = plan(want(), Observed(built("b2"), inst("r2", InstanceState.STARTING, started=NOW - 10)), NOW)
    assert p.requeue_after == pytest.approx(50)


def test_no_intermediate_stage_lasts_forever() -> None:
    """Walking the clock forward from any waiting state ends in a terminal stage."""
    intermediate = {Stage.BUILDING, Stage.APP_STARTING, Stage.RUNNING_BUILDING, Stage.RUNNING_APP_STARTING}
    for obs in (
        Observed(built("b2", state=BuildState.BUILDING, started=NOW)),
        Observed(built("b2"), inst("r2", InstanceState.STARTING, started=NOW)),
    ):
        p = plan(want(), obs, NOW + 10_000)
        assert p.stage not in intermediate, p


def test_backoff_grows_and_is_capped() -> None:
    assert [backoff(i) for i in range(7)] == [1, 2, 4, 8, 16, 30, 30]


VISITS = [
    # (name, observed, actions): what a visitor's arrival does before the pass it asks for
    ("frozen: thaw at once", Observed(built("b2"), inst("r2", InstanceState.FROZEN), "r2"), [Thaw("r2")]),
    ("serving: nothing to do", Observed(built("b2"), inst("r2"), "r2"), []),
    ("stopped: the pass starts it", Observed(built("b2")), []),
    ("a frozen stray is not the visitor's", Observed(built("b2"), {**inst("r2"), **inst("rx", InstanceState.FROZEN)},
     "r2"), []),
    ("exited: the pass restarts it", Observed(built("b2"), inst("r2", InstanceState.EXITED), "r2"), []),
]  # fmt: skip


@pytest.mark.parametrize(("name", "observed", "actions"), VISITS, ids=[c[0] for c in VISITS])
def test_a_visit(name, observed, actions) -> None:
    assert visit(observed) == actions


MiB = 2**20
IDLE_A, IDLE_B, AWAKE_C = (Resident("a", 10.0, asleep=True, frozen=True), Resident("b", 5.0, asleep=True, frozen=True),
                           Resident("c", 1.0))  # fmt: skip
MEMORY = [
    # (name, residents, available, minimum, the Space stopped next)
    ("enough memory", [IDLE_A, IDLE_B], 600 * MiB, 512 * MiB, None),
    ("memory unknown", [IDLE_A, IDLE_B], None, 512 * MiB, None),
    ("no minimum set", [IDLE_A, IDLE_B], 0, 0, None),
    ("short: the longest idle frozen one", [IDLE_A, IDLE_B, AWAKE_C], 100 * MiB, 512 * MiB, "b"),
    ("short, nothing frozen", [AWAKE_C, Resident("d", 0.0, asleep=True)], 100 * MiB, 512 * MiB, None),
    ("same idle time: by id", [Resident("z", 5.0, frozen=True), Resident("y", 5.0, frozen=True)], 0, 1, "y"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "residents", "available", "minimum", "stopped"), MEMORY, ids=[c[0] for c in MEMORY])
def test_which_sleeper_memory_pressure_stops(name, residents, available, minimum, stopped) -> None:
    evict = relieve_memory(residents, available, minimum)
    assert (evict.space_id if evict else None) == stopped
    if evict is not None:
        assert evict.reason.startswith(f"memory is short ({available // MiB} MiB available)")


GPU = ("0",)
DEVICES = [
    # (name, residents, stopped): the waiter "w" wants GPU 0
    ("a frozen sleeper holding it", [Resident("a", 0, asleep=True, frozen=True, devices=GPU)], ["a"]),
    ("an awake holder keeps it", [Resident("a", 0, devices=GPU)], []),
    ("a sleeper told already", [Resident("a", 0, asleep=True, frozen=True, devices=GPU, evicted=True)], []),
    ("a sleeper holding another device", [Resident("a", 0, asleep=True, frozen=True, devices=("1",))], []),
    ("never the waiter itself", [Resident("w", 0, asleep=True, frozen=True, devices=GPU)], []),
    ("every sleeper that holds one", [Resident("a", 0, asleep=True, devices=("0", "1")), Resident("b", 0,
     asleep=True, frozen=True, devices=GPU), Resident("c", 0, devices=("2",))], ["a", "b"]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "residents", "stopped"), DEVICES, ids=[c[0] for c in DEVICES])
def test_which_sleepers_give_their_accelerators_back(name, residents, stopped) -> None:
    evicts = free_devices("w", {"0"}, residents)
    assert [e.space_id for e in evicts] == stopped
    assert all(isinstance(e, Evict) and "accelerator" in e.reason for e in evicts)


ADOPT_CASES = [
    # name, recorded serving release per Space, usable (running, answering), alive → kept, stopped
    ("nothing runs", {"s1": None, "s2": "r2"}, [], [], {}, []),
    ("the recorded release runs: kept", {"s1": "r1"}, ["r1"], ["r1"], {"s1": "r1"}, []),
    ("a new release mid-switch: an orphan", {"s1": "r1"}, ["r1", "r1b"], ["r1", "r1b"], {"s1": "r1"}, ["r1b"]),
    ("recorded but not answering: stopped", {"s1": "r1"}, [], ["r1"], {}, ["r1"]),
    ("a deleted Space's app: stopped", {}, ["r9"], ["r9"], {}, ["r9"]),
    ("no status row yet: stopped", {"s1": None}, ["r1"], ["r1"], {}, ["r1"]),
]


@pytest.mark.parametrize(("name", "recorded", "usable", "alive", "kept", "stopped"), ADOPT_CASES)
def test_what_a_start_of_spacehub_adopts(name, recorded, usable, alive, kept, stopped) -> None:
    assert adopt(recorded, usable, alive) == (kept, stopped)


def test_a_crash_count_starts_again_after_a_stable_minute() -> None:
    assert not stable(0, 0.0, 10_000.0)  # never restarted: nothing to reset
    assert not stable(3, 100.0, 100.0 + STABLE_AFTER)
    assert stable(3, 100.0, 100.0 + STABLE_AFTER + 0.1)


def test_a_visit_during_a_freeze_undoes_it() -> None:
    assert not freeze_overtaken(0, last_activity=5.0, pass_started=10.0)  # idle since before the pass
    assert freeze_overtaken(0, last_activity=10.5, pass_started=10.0)  # a request came in meanwhile
    assert freeze_overtaken(1, last_activity=5.0, pass_started=10.0)  # a visitor waits in a wake
