"""The git-lfs batch API's request and answer (git-lfs's batch spec), for the OpenAPI document: they describe what
`lfs.lfs_batch` reads and sends; its own checks give git-lfs the messages it prints."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from spacehub.git.access import LFS_MEDIA_TYPE
from spacehub.web.openapi import absent, answers, body


class _Request(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LfsObjectSpec(_Request):
    oid: str = Field(description="sha256 of the content, lowercase hex")
    size: int


class LfsRef(_Request):
    name: str


class LfsBatchRequest(_Request):
    """POST {remote}.git/info/lfs/objects/batch."""

    operation: Literal["upload", "download"]
    objects: list[LfsObjectSpec]
    transfers: list[str] | None = None
    ref: LfsRef | None = None
    hash_algo: str | None = None


class LfsAction(_Answer):
    href: str
    expires_in: int
    header: dict[str, str] = absent()


class LfsActions(_Answer):
    download: LfsAction = absent()
    upload: LfsAction = absent()
    verify: LfsAction = absent()


class LfsObjectError(_Answer):
    code: int
    message: str


class LfsBatchObject(_Answer):
    """One object: its transfer actions (none: the server has it already), or why not (``error``)."""

    oid: Any = Field(description="as the request gave it (echoed even when it is not a sha256)")
    size: Any
    authenticated: bool = absent()
    actions: LfsActions = absent()
    error: LfsObjectError = absent()


class LfsBatchResponse(_Answer):
    transfer: Literal["basic"]
    objects: list[LfsBatchObject]
    hash_algo: Literal["sha256"]


def batch_openapi() -> dict[str, Any]:
    """Route keyword arguments that put the batch call in the OpenAPI document with its bodies."""
    described = answers(LfsBatchResponse, media_type=LFS_MEDIA_TYPE)
    return {**described, "openapi_extra": body(LfsBatchRequest, LFS_MEDIA_TYPE), "include_in_schema": True}
