"""Static Spaces are served by SpaceHub itself, straight from the git tree at the serving revision (no process).

`StaticSpaceApp(ctx, repo_id, revision, index)` is a plain ASGI app the proxy hands requests to. Paths map to files
of the tree; a folder serves its ``index.html``; LFS files are served from the blob store; ETags are the blob ids.
"""

from __future__ import annotations

import mimetypes
import posixpath
from urllib.parse import unquote

from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from spacehub.services.context import HubContext
from spacehub.storage.blobs import MAX_POINTER_SIZE, parse_pointer


class StaticSpaceApp:
    def __init__(self, ctx: HubContext, repo_id: str, revision: str, index: str = "index.html") -> None:
        self.ctx, self.repo_id, self.revision, self.index = ctx, repo_id, revision, index

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        response = await _threadpool(self._respond, scope)
        await response(scope, receive, send)

    def _respond(self, scope: Scope) -> Response:
        if scope["method"] not in ("GET", "HEAD"):
            return PlainTextResponse("Method not allowed", status_code=405, headers={"Allow": "GET, HEAD"})
        path = posixpath.normpath(unquote(scope.get("path", "/"))).lstrip("/")
        if path in ("", "."):
            path = self.index
        git = self.ctx.git
        entry = git.entry(self.repo_id, self.revision, path)
        if entry is not None and entry.type == "directory":
            path = f"{path}/index.html"
            entry = git.entry(self.repo_id, self.revision, path)
        if entry is None or entry.type != "file" or ".." in path.split("/"):
            return PlainTextResponse("Not found", status_code=404)
        etag = f'"{entry.oid}"'
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        req_headers = dict(scope.get("headers") or [])
        if req_headers.get(b"if-none-match", b"").decode() == etag:
            return Response(status_code=304, headers=headers)
        media = mimetypes.guess_type(path)[0] or "application/octet-stream"
        if entry.size <= MAX_POINTER_SIZE:
            data = git.read_blob(self.repo_id, entry.oid)
            ptr = parse_pointer(data)
            if ptr is not None and self.ctx.blobs.has(ptr.oid):
                return FileResponse(self.ctx.blobs.path(ptr.oid), media_type=media, headers=headers)
            return Response(data, media_type=media, headers=headers)
        return Response(git.read_blob(self.repo_id, entry.oid), media_type=media, headers=headers)


async def _threadpool(fn, *args):  # type: ignore[no-untyped-def]
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)
