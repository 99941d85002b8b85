"""runtime.logs.FileLogStream: the backlog, then whole new lines, across a rotation, while the stage says live."""

from __future__ import annotations

from pathlib import Path

from spacehub.runtime.logs import FileLogStream, SpaceLogs


def test_backlog_then_only_whole_new_lines_then_a_fresh_log_from_its_top(tmp_path: Path) -> None:
    logs = SpaceLogs(tmp_path, "space1")
    logs.append("run", "one")
    stage = ["RUNNING"]
    stream = FileLogStream(logs.path("run"), "run", lambda: stage[0])
    assert [text for _, text in stream.backlog()] == ["one"]
    assert stream.more() == [] and stream.live()
    logs.append("run", "two\nthree")
    with logs.path("run").open("a") as f:
        f.write("2026-12-05T00:00:00.000Z half a li")  # not ended yet: not read
    assert [text for _, text in stream.more()] == ["two", "three"]
    with logs.path("run").open("a") as f:
        f.write("ne\n")
    assert stream.more() == [("2026-12-05T00:00:00.000Z", "half a line")]
    logs.path("run").write_text("")  # a new log (a new build, a rotation)
    logs.append("run", "fresh")
    assert [text for _, text in stream.more()] == ["fresh"]
    stage[0] = "PAUSED"
    assert not stream.live()


def test_a_build_log_is_live_only_while_the_space_builds(tmp_path: Path) -> None:
    stage = ["BUILDING"]
    stream = FileLogStream(tmp_path / "build.log", "build", lambda: stage[0])
    assert stream.backlog() == [] and stream.more() == [] and stream.live()
    stage[0] = "RUNNING"
    assert not stream.live()
    assert FileLogStream(tmp_path / "run.log", "run", lambda: stage[0]).live()
