"""Sleep benchmark: how fast a sleeping Space answers again, each figure against a baseline of the same run.

  wake from frozen -> 200    a request through the proxy to a Space asleep in the cgroup freezer (light sleep),
                             against the same app's response time through the proxy when awake
  wake from stopped -> 200   the same for a Space whose process was stopped (deep sleep), against the same app
                             started bare (its environment's `python app.py`, polling its port directly), both
                             with a plain environment and with the Space's own (read from the running app's
                             /proc/PID/environ: SYSTEM=spaces, SPACE_ID… change what Gradio does at start)
  secret change -> switched  add_space_secret until the proxied URL answers from the new process (zero-downtime
                             restart, same build), against a bare start; "n/a" without the secrets API

For the tiny stdlib app and (unless --no-gradio) a Gradio app. The server allows custom sleep times on free hardware
and passes every 0.2 s, so that a Space sleeps 1 s after its last request and is stopped 3 s later.

Run: `.venv/bin/python bench/sleep_bench.py [--rounds 5] [--no-gradio]`. Prints a table of medians (min-max); exits
non-zero only when something is broken (a Space that never serves or never sleeps), never because of speed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import httpx
from huggingface_hub import HfApi

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hubserver import start_server
from runtime_bench import GRADIO_APP, TINY_APP, bare_start, bare_start_with, env_python, push, readme, wait_200

DEEP_AFTER = 3.0
SERVER_ENV = {
    "SPACEHUB_RUNTIME__BACKEND": "local",
    "SPACEHUB_RUNTIME__RECONCILE_INTERVAL": "0.2",
    "SPACEHUB_RUNTIME__CUSTOM_SLEEP_ON_FREE_HARDWARE": "true",
    "SPACEHUB_RUNTIME__DEEP_SLEEP_AFTER": str(DEEP_AFTER),
    "SPACEHUB_RUNTIME__MIN_AVAILABLE_MEMORY_MB": "0",
}


def space_environ(data_dir: Path) -> dict[str, str]:
    """The environment of the (single) running Space app, from /proc (we run as its parent's user)."""
    for state in data_dir.glob("runtime/instances/*/state.json"):
        pid = json.loads(state.read_text())["pid"]
        raw = Path(f"/proc/{pid}/environ").read_bytes()
        return dict(x.split("=", 1) for x in raw.decode(errors="replace").split("\0") if "=" in x)
    raise RuntimeError("no running Space app")


def stop_apps(data_dir: Path) -> None:
    """Stop every app the server started (thawing frozen ones), with the local backend's own stop."""
    from spacehub.runtime.backends.local import LocalProcessBackend

    if (data_dir / "runtime").is_dir():
        backend = LocalProcessBackend(data_dir / "runtime")
        for inst in backend.list_instances():
            backend.stop(inst.release_id)


def timed_get(client: httpx.Client, url: str, host: str) -> float:
    t0 = time.perf_counter()
    r = client.get(url, headers={"Host": host})
    took = time.perf_counter() - t0
    if r.status_code != 200:
        raise RuntimeError(f"{host}: HTTP {r.status_code} {r.text[:200]!r}")
    return took


def wait_sleep(api: HfApi, repo: str, mode: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raw = api.get_space_runtime(repo).raw  # the Hub API: not a visit, it does not wake the Space
        if raw["stage"] == "SLEEPING" and raw.get("sleepMode") == mode:
            return
        time.sleep(0.05)
    raise RuntimeError(f"{repo} did not reach sleep mode {mode!r}: {api.get_space_runtime(repo).raw}")


def deploy(api: HfApi, srv_url: str, port: int, name: str, app: str, timeout: float) -> str:
    api.create_repo(name, repo_type="space", space_sdk="gradio")
    host = f"{api.space_info(name).subdomain}.localhost:{port}"
    push(api, name, {"README.md": readme(), "app.py": app})
    wait_200(srv_url + "/", host, timeout)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the client warns on cpu-basic; this server allows it
        api.set_space_sleep_time(name, 1)
    return host


def measure(api: HfApi, url: str, host: str, name: str, rounds: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"awake": [], "frozen": [], "stopped": []}
    with httpx.Client(timeout=300) as c:
        for _ in range(rounds):
            timed_get(c, url, host)  # warm (and awake)
            out["awake"].append(statistics.median(timed_get(c, url, host) for _ in range(20)))
            wait_sleep(api, name, "frozen")
            out["frozen"].append(timed_get(c, url, host))
            wait_sleep(api, name, "stopped")
            out["stopped"].append(timed_get(c, url, host))
    return out


def secret_restart(api: HfApi, url: str, host: str, name: str) -> float | None:
    """Seconds from add_space_secret to the first 200 from the new process, or None without the secrets API."""
    api.set_space_sleep_time(name, -1)
    before = httpx.get(url, headers={"Host": host}).text
    t0 = time.monotonic()
    try:
        api.add_space_secret(name, "BENCH_SECRET", f"v{time.time_ns()}")
    except Exception as e:  # a server without the secrets API
        if getattr(getattr(e, "response", None), "status_code", None) in (404, 405, 501):
            return None
        raise
    wait_200(url, host, 300, avoid=before)
    return time.monotonic() - t0


def fmt(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0] * 1000:.1f} ms"
    return f"{statistics.median(values) * 1000:.1f} ms ({min(values) * 1000:.1f}-{max(values) * 1000:.1f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-gradio", action="store_true", help="skip the Gradio measurements")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    apps = [("tiny", TINY_APP)] + ([] if args.no_gradio else [("gradio", GRADIO_APP)])
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            with start_server(Path(tmp) / "data", env=SERVER_ENV) as srv:
                api = HfApi(endpoint=srv.url, token=srv.user("alice"))
                for label, app in apps:
                    name = f"alice/sleep-{label}"
                    host = deploy(api, srv.url, srv.port, name, app, args.timeout)
                    python = env_python(srv.data_dir)
                    if label == "gradio":
                        bare_start(python, app, 180)  # warm-up: the first import of gradio compiles its .pyc files
                    bare = [bare_start(python, app, 180) for _ in range(min(args.rounds, 3))]
                    with httpx.Client(timeout=args.timeout) as c:
                        timed_get(c, srv.url + "/", host)  # awake (a wake may be a start), to read its environment
                    env = space_environ(srv.data_dir)
                    bare_env = [bare_start_with(python, app, env, 180) for _ in range(min(args.rounds, 3))]
                    m = measure(api, srv.url + "/", host, name, args.rounds)
                    rows.append((f"{label}: wake from frozen -> 200", fmt(m["frozen"]), f"awake {fmt(m['awake'])}"))
                    rows.append((f"{label}: wake from stopped -> 200", fmt(m["stopped"]),
                                 f"bare start {fmt(bare)}; with the Space's environment {fmt(bare_env)}"))  # fmt: skip
                    took = secret_restart(api, srv.url + "/", host, name)
                    rows.append((f"{label}: secret change -> new process", "n/a" if took is None else fmt([took]),
                                 f"bare start {fmt(bare)}"))  # fmt: skip
                    print(f"{label} done", flush=True)
        finally:
            stop_apps(Path(tmp) / "data")  # apps outlive SpaceHub by design: stop them, frozen ones too
    print(f"\n{'measurement':<40} {'SpaceHub':>26}   baseline")
    for name, ours, base in rows:
        print(f"{name:<40} {ours:>26}   {base}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
