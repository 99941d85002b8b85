"""Listings and searches: `list_models` / `list_datasets` / `list_spaces` (``GET /api/{T}``, paginated) and
`search_spaces` (``GET /api/spaces/semantic-search``), with the query the client sends: ``filter`` (tags, all of
them), ``author``, ``search`` (substrings of the id, all of them), ``sort`` and ``direction``, ``limit``,
``expand`` (only the properties asked for), ``full`` / ``cardData`` (the card, and with ``full`` the files), and for
Spaces ``models`` / ``datasets`` / ``linked``.

A repo's tags are what its README's front matter says (``tags``, ``library_name``, ``pipeline_tag``,
``license:…``, ``dataset:…``, languages) and, for a Space, its sdk and ``region:us``, as on the Hub: `tags_of`
serves the info route and the listings alike, so a filter finds what an info shows. Cards are read from git by
commit (a commit's card never changes, so they are cached by commit).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from spacehub.errors import BadRequest
from spacehub.services import files, repos, spaces
from spacehub.services.accounts import Principal
from spacehub.services.context import HubContext
from spacehub.storage.models import Account, Membership, Repo

# What each client may ask for in ``expand`` (huggingface_hub's ExpandModelProperty_T, …): anything else is a 400.
EXPANDABLE: dict[str, frozenset[str]] = {
    "model": frozenset(
        [
            "author",
            "baseModels",
            "cardData",
            "childrenModelCount",
            "config",
            "createdAt",
            "disabled",
            "downloads",
            "downloadsAllTime",
            "evalResults",
            "gated",
            "gguf",
            "inference",
            "inferenceProviderMapping",
            "lastModified",
            "library_name",
            "likes",
            "mask_token",
            "model-index",
            "pipeline_tag",
            "private",
            "resourceGroup",
            "safetensors",
            "sha",
            "siblings",
            "spaces",
            "tags",
            "transformersInfo",
            "trendingScore",
            "usedStorage",
            "widgetData",
        ]
    ),
    "dataset": frozenset(
        [
            "author",
            "cardData",
            "citation",
            "createdAt",
            "description",
            "disabled",
            "downloads",
            "downloadsAllTime",
            "gated",
            "lastModified",
            "likes",
            "mainSize",
            "paperswithcode_id",
            "private",
            "resourceGroup",
            "sha",
            "siblings",
            "tags",
            "trendingScore",
            "usedStorage",
        ]
    ),
    "space": frozenset(
        [
            "author",
            "cardData",
            "createdAt",
            "datasets",
            "disabled",
            "lastModified",
            "likes",
            "models",
            "private",
            "region",
            "resourceGroup",
            "runtime",
            "sdk",
            "sha",
            "siblings",
            "subdomain",
            "tags",
            "trendingScore",
            "usedStorage",
        ]
    ),
}
# Sort keys as the client sends them (2.x maps created_at → createdAt …; 0.x sends what the caller wrote).
SORTS = {
    "lastModified": "lastModified",
    "last_modified": "lastModified",
    "createdAt": "createdAt",
    "created_at": "createdAt",
    "likes": "likes",
    "trendingScore": "trendingScore",
    "trending_score": "trendingScore",
    "downloads": "downloads",
    "id": "id",
}
# Filters of the Hub that SpaceHub has nothing to answer with: refused, rather than silently ignored.
UNSUPPORTED = {
    "apps": "local apps",
    "inference": "inference status",
    "inference_provider": "inference providers",
    "num_parameters": "parameter counts",
}
DATASET_TAG_KEYS = (
    "language",
    "language_creators",
    "multilinguality",
    "size_categories",
    "task_categories",
    "task_ids",
)
RUNNING_STAGES = ("RUNNING", "RUNNING_BUILDING", "RUNNING_APP_STARTING")
SEARCH_RESULTS = 50


@dataclass
class ListQuery:
    """One listing request, as parsed from the client's query string."""

    repo_type: str
    author: str | None = None
    search: list[str] = field(default_factory=list)
    filters: list[str] = field(default_factory=list)
    sort: str | None = None
    direction: int = -1
    limit: int | None = None
    cursor: int = 0
    expand: list[str] = field(default_factory=list)
    full: bool = False
    card_data: bool = False
    linked: bool = False
    models: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    pipeline_tag: str | None = None
    gated: bool | None = None

    def check(self) -> None:
        """Raises: BadRequest (an unknown sort, direction or expand property, a negative limit or cursor)."""
        if self.sort is not None and self.sort not in SORTS:
            raise BadRequest(f"Invalid sort {self.sort!r}; use one of {', '.join(sorted(set(SORTS.values())))}")
        if self.direction not in (-1, 1):
            raise BadRequest("'direction' must be -1 (descending) or 1 (ascending)")
        if (self.limit is not None and self.limit < 0) or self.cursor < 0:
            raise BadRequest("'limit' and 'cursor' must not be negative")
        bad = [e for e in self.expand if e not in EXPANDABLE[self.repo_type]]
        if bad:
            raise BadRequest(
                f"Invalid expand {', '.join(map(repr, bad))} for {self.repo_type}s; use any of "
                + ", ".join(sorted(EXPANDABLE[self.repo_type]))
            )
        if self.expand and (self.full or self.card_data):
            raise BadRequest("'expand' cannot be combined with 'full' or 'cardData'")

    @property
    def filters_in_python(self) -> bool:
        return bool(self.filters or self.models or self.datasets or self.pipeline_tag)


