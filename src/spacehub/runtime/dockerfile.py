"""What a Space's Dockerfile asks of its build: the build args it declares and the secrets it mounts (pure text;
read by `desired` for the release and by the docker backends for the build)."""

from __future__ import annotations

import re

ARG_RE = re.compile(r"^\s*ARG\s+(.+)$", re.IGNORECASE | re.MULTILINE)
MOUNT_RE = re.compile(r"--mount=(\S+)")


def dockerfile_inputs(dockerfile: str | None) -> tuple[set[str], set[str]]:
    """The build args a Dockerfile declares (``ARG NAME[=default]``) and the secrets it mounts (``RUN
    --mount=type=secret,id=NAME``; without ``id``, the target's file name, as BuildKit does)."""
    if not dockerfile:
        return set(), set()
    text = re.sub(r"\\\r?\n", " ", dockerfile)  # continuation lines
    args = {m.split("=", 1)[0] for line in ARG_RE.findall(text) for m in line.split()}
    secrets = set()
    for spec in MOUNT_RE.findall(text):
        opts = dict(o.split("=", 1) if "=" in o else (o, "") for o in spec.strip("\"'").split(","))
        if opts.get("type") == "secret":
            secrets.add(opts.get("id") or opts.get("target", opts.get("dst", "")).rsplit("/", 1)[-1])
    return args, secrets - {""}
