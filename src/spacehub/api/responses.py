"""The JSON bodies the Hub answers, for the OpenAPI document: each model is named after the `huggingface_hub`
dataclass that reads it (``SpaceRuntime``, ``SpaceInfo``, ``CommitInfo``…) and lists its fields with the Hub's keys.

They document; they do not serialize. Handlers keep answering the dicts the services build (``response_model=None``),
so the bytes on the wire stay exactly the Hub's (key order, casing, ``null``s). What keeps the models true is
tests/api/test_fuzz.py: schemathesis checks every answer of a bounded run against them. A key that is sometimes
absent is an optional field (`web.openapi.absent`: no default in the schema, and not ``null`` unless it can be).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from spacehub.web.openapi import HubErrorBody as HubErrorBody  # the error answer, with the others
from spacehub.web.openapi import absent


class _Answer(BaseModel):
    """A JSON object of exactly these keys (the serialization schema says ``additionalProperties: false``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# ---- accounts ------------------------------------------------------------------------------------------------------
class WhoAmIOrg(_Answer):
    type: Literal["org"]
    name: str
    fullname: str
    roleInOrg: str
    id: str
    avatarUrl: str


class AccessToken(_Answer):
    displayName: str
    role: str | None
    createdAt: str | None


class WhoAmIAuth(_Answer):
    type: Literal["access_token"]
    accessToken: AccessToken


class WhoAmI(_Answer):
    """`HfApi.whoami`."""

    type: Literal["user"]
    id: str
    name: str
    fullname: str
    email: str | None
    emailVerified: bool
    isPro: bool
    canPay: bool
    avatarUrl: str
    orgs: list[WhoAmIOrg]
    auth: WhoAmIAuth


class OrgSummary(_Answer):
    name: str
    fullname: str
    avatarUrl: str


class User(_Answer):
    """`HfApi.get_user_overview`: counts are of the repos the caller may see."""

    id_: str = Field(alias="_id")
    user: str
    fullname: str
    avatarUrl: str
    type: Literal["user"]
    isPro: bool
    createdAt: str
    numModels: int
    numDatasets: int
    numSpaces: int
    orgs: list[OrgSummary]


class Organization(_Answer):
    """`HfApi.get_organization_overview`."""

    id_: str = Field(alias="_id")
    name: str
    fullname: str
    avatarUrl: str
    type: Literal["org"]
    numUsers: int
    numModels: int
    numDatasets: int
    numSpaces: int


# ---- repo lifecycle ------------------------------------------------------------------------------------------------
class RepoUrl(_Answer):
    """`HfApi.create_repo` (the client builds its ``RepoUrl`` from ``url``)."""

    url: str
    name: str
    id: str


class DuplicatedRepoUrl(_Answer):
    """`HfApi.duplicate_repo`, and `move_repo` (where the repo is now)."""

    url: str


class RepoSettings(_Answer):
    """`HfApi.update_repo_settings`: the settings as they now are."""

    private: bool
    visibility: Literal["public", "private"]
    gated: Literal["auto", "manual", False]


class YamlValidation(_Answer):
    """POST /api/validate-yaml when the README's metadata is fine (a 400 carries the same keys with the errors)."""

    errors: list[Any]
    warnings: list[Any]


class AgentHarnesses(_Answer):
    """2.x clients' daily background call: nothing to report."""

    standardEnvVars: list[Any]
    harnesses: dict[str, Any]


class Empty(_Answer):
    """``{}``: branches, tags, secrets (the client reads no answer)."""


# ---- repo contents -------------------------------------------------------------------------------------------------
class BlobLfsInfo(_Answer):
    """``lfs`` of a sibling (``?blobs=true``)."""

    size: int
    sha256: str
    pointerSize: int


class RepoSibling(_Answer):
    rfilename: str
    size: int = absent()
    blobId: str = absent()
    lfs: BlobLfsInfo = absent()


class LastCommitInfo(_Answer):
    id: str
    title: str
    date: str


class LfsInfo(_Answer):
    """``lfs`` of a tree or paths-info entry: the object behind a pointer file."""

    oid: str
    size: int
    pointerSize: int


class RepoFile(_Answer):
    """A file of `list_repo_tree` / `get_paths_info`: ``oid`` is the git blob sha1, never a ``xetHash``."""

    type: Literal["file"]
    oid: str
    size: int
    path: str
    lfs: LfsInfo = absent()
    lastCommit: LastCommitInfo = absent()


class RepoFolder(_Answer):
    type: Literal["directory"]
    oid: str
    size: int
    path: str
    lastCommit: LastCommitInfo = absent()


TreeEntries = list[RepoFile | RepoFolder]


class GitRefInfo(_Answer):
    name: str
    ref: str
    targetCommit: str


class GitRefs(_Answer):
    """`HfApi.list_repo_refs` (``pullRequests`` with ``include_prs``: none are served)."""

    branches: list[GitRefInfo]
    converts: list[GitRefInfo]
    tags: list[GitRefInfo]
    pullRequests: list[GitRefInfo] = absent()


class CommitAuthor(_Answer):
    user: str


class FormattedCommit(_Answer):
    title: str
    message: str


class GitCommitInfo(_Answer):
    """One item of `HfApi.list_repo_commits`."""

    id: str
    title: str
    message: str
    date: str
    authors: list[CommitAuthor]
    formatted: FormattedCommit


# ---- uploads -------------------------------------------------------------------------------------------------------
class PreuploadFile(_Answer):
    path: str
    uploadMode: Literal["lfs", "regular"]
    shouldIgnore: bool
    oid: str = absent()


class PreuploadInfo(_Answer):
    """The upload-mode negotiation: ``regular`` (inline base64) for clients that would switch to Xet."""

    files: list[PreuploadFile]
    commitOid: str | None


class CommitInfo(_Answer):
    """`HfApi.create_commit` (and every upload and delete built on it)."""

    success: bool
    commitOid: str
    commitUrl: str
    hookOutput: str


# ---- Spaces --------------------------------------------------------------------------------------------------------
class SpaceHardwareState(_Answer):
    """Always an object (clients ≤ 0.23 read ``hardware.current`` without a check)."""

    current: str | None
    requested: str | None


class Replicas(_Answer):
    requested: int
    current: int


class SpaceDomain(_Answer):
    domain: str
    stage: str


class Volume(_Answer):
    """A mounted volume as the runtime answers it (a source the caller may not read is masked)."""

    type: str
    source: str
    mountPath: str
    readOnly: bool
    revision: str = absent()
    path: str = absent()


class StorageUsage(_Answer):
    used: int | None
    limit: int
    enforcement: str | None
    measuredAt: str | None


class ResourceLimits(_Answer):
    limits: str


class SpaceRuntime(_Answer):
    """`HfApi.get_space_runtime`, and the answer of every call that changes a Space (restart, pause, hardware, sleep
    time, storage, volumes). ``gcTimeout`` is the sleep time (null: never)."""

    stage: str
    hardware: SpaceHardwareState
    storage: str | None
    gcTimeout: int | None
    replicas: Replicas
    devMode: bool
    sdk: str | None
    domains: list[SpaceDomain]
    volumes: list[Volume] | None
    storageUsage: StorageUsage = absent()
    errorMessage: str = absent()
    sleepMode: str = absent()
    resources: ResourceLimits = absent()
    resourcesNote: str = absent()
    updatedAt: str = absent()


class SpaceTemplate(_Answer):
    name: str
    repoId: str
    sdk: str
    preferredPrivate: bool


class SpaceTemplates(_Answer):
    """`HfApi.list_space_templates`: the starter app of each SDK, ``templates/{sdk}``."""

    templates: list[SpaceTemplate]


class SpaceStatusEvent(_Answer):
    """One ``event: status`` of GET /api/spaces/{id}/events: the Space's status when it changed."""

    stage: str
    hardware: SpaceHardwareState
    replicas: Replicas | None
    errorMessage: str | None
    timestamp: str


class SpaceMetricsGpu(_Answer):
    """One GPU of a metric (the client's Jobs metrics: ``hf jobs stats`` shows these three)."""

    utilization: int
    memory_used_bytes: int
    memory_total_bytes: int


class SpaceMetrics(_Answer):
    """One ``event: metric`` of GET /api/spaces/{id}/metrics, in the client's Jobs metrics format (``gpus``: the
    GPUs the Space's instance holds, by device id: ``utilization`` percent, ``memory_used_bytes``,
    ``memory_total_bytes``)."""

    cpu_usage_pct: float
    cpu_millicores: int
    memory_used_bytes: int
    memory_total_bytes: int
    rx_bps: int
    tx_bps: int
    gpus: dict[str, SpaceMetricsGpu]


class SpaceSecret(_Answer):
    """One of `HfApi.get_space_secrets` (keyed by name): never a value."""

    updatedAt: str
    description: str = absent()


class SpaceVariable(_Answer):
    """One of `HfApi.get_space_variables` (keyed by name)."""

    value: str
    updatedAt: str
    description: str = absent()


class Accelerator(_Answer):
    type: str
    model: str
    quantity: str
    vram: str
    manufacturer: str


class JobHardwareInfo(_Answer):
    """One flavor of `HfApi.list_spaces_hardware`, plus whether it runs on this machine (and why not)."""

    name: str
    prettyName: str
    cpu: str
    ram: str
    ephemeralStorage: str
    accelerator: Accelerator | None
    unitCostMicroUSD: int
    unitCostUSD: float
    unitLabel: str
    available: bool
    note: str = absent()


class SpaceUsage(_Answer):
    space: str
    flavor: str
    minutes: int
    costMicroUSD: int
    costUSD: float


class OwnerUsage(_Answer):
    owner: str
    minutes: int
    costMicroUSD: int
    costUSD: float
    spaces: list[SpaceUsage]


class Usage(_Answer):
    """GET /api/usage: metered paid hardware per owner and Space."""

    owners: list[OwnerUsage]


# ---- repo info -----------------------------------------------------------------------------------------------------
class _RepoInfo(_Answer):
    """The keys every repo info and list item carries (clients ≤ 0.23 need ``private``, ``likes``, ``tags``)."""

    id_: str = Field(alias="_id")
    id: str
    author: str
    sha: str | None
    createdAt: str
    lastModified: str
    private: bool
    gated: Literal["auto", "manual", False]
    disabled: bool
    likes: int
    tags: list[str]
    xetEnabled: bool
    trendingScore: int
    siblings: list[RepoSibling] = absent()
    cardData: dict[str, Any] = absent()


class ModelInfo(_RepoInfo):
    """`HfApi.model_info` / `list_models` items (``siblings``, ``cardData``: single-repo answers only)."""

    downloads: int
    modelId: str


class DatasetInfo(_RepoInfo):
    """`HfApi.dataset_info` / `list_datasets` items."""

    downloads: int


class SpaceInfo(_RepoInfo):
    """`HfApi.space_info` / `list_spaces` items. ``title``, ``emoji``, ``colorFrom``, ``colorTo``, ``pinned`` are
    copied from the README's front matter as written there (single-repo answers)."""

    sdk: str | None
    subdomain: str
    host: str
    runtime: SpaceRuntime | None
    title: Any = absent()
    emoji: Any = absent()
    colorFrom: Any = absent()
    colorTo: Any = absent()
    pinned: Any = absent()
    models: list[str] = absent()
    datasets: list[str] = absent()


class ExpandedRepoInfo(_Answer):
    """A `list_models` / `list_datasets` / `list_spaces` item with ``expand``: ``_id``, ``id`` and only the
    properties asked for that SpaceHub knows."""

    id_: str = Field(alias="_id")
    id: str
    author: str = absent()
    cardData: dict[str, Any] = absent()
    createdAt: str = absent()
    datasets: list[str] = absent()
    disabled: bool = absent()
    downloads: int = absent()
    downloadsAllTime: int = absent()
    gated: Literal["auto", "manual", False] = absent()
    lastModified: str = absent()
    library_name: str = absent()
    likes: int = absent()
    models: list[str] = absent()
    pipeline_tag: str = absent()
    private: bool = absent()
    region: str = absent()
    runtime: SpaceRuntime | None = absent()
    sdk: str | None = absent()
    sha: str | None = absent()
    siblings: list[RepoSibling] = absent()
    subdomain: str = absent()
    tags: list[str] = absent()
    trendingScore: int = absent()


RepoInfo = ModelInfo | DatasetInfo | SpaceInfo
RepoListItem = ModelInfo | DatasetInfo | SpaceInfo | ExpandedRepoInfo


class SpaceSearchResult(_Answer):
    """One result of `HfApi.search_spaces` (full-text here: ``ai_category`` is always null)."""

    id: str
    author: str
    title: str
    emoji: str | None
    sdk: str | None
    likes: int
    private: bool
    tags: list[str]
    runtime: SpaceRuntime | dict[str, Any]
    ai_short_description: str | None
    ai_category: None
    semanticRelevancyScore: float
    trendingScore: int


# ---- likes ---------------------------------------------------------------------------------------------------------
class SpacePreview(_Answer):
    """GET/POST /api/spaces/{id}/discussions/{num}/preview: a pull request's preview (no client call reads it)."""

    num: int
    url: str
    revision: str | None
    stage: str
    requestedAt: str


class LikeAnswer(_Answer):
    """POST/DELETE /api/{T}/{id}/like (the client reads nothing of it): whether the caller likes it now, the count."""

    liked: bool
    likes: int


class RepoLiker(_Answer):
    """`HfApi.list_repo_likers` items (`huggingface_hub.User`)."""

    user: str
    fullname: str
    avatarUrl: str
    type: Literal["user"]


class LikedRepo(_Answer):
    name: str
    type: Literal["model", "dataset", "space"]


class UserLike(_Answer):
    """`HfApi.list_liked_repos` items."""

    createdAt: str
    repo: LikedRepo


# ---- webhooks ------------------------------------------------------------------------------------------------------
class WebhookWatched(_Answer):
    type: Literal["user", "org", "model", "dataset", "space"]
    name: str


class WebhookInfo(_Answer):
    """`huggingface_hub.WebhookInfo` (``secret`` is write-only here: never answered; ``hasSecret`` says if one is
    set)."""

    id: str
    url: str
    watched: list[WebhookWatched]
    domains: list[Literal["repo", "discussion"]]
    disabled: bool
    createdAt: str
    updatedAt: str
    hasSecret: bool


class WebhookAnswer(_Answer):
    """`get_webhook`, `create_webhook`, `update_webhook`, `enable_webhook`, `disable_webhook`."""

    webhook: WebhookInfo


class WebhookAttempt(_Answer):
    at: str
    status: int | None
    error: str | None
    durationMs: int


class WebhookDelivery(_Answer):
    """One payload sent (or to be sent) to a webhook, with every attempt (SpaceHub's delivery log)."""

    id: int
    eventId: str
    scope: str
    action: Literal["create", "delete", "move", "update"]
    state: Literal["pending", "delivered", "failed", "cancelled"]
    attempts: int
    lastStatus: int | None
    lastError: str | None
    createdAt: str
    nextAttemptAt: str | None
    log: list[WebhookAttempt]
    payload: dict[str, Any]
