"""Duplicating a repo (`duplicate_space`, `duplicate_repo`): a new repo with the source's git history and, for
Spaces, its variables; never its secrets, hardware, storage or sleep time (the body's own apply, through the same
create hooks as `create_repo`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from spacehub.errors import BadRequest
from spacehub.services import repos, space_settings
from spacehub.services.accounts import Principal
from spacehub.services.context import HubContext
from spacehub.services.formats import split_repo_id
from spacehub.storage.models import Repo

# The payload keys of every client version: 0.21-1.7 `duplicate_space` (private, storageTier), 1.8+ (visibility),
# 2.x `duplicate_repo` (volumes, resourceGroupId; no storageTier).
SPACE_KEYS = ("hardware", "storageTier", "sleepTimeSeconds", "secrets", "variables", "volumes")
KNOWN_KEYS = frozenset({"repository", "private", "visibility", "resourceGroupId", "exist_ok", *SPACE_KEYS})


@dataclass(frozen=True)
class DuplicateRequest:
    namespace: str
    name: str
    private: bool | None
    visibility: str | None
    settings: dict[str, Any] = field(default_factory=dict)  # the Space keys, as a create body carries them

    def create_body(self, repo_type: str, sdk: str | None) -> dict[str, Any]:
        """The body the create hooks see: a duplicate applies its settings exactly as a create would."""
        body = {"name": self.name, "organization": self.namespace, "type": repo_type, **self.settings}
        if sdk is not None:
            body["sdk"] = sdk
        return body


def parse_duplicate_body(body: dict[str, Any], repo_type: str) -> DuplicateRequest:
    """Raises: BadRequest (unknown keys, wrong types, Space keys for a model or dataset, bad secrets/variables)."""
    unknown = sorted(set(body) - KNOWN_KEYS)
    if unknown:
        raise BadRequest(f"Unknown keys in the duplicate request: {', '.join(map(repr, unknown))}")
    target = body.get("repository")
    if not isinstance(target, str):
        raise BadRequest("'repository' (the new repo's 'namespace/name') is required")
    namespace, name = split_repo_id(target)
    private, visibility = body.get("private"), body.get("visibility")
    if private is not None and not isinstance(private, bool):
        raise BadRequest("'private' must be a boolean")
    if visibility is not None and visibility not in repos.VISIBILITIES:
        raise BadRequest(f"Invalid visibility {visibility!r}; use one of {', '.join(repos.VISIBILITIES)}")
    if body.get("resourceGroupId") is not None and not isinstance(body["resourceGroupId"], str):
        raise BadRequest("'resourceGroupId' must be a string")
    if body.get("exist_ok") is not None and not isinstance(body["exist_ok"], bool):
        raise BadRequest("'exist_ok' must be a boolean")
    settings = {k: body[k] for k in SPACE_KEYS if body.get(k) is not None}
    if settings and repo_type != "space":
        raise BadRequest(f"{', '.join(map(repr, settings))} only apply to Spaces")
    space_settings.parse_settings_body(settings, repo_type)
    return DuplicateRequest(namespace, name, private, visibility, settings)


def duplicate_repo(
    ctx: HubContext, s: Session, p: Principal, repo_type: str, from_id: str, req: DuplicateRequest, base_url: str
) -> Repo:
    """Create ``req``'s repo as a copy of ``from_id`` (every branch), private unless the request says otherwise.

    Raises: RepoNotFound (no source, or one ``p`` may not read), Conflict (the target exists; carries ``url``),
    Unauthorized, Forbidden (may not create in the namespace), BadRequest.
    """
    source = repos.get_repo(s, p, repo_type, from_id, "read")
    private = True if req.private is None and req.visibility is None else req.private
    repo = repos.create_repo(
        ctx,
        s,
        p,
        repo_type,
        req.name,
        req.namespace,
        private=private,
        visibility=req.visibility,
        sdk=source.sdk if repo_type == "space" else None,
        base_url=base_url,
        copy_from=source,
    )
    if repo_type == "space":
        try:
            space_settings.copy_variables(s, source, repo)
        except BaseException:  # the transaction rolls back: the new git directory must go too
            ctx.git.delete(repo.id)
            raise
    return repo
