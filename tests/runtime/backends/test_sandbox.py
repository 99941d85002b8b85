"""A sandboxed app (runtime.sandbox = "on") with real processes: who it is, what it sees, what it can reach."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from spacehub.runtime import sandbox
from spacehub.runtime.backends.base import BuildFailed
from spacehub.runtime.backends.local import LocalProcessBackend
from tests.runtime.backends.conftest import APP, README, SpaceRepo, build_spec, release_spec, wait_http

try:
    sandbox.check(sandbox.host_uid("check"))
    UNAVAILABLE = None
except sandbox.SandboxUnavailable as e:  # pragma: no cover - the CI machine has bubblewrap
    UNAVAILABLE = str(e)

pytestmark = pytest.mark.skipif(UNAVAILABLE is not None, reason=f"no sandbox here: {UNAVAILABLE}")


@pytest.fixture
def sandboxed(make_backend: Callable[..., LocalProcessBackend], space_repo: SpaceRepo, tmp_path: Path) -> str:
    backend = make_backend(sandbox="on", outbound="hub-only")
    sha = space_repo.commit({"README.md": README.format(sdk="gradio"), "app.py": APP})
    backend.build(build_spec(space_repo, sha), lambda line: None)
    (tmp_path / "runtime" / "secret.key").write_text("do-not-read")
    ep = backend.start(release_spec(space_repo, env={"SECRET_VALUE": "s3cr3t"}))
    url = f"http://{ep.host}:{ep.port}"
    wait_http(url + "/")
    return url


def read(url: str, path: str) -> str:
    return httpx.get(f"{url}/file", params={"path": path}, timeout=10).text


def test_the_app_is_uid_1000_without_capabilities_under_seccomp(sandboxed: str) -> None:
    status = dict(line.split(":", 1) for line in read(sandboxed, "/proc/self/status").splitlines() if ":" in line)
    assert status["Uid"].split()[0] == "1000"
    assert int(status["CapEff"].strip(), 16) == 0
    assert status["NoNewPrivs"].strip() == "1"
    assert status["Seccomp"].strip() == "2"


def test_the_app_sees_its_own_files_only(sandboxed: str, tmp_path: Path) -> None:
    assert "<error" in read(sandboxed, str(tmp_path / "runtime" / "secret.key"))  # SpaceHub's data dir is not there
    assert "<error" in read(sandboxed, "/root/.bashrc")
    assert "<error" in read(sandboxed, "/etc/shadow")
    assert "user:x:1000:1000" in read(sandboxed, "/etc/passwd")
    assert "http.server" in read(sandboxed, "/home/user/app/app.py")  # its own code, at HF's path


def test_the_app_sees_only_its_own_processes(sandboxed: str) -> None:
    # its own PID namespace: bwrap's reaper is 1, the sandbox's init 2, the app after them
    assert read(sandboxed, "/proc/1/cmdline").startswith("bwrap")
    assert "<error" in read(sandboxed, "/proc/self/../1000000/status")


def test_the_app_has_no_way_onto_the_host_network(sandboxed: str) -> None:
    dev = read(sandboxed, "/proc/net/dev")
    assert "lo:" in dev and "eth" not in dev and "tap0" not in dev  # hub-only: loopback and nothing else
    with socket.socket() as s:  # the host's side is the proxy's way in, and only that
        s.settimeout(5)
        s.connect(("127.0.0.1", int(sandboxed.rsplit(":", 1)[1])))


# A local package whose setup.py reports, into the module it installs, what the build could see and do.
PROBE_SETUP = r"""
import json, os, pathlib
from setuptools import setup

SECRET = {secret!r}


def attempt(fn):
    try:
        fn()
        return "succeeded"
    except Exception as e:
        return type(e).__name__


