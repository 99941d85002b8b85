"""Webhooks as on the Hub: a user's webhooks (``/api/settings/webhooks``), what they watch, the payloads of repo and
discussion events, and their delivery with retries and a delivery log; beyond the Hub, a Space's runtime events.

- **Who sees what.** A webhook belongs to the user who made it; another user's is not found (404). It watches users,
  orgs (every repo they own) and repos by name, in the domains ``repo`` and ``discussion``. An event about a repo
  reaches a webhook only if its owner may read the repo when the event happens (a watched user's private repos stay
  private).
- **Payloads** are the Hub's (version 3, `huggingface_hub.WebhookPayload` parses them): ``event {action, scope}``,
  ``repo`` (``headSha`` on repo scopes), ``discussion``, ``comment``, ``updatedRefs``, ``updatedConfig``,
  ``movedTo``, ``webhook {id, version}``. Scopes: ``repo`` (create, delete, move), ``repo.content`` (update: commits,
  branches, tags, with ``updatedRefs``), ``repo.config`` (update: visibility with ``updatedConfig.private``; a
  Space's secrets, variables, hardware, sleep time, storage with ``updatedConfig: {}``), ``discussion`` (create,
  update: title, status, merge) and ``discussion.comment`` (create, update: edit, hide). Beyond the Hub,
  ``space.runtime`` (action ``update``, domain ``repo``) with a ``runtime`` object: ``event`` is one of
  `RUNTIME_EVENTS`, plus the stage before and after, the hardware and the error.
- **An outbox.** `emit` writes one `WebhookDelivery` row per webhook in the transaction of the change it reports,
  so a change that rolls back sends nothing and one that commits is sent even if the server stops first (the rows
  wait, `WebhookSender.start` picks them up). `WebhookSender` posts them from a background thread once the change
  has committed (`storage.db.after_commit` wakes it): ``X-Webhook-Secret`` when the webhook has a secret, redirects
  not followed; a non-2xx answer, a timeout or a refused connection is tried again after ``retry_base_seconds``,
  doubling, up to ``max_attempts``. Every attempt is in the row's log, which the owner reads at
  ``GET /api/settings/webhooks/{id}/deliveries``.
- **The secret** is write-only: accepted on create and update, sealed with the secrets key (`SecretBox`), sent only
  as the header, never answered, never logged.
- **Private addresses** are refused unless ``webhooks.allow_private_addresses`` (`check_url`, then `pin` at each
  attempt: the host is resolved, every address checked, and the request sent to the checked address).
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import ipaddress
import json
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from spacehub.errors import BadRequest, Forbidden, NotFound, Unauthorized
from spacehub.services import accounts
from spacehub.services.accounts import Principal
from spacehub.services.context import HubContext
from spacehub.services.crypto import SecretBox, SecretKeyError, lock_secrets
from spacehub.services.formats import URL_PREFIX, iso, subdomain
from spacehub.storage.db import Database, after_commit, utcnow
from spacehub.storage.models import Account, Discussion, DiscussionEvent, Repo, Webhook, WebhookDelivery

log = logging.getLogger("spacehub.webhooks")

DOMAINS = ("repo", "discussion")
WATCH_TYPES = ("user", "org", "model", "dataset", "space")
MAX_WEBHOOKS = 100  # per user
MAX_WATCHED = 100  # items per webhook
MAX_SECRET = 256
MAX_URL = 2048
VERSION = 3
RUNTIME_SCOPE = "space.runtime"
RUNTIME_EVENTS = ("build_failed", "running", "runtime_error", "sleeping", "woke", "hardware_granted")
LOG_ATTEMPTS = 20  # attempts kept in one delivery's log
DELIVERIES_SHOWN = 100  # newest deliveries the log endpoint answers
KEEP_DAYS = 30  # finished deliveries older than this are pruned
POSTERS = 8  # deliveries posted at once (to different webhooks)
FREE_HARDWARE = "cpu-basic"


# ---- the webhook document ------------------------------------------------------------------------------------
def webhook_json(w: Webhook) -> dict[str, Any]:
    """What `HfApi.get_webhook` & co. read (``secret`` is never answered: the client reads it with ``.get``)."""
    return {
        "id": w.id,
        "url": w.url,
        "watched": json.loads(w.watched),
        "domains": json.loads(w.domains),
        "disabled": w.disabled,
        "createdAt": iso(w.created_at),
        "updatedAt": iso(w.updated_at),
        "hasSecret": w.secret is not None,
    }


def _caller(p: Principal, write: bool) -> int:
    """The calling user's id. Raises: Unauthorized (anonymous), Forbidden (a read token to change something)."""
    if p.anonymous or p.user_id is None:
        raise Unauthorized("You must be authenticated to manage webhooks")
    if write and p.token_role != "write":
        raise Forbidden("This token is read-only: use a token with the write role")
    return p.user_id


