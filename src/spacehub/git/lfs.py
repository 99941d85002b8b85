"""The git-lfs batch API (``{remote}.git/info/lfs``) for git-lfs and huggingface_hub ≤ 1.19: batch, basic
transfers (PUT/GET of an object's bytes at a signed ``href``), verify, and an empty lock list.

Objects live in the sha256-addressed blob store shared by every repo, but a repo may use only its own
(`services.lfs_objects`): an object stored for another repo gets upload actions again (the uploader proves they hold
its bytes; the store keeps one copy), and a download answers only the repo's objects. The batch call is where
permissions are checked (upload needs write, or, for a batch whose ``ref`` is ``refs/pr/N``, what a commit to that
pull request needs: its author or a writer while it is open; download read); the transfer URLs it hands out are signed
(``signing``, an upload's for its uploader too), because huggingface_hub sends no credentials with the PUT. The
transfer is always ``basic``, never Xet.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from spacehub.errors import (
    BadRequest,
    Conflict,
    EntryNotFound,
    Forbidden,
    NotImplementedOnHub,
    PayloadTooLarge,
    Unprocessable,
)
from spacehub.git import lfs_schemas, signing
from spacehub.git.access import LFS_MEDIA_TYPE, GitRepo, authorize, repo_route
from spacehub.services import accounts, lfs_objects, pulls, repos
from spacehub.services.context import HubContext
from spacehub.storage.blobs import StagedBlob, Stager, is_sha256
from spacehub.storage.models import LfsObject
from spacehub.web.deps import base_url, bearer_token, ctx_of, json_body

router = APIRouter()
OPERATIONS = {"upload": "write", "download": "read"}
MAX_OBJECTS = 10_000


def lfs_json(body: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status_code, media_type=LFS_MEDIA_TYPE)


@repo_route(router, "/info/lfs/objects/batch", ["POST"], lfs=True, openapi=lfs_schemas.batch_openapi())
async def lfs_batch(request: Request, rtype: str, repo_id: str) -> Response:
    """Serves git-lfs and `HfApi` LFS uploads (≤ 1.19): POST /{prefix}{id}.git/info/lfs/objects/batch."""
    body = await json_body(request)
    operation, objects = parse_batch(body)
    try:
        repo = await authorize(request, rtype, repo_id, OPERATIONS[operation])
    except Forbidden:
        ref = body.get("ref") if isinstance(body, dict) else None
        name = ref.get("name") if isinstance(ref, dict) else None
        if operation != "upload" or not isinstance(name, str) or not pulls.PR_REF.match(name):
            raise
        repo = await run_in_threadpool(_pull_request_upload, request, rtype, repo_id, name)
    ctx, base = ctx_of(request), base_url(request)

    def answer_all() -> list[dict[str, Any]]:
        oids = [o["oid"] for o in objects if isinstance(o.get("oid"), str) and is_sha256(o["oid"])]
        usable = lfs_objects.usable(ctx, repo.id, repo.user, oids)
        return [batch_object(ctx, repo, operation, o, base, usable) for o in objects]

    answer = await run_in_threadpool(answer_all)
    return lfs_json({"transfer": "basic", "objects": answer, "hash_algo": "sha256"})


def _pull_request_upload(request: Request, rtype: str, repo_id: str, ref: str) -> GitRepo:
    """An upload for ``refs/pr/N`` (git-lfs pushing there, huggingface_hub ≤ 1.19 committing there) by whoever may
    commit to that pull request (`pulls.commit_access`): its objects are the uploader's own until committed
    (`lfs_objects`), so nobody else may use them. Raises: Forbidden, RevisionNotFound, BadRequest."""
    ctx = ctx_of(request)
    with ctx.db.transaction() as s:
        p = accounts.authenticate(s, bearer_token(request))
        repo, _ = pulls.commit_access(s, p, rtype, repo_id, ref, False)
        return GitRepo(repo.id, repo.type, repo.full_name, p.name)


def parse_batch(body: Any) -> tuple[str, list[dict[str, Any]]]:
    """The operation and objects of a batch request. Raises: BadRequest, Unprocessable, Conflict (hash algorithm)."""
    if not isinstance(body, dict):
        raise BadRequest("Expected a JSON object with 'operation' and 'objects'")
    operation = body.get("operation")
    if not isinstance(operation, str) or operation not in OPERATIONS:
        raise Unprocessable("'operation' must be 'upload' or 'download'")
    hash_algo = body.get("hash_algo", "sha256")
    if not isinstance(hash_algo, str):
        raise Unprocessable("'hash_algo' must be a string")
    if hash_algo != "sha256":
        raise Conflict("Only the sha256 hash algorithm is supported")
    objects = body.get("objects")
    if not isinstance(objects, list) or not all(isinstance(o, dict) for o in objects):
        raise Unprocessable("'objects' must be a list of {'oid', 'size'} objects")
    if len(objects) > MAX_OBJECTS:
        raise Unprocessable(f"At most {MAX_OBJECTS} objects per batch request")
    return operation, objects


def batch_object(
    ctx: HubContext, repo: GitRepo, operation: str, obj: dict[str, Any], base: str, usable: set[str]
) -> dict[str, Any]:
    """One object of the batch answer: actions to take, none (already there), or an ``error``. ``usable``: the
    objects this caller may use in this repo (`lfs_objects.usable`); any other is missing, as far as they know."""
    oid, size = obj.get("oid"), obj.get("size")
    if not isinstance(oid, str) or not is_sha256(oid) or not isinstance(size, int) or size < 0:
        return _error(oid, size, 422, "Invalid object: 'oid' must be a lowercase sha256 and 'size' an integer ≥ 0")
    have = ctx.blobs.has(oid) and oid in usable
    if have and ctx.blobs.size(oid) != size:
        return _error(oid, size, 422, f"Object {oid} exists with another size ({ctx.blobs.size(oid)} bytes)")
    out: dict[str, Any] = {"oid": oid, "size": size}
    ttl = ctx.settings.storage.lfs_url_ttl_seconds
    key = signing.signing_key(ctx.settings.data_dir)
    href = f"{base}/{repo.url_path}/info/lfs/objects/{oid}"
    if operation == "download":
        if not have:
            return _error(oid, size, 404, f"Object {oid} does not exist on the server")
        query = _query(signing.sign(key, "download", repo.id, oid, size, ttl))
        out.update(authenticated=True, actions={"download": {"href": f"{href}?{query}", "expires_in": ttl}})
        return out
    if have:
        return out  # no actions: the client skips it
    limit = ctx.settings.storage.max_request_bytes
    if size > limit:
        return _error(oid, size, 422, f"Object of {size} bytes is over the limit of {limit} bytes")
    by = repo.user or ""
    query = _query({**signing.sign(key, "upload", _uploader(repo.id, by), oid, size, ttl), "by": by})
    # not "authenticated": git-lfs then sends credentials to verify (and to the PUT, which needs none)
    out["actions"] = {
        "upload": {"href": f"{href}?{query}", "header": {}, "expires_in": ttl},
        "verify": {"href": f"{base}/{repo.url_path}/info/lfs/verify", "header": {}, "expires_in": ttl},
    }
    return out


def _error(oid: Any, size: Any, code: int, message: str) -> dict[str, Any]:
    return {"oid": oid, "size": size, "error": {"code": code, "message": message}}


def _query(params: dict[str, str]) -> str:
    return "&".join(f"{k}={v}" for k, v in params.items())


def _uploader(repo_id: str, user: str) -> str:
    """What an upload URL is signed for: the repo and who may upload (the object is theirs to commit, then)."""
    return f"{repo_id}\n{user}"


def _signed_repo_id(ctx: HubContext, rtype: str, repo_id: str) -> str:
    """The id of the repo an href names (no permission check: the signature is the permission)."""
    with ctx.db.transaction() as s:
        repo = repos.find_repo(s, rtype, repo_id)
        return repo.id if repo is not None else ""


@repo_route(router, "/info/lfs/objects/{oid}", ["PUT"], lfs=True)
async def lfs_upload(request: Request, rtype: str, repo_id: str, oid: str) -> Response:
    """Receives an object's bytes at a signed href (no credentials): PUT /{prefix}{id}.git/info/lfs/objects/{oid}."""
    ctx = ctx_of(request)
    rid = await run_in_threadpool(_signed_repo_id, ctx, rtype, repo_id)
    by = request.query_params.get("by", "")
    key = signing.signing_key(ctx.settings.data_dir)
    size = signing.check(key, "upload", _uploader(rid, by), oid, request.query_params)
    stager = Stager(ctx.settings.tmp_dir, size)
    try:
        async for chunk in request.stream():
            stager.write(chunk)
            if stager.size > size:
                raise PayloadTooLarge(f"The body is larger than the {size} bytes this URL was signed for")
    except BaseException:
        stager.abort()
        raise
    staged = await run_in_threadpool(stager.finish)
    if staged.size != size or staged.sha256 != oid:
        staged.path.unlink(missing_ok=True)
        got = f"{staged.size} bytes, sha256 {staged.sha256}"
        raise Unprocessable(f"The body ({got}) does not match the object {oid} ({size} bytes)")
    await run_in_threadpool(store_object, ctx, staged)
    await run_in_threadpool(lfs_objects.uploaded, ctx, rid, by, oid)
    return Response(status_code=200)