report = {{
    "uid": os.getuid(),
    "read_key": attempt(lambda: open(SECRET).read()),
    "write_data_dir": attempt(lambda: open(os.path.join(os.path.dirname(SECRET), "pwned"), "w")),
    "write_usr": attempt(lambda: open("/usr/pwned", "w")),
    "pid1": pathlib.Path("/proc/1/cmdline").read_bytes().split(b"\0")[0].decode(),
    "uv_cache": os.environ.get("UV_CACHE_DIR"),
}}
pathlib.Path("probe.py").write_text("REPORT = " + json.dumps(report) + "\n")
setup(name="probe", version="1.0", py_modules=["probe"])
"""
PYPROJECT = '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'


def test_a_build_that_runs_the_spaces_code_runs_it_in_the_sandbox(
    make_backend: Callable[..., LocalProcessBackend], space_repo: SpaceRepo, tmp_path: Path
) -> None:
    backend = make_backend(sandbox="on", outbound="hub-only")
    secret = tmp_path / "runtime" / "secret.key"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text("do-not-read")
    files = {
        "README.md": README.format(sdk="gradio"),
        "app.py": APP,
        "requirements.txt": "./probe\n",
        "probe/setup.py": PROBE_SETUP.format(secret=str(secret)),
        "probe/pyproject.toml": PYPROJECT,
    }
    lines: list[str] = []
    backend.build(build_spec(space_repo, space_repo.commit(files)), lines.append)
    assert any("in its sandbox" in line for line in lines), lines

    env = Path(json.loads((tmp_path / "runtime" / "builds" / "b1" / "build.json").read_text())["env"])
    assert env.parent.name.endswith("-" + hashlib.sha256(space_repo.space_id.encode()).hexdigest()[:8])  # its own
    (probe,) = env.glob("lib/python*/site-packages/probe.py")
    report = json.loads(probe.read_text().removeprefix("REPORT = "))
    assert report["uid"] == 1000 and report["pid1"].endswith("bwrap")
    assert report["read_key"] == "FileNotFoundError" and report["write_usr"] != "succeeded"
    assert not (secret.parent / "pwned").exists()  # (the path exists in the sandbox: a tmpfs under the env's bind)
    assert report["uv_cache"] == "/home/user/.cache/uv"  # a private cache, never the shared one
    assert {p.stat().st_uid for p in [env, *env.rglob("*")]} == {os.geteuid()}  # handed back to SpaceHub's user
    assert not list((tmp_path / "runtime" / "envs").glob(".build-*"))  # its HOME and cache are gone


def test_a_build_from_wheels_only_is_shared(
    make_backend: Callable[..., LocalProcessBackend], space_repo: SpaceRepo, tmp_path: Path
) -> None:
    backend = make_backend(sandbox="on", outbound="hub-only")
    files = {"README.md": README.format(sdk="gradio"), "app.py": APP, "requirements.txt": "six==1.16.0\n"}
    lines: list[str] = []
    backend.build(build_spec(space_repo, space_repo.commit(files)), lines.append)
    assert not any("in its sandbox" in line for line in lines), lines
    env = Path(json.loads((tmp_path / "runtime" / "builds" / "b1" / "build.json").read_text())["env"])
    assert "-" not in env.parent.name  # the shared key: installing wheels ran no code of the Space
    assert list(env.glob("lib/python*/site-packages/six.py"))


def test_where_the_sandbox_cannot_be_set_up_spaces_do_not_start_and_say_why(
    make_backend: Callable[..., LocalProcessBackend], space_repo: SpaceRepo, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    sha = space_repo.commit({"README.md": README.format(sdk="gradio"), "app.py": APP})
    backend = make_backend(sandbox="on")
    monkeypatch.setenv("PATH", str(tmp_path / "no-bwrap-here"))
    sandbox.bwrap_path.cache_clear()  # looked up once per process
    try:
        with pytest.raises(BuildFailed) as e:
            backend.build(build_spec(space_repo, sha), lambda line: None)
    finally:
        monkeypatch.undo()
        sandbox.bwrap_path.cache_clear()
    assert "the sandbox cannot be set up (bubblewrap (bwrap) is not installed on this host)" in str(e.value)
    assert 'runtime.sandbox = "off"' in str(e.value)  # the way out, for an operator who trusts the code
    assert not backend.build_exists("b1")


def test_with_the_sandbox_off_every_space_says_it_runs_unconfined(
    make_backend: Callable[..., LocalProcessBackend], space_repo: SpaceRepo, tmp_path: Path
) -> None:
    backend = make_backend(sandbox="off")
    sha = space_repo.commit({"README.md": README.format(sdk="gradio"), "app.py": APP})
    backend.build(build_spec(space_repo, sha), lambda line: None)
    ep = backend.start(release_spec(space_repo))
    wait_http(f"http://{ep.host}:{ep.port}/")
    st = backend.status("r1")
    assert st is not None and 'sandbox off (runtime.sandbox = "off"): the app runs unconfined' in st.limits


UNPRIVILEGED_PROBE = r"""
import json, os, socket
status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
def readable(path):
    try:
        open(path).read()
        return True
    except OSError:
        return False