def _find(s: Session, p: Principal, webhook_id: str, write: bool) -> Webhook:
    """The caller's webhook. Raises: Unauthorized, Forbidden, NotFound (missing, or someone else's)."""
    user_id = _caller(p, write)
    w = s.get(Webhook, webhook_id) if len(webhook_id) <= 24 and "\x00" not in webhook_id else None
    if w is None or w.owner_id != user_id:
        raise NotFound(f"Webhook {webhook_id!r} not found")
    return w


# ---- checking a body -----------------------------------------------------------------------------------------
def _non_public(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return not addr.is_global or addr.is_multicast


def check_url(url: Any, allow_private: bool) -> str:
    """An http(s) URL with a host. Unless ``allow_private``, a host that is a non-public address or ``localhost``
    is refused here (host names are checked when delivering: `pin`). Raises: BadRequest."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise BadRequest(f"'url' must be an http or https URL of at most {MAX_URL} characters")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise BadRequest("'url' must not hold spaces or control characters")
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # .port raises on a bad port
    except ValueError as e:
        raise BadRequest(f"Invalid 'url': {e}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise BadRequest("'url' must be an http or https URL with a host")
    if not allow_private:
        try:
            private = _non_public(ipaddress.ip_address(host))
        except ValueError:
            private = host.rstrip(".").lower() == "localhost" or host.rstrip(".").lower().endswith(".localhost")
        if private:
            raise BadRequest(
                f"Webhook URLs on private or loopback addresses ({host}) are refused on this server "
                "(the operator setting webhooks.allow_private_addresses allows them)"
            )
    return url


@dataclass(frozen=True)
class Target:
    """Where one attempt goes: ``url`` names the checked address itself (so the HTTP client resolves nothing: a
    DNS answer that changes between the check and the connection cannot point it elsewhere), ``headers`` carry the
    original ``Host`` and ``extensions`` the TLS server name, so the receiver and its certificate see the name."""

    url: str
    headers: dict[str, str]
    extensions: dict[str, Any]


def pin(url: str) -> Target | str:
    """The `Target` of ``url`` pinned to the first address its host resolves to, or why it must not be sent: one
    of the addresses is not public (webhooks.allow_private_addresses is off), or the name does not resolve."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        return f"cannot resolve {host}: {e}"
    addrs = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    for addr in addrs:
        if _non_public(addr):
            return f"{host} resolves to {addr}, not a public address (webhooks.allow_private_addresses is off)"
    if not addrs:
        return f"cannot resolve {host}"
    ip = f"[{addrs[0]}]" if addrs[0].version == 6 else str(addrs[0])
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{ip}:{port}" if userinfo else f"{ip}:{port}"
    host_header = parts.netloc.rpartition("@")[2]
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return Target(parts._replace(netloc=netloc).geturl(), {"host": host_header}, extensions)


def _watched(s: Session, p: Principal, value: Any) -> list[dict[str, str]]:
    """``[{type, name}]``: each user or org must exist, each repo be readable by the caller. Raises: BadRequest."""
    if not isinstance(value, list) or not value:
        raise BadRequest("'watched' must be a non-empty list of {type, name}")
    if len(value) > MAX_WATCHED:
        raise BadRequest(f"A webhook watches at most {MAX_WATCHED} items")
    out: list[dict[str, str]] = []
    for item in value:
        if not isinstance(item, dict) or set(item) - {"type", "name"}:
            raise BadRequest("Each watched item must be {type, name}")
        kind, name = item.get("type"), item.get("name")
        if kind == "bucket":
            raise BadRequest("Buckets are not supported on this server: watch a user, org, model, dataset or space")
        if kind not in WATCH_TYPES:
            raise BadRequest(f"Invalid watched type {kind!r}; use one of {', '.join(WATCH_TYPES)}")
        if not isinstance(name, str) or not name or len(name) > 200 or "\x00" in name:
            raise BadRequest("Each watched item needs a 'name'")
        if kind in ("user", "org"):
            account = accounts.get_account(s, name)
            if account is None or account.kind != kind:
                raise BadRequest(f"Watched {kind} {name!r} not found")
        else:
            from spacehub.services.repos import find_repo

            repo = find_repo(s, kind, name)
            if repo is None or not accounts.can_read(p, repo):
                raise BadRequest(f"Watched {kind} {name!r} not found")
            name = repo.full_name
        entry = {"type": kind, "name": name}
        if entry not in out:
            out.append(entry)
    return out


def _domains(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or any(d not in DOMAINS for d in value):
        raise BadRequest(f"'domains' must be a non-empty list of {', '.join(repr(d) for d in DOMAINS)}")
    return [d for d in DOMAINS if d in value]


def _secret(value: Any) -> str | None:
    """None or "" (no secret), else printable ASCII (the Hub's rule: it travels as a header)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_SECRET or not all(32 <= ord(c) < 127 for c in value):
        raise BadRequest(f"'secret' must be printable ASCII of at most {MAX_SECRET} characters")
    return value


def _no_jobs(body: Mapping[str, Any]) -> None:
    if body.get("jobSourceId") is not None or body.get("secrets") is not None:
        raise BadRequest("Webhooks that run a Job are not supported on this server (no Jobs): give a 'url' instead")


def _seal(s: Session, box: SecretBox, w: Webhook, value: str | None) -> None:
    """Seal ``value`` under the current secrets key, holding the lock a key rotation takes (`crypto.rotate_key`
    re-encrypts webhook secrets too)."""
    if value is None:
        w.secret, w.secret_key_id = None, None
    else:
        lock_secrets(s)
        w.secret_key_id, w.secret = box.encrypt(f"webhook:{w.id}", "secret", value)


def unseal(box: SecretBox, w: Webhook) -> str | None:
    """The webhook's secret. Raises: SecretKeyError (the secrets key that sealed it is gone)."""
    if w.secret is None or w.secret_key_id is None:
        return None
    return box.decrypt(f"webhook:{w.id}", "secret", w.secret_key_id, w.secret)


# ---- use cases -----------------------------------------------------------------------------------------------
def list_webhooks(s: Session, p: Principal) -> list[dict[str, Any]]:
    """``GET /api/settings/webhooks``: the caller's webhooks, oldest first. Raises: Unauthorized."""
    user_id = _caller(p, write=False)
    rows = s.scalars(select(Webhook).where(Webhook.owner_id == user_id).order_by(Webhook.created_at, Webhook.id))
    return [webhook_json(w) for w in rows]


def get_webhook(s: Session, p: Principal, webhook_id: str) -> dict[str, Any]:
    """Raises: Unauthorized, NotFound."""
    return {"webhook": webhook_json(_find(s, p, webhook_id, write=False))}


def create_webhook(ctx: HubContext, s: Session, p: Principal, body: Mapping[str, Any]) -> dict[str, Any]:
    """``POST /api/settings/webhooks`` ``{watched, domains, url, secret?}``. Raises: Unauthorized, Forbidden,
    BadRequest (also for a Job webhook: there are no Jobs here)."""
    user_id = _caller(p, write=True)
    _no_jobs(body)
    count = s.scalar(select(func.count()).select_from(Webhook).where(Webhook.owner_id == user_id)) or 0
    if count >= MAX_WEBHOOKS:
        raise BadRequest(f"You have {count} webhooks, the most one user may have")
    if body.get("url") is None:
        raise BadRequest("'url' is required")
    url = check_url(body.get("url"), ctx.settings.webhooks.allow_private_addresses)
    watched = _watched(s, p, body.get("watched"))
    domains = _domains(body.get("domains", list(DOMAINS)))
    secret = _secret(body.get("secret"))
    now = utcnow()
    w = Webhook(
        id=secrets.token_hex(12),
        owner_id=user_id,
        url=url,
        watched=json.dumps(watched),
        domains=json.dumps(domains),
        disabled=False,
        created_at=now,
        updated_at=now,
    )
    _seal(s, ctx.secrets, w, secret)
    s.add(w)
    s.flush()
    return {"webhook": webhook_json(w)}


def update_webhook(
    ctx: HubContext, s: Session, p: Principal, webhook_id: str, body: Mapping[str, Any]
) -> dict[str, Any]:
    """``POST /api/settings/webhooks/{id}``: what the body holds replaces what the webhook had. An empty
    ``watched`` keeps the list: `HfApi.update_webhook` sends ``[]`` when it is not given, and a webhook that
    watches nothing would be no webhook. ``secret: ""`` removes the secret. Raises: as `create_webhook`, NotFound."""
    w = _find(s, p, webhook_id, write=True)
    _no_jobs(body)
    if body.get("url") is not None:
        w.url = check_url(body["url"], ctx.settings.webhooks.allow_private_addresses)
    if body.get("watched"):
        w.watched = json.dumps(_watched(s, p, body["watched"]))
    elif body.get("watched") is not None and not isinstance(body["watched"], list):
        raise BadRequest("'watched' must be a list of {type, name}")
    if body.get("domains") is not None:
        w.domains = json.dumps(_domains(body["domains"]))
    if "secret" in body:
        _seal(s, ctx.secrets, w, _secret(body["secret"]))
    w.updated_at = utcnow()
    s.flush()
    return {"webhook": webhook_json(w)}


def set_disabled(s: Session, p: Principal, webhook_id: str, disabled: bool) -> dict[str, Any]:
    """``POST /api/settings/webhooks/{id}/enable|disable``. A disabled webhook is sent nothing: deliveries still
    waiting are cancelled. Raises: Unauthorized, Forbidden, NotFound."""
    w = _find(s, p, webhook_id, write=True)
    if w.disabled != disabled:
        w.disabled, w.updated_at = disabled, utcnow()
    s.flush()
    return {"webhook": webhook_json(w)}


def delete_webhook(s: Session, p: Principal, webhook_id: str) -> None:
    """Its deliveries go with it. Raises: Unauthorized, Forbidden, NotFound."""
    s.delete(_find(s, p, webhook_id, write=True))
    s.flush()


def delivery_json(d: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "eventId": d.event_id,
        "scope": d.scope,
        "action": d.action,
        "state": d.state,
        "attempts": d.attempts,
        "lastStatus": d.last_status,
        "lastError": d.last_error,
        "createdAt": iso(d.created_at),
        "nextAttemptAt": iso(d.next_attempt_at) if d.state == "pending" else None,
        "log": json.loads(d.log),
        "payload": json.loads(d.payload),
    }


def list_deliveries(s: Session, p: Principal, webhook_id: str) -> list[dict[str, Any]]:
    """``GET /api/settings/webhooks/{id}/deliveries``: the newest `DELIVERIES_SHOWN` deliveries, newest first, each
    with its payload and every attempt (time, status, error, duration). Raises: Unauthorized, NotFound."""
    w = _find(s, p, webhook_id, write=False)
    rows = s.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == w.id)
        .order_by(WebhookDelivery.id.desc())
        .limit(DELIVERIES_SHOWN)
    )
    return [delivery_json(d) for d in rows]


