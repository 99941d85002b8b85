"""LocalProcessBackend with real processes, real uv and (where the machine allows) real cgroups."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from spacehub.runtime.backends.base import BuildFailed, Resources
from spacehub.runtime.backends.local import LocalProcessBackend
from spacehub.runtime.supervise import proc_starttime
from tests.runtime.backends.conftest import (
    APP,
    README,
    SpaceRepo,
    build_spec,
    release_spec,
    wait_for,
    wait_http,
)

LINE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z .*$")


def gradio_space(repo: SpaceRepo, **extra: str | bytes) -> str:
    return repo.commit({"app.py": APP, "README.md": README.format(sdk="gradio"), **extra})


def built(backend: LocalProcessBackend, repo: SpaceRepo, build_id: str = "b1", **extra: str | bytes) -> list[str]:
    lines: list[str] = []
    backend.build(build_spec(repo, gradio_space(repo, **extra), build_id), lines.append)
    return lines


def url(backend: LocalProcessBackend, release_id: str, path: str = "/") -> str:
    st = backend.status(release_id)
    assert st is not None and st.endpoint is not None
    return f"http://{st.endpoint.host}:{st.endpoint.port}{path}"


def alive(pid: int) -> bool:
    return proc_starttime(pid) is not None


def has_cgroups(backend: LocalProcessBackend, release_id: str) -> bool:
    st = backend.status(release_id)
    assert st is not None
    return st.limits.startswith(("cgroup v1", "cgroup v2"))


# ---- build -------------------------------------------------------------------------------------------------------
def test_build_then_start_answers_http(backend: LocalProcessBackend, space_repo: SpaceRepo, tmp_path: Path) -> None:
    lines = built(backend, space_repo)
    assert backend.build_exists("b1")
    assert any("Creating the Python environment" in line for line in lines)
    ep = backend.start(release_spec(space_repo))
    assert ep.host == "127.0.0.1"
    assert wait_http(f"http://{ep.host}:{ep.port}/").text == "hello from the app"
    st = backend.status("r1")
    assert st is not None and st.running and not st.frozen and st.endpoint == ep and st.exit_code is None
    assert st.limits.startswith(("cgroup v1", "cgroup v2", "none: "))
    assert backend.start(release_spec(space_repo)) == ep  # idempotent while it runs


def test_build_is_idempotent_and_drop_removes_the_checkout(backend: LocalProcessBackend, space_repo: SpaceRepo) -> None:
    built(backend, space_repo)
    env = json.loads((backend.builds / "b1" / "build.json").read_text())["env"]
    lines = built(backend, space_repo)
    assert lines == ["Build b1 exists already"]
    backend.drop_build("b1")
    backend.drop_build("b1")
    assert not backend.build_exists("b1") and not (backend.builds / "b1").exists()
    assert Path(env, "bin", "python").exists()  # the shared environment stays


def test_lfs_pointer_is_materialized(backend: LocalProcessBackend, space_repo: SpaceRepo) -> None:
    weights = os.urandom(3000)
    sha = space_repo.commit({"app.py": APP, "README.md": README.format(sdk="static")}, lfs={"models/w.bin": weights})
    lines: list[str] = []
    backend.build(build_spec(space_repo, sha, sdk="static"), lines.append)
    out = backend.builds / "b1" / "src" / "models" / "w.bin"
    assert out.read_bytes() == weights
    assert any("1 from LFS" in line for line in lines)


def test_missing_lfs_object_fails_the_build_with_the_file_name(
    backend: LocalProcessBackend, space_repo: SpaceRepo
) -> None:
    sha = space_repo.commit({"app.py": APP, "README.md": README.format(sdk="gradio")}, lfs={"big.bin": b"data"})
    shutil.rmtree(space_repo.lfs_dir)
    with pytest.raises(BuildFailed, match=r"big\.bin is an LFS file whose object is missing"):
        backend.build(build_spec(space_repo, sha), lambda _: None)
    assert not backend.build_exists("b1")
    assert not [p for p in backend.builds.iterdir() if not p.name.endswith(".lock")]  # no half build left


def test_environment_is_reused_by_content(backend: LocalProcessBackend, space_repo: SpaceRepo) -> None:
    first = built(backend, space_repo, "b1", **{"requirements.txt": "six\n"})
    assert any("+ six" in line for line in first)  # uv's own output reaches the log
    env1 = json.loads((backend.builds / "b1" / "build.json").read_text())["env"]

    started = time.monotonic()
    second = built(backend, space_repo, "b2", **{"requirements.txt": "six\n", "other.py": "x = 1\n"})
    assert time.monotonic() - started < 3
    assert any("Reusing the Python environment" in line for line in second)
    assert json.loads((backend.builds / "b2" / "build.json").read_text())["env"] == env1

    changed = built(backend, space_repo, "b3", **{"requirements.txt": "six\nidna\n"})
    assert any("Creating the Python environment" in line for line in changed)
    assert json.loads((backend.builds / "b3" / "build.json").read_text())["env"] != env1

    lines: list[str] = []
    sha = gradio_space(space_repo, **{"requirements.txt": "six\n"})
    backend.build(build_spec(space_repo, sha, "b4", use_cache=False), lines.append)
    assert any("from scratch (factory reboot)" in line for line in lines)
    env4 = json.loads((backend.builds / "b4" / "build.json").read_text())["env"]
    assert env4 != env1 and Path(env4).parent == Path(env1).parent  # same key, new generation
    assert Path(env1, "bin", "python").exists()  # b1 and b2 still use the old one
    backend.drop_build("b1")
    assert Path(env1, "bin", "python").exists()
    backend.drop_build("b2")
    assert not Path(env1).exists()  # superseded and unused: pruned
    assert Path(env4, "bin", "python").exists()


def test_concurrent_builds_of_one_environment_share_it(
    make_backend: Callable[..., LocalProcessBackend], space_repo: SpaceRepo
) -> None:
    backends = [make_backend(), make_backend()]
    sha = gradio_space(space_repo, **{"requirements.txt": "six\n"})
    logs: list[list[str]] = [[], []]
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            backends[i].build(build_spec(space_repo, sha, f"c{i}"), logs[i].append)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    envs = {json.loads((backends[0].builds / f"c{i}" / "build.json").read_text())["env"] for i in range(2)}
    assert len(envs) == 1
    created = sum(any("Creating the Python environment" in line for line in log) for log in logs)
    assert created == 1


def test_failing_requirements_raise_build_failed_with_uvs_message(
    backend: LocalProcessBackend, space_repo: SpaceRepo
) -> None:
    lines: list[str] = []
    sha = gradio_space(space_repo, **{"requirements.txt": "spacehub-no-such-package-4f7a9==1.0\n"})
    with pytest.raises(BuildFailed) as e:
        backend.build(build_spec(space_repo, sha), lines.append)
    assert "spacehub-no-such-package-4f7a9" in str(e.value)
    assert "not found" in str(e.value) or "No solution found" in str(e.value)
    assert any("spacehub-no-such-package-4f7a9" in line for line in lines)
    assert not backend.build_exists("b1")
    assert not list(backend.builds.glob(".tmp-*"))


def test_missing_python_version_falls_back_to_ours_and_says_so(
    backend: LocalProcessBackend, space_repo: SpaceRepo
) -> None:
    lines: list[str] = []
    backend.build(build_spec(space_repo, gradio_space(space_repo), python_version="3.2"), lines.append)
    assert any("Python 3.2 is not installed on this machine" in line for line in lines)


def test_docker_space_without_an_engine_is_a_clear_build_error(
    backend: LocalProcessBackend, space_repo: SpaceRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = space_repo.commit({"Dockerfile": "FROM scratch\n", "README.md": README.format(sdk="docker")})
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(BuildFailed, match="podman or docker is not installed on this host"):
        backend.build(build_spec(space_repo, sha, sdk="docker"), lambda _: None)
    assert not backend.build_exists("b1")


def test_static_space_is_checked_out_and_never_started(
    backend: LocalProcessBackend, space_repo: SpaceRepo, tmp_path: Path
) -> None:
    sha = space_repo.commit({"index.html": "<p>hi</p>", "README.md": README.format(sdk="static")})
    backend.build(build_spec(space_repo, sha, sdk="static"), lambda _: None)
    assert (backend.builds / "b1" / "src" / "index.html").read_text() == "<p>hi</p>"
    assert not (backend.root / "envs").exists() or not any((backend.root / "envs").iterdir())
    with pytest.raises(BuildFailed, match="served by SpaceHub"):
        backend.start(release_spec(space_repo, sdk="static"))


# ---- run -----------------------------------------------------------------------------------------------------
def test_env_reaches_the_app_and_the_secret_stays_out_of_files(
    backend: LocalProcessBackend, space_repo: SpaceRepo, tmp_path: Path
) -> None:
    secret = "hf_s3cr3t-value-" + os.urandom(8).hex()
    built(backend, space_repo)
    log = tmp_path / "run.log"
    spec = release_spec(space_repo, env={"HF_TOKEN": secret, "TITLE": "x"}, resources=Resources(devices=("0", "1")))
    ep = backend.start(spec)
    wait_http(url(backend, "r1"))

    def env(name: str) -> str:
        return httpx.get(url(backend, "r1", f"/env?name={name}")).text

    assert env("HF_TOKEN") == secret
    assert env("PORT") == env("GRADIO_SERVER_PORT") == str(ep.port)
    assert env("GRADIO_SERVER_NAME") == "127.0.0.1"
    assert env("GRADIO_ANALYTICS_ENABLED") == "False"
    assert env("HF_HUB_DISABLE_TELEMETRY") == "1"
    assert env("STREAMLIT_BROWSER_GATHER_USAGE_STATS") == "false"
    assert env("CUDA_VISIBLE_DEVICES") == "0,1"
    wait_for(lambda: "HF_TOKEN" in log.read_text())  # the app printed the names
    for path in [log, *backend.root.rglob("*")]:
        if path.is_file() and not path.is_symlink() and "envs" not in path.parts and "uv-cache" not in path.parts:
            assert secret.encode() not in path.read_bytes(), path
    cmdlines = []
    for pid in os.listdir("/proc"):
        with contextlib.suppress(OSError):
            cmdlines.append(Path(f"/proc/{pid}/cmdline").read_bytes())
    assert not [c for c in cmdlines if secret.encode() in c]


def test_no_devices_leaves_cuda_visible_devices_unset(
    backend: LocalProcessBackend, space_repo: SpaceRepo, tmp_path: Path
) -> None:
    built(backend, space_repo)
    backend.start(release_spec(space_repo))
    wait_http(url(backend, "r1"))
    assert httpx.get(url(backend, "r1", "/env?name=CUDA_VISIBLE_DEVICES")).text == "<unset>"


def test_output_lands_in_the_log_with_timestamps_and_survives_a_restart(
    backend: LocalProcessBackend, space_repo: SpaceRepo, tmp_path: Path
) -> None:
    built(backend, space_repo)
    log = tmp_path / "run.log"
    backend.start(release_spec(space_repo))
    wait_for(lambda: log.exists() and "to stderr" in log.read_text())
    backend.stop("r1")
    backend.start(release_spec(space_repo))
    wait_for(lambda: log.read_text().count("to stderr") == 2)
    lines = log.read_text().splitlines()
    assert all(LINE_RE.match(line) for line in lines), lines
    assert sum("===== Application Startup at" in line for line in lines) == 2
    assert sum(line.endswith(" MARKER app starting") for line in lines) == 2
    assert any("Application killed by SIGTERM" in line for line in lines)


def test_stop_kills_the_whole_process_group(
    make_backend: Callable[..., LocalProcessBackend], space_repo: SpaceRepo, tmp_path: Path
) -> None:
    # Unconfined (the app writes host pids to a host file); test_sandbox.py covers the same for sandboxed apps.
    backend = make_backend()
    built(backend, space_repo)
    pid_file = tmp_path / "pids.json"
    backend.start(release_spec(space_repo, env={"APP_MODE": "child", "PID_FILE": str(pid_file)}))
    wait_for(pid_file.exists)
    time.sleep(0.1)
    app, kid, escaped = json.loads(pid_file.read_text())
    assert alive(app) and alive(kid) and alive(escaped)
    cgroup = has_cgroups(backend, "r1")
    started = time.monotonic()
    backend.stop("r1")
    assert time.monotonic() - started < 3  # the app dies on SIGTERM: no need to wait for the grace period
    assert not alive(app) and not alive(kid)
    if cgroup:  # a child that left the process group is still in the cgroup
        assert not alive(escaped)
    else:
        os.kill(escaped, 9)
    assert backend.status("r1") is None
    assert not (backend.instances / "r1").exists()
    backend.stop("r1")  # idempotent


def test_a_new_backend_adopts_running_instances(
    make_backend: Callable[..., LocalProcessBackend], space_repo: SpaceRepo, tmp_path: Path
) -> None:
    first = make_backend()
    built(first, space_repo)
    ep = first.start(release_spec(space_repo))
    wait_http(f"http://{ep.host}:{ep.port}/")
    del first
    second = make_backend()
    [st] = second.list_instances()
    assert st.release_id == "r1" and st.build_id == "b1" and st.running and st.endpoint == ep
    pid = json.loads((second.instances / "r1" / "state.json").read_text())["pid"]
    second.stop("r1")
    assert not alive(pid)
    assert second.list_instances() == []
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://{ep.host}:{ep.port}/", timeout=1)


def test_instances_get_distinct_ports(backend: LocalProcessBackend, space_repo: SpaceRepo, tmp_path: Path) -> None:
    built(backend, space_repo)
    eps = {backend.start(release_spec(space_repo, f"r{i}")) for i in range(3)}
    assert len({ep.port for ep in eps}) == 3
    for i in range(3):
        wait_http(url(backend, f"r{i}"))
    assert len(backend.list_instances()) == 3


def test_a_crashed_app_reports_its_exit_code(
    backend: LocalProcessBackend, space_repo: SpaceRepo, tmp_path: Path
) -> None:
    built(backend, space_repo)
    log = tmp_path / "run.log"
    backend.start(release_spec(space_repo, env={"APP_MODE": "crash"}))
    wait_for(lambda: not backend.status("r1").running)  # type: ignore[union-attr]
    st = backend.status("r1")
    assert st is not None and not st.running and st.exit_code == 3 and st.endpoint is None
    assert "===== Application exited with code 3 =====" in log.read_text()
    [listed] = backend.list_instances()
    assert listed.exit_code == 3
    backend.start(release_spec(space_repo, env={"APP_MODE": "crash"}))  # a restart of an exited instance
    wait_for(lambda: log.read_text().count("exited with code 3") == 2)


def test_the_exit_notice_is_readable_once_the_app_has_ended_and_its_exit_is_known(
    backend: LocalProcessBackend, space_repo: SpaceRepo, tmp_path: Path
) -> None:
    """The crash monitor's notice (a pidfd of the supervisor): quiet while the app runs, readable when it ends, and
    by then exit.json is written, so status answers the exit code at once (no wait for the supervisor)."""
    assert backend.exit_notice("r1") is None  # no such instance
    built(backend, space_repo)
    backend.start(release_spec(space_repo))
    wait_http(url(backend, "r1"))
    fd = backend.exit_notice("r1")
    assert fd is not None
    try:
        assert select.select([fd], [], [], 0.3)[0] == []
        state = json.loads((backend.instances / "r1" / "state.json").read_text())
        os.kill(state["pid"], signal.SIGTERM)
        assert select.select([fd], [], [], 30)[0] == [fd]
        assert (backend.instances / "r1" / "exit.json").exists()
        st = backend.status("r1")
        assert st is not None and not st.running and st.exit_code is not None
        assert backend.exit_notice("r1") is None  # it has ended: nothing to wait for
    finally:
        os.close(fd)


def test_freeze_stops_answering_and_thaw_answers_at_once(
    backend: LocalProcessBackend, space_repo: SpaceRepo, tmp_path: Path
) -> None:
    built(backend, space_repo)
    backend.start(release_spec(space_repo))
    wait_http(url(backend, "r1"))
    if not has_cgroups(backend, "r1"):
        assert backend.freeze("r1") is False
        pytest.skip("no cgroup freezer on this machine")
    address = url(backend, "r1")
    assert backend.freeze("r1") is True
    st = backend.status("r1")
    assert st is not None and st.running and st.frozen
    with pytest.raises(httpx.TimeoutException):
        httpx.get(address, timeout=0.5)
    state = backend.instances / "r1" / "state.json"
    pid = json.loads(state.read_text())["pid"]
    backend.thaw("r1")
    assert httpx.get(address, timeout=2).status_code == 200
    assert json.loads(state.read_text())["pid"] == pid and alive(pid)  # thawed, not restarted (speed: bench/)
    assert not backend.status("r1").frozen  # type: ignore[union-attr]
    backend.freeze("r1")
    backend.stop("r1")  # a frozen instance stops too
    assert backend.status("r1") is None


def test_memory_limit_kills_an_app_that_allocates_past_it(
    backend: LocalProcessBackend, space_repo: SpaceRepo, tmp_path: Path
) -> None:
    built(backend, space_repo)
    log = tmp_path / "run.log"
    spec = release_spec(space_repo, env={"APP_MODE": "oom"}, resources=Resources(memory_bytes=96 * 2**20))
    backend.start(spec)
    st = backend.status("r1")
    assert st is not None
    if not st.limits.startswith(("cgroup v1", "cgroup v2")):
        assert st.limits.startswith("none: ")
        backend.stop("r1")
        pytest.skip(f"no cgroup limits here: {st.limits}")
    assert "memory 96 MiB" in st.limits
    wait_for(lambda: not backend.status("r1").running, timeout=30)  # type: ignore[union-attr]
    st = backend.status("r1")
    assert st is not None and st.exit_code == 137
    text = log.read_text()
    assert "allocated 64 MiB" in text and "allocated 256 MiB" not in text
    assert "out of memory" in text


def test_without_cgroups_limits_say_none_and_freeze_is_refused(
    make_backend: Callable[..., LocalProcessBackend], space_repo: SpaceRepo, tmp_path: Path
) -> None:
    backend = make_backend(use_cgroups=False)
    built(backend, space_repo)
    backend.start(release_spec(space_repo))
    wait_http(url(backend, "r1"))
    st = backend.status("r1")
    assert st is not None and st.limits == "none: cgroups are turned off for this backend"
    assert backend.freeze("r1") is False


def test_storage_is_at_slash_data(backend: LocalProcessBackend, space_repo: SpaceRepo, tmp_path: Path) -> None:
    built(backend, space_repo)
    data = backend.storage_root / "space-data"  # persistent storage is named; the backend keeps it
    data.mkdir(parents=True)
    (data / "hello.txt").write_text("persisted")
    backend.start(release_spec(space_repo, storage=data.name))
    wait_http(url(backend, "r1"))
    st = backend.status("r1")
    assert st is not None
    if os.geteuid() == 0:
        assert httpx.get(url(backend, "r1", "/file?path=/data/hello.txt")).text == "persisted"
        assert httpx.get(url(backend, "r1", "/env?name=SPACE_DATA_DIR")).text == "/data"
        assert "/data" not in st.limits
        assert not Path("/data/hello.txt").exists()  # the bind mount is the app's alone
    else:
        assert "/data unavailable" in st.limits
        assert httpx.get(url(backend, "r1", "/env?name=SPACE_DATA_DIR")).text == str(data)


def test_cpu_and_pids_limits_are_written_to_the_cgroup(
    backend: LocalProcessBackend, space_repo: SpaceRepo, tmp_path: Path
) -> None:
    built(backend, space_repo)
    backend.start(release_spec(space_repo, resources=Resources(cpus=0.25, pids=200)))
    if not has_cgroups(backend, "r1"):
        pytest.skip("no cgroups here")
    cg = json.loads((backend.instances / "r1" / "launch.json").read_text())["cgroup"]
    if cg["version"] == 1:
        assert Path(cg["dirs"]["cpu"], "cpu.cfs_quota_us").read_text().strip() == "25000"
        assert Path(cg["dirs"]["pids"], "pids.max").read_text().strip() == "200"
        app = json.loads((backend.instances / "r1" / "state.json").read_text())["pid"]
        assert str(app) in Path(cg["dirs"]["memory"], "cgroup.procs").read_text().split()
    else:
        assert Path(cg["dirs"]["unified"], "cpu.max").read_text().split() == ["25000", "100000"]
    backend.stop("r1")
    assert not any(Path(d).exists() for d in cg["dirs"].values())  # the cgroup goes with the instance


def test_killing_the_supervisor_takes_the_app_with_it(
    backend: LocalProcessBackend, space_repo: SpaceRepo, tmp_path: Path
) -> None:
    built(backend, space_repo)
    backend.start(release_spec(space_repo))
    wait_http(url(backend, "r1"))
    state = json.loads((backend.instances / "r1" / "state.json").read_text())
    os.kill(state["supervisor_pid"], 9)
    wait_for(lambda: not alive(state["pid"]))
    st = backend.status("r1")
    assert st is not None and not st.running and st.exit_code is None  # nobody was left to record it
    backend.stop("r1")
    assert backend.status("r1") is None


@pytest.mark.skipif(
    shutil.which("podman") is not None or shutil.which("docker") is None, reason="needs docker without podman"
)
def test_docker_cli_without_a_daemon_is_a_clear_build_error(
    backend: LocalProcessBackend, space_repo: SpaceRepo
) -> None:
    sha = space_repo.commit({"Dockerfile": "FROM scratch\n", "README.md": README.format(sdk="docker")})
    try:
        backend.build(build_spec(space_repo, sha, sdk="docker"), lambda _: None)
    except BuildFailed as e:
        assert "docker is installed but its daemon is not reachable" in str(e) or "docker build" in str(e)
    else:
        pytest.skip("a docker daemon answers here")


def test_concurrent_starts_of_one_release_make_one_instance(
    backend: LocalProcessBackend, space_repo: SpaceRepo, tmp_path: Path
) -> None:
    built(backend, space_repo)
    eps: list[object] = []
    threads = [threading.Thread(target=lambda: eps.append(backend.start(release_spec(space_repo)))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(eps)) == 1
    wait_http(url(backend, "r1"))
    time.sleep(0.3)
    assert (tmp_path / "run.log").read_text().count("Application Startup") == 1
