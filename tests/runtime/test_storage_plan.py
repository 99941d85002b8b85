"""plan() for a storage upgrade (``Desired.cold_start``): the serving release lets go of the storage before the new
one starts, because the filesystem grows while nothing has it mounted; everything else stays zero-downtime."""

from __future__ import annotations

from spacehub.runtime.plan import plan
from spacehub.runtime.types import InstanceState, Observed, Route, Stage, StartInstance, StopInstance
from tests.runtime.test_plan import NOW, OLD, built, inst, want


def test_cold_start_stops_the_serving_release_first_then_starts_the_new_one() -> None:
    serving = Observed(built("b1", "b2"), OLD, "r1")
    p = plan(want(cold_start=True), serving, NOW)
    assert (p.actions, p.stage) == ([Route(None), StopInstance("r1")], Stage.APP_STARTING)
    assert p.requeue_after is not None  # come back at once: nothing else will kick
    p = plan(want(cold_start=True), Observed(built("b1", "b2")), NOW)
    assert (p.actions, p.stage) == ([StartInstance("r2", "b2")], Stage.APP_STARTING)


def test_cold_start_changes_nothing_once_the_new_release_runs_or_without_a_serving_one() -> None:
    assert plan(want(cold_start=True), Observed(built("b2"), inst("r2"), "r2"), NOW).actions == []
    starting = Observed(built("b2"), inst("r2", InstanceState.STARTING))
    assert plan(want(cold_start=True), starting, NOW).stage is Stage.APP_STARTING
    # without cold_start the same situation is the usual zero-downtime start
    assert plan(want(), Observed(built("b1", "b2"), OLD, "r1"), NOW).actions == [StartInstance("r2", "b2")]


def test_cold_start_stops_a_release_still_draining_at_once_too() -> None:
    # r0 was replaced by r1 a moment ago and still drains; it holds /data as much as r1 does
    observed = Observed(built("b0", "b1", "b2"), {**inst("r0", build="b0"), **OLD}, "r1", replaced={"r0": NOW - 0.1})
    p = plan(want(cold_start=True), observed, NOW)
    assert p.actions == [Route(None), StopInstance("r0"), StopInstance("r1")]
