"""A Space's configuration from its README.md front matter, read as HF does, with clear CONFIG_ERROR messages.

`parse_space_config(readme, paths)` returns a `SpaceConfig`, or a `ConfigProblem` (stage CONFIG_ERROR or
NO_APP_FILE with the reason). Keys: sdk, sdk_version, python_version, app_file, app_port, title,
startup_duration_timeout (see ../shared/reference/spaces-platform.md §2.1.3). Absurd values are refused, never
clamped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from spacehub.frontmatter import load_yaml, split_front_matter
from spacehub.runtime.types import Stage

SDKS = ("gradio", "streamlit", "docker", "static")
DEFAULT_APP_FILE = {"gradio": "app.py", "streamlit": "app.py", "static": "index.html"}
DEFAULT_PORT = {"gradio": 7860, "streamlit": 8501, "docker": 7860}
DEFAULT_STARTUP_TIMEOUT = 30 * 60.0
MAX_STARTUP_TIMEOUT = 24 * 3600.0
DURATION_RE = re.compile(r"^\s*(\d{1,6})\s*(s|m|h)?\s*$")
VERSION_RE = re.compile(r"^\d{1,3}(\.\d{1,4}){0,3}([abrc]+\d{1,4})?(\.dev\d{1,4})?$")
PYTHON_RE = re.compile(r"^3\.\d{1,2}(\.\d{1,3})?$")


@dataclass(frozen=True)
class SpaceConfig:
    sdk: str
    title: str
    app_file: str | None  # None for docker
    app_port: int
    sdk_version: str | None
    python_version: str | None
    startup_timeout: float


@dataclass(frozen=True)
class ConfigProblem:
    stage: Stage
    message: str


def _front_matter(readme: str | None) -> dict[str, Any] | ConfigProblem:
    missing = ConfigProblem(
        Stage.CONFIG_ERROR,
        "Missing configuration in README.md: add a YAML block between '---' lines with at least 'sdk: gradio' "
        "(or streamlit, docker, static)",
    )
    if readme is None or not readme.startswith("---"):
        return missing
    raw, _ = split_front_matter(readme)
    if raw is None:
        return ConfigProblem(Stage.CONFIG_ERROR, "README.md: the YAML block is not closed by a '---' line")
    try:
        data = load_yaml(raw)
    except yaml.YAMLError as e:
        return ConfigProblem(Stage.CONFIG_ERROR, f"README.md: invalid YAML: {e}")
    if data is None:
        return missing
    if not isinstance(data, dict):
        return ConfigProblem(Stage.CONFIG_ERROR, "README.md: the YAML block must be a mapping of keys to values")
    return data


def parse_duration(value: Any) -> float:
    """``30m`` / ``1h`` / ``45s`` / ``600`` (seconds) → seconds. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        value = str(value)
    m = DURATION_RE.match(str(value))
    if not m:
        raise ValueError(value)
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def parse_space_config(readme: str | None, paths: set[str]) -> SpaceConfig | ConfigProblem:
    data = _front_matter(readme)
    if isinstance(data, ConfigProblem):
        return data
    sdk = data.get("sdk")
    if sdk is None:
        return ConfigProblem(Stage.CONFIG_ERROR, "README.md: 'sdk' is missing (gradio, streamlit, docker or static)")
    if sdk not in SDKS:
        return ConfigProblem(Stage.CONFIG_ERROR, f"README.md: unknown sdk {sdk!r}; use one of {', '.join(SDKS)}")
    errors = []

    def text(key: str, pattern: re.Pattern[str] | None = None) -> str | None:
        v = data.get(key)
        if v is None:
            return None
        v = str(v)
        if pattern is not None and not pattern.match(v):
            errors.append(f"'{key}' has an invalid value {v[:60]!r}")
        return v

    sdk_version = text("sdk_version", VERSION_RE)
    python_version = text("python_version", PYTHON_RE)
    title = text("title") or ""
    app_port = data.get("app_port", DEFAULT_PORT.get(sdk, 7860))
    if isinstance(app_port, bool) or not isinstance(app_port, int) or not 1 <= app_port <= 65535:
        errors.append(f"'app_port' must be a port number between 1 and 65535, not {str(app_port)[:60]!r}")
    timeout = DEFAULT_STARTUP_TIMEOUT
    if "startup_duration_timeout" in data:
        try:
            timeout = parse_duration(data["startup_duration_timeout"])
        except ValueError:
            errors.append("'startup_duration_timeout' must look like 30m, 1h or 90s")
        else:
            if not 1 <= timeout <= MAX_STARTUP_TIMEOUT:
                errors.append("'startup_duration_timeout' must be between 1s and 24h")
    app_file = None
    if sdk != "docker":
        app_file = text("app_file") or DEFAULT_APP_FILE[sdk]
        if app_file.startswith("/") or ".." in app_file.split("/") or "\\" in app_file:
            errors.append(f"'app_file' must be a path inside the repo, not {app_file[:60]!r}")
    if errors:
        return ConfigProblem(Stage.CONFIG_ERROR, "README.md: " + "; ".join(errors))
    if app_file is not None and app_file not in paths:
        return ConfigProblem(Stage.NO_APP_FILE, f"No application file: {app_file} is not in the repo")
    if sdk == "docker" and "Dockerfile" not in paths:
        return ConfigProblem(Stage.NO_APP_FILE, "No application file: a docker Space needs a Dockerfile")
    return SpaceConfig(sdk, title, app_file, int(app_port), sdk_version, python_version, timeout)
