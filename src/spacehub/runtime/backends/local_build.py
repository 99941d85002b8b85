"""Builds for the local backend: Python environments made with uv and shared by content, and container images.

An environment is keyed by everything that changes what gets installed: the SDK and its version, the interpreter,
the base packages, and the bytes of ``pre-requirements.txt`` and ``requirements.txt`` (and of files they include with
``-r``/``-c``). Two builds with the same key share one environment, so a restart, a new commit that only touches
``app.py`` or a second Space with the same requirements installs nothing. Layout under ``{root}/envs``::

    <key>.lock          flock held while an environment of this key is checked or made
    <key>/current       the name of the generation in use
    <key>/<generation>/ a relocatable virtualenv (uv venv --relocatable), made in .tmp-<generation> then renamed

A factory reboot (``use_cache=False``) makes a new generation with ``uv --refresh`` (every package re-resolved and
downloaded again) and makes it current; builds made before keep their generation until they are dropped. uv's own
cache is shared by all environments (``{root}/uv-cache``), and uv hard-links installed files from it.

With the sandbox on (``sandbox_plan`` given), no code of a Space runs outside its sandbox: environments are first made
from wheels only (``uv pip install --no-build``: installing a wheel runs nothing), and shared as above. When a
requirement needs building from source (an sdist's ``setup.py``, a local package), the environment is made again by
uv inside the Space's sandbox with a private uv cache, and belongs to that Space alone (its key ends in the Space's
hash): code one Space ran at build time never reaches another Space's environment or the shared cache.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from spacehub.runtime import sandbox
from spacehub.runtime.backends.base import BuildFailed

Log = Callable[[str], None]
# (space id, checkout, environment being made, interpreter, private HOME) -> the sandbox plan of a build step
SandboxPlan = Callable[[str, Path, Path, str, Path], dict[str, Any]]
RunIn = Callable[[list[str], str], None]  # (uv arguments, what it does): runs uv in a Space's build sandbox
# The SDK's own package first (``sdk_version`` pins it). Gradio Spaces also get ``spaces``, as on the Hub: with
# SYSTEM=spaces, gradio starts its Spaces hot-reloading, which needs it ("`spaces` package is required to run
# hot-reloading in Spaces" otherwise), and apps import it for @spaces.GPU.
DEFAULT_SDK_PACKAGES: dict[str, list[str]] = {"gradio": ["gradio", "spaces"], "streamlit": ["streamlit"]}
REQUIREMENT_FILES = ("pre-requirements.txt", "requirements.txt")
INCLUDE_RE = re.compile(r"^\s*(-r|-c|--requirement|--constraint)[\s=]+(\S+)")
LOCAL_RE = re.compile(r"^\s*(-e\s+)?(\.{1,2}/|\.\s*$|file:)")
NEEDS_BUILD_RE = re.compile(r"(?i)building (from source|source distributions)\b[^\n]*\bis disabled")
ERROR_TAIL = 12
_running: set[subprocess.Popen[str]] = set()  # build commands under way in this process (see stop_builds)
_running_lock = threading.Lock()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive flock on ``path``: held against other threads, objects and processes alike."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def stop_builds() -> None:
    """Kill every build command this process still runs (uv, podman build). Called when SpaceHub stops: they would
    otherwise run on as orphans, writing into an environment nobody will use. The next start builds again."""
    with _running_lock:
        procs = list(_running)
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()


def run_logged(cmd: Sequence[str], env: Mapping[str, str], cwd: Path, log: Log, what: str, timeout: float) -> None:
    """Run ``cmd``, sending each output line to ``log``. Raises: BuildFailed with the last lines of output."""
    tail: deque[str] = deque(maxlen=ERROR_TAIL)
    proc = subprocess.Popen(
        list(cmd),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    with _running_lock:
        _running.add(proc)
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        proc.kill()

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip()
            log(line)
            if line.strip():
                tail.append(line)
        code = proc.wait()
    finally:
        timer.cancel()
        with _running_lock:
            _running.discard(proc)
    if code != 0:
        why = f"timed out after {timeout:.0f}s" if timed_out.is_set() else f"failed (exit {code})"
        raise BuildFailed(f"{what} {why}:\n" + "\n".join(tail))


class PythonEnvs:
    """Python environments for gradio and streamlit Spaces, made with uv and cached by content."""

    def __init__(
        self,
        root: Path,
        uv_bin: str,
        base_env: Mapping[str, str],
        index_url: str | None = None,
        sdk_packages: Mapping[str, Sequence[str]] | None = None,
        timeout: float = 3600.0,
        cache_dir: Path | None = None,
        sandbox_plan: SandboxPlan | None = None,
    ) -> None:
        self.dir = root / "envs"
        self.sandbox_plan = sandbox_plan
        self.uv = uv_bin
        self.sdk_packages = {**DEFAULT_SDK_PACKAGES, **(sdk_packages or {})}
        self.timeout = timeout
        self.env = {
            **base_env,
            "UV_CACHE_DIR": str(cache_dir or root / "uv-cache"),
            "UV_PYTHON_DOWNLOADS": "never",  # never fetch an interpreter: use what the machine has
            "UV_NO_CONFIG": "1",  # neither the server user's uv.toml nor one in the Space decides for us
            "UV_NO_PROGRESS": "1",
            "NO_COLOR": "1",
        }
        if index_url:
            self.env["UV_DEFAULT_INDEX"] = index_url
        self.dir.mkdir(parents=True, exist_ok=True)

    def packages(self, sdk: str, sdk_version: str | None) -> list[str]:
        pkgs = list(self.sdk_packages.get(sdk, []))
        if pkgs and sdk_version:
            pkgs[0] = f"{pkgs[0]}=={sdk_version}"
        return pkgs

    def find_python(self, version: str | None, log: Log) -> tuple[str, str]:
        """(interpreter path, its version) for ``python_version``: a matching one on this machine, else ours."""
        ours = getattr(sys, "_base_executable", None) or sys.executable
        ours_version = ".".join(map(str, sys.version_info[:3]))
        if version is None:
            log(f"Python: {ours_version}, the server's own (the README sets no python_version)")
            return ours, ours_version
        found = subprocess.run(
            [self.uv, "python", "find", "--system", "--no-project", "--show-version", version],
            env=self.env,
            capture_output=True,
            text=True,
        )
        if found.returncode == 0:
            path = subprocess.run(
                [self.uv, "python", "find", "--system", "--no-project", version],
                env=self.env,
                capture_output=True,
                text=True,
            ).stdout.strip()
            log(f"Python: {found.stdout.strip()} at {path} (python_version: {version})")
            return path, found.stdout.strip()
        why = (found.stderr.strip().splitlines() or ["not found"])[0]
        log(f"Python {version} is not installed on this machine ({why}); using the server's Python {ours_version}")
        return ours, ours_version

    def key(self, sdk: str, sdk_version: str | None, python: tuple[str, str], src: Path) -> str:
        h = hashlib.sha256()
        h.update(json.dumps([sdk, sdk_version, list(python), self.packages(sdk, sdk_version)]).encode())
        for name in REQUIREMENT_FILES:
            h.update(b"\0" + name.encode() + b"\0" + _digest(src, src / name, 0))
        return h.hexdigest()[:24]

    def ensure(
        self,
        sdk: str,
        sdk_version: str | None,
        python_version: str | None,
        src: Path,
        use_cache: bool,
        log: Log,
        pin: Path,
        space_id: str = "",
    ) -> Path:
        """The environment for this Space's checkout ``src``: reused when one of the same key exists (unless
        ``use_cache`` is False), made otherwise. Its path is written to ``pin`` under the key's lock, so that
        `prune` never removes an environment a build is about to use. Raises: BuildFailed (uv's last lines)."""
        python = self.find_python(python_version, log)
        key = self.key(sdk, sdk_version, python, src)
        create = functools.partial(self._create, python=python[0], sdk=sdk, sdk_version=sdk_version, src=src,
                                   use_cache=use_cache, log=log)  # fmt: skip
        if self.sandbox_plan is None:
            return self._ensure(key, pin, use_cache, log, lambda: create(key))
        own = f"{key}-{hashlib.sha256(space_id.encode()).hexdigest()[:8]}"
        if use_cache:
            for k in (key, own):  # one made from wheels only, shared; or this Space's own
                with file_lock(self.dir / f"{k}.lock"):
                    current = self.current(k)
                    if current is not None:
                        log(f"Reusing the Python environment {k}/{current.name} (same SDK, Python and requirements)")
                        pin.write_text(str(current))
                        return current
        try:
            return self._ensure(key, pin, use_cache, log, lambda: create(key, wheels_only=True))
        except BuildFailed as e:
            if not NEEDS_BUILD_RE.search(str(e)):
                raise
        log("Some requirements need building from source, which runs their code: making this Space's own environment "
            "in its sandbox")  # fmt: skip
        return self._ensure(own, pin, use_cache, log, lambda: create(own, space_id=space_id))

    def _ensure(self, key: str, pin: Path, use_cache: bool, log: Log, create: Callable[[], Path]) -> Path:
        with file_lock(self.dir / f"{key}.lock"):
            current = self.current(key)
            if use_cache and current is not None:
                log(f"Reusing the Python environment {key}/{current.name} (same SDK, Python and requirements)")
            else:
                current = create()
            pin.write_text(str(current))
            return current

    def _create(
        self,
        key: str,
        python: str,
        sdk: str,
        sdk_version: str | None,
        src: Path,
        use_cache: bool,
        log: Log,
        wheels_only: bool = False,
        space_id: str | None = None,
    ) -> Path:
        keydir = self.dir / key
        for stale in keydir.glob(".tmp-*"):  # left by a crash: we hold the lock, nobody else works here
            shutil.rmtree(stale, ignore_errors=True)
        generation = time.strftime("%Y%m%dT%H%M%S-") + os.urandom(3).hex()
        tmp = keydir / f".tmp-{generation}"
        log(f"Creating the Python environment {key}" + ("" if use_cache else " from scratch (factory reboot)"))
        started = time.monotonic()
        try:
            if space_id is None:
                self._install(tmp, python, sdk, sdk_version, src, use_cache, log, wheels_only)
            else:
                with self._build_sandbox(space_id, src, tmp, python, log) as run_in:
                    self._install(tmp, python, sdk, sdk_version, src, use_cache, log, run_in=run_in)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        final = keydir / generation
        tmp.rename(final)
        (keydir / ".current.tmp").write_text(generation)
        os.replace(keydir / ".current.tmp", keydir / "current")
        log(f"Environment {key}/{generation} ready in {time.monotonic() - started:.1f}s")
        return final

    def current(self, key: str) -> Path | None:
        try:
            gen = (self.dir / key / "current").read_text().strip()
        except FileNotFoundError:
            return None
        path = self.dir / key / gen
        return path if (path / "bin" / "python").exists() else None

    def _install(
        self,
        env: Path,
        python: str,
        sdk: str,
        sdk_version: str | None,
        src: Path,
        use_cache: bool,
        log: Log,
        wheels_only: bool = False,
        run_in: RunIn | None = None,
    ) -> None:
        """Make the environment ``env``: create it, then install the requirement files and the SDK's packages, with
        ``run_in`` (the Space's build sandbox, where the checkout is at ``sandbox.APP_DIR``) when given."""
        refresh = [] if use_cache else ["--refresh"]
        run = self._uv_runner(src, log)
        # --seed: pip in the environment, as on the Hub (many Spaces run `pip install` from their code).
        run(["venv", "--relocatable", "--seed", "--python", python, str(env)], "Creating the virtualenv")
        install = run_in or run
        target = ["--python", str(env / "bin" / "python"), *refresh, *(["--no-build"] if wheels_only else [])]
        inside = str(src) if run_in is None else sandbox.APP_DIR
        for name in REQUIREMENT_FILES[:1]:
            if (src / name).is_file():
                _warn_local_paths(src / name, log)
                install(["pip", "install", *target, "-r", f"{inside}/{name}"], f"Installing {name}")
        packages = self.packages(sdk, sdk_version)
        req = src / "requirements.txt"
        args = [*packages, *(["-r", f"{inside}/requirements.txt"] if req.is_file() else [])]
        if req.is_file():
            _warn_local_paths(req, log)
        if args:
            what = "Installing " + " + ".join([*packages, *(["requirements.txt"] if req.is_file() else [])])
            log(what)
            install(["pip", "install", *target, *args], what)

    @contextlib.contextmanager
    def _build_sandbox(self, space_id: str, src: Path, env: Path, python: str, log: Log) -> Iterator[RunIn]:
        """A runner of uv commands in the Space's build sandbox (see `sandbox.build_plan`), with a copy of the
        checkout, a HOME and a uv cache of its own, which go when the block ends; the environment ``env`` it made is
        then handed back to SpaceHub's user."""
        assert self.sandbox_plan is not None
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=self.dir))
        try:
            home = work / "home"
            home.mkdir()
            env.mkdir(parents=True)
            plan = self.sandbox_plan(space_id, work / "app", env, python, home)
            copy_for_build(src, work / "app", plan["uid"])
            (work / "plan.json").write_text(json.dumps(plan))
            inner = {k: v for k, v in self.env.items() if k not in ("UV_CACHE_DIR", "PATH", "HOME")}
            inner |= {"HOME": sandbox.HOME, "PATH": f"{env}/bin:/usr/local/bin:/usr/bin:/bin", "UV_LINK_MODE": "copy",
                      "UV_CACHE_DIR": f"{sandbox.HOME}/.cache/uv"}  # fmt: skip
            wrapper = [sys.executable, "-m", "spacehub.runtime.sandbox_run", str(work / "plan.json"), sandbox.APP_DIR]

            def run_in(args: list[str], what: str) -> None:
                log(f"$ uv {' '.join(args)}   (in the Space's sandbox)")
                run_logged([*wrapper, "--", sandbox.BUILD_UV, *args], inner, src, log, what, self.timeout)

            yield run_in
        finally:
            _own_tree(env)
            shutil.rmtree(work, ignore_errors=True)

    def _uv_runner(self, cwd: Path, log: Log) -> Callable[[list[str], str], None]:
        def run(args: list[str], what: str) -> None:
            log(f"$ uv {' '.join(_short(a, cwd) for a in args)}")
            run_logged([self.uv, *args], self.env, cwd, log, what, self.timeout)

        return run

    def prune(self, key: str, keep: set[Path]) -> None:
        """Remove generations of ``key`` that are neither current nor in ``keep`` (the ones builds still use)."""
        with file_lock(self.dir / f"{key}.lock"):
            current = self.current(key)
            for gen in (self.dir / key).glob("*"):
                if gen.is_dir() and not gen.name.startswith(".") and gen != current and gen not in keep:
                    shutil.rmtree(gen, ignore_errors=True)


