"""Sandbox benchmark: what the Space sandbox (runtime.sandbox = on) adds to a tiny app's start and wakes, against
the same app with the sandbox off, measured in the same run.

Three `spacehub serve` run side by side (local backend, temp data dirs, one shared uv cache so the environment is
installed once): sandbox `off` (the baseline), `on` with `runtime.outbound = open` (slirp4netns attached) and `on`
with `hub-only`. Each round measures every mode in turn (the order rotates), so that the machine's load weighs on
all of them alike:

  cold start -> 200         upload_folder of the tiny stdlib app to a new Space (environment cached) until its URL
                            answers 200 through the proxy (the Space is deleted afterwards)
  wake from stopped -> 200  a request through the proxy to the Space once its process was stopped (deep sleep)
  wake from frozen -> 200   the same while it sleeps in the cgroup freezer (light sleep)
  awake request             the same app's response time through the proxy when awake (median of 10)

Prints medians and p90 (nearest rank) per mode, the difference and ratio of each sandboxed mode against `off`, and
the budget of issue 7: wake from stopped within +100 ms of `off` (medians) and wake from frozen under 20 ms.

With --profile, it then takes a sandboxed start apart, outside SpaceHub (a harness that does what the supervisor
does, with the environment and app of the `off` server): bwrap alone (`true` in a minimal sandbox, against `true`),
the init's interpreter start, and per outbound mode the supervisor's steps (staging mounts in `Sandbox.prepare`,
bwrap's command line, the fork, `Sandbox.started`: slirp4netns attach and bwrap's set-up until it reports) up to the
app's first 200 on its host port, against the same app started bare by the same harness.

Run: `.venv/bin/python bench/sandbox_bench.py [--rounds 8] [--profile] [--json out.json] [--strict]` (~2 min). Exits
non-zero when something is broken (a Space that never serves or never sleeps, a sandbox that is not set up), and
with --strict also when the budget is exceeded; never otherwise because of speed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
from huggingface_hub import HfApi

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hubserver import HubServer, free_port, start_server
from runtime_bench import TINY_APP, bare_start, env_python, push, readme, wait_200
from sleep_bench import SERVER_ENV, stop_apps, timed_get, wait_sleep

MODES = {
    "off": {"SPACEHUB_RUNTIME__SANDBOX": "off"},
    "open": {"SPACEHUB_RUNTIME__SANDBOX": "on", "SPACEHUB_RUNTIME__OUTBOUND": "open"},
    "hub-only": {"SPACEHUB_RUNTIME__SANDBOX": "on", "SPACEHUB_RUNTIME__OUTBOUND": "hub-only"},
}
BASELINE = "off"
STOPPED_BUDGET = 0.100  # seconds over the baseline's wake from stopped (medians)
FROZEN_BUDGET = 0.020  # seconds, a frozen wake's median
MEASURES = ("cold", "stopped", "frozen", "awake")
LABELS = {
    "cold": "cold start -> 200",
    "stopped": "wake from stopped -> 200",
    "frozen": "wake from frozen -> 200",
    "awake": "awake request",
}


class Target:
    """One server (one sandbox mode) and its long-lived tiny Space."""

    def __init__(self, mode: str, srv: HubServer) -> None:
        self.mode, self.srv = mode, srv
        self.api = HfApi(endpoint=srv.url, token=srv.user("alice"))
        self.url = srv.url + "/"
        self.name = "alice/tiny"
        self.host = ""
        self.client = httpx.Client(timeout=120)

    def host_of(self, name: str) -> str:
        return f"{self.api.space_info(name).subdomain}.localhost:{self.srv.port}"

    def deploy(self, name: str, timeout: float) -> tuple[float, str]:
        """Seconds from upload to the first proxied 200 of a new Space named ``name``, and its host."""
        self.api.create_repo(name, repo_type="space", space_sdk="gradio")
        host = self.host_of(name)
        t0 = time.monotonic()
        push(self.api, name, {"README.md": readme(), "app.py": TINY_APP})
        wait_200(self.url, host, timeout)
        return time.monotonic() - t0, host

    def delete(self, name: str, timeout: float = 30) -> None:
        """Delete ``name`` and wait until its app is gone (so that its stop does not weigh on the next figure)."""
        self.api.delete_repo(name, repo_type="space")
        deadline = time.monotonic() + timeout
        while len(list(self.instances())) > 1 and time.monotonic() < deadline:
            time.sleep(0.05)

    def instances(self) -> list[Path]:
        return list((self.srv.data_dir / "runtime" / "instances").glob("*/launch.json"))

    def check_mode(self) -> None:
        """The running instance is set up as this mode says (a benchmark of the wrong thing is worse than none)."""
        launches = [json.loads(p.read_text()) for p in self.instances()]
        if not launches:
            raise RuntimeError(f"{self.mode}: no instance running")
        for launch in launches:
            plan = launch.get("sandbox")
            got = "off" if not plan else plan["outbound"]
            if got != self.mode:
                raise RuntimeError(f"server {self.mode!r} runs an instance with sandbox {got!r}")


def p90(values: list[float]) -> float:
    """The 90th percentile, nearest rank (below 10 rounds: the largest value)."""
    s = sorted(values)
    return s[max(0, math.ceil(0.9 * len(s)) - 1)]


def ms(x: float) -> str:
    return f"{x * 1000:.1f}"


def summary(results: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode, by in results.items():
        out[mode] = {}
        for m, values in by.items():
            row: dict[str, Any] = {"median": statistics.median(values), "p90": p90(values), "values": values}
            if mode != BASELINE:
                base = results[BASELINE][m]
                row["delta"] = row["median"] - statistics.median(base)
                row["ratio"] = row["median"] / statistics.median(base)
                row["paired_delta"] = statistics.median(a - b for a, b in zip(values, base, strict=False))
            out[mode][m] = row
    return out


def budget(stats: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for mode in stats:
        if mode == BASELINE:
            continue
        delta, frozen = stats[mode]["stopped"]["delta"], stats[mode]["frozen"]["median"]
        out[mode] = {
            "stopped_delta": delta,
            "stopped_ok": delta <= STOPPED_BUDGET,
            "frozen": frozen,
            "frozen_ok": frozen < FROZEN_BUDGET,
        }
    return out


def report(stats: dict[str, Any], checks: dict[str, dict[str, Any]], bare: list[float]) -> str:
    modes = list(stats)
    sandboxed = [m for m in modes if m != BASELINE]
    lines = ["", f"{'ms, median (p90)':<26}" + "".join(f"{'sandbox ' + m:>20}" for m in modes)]
    for m in MEASURES:
        cells = (f"{ms(stats[mode][m]['median'])} ({ms(stats[mode][m]['p90'])})" for mode in modes)
        lines.append(f"{LABELS[m]:<26}" + "".join(f"{c:>20}" for c in cells))
    lines.append(f"{'bare start (no SpaceHub)':<26}{ms(statistics.median(bare)) + ' (' + ms(p90(bare)) + ')':>20}")
    lines += ["", f"{'against sandbox off':<26}" + "".join(f"{'Δ ms ' + m:>20}{'ratio':>8}" for m in sandboxed)]
    for m in MEASURES:
        row = f"{LABELS[m]:<26}"
        for mode in sandboxed:
            s = stats[mode][m]
            cell = f"{s['delta'] * 1000:+.1f} ({s['paired_delta'] * 1000:+.1f})"
            row += f"{cell:>20}{s['ratio']:>7.2f}x"
        lines.append(row)
    lines.append("(Δ: difference of the medians; in parentheses the median of the per-round differences)")
    lines.append("")
    for mode, c in checks.items():
        lines.append(
            f"budget {mode}: wake from stopped {c['stopped_delta'] * 1000:+.1f} ms vs off (<= +100): "
            f"{'OK' if c['stopped_ok'] else 'OVER'}; wake from frozen {c['frozen'] * 1000:.1f} ms (< 20): "
            f"{'OK' if c['frozen_ok'] else 'OVER'}"
        )
    return "\n".join(lines)


# ---- --profile: a sandboxed start taken apart -------------------------------------------------------------------
PROFILE_MODES = ("bare", "none", "hub-only", "open")
PHASES = ("prepare", "command", "fork", "started", "to_200")


def first_200(port: int, timeout: float = 30) -> None:
    """Poll http://127.0.0.1:port/ every 2 ms until it answers 200 (a connection the sandbox's init closes because
    the app does not listen yet counts as not yet)."""
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/")
            if conn.getresponse().status == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()
        time.sleep(0.002)
    raise RuntimeError(f"127.0.0.1:{port} did not answer 200 within {timeout}s")


def profile_child(spec: dict[str, Any]) -> dict[str, float]:
    """One start, as the supervisor does it (supervise.py: Supervisor.run), timed step by step. Runs in a process of
    its own: as root, ``Sandbox.prepare`` moves its caller into a private mount namespace."""
    from spacehub.runtime import sandbox as sb
    from spacehub.runtime.sandbox_run import Sandbox

    port, mode = free_port(), spec["mode"]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PORT": str(port)}
    out = dict.fromkeys(PHASES, 0.0)
    box = None
    t0 = time.perf_counter()
    if mode == "bare":
        proc = subprocess.Popen([spec["python"], "app.py"], cwd=spec["app_dir"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, process_group=0)  # fmt: skip
        t = time.perf_counter()
        out["fork"] = t - t0
    else:
        plan = sb.plan(
            space_id="alice/profile", hostname="r-alice-profile", app_dir=spec["app_dir"], python=spec["python"],
            home=spec["home"], data=spec["data"], data_writable=True, volumes=[], devices=(),
            hub_url=spec["hub_url"], outbound=mode, seccomp_file=spec["seccomp"], app_port=port,
        )  # fmt: skip
        box = Sandbox(plan, port)
        t0 = time.perf_counter()
        binds = box.prepare()
        t1 = time.perf_counter()
        argv, fds = box.command(binds, [f"{sb.VENV}/bin/python", "app.py"], sb.APP_DIR)
        t2 = time.perf_counter()
        env |= {"HOME": sb.HOME, "PATH": f"{sb.VENV}/bin:/usr/bin:/bin", "VIRTUAL_ENV": sb.VENV}
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, process_group=0, pass_fds=fds,
                                preexec_fn=box.preexec)  # fmt: skip
        t3 = time.perf_counter()
        box.started()
        t = time.perf_counter()
        out |= {"prepare": t1 - t0, "command": t2 - t1, "fork": t3 - t2, "started": t - t3}
    try:
        first_200(port)
        out["to_200"] = time.perf_counter() - t
        out["total"] = time.perf_counter() - t0
    finally:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if box is not None:
            box.close()
    return out


def time_runs(cmd: list[str], n: int, preexec: Any = None) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=preexec)
        out.append(time.perf_counter() - t0)
    return out


def profile(python: Path, app_dir: Path, workdir: Path, rounds: int) -> dict[str, Any]:
    """Medians (seconds) of the pieces of a sandboxed start; see the module's docstring."""
    from spacehub.runtime import sandbox as sb

    t0 = time.perf_counter()
    program = sb.seccomp_program()
    compile_s = time.perf_counter() - t0
    seccomp = workdir / "seccomp.bpf"
    seccomp.write_bytes(program)
    seccomp.chmod(0o644)
    uid = sb.host_uid("alice/profile")
    check_cmd = [sb.bwrap_path() or "bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--uid", "1000"]
    check_cmd += ["--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib"]
    check_cmd += ["--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev"]
    drop = sb.drop_to(uid) if uid is not None else None
    n = max(5, 3 * rounds)
    micro = {
        "true": time_runs(["/usr/bin/true"], n, drop),
        "bwrap minimal, true": time_runs([*check_cmd, "--", "/usr/bin/true"], n, drop),
        "bwrap minimal + seccomp, true": [],
        "init interpreter (python -I -S, its imports)": time_runs(
            [str(python), "-I", "-S", "-c", "import json, os, signal, socket, subprocess, sys, threading"], n
        ),
        "bare interpreter (python -I -S -c pass)": time_runs([str(python), "-I", "-S", "-c", "pass"], n),
    }
    for _ in range(n):  # bwrap reads the program from an fd
        fd = os.open(seccomp, os.O_RDONLY)
        t = time.perf_counter()
        subprocess.run([*check_cmd, "--seccomp", str(fd), "--", "/usr/bin/true"], check=True, pass_fds=(fd,),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=drop)  # fmt: skip
        micro["bwrap minimal + seccomp, true"].append(time.perf_counter() - t)
        os.close(fd)
    spec = {"python": str(python), "app_dir": str(app_dir), "seccomp": str(seccomp), "hub_url": "http://hub:8000"}
    spec |= {"home": str(workdir / "home"), "data": str(workdir / "data")}
    runs: dict[str, list[dict[str, float]]] = {m: [] for m in PROFILE_MODES}
    for r in range(rounds):
        for mode in PROFILE_MODES[r % 4 :] + PROFILE_MODES[: r % 4]:
            child = json.dumps({**spec, "mode": mode})
            done = subprocess.run([sys.executable, __file__, "--profile-child"], input=child, capture_output=True,
                                  text=True, check=True, timeout=120)  # fmt: skip
            runs[mode].append(json.loads(done.stdout.strip().splitlines()[-1]))
    steps = {m: {k: statistics.median(x[k] for x in rs) for k in [*PHASES, "total"]} for m, rs in runs.items()}
    return {
        "seccomp_compile": compile_s,
        "micro": {k: statistics.median(v) for k, v in micro.items()},
        "steps": steps,
        "rounds": rounds,
    }