# ---- cards and tags ------------------------------------------------------------------------------------------------
_CARDS: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
_CARDS_LOCK = threading.Lock()
_CARDS_MAX = 20_000


def card_at(ctx: HubContext, repo: Repo, sha: str | None) -> dict[str, Any]:
    """The README front matter at commit ``sha`` ({} for none), cached by commit (it never changes)."""
    if sha is None:
        return {}
    key = (repo.id, sha)
    with _CARDS_LOCK:
        if key in _CARDS:
            _CARDS.move_to_end(key)
            return _CARDS[key]
    card = files.card_data(ctx, repo, sha)
    with _CARDS_LOCK:
        _CARDS[key] = card
        while len(_CARDS) > _CARDS_MAX:
            _CARDS.popitem(last=False)
    return card


def _strings(value: Any) -> list[str]:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return [str(value)]
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str | int | float) and not isinstance(v, bool)]
    return []


def tags_of(repo: Repo, card: dict[str, Any]) -> list[str]:
    """A repo's tags as the Hub derives them from its card (and, for a Space, its sdk and region)."""
    out: list[str] = []
    if repo.type == "space" and repo.sdk:
        out.append(repo.sdk)
    out += _strings(card.get("tags"))
    for key in ("library_name", "pipeline_tag"):
        out += _strings(card.get(key))
    out += [f"license:{v}" for v in _strings(card.get("license"))]
    if repo.type == "dataset":  # the Hub prefixes a dataset's card keys (list_datasets(language="en") sends these)
        for key in DATASET_TAG_KEYS:
            out += [f"{key}:{v}" for v in _strings(card.get(key))]
    else:
        out += [f"dataset:{v}" for v in _strings(card.get("datasets"))] if repo.type == "model" else []
        out += _strings(card.get("language"))
    if repo.type == "space":
        out.append("region:us")
    return list(dict.fromkeys(out))


def _linked(card: dict[str, Any], key: str) -> list[str]:
    return _strings(card.get(key))


# ---- listing -------------------------------------------------------------------------------------------------------
def visible(p: Principal, repo_type: str) -> Select[tuple[Repo]]:
    """Repos of ``repo_type`` that ``p`` may see (public ones, their own, their orgs'; everything for an admin)."""
    q = select(Repo).join(Repo.owner).where(Repo.type == repo_type)
    if p.anonymous:
        return q.where(Repo.private.is_(False))
    if not p.is_admin:
        orgs = select(Membership.org_id).where(Membership.user_id == p.user_id)
        q = q.where(or_(Repo.private.is_(False), Repo.owner_id == p.user_id, Repo.owner_id.in_(orgs)))
    return q


def _head(ctx: HubContext, repo: Repo) -> str | None:
    return ctx.git.branch_head(repo.id, "main")  # None: an empty repo (no main), still listed


def list_repos(
    ctx: HubContext, s: Session, p: Principal, query: ListQuery, base_url: str
) -> tuple[list[dict[str, Any]], bool]:
    """A page of the repos ``p`` can see that match ``query``, from ``query.cursor``, and whether more follow.

    Raises: BadRequest.
    """
    query.check()
    terms = [query.author or "", *query.search, *query.filters, *query.models, *query.datasets]
    if any("\x00" in t for t in terms):  # matches no name; PostgreSQL refuses NUL in text parameters
        return [], False
    q = visible(p, query.repo_type)
    if query.author:
        q = q.where(Account.name == query.author)
    for term in query.search:
        # A substring of the full id, as on the Hub ("alice/my_model" finds it); LIKE wildcards match literally.
        escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        q = q.where((Account.name + "/" + Repo.name).ilike(f"%{escaped}%", escape="\\"))
    if query.gated is not None:
        q = q.where(Repo.gated.is_not(None) if query.gated else Repo.gated.is_(None))
    sort = SORTS.get(query.sort or "", "createdAt")
    column = {
        "lastModified": Repo.updated_at,
        "createdAt": Repo.created_at,
        "likes": Repo.likes,
        "id": func.lower(Account.name + "/" + Repo.name),
    }.get(sort)
    order = [] if column is None else [column.asc() if query.direction == 1 else column.desc()]
    q = q.order_by(*order, Repo.updated_at.desc(), Repo.id)  # downloads and trending are 0 everywhere: ties
    page_size = ctx.settings.server.list_page_size
    page = page_size if query.limit is None else max(min(page_size, query.limit - query.cursor), 0)
    if page == 0:
        return [], False
    if query.filters_in_python:
        rows: list[tuple[Repo, str | None]] = []
        matched = 0
        for repo in s.scalars(q):
            sha = _head(ctx, repo)
            if _matches(repo, card_at(ctx, repo, sha), query):
                if matched >= query.cursor:
                    rows.append((repo, sha))
                    if len(rows) > page:
                        break
                matched += 1
    else:
        rows = [(repo, _head(ctx, repo)) for repo in s.scalars(q.offset(query.cursor).limit(page + 1))]
    more = len(rows) > page and (query.limit is None or query.cursor + page < query.limit)
    if query.repo_type == "space":
        spaces.prefetch_rows(s, [repo.id for repo, _ in rows[:page]])  # one statement, not one per Space
    return [_item(ctx, repo, sha, base_url, p, query) for repo, sha in rows[:page]], more