def copy_for_build(src: Path, dest: Path, uid: int | None) -> None:
    """A copy of the checkout ``src`` that a sandboxed build step may write into (setuptools writes ``build/`` and
    ``*.egg-info`` into a package's folder), owned by the Space's host ``uid``. Files hard-linked from the LFS store
    (model weights: large) are linked again rather than copied when SpaceHub is root: they stay root's and read-only
    to the build, which can only unlink its own link to them. Otherwise (same owner) they are copied."""
    for root, dirs, files in os.walk(src):
        rel = Path(root).relative_to(src)
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for name in dirs:
            if (Path(root) / name).is_symlink():
                os.symlink(os.readlink(Path(root) / name), dest / rel / name)
        for name in files:
            path, target = Path(root) / name, dest / rel / name
            if path.is_symlink():
                os.symlink(os.readlink(path), target)
            elif uid is not None and path.stat().st_nlink > 1:
                os.link(path, target)
                continue
            else:
                shutil.copy2(path, target)
            if uid is not None:
                os.lchown(target, uid, uid)
        if uid is not None:
            os.lchown(dest / rel, uid, uid)


def _own_tree(path: Path) -> None:
    """Give ``path`` and everything in it back to SpaceHub's user, when it is root (a sandboxed build wrote it as
    the Space's host uid; unprivileged, the build ran as SpaceHub's own user)."""
    from spacehub.runtime.sandbox_run import chown_tree

    if path.exists() and os.geteuid() == 0:
        chown_tree(path, 0)


def _digest(root: Path, path: Path, depth: int) -> bytes:
    """sha256 of a requirements file and of the files it includes (``-r``/``-c``), or b"-" when absent."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return b"-"
    h = hashlib.sha256(data)
    if depth < 5:
        for line in data.decode("utf-8", "replace").splitlines():
            m = INCLUDE_RE.match(line)
            if m and "://" not in m.group(2):
                h.update(_digest(root, path.parent / m.group(2), depth + 1))
    return h.hexdigest().encode()


def _warn_local_paths(path: Path, log: Log) -> None:
    for line in path.read_text(errors="replace").splitlines():
        if LOCAL_RE.match(line):
            log(
                f"Warning: {path.name} installs a local path ({line.strip()}): environments are shared between "
                "builds with the same requirements, so install the Space's own package from a wheel or an index"
            )
            return


def _short(arg: str, cwd: Path) -> str:
    return arg.replace(str(cwd) + "/", "")
