"""The one parser of README.md front matter (the repo card, and a Space's configuration): split the YAML block
off, load it safely. `services.cards` (repo cards, validate-yaml) and `runtime.spaceconfig` (sdk, app_file,
app_port…) both read READMEs through it, so both refuse the same hostile YAML."""

from __future__ import annotations

from typing import Any

import yaml

from spacehub import nesting


def split_front_matter(text: str) -> tuple[str | None, str]:
    """(YAML text or None, body) of a README."""
    if not text.startswith("---"):
        return None, text
    lines = text.splitlines(keepends=True)
    if lines[0].strip() != "---":
        return None, text
    for i in range(1, len(lines)):
        if lines[i].strip() == "---":
            return "".join(lines[1:i]), "".join(lines[i + 1 :])
    return None, text


MAX_CARD_NODES = 100_000


def load_yaml(raw: str) -> Any:
    """``yaml.safe_load``, refusing what the JSON answers could not carry: nesting deeper than
    ``nesting.MAX_JSON_DEPTH`` (PyYAML recurses, and overflows near 1,000 levels) and alias bombs.
    Raises: yaml.YAMLError."""
    depth = _flow_depth(raw)
    if depth > nesting.MAX_JSON_DEPTH:  # before PyYAML, whose scanner is quadratic in the flow depth (3 s at 3,000)
        raise yaml.YAMLError(f"metadata refused: {nesting.JsonTooDeep()}")
    try:
        data = yaml.safe_load(raw)
        nesting.check_depth(data, max_nodes=MAX_CARD_NODES)
    except (RecursionError, ValueError) as e:
        message = str(e) if isinstance(e, ValueError) else str(nesting.JsonTooDeep())
        raise yaml.YAMLError(f"metadata refused: {message}") from None
    return data


def _flow_depth(raw: str) -> int:
    """The deepest nesting of flow collections (``[`` and ``{``) in ``raw``, quoted scalars and comments skipped: a
    linear pre-scan, so that hostile nesting is refused before the YAML parser spends time on it."""
    depth = deepest = 0
    quote: str | None = None
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if quote is not None:
            if (c == "\\" and quote == '"') or (c == "'" == quote and raw[i + 1 : i + 2] == "'"):
                i += 1  # an escaped character, or '' in a single-quoted scalar
            elif c == quote:
                quote = None
        elif c in "'\"" and (i == 0 or raw[i - 1] in " \t\n[{,:-?"):
            quote = c
        elif c == "#" and (i == 0 or raw[i - 1] in " \t\n"):
            end = raw.find("\n", i)
            i = n if end < 0 else end
            continue
        elif c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            depth = max(depth - 1, 0)
        i += 1
    return deepest
