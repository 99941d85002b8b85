"""The supervisor's log format and log rotation (its process behaviour is tested through the local backend)."""

from __future__ import annotations

import re
import time
from pathlib import Path

from spacehub.runtime.supervise import Supervisor, log_timestamp, parse_log_line


def test_log_timestamp_is_iso_utc_with_milliseconds() -> None:
    assert log_timestamp(0.5) == "1970-01-01T00:00:00.500Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", log_timestamp())
    assert parse_log_line("2026-11-22T12:00:00.123Z hello world\n") == ("2026-11-22T12:00:00.123Z", "hello world")


def test_lines_are_split_cut_and_stripped(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    sup = Supervisor(tmp_path, {"log_path": str(log)}, {})
    rest = sup.flush_lines(b"one\r\ntwo\npart")
    assert rest == b"part"
    rest = sup.flush_lines(rest + b"x" * (70 * 1024))
    assert len(rest) < 64 * 1024
    texts = [parse_log_line(line)[1] for line in log.read_text().splitlines()]
    assert texts[:2] == ["one", "two"]
    assert texts[2] == "part" + "x" * (64 * 1024 - 4)


def test_the_log_rotates_past_its_size_and_after_an_outside_rename(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    sup = Supervisor(tmp_path, {"log_path": str(log), "max_log_bytes": 100}, {})
    for i in range(5):
        sup.line(f"line {i} " + "x" * 30)
    sup.log_checked = time.monotonic() - 2  # the size is looked at once a second
    sup.line("after")
    assert (tmp_path / "run.log.1").read_text().count("\n") == 5
    assert log.read_text().endswith(" after\n")
    log.rename(tmp_path / "elsewhere.log")  # SpaceHub's own rotation
    sup.log_checked = time.monotonic() - 2
    sup.line("new file")
    assert log.read_text().endswith(" new file\n")