def profile_report(prof: dict[str, Any]) -> str:
    lines = ["", f"profile (medians, ms; {prof['rounds']} starts per mode, outside SpaceHub)"]
    lines.append(f"  seccomp program compiled by libseccomp (once per server): {ms(prof['seccomp_compile'])}")
    for k, v in prof["micro"].items():
        lines.append(f"  {k:<46} {ms(v):>8}")
    lines.append(f"  {'start step':<12}" + "".join(f"{m:>10}" for m in PROFILE_MODES))
    for k in [*PHASES, "total"]:
        lines.append(f"  {k:<12}" + "".join(f"{ms(prof['steps'][m][k]):>10}" for m in PROFILE_MODES))
    lines.append(
        "  (started: Sandbox.started, i.e. waiting for bwrap's set-up report, attaching slirp4netns with open; "
        "to_200: from there to the app's first 200 on its host port)"
    )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--json", type=Path, help="also write every figure here")
    ap.add_argument("--strict", action="store_true", help="exit 2 when a sandboxed mode is over the budget")
    ap.add_argument("--profile", action="store_true", help="then take a sandboxed start apart (see above)")
    ap.add_argument("--profile-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.profile_child:  # one timed start for --profile (a JSON spec on stdin, the timings on stdout)
        print(json.dumps(profile_child(json.loads(sys.stdin.read()))))
        return 0
    prof: dict[str, Any] | None = None
    results: dict[str, dict[str, list[float]]] = {mode: {m: [] for m in MEASURES} for mode in MODES}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        uv_cache = Path(tmp) / "uv-cache"
        data_dirs = [Path(tmp) / mode / "data" for mode in MODES]
        stack.callback(lambda: [stop_apps(d) for d in data_dirs])  # apps outlive SpaceHub by design: stop them
        targets: list[Target] = []
        for mode, env in MODES.items():
            env = {**SERVER_ENV, **env, "SPACEHUB_RUNTIME__UV_CACHE_DIR": str(uv_cache)}
            srv = stack.enter_context(start_server(Path(tmp) / mode / "data", env=env))
            t = Target(mode, srv)
            stack.callback(t.client.close)
            t0 = time.monotonic()
            _, t.host = t.deploy(t.name, args.timeout)  # the first one installs the environment (shared uv cache)
            t.check_mode()
            print(f"{mode}: first Space serves after {time.monotonic() - t0:.2f}s", flush=True)
            targets.append(t)
        bare = [bare_start(env_python(targets[0].srv.data_dir), TINY_APP, 60) for _ in range(3)]

        def rotated(r: int) -> list[Target]:
            return targets[r % len(targets) :] + targets[: r % len(targets)]

        for r in range(args.rounds):  # cold starts: a new Space each time, deleted once measured
            for t in rotated(r):
                took, _ = t.deploy(f"alice/cold-{r}", args.timeout)
                results[t.mode]["cold"].append(took)
                t.delete(f"alice/cold-{r}")
        print("cold starts done", flush=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the client warns on cpu-basic; these servers allow it
            for t in targets:
                t.api.set_space_sleep_time(t.name, 1)
        for r in range(args.rounds):  # the Spaces fall asleep side by side; each wake is measured alone
            order = rotated(r)
            for t in order:
                timed_get(t.client, t.url, t.host)  # awake (a wake may be a start)
                awake = statistics.median(timed_get(t.client, t.url, t.host) for _ in range(10))
                results[t.mode]["awake"].append(awake)
            for t in order:
                wait_sleep(t.api, t.name, "frozen")
                results[t.mode]["frozen"].append(timed_get(t.client, t.url, t.host))
            for t in order:
                wait_sleep(t.api, t.name, "stopped")
                results[t.mode]["stopped"].append(timed_get(t.client, t.url, t.host))
                t.check_mode()
            print(f"round {r + 1}/{args.rounds} done", flush=True)
        if args.profile:
            app_dir = Path(tmp) / "profile" / "app"
            app_dir.mkdir(parents=True)
            (app_dir / "app.py").write_text(TINY_APP)
            prof = profile(env_python(targets[0].srv.data_dir), app_dir, app_dir.parent, args.rounds)
    stats = summary(results)
    checks = budget(stats)
    print(report(stats, checks, bare))
    if prof is not None:
        print(profile_report(prof))
    if args.json:
        figures = {"stats": stats, "budget": checks, "bare_start": bare, "profile": prof}
        args.json.write_text(json.dumps(figures, indent=1))
    over = any(not (c["stopped_ok"] and c["frozen_ok"]) for c in checks.values())
    return 2 if args.strict and over else 0


if __name__ == "__main__":
    sys.exit(main())
