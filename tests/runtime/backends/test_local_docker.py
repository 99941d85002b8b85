"""docker Spaces' command lines and build inputs (no engine is needed to check them; tests/e2e/test_docker.py runs
them for real)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from spacehub.runtime.backends.base import BuildFailed, Resources
from spacehub.runtime.backends.local_docker import (
    build_image,
    container_name,
    docker_run_command,
    image_tag,
    loopback_hub,
)
from spacehub.runtime.dockerfile import dockerfile_inputs


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
    # Published on loopback: container_net listens on the host's 127.0.0.1:25000 and forwards to the app's 7860 in
    # the container's own network namespace (no -p: the container has no network, hence no port to publish).
    assert "--listen 127.0.0.1:25000 --app-port 7860" in line and "--network none" in line
    assert "-e HF_TOKEN -e PORT" in line and "=" not in " ".join(a for a in cmd if a.startswith("HF_"))
    assert "--memory 1073741824b" in line and "--cpus 0.5" in line and "--pids-limit 100" in line
    assert "--ulimit nofile=4096:4096" in line  # podman's defaults exceed some hosts' hard limits
    assert "-v /srv/data/space1:/data" in line
    assert "--pull never" in line and "--name spacehub-abcd1234-r1" in line
    assert cmd[-1] == "localhost/spacehub-space-1:b1"


def test_run_command_sandboxes_the_app() -> None:
    cmd = docker_run_command("/usr/bin/podman", "c", "img", 25000, 7860, [], Resources(), None, hub="127.0.0.1:8000")
    line = " ".join(cmd)
    assert "--user 1000:1000" in line and "--cap-drop all" in line and "--security-opt no-new-privileges" in line
    assert "seccomp" not in line and "--privileged" not in line  # the engine's default seccomp profile applies
    assert cmd[:4] == [sys.executable, "-I", "-m", "spacehub.runtime.backends.container_net"]
    assert "--hub 127.0.0.1:8000" in line and cmd[cmd.index("--") + 1 :][:3] == ["/usr/bin/podman", "--runtime", "runc"]


def test_only_a_hub_on_loopback_is_forwarded() -> None:
    assert loopback_hub("http://127.0.0.1:8000") == "127.0.0.1:8000"
    assert loopback_hub("http://localhost:8000/") == "127.0.0.1:8000"
    assert loopback_hub("https://hub.example.org") is None
    assert loopback_hub(None) is None


def test_dockerfile_inputs() -> None:
    args, secrets = dockerfile_inputs(
        "FROM python:3.11-slim\nARG GREETING\narg OTHER=1\n"
        "RUN --mount=type=secret,id=TOKEN,mode=0444 cat /run/secrets/TOKEN\n"
        "RUN --mount=type=secret,target=/run/secrets/KEY2 \\\n    --mount=type=cache,target=/root/.cache true\n"
    )
    assert args == {"GREETING", "OTHER"} and secrets == {"TOKEN", "KEY2"}
    assert dockerfile_inputs(None) == (set(), set())


def test_build_passes_args_by_name_and_secrets_as_private_files(tmp_path: Path) -> None:
    """A fake engine records its argv, environment and each secret file's mode and text: variables are build args
    whose values come from the environment, secrets are 0600 files outside the context, gone after the build, and
    neither is on the command line or in the log (a secret printed by the build is masked)."""
    record = tmp_path / "record"
    engine = tmp_path / "podman"
    engine.write_text(
        f"#!{sys.executable}\n"
        "import os, stat, sys\n"
        f"out = open({str(record)!r}, 'w')\n"
        "out.write(repr(sys.argv) + '\\n' + os.environ.get('GREETING', '-') + '\\n')\n"
        "for a in sys.argv:\n"
        "    if a.startswith('id='):\n"
        "        path = a.split('src=', 1)[1]\n"
        "        modes = [oct(stat.S_IMODE(os.stat(p).st_mode)) for p in (path, os.path.dirname(path))]\n"
        "        out.write(' '.join([*modes, path, open(path).read()]) + '\\n')\n"
        "print('the secret is s3cr3t-value')\n"
    )
    engine.chmod(0o755)
    src = tmp_path / "src"
    src.mkdir()
    lines: list[str] = []
    build_image(str(engine), src, "localhost/x:1", {"PATH": os.environ["PATH"]}, lines.append, 30, True,
                {"GREETING": "hello"}, {"TOKEN": "s3cr3t-value"})  # fmt: skip
    argv, greeting, secret = record.read_text().splitlines()
    assert "'--build-arg', 'GREETING'" in argv and "hello" not in argv and greeting == "hello"
    assert "s3cr3t-value" not in argv and "--cap-drop=" in argv
    mode, folder_mode, path, value = secret.split(" ")
    assert mode == "0o600" and folder_mode == "0o700" and value == "s3cr3t-value" and not Path(path).is_relative_to(src)
    assert not Path(path).exists() and not Path(path).parent.exists()
    assert lines and all("s3cr3t-value" not in line for line in lines)
    assert "the secret is ********" in lines


def test_a_failed_build_masks_secrets_in_its_message(tmp_path: Path) -> None:
    engine = tmp_path / "podman"
    engine.write_text("#!/bin/sh\necho leaked: s3cr3t-value\nexit 3\n")
    engine.chmod(0o755)
    with pytest.raises(BuildFailed) as e:
        build_image(str(engine), tmp_path, "t", {}, lambda _: None, 30, True, {}, {"TOKEN": "s3cr3t-value"})
    assert "s3cr3t-value" not in str(e.value) and "leaked: ********" in str(e.value)