print(json.dumps({
    "uid": os.getuid(), "cap_eff": int(status["CapEff"].strip(), 16), "no_new_privs": status["NoNewPrivs"].strip(),
    "seccomp": status["Seccomp"].strip(), "interfaces": sorted(name for _, name in socket.if_nameindex()),
    "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()), "home": os.access("/home/user", os.W_OK),
    "secret": readable(os.environ["PROBE_SECRET"]), "app": readable("/home/user/app/app.py"),
}))
"""


@pytest.mark.skipif(os.geteuid() != 0 or not os.access("/usr/bin/python3", os.X_OK), reason="needs root to drop to")
def test_the_sandbox_works_when_spacehub_is_an_ordinary_user(tmp_path: Path) -> None:
    """SpaceHub as uid 65534 (nobody), no capabilities: the supervisor's side (stdlib only, run by Debian's python3)
    sets a sandbox up with unprivileged user namespaces, and what runs inside is as confined as under a root
    SpaceHub: uid 1000, no capabilities, no_new_privs, seccomp, loopback only, its own processes, its own files."""
    base = Path(tempfile.mkdtemp(prefix="spacehub-unpriv-"))  # pytest's folders are 0700 root's: nobody cannot enter
    try:
        base.chmod(0o755)
        src, env, home, data = base / "src", base / "env", base / "home", base / "data"
        for d in (src, env, home, data):
            d.mkdir()
        (src / "app.py").write_text("print('hello')\n")
        (data / "secrets.key").write_text("do-not-read")  # a file of "SpaceHub's" own, outside every bind
        seccomp = base / "seccomp.bpf"
        seccomp.write_bytes(sandbox.seccomp_program())
        # SpaceHub's code where its user can read it (a checkout may sit in a folder only root may enter)
        package = Path(sandbox.__file__).parents[1]
        shutil.copytree(package, base / "lib" / "spacehub", ignore=shutil.ignore_patterns("__pycache__"))
        for p in (base, *base.rglob("*")):
            os.chown(p, 65534, 65534)
        plan = sandbox.build_plan(
            space_id="alice/unpriv", hostname="r-unpriv", src=str(src), python="/usr/bin/python3", env_dir=str(env),
            home=str(home), uv="/usr/bin/true", seccomp_file=str(seccomp),
        )  # fmt: skip
        plan |= {"uid": None, "outbound": "none"}  # what plan() says when SpaceHub is not root
        (base / "plan.json").write_text(json.dumps(plan))
        os.chown(base / "plan.json", 65534, 65534)

        def as_nobody() -> None:
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)

        done = subprocess.run(
            ["/usr/bin/python3", "-m", "spacehub.runtime.sandbox_run", str(base / "plan.json"), sandbox.APP_DIR,
             "--", "/usr/bin/python3", "-I", "-c", UNPRIVILEGED_PROBE],
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(base / "lib"), "PROBE_SECRET": str(data / "secrets.key")},
            preexec_fn=as_nobody, capture_output=True, text=True, timeout=60, cwd="/",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        seen = json.loads(done.stdout.strip().splitlines()[-1])
        assert (seen["uid"], seen["cap_eff"], seen["no_new_privs"], seen["seccomp"]) == (1000, 0, "1", "2"), seen
        assert seen["interfaces"] == ["lo"]
        assert max(seen["pids"]) < 10, seen["pids"]  # a PID namespace of its own: bwrap and the probe
        assert seen["home"] and seen["app"] and not seen["secret"], seen
    finally:
        shutil.rmtree(base, ignore_errors=True)
