"""The supervisor: a tiny process that runs one app, outlives SpaceHub restarts and leaves everything in files.

``python -I -m spacehub.runtime.supervise <instance_dir>``, with the app's environment as a JSON object on stdin (so
no secret is ever on a command line or in a file). It detaches (double fork: init adopts it, never SpaceHub), joins
the app's cgroup so the app and all its children inherit it, bind-mounts the Space's storage on /data in a private
mount namespace when asked, then runs the app in a process group of its own and:

- appends the app's stdout and stderr to the run log as lines ``2026-11-22T12:00:00.123Z <text>`` (UTC, millisecond
  precision, one space, the text without its newline; lines over 64 KiB are cut in pieces), plus its own
  ``===== Application Startup at … =====`` and ``===== Application exited with code N =====`` lines; past
  ``max_log_bytes`` (20 MiB) the log is renamed to ``<name>.1`` and a new one begins;
- writes ``state.json`` once the app runs and ``exit.json`` when it ended (``code`` is the exit status, 128+N when
  killed by signal N, as shells report it; ``oom`` is true when the kernel killed it for its memory limit).

Only the standard library is imported here: the supervisor starts in ~30 ms and holds ~10 MB.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spacehub.runtime.sandbox_run import ATTEMPTS as SANDBOX_ATTEMPTS
from spacehub.runtime.sandbox_run import Sandbox, SandboxError

MAX_LINE = 64 * 1024
APP_OOM_SCORE_ADJ = "500"  # raising needs no privilege: on an OOM the app goes, not its supervisor nor the server
PR_SET_PDEATHSIG = 1
CLONE_NEWNS = 0x00020000
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT = 1, 2, 4, 32
MNT_DETACH = 2
# Mount points of Spaces' storage images on the host (runtime/backends/local_disks.py): {data_dir}/storage/<id>-<key>
STORAGE_MOUNT_RE = re.compile(r"/storage/[0-9a-f]{24}-[0-9a-z]{1,16}$")


def _load_libc() -> ctypes.CDLL:
    """glibc by its soname first: ``ctypes.util.find_library`` runs ldconfig, ~60 ms of every app start (a wake from
    deep sleep included)."""
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        from ctypes.util import find_library

        return ctypes.CDLL(find_library("c"), use_errno=True)


_libc = _load_libc()


def log_timestamp(t: float | None = None) -> str:
    """The timestamp that starts every run log line: ``2026-11-22T12:00:00.123Z``."""
    t = time.time() if t is None else t
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def parse_log_line(line: str) -> tuple[str, str]:
    """``"2026-11-22T12:00:00.123Z hello"`` → ``("2026-11-22T12:00:00.123Z", "hello")``."""
    stamp, _, text = line.rstrip("\n").partition(" ")
    return stamp, text


def _pidfd(pid: int) -> int | None:
    """A descriptor readable once process ``pid`` has ended (None before Linux 5.3)."""
    try:
        return os.pidfd_open(pid)
    except (OSError, AttributeError):
        return None


def proc_starttime(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), None when it is gone or
    a zombie. Together with the pid it names a process for good: pids get reused, (pid, starttime) do not."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = data.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else int(fields[19])


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``path`` atomically: readers see the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


class Supervisor:
    def __init__(self, inst: Path, launch: dict[str, Any], env: dict[str, str]) -> None:
        self.inst, self.launch, self.env = inst, launch, env
        self.log_path = Path(launch["log_path"])
        self.log = self.log_path.open("ab", buffering=0)  # open for the supervisor's lifetime
        self.log_checked = time.monotonic()
        self.pgid: int | None = None

    def line(self, text: bytes | str) -> None:
        if isinstance(text, str):
            text = text.encode()
        if time.monotonic() - self.log_checked > 1.0:
            self.reopen_if_rotated()
        self.log.write(log_timestamp().encode() + b" " + text.rstrip(b"\r") + b"\n")

    def reopen_if_rotated(self) -> None:
        """Past ``max_log_bytes`` the log moves to ``<name>.1``; when it was moved away (by us or by SpaceHub) or
        deleted, writing continues in a new file at the same path."""
        self.log_checked = time.monotonic()
        try:
            st = os.stat(self.log_path)
            same = st.st_ino == os.fstat(self.log.fileno()).st_ino
            if same and st.st_size > self.launch.get("max_log_bytes", 20 * 2**20):
                os.replace(self.log_path, self.log_path.with_name(self.log_path.name + ".1"))
                same = False
        except FileNotFoundError:
            same = False
        if not same:
            self.log.close()
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log = self.log_path.open("ab", buffering=0)  # open for the supervisor's lifetime

    def run(self) -> int:
        try:
            for procs in self.launch.get("cgroup_procs", []):
                Path(procs).write_text(str(os.getpid()))
        except OSError as e:
            return self.fail(125, f"could not join the app's cgroup: {e}")
        sandbox = None
        try:
            if self.launch.get("sandbox"):
                sandbox = Sandbox(self.launch["sandbox"], self.launch["port"])
                binds = sandbox.prepare()
                _detach_other_storage()
                data = "/data" if any(b[2] == "/data" for b in binds) and self.launch.get("data_dir") else None
                command, fds = sandbox.command(binds, self.launch["command"], self.launch["sandbox_cwd"])
            else:
                data = self.mount_data()
                command, fds = self.launch["command"], []
        except (VolumeError, SandboxError, OSError) as e:
            return self.fail(126, str(e) if not isinstance(e, OSError) else f"the sandbox could not be set up: {e}")
        self.line(f"===== Application Startup at {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} =====")
        for attempt in range(SANDBOX_ATTEMPTS if sandbox is not None else 1):
            if sandbox is not None and attempt:
                command, fds = sandbox.command(binds, self.launch["command"], self.launch["sandbox_cwd"])
            try:
                proc = subprocess.Popen(
                    command,
                    cwd=self.launch["cwd"],
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    process_group=0,
                    pass_fds=fds,
                    preexec_fn=_child_setup if sandbox is None else _sandbox_setup(sandbox),  # no thread runs yet
                )
            except OSError as e:
                return self.fail(127, f"could not start {command[0]}: {e.strerror or e}")
            if sandbox is None:
                break
            try:
                sandbox.started()
                break
            except Exception as e:
                # bwrap 0.8 now and then fails to set up the sandbox's loopback ("Failed RTM_NEWADDR"): try again
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)
                out = proc.communicate()[0] or b""
                why = (out.decode(errors="replace").strip().splitlines() or [str(e)])[-1]
                self.line(f"===== The sandbox could not be set up ({why}) =====")
                if attempt + 1 == SANDBOX_ATTEMPTS:
                    return self.fail(126, f"the sandbox could not be set up: {why}")
        self.pgid = proc.pid
        state = {
            "supervisor_pid": os.getpid(),
            "supervisor_starttime": proc_starttime(os.getpid()),
            "pid": proc.pid,
            "pgid": proc.pid,
            "starttime": proc_starttime(proc.pid),
            "started_at": time.time(),
            "data": data,
        }
        write_json(self.inst / "state.json", state)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self.forward)
        self.pump(proc)
        code = proc.wait()
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)  # what the app left behind in its group goes with it
        if sandbox is not None:
            sandbox.close()
            if code > 128:  # bwrap reports an app killed by signal N as 128+N
                code = -(code - 128)
        status = 128 - code if code < 0 else code
        oom = self.oom_kills() > self.launch.get("oom_kills_before", 0)
        if oom:
            self.line("===== Application killed: out of memory (it used more than its memory limit) =====")
        elif code < 0:
            self.line(f"===== Application killed by {signal.Signals(-code).name} =====")
        else:
            self.line(f"===== Application exited with code {code} =====")
        write_json(self.inst / "exit.json", {"code": status, "exited_at": time.time(), "oom": oom})
        return 0

    def forward(self, signum: int, frame: object) -> None:
        if self.pgid is not None:
            with contextlib.suppress(OSError):
                os.killpg(self.pgid, signal.SIGTERM)

    def pump(self, proc: subprocess.Popen[bytes]) -> None:
        """Copy the app's output to the log, line by line, until it closes or exits (then drain what is left)."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        buf = b""
        exited_at: float | None = None
        # While the app runs, nothing wakes the supervisor but output and the app's end (its pidfd): no timer
        exits = _pidfd(proc.pid)
        while True:
            watch = [fd] if exits is None or exited_at is not None else [fd, exits]
            ready, _, _ = select.select(watch, [], [], 0.25 if len(watch) == 1 else None)
            if fd in ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                buf = self.flush_lines(buf + chunk)
            elif proc.poll() is not None:
                # The app is gone but a child it left keeps the pipe open: give it a moment, then stop reading.
                exited_at = exited_at or time.monotonic()
                if time.monotonic() - exited_at > 0.5:
                    break
        if exits is not None:
            os.close(exits)
        if buf:
            self.line(buf)

    def flush_lines(self, buf: bytes) -> bytes:
        *lines, rest = buf.split(b"\n")
        for text in lines:
            self.line(text)
        while len(rest) > MAX_LINE:
            self.line(rest[:MAX_LINE])
            rest = rest[MAX_LINE:]
        return rest

    def mount_data(self) -> str | None:
        """Show the Space's storage (or a scratch folder of the instance's) at /data and its volumes read-only at
        their paths, in a private mount namespace; failing that, via SPACE_DATA_DIR and SPACE_VOLUMES. Answers
        "/data" or what the status should say. Raises: VolumeError when a volume cannot be mounted."""
        src, scratch = self.launch.get("data_dir"), self.launch.get("ephemeral_data")
        volumes = self.launch.get("volumes") or []
        if not (src or scratch or volumes):
            return None
        reason = self.launch.get("data_reason", "not supported")
        if self.launch.get("data_mode") == "mount":
            try:
                if scratch:
                    os.makedirs(scratch, exist_ok=True)
                os.makedirs("/data", exist_ok=True)  # mount points are made on the host, empty, once
                _check(_libc.unshare(CLONE_NEWNS), "unshare")
                _check(_libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
                _check(_libc.mount((src or scratch).encode(), b"/data", None, MS_BIND | MS_REC, None), "mount --bind")
            except OSError as e:
                reason = str(e)
            else:
                self.mount_volumes(volumes)
                # a container binds the storage from its host path (``-v``): that mount stays in this namespace
                _detach_other_storage(keep=src if self.launch.get("container") else None)
                if not src:
                    return None
                self.env["SPACE_DATA_DIR"] = "/data"
                self.env.setdefault("HF_HOME", "/data/.huggingface")
                return "/data"
        notes = []
        if volumes:
            self.env["SPACE_VOLUMES"] = json.dumps({v["dst"]: v["src"] for v in volumes})
            notes.append(f"volumes not mounted ({reason}): see SPACE_VOLUMES")
        if src:
            self.env["SPACE_DATA_DIR"] = src
            if self.env.get("HF_HOME", "").startswith("/data/"):  # the platform's default follows the storage
                self.env["HF_HOME"] = src + self.env["HF_HOME"][len("/data") :]
            notes.insert(0, f"/data unavailable ({reason}); SPACE_DATA_DIR={src}")
        return "; ".join(notes) or None

    def mount_volumes(self, volumes: list[dict[str, str]]) -> None:
        """Bind each volume read-only at its path (in the namespace made by `mount_data`). Raises: VolumeError."""
        for v in volumes:
            dst = v["dst"].encode()
            try:
                os.makedirs(v["dst"], exist_ok=True)
                _check(_libc.mount(v["src"].encode(), dst, None, MS_BIND | MS_REC, None), "mount --bind")
                flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV
                _check(_libc.mount(b"none", dst, None, flags, None), "mount -o remount,ro")
            except OSError as e:
                raise VolumeError(f"could not mount the volume at {v['dst']}: {e}") from e

    def oom_kills(self) -> int:
        path = self.launch.get("oom_file")
        if not path:
            return 0
        with contextlib.suppress(OSError):
            for line in Path(path).read_text().splitlines():
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
        return 0

    def fail(self, code: int, message: str) -> int:
        self.line(f"===== Application could not start: {message} =====")
        write_json(self.inst / "exit.json", {"code": code, "exited_at": time.time(), "oom": False, "error": message})
        return 1


def _detach_other_storage(keep: str | None = None) -> None:
    """The new namespace is a copy of the host's, with every Space's storage mounted where SpaceHub mounts it: drop
    them (ours is bound on /data already; ``keep`` is our own, left where it is). Otherwise this app would hold other
    Spaces' filesystems for as long as it runs: a deleted storage would not be freed, and an upgrade could not grow
    the image (it must be mounted nowhere)."""
    with contextlib.suppress(OSError):
        points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        for point in points:
            point = point.replace("\\040", " ")
            if keep is not None and os.path.realpath(point) == os.path.realpath(keep):
                continue
            if STORAGE_MOUNT_RE.search(point):
                _libc.umount2(point.encode(), MNT_DETACH)


class VolumeError(Exception):
    """A volume could not be mounted: the app is not started (it would not find its files)."""


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _sandbox_setup(sandbox: Sandbox) -> Callable[[], None]:
    def setup() -> None:
        with contextlib.suppress(OSError):
            Path("/proc/self/oom_score_adj").write_text(APP_OOM_SCORE_ADJ)
        sandbox.preexec()

    return setup


def _child_setup() -> None:
    """In the app, between fork and exec: die with the supervisor, and be the first pick of the OOM killer."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    with contextlib.suppress(OSError):
        Path("/proc/self/oom_score_adj").write_text(APP_OOM_SCORE_ADJ)


def main(argv: list[str]) -> int:
    inst = Path(argv[1])
    launch = json.loads((inst / "launch.json").read_text())
    env = json.loads(sys.stdin.read())
    if os.fork():
        os._exit(0)  # the backend waits for this first process only; init adopts the supervisor proper
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    out = os.open(inst / "supervisor.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(devnull, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    return Supervisor(inst, launch, env).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
