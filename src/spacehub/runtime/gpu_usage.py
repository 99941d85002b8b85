"""What this machine's NVIDIA GPUs are doing now, for the metrics of the Spaces that hold them.

One reading of every GPU (``nvidia-smi --query-gpu=index,uuid,utilization.gpu,memory.used,memory.total
--format=csv,noheader,nounits``) serves every Space: `GpuSampler` runs it at most once per interval, whoever asks
(all metrics streams of all Spaces together), with a timeout, and keeps the answer until the interval is over. A
Space's figures are those of the devices its serving release was given (`figures_for`: its ``CUDA_VISIBLE_DEVICES``,
never another Space's), keyed by the device's id in the inventory. When nvidia-smi is missing, fails, times out or
says nothing usable, there are no figures (the metrics have ``gpus: {}``) and the log says why once, until a reading
works again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from spacehub.runtime.backends.base import GpuUsage
from spacehub.runtime.devices import Device

log = logging.getLogger(__name__)

QUERY = ["--query-gpu=index,uuid,utilization.gpu,memory.used,memory.total", "--format=csv,noheader,nounits"]
MIB = 2**20


@dataclass(frozen=True, slots=True)
class GpuReading:
    """One GPU of one reading: nvidia-smi's index and UUID, and its figures."""

    index: str
    uuid: str
    usage: GpuUsage


def parse_gpu_usage(text: str) -> list[GpuReading]:
    """The GPUs of nvidia-smi's answer to `QUERY`, e.g. ``0, GPU-5c3e…, 37, 1024, 15360`` (memory in MiB). A line
    whose figures are not numbers (``[N/A]``, ``[Not Supported]``) or that is not such a line is left out."""
    found = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 5 or not parts[0].isdigit():
            continue
        try:
            util, used, total = (float(p) for p in parts[2:])
        except ValueError:
            continue
        if min(util, used, total) < 0:
            continue
        found.append(GpuReading(parts[0], parts[1], GpuUsage(round(util), round(used * MIB), round(total * MIB))))
    return found


def figures_for(
    readings: Iterable[GpuReading], devices: Sequence[str], inventory: Sequence[Device]
) -> dict[str, GpuUsage]:
    """The figures of ``devices`` (the ids a Space's release was given) and of no other GPU, keyed by those ids. A
    device is found by the UUID its inventory entry declares, else by its id as nvidia-smi's index or UUID."""
    rows = list(readings)
    by_index = {r.index: r for r in rows}
    by_uuid = {r.uuid: r for r in rows}
    declared = {d.id: d.uuid for d in inventory}
    out: dict[str, GpuUsage] = {}
    for dev in devices:
        uuid = declared.get(dev)
        row = (by_uuid.get(uuid) if uuid else None) or by_uuid.get(dev) or by_index.get(dev)
        if row is not None:
            out[dev] = row.usage
    return out


def run_bounded(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``args`` in a process group of its own; at ``timeout`` the whole group is killed (a wrapper script's
    children too, which would otherwise hold its output open). Raises: TimeoutExpired, OSError."""
    proc = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


class GpuSampler:
    """nvidia-smi's reading, taken at most once per ``interval`` seconds (a caller within it gets the last one;
    concurrent callers wait for the one under way), each run bounded by ``timeout``."""

    def __init__(
        self,
        inventory: Sequence[Device],
        binary: str = "nvidia-smi",
        interval: float = 1.0,
        timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        run: Callable[[list[str], float], subprocess.CompletedProcess[str]] = run_bounded,
    ) -> None:
        self.inventory = tuple(inventory)
        self.binary, self.interval, self.timeout = binary, interval, timeout
        self._clock, self._run = clock, run
        self._lock = threading.Lock()
        self._at: float | None = None
        self._last: list[GpuReading] | None = None
        self._failing = False
        self.runs = 0  # how many times nvidia-smi was run (for tests and the bench)

    def figures(self, devices: Sequence[str]) -> dict[str, GpuUsage]:
        """The figures of ``devices`` now ({} without a usable reading)."""
        if not devices:
            return {}
        readings = self.readings()
        return figures_for(readings, devices, self.inventory) if readings else {}

    def readings(self) -> list[GpuReading] | None:
        with self._lock:
            now = self._clock()
            if self._at is None or now - self._at >= self.interval:
                self._last = self._read()
                self._at = self._clock()
            return self._last

    def _read(self) -> list[GpuReading] | None:
        exe = shutil.which(self.binary)
        if exe is None:
            return self._fail(f"{self.binary} is not on the PATH")
        self.runs += 1
        try:
            out = self._run([exe, *QUERY], self.timeout)
        except subprocess.TimeoutExpired:
            return self._fail(f"{exe} did not answer within {self.timeout:g} s")
        except (OSError, subprocess.SubprocessError) as e:
            return self._fail(f"{exe} could not run: {e}")
        if out.returncode != 0:
            said = (out.stderr or out.stdout or "").strip().splitlines()
            return self._fail(f"{exe} exited with {out.returncode}: {said[-1][:200] if said else 'no output'}")
        readings = parse_gpu_usage(out.stdout)
        if not readings:
            return self._fail(f"{exe} reported no GPU figures")
        if self._failing:
            log.info("GPU metrics: %s answers again", exe)
            self._failing = False
        return readings

    def _fail(self, why: str) -> None:
        if not self._failing:
            log.warning("GPU metrics unavailable (the Spaces' metrics have no GPU figures until it works): %s", why)
            self._failing = True
        return None
