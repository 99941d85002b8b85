"""Use cases: create a repo and duplicate one, with the Space options of their bodies, in one unit of work.

A create or duplicate body carries, for Spaces, settings of the new repo (``hardware``, ``sleepTimeSeconds``,
``secrets``, ``variables``, ``storageTier``, ``volumes``). Each kind is a `SpaceOption`, registered once in
``HubContext.space_options`` by the composition root: every option checks the body before anything is written, then
applies it to the new repo inside the same transaction. When anything fails (an option refuses with a 402, the
commit fails) the rows roll back and the git repositories made meanwhile are removed: a repo is its row and its git
directory. The API handlers, the CLI and web pages call these functions alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from spacehub.errors import BadRequest
from spacehub.services import accounts, duplicates, repos
from spacehub.services.accounts import Principal
from spacehub.services.context import HubContext
from spacehub.services.formats import repo_type_from, split_repo_id
from spacehub.storage.models import Repo


@dataclass(frozen=True)
class SpaceOption:
    """One kind of setting a create or duplicate body may carry."""

    check: Callable[[HubContext, str, dict[str, Any]], None]  # (repo type, body): raises before anything is written
    apply: Callable[[HubContext, Session, Principal, Repo, dict[str, Any]], None]  # to the new repo, same transaction


def str_or_none(body: dict[str, Any], key: str) -> str | None:
    v = body.get(key)
    if v is not None and not isinstance(v, str):
        raise BadRequest(f"'{key}' must be a string")
    return v


def create_repo(ctx: HubContext, token: str | None, body: dict[str, Any], base_url: str) -> dict[str, Any]:
    """`HfApi.create_repo`'s body → the new repo's ``{"url", "name", "id"}``. Raises: BadRequest, Unauthorized,
    Forbidden, Conflict, PaymentRequired (a priced flavor without a billing account)…"""
    name = body.get("name")
    if not isinstance(name, str):
        raise BadRequest("'name' is required")
    organization = str_or_none(body, "organization")
    if "/" in name and organization is None:
        organization, name = split_repo_id(name)
    repo_type = repo_type_from(str_or_none(body, "type"))
    for option in ctx.space_options:
        option.check(ctx, repo_type, body)
    with removed_on_failure(ctx) as created, ctx.db.transaction() as s:
        p = accounts.authenticate(s, token)
        repo = repos.create_repo(
            ctx, s, p, repo_type, name, organization, private=body.get("private"),
            visibility=str_or_none(body, "visibility"), sdk=str_or_none(body, "sdk"), base_url=base_url,
        )  # fmt: skip
        created.append(repo.id)
        for option in ctx.space_options:
            option.apply(ctx, s, p, repo, body)
        return {"url": repos.repo_url(base_url, repo_type, repo.full_name), "name": repo.full_name, "id": repo.id}


def duplicate_repo(
    ctx: HubContext, token: str | None, repo_type: str, from_id: str, body: dict[str, Any], base_url: str
) -> dict[str, Any]:
    """`duplicate_space`/`duplicate_repo`'s body → ``{"url"}`` of the copy: the source's history and (Spaces) its
    variables, and the body's own options, never the source's secrets, hardware or storage."""
    req = duplicates.parse_duplicate_body(body, repo_type)
    for option in ctx.space_options:
        option.check(ctx, repo_type, req.create_body(repo_type, None))
    with removed_on_failure(ctx) as created, ctx.db.transaction() as s:
        p = accounts.authenticate(s, token)
        repo = duplicates.duplicate_repo(ctx, s, p, repo_type, from_id, req, base_url)
        created.append(repo.id)
        options_body = req.create_body(repo_type, repo.sdk)
        for option in ctx.space_options:
            option.apply(ctx, s, p, repo, options_body)
        return {"url": repos.repo_url(base_url, repo_type, repo.full_name)}


@contextmanager
def removed_on_failure(ctx: HubContext) -> Iterator[list[str]]:
    """The git repositories of repos created in the block are removed if it fails: their rows were rolled back."""
    created: list[str] = []
    try:
        yield created
    except BaseException:
        for repo_id in created:
            ctx.git.delete(repo_id)
        raise
