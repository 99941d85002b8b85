"""`procs.usage_of`, what the local backend's `usage` counts: CPU time and memory of an instance's processes, and
network bytes only where they can be told apart (a network namespace of their own)."""

from __future__ import annotations

import subprocess
import sys
import time

from spacehub.runtime.procs import usage_of


def test_cpu_time_grows_and_memory_is_resident() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "b = bytearray(50 * 2**20)\nwhile True: b[0] = (b[0] + 1) % 255"],
    )
    try:
        time.sleep(0.5)
        cpu1, rss1, rx, tx = usage_of({child.pid})
        deadline = time.monotonic() + 30  # a busy loop gets 0.3 s of CPU in a second or so, later on a loaded host
        while (cpu2 := usage_of({child.pid})[0]) - cpu1 <= 0.3 and time.monotonic() < deadline:
            time.sleep(0.2)
        rss2 = usage_of({child.pid})[1]
    finally:
        child.kill()
        child.wait()
    assert cpu2 - cpu1 > 0.3  # CPU time is the process's own, and it grows
    assert rss2 >= 50 * 2**20 > 0 and rss1 > 0
    assert rx is None and tx is None  # the host's network namespace: not attributable
    assert usage_of({child.pid}) == (0.0, 0, None, None)  # gone: nothing counted
