"""What a Space's Dockerfile asks of its build: the build args it declares and the secrets it mounts (pure text;
read by `desired` for the release and by the docker backends for the build)."""

from __future__ import annotations

import re

ARG_RE = re.compile(r"^\s*ARG\s+(.+)$", re.IGNORECASE | re.MULTILINE)
FROM_RE = re.compile(r"^\s*FROM\s+(.+)$", re.IGNORECASE | re.MULTILINE)
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


def base_images(dockerfile: str | None) -> list[str]:
    """The images a Dockerfile builds FROM, in order, without its own stages (``FROM base AS b`` then ``FROM b``),
    ``scratch`` and references that need a build arg to be known (``FROM $BASE``)."""
    if not dockerfile:
        return []
    text = re.sub(r"\\\r?\n", " ", dockerfile)
    stages: set[str] = set()
    out: list[str] = []
    for line in FROM_RE.findall(text):
        words = [w for w in line.split() if not w.startswith("--")]  # --platform=...
        if not words:
            continue
        image = words[0]
        if len(words) >= 3 and words[1].lower() == "as":
            stages.add(words[2].lower())
        if image.lower() in stages or image == "scratch" or "$" in image or image in out:
            continue
        out.append(image)
    return out
