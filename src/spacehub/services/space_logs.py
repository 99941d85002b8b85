"""Use case: read and follow a Space's build or run log (`HfApi.fetch_space_logs`), for whoever may write the Space.

The log comes from the runtime's front door (``ctx.runtime.logs``): where and how it is kept is the runtime's
business, and a web page reads it the same way as the API."""

from __future__ import annotations

from spacehub.errors import BadRequest
from spacehub.services import accounts, repos
from spacehub.services.context import HubContext
from spacehub.services.runtime import LogStream
from spacehub.services.space_changes import Caller

KINDS = ("build", "run")


def open_logs(ctx: HubContext, caller: Caller, repo_id: str, kind: str) -> LogStream:
    """Raises: BadRequest (not "build" or "run"), Unauthorized, RepoNotFound, Forbidden (needs write access, as on
    the Hub: logs may show what the owner printed)."""
    if kind not in KINDS:
        raise BadRequest("Logs are 'build' or 'run'")
    with ctx.db.transaction() as s:
        p = accounts.authenticate(s, caller.token)
        space_id = repos.get_repo(s, p, "space", repo_id, "write").id
    return ctx.runtime.logs(space_id, kind)
