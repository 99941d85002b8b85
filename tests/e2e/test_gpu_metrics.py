"""GPU figures in a Space's metrics, end to end: a live ``spacehub serve`` with the local runtime, two T4s declared in
its device inventory (runtime.devices; no GPU is lent to this machine) and a stand-in ``nvidia-smi`` on the server's
PATH that prints fixed figures for both and notes each run. Two Spaces on t4-small each get one of the GPUs and see
exactly its figures, in the client's Jobs metrics keys; a cpu-basic Space sees none. huggingface_hub 2.4.0 has no
call for a Space's metrics (its metrics are Jobs'), so the stream is read as the client reads Jobs' (SSE, one event a
second)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi

from tests.conftest import start_server
from tests.e2e.conftest import Hub, runtime_env, stop_hub

pytestmark = pytest.mark.slow
RUN_TIMEOUT = 180
MIB = 2**20
DEVICES = json.dumps([
    {"id": "0", "model": "Tesla T4", "memory_gb": 16, "uuid": "GPU-aaaa0000-1111-2222-3333-444455556666"},
    {"id": "1", "model": "Tesla T4", "memory_gb": 16, "uuid": "GPU-bbbb0000-1111-2222-3333-444455556666"},
])  # fmt: skip
# nvidia-smi's answer: GPU 0 at 37 % with 1 GiB of 15 GiB used, GPU 1 at 91 % with 8000 MiB used
FIGURES = {
    "0": {"utilization": 37, "memory_used_bytes": 1024 * MIB, "memory_total_bytes": 15360 * MIB},
    "1": {"utilization": 91, "memory_used_bytes": 8000 * MIB, "memory_total_bytes": 15360 * MIB},
}
STAND_IN = """#!/bin/sh
echo "$@" >> {calls}
case "$*" in
  *utilization.gpu*) printf '0, GPU-aaaa0000-1111-2222-3333-444455556666, 37, 1024, 15360\\n'
                     printf '1, GPU-bbbb0000-1111-2222-3333-444455556666, 91, 8000, 15360\\n' ;;
  *) echo "unexpected query" >&2; exit 2 ;;
esac
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, uv_cache: Path) -> Iterator[Hub]:
    base = tmp_path_factory.mktemp("gpu")
    bin_dir = base / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(STAND_IN.format(calls=base / "nvidia-smi.calls"))
    smi.chmod(0o755)
    env = runtime_env(uv_cache, SPACEHUB_RUNTIME__DEVICES=DEVICES, PATH=f"{bin_dir}:{os.environ['PATH']}")
    server = start_server(base / "data", env=env)
    alice = server.user("alice")
    h = Hub(server, alice, HfApi(endpoint=server.url, token=alice))
    yield h
    stop_hub(h)


def calls(hub: Hub) -> list[str]:
    path = hub.server.data_dir.parent / "nvidia-smi.calls"
    return path.read_text().splitlines() if path.exists() else []


def metrics(hub: Hub, repo_id: str, count: int = 1) -> list[dict[str, Any]]:
    """``count`` events of the Space's metrics stream (one: ``?follow=false``), as the client reads Jobs' metrics."""
    follow = "true" if count > 1 else "false"
    events: list[dict[str, Any]] = []
    with httpx.stream("GET", f"{hub.url}/api/spaces/{repo_id}/metrics?follow={follow}",
                      headers={"authorization": f"Bearer {hub.alice}"}, timeout=30) as r:  # fmt: skip
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
                if len(events) == count:
                    break
    return events


def test_a_gpu_space_gets_its_own_gpus_figures_and_a_cpu_space_none(hub: Hub, tmp_path: Path) -> None:
    hub.server.cli("billing", "grant", "alice")  # t4-small has a price
    first, second, cpu = hub.name("gpu-a"), hub.name("gpu-b"), hub.name("cpu")
    for repo_id, flavor in ((first, "t4-small"), (second, "t4-small"), (cpu, None)):
        hub.api.create_repo(repo_id, repo_type="space", space_sdk="gradio", space_hardware=flavor)
        hub.upload(repo_id, "python-http", tmp_path, create=False)
    for repo_id in (first, second, cpu):
        hub.wait(repo_id, "RUNNING", RUN_TIMEOUT)
    assert hub.runtime(first).hardware == "t4-small" and hub.runtime(cpu).hardware == "cpu-basic"

    (a,) = metrics(hub, first)
    (b,) = metrics(hub, second)
    assert len(a["gpus"]) == 1 and len(b["gpus"]) == 1, (a, b)
    assert set(a["gpus"]) | set(b["gpus"]) == {"0", "1"}  # each its own GPU, never the other's
    for sample in (a, b):
        ((device, figures),) = sample["gpus"].items()
        assert figures == FIGURES[device]
        assert sample["cpu_millicores"] == 2000 or sample["cpu_millicores"] == 4000  # capped, or the flavor's
        assert sample["memory_used_bytes"] > 0
    (c,) = metrics(hub, cpu)
    assert c["gpus"] == {} and c["memory_used_bytes"] > 0 and c["cpu_millicores"] == 2000

    # The client's own formatting of Jobs metrics (`hf jobs stats`) reads a GPU Space's event as it is.
    from huggingface_hub.cli.jobs import _format_job_stats_rows

    headers = [
        "JOB ID",
        "CPU %",
        "NUM CPU",
        "MEM %",
        "MEM USAGE",
        "NET I/O",
        "GPU UTIL %",
        "GPU MEM %",
        "GPU MEM USAGE",
    ]
    ((device, figures),) = a["gpus"].items()
    (row,) = _format_job_stats_rows(first, a, headers)
    used = round(100 * figures["memory_used_bytes"] / figures["memory_total_bytes"], 2)
    assert row[6:8] == [f"{figures['utilization']}%", f"{used}%"]
    assert _format_job_stats_rows(cpu, c, headers)[0][6:] == ["N/A"] * 3

    # Two followed streams at once (both GPU Spaces) for a few seconds: nvidia-smi runs at most once a second for
    # all of them together.
    before = len(calls(hub))
    got: dict[str, list[dict[str, Any]]] = {}

    def follow(repo_id: str) -> None:
        got[repo_id] = metrics(hub, repo_id, count=4)

    started = time.monotonic()
    threads = [threading.Thread(target=follow, args=(r,)) for r in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    elapsed = time.monotonic() - started
    runs = len(calls(hub)) - before
    assert all(len(got[r]) == 4 for r in (first, second))
    assert all(e["gpus"] == a["gpus"] for e in got[first]) and all(e["gpus"] == b["gpus"] for e in got[second])
    assert 1 <= runs <= elapsed + 1, (runs, elapsed)  # 8 events, never 8 runs
    assert all("utilization.gpu" in line for line in calls(hub))
