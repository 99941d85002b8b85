"""Fixtures for backend tests: bare git repos holding tiny Spaces, an LFS store, and a LocalProcessBackend whose
instances are all stopped after each test."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pygit2
import pytest

from spacehub.runtime.backends.base import BuildSpec, ReleaseSpec, Resources
from spacehub.runtime.backends.local import LocalProcessBackend
from spacehub.runtime.checkout import RepoFiles
from tests.k8s.conftest import (  # noqa: F401  (the contract suite's)
    control_plane,
    kube,
    kubelet,
    namespace,
    options,
    pod_kube,
    pod_namespace,
    pod_plane,
)

# A Space app on the standard library only: serves HTTP on $PORT, prints a marker and its env var NAMES (never
# values), and misbehaves on request through APP_MODE.
APP = r"""
import http.server, json, os, subprocess, sys, time, urllib.parse

mode = os.environ.get("APP_MODE", "serve")
print("MARKER app starting", flush=True)
print("ENV " + " ".join(sorted(os.environ)), flush=True)
print("to stderr", file=sys.stderr, flush=True)
if mode == "crash":
    sys.exit(3)
if mode == "oom":
    chunks = []
    while True:
        chunks.append(bytearray(16 * 2**20))  # pages are touched: bytearray zero-fills
        print(f"allocated {16 * len(chunks)} MiB", flush=True)
if mode == "child":
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    kid = subprocess.Popen(sleeper)
    escaped = subprocess.Popen(sleeper, start_new_session=True)  # leaves the process group, not the cgroup
    with open(os.environ["PID_FILE"], "w") as f:
        json.dump([os.getpid(), kid.pid, escaped.pid], f)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(url.query)
        if url.path == "/env":
            body = os.environ.get(q["name"][0], "<unset>")
        elif url.path == "/file":
            try:
                body = open(q["path"][0]).read()
            except OSError as e:
                body = f"<error {e}>"
        else:
            body = "hello from the app"
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


# on the address the backend gives (a pod's app must listen on its pod IP: 0.0.0.0 there), else loopback
http.server.ThreadingHTTPServer((os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), int(os.environ["PORT"])),
                                Handler).serve_forever()
"""

README = "---\ntitle: Test\nsdk: {sdk}\n---\n"


@dataclass
class SpaceRepo:
    git_dir: Path
    lfs_dir: Path
    space_id: str

    def commit(self, files: dict[str, bytes | str], lfs: dict[str, bytes] | None = None) -> str:
        """Commit ``files`` (path → content) as the whole tree; ``lfs`` files are stored as pointers + objects."""
        repo = pygit2.Repository(str(self.git_dir))
        blobs: dict[str, pygit2.Oid] = {}
        for path, content in files.items():
            blobs[path] = repo.create_blob(content.encode() if isinstance(content, str) else content)
        for path, content in (lfs or {}).items():
            oid = hashlib.sha256(content).hexdigest()
            obj = self.lfs_dir / oid[:2] / oid[2:4] / oid
            obj.parent.mkdir(parents=True, exist_ok=True)
            obj.write_bytes(content)
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(content)}\n"
            blobs[path] = repo.create_blob(pointer.encode())
        tree = _tree(repo, blobs)
        sig = pygit2.Signature("test", "test@example.com")
        parents = [] if repo.head_is_unborn else [repo.head.target]
        return str(repo.create_commit("refs/heads/main", sig, sig, "commit", tree, parents))


def _tree(repo: pygit2.Repository, blobs: dict[str, pygit2.Oid]) -> pygit2.Oid:
    builder = repo.TreeBuilder()
    subdirs: dict[str, dict[str, pygit2.Oid]] = {}
    for path, oid in blobs.items():
        head, _, rest = path.partition("/")
        if rest:
            subdirs.setdefault(head, {})[rest] = oid
        else:
            builder.insert(head, oid, pygit2.enums.FileMode.BLOB)
    for name, sub in subdirs.items():
        builder.insert(name, _tree(repo, sub), pygit2.enums.FileMode.TREE)
    return builder.write()


@pytest.fixture
def space_repo(tmp_path: Path) -> SpaceRepo:
    git_dir = tmp_path / "repos" / "space1.git"
    pygit2.init_repository(str(git_dir), bare=True, initial_head="main")
    return SpaceRepo(git_dir, tmp_path / "lfs", "space1")


@pytest.fixture(scope="session")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uv-cache")


@pytest.fixture
def make_backend(tmp_path: Path, uv_cache: Path) -> Iterator[Callable[..., LocalProcessBackend]]:
    made: list[LocalProcessBackend] = []

    def make(**kw: object) -> LocalProcessBackend:
        kw.setdefault("sdk_packages", {"gradio": [], "streamlit": []})
        kw.setdefault("uv_cache_dir", uv_cache)
        kw.setdefault("repos", RepoFiles(lambda repo_id: tmp_path / "repos" / f"{repo_id}.git", tmp_path / "lfs"))
        kw.setdefault("run_log", lambda space_id: tmp_path / "run.log")
        b = LocalProcessBackend(tmp_path / "runtime", **kw)  # type: ignore[arg-type]
        made.append(b)
        return b

    yield make
    for b in made:
        for inst in b.list_instances():
            b.stop(inst.release_id)


@pytest.fixture
def backend(make_backend: Callable[..., LocalProcessBackend]) -> LocalProcessBackend:
    return make_backend()


def build_spec(repo: SpaceRepo, sha: str, build_id: str = "b1", sdk: str = "gradio", **kw: object) -> BuildSpec:
    return BuildSpec(
        space_id=repo.space_id,
        build_id=build_id,
        revision=sha,
        sdk=sdk,
        sdk_version=kw.pop("sdk_version", None),  # type: ignore[arg-type]
        python_version=kw.pop("python_version", None),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def release_spec(
    repo: SpaceRepo,
    release_id: str = "r1",
    build_id: str = "b1",
    env: dict[str, str] | None = None,
    resources: Resources | None = None,
    sdk: str = "gradio",
    **kw: object,
) -> ReleaseSpec:
    return ReleaseSpec(
        space_id=repo.space_id,
        release_id=release_id,
        build_id=build_id,
        sdk=sdk,
        app_file="app.py",
        app_port=7860,
        env=env or {},
        resources=resources or Resources(),
        **kw,  # type: ignore[arg-type]
    )


def wait_http(url: str, timeout: float = 20.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            r = httpx.get(url, timeout=1.0)
            if r.status_code == 200:
                return r
        except httpx.HTTPError as e:
            last = e
        time.sleep(0.05)
    raise AssertionError(f"{url} did not answer 200 within {timeout}s: {last}")


def wait_for(pred: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")
