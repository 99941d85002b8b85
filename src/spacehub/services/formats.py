"""Small wire-format helpers shared by services: Hub dates, repo URL prefixes, repo id rules."""

from __future__ import annotations

import datetime as dt
import re

from spacehub.errors import BadRequest

REPO_TYPES = ("model", "dataset", "space")
PLURALS = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
REPO_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$")
SDKS = ("gradio", "streamlit", "docker", "static")


def iso(d: dt.datetime | None) -> str | None:
    """``2025-03-07T12:24:18.657Z``: the only date shape every client version parses."""
    if d is None:
        return None
    if d.tzinfo is not None:
        d = d.astimezone(dt.UTC).replace(tzinfo=None)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def validate_repo_name(name: str) -> None:
    """Raises: BadRequest when ``name`` is not a valid repo name (the Hub's rules, 96 characters at most)."""
    if not REPO_NAME_RE.match(name) or "--" in name or ".." in name or name.endswith(".git"):
        raise BadRequest(
            f"Invalid repo name {name!r}: use 1-96 letters, digits, '-', '_' or '.', starting and ending with a "
            "letter or digit, without '--' or '..', not ending in '.git'"
        )


def split_repo_id(repo_id: str) -> tuple[str, str]:
    """Raises: BadRequest when ``repo_id`` is not ``namespace/name``."""
    ns, sep, name = repo_id.partition("/")
    if not sep or not ns or "/" in name:
        raise BadRequest(f"Invalid repo id {repo_id!r}: expected 'namespace/name'")
    return ns, name


def repo_type_from(value: str | None) -> str:
    t = value or "model"
    if t not in REPO_TYPES:
        raise BadRequest(f"Invalid repo type {t!r}; use one of {', '.join(REPO_TYPES)}")
    return t


def subdomain(full_name: str) -> str:
    """``Alice/My_Space`` → ``alice-my-space``, as the Hub forms Space subdomains."""
    return re.sub(r"[^a-z0-9-]", "-", full_name.lower().replace("/", "-"))
