"""bench/k8s_wake_bench.py still runs end to end on the pod tier (one round, on this worker's pod-tier cluster): it
exits 0 and prints the wake beside its baseline, the same pod created from scratch, with their ratio."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.k8s.cluster import ControlPlane
from tests.k8s.conftest import pod_plane  # noqa: F401 (the fixture)
from tests.k8s.node import Node

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.pods]


def test_k8s_wake_bench_smoke(pod_plane: tuple[ControlPlane, Node], tmp_path: Path) -> None:  # noqa: F811
    plane, _ = pod_plane
    out_json = tmp_path / "bench.json"
    args = ["--rounds", "1", "--kubeconfig", str(plane.kubeconfig), "--json", str(out_json)]
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "k8s_wake_bench.py"), *args],
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard, not a speed check
    )
    assert r.returncode == 0, r.stdout + r.stderr
    ms = r"\d+\.\d ms"
    assert re.search(rf"^wake from zero replicas -> 200\s+{ms}\s+{ms}\s+\d+\.\d\dx$", r.stdout, re.M), r.stdout
    assert re.search(r"^load average: [\d.]+ [\d.]+ [\d.]+ at the start", r.stdout, re.M), r.stdout
    data = json.loads(out_json.read_text())
    assert len(data["wake_s"]) == len(data["baseline_s"]) == 1
    assert data["wake_s"][0] > 0 and data["baseline_s"][0] > 0
    assert data["ratio"] == pytest.approx(data["wake_s"][0] / data["baseline_s"][0])
