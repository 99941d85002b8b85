"""bench/sandbox_bench.py still runs end to end (one round, with its profile): it exits 0 and prints every figure."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench import UNAVAILABLE

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.skipif(UNAVAILABLE is not None, reason=f"no sandbox here: {UNAVAILABLE}")
def test_sandbox_bench_smoke(tmp_path: Path) -> None:
    out_json = tmp_path / "bench.json"
    args = ["--rounds", "1", "--profile", "--json", str(out_json)]
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "sandbox_bench.py"), *args],
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard, not a speed check
    )
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("cold start -> 200", "wake from stopped -> 200", "wake from frozen -> 200", "awake request"):
        assert re.search(rf"^{re.escape(name)}(\s+\d+\.\d \(\d+\.\d\)){{3}}$", r.stdout, re.M), r.stdout  # medians
        assert re.search(rf"^{re.escape(name)}(\s+[+-]\d+\.\d \([+-]\d+\.\d\)\s+\d+\.\d+x){{2}}$", r.stdout, re.M)
    for mode in ("open", "hub-only"):
        assert re.search(rf"^budget {mode}: wake from stopped .*: (OK|OVER); wake from frozen .*: (OK|OVER)$", r.stdout,
                         re.M), r.stdout  # fmt: skip
    assert re.search(r"^  total\s+(\d+\.\d\s+){3}\d+\.\d$", r.stdout, re.M), r.stdout

    data = json.loads(out_json.read_text())
    assert set(data["stats"]) == {"off", "open", "hub-only"}
    for mode, by in data["stats"].items():
        assert all(by[m]["median"] > 0 for m in ("cold", "stopped", "frozen", "awake")), (mode, by)
    assert set(data["budget"]) == {"open", "hub-only"}
    assert data["profile"]["steps"]["open"]["total"] > 0
