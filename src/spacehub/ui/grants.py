"""The iframe URL of a private Space: the app's own URL with a short-lived grant (`services.space_grants`)."""

from __future__ import annotations

from urllib.parse import urlencode

from spacehub.services import space_grants
from spacehub.services.context import HubContext


def signed_url(ctx: HubContext, url: str, space_id: str, user_id: int) -> str:
    grant = space_grants.sign_url_grant(ctx.settings.data_dir, space_id, user_id)
    return f"{url}?{urlencode({space_grants.GRANT_PARAM: grant})}"
