"""What every handler needs: the hub context, a transaction with the caller's principal, and request parsing helpers."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote

from sqlalchemy.orm import Session
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request

from spacehub.errors import BadRequest, PayloadTooLarge
from spacehub.services import accounts, ndjson
from spacehub.services.accounts import Principal
from spacehub.services.context import HubContext
from spacehub.services.formats import PLURALS
from spacehub.services.space_changes import Caller


class RepoTypeConvertor(Convertor[str]):
    """``{t:repotype}`` matches models|datasets|spaces and yields model|dataset|space."""

    regex = "models|datasets|spaces"

    def convert(self, value: str) -> str:
        return PLURALS[value]

    def to_string(self, value: str) -> str:
        return value + "s"


register_url_convertor("repotype", RepoTypeConvertor())


def ctx_of(request: Request) -> HubContext:
    ctx: HubContext = request.app.state.ctx
    return ctx


def bearer_token(request: Request) -> str | None:
    """The token from ``Authorization: Bearer …``, or the password of HTTP basic auth (git's way)."""
    return token_of(request.headers.get("authorization", ""))


def token_of(auth: str) -> str | None:
    """The token an ``Authorization`` header value carries (`bearer_token`)."""
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            _, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return password or None
    return None


@contextmanager
def unit(request: Request) -> Iterator[tuple[HubContext, Session, Principal]]:
    """One unit of work: a transaction plus the authenticated caller. Raises: Unauthorized for a bad token."""
    ctx = ctx_of(request)
    with ctx.db.transaction() as s:
        yield ctx, s, accounts.authenticate(s, bearer_token(request))


def base_url(request: Request) -> str:
    ctx = ctx_of(request)
    return (ctx.settings.server.public_url or str(request.base_url)).rstrip("/")


def caller(request: Request) -> Caller:
    """Who calls a use case (their token) and the URL they reached the Hub at."""
    return Caller(bearer_token(request), base_url(request))


def qbool(value: str | None, default: bool = False) -> bool:
    """Query booleans as every client sends them: true/false (httpx) and True/False (requests), 1/0."""
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def raw(value: str) -> str:
    """Decode a path parameter taken from the raw path (revisions arrive as ``refs%2Fpr%2F1``)."""
    return unquote(value)


MAX_JSON_BODY_BYTES = 16 * 1024 * 1024


async def read_body(request: Request, limit: int = MAX_JSON_BODY_BYTES) -> bytes:
    """The whole body, refused while it streams once it passes ``limit`` bytes. Raises: PayloadTooLarge."""
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body is larger than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def parse_json(data: bytes) -> Any:
    """A JSON document (``None`` when blank), nested at most ``ndjson.MAX_JSON_DEPTH`` levels.
    Raises: BadRequest (malformed or nested too deeply)."""
    if not data.strip():
        return None
    try:
        return ndjson.loads(data)
    except ValueError as e:
        raise BadRequest(f"Malformed JSON body: {e}") from None


async def json_body(request: Request, limit: int = MAX_JSON_BODY_BYTES) -> Any:
    """The JSON body (``None`` when empty). Raises: BadRequest (malformed, nested too deeply), PayloadTooLarge."""
    return parse_json(await read_body(request, limit))


async def json_object(request: Request) -> dict[str, Any]:
    """Raises: BadRequest unless the body is a JSON object."""
    body = await json_body(request)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BadRequest("Expected a JSON object")
    return body
