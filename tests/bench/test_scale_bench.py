"""bench/scale_bench.py still runs end to end (20 Spaces, one running app, short windows), on SQLite and on a
throwaway PostgreSQL cluster: it exits 0 and prints every figure beside its baseline."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench import UNAVAILABLE

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.skipif(UNAVAILABLE is not None, reason=f"no sandbox here (the README's server has it on): {UNAVAILABLE}")
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_scale_bench_smoke(tmp_path: Path, database: str) -> None:
    out_json = tmp_path / "bench.json"
    args = ["--spaces", "20", "--running", "1", "--idle-seconds", "2", "--settle", "1", "--wrk-seconds", "2",
            "--change-rounds", "1", "--json", str(out_json), "--workdir", str(tmp_path),
            "--database", database]  # fmt: skip
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scale_bench.py"), *args],
        capture_output=True,
        text=True,
        timeout=900,  # a hang guard, not a speed check
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"server: {database} database, 1 HTTP worker(s) (one process)" in r.stdout
    ratio = r"\s+\d+\.\d+x\s"
    for name in ("create rate, last tenth of 18", "server RSS at 20 Spaces", "restart -> served by the new process",
                 "static commit -> served by the proxy", "list_spaces(limit=1000): 20 Spaces"):  # fmt: skip
        assert re.search(rf"^{re.escape(name)}.*{ratio}", r.stdout, re.M), r.stdout
    # Two idle seconds at 2 Spaces, or the first tenth of 18 creates (two), can use less CPU than the clock's tick:
    # a baseline of 0.0 has no ratio ("n/a").
    for name, unit in (("idle CPU at 20 Spaces (% of a core)", "%"), ("server CPU per create, last tenth", "ms")):
        row = re.search(rf"^{re.escape(name)}\s+([\d.]+){unit}\s+([\d.]+){unit}\s+(\d+\.\d+x|n/a)\s", r.stdout, re.M)
        assert row, r.stdout
        assert (row[3] == "n/a") == (float(row[2]) == 0.0), row[0]
    assert re.search(r"^load average: [\d.]+ [\d.]+ [\d.]+ at the start", r.stdout, re.M), r.stdout

    data = json.loads(out_json.read_text())
    assert data["create"]["count"] == 18 and len(data["create"]["all_wall_s"]) == 18
    assert data["after"]["listed"] == 20  # every Space, the running one and the static probe included
    for side in ("before", "after"):
        assert data[side]["idle"]["rss_mb"] > 0 and data[side]["idle"]["cpu_pct"] >= 0
        assert data[side]["change"]["restart_s"] > 0 and data[side]["change"]["commit_s"] > 0
    if shutil.which("wrk"):
        reads = ("get_space_runtime", "space_info", "whoami-v2", "runtime of 18")  # the last: 18 Spaces in turn
        assert set(data["wrk"]) == {f"{n} c{c}" for n in ("baseline", *reads) for c in (1, 8, 64)}
        assert data["wrk"]["baseline c1"]["requests"] > 0  # a run of 2 s at one connection always gets answers
        for n in reads:
            assert data["wrk"][f"{n} c1"]["requests"] > 0, data["wrk"]
            row = rf"^{n} c1\s+\d+\s+[\d.]+\s+\d+\s+\d+\s+[\d.]+\s+\d+{ratio}"  # req/s p99 CPU, the baseline's
            assert re.search(row, r.stdout, re.M), r.stdout
    else:  # pragma: no cover - `make test` installs wrk
        assert "API reads: n/a (wrk is not installed" in r.stdout