def _pending(w: Webhook, event_id: str, scope: str, action: str, payload: str, now: dt.datetime) -> WebhookDelivery:
    """A delivery of ``payload`` (JSON text) to ``w``, due now, not tried yet."""
    return WebhookDelivery(webhook_id=w.id, event_id=event_id, scope=scope, action=action, payload=payload,
                           state="pending", attempts=0, next_attempt_at=now, log="[]", created_at=now,
                           updated_at=now)  # fmt: skip


def replay_delivery(ctx: HubContext, s: Session, p: Principal, webhook_id: str, delivery_id: str) -> dict[str, Any]:
    """``POST /api/settings/webhooks/{id}/deliveries/{n}/replay``: the same payload again, as a new delivery to the
    webhook's URL and secret as they are now (the Hub's "Replay"). Raises: Unauthorized, Forbidden, NotFound."""
    w = _find(s, p, webhook_id, write=True)
    old = s.get(WebhookDelivery, int(delivery_id)) if delivery_id.isdigit() and len(delivery_id) <= 18 else None
    if old is None or old.webhook_id != w.id:
        raise NotFound(f"Delivery {delivery_id!r} of webhook {webhook_id!r} not found")
    now = utcnow()
    new = _pending(w, old.event_id, old.scope, old.action, old.payload, now)
    s.add(new)
    s.flush()
    if ctx.webhook_sender is not None:
        after_commit(s, ctx.webhook_sender.wake)
    return delivery_json(new)


