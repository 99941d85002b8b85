"""Downloads: GET/HEAD ``/{prefix}{id}/resolve/{rev}/{path}`` with the exact headers `hf_hub_download` needs.

Served 200 directly (no same-host redirect), with ``X-Repo-Commit``, a content-hash ``ETag`` (git blob sha1, or the
sha256 for LFS files with ``X-Linked-Etag`` / ``X-Linked-Size``), ``Content-Length``, ``Accept-Ranges`` and single
byte ranges (206). Never any ``X-Xet-*`` header.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor

from spacehub.services import files, repos
from spacehub.web.deps import raw, unit
from spacehub.web.openapi import raw_answers

router = APIRouter()
CHUNK = 1024 * 1024
RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
_BYTES = {"type": "string", "format": "binary"}
DOWNLOAD = raw_answers(
    "application/octet-stream",
    _BYTES,
    "The file (X-Repo-Commit, ETag; X-Linked-Etag and X-Linked-Size for LFS files)",
    **{"206": {"description": "One byte range", "content": {"application/octet-stream": {"schema": _BYTES}}}},
)


class WebTypeConvertor(Convertor[str]):
    """``{t:webtype}`` matches the web prefixes datasets|spaces (models have none)."""

    regex = "datasets|spaces"

    def convert(self, value: str) -> str:
        return value[:-1]

    def to_string(self, value: str) -> str:
        return value + "s"


register_url_convertor("webtype", WebTypeConvertor())


@router.api_route("/{wtype:webtype}/{ns}/{name}/resolve/{rev}/{path:path}", methods=["GET", "HEAD"], **DOWNLOAD)
async def hf_hub_download(request: Request, wtype: str, ns: str, name: str, rev: str, path: str) -> Response:
    """Serves `hf_hub_download`, `snapshot_download`, `file_exists` for datasets and Spaces."""
    return await _resolve(request, wtype, f"{ns}/{name}", raw(rev), raw(path))


@router.api_route("/{ns}/{name}/resolve/{rev}/{path:path}", methods=["GET", "HEAD"], **DOWNLOAD)
async def hf_hub_download_model(request: Request, ns: str, name: str, rev: str, path: str) -> Response:
    """Serves `hf_hub_download` for models: GET/HEAD /{id}/resolve/{rev}/{path}."""
    return await _resolve(request, "model", f"{ns}/{name}", raw(rev), raw(path))


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """(start, end inclusive) for one satisfiable range, None to serve everything, "unsatisfiable" otherwise."""
    if not header:
        return None
    m = RANGE_RE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None  # multi-range or garbage: serve the whole file, as RFC 9110 allows
    if m.group(1):
        start = int(m.group(1))
        end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    else:
        start, end = max(size - int(m.group(2)), 0), size - 1
    if start >= size or start > end:
        return "unsatisfiable"
    return start, end


async def _resolve(request: Request, rtype: str, repo_id: str, rev: str, path: str) -> Response:
    def lookup() -> files.ResolvedFile:
        with unit(request) as (ctx, s, p):
            repo = repos.get_repo(s, p, rtype, repo_id)
            sha = ctx.git.resolve(repo.id, rev)
            f = files.resolve_file(ctx, repo, sha, path)
            if f.lfs_path is None and request.method == "GET":
                request.state.blob = ctx.git.read_blob(repo.id, f.blob_oid)
            return f

    f = await run_in_threadpool(lookup)
    headers = {
        "X-Repo-Commit": f.commit,
        "ETag": f'"{f.etag}"',
        "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream",
        "Content-Disposition": f"inline; filename*=UTF-8''{_quote(Path(path).name)}",
    }
    if f.lfs is not None and f.lfs_path is not None:
        headers["X-Linked-Etag"] = f'"{f.lfs.oid}"'
        headers["X-Linked-Size"] = str(f.size)
    size = f.size
    rng = parse_range(request.headers.get("range"), size)
    if rng == "unsatisfiable":
        headers["Content-Range"] = f"bytes */{size}"
        return Response(status_code=416, headers=headers)
    start, end = rng if isinstance(rng, tuple) else (0, size - 1)
    status = 206 if isinstance(rng, tuple) else 200
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    if f.lfs_path is not None:
        return StreamingResponse(_read_file(f.lfs_path, start, end), status_code=status, headers=headers)
    blob: bytes = request.state.blob
    return Response(blob[start : end + 1], status_code=status, headers=headers)


def _read_file(path: Path, start: int, end: int) -> Iterator[bytes]:
    with path.open("rb") as fh:
        fh.seek(start)
        left = end - start + 1
        while left > 0:
            chunk = fh.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")
