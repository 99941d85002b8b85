"""The request bodies of the Hub's calls, as the clients send them (hf-wire-spec), for the OpenAPI document: JSON,
the form of paths-info, and the NDJSON commit (the LFS batch call's are in `git.lfs_schemas`; answers in
`api.responses`).

Each model is named after the `HfApi` call whose payload it describes. They document the bodies (so that a fuzzer
and a reader see them at ``/api/openapi.json``); they do not validate them: the handlers' own checks give the Hub's
exact error messages, which clients show to users, and accept every client version's variants.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from spacehub.web.openapi import answers, body, raw_answers  # noqa: F401 (the helpers api routes use)

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


class AddSpaceSecret(_KeyValue):
    """`add_space_secret`, and one of ``secrets`` in create and duplicate bodies."""


class AddSpaceVariable(_KeyValue):
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
    secrets: list[AddSpaceSecret] | None = None
    variables: list[AddSpaceVariable] | None = None
    volumes: list[Volume] | None = None


class CreateRepoRequest(SpaceOptions):
    """`create_repo` (``space_sdk``, ``space_hardware``… for Spaces)."""

    name: str
    organization: str | None = None
    type: RepoType | None = None
    private: bool | None = None
    visibility: Visibility | None = None
    sdk: Sdk | None = None
    template: str | None = Field(default=None, description="2.x `space_template`: a repoId of /api/spaces/templates")


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


class PreuploadFile(_Body):
    """One file of a preupload request: its path, size and first 512 bytes (base64)."""

    path: str
    size: int | None = None
    sample: str | None = None


class PreuploadRequest(_Body):
    """The upload-mode negotiation of every upload: POST /api/{T}/{id}/preupload/{rev}."""

    files: list[PreuploadFile]
    gitIgnore: str | None = None
    gitAttributes: str | None = None


class PathsInfoRequest(_Body):
    """`HfApi.get_paths_info` (form-encoded by every client: ``paths=a&paths=b&expand=false``; JSON accepted)."""

    paths: list[str]
    expand: bool | None = None


# ---- the NDJSON commit body: one JSON object per line, a header first --------------------------------------------
class CommitHeaderValue(_Body):
    summary: str
    description: str | None = None
    parentCommit: str | None = None


class CommitHeader(_Body):
    """The first line: the commit message (and the commit the client expects the branch at)."""

    key: Literal["header"]
    value: CommitHeaderValue


class CommitFileValue(_Body):
    path: str
    content: str = Field(description="the file's bytes, base64")
    encoding: Literal["base64"] | None = None


class CommitFile(_Body):
    """A file sent inline (every client that gets ``uploadMode: regular``)."""

    key: Literal["file"]
    value: CommitFileValue


class CommitLfsFileValue(_Body):
    path: str
    algo: Literal["sha256"] | None = None
    oid: str
    size: int


class CommitLfsFile(_Body):
    """A file whose bytes went to the LFS batch API before the commit (clients < 1.20)."""

    key: Literal["lfsFile"]
    value: CommitLfsFileValue


class CommitPath(_Body):
    path: str


class CommitDeletedFile(_Body):
    key: Literal["deletedFile"]
    value: CommitPath


class CommitDeletedFolder(_Body):
    key: Literal["deletedFolder"]
    value: CommitPath


CommitLine = CommitHeader | CommitFile | CommitLfsFile | CommitDeletedFile | CommitDeletedFolder
NDJSON = "application/x-ndjson"


def commit_body() -> dict[str, Any]:
    """``openapi_extra`` of `create_commit`: an ``application/x-ndjson`` body, described as the array of its lines
    (OpenAPI has no word for "one JSON value per line"; a fuzzer writes the array's items one per line)."""
    return body(list[CommitLine], NDJSON)


class CreateBranchRequest(_Body):
    """`HfApi.create_branch` (``revision`` → ``startingPoint``; empty: from main)."""

    startingPoint: str | None = None


class CreateTagRequest(_Body):
    """`HfApi.create_tag`."""

    tag: str
    message: str | None = None


def paths_info_body() -> dict[str, Any]:
    """``openapi_extra`` of `get_paths_info`: form-encoded as the clients send it, or JSON."""
    form, json = body(PathsInfoRequest, "application/x-www-form-urlencoded"), body(PathsInfoRequest)
    form["requestBody"]["content"].update(json["requestBody"]["content"])
    return form


# ---- webhooks ------------------------------------------------------------------------------------------------------
class WebhookWatchedItem(_Body):
    type: Literal["user", "org", "model", "dataset", "space", "bucket"]
    name: str


class CreateWebhook(_Body):
    """`create_webhook` (``jobSourceId``/``secrets``, a Job webhook, are refused here with a 400: no Jobs)."""

    watched: list[WebhookWatchedItem]
    domains: list[Literal["repo", "discussion"]] = ["repo", "discussion"]
    url: str | None = None
    secret: str | None = None
    jobSourceId: str | None = None
    secrets: dict[str, str] | None = None


class UpdateWebhook(_Body):
    """`update_webhook`: what it holds replaces what the webhook had (an empty ``watched`` keeps the list)."""

    watched: list[WebhookWatchedItem] = []
    domains: list[Literal["repo", "discussion"]] | None = None
    url: str | None = None
    secret: str | None = None
    jobSourceId: str | None = None
    secrets: dict[str, str] | None = None
