"""The JSON bodies of the Space and repo calls, as the clients send them (hf-wire-spec), for the OpenAPI document.

Each model is named after the `HfApi` call whose payload it describes. They document the bodies (so that a fuzzer
and a reader see them at ``/api/openapi.json``); they do not validate them: the handlers' own checks give the Hub's
exact error messages, which clients show to users, and accept every client version's variants.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RepoType = Literal["model", "dataset", "space"]
Visibility = Literal["public", "private", "protected"]
Sdk = Literal["gradio", "streamlit", "docker", "static"]
StorageTier = Literal["small", "medium", "large"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class _KeyValue(_Body):
    key: str
    value: str | None = None
    description: str | None = None


class SpaceSecret(_KeyValue):
    """`add_space_secret`, and one of ``secrets`` in create and duplicate bodies."""


class SpaceVariable(_KeyValue):
    """`add_space_variable`, and one of ``variables`` in create and duplicate bodies."""


class DeleteKey(_Body):
    """`delete_space_secret`, `delete_space_variable`."""

    key: str


class Volume(_Body):
    """One of `set_space_volumes`' ``volumes`` (client 2.x)."""

    type: Literal["model", "dataset", "space", "bucket"]
    source: str
    mountPath: str
    revision: str | None = None
    readOnly: bool | None = None
    path: str | None = None


class SpaceOptions(_Body):
    """What create and duplicate bodies may set of a new Space."""

    hardware: str | None = None
    storageTier: StorageTier | None = None
    sleepTimeSeconds: int | None = None
    secrets: list[SpaceSecret] | None = None
    variables: list[SpaceVariable] | None = None
    volumes: list[Volume] | None = None


class CreateRepoRequest(SpaceOptions):
    """`create_repo` (``space_sdk``, ``space_hardware``… for Spaces)."""

    name: str
    organization: str | None = None
    type: RepoType | None = None
    private: bool | None = None
    visibility: Visibility | None = None
    sdk: Sdk | None = None


class DuplicateRepoRequest(SpaceOptions):
    """`duplicate_space` (≤ 1.33) and `duplicate_repo`."""

    repository: str = Field(description="owner/name of the copy")
    private: bool | None = None
    visibility: Visibility | None = None
    resourceGroupId: str | None = None
    exist_ok: bool | None = None


class DeleteRepoRequest(_Body):
    """`delete_repo`."""

    name: str
    organization: str | None = None
    type: RepoType | None = None


class MoveRepoRequest(_Body):
    """`move_repo`."""

    fromRepo: str
    toRepo: str
    type: RepoType | None = None


class RepoSettingsRequest(_Body):
    """`update_repo_settings`."""

    private: bool | None = None
    visibility: Visibility | None = None
    gated: Literal["auto", "manual", False] | None = None
    discussionsDisabled: bool | None = None
    xetEnabled: bool | None = None


class ValidateYamlRequest(_Body):
    """`HfApi`'s README check before an upload: POST /api/validate-yaml."""

    content: str
    repoType: RepoType | None = None


class RequestSpaceHardware(_Body):
    """`request_space_hardware`."""

    flavor: str
    sleepTimeSeconds: int | None = None


class SetSpaceSleepTime(_Body):
    """`set_space_sleep_time` (-1: never)."""

    seconds: int


class RequestSpaceStorage(_Body):
    """`request_space_storage` (≤ 1.33)."""

    tier: StorageTier


class SetSpaceVolumes(_Body):
    """`set_space_volumes` (replaces the list)."""

    volumes: list[Volume]


class CreateDiscussion(_Body):
    """`create_discussion`, `create_pull_request` (``pullRequest: true``)."""

    title: str
    description: str | None = None
    pullRequest: bool = False


class CommentDiscussion(_Body):
    """`comment_discussion`."""

    comment: str


class RenameDiscussion(_Body):
    """`rename_discussion`."""

    title: str


class ChangeDiscussionStatus(_Body):
    """`change_discussion_status`."""

    status: Literal["open", "closed"]
    comment: str | None = None


class MergePullRequest(_Body):
    """`merge_pull_request` (the client sends no body without a comment)."""

    comment: str | None = None


class EditDiscussionComment(_Body):
    """`edit_discussion_comment`."""

    content: str


def body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as the operation's JSON body (nested models inlined: the document
    stays self-contained without registering each one as a component)."""
    schema = model.model_json_schema()
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

    return {"requestBody": {"required": True, "content": {"application/json": {"schema": inline(schema)}}}}
