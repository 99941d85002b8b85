"""NDJSON reading with bounded memory: a 2.x ``upload_file`` of an N-GB file sends ONE line of N x 1.33 GB (the file
base64-encoded inline). Lines below ``big`` bytes go through ``json.loads``; a longer line is parsed by a small
streaming JSON reader that writes every string longer than ``big`` bytes to a temporary file (``LargeString``)
instead of memory. Inside strings the reader jumps with ``bytes.find``, so a 1 GB string costs a few C-level scans.

No JSON library streams a single string value in parts (ijson and friends yield it whole), hence this module.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from spacehub.errors import BadRequest
from spacehub.nesting import MAX_JSON_DEPTH, JsonTooDeep, check_depth

__all__ = ["MAX_JSON_DEPTH", "JsonTooDeep", "LargeString", "check_depth", "iter_ndjson", "loads"]

READ_CHUNK = 1 << 20
MAX_KEY_BYTES = 64 * 1024
_NUMBER_CHARS = frozenset(b"+-.eE0123456789")
_WS = frozenset(b" \t\r")
_ESCAPES = {ord('"'): b'"', ord("\\"): b"\\", ord("/"): b"/", ord("b"): b"\b", ord("f"): b"\f", ord("n"): b"\n",
            ord("r"): b"\r", ord("t"): b"\t"}  # fmt: skip


@dataclass(frozen=True)
class LargeString:
    """A JSON string too long for memory: its UTF-8 bytes are in ``path``."""

    path: Path
    size: int


class _Malformed(Exception):
    pass


def loads(data: bytes | str) -> Any:
    """``json.loads`` that refuses nesting deeper than ``MAX_JSON_DEPTH`` (the C decoder recurses, and overflows
    near 1,000 levels). Raises: ValueError (``json.JSONDecodeError``, ``UnicodeDecodeError``, ``JsonTooDeep``)."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise JsonTooDeep() from None
    check_depth(value)
    return value


def iter_ndjson(stream: IO[bytes], tmp_dir: Path, big: int = 8 << 20) -> Iterator[tuple[int, Any]]:
    """(line number, value) for each non-empty line. Strings over ``big`` bytes become ``LargeString`` files in
    ``tmp_dir`` (the caller owns ``tmp_dir`` and removes it).

    Raises: BadRequest on malformed JSON.
    """
    r = _Reader(stream, tmp_dir, big)
    lineno = 0
    while True:
        lineno += 1
        nl = r.buf.find(b"\n", r.pos)
        while nl < 0 and len(r.buf) - r.pos <= big and r.fill():
            nl = r.buf.find(b"\n", r.pos)
        if nl >= 0 and nl - r.pos <= big:  # the fast path: a whole, small line in the buffer
            line = r.buf[r.pos : nl]
            r.pos = nl + 1
            if line.strip():
                yield lineno, _loads(line, lineno)
            continue
        if r.pos >= len(r.buf) and not r.fill():
            return
        if len(r.buf) - r.pos <= big:  # last line without newline, small
            line = r.buf[r.pos :]
            r.pos = len(r.buf)
            if line.strip():
                yield lineno, _loads(line, lineno)
            continue
        try:
            value = r.value()
            end = r.peek()
        except _Malformed as e:
            raise BadRequest(f"Malformed NDJSON at line {lineno}: {e}") from None
        if end not in (None, ord("\n")):
            raise BadRequest(f"Malformed NDJSON at line {lineno}: extra data after the JSON value")
        r.pos += 1 if end is not None else 0
        yield lineno, value


def _loads(line: bytes, lineno: int) -> Any:
    try:
        return loads(line)
    except ValueError as e:
        raise BadRequest(f"Malformed NDJSON at line {lineno}: {e}") from None


