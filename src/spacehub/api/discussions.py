"""Discussions and pull requests: /api/{T}/{id}/discussions[/{num}[/comment|title|status|merge|comment/{id}/…]],
and the previews of a Space's pull requests: /api/spaces/{id}/discussions/{num}/preview."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from spacehub.api import responses as r
from spacehub.api import schemas
from spacehub.services import discussions, previews, pulls
from spacehub.services.accounts import Principal
from spacehub.services.context import HubContext
from spacehub.web.deps import base_url, json_object, qbool, unit
from spacehub.web.openapi import answers

router = APIRouter()
PREFIX = "/api/{rtype:repotype}/{ns}/{name}/discussions"


@router.get(PREFIX)
def get_repo_discussions(request: Request, rtype: str, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.get_repo_discussions`: GET /api/{T}/{id}/discussions?p=&type=&status=&author=."""
    with unit(request) as (_, s, p):
        return discussions.list_discussions(s, p, rtype, f"{ns}/{name}", request.query_params)


@router.post(PREFIX, openapi_extra=schemas.body(schemas.CreateDiscussion))
async def create_discussion(request: Request, rtype: str, ns: str, name: str) -> dict[str, Any]:
    """Serves `HfApi.create_discussion` / `create_pull_request`: POST /api/{T}/{id}/discussions."""
    body = await json_object(request)

    def run() -> dict[str, Any]:
        with unit(request) as (ctx, s, p):
            return discussions.create_discussion(ctx, s, p, rtype, f"{ns}/{name}", body, base_url(request))

    return await run_in_threadpool(run)


@router.get(PREFIX + "/{num}")
def get_discussion_details(request: Request, rtype: str, ns: str, name: str, num: str) -> dict[str, Any]:
    """Serves `HfApi.get_discussion_details`: GET /api/{T}/{id}/discussions/{num}[?diff=1]."""
    number = discussions.parse_num(num)
    with unit(request) as (ctx, s, p):
        diff = qbool(request.query_params.get("diff"))
        return discussions.get_discussion_details(ctx, s, p, rtype, f"{ns}/{name}", number, diff)


async def _change(
    request: Request, num: str, use_case: Callable[[HubContext, Session, Principal, int, dict[str, Any]], Any]
) -> Any:
    """Read the JSON body, then run ``use_case`` in one unit of work in the thread pool."""
    body = await json_object(request)
    number = discussions.parse_num(num)

    def run() -> Any:
        with unit(request) as (ctx, s, p):
            return use_case(ctx, s, p, number, body)

    return await run_in_threadpool(run)


@router.post(PREFIX + "/{num}/comment", openapi_extra=schemas.body(schemas.CommentDiscussion))
async def comment_discussion(request: Request, rtype: str, ns: str, name: str, num: str) -> dict[str, Any]:
    """Serves `HfApi.comment_discussion`: POST /api/{T}/{id}/discussions/{num}/comment {comment}."""
    return await _change(
        request,
        num,
        lambda ctx, s, p, n, body: discussions.comment_discussion(ctx, s, p, rtype, f"{ns}/{name}", n, body),
    )


@router.post(PREFIX + "/{num}/title", openapi_extra=schemas.body(schemas.RenameDiscussion))
async def rename_discussion(request: Request, rtype: str, ns: str, name: str, num: str) -> dict[str, Any]:
    """Serves `HfApi.rename_discussion`: POST /api/{T}/{id}/discussions/{num}/title {title}."""
    return await _change(
        request,
        num,
        lambda ctx, s, p, n, body: discussions.rename_discussion(ctx, s, p, rtype, f"{ns}/{name}", n, body),
    )


@router.post(PREFIX + "/{num}/status", openapi_extra=schemas.body(schemas.ChangeDiscussionStatus))
async def change_discussion_status(request: Request, rtype: str, ns: str, name: str, num: str) -> dict[str, Any]:
    """Serves `HfApi.change_discussion_status`: POST /api/{T}/{id}/discussions/{num}/status {status, comment?}."""
    return await _change(
        request,
        num,
        lambda ctx, s, p, n, body: discussions.change_discussion_status(ctx, s, p, rtype, f"{ns}/{name}", n, body),
    )


@router.post(PREFIX + "/{num}/merge", openapi_extra=schemas.body(schemas.MergePullRequest))
async def merge_pull_request(request: Request, rtype: str, ns: str, name: str, num: str) -> dict[str, Any]:
    """Serves `HfApi.merge_pull_request`: POST /api/{T}/{id}/discussions/{num}/merge {comment?}."""
    return await _change(
        request,
        num,
        lambda ctx, s, p, n, body: pulls.merge_pull_request(ctx, s, p, rtype, f"{ns}/{name}", n, body.get("comment")),
    )


@router.post(PREFIX + "/{num}/comment/{comment_id}/edit", openapi_extra=schemas.body(schemas.EditDiscussionComment))
async def edit_discussion_comment(
    request: Request, rtype: str, ns: str, name: str, num: str, comment_id: str
) -> dict[str, Any]:
    """Serves `HfApi.edit_discussion_comment`: POST /api/{T}/{id}/discussions/{num}/comment/{comment_id}/edit."""
    repo_id = f"{ns}/{name}"
    return await _change(
        request,
        num,
        lambda ctx, s, p, n, body: discussions.edit_discussion_comment(ctx, s, p, rtype, repo_id, n, comment_id, body),
    )


@router.post(PREFIX + "/{num}/comment/{comment_id}/hide")
async def hide_discussion_comment(
    request: Request, rtype: str, ns: str, name: str, num: str, comment_id: str
) -> dict[str, Any]:
    """Serves `HfApi.hide_discussion_comment`: POST /api/{T}/{id}/discussions/{num}/comment/{comment_id}/hide."""
    repo_id = f"{ns}/{name}"
    return await _change(
        request,
        num,
        lambda ctx, s, p, n, body: discussions.hide_discussion_comment(ctx, s, p, rtype, repo_id, n, comment_id),
    )


PREVIEW = "/api/spaces/{ns}/{name}/discussions/{num}/preview"


@router.post(PREVIEW, **answers(r.SpacePreview))
def request_preview(request: Request, ns: str, name: str, num: str) -> dict[str, Any]:
    """POST /api/spaces/{id}/discussions/{num}/preview: run the pull request's head at its own host (a writer of
    the Space or the pull request's author)."""
    number = discussions.parse_num(num)
    with unit(request) as (ctx, s, p):
        return previews.request_preview(ctx, s, p, f"{ns}/{name}", number, base_url(request))


@router.get(PREVIEW, **answers(r.SpacePreview))
def get_preview(request: Request, ns: str, name: str, num: str) -> dict[str, Any]:
    """GET /api/spaces/{id}/discussions/{num}/preview: where the preview is and its stage (404: none)."""
    number = discussions.parse_num(num)
    with unit(request) as (ctx, s, p):
        return previews.get_preview(ctx, s, p, f"{ns}/{name}", number, base_url(request))


@router.delete(PREVIEW, **answers(r.Empty))
def stop_preview(request: Request, ns: str, name: str, num: str) -> dict[str, Any]:
    """DELETE /api/spaces/{id}/discussions/{num}/preview: stop the preview (its author or a writer)."""
    number = discussions.parse_num(num)
    with unit(request) as (ctx, s, p):
        previews.stop_preview(ctx, s, p, f"{ns}/{name}", number)
    return {}