# ---- payloads ------------------------------------------------------------------------------------------------
def public_base(ctx: HubContext) -> str:
    settings = ctx.settings
    return (settings.server.public_url or f"http://127.0.0.1:{settings.server.port}").rstrip("/")


def _oid(n: int | None) -> str:
    return f"{n or 0:024x}"


def repo_json(ctx: HubContext, repo: Repo, head: bool) -> dict[str, Any]:
    base, full = public_base(ctx), repo.full_name
    out: dict[str, Any] = {
        "type": repo.type,
        "name": full,
        "id": repo.id,
        "private": repo.private,
        "url": {"web": f"{base}/{URL_PREFIX[repo.type]}{full}", "api": f"{base}/api/{repo.type}s/{full}"},
        "owner": {"id": _oid(repo.owner_id)},
    }
    if repo.type == "space":
        out["subdomain"] = subdomain(full)
    if head:
        try:
            out["headSha"] = ctx.git.ref_target(repo.id, "refs/heads/main")
        except Exception:  # no git directory (yet, or any more)
            out["headSha"] = None
    return out


def discussion_json(ctx: HubContext, repo: Repo, d: Discussion) -> dict[str, Any]:
    base, full = public_base(ctx), repo.full_name
    out: dict[str, Any] = {
        "id": _oid(d.id),
        "num": d.num,
        "title": d.title,
        "url": {
            "web": f"{base}/{URL_PREFIX[repo.type]}{full}/discussions/{d.num}",
            "api": f"{base}/api/{repo.type}s/{full}/discussions/{d.num}",
        },
        "status": d.status,
        "author": {"id": _oid(d.author_id)},
        "isPullRequest": d.is_pull_request,
        "pinned": False,
    }
    if d.is_pull_request:
        out["changes"] = {"base": d.target_branch or "refs/heads/main"}
        if d.merge_commit:
            out["changes"]["mergeCommitId"] = d.merge_commit
    return out


