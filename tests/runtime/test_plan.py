"""plan() as a table: desired x observed -> actions and stage. Pure: no processes, no clock."""

from __future__ import annotations

from dataclasses import replace

import pytest

from spacehub.runtime.plan import MAX_RESTARTS, backoff, plan
from spacehub.runtime.types import (
    BuildObs,
    BuildState,
    Desired,
    DropBuild,
    FailBuild,
    FailInstance,
    Forget,
    Freeze,
    InstanceObs,
    InstanceState,
    Observed,
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
     [Route("r2"), StopInstance("r1")], Stage.RUNNING),
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
