"""The streaming NDJSON reader agrees with json.loads, spills long strings to files, and refuses malformed lines."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest

from spacehub.errors import BadRequest
from spacehub.services.ndjson import LargeString, iter_ndjson

SAMPLES = [
    {"key": "header", "value": {"summary": "Upload", "description": "", "parentCommit": "abc12"}},
    {"key": "file", "value": {"content": "aGVsbG8=", "path": "dir/a b.txt", "encoding": "base64"}},
    {"a": [1, -2.5, 3e10, True, False, None, [], {}], "b": 'quote " backslash \\ slash / tab \t nl \n'},
    {"unicode": "héllo wörld ✓ 😀", "ctrl": "\u0001\u001f", "nested": {"x": {"y": [{"z": "deep"}]}}},
    [1, 2, {"k": "v"}],
    "just a string",
    12345678901234567890,
]


def read(text: bytes, tmp_path: Path, big: int) -> list[object]:
    return [v for _, v in iter_ndjson(io.BytesIO(text), tmp_path, big=big)]


@pytest.mark.parametrize("big", [4, 16, 1 << 20])
@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_values_match_json_loads_in_both_paths(tmp_path: Path, big: int, ensure_ascii: bool) -> None:
    lines = [json.dumps(v, ensure_ascii=ensure_ascii) for v in SAMPLES]
    body = ("\n".join(lines) + "\n").encode()
    got = read(body, tmp_path, big)
    for want, value in zip(SAMPLES, got, strict=True):
        assert _materialize(value) == want


def _materialize(v: object) -> object:
    if isinstance(v, LargeString):
        return v.path.read_bytes().decode()
    if isinstance(v, dict):
        return {k: _materialize(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_materialize(x) for x in v]
    return v


def test_long_string_is_spilled_to_a_file_with_exact_bytes(tmp_path: Path) -> None:
    rnd = random.Random(7)
    content = "".join(
        rnd.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(300_000)
    )
    line = json.dumps({"key": "file", "value": {"content": content, "path": "big.bin", "encoding": "base64"}})
    (value,) = read(line.encode(), tmp_path, big=50_000)
    big = value["value"]["content"]
    assert isinstance(big, LargeString)
    assert big.size == len(content)
    assert big.path.read_text() == content
    assert value["value"]["path"] == "big.bin"


@pytest.mark.parametrize("chunk", [1, 3, 7, 64])
def test_quotes_and_escapes_straddling_buffer_refills(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """The string scanner remembers where the next quote / backslash is: refills must not leave it stale."""
    monkeypatch.setattr("spacehub.services.ndjson.READ_CHUNK", chunk)
    rnd = random.Random(chunk)
    pieces = ['"', "\\", "\n", "/", "é", "😀", "\u0001", "a", "bcdefgh"]
    values = [
        {"key": "".join(rnd.choice(pieces) for _ in range(8)), "value": "".join(rnd.choice(pieces) for _ in range(400))}
        for _ in range(20)
    ]
    body = "\n".join(json.dumps(v, ensure_ascii=rnd.random() < 0.5) for v in values).encode()
    for big in (2, 50, 1 << 20):
        assert [_materialize(v) for v in read(body, tmp_path, big)] == values


def test_blank_lines_are_skipped_and_the_last_line_needs_no_newline(tmp_path: Path) -> None:
    body = b'\n{"a": 1}\n\n   \n{"b": 2}'
    assert read(body, tmp_path, 4) == [{"a": 1}, {"b": 2}]
    assert read(body, tmp_path, 1 << 20) == [{"a": 1}, {"b": 2}]


@pytest.mark.parametrize(
    "bad",
    [b'{"a": 1', b'{"a" 1}', b'{"a": "x}', b'{"a": tru}', b'{"a": 1} extra', b'{"a": "\\q"}', b"{,}", b"[1 2]"],
)
@pytest.mark.parametrize("big", [2, 1 << 20])
def test_malformed_lines_are_refused(tmp_path: Path, bad: bytes, big: int) -> None:
    with pytest.raises(BadRequest, match="Malformed NDJSON at line 2"):
        read(b'{"ok": true}\n' + bad + b"\n", tmp_path, big)