def comment_json(ctx: HubContext, repo: Repo, d: Discussion, ev: DiscussionEvent) -> dict[str, Any]:
    data = json.loads(ev.data)
    hidden = bool(data.get("hidden"))
    history = data.get("history") or []
    web = discussion_json(ctx, repo, d)["url"]["web"]
    return {
        "id": ev.event_id,
        "author": {"id": _oid(ev.author_id)},
        "content": None if hidden or not history else history[0].get("raw"),
        "hidden": hidden,
        "url": {"web": f"{web}#{ev.event_id}"},
    }


# ---- emitting: the outbox ------------------------------------------------------------------------------------
def _watches(w: Webhook, repo: Repo, owner_name: str) -> bool:
    for item in json.loads(w.watched):
        kind, name = item.get("type"), item.get("name")
        if kind == repo.type and name == repo.full_name:
            return True
        if kind in ("user", "org") and name == owner_name:
            return True
    return False


_ENABLED = select(Webhook).where(Webhook.disabled.is_(False))


def emit(ctx: HubContext, s: Session, repo: Repo, scope: str, action: str, **extra: Any) -> int:
    """Record the event for every enabled webhook that watches ``repo`` (itself, or its owner) in the scope's domain
    and whose owner may read it; they are posted once this transaction commits. Returns how many."""
    return _emit(ctx, s, list(s.scalars(_ENABLED)), repo, scope, action, **extra)