def _matches(repo: Repo, card: dict[str, Any], query: ListQuery) -> bool:
    tags = set(tags_of(repo, card))
    if not all(f in tags for f in query.filters):
        return False
    if query.pipeline_tag and card.get("pipeline_tag") != query.pipeline_tag:
        return False
    if query.models and not set(query.models) <= set(_linked(card, "models")):
        return False
    return not query.datasets or set(query.datasets) <= set(_linked(card, "datasets"))


def _item(
    ctx: HubContext, repo: Repo, sha: str | None, base_url: str, p: Principal, query: ListQuery
) -> dict[str, Any]:
    info = repos.base_info(ctx, repo, sha, base_url, p)
    card = card_at(ctx, repo, sha)
    info["tags"] = tags_of(repo, card)
    if query.expand:
        return _expanded(ctx, repo, sha, info, card, query.expand)
    if query.full or query.card_data:
        info["cardData"] = card
    if query.full:
        info["siblings"] = files.siblings(ctx, repo, sha, False) if sha else []
    if query.linked and repo.type == "space":
        info["models"], info["datasets"] = _linked(card, "models"), _linked(card, "datasets")
    return info


def _expanded(
    ctx: HubContext, repo: Repo, sha: str | None, info: dict[str, Any], card: dict[str, Any], expand: list[str]
) -> dict[str, Any]:
    """``_id``, ``id`` and exactly the properties asked for that SpaceHub knows (the others, such as
    ``safetensors`` or ``usedStorage``, are left out: the client reads them as absent)."""
    known: dict[str, Any] = {
        **info,
        "cardData": card,
        "downloadsAllTime": 0,
        "region": "us",
        "models": _linked(card, "models"),
        "datasets": _linked(card, "datasets"),
    }
    for key in ("library_name", "pipeline_tag"):
        if isinstance(card.get(key), str):
            known[key] = card[key]
    out = {"_id": info["_id"], "id": info["id"]}
    for prop in expand:
        if prop == "siblings":
            out["siblings"] = files.siblings(ctx, repo, sha, False) if sha else []
        elif prop in known and not (prop in ("models", "datasets") and repo.type != "space"):
            out[prop] = known[prop]
    return out


# ---- search --------------------------------------------------------------------------------------------------------
def search_spaces(
    ctx: HubContext,
    s: Session,
    p: Principal,
    text: str,
    filters: list[str],
    sdks: list[str],
    include_non_running: bool,
    base_url: str,
) -> list[dict[str, Any]]:
    """``search_spaces``: the Spaces ``p`` may see whose id, title or short description hold the words of ``text``
    (full-text, no embeddings: the score is the share of the words found), best first; running ones only unless
    ``include_non_running``. Raises: BadRequest (an empty query)."""
    words = [w for w in text.lower().split() if w]
    if not words:
        raise BadRequest("'q' (the search query) is required")
    if any("\x00" in t for t in [text, *filters, *sdks]):
        return []
    found: list[tuple[float, Repo, dict[str, Any]]] = []
    for repo in s.scalars(visible(p, "space").order_by(Repo.likes.desc(), Repo.updated_at.desc(), Repo.id)):
        if sdks and repo.sdk not in sdks:
            continue
        card = card_at(ctx, repo, _head(ctx, repo))
        tags = tags_of(repo, card)
        if not all(f in tags for f in filters):
            continue
        haystack = " ".join([repo.full_name, *_strings(card.get("title")), *_strings(card.get("short_description"))])
        haystack = (haystack + " " + " ".join(tags)).lower()
        score = sum(w in haystack for w in words) / len(words)
        if score > 0:
            found.append((score, repo, card))
    found.sort(key=lambda t: -t[0])  # stable: likes, then recent, within a score
    out = []
    for score, repo, card in found:
        info = repos.base_info(ctx, repo, None, base_url, p)
        runtime = info.get("runtime") or {}
        if not include_non_running and runtime.get("stage") not in RUNNING_STAGES:
            continue
        out.append(
            {
                "id": repo.full_name,
                "author": repo.owner.name,
                "title": card["title"] if isinstance(card.get("title"), str) else repo.name,
                "emoji": card.get("emoji") if isinstance(card.get("emoji"), str) else None,
                "sdk": repo.sdk,
                "likes": repo.likes,
                "private": repo.private,
                "tags": tags_of(repo, card),
                "runtime": runtime,
                "ai_short_description": card.get("short_description")
                if isinstance(card.get("short_description"), str)
                else None,
                "ai_category": None,
                "semanticRelevancyScore": round(score, 3),
                "trendingScore": 0,
            }
        )
        if len(out) == SEARCH_RESULTS:
            break
    return out
