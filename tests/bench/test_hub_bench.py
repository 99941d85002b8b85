"""bench/hub_bench.py still runs end to end (small sizes): it exits 0 and prints its ratio lines."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_hub_bench_smoke(tmp_path: Path) -> None:
    out_json = tmp_path / "bench.json"
    args = ["--size-mb", "20", "--files", "50", "--repeat", "1", "--json", str(out_json), "--workdir", str(tmp_path)]
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "hub_bench.py"), *args],
        capture_output=True,
        text=True,
        timeout=900,  # a hang guard, not a speed check
    )
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("upload_folder: 50 files", "upload_file: 20 MB", "commit API, pre-encoded body: 20 MB"):
        assert re.search(rf"^{re.escape(name)}.*\s\d+\.\d+x\s", r.stdout, re.M), r.stdout
    assert re.search(r"^hf_hub_download: 20 MB.*\s\d+\.\d+x\s", r.stdout, re.M), r.stdout
    # git push over HTTP: a ratio, or n/a with the reason when the server has no smart HTTP
    assert re.search(r"^git push over HTTP: 50 files.*\s(\d+\.\d+x|n/a)\s", r.stdout, re.M), r.stdout
    assert "server RSS" in r.stdout

    data = json.loads(out_json.read_text())
    assert not data["errors"]
    ratios = {row["name"]: row["ratio"] for row in data["rows"]}
    assert all(v and v > 0 for k, v in ratios.items() if not k.startswith("git push")), ratios
    assert data["memory"]["server_peak_rss_upload_file_mb"] > 0
