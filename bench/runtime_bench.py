"""Runtime benchmark: what SpaceHub adds on top of an app's own start, each figure against a baseline of the same run.

  commit → first 200     upload_folder of a tiny app to a new Space (requirements cached) until the proxied URL
                         answers, against the same app started bare (its env's python, direct port)
  restart → switched     restart_space until the proxied URL answers from the new process, against a bare start
  gradio commit → 200    the same with a real Gradio app (--no-gradio skips it)

Run: `.venv/bin/python bench/runtime_bench.py` (or `make bench`). Prints a table; exits non-zero only when something
is broken (a Space that never serves), never because of speed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from huggingface_hub import HfApi

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hubserver import free_port, start_server

# The body names the process: its pid and a random id of this start (in a sandbox every start has the same pid)
TINY_APP = """import http.server, os
BOOT = os.urandom(8).hex()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"tiny {os.getpid()} {BOOT}".encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""
GRADIO_APP = """import gradio as gr
gr.Interface(fn=lambda name: "Hello " + name, inputs="text", outputs="text").launch()
"""


def readme(sdk: str = "gradio") -> str:
    return f"---\ntitle: bench\nsdk: {sdk}\napp_file: app.py\n---\n"


def wait_200(url: str, host: str | None, timeout: float, want: str | None = None, avoid: str | None = None) -> float:
    """Seconds until ``url`` answers 200 (containing ``want``, not equal to ``avoid``)."""
    t0 = time.monotonic()
    headers = {"Host": host} if host else {}
    with httpx.Client(timeout=2) as c:
        while time.monotonic() - t0 < timeout:
            try:
                r = c.get(url, headers=headers)
                if r.status_code == 200 and (want is None or want in r.text) and (avoid is None or r.text != avoid):
                    return time.monotonic() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
    raise RuntimeError(f"{url} ({host}) did not answer 200 within {timeout}s")


def push(api: HfApi, repo: str, files: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as d:
        for name, text in files.items():
            Path(d, name).write_text(text)
        api.upload_folder(folder_path=d, repo_id=repo, repo_type="space")


def bare_start(python: Path, app: str, timeout: float) -> float:
    """Seconds from process start to the first 200, for the app run by hand."""
    return bare_start_with(python, app, {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}, timeout)


def bare_start_with(python: Path, app: str, env: dict[str, str], timeout: float) -> float:
    """Seconds from process start to the first 200 for the app run by hand with ``env`` (on its own port)."""
    port = free_port()
    env = {**env, "PORT": str(port), "GRADIO_SERVER_PORT": str(port)}
    with tempfile.TemporaryDirectory() as d:
        Path(d, "app.py").write_text(app)
        t0 = time.monotonic()
        proc = subprocess.Popen([str(python), "app.py"], cwd=d, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            wait_200(f"http://127.0.0.1:{port}/", None, timeout)
            return time.monotonic() - t0
        finally:
            proc.terminate()
            proc.wait(10)


def env_python(data_dir: Path) -> Path:
    """The Python of the (single) Space environment the server built."""
    found = sorted(data_dir.glob("runtime/envs/*/*/bin/python"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise RuntimeError("no Space environment found")
    return found[-1]


def deploy(api: HfApi, srv_url: str, port: int, name: str, files: dict[str, str], timeout: float) -> tuple[float, str]:
    api.create_repo(name, repo_type="space", space_sdk="gradio")
    host = f"{api.space_info(name).subdomain}.localhost:{port}"
    t0 = time.monotonic()
    push(api, name, files)
    wait_200(srv_url + "/", host, timeout)
    return time.monotonic() - t0, host


def remove_spaces(api: HfApi, data_dir: Path, timeout: float = 30) -> None:
    """Delete the benchmark's Spaces so SpaceHub stops their apps (apps outlive a SpaceHub stop by design)."""
    for space in api.list_spaces(author="alice"):
        api.delete_repo(space.id, repo_type="space")
    deadline = time.monotonic() + timeout
    while any((data_dir / "runtime" / "instances").glob("r*")) and time.monotonic() < deadline:
        time.sleep(0.2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-gradio", action="store_true", help="skip the Gradio measurements")
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp, start_server(Path(tmp) / "data") as srv:
        api = HfApi(endpoint=srv.url, token=srv.user("alice"))
        tiny = {"README.md": readme(), "app.py": TINY_APP}
        warm, _ = deploy(api, srv.url, srv.port, "alice/warmup", tiny, args.timeout)
        print(f"first Space (installs its environment): {warm:.2f}s", flush=True)
        python = env_python(srv.data_dir)
        took, host = deploy(api, srv.url, srv.port, "alice/tiny", tiny, args.timeout)
        rows.append(("commit -> first 200 (tiny app, cached env)", took, bare_start(python, TINY_APP, 60)))
        before = httpx.get(srv.url + "/", headers={"Host": host}).text
        t0 = time.monotonic()
        api.restart_space("alice/tiny")
        wait_200(srv.url + "/", host, args.timeout, want="tiny", avoid=before)
        rows.append(("restart -> served by the new process", time.monotonic() - t0, bare_start(python, TINY_APP, 60)))
        if not args.no_gradio:
            bare_start(python, GRADIO_APP, 180)  # warm-up: the first import of gradio compiles its .pyc files
            took, _ = deploy(api, srv.url, srv.port, "alice/gr", {"README.md": readme(), "app.py": GRADIO_APP},
                             args.timeout)  # fmt: skip
            rows.append(("gradio commit -> first 200 (cached env)", took, bare_start(python, GRADIO_APP, 120)))
        remove_spaces(api, srv.data_dir)
    print(f"\n{'measurement':<44} {'SpaceHub':>10} {'bare':>10} {'ratio':>8}")
    for name, ours, bare in rows:
        print(f"{name:<44} {ours:>9.2f}s {bare:>9.2f}s {ours / bare:>7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
