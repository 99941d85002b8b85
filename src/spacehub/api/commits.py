"""Uploads: preupload and the NDJSON commit endpoint."""

from __future__ import annotations

import tempfile
from typing import IO, Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from spacehub.api import responses as r
from spacehub.api import schemas
from spacehub.errors import PayloadTooLarge
from spacehub.services import commits, pulls, repos
from spacehub.web.deps import base_url, ctx_of, json_body, qbool, raw, unit
from spacehub.web.openapi import answers

router = APIRouter()
SPOOL_IN_MEMORY = 32 * 1024 * 1024


@router.post(
    "/api/{rtype:repotype}/{ns}/{name}/preupload/{rev}",
    openapi_extra=schemas.body(schemas.PreuploadRequest),
    **answers(r.PreuploadInfo),
)
async def preupload(request: Request, rtype: str, ns: str, name: str, rev: str) -> dict[str, Any]:
    """Serves the upload-mode negotiation of every upload: POST /api/{T}/{id}/preupload/{rev}."""
    body = await json_body(request)

    def run() -> dict[str, Any]:
        with unit(request) as (ctx, s, p):
            create_pr = qbool(request.query_params.get("create_pr"))
            repo, ref = pulls.commit_access(s, p, rtype, f"{ns}/{name}", raw(rev), create_pr)
            rev_or_sha = raw(rev) if commits.is_sha(raw(rev)) else ref
            return commits.preupload(ctx, s, repo, rev_or_sha, body, request.headers.get("user-agent"))

    return await run_in_threadpool(run)


async def spool_body(request: Request) -> IO[bytes]:
    """The request body in a temporary file (in memory while small), refusing more than the configured limit."""
    limit = ctx_of(request).settings.storage.max_request_bytes
    f = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, dir=ctx_of(request).settings.tmp_dir)  # noqa: SIM115
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            f.close()
            raise PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes")
        f.write(chunk)
    f.seek(0)
    return f  # type: ignore[return-value]


@router.post(
    "/api/{rtype:repotype}/{ns}/{name}/commit/{rev}", openapi_extra=schemas.commit_body(), **answers(r.CommitInfo)
)
async def create_commit(request: Request, rtype: str, ns: str, name: str, rev: str) -> dict[str, Any]:
    """Serves `HfApi.create_commit`, `upload_file`, `upload_folder`, `delete_file`, `delete_folder`:
    POST /api/{T}/{id}/commit/{rev} (NDJSON)."""
    body = await spool_body(request)

    def run() -> dict[str, Any]:
        with body, unit(request) as (ctx, s, p):
            create_pr = qbool(request.query_params.get("create_pr"))
            repo, ref = pulls.commit_access(s, p, rtype, f"{ns}/{name}", raw(rev), create_pr)
            out = commits.create_commit(ctx, s, p, repo, ref, body, create_pr=create_pr)
            url = repos.repo_url(base_url(request), rtype, repo.full_name)
            answer = {
                "success": True,
                "commitOid": out["commitOid"],
                "commitUrl": f"{url}/commit/{out['commitOid']}",
                "hookOutput": "",
            }
            if "pullRequestNum" in out:
                answer["pullRequestUrl"] = f"{url}/discussions/{out['pullRequestNum']}"
            return answer

    return await run_in_threadpool(run)