def store_object(ctx: HubContext, staged: StagedBlob) -> None:
    """Move a checked upload into the blob store and record it (sha256, size, git blob sha1)."""
    ctx.blobs.put_staged(staged)
    try:
        with ctx.db.transaction() as s:
            if s.get(LfsObject, staged.sha256) is None:
                s.add(LfsObject(sha256=staged.sha256, size=staged.size, git_sha1=staged.git_sha1))
    except Exception:  # a concurrent upload of the same object recorded it first
        with ctx.db.transaction() as s:
            if s.get(LfsObject, staged.sha256) is None:
                raise


@repo_route(router, "/info/lfs/objects/{oid}", ["GET"], lfs=True)
async def lfs_download(request: Request, rtype: str, repo_id: str, oid: str) -> Response:
    """Serves an object's bytes: GET /{prefix}{id}.git/info/lfs/objects/{oid} (signed href, or read access)."""
    ctx = ctx_of(request)
    if "signature" in request.query_params:
        rid = await run_in_threadpool(_signed_repo_id, ctx, rtype, repo_id)
        signing.check(signing.signing_key(ctx.settings.data_dir), "download", rid, oid, request.query_params)
    else:
        repo = await authorize(request, rtype, repo_id, "read")
        if oid not in await run_in_threadpool(lfs_objects.usable, ctx, repo.id, repo.user, [oid]):
            raise EntryNotFound(f"Object {oid} does not exist on the server")
    if not ctx.blobs.has(oid):
        raise EntryNotFound(f"Object {oid} does not exist on the server")
    return FileResponse(ctx.blobs.path(oid), media_type="application/octet-stream")


