"""The proxy benchmark still runs (very briefly): its figures are in docs/performance.md and must stay reproducible."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.slow
def test_proxy_bench_runs(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "bench/proxy_bench.py", "--duration", "1", "--rounds", "1", "--json", str(out)]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(out.read_text())
    assert result["median_rps"]["direct"] > 0 and result["median_rps"]["spacehub"] > 0
    assert "spacehub/direct" in result["ratios"]
    if shutil.which("nginx"):
        assert {"spacehub/nginx", "spacehub-nginx/nginx"} <= set(result["ratios"])
    assert "ratio spacehub/direct" in run.stdout
