"""Server-side git hooks for pushes (installed once into ``{data_dir}/hooks``, shared by every repo)."""

from __future__ import annotations

from pathlib import Path

from spacehub.config import Settings


def install_hooks(settings: Settings) -> Path:
    """Create the hooks folder every repo's ``core.hooksPath`` points at; returns it."""
    d = settings.data_dir / "hooks"
    d.mkdir(parents=True, exist_ok=True)
    return d
