"""GPU figures for the Spaces' metrics streams: what one `GpuSampler` costs when many streams read it.

No GPU is needed: a stand-in ``nvidia-smi`` (a shell script printing ``--gpus`` fixed rows, as the real one answers
`runtime.gpu_usage.QUERY`) goes on a temporary PATH. ``--streams`` threads each ask for their Space's GPU once a
second (as ``GET /api/spaces/{id}/metrics`` does) for ``--seconds``; the figures reported are how many times
nvidia-smi ran (at most one per second whatever the number of streams), the time one run takes, and what a call
answered from the last reading costs. Nothing here is a pass/fail threshold: the script exits non-zero only when
something is broken (a stream got another GPU's figures, or more runs than seconds).

    .venv/bin/python bench/gpu_metrics_bench.py [--streams 50] [--seconds 5] [--gpus 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from spacehub.runtime.devices import Device
from spacehub.runtime.gpu_usage import GpuSampler


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--gpus", type=int, default=8)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        smi = Path(tmp) / "nvidia-smi"
        rows = "".join(f"{i}, GPU-{i:08x}, {10 + i}, {1000 + i}, 16384\\n" for i in range(args.gpus))
        smi.write_text(f"#!/bin/sh\nprintf '{rows}'\n")
        smi.chmod(0o755)
        inventory = [Device(str(i), "Tesla T4") for i in range(args.gpus)]

        one = GpuSampler(inventory, str(smi), interval=0.0)
        runs = []
        for _ in range(20):
            started = time.perf_counter()
            one.readings()
            runs.append(time.perf_counter() - started)

        warm = GpuSampler(inventory, str(smi), interval=3600.0)
        warm.readings()
        started = time.perf_counter()
        for n in range(10_000):
            warm.figures((str(n % args.gpus),))
        from_cache = (time.perf_counter() - started) / 10_000

        sampler = GpuSampler(inventory, str(smi), interval=1.0)
        wrong: list[str] = []
        cached: list[float] = []
        lock = threading.Lock()
        deadline = time.monotonic() + args.seconds

        def stream(n: int) -> None:
            dev = str(n % args.gpus)
            while time.monotonic() < deadline:
                started = time.perf_counter()
                figures = sampler.figures((dev,))
                took = time.perf_counter() - started
                with lock:
                    cached.append(took)
                    if set(figures) != {dev} or figures[dev].utilization != 10 + int(dev):
                        wrong.append(f"stream {n}: {figures}")
                time.sleep(1.0)

        started = time.monotonic()
        threads = [threading.Thread(target=stream, args=(n,)) for n in range(args.streams)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started

    print(f"one nvidia-smi run (stand-in, {args.gpus} GPUs): median {statistics.median(runs) * 1e3:.1f} ms")
    print(f"a call answered from the last reading: {from_cache * 1e6:.1f} µs")
    print(f"{args.streams} streams for {elapsed:.1f} s: {len(cached)} samples, {sampler.runs} nvidia-smi runs; "
          f"a sample's wait: median {statistics.median(cached) * 1e3:.1f} ms, max {max(cached) * 1e3:.1f} ms "
          f"(the streams ask in step: most wait for the run under way)")  # fmt: skip
    if wrong:
        print("WRONG FIGURES:", *wrong[:5], sep="\n  ")
        return 1
    if sampler.runs > elapsed + 1:
        print(f"TOO MANY RUNS: {sampler.runs} in {elapsed:.1f} s")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
