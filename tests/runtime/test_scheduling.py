"""Honest scheduling (pure): flavors capped or refused on a small machine, devices allocated, requests that wait stay
requested while the Space keeps its current flavor; and plan() surfaces why (table)."""

from __future__ import annotations

import pytest

from spacehub.flavors import GB, Catalog, MachineInfo
from spacehub.runtime.devices import Device
from spacehub.runtime.plan import plan
from spacehub.runtime.scheduling import Scheduler, choose_placement
from spacehub.runtime.sleep import eviction_order, next_sleep_check, sleep_mode
from spacehub.runtime.types import BuildObs, BuildState, Desired, InstanceObs, InstanceState, Observed, SleepMode, Stage

MACHINE = MachineInfo(cpus=2, memory_bytes=24 * GB)
CAT = Catalog()
F = CAT.flavors


def sched(policy: str = "cap", devices=(Device("0", "Tesla T4", 16),)) -> Scheduler:
    return Scheduler(CAT, MACHINE, devices, policy)  # type: ignore[arg-type]


def test_cap_policy_caps_and_says_so() -> None:
    p = sched().place("s", "a/s", F["cpu-upgrade"])
    assert p.problem is None
    assert p.resources.cpus == 2 and p.resources.memory_bytes == 24 * GB
    assert p.note is not None and "cpu-upgrade asks 8 vCPU; this machine has 2" in p.note
    assert "32 GB of memory" in p.note
    basic = sched().place("s", "a/s", F["cpu-basic"])
    assert basic.note is None and basic.resources.cpus == 2 and basic.resources.memory_bytes == 16 * GB


def test_strict_policy_refuses_what_does_not_fit() -> None:
    s = sched("strict")
    assert s.unfit(F["cpu-basic"]) is None
    why = s.unfit(F["cpu-upgrade"])
    assert why is not None and "strict" in why and "8 vCPU" in why
    assert s.place("s", "a/s", F["cpu-upgrade"]).problem == why


def test_gpu_flavor_gets_its_device_and_no_other_space_does() -> None:
    s = sched()
    a = s.place("a", "alice/a", F["t4-medium"])
    assert a.problem is None and a.resources.devices == ("0",)
    b = s.place("b", "bob/b", F["t4-small"])
    assert b.problem is not None and "used by alice/a" in b.problem
    assert s.unfit(F["a10g-small"]) is not None  # no A10G here at all: refused at request time
    assert s.place("c", "c/c", F["t4-medium"], claim=False).resources.devices == ()  # paused/asleep: takes nothing


def test_an_offer_takes_no_device() -> None:
    """The reconciler's read: the Space is offered GPU 0 and nothing is recorded, so another Space is offered it too
    until one of them claims it."""
    s = sched()
    assert s.offer("a", F["t4-medium"]).resources.devices == ("0",)
    assert s.offer("b", F["t4-small"]).resources.devices == ("0",)
    assert s.allocator.holders() == {}
    assert s.offer("c", F["t4-medium"], devices=False).resources.devices == ()  # paused/asleep: offered none
    assert s.claim("a", "alice/a", ("0",)) is None
    b = s.offer("b", F["t4-small"])
    assert b.problem is not None and "used by alice/a" in b.problem
    assert s.wanted("t4-small") == {"0"} and s.wanted("cpu-basic") == frozenset()


def test_a_request_that_cannot_run_stays_on_the_current_flavor() -> None:
    s = sched()
    s.place("other", "bob/other", F["t4-small"])  # the only T4 is taken
    placement, unmet = choose_placement(F["t4-medium"], [F["cpu-upgrade"], F["cpu-basic"]],
                                        lambda f: s.place("me", "alice/me", f))  # fmt: skip
    assert placement.flavor.name == "cpu-upgrade"
    assert unmet is not None and "t4-medium is not available" in unmet and "runs on cpu-upgrade" in unmet
    placement, unmet = choose_placement(F["t4-medium"], [None, F["cpu-basic"]], lambda f: s.place("me", "a/me", f))
    assert placement.flavor.name == "cpu-basic" and unmet is not None
    placement, unmet = choose_placement(F["t4-small"], [F["cpu-basic"]], lambda f: s.place("other", "b/o", f))
    assert placement.flavor.name == "t4-small" and unmet is None


def test_nothing_fits_runs_capped_and_says_so() -> None:
    tiny = Scheduler(CAT, MachineInfo(1, 1 * GB), (), "strict")
    placement, unmet = choose_placement(F["cpu-upgrade"], [F["cpu-basic"]], lambda f: tiny.place("s", "a/s", f))
    assert placement.flavor.name == "cpu-basic" and placement.problem is None
    assert unmet is not None and "capped" in unmet


def want(**kw) -> Desired:
    return Desired(**{"space_id": "s", "revision": "r", "build_id": "b1", "release_id": "r1", **kw})


READY = Observed({"b1": BuildObs("b1", BuildState.READY, 0)}, {"r1": InstanceObs("r1", "b1", InstanceState.READY, 0)},
                 "r1")  # fmt: skip
WAIT = "Requested hardware t4-medium is not available: it needs 1 Nvidia T4 GPU and 0 are free."
PLAN_CASES = [
    # (name, desired, observed, stage, error)
    ("unmet request: current release serves on, error says why", want(unmet=WAIT), READY, Stage.RUNNING, WAIT),
    (
        "a real error wins",
        want(unmet=WAIT, problem=Stage.CONFIG_ERROR, problem_message="bad yaml"),
        READY,
        Stage.RUNNING,
        "CONFIG_ERROR: bad yaml",
    ),
    ("paused: no error", want(unmet=WAIT, paused=True), READY, Stage.PAUSED, None),
    ("asleep: says why too", want(unmet=WAIT, sleep=SleepMode.STOPPED), READY, Stage.SLEEPING, WAIT),
    ("met: no error", want(), READY, Stage.RUNNING, None),
]