def _emit(
    ctx: HubContext, s: Session, enabled: list[Webhook], repo: Repo, scope: str, action: str, **extra: Any
) -> int:
    if not enabled:  # most hubs have none: the repo's owner is not even loaded
        return 0
    domain = "discussion" if scope.startswith("discussion") else "repo"
    owner = repo.owner.name
    targets = []
    for w in enabled:
        if domain not in json.loads(w.domains) or not _watches(w, repo, owner):
            continue
        if repo.private:
            account = s.get(Account, w.owner_id)
            if account is None or not accounts.can_read(accounts.principal_of(s, account, "read"), repo):
                continue
        targets.append(w)
    if not targets:
        return 0
    body: dict[str, Any] = {"event": {"action": action, "scope": scope}}
    body["repo"] = repo_json(ctx, repo, head=domain == "repo")
    body.update({k: v for k, v in extra.items() if v is not None})
    event_id, now = secrets.token_hex(12), utcnow()
    for w in targets:
        payload = {**body, "webhook": {"id": w.id, "version": VERSION}}
        s.add(_pending(w, event_id, scope, action, json.dumps(payload), now))
    s.flush()
    sender = ctx.webhook_sender
    if sender is not None:
        after_commit(s, sender.wake)
    return len(targets)


def ref_update(ref: str, old: str | None, new: str | None) -> dict[str, Any]:
    return {"ref": ref, "oldSha": old, "newSha": new}


def emit_discussion(
    ctx: HubContext,
    s: Session,
    repo: Repo,
    d: Discussion,
    action: str,
    comment: DiscussionEvent | None = None,
    scope: str = "discussion",
) -> None:
    """A discussion or pull request event (``scope`` discussion or discussion.comment), with its comment if any."""
    s.flush()
    extra: dict[str, Any] = {"discussion": discussion_json(ctx, repo, d)}
    if comment is not None:
        extra["comment"] = comment_json(ctx, repo, d, comment)
    emit(ctx, s, repo, scope, action, **extra)


