"""README.md front matter (the repo card): parsing, and what ``POST /api/validate-yaml`` says about it."""

from __future__ import annotations

from typing import Any

import yaml

from spacehub.frontmatter import load_yaml, split_front_matter
from spacehub.services.formats import SDKS


def parse_card(text: str) -> dict[str, Any]:
    """The front matter as a dict; {} when there is none or it is not a YAML mapping."""
    raw, _ = split_front_matter(text)
    if raw is None:
        return {}
    try:
        data = load_yaml(raw)
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def validate_card(text: str, repo_type: str) -> list[str]:
    """Errors in a README's metadata (empty list when valid)."""
    raw, _ = split_front_matter(text)
    if raw is None:
        return []
    try:
        data = load_yaml(raw)
    except yaml.YAMLError as e:
        return [f"Invalid YAML in README.md metadata: {e}"]
    if data is None:
        return []
    if not isinstance(data, dict):
        return ["README.md metadata must be a YAML mapping"]
    errors = []
    if repo_type == "space":
        sdk = data.get("sdk")
        if sdk is not None and sdk not in SDKS:
            errors.append(f'"sdk" must be one of {", ".join(SDKS)}')
        for key in ("app_port",):
            if key in data and not (isinstance(data[key], int) and 1 <= data[key] <= 65535):
                errors.append(f'"{key}" must be a port number (1-65535)')
    if "tags" in data and not isinstance(data["tags"], list | str):
        errors.append('"tags" must be a list of strings')
    return errors


CARD_DOCS = "https://huggingface.co/docs/hub/model-cards#model-card-metadata"
# Keys whose value the Hub reads as a string, or a list of strings: anything else is shown as a warning (the card is
# still accepted, as on the Hub; `tags` of another type is an error, above).
TEXT_OR_LIST = ("license", "language", "datasets", "base_model", "library_name", "pipeline_tag", "metrics")


def card_warnings(text: str, repo_type: str) -> list[str]:
    """What `validate-yaml` warns of in a README that has no errors: empty or missing metadata (the client shows it,
    as with the Hub's "empty or missing yaml metadata in repo card"), and values of the wrong kind for known keys."""
    raw, _ = split_front_matter(text)
    try:
        data = load_yaml(raw) if raw is not None else None
    except yaml.YAMLError:
        return []  # an error, reported by validate_card
    if not data:
        kind = {"space": "Space", "dataset": "dataset"}.get(repo_type, "model")
        return [f"empty or missing yaml metadata in repo card ({kind} card metadata: {CARD_DOCS})"]
    if not isinstance(data, dict):
        return []
    out = []
    for key in TEXT_OR_LIST:
        value = data.get(key)
        if value is None:
            continue
        if not (isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))):
            out.append(f'"{key}" should be a string or a list of strings, not {type(value).__name__}: {value!r:.80}')
    if repo_type == "space":
        for key in ("title", "emoji", "colorFrom", "colorTo"):
            if key in data and not isinstance(data[key], str):
                out.append(f'"{key}" should be a string')
    return out


def default_space_readme(title: str, sdk: str) -> str:
    lines = ["---", f"title: {title}", "emoji: 🚀", "colorFrom: blue", "colorTo: purple", f"sdk: {sdk}"]
    if sdk in ("gradio", "streamlit"):
        lines.append("app_file: app.py")
    lines += ["pinned: false", "---", "", "Check out the configuration reference at the SpaceHub docs.", ""]
    return "\n".join(lines)


DEFAULT_GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in [
        "*.7z",
        "*.arrow",
        "*.bin",
        "*.bz2",
        "*.ckpt",
        "*.ftz",
        "*.gz",
        "*.h5",
        "*.joblib",
        "*.lfs.*",
        "*.mlmodel",
        "*.model",
        "*.msgpack",
        "*.npy",
        "*.npz",
        "*.onnx",
        "*.ot",
        "*.parquet",
        "*.pb",
        "*.pickle",
        "*.pkl",
        "*.pt",
        "*.pth",
        "*.rar",
        "*.safetensors",
        "saved_model/**/*",
        "*.tar.*",
        "*.tar",
        "*.tflite",
        "*.tgz",
        "*.wasm",
        "*.xz",
        "*.zip",
        "*.zst",
        "*tfevents*",
    ]
)

STATIC_INDEX = """<!doctype html>
<html>
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width" />
    <title>My static Space</title>
    <link rel="stylesheet" href="style.css" />
  </head>
  <body>
    <div class="card">
      <h1>Welcome to your static Space!</h1>
      <p>You can modify this app directly by editing <i>index.html</i> in the Files and versions tab.</p>
    </div>
  </body>
</html>
"""

STATIC_CSS = """body {
  padding: 2rem;
  font-family: -apple-system, BlinkMacSystemFont, "Arial", sans-serif;
}

h1 {
  font-size: 16px;
  margin-top: 0;
}

.card {
  max-width: 620px;
  margin: 0 auto;
  padding: 16px;
  border: 1px solid lightgray;
  border-radius: 16px;
}
"""
