"""What the benchmark smoke tests share: whether this machine can run the sandboxed Spaces the benchmarks start
(bubblewrap and slirp4netns, as the README's server has them), and if not, why."""

from __future__ import annotations

import shutil

from spacehub.runtime import sandbox

try:
    sandbox.check(sandbox.host_uid("check"))
    UNAVAILABLE = None if shutil.which("slirp4netns") else "slirp4netns is not installed"
except sandbox.SandboxUnavailable as e:  # pragma: no cover - the CI machine has bubblewrap
    UNAVAILABLE = str(e)
