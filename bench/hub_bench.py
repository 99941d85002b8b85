"""SpaceHub benchmark: every figure is a ratio against a baseline measured in the same run on the same disk.

Machines are shared and noisy, so nothing here is a pass/fail threshold: the script exits non-zero only when
something is broken (a failed request, content that does not match), never because something is slow.

    .venv/bin/python bench/hub_bench.py [--files 1000] [--size-mb 1024] [--repeat 3] [--json PATH]

Measures, against a live ``spacehub serve`` started on a free port with a temporary data dir:

1. ``HfApi.upload_folder`` of ``--files`` small files (1-4 KB, a few subfolders) into a fresh model repo, against
   ``git init && git add && git commit && git push`` of the same tree to a local bare repo; and ``git push`` of that
   tree to SpaceHub over smart HTTP against the same push to the local bare repo ("n/a" if the server has no smart
   HTTP). Best of ``--repeat`` runs for each side.
2. ``HfApi.upload_file`` of a ``--size-mb`` file (client 2.x sends it inline, base64, as one NDJSON line; the server
   stream-parses it to disk and stores an LFS object), the same commit POSTed as a pre-encoded NDJSON body (server
   side alone), and ``hf_hub_download`` of the file, each against ``shutil.copyfile`` of the file on the same disk;
   the server's peak RSS during the uploads; sha256 of what was stored and downloaded.

See docs/performance.md for the figures and what they mean.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from hubserver import HubServer, proc_cpu_seconds, proc_status_kb, reset_peak_rss, start_server

MB = 1024 * 1024
DISK_FACTOR = 6.5  # peak disk use of the big-file part, in file sizes (see _big_file_budget)
RAM_FACTOR = 6.0  # client 2.x holds the file, its base64, the JSON line and the joined body in memory at once
MIN_SIZE_MB = 8


class Broken(Exception):
    """Something does not work (wrong content, failed request): the benchmark must fail."""


@dataclass
class Row:
    name: str
    spacehub_s: float | None
    baseline_s: float | None
    baseline: str
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.spacehub_s is None or not self.baseline_s:
            return None
        return self.spacehub_s / self.baseline_s


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    memory: dict[str, float | None] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)  # every timing taken, for --json
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    """(seconds, result) of ``fn(*args, **kwargs)``."""
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t, out


# ---- git ---------------------------------------------------------------------------------------------------
class Git:
    """Runs git with no system/global config (reproducible, no LFS filters, no credential helpers)."""

    def __init__(self, root: Path, secrets: list[str]) -> None:
        cfg = root / "gitconfig"
        cfg.write_text("[user]\n\tname = bench\n\temail = bench@example.invalid\n[init]\n\tdefaultBranch = main\n")
        self.env = {
            **os.environ,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": str(cfg),
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "true",
        }
        self.secrets = secrets

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(["git", *args], env=self.env, capture_output=True, text=True)
        if check and r.returncode != 0:
            raise Broken(f"git {self.mask(' '.join(args))} failed ({r.returncode}): {self.mask(r.stderr.strip())}")
        return r

    def mask(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, "***")
        return text


# ---- part 1: many small files ------------------------------------------------------------------------------
def make_tree(root: Path, n: int, seed: int = 1234) -> int:
    """``n`` text files of 1-4 KB in a few nested subfolders (``.txt``: not LFS by the default .gitattributes)."""
    rnd = random.Random(seed)
    total = 0
    for i in range(n):
        p = root / f"shard-{i % 4}" / f"part-{i % 3}" / f"file-{i:05d}.txt"
        p.parent.mkdir(parents=True, exist_ok=True)
        data = rnd.randbytes(rnd.randint(512, 2048)).hex().encode()
        p.write_bytes(data)
        total += len(data)
    return total


def bench_tree(srv: HubServer, api: Any, token: str, root: Path, args: argparse.Namespace, rep: Report) -> None:
    tree = root / "tree"
    total = make_tree(tree, args.files)
    git = Git(root, [token])
    times: dict[str, list[float]] = {"upload_folder": [], "commit": [], "push_bare": [], "push_http": []}
    cpu: dict[str, list[float | None]] = {"upload_folder": [], "push_http": []}
    http_reason: str | None = None
    for r in range(args.repeat):
        log(f"small files, run {r + 1}/{args.repeat}: upload_folder of {args.files} files")
        repo_id = f"alice/tree-{r}"
        api.create_repo(repo_id)
        with Watch(srv.pid).watch() as w:
            t, _ = timed(api.upload_folder, folder_path=str(tree), repo_id=repo_id, commit_message="bench")
        times["upload_folder"].append(t)
        cpu["upload_folder"].append(w.cpu_s)

        log(f"small files, run {r + 1}/{args.repeat}: git init, add, commit, push to a local bare repo")
        gd = root / f"git-{r}"
        wt = ["--git-dir", str(gd), "--work-tree", str(tree)]
        bare = root / f"bare-{r}.git"
        git("init", "-q", "--bare", str(bare))

        t, _ = timed(_git_commit, git, wt)
        times["commit"].append(t)
        t, _ = timed(git, *wt, "push", "-q", str(bare), "HEAD:refs/heads/main")
        times["push_bare"].append(t)
        head = git(*wt, "rev-parse", "HEAD").stdout.strip()
        if git("--git-dir", str(bare), "rev-parse", "main").stdout.strip() != head:
            raise Broken("the local bare repo's main is not the pushed commit")
        if r == 0:
            _verify_tree(api, repo_id, git, wt)

        if http_reason is None:
            http_repo = f"alice/push-{r}"
            api.create_repo(http_repo)
            http_reason = _smart_http_missing(srv, token, http_repo)
            if http_reason is not None:
                log(f"git push over HTTP: n/a ({http_reason})")
                continue
            log(f"small files, run {r + 1}/{args.repeat}: git push over HTTP to SpaceHub")
            url = f"http://alice:{token}@127.0.0.1:{srv.port}/{http_repo}"
            with Watch(srv.pid).watch() as w:
                t, _ = timed(git, *wt, "push", "-q", "--force", url, "HEAD:refs/heads/main")
            times["push_http"].append(t)
            cpu["push_http"].append(w.cpu_s)
            if api.repo_info(http_repo).sha != head:
                raise Broken(f"after git push over HTTP, {http_repo}@main is not the pushed commit {head}")

    rep.figures["small_files_runs_s"] = times
    rep.figures["small_files_server_cpu_s"] = cpu
    best = {k: min(v) if v else None for k, v in times.items()}
    best_cpu = {k: min((c for c in v if c is not None), default=None) for k, v in cpu.items()}
    commit_push = min(c + p for c, p in zip(times["commit"], times["push_bare"], strict=True))
    rep.rows.append(
        Row(
            f"upload_folder: {args.files} files ({total / MB:.1f} MB)",
            best["upload_folder"],
            commit_push,
            "git init+add+commit+push to a local bare repo",
            f"best of {args.repeat}; git init+add+commit {best['commit']:.2f} s, push {best['push_bare']:.2f} s; "
            f"server CPU {_fmt_s(best_cpu['upload_folder'])}",
        )
    )
    rep.rows.append(
        Row(
            f"git push over HTTP: {args.files} files",
            best["push_http"],
            best["push_bare"],
            "git push of the same commit to a local bare repo",
            f"n/a: {http_reason}"
            if http_reason
            else f"best of {args.repeat}; server CPU {_fmt_s(best_cpu['push_http'])} (git subprocesses included)",
        )
    )


def _git_commit(git: Git, wt: list[str]) -> None:
    git(*wt, "init", "-q")
    git(*wt, "add", "-A")
    git(*wt, "commit", "-q", "-m", "bench")


def _verify_tree(api: Any, repo_id: str, git: Git, wt: list[str]) -> None:
    """Every uploaded file is in the repo with the same git blob id as in the local commit."""
    want = {}
    for line in git(*wt, "ls-files", "-s").stdout.splitlines():
        meta, path = line.split("\t", 1)
        want[path] = meta.split()[1]
    got = {
        e.path: e.blob_id
        for e in api.list_repo_tree(repo_id, recursive=True)
        if getattr(e, "blob_id", None) and e.path != ".gitattributes"
    }
    if got != want:
        missing = sorted(set(want) - set(got))[:3]
        differ = sorted(p for p in want if p in got and got[p] != want[p])[:3]
        raise Broken(f"upload_folder: repo content differs (missing {missing}, different {differ})")


def _smart_http_missing(srv: HubServer, token: str, repo_id: str) -> str | None:
    """None when the server speaks git smart HTTP for pushes, else why not."""
    path = f"/{repo_id}/info/refs?service=git-receive-pack"
    try:
        r = httpx.get(srv.url + path, auth=("alice", token), timeout=30)
    except httpx.HTTPError as e:
        return f"GET {path} failed: {e}"
    ctype = r.headers.get("content-type", "")
    if r.status_code != 200 or "git-receive-pack-advertisement" not in ctype:
        return f"no git smart HTTP on this server (GET {path} -> {r.status_code} {ctype or 'no content-type'})"
    return None


# ---- part 2: one big file ----------------------------------------------------------------------------------
def big_file_budget(root: Path, size_mb: int) -> tuple[int, str | None]:
    """The size to use (MB, 0 = skip) and why it differs from ``size_mb``.

    Disk, in file sizes S: the stored LFS object (1) + the pre-encoded body (1.33) + what the server holds while it
    parses that commit (the request body 1.33, its base64 string spilled to a file 1.33, the staged blob 1) = 6 S at
    the peak, plus margin.
    Memory: client 2.x builds the whole inline request in memory, ~6 S.
    """
    if size_mb <= 0:
        return 0, None
    free = shutil.disk_usage(root).free
    avail = _mem_available()
    fits = int((free - 512 * MB) / DISK_FACTOR / MB)
    if avail is not None:
        fits = min(fits, int((avail - 512 * MB) / RAM_FACTOR / MB))
    if fits >= size_mb:
        return size_mb, None
    why = (
        f"{free / 1024**3:.1f} GB free disk in {root}"
        + (f", {avail / 1024**3:.1f} GB available memory" if avail is not None else "")
        + f": the big-file part needs ~{DISK_FACTOR:g}x its size on disk and ~{RAM_FACTOR:g}x in memory"
    )
    if fits < MIN_SIZE_MB:
        return 0, f"big-file part skipped ({why})"
    return fits, f"big file reduced from {size_mb} MB to {fits} MB ({why})"


def _mem_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def write_random(path: Path, size: int) -> str:
    """Write ``size`` random bytes; returns their sha256."""
    h = hashlib.sha256()
    with path.open("wb") as f:
        left = size
        while left > 0:
            chunk = os.urandom(min(4 * MB, left))
            f.write(chunk)
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(4 * MB):
            h.update(chunk)
    return h.hexdigest()


def timed_copy(src: Path, dst: Path, fsync: bool = False) -> float:
    """Seconds to copy ``src`` to ``dst`` (then fsync it, if asked); ``dst`` is removed afterwards."""
    t, _ = timed(_copy, src, dst, fsync)
    dst.unlink()
    return t


def _copy(src: Path, dst: Path, fsync: bool) -> None:
    shutil.copyfile(src, dst)
    if fsync:
        with dst.open("rb") as f:
            os.fsync(f.fileno())


class Watch:
    """What a process used while the block ran: peak RSS (kB; ``VmHWM`` after resetting it, and VmRSS polled as
    well) and CPU seconds (less sensitive than wall time to other load on a shared machine)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before = proc_status_kb(pid, "VmRSS")
        self.polled = 0
        self.hwm: int | None = None
        self.cpu_s: float | None = None
        self._stop = threading.Event()

    @contextmanager
    def watch(self) -> Iterator[Watch]:
        reset = reset_peak_rss(self.pid)
        cpu = proc_cpu_seconds(self.pid)
        thread = threading.Thread(target=self._poll, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self.hwm = proc_status_kb(self.pid, "VmHWM") if reset else None
            end = proc_cpu_seconds(self.pid)
            self.cpu_s = end - cpu if end is not None and cpu is not None else None

    def _poll(self) -> None:
        while not self._stop.wait(0.02):
            self.polled = max(self.polled, proc_status_kb(self.pid, "VmRSS") or 0)

    @property
    def peak_mb(self) -> float | None:
        kb = max(self.hwm or 0, self.polled)
        return kb / 1024 if kb else None


def encode_commit(src: Path, dst: Path, path_in_repo: str) -> None:
    """The NDJSON body ``upload_file`` would send for ``src``, written to ``dst`` without holding it in memory."""
    with src.open("rb") as f, dst.open("wb") as out:
        out.write(json.dumps({"key": "header", "value": {"summary": "raw commit", "description": ""}}).encode())
        out.write(b'\n{"key": "file", "value": {"content": "')
        while chunk := f.read(3 * MB):  # a multiple of 3: every chunk encodes on its own
            out.write(base64.b64encode(chunk))
        out.write(b'", "path": ' + json.dumps(path_in_repo).encode() + b', "encoding": "base64"}}\n')


def bench_big(srv: HubServer, api: Any, token: str, root: Path, size_mb: int, rep: Report) -> None:
    from huggingface_hub import hf_hub_download

    size = size_mb * MB
    orig, copy = root / "big.bin", root / "big-copy.bin"
    log(f"big file: writing {size_mb} MB of random bytes")
    want = write_random(orig, size)
    log("big file: shutil.copyfile baseline")
    copies = [timed_copy(orig, copy)]
    t_copy_fsync = timed_copy(orig, copy, fsync=True)

    repo_id = "alice/big"
    api.create_repo(repo_id)
    rss = Watch(srv.pid)
    log(f"big file: HfApi.upload_file of {size_mb} MB (server RSS before: {_mb(rss.before)})")
    cpu0 = time.process_time()
    with rss.watch():
        t_upload, _ = timed(api.upload_file, path_or_fileobj=str(orig), path_in_repo="big.bin", repo_id=repo_id)
    client_cpu_upload = time.process_time() - cpu0
    _verify_lfs(api, repo_id, "big.bin", want, size)

    log("big file: the same commit as a pre-encoded NDJSON body (server side only)")
    body = root / "commit.ndjson"
    encode_commit(orig, body, "big-raw.bin")
    orig.unlink()  # disk: the original is not needed any more (its sha256 is known)
    rss_raw = Watch(srv.pid)
    with rss_raw.watch(), body.open("rb") as f:
        t_raw, r = timed(
            httpx.post,
            f"{srv.url}/api/models/{repo_id}/commit/main",
            content=f,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"},
            timeout=None,
        )
    body.unlink()
    if r.status_code != 200:
        raise Broken(f"commit with a pre-encoded body: HTTP {r.status_code} {r.text[:300]}")
    _verify_lfs(api, repo_id, "big-raw.bin", want, size)

    log("big file: hf_hub_download")
    cache = root / "hf-cache"
    down = Watch(srv.pid)
    cpu0 = time.process_time()
    with down.watch():
        t_down, got_path = timed(
            hf_hub_download, repo_id, "big.bin", endpoint=srv.url, token=token, cache_dir=str(cache)
        )
    client_cpu_down = time.process_time() - cpu0
    got = Path(got_path)
    if got.stat().st_size != size or sha256_of(got) != want:
        raise Broken("hf_hub_download: the downloaded bytes differ from the uploaded file")
    log("big file: shutil.copyfile baseline again")
    copies.append(timed_copy(got, copy))
    shutil.rmtree(cache)

    t_copy = min(copies)
    rep.notes.append(
        f"shutil.copyfile of {size_mb} MB: best of 2 ("
        + ", ".join(f"{c:.2f} s" for c in copies)
        + f"); copy + fsync: {t_copy_fsync:.2f} s (the server fsyncs what it stores)"
    )
    rep.rows += [
        Row(
            f"upload_file: {size_mb} MB (inline base64)",
            t_upload,
            t_copy,
            "shutil.copyfile",
            f"server CPU {_fmt_s(rss.cpu_s)}, client CPU {_fmt_s(client_cpu_upload)} (2.x encodes the file in "
            "memory); sha256 verified",
        ),
        Row(
            f"commit API, pre-encoded body: {size_mb} MB",
            t_raw,
            t_copy,
            "shutil.copyfile",
            f"the server side of upload_file alone; server CPU {_fmt_s(rss_raw.cpu_s)}",
        ),
        Row(
            f"hf_hub_download: {size_mb} MB",
            t_down,
            t_copy,
            "shutil.copyfile",
            f"server CPU {_fmt_s(down.cpu_s)}, client CPU {_fmt_s(client_cpu_down)}; sha256 verified",
        ),
    ]
    rep.figures.update(
        copy_s=copies,
        copy_fsync_s=t_copy_fsync,
        upload_file_s=t_upload,
        raw_commit_s=t_raw,
        download_s=t_down,
        server_cpu_upload_file_s=rss.cpu_s,
        server_cpu_raw_commit_s=rss_raw.cpu_s,
        server_cpu_download_s=down.cpu_s,
        client_cpu_upload_file_s=client_cpu_upload,
        client_cpu_download_s=client_cpu_down,
    )
    client_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rep.memory.update(
        {
            "server_rss_before_mb": _mbf(rss.before),
            "server_peak_rss_upload_file_mb": rss.peak_mb,
            "server_peak_rss_raw_commit_mb": rss_raw.peak_mb,
            "client_peak_rss_mb": client_peak,
            "file_mb": size_mb,
        }
    )


def _verify_lfs(api: Any, repo_id: str, path: str, sha256: str, size: int) -> None:
    info = api.get_paths_info(repo_id, [path])
    lfs = info[0].lfs if info else None
    if lfs is None or lfs.sha256 != sha256 or lfs.size != size:
        raise Broken(f"{path}: stored LFS object {lfs} does not match the uploaded file (sha256 {sha256}, {size} B)")


def _fmt_s(v: float | None) -> str:
    return f"{v:.2f} s" if v is not None else "n/a"


def _mbf(kb: int | None) -> float | None:
    return kb / 1024 if kb is not None else None


def _mb(kb: int | None) -> str:
    return f"{kb / 1024:.0f} MB" if kb is not None else "n/a"


# ---- output ------------------------------------------------------------------------------------------------
def fmt_s(v: float | None) -> str:
    return f"{v:.2f}" if v is not None else "n/a"


def render(rep: Report, info: dict[str, Any]) -> str:
    head = ("measurement", "SpaceHub s", "baseline s", "ratio", "baseline")
    lines = [
        (r.name, fmt_s(r.spacehub_s), fmt_s(r.baseline_s), f"{r.ratio:.1f}x" if r.ratio else "n/a", r.baseline)
        for r in rep.rows
    ]
    w = [max(len(x[i]) for x in [head, *lines]) for i in range(5)]
    out = [
        f"SpaceHub benchmark, {info['date']}: {info['cpus']} CPUs, Python {info['python']}, "
        f"huggingface_hub {info['huggingface_hub']}, {info['git']}",
        "ratio = SpaceHub time / baseline time, both measured in this run (lower is better)",
        "",
    ]
    for i, cells in enumerate([head, *lines]):
        out.append(
            f"{cells[0]:<{w[0]}}  {cells[1]:>{w[1]}}  {cells[2]:>{w[2]}}  {cells[3]:>{w[3]}}  {cells[4]}".rstrip()
        )
        if i == 0:
            out.append("-" * len(out[-1]))
    notes = [f"  {r.name}: {r.note}" for r in rep.rows if r.note]
    if notes:
        out += ["", "notes:", *notes]
    m = rep.memory
    if m:
        out += [
            "",
            f"server RSS: {_fmt_mb(m.get('server_rss_before_mb'))} before the uploads, peak "
            f"{_fmt_mb(m.get('server_peak_rss_upload_file_mb'))} during upload_file and "
            f"{_fmt_mb(m.get('server_peak_rss_raw_commit_mb'))} during the pre-encoded commit "
            f"of a {m.get('file_mb')} MB file",
            f"client (this process) peak RSS: {_fmt_mb(m.get('client_peak_rss_mb'))} "
            "(huggingface_hub builds the whole inline request in memory)",
        ]
    out += [f"note: {n}" for n in rep.notes]
    out += [f"ERROR: {e}" for e in rep.errors]
    return "\n".join(out)


def _fmt_mb(v: float | None) -> str:
    return f"{v:.0f} MB" if v is not None else "n/a"


def machine() -> dict[str, Any]:
    import huggingface_hub

    git = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "date": dt.date.today().isoformat(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "huggingface_hub": huggingface_hub.__version__,
        "git": git,
    }


# ---- main --------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--files", type=int, default=1000, help="number of small files (default 1000; 0 skips the part)")
    p.add_argument("--size-mb", type=int, default=1024, help="size of the big file in MB (default 1024; 0 skips)")
    p.add_argument("--repeat", type=int, default=3, help="runs of the small-files part, best kept (default 3)")
    p.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    p.add_argument("--workdir", type=Path, help="where the temporary folder goes (default: the system temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (data dir, server log)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="hub-bench-", dir=args.workdir))
    # before huggingface_hub is imported: it reads its settings at import time
    os.environ.update(
        HF_HOME=str(root / "hf-home"),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_HUB_DISABLE_UPDATE_CHECK="1",
        HF_HUB_DISABLE_IMPLICIT_TOKEN="1",
    )
    from huggingface_hub import HfApi

    rep = Report()
    size_mb, why = big_file_budget(root, args.size_mb)
    if why:
        log(why)
        rep.notes.append(why)
    srv: HubServer | None = None
    try:
        log(f"starting SpaceHub (data dir {root / 'data'})")
        srv = start_server(root / "data")
        token = srv.user("alice")
        api = HfApi(endpoint=srv.url, token=token)
        parts: list[tuple[str, Callable[[], None]]] = []
        if args.files > 0:
            parts.append(("small files", partial(bench_tree, srv, api, token, root, args, rep)))
        if size_mb > 0:
            parts.append(("big file", partial(bench_big, srv, api, token, root, size_mb, rep)))
        for name, part in parts:
            try:
                part()
            except Exception as e:
                log(traceback.format_exc())
                rep.errors.append(f"{name}: {type(e).__name__}: {e}")
    except Exception as e:
        log(traceback.format_exc())
        rep.errors.append(f"setup: {type(e).__name__}: {e}")
    finally:
        if srv is not None:
            srv.stop()
            if rep.errors:
                log("server log (last lines):\n" + "\n".join(srv.log.read_text(errors="replace").splitlines()[-30:]))
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    info = machine()
    print(render(rep, info))
    if args.json:
        data = {
            "machine": info,
            "params": {"files": args.files, "size_mb": size_mb, "repeat": args.repeat},
            "rows": [{**r.__dict__, "ratio": r.ratio} for r in rep.rows],
            "memory": rep.memory,
            "figures": rep.figures,
            "notes": rep.notes,
            "errors": rep.errors,
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    return 1 if rep.errors else 0


if __name__ == "__main__":
    sys.exit(main())
