"""The site's look: one style sheet, ``static/site.css`` (colours, type, the header bar, the stage badges), that the
Hub's pages link at ``/static/site.css`` and the proxy's own pages (waking, building, paused, error) inline. It lives
here, below both ``spacehub.ui`` and ``spacehub.proxy``, which may not import each other."""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).parent / "static"
SITE_CSS = (STATIC / "site.css").read_text(encoding="utf-8")
