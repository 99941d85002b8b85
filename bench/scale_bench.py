"""Scale benchmark (issue 12): SpaceHub with N Spaces, M of them running tiny apps, each figure beside a baseline of
the same run.

  create rate            N creates through HfApi.create_repo (static Spaces): the last tenth against the first
  idle CPU, RSS          the server (its threads, its children) with no request at all, at N Spaces against the same
                         server with only the M running ones and one static Space, before the N creates
  change -> action       restart_space of a running app until the proxied URL answers from a new process, and a
                         commit to a static Space until the proxy serves it: at N against before the creates
  list_spaces            list_spaces(limit=1000): at N against before the creates
  API reads              wrk (Debian's) against get_space_runtime, space_info and whoami-v2 at 1, 8 and 64
                         connections, and the runtimes of up to 1,000 Spaces in turn ("runtime of N": a poller of
                         many Spaces): req/s, p99 and server CPU per request, beside the same server's cheapest
                         endpoint (GET /api/agent-harnesses: no database, no token) measured in the same run

The server is a real `spacehub serve` on a temporary data dir with the defaults of the README's server (local
backend, sandbox on, embedded proxy). Progress goes to stderr, the table to stdout. It exits 1 only when something
is broken (a request fails, a Space never serves), never because something is slow.

Run: `.venv/bin/python bench/scale_bench.py --spaces 1000 --running 10` (~5 min at 1,000);
the suite's small form: `--spaces 20 --running 1 --idle-seconds 2 --wrk-seconds 1`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from huggingface_hub import HfApi

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hubserver import HubServer, proc_cpu_seconds, proc_status_kb, start_server
from runtime_bench import TINY_APP, push, readme, wait_200

BASELINE_PATH = "/api/agent-harnesses"  # the cheapest endpoint: a constant answer, no database, no token
WARMUP_SECONDS = 1  # a wrk run on each path before the measured ones


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


# ---- CPU of the server and its children (/proc) ---------------------------------------------------------------
def descendants(pid: int) -> list[int]:
    """Live descendants of ``pid``. Space apps are not among them: their supervisors detach (double fork)."""
    parent: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        todo += kids
    return out


def hub_cpu(pid: int) -> float:
    """CPU seconds of the server so far: its threads, its finished children, and its live descendants."""
    total = proc_cpu_seconds(pid) or 0.0
    for child in descendants(pid):
        total += proc_cpu_seconds(child) or 0.0
    return total


# ---- wrk ------------------------------------------------------------------------------------------------------
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


ROTATE_LUA = """paths = {%s}
i = 0
request = function()
  i = i + 1
  return wrk.format(nil, paths[i %% #paths + 1])
end
"""


def rotating(tmp: Path, paths: list[str]) -> Path:
    """A wrk script that asks for ``paths`` in turn, one after the other over all connections (wrk -t1: one Lua
    state): the load of a poller of many Spaces, where no two requests in a row are for the same one."""
    script = tmp / "rotate.lua"
    script.write_text(ROTATE_LUA % ", ".join(f'"{p}"' for p in paths))
    return script


def run_wrk(srv: HubServer, path: str, token: str | None, connections: int, seconds: int,
            script: Path | None = None) -> dict[str, float]:  # fmt: skip
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script is not None:
        cmd += ["-s", str(script)]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    cpu0 = hub_cpu(srv.pid)
    out = subprocess.run([*cmd, srv.url + path], capture_output=True, text=True, timeout=seconds + 60).stdout
    cpu = hub_cpu(srv.pid) - cpu0
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    if rps and total and int(total.group(1)) == 0:  # none answered within the run: n/a, not broken
        return {"rps": 0.0, "p99_ms": float("nan"), "requests": 0, "cpu_us_per_request": float("nan")}
    if not (rps and total and p99):
        raise RuntimeError(f"unexpected wrk output: {out}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if bad or (errors and any(int(x) for x in errors.groups())):
        raise RuntimeError(f"wrk saw failed requests on {path}: {out}")
    n = int(total.group(1))
    return {
        "rps": float(rps.group(1)),
        "p99_ms": float(p99.group(1)) * _UNITS[p99.group(2)],
        "requests": n,
        "cpu_us_per_request": cpu / max(n, 1) * 1e6,
    }


# ---- the measurements -----------------------------------------------------------------------------------------
def idle(srv: HubServer, seconds: float) -> dict[str, float]:
    """Server CPU with no request at all, over ``seconds``, as % of one core, and its RSS at the end."""
    la0 = os.getloadavg()[0]
    cpu0, t0 = hub_cpu(srv.pid), time.monotonic()
    time.sleep(seconds)
    cpu, wall = hub_cpu(srv.pid) - cpu0, time.monotonic() - t0
    rss = sum(proc_status_kb(pid, "VmRSS") or 0 for pid in [srv.pid, *descendants(srv.pid)])  # HTTP workers too
    return {"cpu_pct": 100 * cpu / wall, "cpu_s_per_min": 60 * cpu / wall, "rss_mb": rss / 1024, "seconds": wall,
            "load": (la0 + os.getloadavg()[0]) / 2}  # fmt: skip


def restart_to_new_process(api: HfApi, srv: HubServer, space: str, host: str, timeout: float) -> float:
    """restart_space until the proxied URL answers from a new process (the app's body names its start)."""
    before = httpx.get(srv.url + "/", headers={"Host": host}, timeout=10).text
    t0 = time.monotonic()
    api.restart_space(space)
    wait_200(srv.url + "/", host, timeout, want="tiny", avoid=before)
    return time.monotonic() - t0


def commit_to_served(api: HfApi, srv: HubServer, space: str, host: str, tag: str, timeout: float) -> float:
    """A commit to a static Space until its proxied page serves the new content."""
    t0 = time.monotonic()
    api.upload_file(path_or_fileobj=f"<p>{tag}</p>".encode(), path_in_repo="index.html", repo_id=space,
                    repo_type="space")  # fmt: skip
    wait_200(srv.url + "/", host, timeout, want=tag)
    return time.monotonic() - t0


def list_latency(api: HfApi, rounds: int = 3) -> tuple[float, int]:
    """Best of ``rounds`` list_spaces(limit=1000) (seconds) and how many Spaces it returned."""
    best, n = float("inf"), 0
    for _ in range(rounds):
        t0 = time.monotonic()
        n = len(list(api.list_spaces(limit=1000)))
        best = min(best, time.monotonic() - t0)
    return best, n


def changes(api: HfApi, srv: HubServer, running: str, run_host: str, static: str, static_host: str, tag: str,
            timeout: float, rounds: int) -> dict[str, float]:  # fmt: skip
    restart = [restart_to_new_process(api, srv, running, run_host, timeout) for _ in range(rounds)]
    commit = [commit_to_served(api, srv, static, static_host, f"{tag}-{i}", timeout) for i in range(rounds)]
    return {"restart_s": statistics.median(restart), "commit_s": statistics.median(commit)}


def create_many(api: HfApi, srv: HubServer, names: list[str]) -> list[tuple[float, float]]:
    """Create static Spaces one after the other: (wall seconds, server CPU seconds) of each."""
    out = []
    for i, name in enumerate(names):
        cpu0, t0 = proc_cpu_seconds(srv.pid) or 0.0, time.monotonic()
        api.create_repo(name, repo_type="space", space_sdk="static")
        out.append((time.monotonic() - t0, (proc_cpu_seconds(srv.pid) or 0.0) - cpu0))
        if (i + 1) % max(1, len(names) // 10) == 0:
            log(f"  created {i + 1}/{len(names)} ({out[-1][0] * 1000:.0f} ms the last, load {load()})")
    return out


def tenth(times: list[tuple[float, float]], last: bool) -> tuple[float, float]:
    """Creates per second and server CPU ms per create over the first (or last) tenth."""
    k = max(1, len(times) // 10)
    part = times[-k:] if last else times[:k]
    return len(part) / sum(t for t, _ in part), 1000 * sum(c for _, c in part) / len(part)


# ---- the run --------------------------------------------------------------------------------------------------
def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    if args.database == "sqlite":
        return run_on(args, tmp, {})
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.postgres import throwaway_cluster

    with throwaway_cluster() as cluster:
        log(f"PostgreSQL cluster on port {cluster.port}")
        return run_on(args, tmp, {"SPACEHUB_DB__URL": cluster.create_database()})


def run_on(args: argparse.Namespace, tmp: Path, env: dict[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = {"args": vars(args), "load_start": load(), "cpus": os.cpu_count()}
    if args.reconcile_interval:
        env["SPACEHUB_RUNTIME__RECONCILE_INTERVAL"] = str(args.reconcile_interval)
    env["SPACEHUB_SERVER__WORKERS"] = str(args.workers)
    with start_server(tmp / "data", env) as srv:
        token = srv.user("alice")
        api = HfApi(endpoint=srv.url, token=token)
        running = [f"alice/app-{i:03d}" for i in range(args.running)]
        try:
            return measure(args, srv, api, token, running, result)
        finally:
            log("removing the running Spaces (apps outlive a SpaceHub stop by design)")
            for name in running:
                try:
                    api.delete_repo(name, repo_type="space", missing_ok=True)
                except Exception as e:  # cleanup goes on
                    log(f"  could not delete {name}: {e}")
            deadline = time.monotonic() + 30
            while any((srv.data_dir / "runtime" / "instances").glob("r*")) and time.monotonic() < deadline:
                time.sleep(0.2)


def measure(args: argparse.Namespace, srv: HubServer, api: HfApi, token: str, running: list[str],
            result: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    # M running tiny apps (plain Python: a stdlib HTTP server in a gradio Space), and one static Space to commit to
    t0 = time.monotonic()
    hosts = {}
    for name in running:
        api.create_repo(name, repo_type="space", space_sdk="gradio")
        hosts[name] = f"{api.space_info(name).subdomain}.localhost:{srv.port}"
        push(api, name, {"README.md": readme(), "app.py": TINY_APP})
    for name in running:
        wait_200(srv.url + "/", hosts[name], args.timeout, want="tiny")
    log(f"{len(running)} tiny apps running after {time.monotonic() - t0:.1f}s")
    static = "alice/probe-static"
    api.create_repo(static, repo_type="space", space_sdk="static")
    static_host = f"{api.space_info(static).subdomain}.localhost:{srv.port}"
    probe_run, probe_host = (running[0], hosts[running[0]]) if running else (None, None)

    def change_figures(tag: str) -> dict[str, float]:
        if probe_run is None:
            return {"commit_s": commit_to_served(api, srv, static, static_host, tag, args.timeout)}
        return changes(api, srv, probe_run, probe_host, static, static_host, tag, args.timeout, args.change_rounds)

    # before: the same server with only those Spaces (the baseline of the idle, change and list figures)
    log(f"before: idle {args.idle_seconds:.0f}s, changes, list (load {load()})")
    time.sleep(args.settle)
    result["before"] = {"spaces": len(running) + 1, "idle": idle(srv, args.idle_seconds),
                        "change": change_figures("before"), "list_s": list_latency(api)[0]}  # fmt: skip

    # N creates
    todo = max(0, args.spaces - len(running) - 1)
    log(f"creating {todo} static Spaces (load {load()})")
    times = create_many(api, srv, [f"alice/s{i:05d}" for i in range(todo)])
    result["create"] = {"count": todo, "first_tenth": tenth(times, last=False), "last_tenth": tenth(times, last=True),
                        "all_wall_s": [round(t, 5) for t, _ in times]}  # fmt: skip
    target = f"alice/s{todo // 2:05d}" if todo else static

    log(f"at {args.spaces}: idle {args.idle_seconds:.0f}s, changes, list (load {load()})")
    time.sleep(args.settle)
    list_s, listed = list_latency(api)
    result["after"] = {"spaces": args.spaces, "idle": idle(srv, args.idle_seconds), "change": change_figures("after"),
                       "list_s": list_s, "listed": listed}  # fmt: skip

    # API reads with wrk, each level beside the cheapest endpoint at the same level
    result["wrk"] = {}
    if not shutil.which("wrk"):
        result["wrk_missing"] = "wrk is not installed (scripts/install-system-deps installs it)"
        return result
    # the runtimes of up to 1,000 Spaces in turn: a poller of many Spaces (each answer kept, but its mark read anew)
    many = [f"/api/spaces/alice/s{i:05d}/runtime" for i in range(0, todo, max(1, todo // 1000))][:1000] or \
        [f"/api/spaces/{target}/runtime"]  # fmt: skip
    script = rotating(srv.data_dir.parent, many)
    reads: dict[str, tuple[str, str | None, Path | None]] = {
        "get_space_runtime": (f"/api/spaces/{target}/runtime", token, None),
        "space_info": (f"/api/spaces/{target}", token, None),
        "whoami-v2": ("/api/whoami-v2", token, None),
        f"runtime of {len(many)}": (many[0], token, script),
    }
    for path, tok, lua in [(BASELINE_PATH, None, None), *reads.values()]:  # warm-up, not reported: connections,
        run_wrk(srv, path, tok, max(args.connections), WARMUP_SECONDS, lua)  # tokens, kept answers, the pools
    for c in args.connections:
        base = run_wrk(srv, BASELINE_PATH, None, c, args.wrk_seconds)
        result["wrk"][f"baseline c{c}"] = {**base, "load": load()}
        log(f"  wrk c={c} baseline {base['rps']:.0f} req/s (load {load()})")
        for name, (path, tok, lua) in reads.items():
            r = run_wrk(srv, path, tok, c, args.wrk_seconds, lua)
            result["wrk"][f"{name} c{c}"] = {**r, "load": load()}
            log(f"  wrk c={c} {name} {r['rps']:.0f} req/s p99 {r['p99_ms']:.1f} ms")
    result["load_end"] = load()
    return result


def report(res: dict[str, Any]) -> None:
    b, a, c = res["before"], res["after"], res["create"]
    n0, n1 = b["spaces"], a["spaces"]
    args = res["args"]
    print(f"\nserver: {args['database']} database, {args['workers']} HTTP worker(s)"
          f"{' beside a controller' if args['workers'] > 1 else ' (one process)'}")  # fmt: skip
    print(f"\n{'measurement':<44} {'SpaceHub':>11} {'baseline':>11} {'ratio':>7}  baseline")
    print("-" * 110)

    def row(name: str, ours: float, base: float, unit: str, what: str) -> None:
        ratio = f"{ours / base:6.2f}x" if round(base, 1) else "    n/a"  # no ratio to a baseline printed as 0.0
        print(f"{name:<44} {ours:>9.1f}{unit:<2} {base:>9.1f}{unit:<2} {ratio}  {what}")

    if c["count"]:
        (r0, cpu0), (r1, cpu1) = c["first_tenth"], c["last_tenth"]
        row(f"create rate, last tenth of {c['count']} (/s)", r1, r0, "", "the first tenth")
        row("server CPU per create, last tenth", cpu1, cpu0, "ms", "the first tenth")
    row(f"idle CPU at {n1} Spaces (% of a core)", a["idle"]["cpu_pct"], b["idle"]["cpu_pct"], "%", f"at {n0} Spaces")
    row(f"server RSS at {n1} Spaces", a["idle"]["rss_mb"], b["idle"]["rss_mb"], "MB", f"at {n0} Spaces")
    if "restart_s" in a["change"]:
        row("restart -> served by the new process", a["change"]["restart_s"] * 1000,
            b["change"]["restart_s"] * 1000, "ms", f"at {n0} Spaces")  # fmt: skip
    row("static commit -> served by the proxy", a["change"]["commit_s"] * 1000, b["change"]["commit_s"] * 1000, "ms",
        f"at {n0} Spaces")  # fmt: skip
    row(f"list_spaces(limit=1000): {a['listed']} Spaces", a["list_s"] * 1000, b["list_s"] * 1000, "ms",
        f"at {n0} Spaces")  # fmt: skip
    ia, ib = a["idle"], b["idle"]
    print(f"idle CPU: {ia['cpu_s_per_min']:.2f} s per minute at {n1} Spaces, {ib['cpu_s_per_min']:.2f} s at {n0} "
          f"(load {ia['load']:.1f} / {ib['load']:.1f})")  # fmt: skip
    if res.get("wrk_missing"):
        print(f"API reads: n/a ({res['wrk_missing']})")
    elif res["wrk"]:
        print(f"\n{'API read (wrk)':<24} {'req/s':>7} {'p99 ms':>7} {'CPU us/req':>10}   "
              f"{'baseline req/s':>14} {'p99 ms':>7} {'CPU us/req':>10}  {'req/s ratio':>11} {'CPU ratio':>9}  "
              "load")  # fmt: skip
        for key, r in res["wrk"].items():
            if key.startswith("baseline"):
                continue
            base = res["wrk"]["baseline " + key.rsplit(" ", 1)[1]]
            if not (r["requests"] and base["requests"]):
                print(f"{key:<24} n/a: no request answered within the run (too short for this load)")
                continue
            print(f"{key:<24} {r['rps']:>7.0f} {r['p99_ms']:>7.1f} {r['cpu_us_per_request']:>10.0f}   "
                  f"{base['rps']:>14.0f} {base['p99_ms']:>7.1f} {base['cpu_us_per_request']:>10.0f}  "
                  f"{r['rps'] / base['rps']:>10.2f}x "
                  f"{r['cpu_us_per_request'] / base['cpu_us_per_request']:>8.1f}x  {r['load']}")  # fmt: skip
        print(f"baseline: GET {BASELINE_PATH} (no database, no token) on the same server, same connections")
    print(f"load average: {res['load_start']} at the start, {res.get('load_end', load())} at the end "
          f"({res['cpus']} CPUs)")  # fmt: skip


def connections(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spaces", type=int, default=1000, help="N: Spaces in all (default 1000)")
    ap.add_argument("--running", type=int, default=10, help="M: of them running tiny apps (default 10)")
    ap.add_argument("--idle-seconds", type=float, default=60, help="idle CPU window, each side (default 60)")
    ap.add_argument("--settle", type=float, default=5, help="seconds to wait before each idle window (default 5)")
    ap.add_argument("--wrk-seconds", type=int, default=5, help="seconds per wrk run (default 5)")
    ap.add_argument("--connections", type=connections, default=[1, 8, 64], help="wrk connections (default 1,8,64)")
    ap.add_argument("--change-rounds", type=int, default=3, help="changes per side; the median is kept (default 3)")
    ap.add_argument("--reconcile-interval", type=float, default=None, help="runtime.reconcile_interval (default: the "
                    "server's)")  # fmt: skip
    ap.add_argument("--timeout", type=float, default=300, help="seconds a Space may take to serve (default 300)")
    ap.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server.workers: HTTP worker processes (default 1: one process; above 1, a controller beside them)",
    )
    ap.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite",
                    help="the server's database: SQLite in its data dir (default), or a throwaway PostgreSQL cluster "
                    "(Debian's server binaries, tests/postgres.py)")  # fmt: skip
    ap.add_argument("--json", type=Path, help="also write every figure as JSON")
    ap.add_argument("--workdir", type=Path, help="where the temporary folder goes (default: system temp)")
    ap.add_argument("--keep", action="store_true", help="keep that folder (the server log is in it)")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="scale-bench-", dir=args.workdir))
    try:
        res = run(args, tmp)
    except Exception as e:  # broken, whatever broke: say it, exit 1
        log(f"broken: {type(e).__name__}: {e}")
        return 1
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report(res)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