@repo_route(router, "/info/lfs/verify", ["POST"], lfs=True)
async def lfs_verify(request: Request, rtype: str, repo_id: str) -> Response:
    """Confirms an upload (credentials required): POST /{prefix}{id}.git/info/lfs/verify {"oid", "size"}."""
    body = await json_body(request)
    # whoever may read and write somewhere (a pull request's author too): only objects they may use are confirmed
    repo = await authorize(request, rtype, repo_id, "contribute")
    if not isinstance(body, dict) or not isinstance(body.get("oid"), str) or not isinstance(body.get("size"), int):
        raise BadRequest("Expected {'oid': str, 'size': int}")
    oid, size = body["oid"], body["size"]
    ctx = ctx_of(request)
    if not ctx.blobs.has(oid) or oid not in await run_in_threadpool(lfs_objects.usable, ctx, repo.id, repo.user, [oid]):
        raise EntryNotFound(f"Object {oid} was not uploaded")
    if ctx.blobs.size(oid) != size:
        raise Unprocessable(f"Object {oid} has {ctx.blobs.size(oid)} bytes, not {size}")
    return lfs_json({"oid": oid, "size": size})


@repo_route(router, "/info/lfs/locks/verify", ["POST"], lfs=True)
async def lfs_locks_verify(request: Request, rtype: str, repo_id: str) -> Response:
    """Answers git-lfs's lock check before a push: 501, which makes git-lfs stop asking, silently. (A 200 or a 404
    makes it print advice that includes the remote URL, token and all.)"""
    raise NotImplementedOnHub("File locking is not supported by this SpaceHub server")
