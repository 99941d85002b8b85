"""`runtime.gpu_usage`: nvidia-smi's figures parsed, filtered to the devices a Space holds, read at most once per
interval, and a missing, failing or hanging nvidia-smi giving no figures and one log line (real stand-in scripts)."""

from __future__ import annotations

import logging
import subprocess
import threading
from pathlib import Path

import pytest

from spacehub.runtime.backends.base import GpuUsage
from spacehub.runtime.devices import Device
from spacehub.runtime.gpu_usage import QUERY, GpuReading, GpuSampler, figures_for, parse_gpu_usage, run_bounded

MIB = 2**20
OUTPUT = "0, GPU-aaaa-0000, 37, 1024, 15360\n1, GPU-bbbb-1111, 91, 8000, 15360\n"


def test_parse_reads_each_gpu_with_memory_in_bytes() -> None:
    assert parse_gpu_usage(OUTPUT) == [
        GpuReading("0", "GPU-aaaa-0000", GpuUsage(37, 1024 * MIB, 15360 * MIB)),
        GpuReading("1", "GPU-bbbb-1111", GpuUsage(91, 8000 * MIB, 15360 * MIB)),
    ]


@pytest.mark.parametrize(
    "line",
    [
        "0, GPU-a, [N/A], 10, 100",  # MIG or an old GPU: no utilization
        "0, GPU-a, 5, [Not Supported], 100",
        "0, Tesla T4, 15360 MiB, GPU-a",  # the inventory query's answer, not ours
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
        "x, GPU-a, 1, 2, 3",
        "0, GPU-a, -1, 2, 3",
        "",
    ],
)
def test_parse_leaves_out_lines_without_figures(line: str) -> None:
    assert parse_gpu_usage(line + "\n1, GPU-b, 3, 4, 5") == [GpuReading("1", "GPU-b", GpuUsage(3, 4 * MIB, 5 * MIB))]


def test_figures_are_only_the_spaces_own_devices() -> None:
    readings = parse_gpu_usage(OUTPUT)
    inventory = [Device("0", "Tesla T4"), Device("1", "Tesla T4")]
    assert figures_for(readings, ("1",), inventory) == {"1": GpuUsage(91, 8000 * MIB, 15360 * MIB)}
    assert figures_for(readings, ("0",), inventory) == {"0": GpuUsage(37, 1024 * MIB, 15360 * MIB)}
    assert figures_for(readings, (), inventory) == {}
    assert figures_for(readings, ("7",), inventory) == {}  # not a GPU nvidia-smi sees: nothing, never another's


def test_figures_find_a_device_by_its_declared_uuid_or_a_uuid_id() -> None:
    readings = parse_gpu_usage(OUTPUT)
    # The inventory's id "0" names the GPU nvidia-smi lists second: the declared UUID decides, not the index.
    inventory = [Device("0", "Tesla T4", uuid="GPU-bbbb-1111"), Device("GPU-aaaa-0000", "Tesla T4")]
    assert figures_for(readings, ("0",), inventory) == {"0": GpuUsage(91, 8000 * MIB, 15360 * MIB)}
    assert figures_for(readings, ("GPU-aaaa-0000",), inventory) == {
        "GPU-aaaa-0000": GpuUsage(37, 1024 * MIB, 15360 * MIB)
    }


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_sampler_runs_nvidia_smi_at_most_once_per_interval(tmp_path: Path) -> None:
    smi = stand_in(tmp_path, f"printf '{OUTPUT}'")
    calls: list[list[str]] = []

    def run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        assert timeout == 2.0
        return run_bounded(args, timeout)

    clock = Clock()
    sampler = GpuSampler([Device("0", "Tesla T4"), Device("1", "Tesla T4")], str(smi), 1.0, 2.0, clock, run)
    assert sampler.figures(("0",)) == {"0": GpuUsage(37, 1024 * MIB, 15360 * MIB)}
    assert sampler.figures(("1",)) == {"1": GpuUsage(91, 8000 * MIB, 15360 * MIB)}  # another Space: same reading
    clock.now += 0.9
    sampler.figures(("0",))
    assert calls == [[str(smi), *QUERY]]
    clock.now += 0.2
    sampler.figures(("0",))
    assert len(calls) == 2
    assert sampler.figures(()) == {} and len(calls) == 2  # a Space without GPUs reads nothing


def test_concurrent_readers_share_one_run(tmp_path: Path) -> None:
    smi = stand_in(tmp_path, f"sleep 0.3; printf '{OUTPUT}'")
    sampler = GpuSampler([Device("0", "Tesla T4")], str(smi), interval=5.0)
    results: list[dict[str, GpuUsage]] = []
    threads = [threading.Thread(target=lambda: results.append(sampler.figures(("0",)))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sampler.runs == 1
    assert results == [{"0": GpuUsage(37, 1024 * MIB, 15360 * MIB)}] * 8


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("echo 'NVIDIA-SMI has failed' >&2; exit 9", "exited with 9: NVIDIA-SMI has failed"),
        ("sleep 5", "did not answer within 0.5 s"),
        ("echo 'No devices were found'", "reported no GPU figures"),
    ],
)
def test_a_failing_reader_gives_no_figures_and_one_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, body: str, why: str
) -> None:
    smi = stand_in(tmp_path, body)
    clock = Clock()
    sampler = GpuSampler([Device("0", "Tesla T4")], str(smi), interval=1.0, timeout=0.5, clock=clock)
    with caplog.at_level(logging.INFO, logger="spacehub.runtime.gpu_usage"):
        for _ in range(3):
            assert sampler.figures(("0",)) == {}
            clock.now += 1.0
        assert sampler.runs == 3
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 1 and why in lines[0], lines
        smi.write_text(f"#!/bin/sh\nprintf '{OUTPUT}'\n")  # it works again: figures, and a line saying so
        assert sampler.figures(("0",)) == {"0": GpuUsage(37, 1024 * MIB, 15360 * MIB)}
        assert len(caplog.records) == 2 and "answers again" in caplog.records[1].getMessage()


def test_a_missing_reader_gives_no_figures_and_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    sampler = GpuSampler([Device("0", "Tesla T4")], "no-such-nvidia-smi", clock=clock)
    with caplog.at_level(logging.INFO, logger="spacehub.runtime.gpu_usage"):
        for _ in range(3):
            assert sampler.figures(("0",)) == {}
            clock.now += 1.0
    assert sampler.runs == 0
    assert [r.getMessage() for r in caplog.records] == [
        "GPU metrics unavailable (the Spaces' metrics have no GPU figures until it works): no-such-nvidia-smi is not "
        "on the PATH"
    ]


def stand_in(tmp_path: Path, body: str) -> Path:
    smi = tmp_path / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\n{body}\n")
    smi.chmod(0o755)
    return smi
