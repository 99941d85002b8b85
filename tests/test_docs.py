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


def all_routes(routes: list) -> list:
    """Every route, also inside included routers (FastAPI wraps them; the wrapper keeps the original router)."""
    out = []
    for r in routes:
        inner = getattr(r, "original_router", None)
        out += all_routes(inner.routes) if inner is not None else [r]
    return out


def test_every_api_route_is_documented(tmp_path: Path) -> None:
    from spacehub.wiring import build_app

    app = build_app(Settings(data_dir=tmp_path))
    text = (DOCS / "api.md").read_text()
    missing = []
    paths = [getattr(r, "path", "") for r in all_routes(app.routes)]
    assert len(paths) > 40, paths  # the walk must really see the routes
    for path in paths:
        if not path or path.startswith("/api/openapi"):
            continue
        shown = re.sub(r"\{(\w+):\w+\}", r"{\1}", path)
        if shown not in text:
            missing.append(shown)
    assert not missing, f"routes missing from docs/api.md: {missing}"
