"""What the OpenAPI document at ``/api/openapi.json`` says of a route's bodies, shared by the HTTP sides.

The Hub's handlers read and answer raw JSON so that every client version's variants are accepted and the bytes on
the wire stay the Hub's own; the models here and in ``api.schemas`` / ``api.responses`` only describe them. `body`
declares a request body, `answers` the answers (with ``response_model=None``: FastAPI then neither validates nor
reshapes what a handler returns).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from starlette.responses import Response


class HubErrorBody(BaseModel):
    """Every error the Hub renders (`app.error_response`): ``{"error": message}`` plus the error's extra keys (``url``
    of a 409 on create, ``errors``/``warnings`` of validate-yaml, git-lfs's ``message``), with ``X-Error-Code`` and
    ``X-Error-Message`` headers, which is what `hf_raise_for_status` reads."""

    model_config = ConfigDict(extra="allow")
    error: str


class RouteNotFound(BaseModel):
    """A path or method no route serves: Starlette's own answer (404 or 405), before any Hub code runs."""

    model_config = ConfigDict(extra="forbid")
    detail: str


def absent() -> Any:
    """The default of a key that is sometimes left out of an answer: optional, with no default in the schema (a
    default would tell readers the key is sent with that value)."""
    return Field(default=None, json_schema_extra=lambda s: s.pop("default", None))


ERRORS: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": HubErrorBody | RouteNotFound, "description": "An error in the Hub's format (X-Error-Code, …)"},
    "5XX": {"model": HubErrorBody, "description": "An error in the Hub's format"},
}


def inline_schema(model: Any, mode: str = "validation") -> dict[str, Any]:
    """The JSON schema of ``model`` (a pydantic model or any type) with its ``$defs`` inlined, so that it can sit in
    an operation without registering each nested model as a component."""
    schema = TypeAdapter(model).json_schema(mode=mode)  # type: ignore[arg-type]
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return inline(schema)


def body(model: Any, media_type: str = "application/json", required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as the operation's body of ``media_type``."""
    content = {media_type: {"schema": inline_schema(model)}}
    return {"requestBody": {"required": required, "content": content}}


def answers(model: Any, description: str = "OK", media_type: str | None = None, status: int = 200) -> dict[str, Any]:
    """Route keyword arguments declaring ``model`` as the answer (JSON, as a named component; or inlined under
    ``media_type``) and the Hub's error format for 4xx and 5xx, without touching what the handler sends."""
    if media_type is None:
        ok: dict[str, Any] = {"model": model, "description": description}
        return {"response_model": None, "status_code": status, "responses": {status: ok, **ERRORS}}
    ok = {"description": description, "content": {media_type: {"schema": inline_schema(model, "serialization")}}}
    return {
        "response_model": None,
        "response_class": Response,
        "status_code": status,
        "responses": {status: ok, **ERRORS},
    }


def raw_answers(
    media_type: str | None, schema: dict[str, Any], description: str, **more: dict[str, Any]
) -> dict[str, Any]:
    """Route keyword arguments for a non-JSON answer (a download, an event stream, plain text; ``None``: no body):
    ``more`` adds other success statuses (``"206"``). The route's own response class is then plain ``Response``
    (its handler answers a Response of its own), so that FastAPI does not also document a JSON answer."""
    ok: dict[str, Any] = {"description": description}
    if media_type is not None:
        ok["content"] = {media_type: {"schema": schema}}
    return {"response_model": None, "response_class": Response, "responses": {200: ok, **more, **ERRORS}}
