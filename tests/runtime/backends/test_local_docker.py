"""docker Spaces' command lines (no engine is needed to check them)."""

from __future__ import annotations

from pathlib import Path

from spacehub.runtime.backends.base import Resources
from spacehub.runtime.backends.local_docker import container_name, docker_run_command, image_tag


def test_run_command_passes_env_by_name_and_publishes_on_loopback() -> None:
    cmd = docker_run_command(
        "/usr/bin/podman",
        container_name("abcd1234", "r1"),
        image_tag("Space 1", "b1"),
        25000,
        7860,
        ["HF_TOKEN", "PORT"],
        Resources(cpus=0.5, memory_bytes=2**30, pids=100),
        Path("/srv/data/space1"),
    )
    line = " ".join(cmd)
    assert "-p 127.0.0.1:25000:7860" in line
    assert "-e HF_TOKEN -e PORT" in line and "=" not in " ".join(a for a in cmd if a.startswith("HF_"))
    assert "--memory 1073741824b" in line and "--cpus 0.5" in line and "--pids-limit 100" in line
    assert "--ulimit nofile=4096:4096" in line  # podman's defaults exceed some hosts' hard limits
    assert "-v /srv/data/space1:/data" in line
    assert "--pull never" in line and "--name spacehub-abcd1234-r1" in line
    assert cmd[-1] == "localhost/spacehub-space-1:b1"