class _Reader:
    def __init__(self, stream: IO[bytes], tmp_dir: Path, big: int) -> None:
        self.stream, self.tmp_dir, self.big = stream, tmp_dir, big
        self.buf = b""
        self.pos = 0

    def fill(self) -> bool:
        chunk = self.stream.read(READ_CHUNK)
        if not chunk:
            return False
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0
        return True

    def peek(self) -> int | None:
        """The next byte that is not blank (a newline is NOT blank: it ends the line), or None at the end."""
        while True:
            buf, n = self.buf, len(self.buf)
            while self.pos < n and buf[self.pos] in _WS:
                self.pos += 1
            if self.pos < n:
                return buf[self.pos]
            if not self.fill():
                return None

    def expect(self, ch: bytes) -> None:
        if self.peek() != ch[0]:
            raise _Malformed(f"expected {ch.decode()!r}")
        self.pos += 1

    def value(self, depth: int = 1) -> Any:
        c = self.peek()
        if c in (ord("{"), ord("[")) and depth > MAX_JSON_DEPTH:
            raise _Malformed(str(JsonTooDeep()))
        if c == ord("{"):
            return self._object(depth)
        if c == ord("["):
            return self._array(depth)
        if c == ord('"'):
            self.pos += 1
            return self._string()
        if c is not None and c in _NUMBER_CHARS:
            return self._number()
        for word, val in ((b"true", True), (b"false", False), (b"null", None)):
            if c == word[0]:
                while len(self.buf) - self.pos < len(word) and self.fill():
                    pass
                if self.buf[self.pos : self.pos + len(word)] == word:
                    self.pos += len(word)
                    return val
        raise _Malformed("unexpected character" if c is not None else "unexpected end of line")

    def _object(self, depth: int) -> dict[str, Any]:
        self.pos += 1
        out: dict[str, Any] = {}
        if self.peek() == ord("}"):
            self.pos += 1
            return out
        while True:
            self.expect(b'"')
            key = self._string(limit=MAX_KEY_BYTES)
            assert isinstance(key, str)
            self.expect(b":")
            out[key] = self.value(depth + 1)
            c = self.peek()
            self.pos += 1
            if c == ord("}"):
                return out
            if c != ord(","):
                raise _Malformed("expected ',' or '}'")

    def _array(self, depth: int) -> list[Any]:
        self.pos += 1
        out: list[Any] = []
        if self.peek() == ord("]"):
            self.pos += 1
            return out
        while True:
            out.append(self.value(depth + 1))
            c = self.peek()
            self.pos += 1
            if c == ord("]"):
                return out
            if c != ord(","):
                raise _Malformed("expected ',' or ']'")

    def _number(self) -> int | float:
        parts = []
        while True:
            start = self.pos
            while self.pos < len(self.buf) and self.buf[self.pos] in _NUMBER_CHARS:
                self.pos += 1
            parts.append(self.buf[start : self.pos])
            if self.pos < len(self.buf) or not self.fill():
                break
        text = b"".join(parts)
        try:
            return json.loads(text)  # type: ignore[no-any-return]
        except ValueError:
            raise _Malformed(f"invalid number {text[:40]!r}") from None

    def _string(self, limit: int | None = None) -> str | LargeString:
        """Read after the opening quote up to the closing one, spilling to a file past ``big`` bytes (or refusing
        more than ``limit`` bytes, for object keys)."""
        parts: list[bytes] = []
        held = 0
        spill: IO[bytes] | None = None
        spill_path: Path | None = None
        written = 0
        # The next '"' and '\\' at or after pos, found with bytes.find (memchr: GB/s, where a regex character class
        # crawls at ~150 MB/s) and remembered until pos passes them, so a string full of escapes stays linear.
        # len(buf) = none in this buffer; both are looked up again whenever fill() replaces the buffer.
        seen, quote, backslash = None, -1, -1
        while True:
            buf, pos = self.buf, self.pos
            if buf is not seen:
                seen, quote, backslash = buf, -1, -1
            if quote < pos:
                quote = buf.find(b'"', pos)
                quote = quote if quote >= 0 else len(buf)
            if backslash < pos:
                backslash = buf.find(b"\\", pos)
                backslash = backslash if backslash >= 0 else len(buf)
            end = quote if quote < backslash else backslash
            piece = self.buf[self.pos : end]
            self.pos = end
            if end == len(self.buf):
                parts.append(piece)
                held += len(piece)
                if not self.fill():
                    raise _Malformed("unterminated string")
            elif self.buf[end] == ord('"'):
                parts.append(piece)
                held += len(piece)
                self.pos = end + 1
                break
            else:
                parts.append(piece)
                parts.append(self._escape())
                held += len(piece) + len(parts[-1])
            if limit is not None and held > limit:
                raise _Malformed("object key too long")
            if held > self.big and limit is None:
                if spill is None:
                    spill, spill_path = self._spill_file()
                data = b"".join(parts)
                spill.write(data)
                written += len(data)
                parts, held = [], 0
        data = b"".join(parts)
        if spill is None and (held <= self.big or limit is not None):
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                raise _Malformed("invalid UTF-8 in a string") from None
        if spill is None:
            spill, spill_path = self._spill_file()
        spill.write(data)
        spill.close()
        assert spill_path is not None
        return LargeString(spill_path, written + len(data))

    def _spill_file(self) -> tuple[IO[bytes], Path]:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.tmp_dir, prefix="str-")
        return os.fdopen(fd, "wb"), Path(name)

    def _escape(self) -> bytes:
        """Decode one backslash escape at ``pos`` (surrogate pairs included)."""
        while len(self.buf) - self.pos < 12 and self.fill():
            pass
        esc = self.buf[self.pos + 1] if self.pos + 1 < len(self.buf) else None
        if esc in _ESCAPES:
            self.pos += 2
            return _ESCAPES[esc]
        if esc == ord("u"):
            seq = self.buf[self.pos : self.pos + 6]
            if re.fullmatch(rb"\\u[dD][89abAB][0-9a-fA-F]{2}", seq):
                seq = self.buf[self.pos : self.pos + 12]
            try:
                text = json.loads(b'"' + seq + b'"')
            except ValueError:
                raise _Malformed("invalid \\u escape") from None
            self.pos += len(seq)
            return text.encode("utf-8", "surrogatepass")
        raise _Malformed("invalid escape")