def runtime_events(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> list[str]:
    """What a change of a Space's status row means, in `RUNTIME_EVENTS` (``before`` None: its first status)."""
    old = (before or {}).get("stage")
    new = after.get("stage")
    events = []
    if new != old:
        if new == "BUILD_ERROR":
            events.append("build_failed")
        if new == "RUNTIME_ERROR":
            events.append("runtime_error")
        if new == "SLEEPING":
            events.append("sleeping")
        if old == "SLEEPING" and new not in ("SLEEPING", "STOPPED", "PAUSED", "DELETING"):
            events.append("woke")
        if new == "RUNNING":
            events.append("running")
    old_hw, new_hw = (before or {}).get("hardware"), after.get("hardware")
    if new_hw is not None and new_hw != old_hw and not (old_hw is None and new_hw == FREE_HARDWARE):
        events.append("hardware_granted")
    return events


def space_status_listener(
    ctx: HubContext,
) -> Callable[[Session, str, Mapping[str, Any] | None, Mapping[str, Any]], None]:
    """What the runtime calls, in the transaction that writes a Space's status row, when the row's stage or
    hardware changes (``before``/``after``: ``stage``, ``hardware``, ``requested``, ``error``). It records a
    ``space.runtime`` event for each of `runtime_events`."""

    def listener(s: Session, space_id: str, before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> None:
        events = runtime_events(before, after)
        enabled = list(s.scalars(_ENABLED)) if events else []
        repo = s.get(Repo, space_id) if enabled else None  # read only when some webhook may want it
        if repo is None:
            return
        for name in events:
            runtime = {
                "event": name,
                "stage": after.get("stage"),
                "previousStage": (before or {}).get("stage"),
                "hardware": {"current": after.get("hardware"), "requested": after.get("requested")},
                "errorMessage": after.get("error"),
            }
            _emit(ctx, s, enabled, repo, RUNTIME_SCOPE, "update", runtime=runtime)

    return listener


# ---- delivering ----------------------------------------------------------------------------------------------
class WebhookSender:
    """Posts the outbox's due deliveries: one thread picks them, a pool of `POSTERS` threads posts them.

    One attempt at a time per webhook, in the order the deliveries became due, so a webhook's receiver gets its
    events in order and a slow or dead one holds one poster at most, never the others' deliveries. `wake` (after a
    commit that wrote deliveries, and when an attempt ends) makes the picker look at once; otherwise it wakes when
    the next retry is due. Nothing is sent before `start` (the server calls it; admin commands that write events
    leave them for the server). Each attempt's result is written to its row: delivered, pending again with the next
    time, or failed after ``max_attempts``.

    In an HTTP worker (``server.workers`` above 1) the controller's sender posts: ``forward`` tells it, and this one
    is never started."""

    def __init__(self, db: Database, settings: Any, box: SecretBox, forward: Callable[[], None] | None = None) -> None:
        self.db, self.box, self.forward = db, box, forward
        self.cfg = settings.webhooks
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(POSTERS, thread_name_prefix="webhook-post")
        self._lock = threading.Lock()
        self._busy: dict[str, int] = {}  # webhook id → the delivery being posted to it
        self._http = httpx.Client(timeout=self.cfg.timeout_seconds, follow_redirects=False)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="webhook-sender", daemon=True)
            self._thread.start()
        self.wake()

    def wake(self) -> None:
        if self.forward is not None:
            self.forward()
        self._wake.set()

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._http.close()

    def _loop(self) -> None:
        pruned = 0.0
        while not self._stop:
            self._wake.clear()
            try:
                if time.monotonic() - pruned > 3600:
                    self.prune()
                    pruned = time.monotonic()
                wait = self.run_due()
            except Exception:  # the database went away for a moment: try again shortly
                log.exception("webhook deliveries: a round failed")
                wait = 5.0
            if not self._stop:
                self._wake.wait(wait)

    def prune(self) -> int:
        """Forget finished deliveries older than `KEEP_DAYS` (the log is for recent activity, as on the Hub)."""
        cutoff = utcnow() - dt.timedelta(days=KEEP_DAYS)
        with self.db.transaction() as s:
            done = WebhookDelivery.state != "pending"
            gone = s.execute(delete(WebhookDelivery).where(done, WebhookDelivery.created_at < cutoff))
            return int(getattr(gone, "rowcount", 0) or 0)

    def run_due(self) -> float:
        """Hand every due delivery whose webhook has none in flight to a poster; answer the seconds until the next
        one is due (at most 60; an ending attempt wakes the picker sooner)."""
        now = utcnow()
        with self.db.transaction() as s:
            rows = s.execute(
                select(WebhookDelivery.id, WebhookDelivery.webhook_id, WebhookDelivery.next_attempt_at)
                .where(WebhookDelivery.state == "pending")
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(1000)
            ).all()
        wait = 60.0
        with self._lock:
            for delivery_id, webhook_id, due in rows:
                if webhook_id in self._busy:
                    continue
                if due > now:
                    wait = min(wait, (due - now).total_seconds())
                    continue
                self._busy[webhook_id] = delivery_id
                self._pool.submit(self._post, webhook_id, delivery_id)
        return max(0.05, wait)

    def _post(self, webhook_id: str, delivery_id: int) -> None:
        try:
            self._attempt(delivery_id)
        except Exception:  # recorded nowhere: the delivery stays pending and is tried again
            log.exception("webhook %s: delivery %s: the attempt failed", webhook_id, delivery_id)
            time.sleep(1.0)
        finally:
            with self._lock:
                self._busy.pop(webhook_id, None)
            self._wake.set()

    def _attempt(self, delivery_id: int) -> None:
        with self.db.transaction() as s:
            d = s.get(WebhookDelivery, delivery_id)
            # not due (any more): run_due's read may predate the end of the previous attempt, whose record moved
            # the next one later (seen under load: a retry 15 ms after the one before instead of its backoff)
            if d is None or d.state != "pending" or d.next_attempt_at > utcnow():
                return
            w = s.get(Webhook, d.webhook_id)
            if w is None:
                return
            if w.disabled:
                d.state, d.last_error, d.updated_at = "cancelled", "the webhook was disabled", utcnow()
                return
            url, payload = w.url, d.payload
            try:
                secret = unseal(self.box, w)
            except SecretKeyError:
                secret, sealed_error = None, "the webhook's secret cannot be read (the secrets key changed)"
            else:
                sealed_error = None
        started = time.monotonic()
        status, error = None, sealed_error
        target: Target | str = Target(url, {}, {})
        if error is None and not self.cfg.allow_private_addresses:
            target = pin(url)
            if isinstance(target, str):
                error = target
        if error is None and isinstance(target, Target):
            headers = {"content-type": "application/json", "user-agent": "SpaceHub-Webhooks/1", **target.headers}
            if secret is not None:
                headers["x-webhook-secret"] = secret
            try:
                r = self._http.post(target.url, content=payload.encode(), headers=headers, extensions=target.extensions)
                status = r.status_code
                if not 200 <= status < 300:
                    error = f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
            except httpx.HTTPError as e:  # the message names the URL at most, never the headers
                error = f"{type(e).__name__}: {e}"[:300]
        ms = int((time.monotonic() - started) * 1000)
        self._record(delivery_id, status, error, ms)

    def _record(self, delivery_id: int, status: int | None, error: str | None, ms: int) -> None:
        now = utcnow()
        with self.db.transaction() as s:
            d = s.get(WebhookDelivery, delivery_id)
            if d is None:
                return
            d.attempts += 1
            attempts = json.loads(d.log)[-(LOG_ATTEMPTS - 1) :]
            attempts.append({"at": iso(now), "status": status, "error": error, "durationMs": ms})
            d.log, d.last_status, d.last_error, d.updated_at = json.dumps(attempts), status, error, now
            if error is None:
                d.state = "delivered"
            elif d.attempts >= self.cfg.max_attempts:
                d.state = "failed"
                log.warning("webhook %s: delivery %s failed after %s attempts: %s", d.webhook_id, d.id, d.attempts,
                            error)  # fmt: skip
            else:
                delay = self.cfg.retry_base_seconds * 2 ** (d.attempts - 1)
                d.next_attempt_at = now + dt.timedelta(seconds=delay)
