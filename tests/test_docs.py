"""The docs keep up with the code: every setting is in docs/settings.md, every API route in docs/api.md."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from spacehub.config import Settings

DOCS = Path(__file__).resolve().parent.parent / "docs"


def setting_names(model: type[BaseModel], prefix: str = "") -> list[str]:
    names = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            names += setting_names(ann, f"{prefix}{name}.")
        else:
            names.append(prefix + name)
    return names


def test_every_setting_is_documented() -> None:
    text = (DOCS / "settings.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_.]+)` \|", text, re.M))
    missing = [n for n in setting_names(Settings) if n not in documented]
    assert not missing, f"undocumented settings: {missing}"


def test_every_api_route_is_documented(tmp_path: Path) -> None:
    from spacehub.app import create_app

    app = create_app(Settings(data_dir=tmp_path))
    text = (DOCS / "api.md").read_text()
    missing = []
    for route in app.routes:
        path = getattr(route, "path", "")
        if path.startswith("/api/openapi"):
            continue
        shown = re.sub(r"\{(\w+):\w+\}", r"{\1}", path)
        if f"`{shown}`" not in text and f"{shown}" not in text:
            missing.append(shown)
    assert not missing, f"routes missing from docs/api.md: {missing}"
