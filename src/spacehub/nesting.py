"""Limits on nesting, for every parser of untrusted documents (JSON bodies, NDJSON lines, README front matter):
the C JSON decoder and PyYAML recurse, and overflow near 1,000 levels; YAML aliases can share one list a billion
times. Below every layer: services and the runtime both parse what users send."""

from __future__ import annotations

from typing import Any

MAX_JSON_DEPTH = 64  # arrays and objects nested deeper than this are refused (no client sends more than a few)


class JsonTooDeep(ValueError):
    def __init__(self) -> None:
        super().__init__(f"arrays and objects are nested more than {MAX_JSON_DEPTH} levels deep")


def check_depth(value: Any, limit: int = MAX_JSON_DEPTH, max_nodes: int | None = None) -> None:
    """Raises: JsonTooDeep when ``value`` nests lists and dicts more than ``limit`` levels (walked without recursion),
    ValueError when it holds more than ``max_nodes`` of them (YAML aliases can share one list a billion times)."""
    stack = [(value, 1)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            raise JsonTooDeep()
        seen += 1
        if max_nodes is not None and seen > max_nodes:
            raise ValueError(f"more than {max_nodes} arrays and objects")
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