@pytest.mark.parametrize(("name", "desired", "observed", "stage", "error"), PLAN_CASES, ids=[c[0] for c in PLAN_CASES])
def test_plan_surfaces_unmet_hardware(name, desired, observed, stage, error) -> None:
    p = plan(desired, observed, 100.0)
    assert p.stage is stage
    assert p.error == error
    if name.startswith("unmet"):
        assert p.actions == []  # nothing restarts: the desired release is the running one


SLEEP_CASES = [
    # (idle, sleep_time, deep_after, evicted, mode)
    (10, -1, 60, False, SleepMode.AWAKE),  # never
    (10, 30, 60, False, SleepMode.AWAKE),
    (30, 30, 60, False, SleepMode.FROZEN),
    (89, 30, 60, False, SleepMode.FROZEN),
    (90, 30, 60, False, SleepMode.STOPPED),
    (31, 30, 60, True, SleepMode.STOPPED),  # memory pressure stopped it early
    (10, 30, 60, True, SleepMode.AWAKE),  # a visit wakes it whatever
]


@pytest.mark.parametrize(("idle", "sleep_time", "deep", "evicted", "mode"), SLEEP_CASES)
def test_sleep_mode(idle, sleep_time, deep, evicted, mode) -> None:
    assert sleep_mode(idle, sleep_time, deep, evicted) is mode


def test_a_space_sleeps_only_when_something_could_sleep() -> None:
    """A visitor waiting in wake() keeps it awake (a start may outlast the sleep time); a Space whose first build or
    start is under way has nothing to put to sleep; one that was asleep before a restart of SpaceHub stays asleep."""
    idle_long = (10_000, 30, 60, False)
    assert sleep_mode(*idle_long, visiting=True) is SleepMode.AWAKE
    assert sleep_mode(*idle_long, nothing_runs=True) is SleepMode.AWAKE
    assert sleep_mode(*idle_long, nothing_runs=True, was_asleep=True) is SleepMode.STOPPED
    assert sleep_mode(*idle_long) is SleepMode.STOPPED


NEXT_CHECK_CASES = [
    # idle, sleep_time, deep_after, mode now → seconds until its next pass (None: no timer)
    (0, 300, 3600, SleepMode.AWAKE, 300),  # just visited: when its sleep time runs out
    (120, 300, 3600, SleepMode.AWAKE, 180),
    (300, 300, 3600, SleepMode.FROZEN, 3600),  # frozen: when deep sleep is due
    (3000, 300, 3600, SleepMode.FROZEN, 900),
    (5000, 300, 3600, SleepMode.STOPPED, None),  # as deep as it goes: nothing but a visit or a change moves it
    (10_000, -1, 3600, SleepMode.AWAKE, None),  # never sleeps
    (500, 300, 3600, SleepMode.AWAKE, 300),  # awake past its time (a visitor waits, its first start): a sleep time
    (0, 0, 3600, SleepMode.AWAKE, 1.0),  # never a timer of 0: it would spin
]


@pytest.mark.parametrize(("idle", "sleep_time", "deep", "mode", "after"), NEXT_CHECK_CASES)
def test_when_time_alone_may_change_how_deep_a_space_sleeps(idle, sleep_time, deep, mode, after) -> None:
    assert next_sleep_check(idle, sleep_time, deep, mode) == after
    if after is not None and mode is sleep_mode(idle, sleep_time, deep):  # the timer lands where the mode changes
        assert sleep_mode(idle + after, sleep_time, deep) is not mode
        assert sleep_mode(idle + after - 0.001, sleep_time, deep) is mode


def test_eviction_order_is_longest_idle_first() -> None:
    assert eviction_order([("b", 50.0), ("a", 10.0), ("c", 30.0)]) == ["a", "c", "b"]


def test_catalog_from_an_admin_file(tmp_path) -> None:
    f = tmp_path / "flavors.toml"
    f.write_text(
        '[[flavor]]\nname = "cpu-basic"\npretty_name = "Small"\ncpu = 1\nmemory_gb = 2\n\n'
        '[[flavor]]\nname = "gpu-x"\ncpu = 2\nmemory_gb = 8\nprice_per_hour = 1.2\n'
        'accelerator = { type = "gpu", model = "T4", quantity = 1, vram_gb = 16 }\n'
    )
    cat = Catalog.load(f)
    assert cat.names() == ["cpu-basic", "gpu-x"]
    gpu = cat.flavors["gpu-x"]
    assert gpu.priced and gpu.accelerator is not None and gpu.accelerator.model == "T4"
    s = Scheduler(cat, MACHINE, (Device("0", "Tesla T4"),))
    assert s.place("a", "a/a", gpu).resources.devices == ("0",)
    f.write_text('[[flavor]]\nname = "gpu-x"\ncpu = 2\nmemory_gb = 8\n')
    with pytest.raises(ValueError, match="default flavor 'cpu-basic'"):
        Catalog.load(f)
    f.write_text('[[flavor]]\nname = "cpu-basic"\ncpu = "two"\nmemory_gb = 8\n')
    with pytest.raises(ValueError, match="flavor #1"):
        Catalog.load(f)
