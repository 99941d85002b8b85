"""Use cases: every change to what a Space should be, as one unit of work that ends with a notice to the runtime.

Each function authenticates the caller, checks its access, applies the change and answers (in one transaction),
then, once the transaction has committed, tells the runtime through ``ctx.runtime`` (`storage.db.after_commit`: the
reconciler never reads a change that is not durable, and never hears of one that rolled back). The API handlers
only translate HTTP into these calls; the CLI and web pages call them alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from spacehub.services import accounts, hardware, repos, space_settings, spaces, storage, webhooks
from spacehub.services.accounts import Principal
from spacehub.services.context import HubContext
from spacehub.services.formats import subdomain
from spacehub.storage.db import after_commit
from spacehub.storage.models import Repo

T = TypeVar("T")
Answer = Callable[[Session, Principal, Repo], T]  # what a change answers, read in its transaction


@dataclass(frozen=True)
class Caller:
    """Who asks (their token, None for anonymous) and the URL they reached the Hub at (a Space's public host in
    the answers is built from it)."""

    token: str | None
    base_url: str


@dataclass(frozen=True)
class Notice:
    """What the runtime must hear once the change has committed."""

    changed: bool = True  # what the Space should be changed: a pass
    wake: bool = False  # it counts as a visit: a sleeping Space wakes to act on it
    storage: bool = False  # its storage changed: measure it soon
    config: bool = True  # its settings changed: a repo.config event for webhooks (not for a restart)


def host(ctx: HubContext, caller: Caller, repo: Repo) -> str:
    """The Space's public host (``domains[0].domain`` of its runtime), as ``host:port``."""
    return repos.space_host(ctx, caller.base_url, subdomain(repo.full_name)).split("://", 1)[1]


def runtime_answer(ctx: HubContext, caller: Caller, viewer: bool = False) -> Answer[dict[str, Any]]:
    """The Space's runtime as the answer; volume sources the caller may read are shown only with ``viewer`` (the
    storage calls), masked otherwise (restart, pause, hardware and sleep answer as they always have)."""
    return lambda s, p, repo: spaces.runtime(s, repo, host(ctx, caller, repo), p if viewer else None)


def change_space(
    ctx: HubContext,
    caller: Caller,
    repo_id: str,
    access: str,
    change: Callable[[Session, Principal, Repo], Notice | None],
    answer: Answer[T],
) -> T:
    """Apply ``change`` to the Space (``access``: "write" or "admin"), then answer ``answer``; ``change`` says what
    the runtime must hear (None: nothing changed)."""
    with ctx.db.transaction() as s:
        p = accounts.authenticate(s, caller.token)
        repo = repos.get_repo(s, p, "space", repo_id, access)
        notice = change(s, p, repo)
        out = answer(s, p, repo)
        if notice is not None:
            if notice.config:  # secrets, variables, hardware, sleep, pause, storage…
                webhooks.emit(ctx, s, repo, "repo.config", "update", updatedConfig={})
            space_id = repo.id
            after_commit(s, lambda: _tell(ctx, space_id, notice))
        return out


def _tell(ctx: HubContext, space_id: str, notice: Notice) -> None:
    if notice.wake:
        ctx.runtime.wake(space_id)
    if notice.changed:
        ctx.runtime.space_changed(space_id)
    if notice.storage:
        ctx.runtime.storage_changed(space_id)


# ---- lifecycle ---------------------------------------------------------------------------------------------------
def restart(ctx: HubContext, caller: Caller, repo_id: str, factory: bool = False) -> dict[str, Any]:
    """`HfApi.restart_space` (owner or org admin): a new release of the same build, or a rebuild without caches;
    it unpauses and wakes a sleeping Space. Answers the runtime, ``BUILDING`` while the restart is under way."""

    def change(s: Session, p: Principal, repo: Repo) -> Notice:
        spaces.restart(s, repo, factory)
        return Notice(wake=True, config=False)

    out = change_space(ctx, caller, repo_id, "admin", change, runtime_answer(ctx, caller))
    if out["stage"] in ("PAUSED", "STOPPED", "RUNTIME_ERROR", "BUILD_ERROR"):
        out["stage"] = "BUILDING"  # what the Hub answers: the restart is under way
    return out


def pause(ctx: HubContext, caller: Caller, repo_id: str) -> dict[str, Any]:
    """`HfApi.pause_space` (owner or org admin; not static Spaces)."""

    def change(s: Session, p: Principal, repo: Repo) -> Notice:
        spaces.pause(s, repo)
        return Notice()

    out = change_space(ctx, caller, repo_id, "admin", change, runtime_answer(ctx, caller))
    out["stage"] = "PAUSED"
    return out


# ---- hardware and sleep ------------------------------------------------------------------------------------------
def request_hardware(ctx: HubContext, caller: Caller, repo_id: str, flavor: Any, sleep: Any = None) -> dict[str, Any]:
    """`HfApi.request_space_hardware`: a change of flavor counts as a visit (a sleeping Space restarts on it)."""

    def change(s: Session, p: Principal, repo: Repo) -> Notice:
        hardware.request_hardware(s, repo, ctx.hardware, flavor, sleep)
        return Notice(wake=True)

    return change_space(ctx, caller, repo_id, "write", change, runtime_answer(ctx, caller))


def set_sleep_time(ctx: HubContext, caller: Caller, repo_id: str, seconds: Any) -> dict[str, Any]:
    """`HfApi.set_space_sleep_time` (-1: never)."""

    def change(s: Session, p: Principal, repo: Repo) -> Notice:
        hardware.set_sleep_time(s, repo, ctx.hardware, seconds)
        return Notice()

    return change_space(ctx, caller, repo_id, "write", change, runtime_answer(ctx, caller))


# ---- secrets and variables -----------------------------------------------------------------------------------
def change_settings(
    ctx: HubContext,
    caller: Caller,
    repo_id: str,
    change: Callable[[Session, Repo], bool],
    answer: Callable[[Session, Repo], dict[str, Any]],
) -> dict[str, Any]:
    """A secret or variable added, changed or deleted (``change`` answers whether the app's environment changed):
    the app restarts on it (a new release of the same build, no reinstall). Answers ``answer``."""

    def apply(s: Session, p: Principal, repo: Repo) -> Notice | None:
        if not change(s, repo):
            return None
        spaces.under_way(s, repo, building=False)
        return Notice()

    return change_space(ctx, caller, repo_id, "write", apply, lambda s, p, repo: answer(s, repo))


def add_secret(ctx: HubContext, caller: Caller, repo_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """`HfApi.add_space_secret` {"key", "value", "description"?}: encrypted at rest, never answered."""

    def change(s: Session, repo: Repo) -> bool:  # the body is read once access is known: a stranger gets a 404
        return space_settings.add_space_secret(ctx.secrets, s, repo, space_settings.parse_entry(body, "secret"))

    return change_settings(ctx, caller, repo_id, change, lambda s, repo: {})


def delete_secret(ctx: HubContext, caller: Caller, repo_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """`HfApi.delete_space_secret` {"key"} (a missing key is fine)."""

    def change(s: Session, repo: Repo) -> bool:
        return space_settings.delete_space_secret(s, repo, space_settings.parse_entry(body, "secret", False).key)

    return change_settings(ctx, caller, repo_id, change, lambda s, repo: {})


def add_variable(ctx: HubContext, caller: Caller, repo_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """`HfApi.add_space_variable` {"key", "value", "description"?}: answers every variable."""

    def change(s: Session, repo: Repo) -> bool:
        return space_settings.add_space_variable(s, repo, space_settings.parse_entry(body, "variable"))

    return change_settings(ctx, caller, repo_id, change, space_settings.get_space_variables)


def delete_variable(ctx: HubContext, caller: Caller, repo_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """`HfApi.delete_space_variable` {"key"}: answers every variable."""

    def change(s: Session, repo: Repo) -> bool:
        return space_settings.delete_space_variable(s, repo, space_settings.parse_entry(body, "variable", False).key)

    return change_settings(ctx, caller, repo_id, change, space_settings.get_space_variables)


# ---- storage and volumes -------------------------------------------------------------------------------------
def change_storage(
    ctx: HubContext, caller: Caller, repo_id: str, change: Callable[[Session, Principal, Repo], Any]
) -> dict[str, Any]:
    """Storage requested or deleted, volumes set or deleted: a new release, and the storage is measured soon."""

    def apply(s: Session, p: Principal, repo: Repo) -> Notice:
        change(s, p, repo)
        return Notice(storage=True)

    return change_space(ctx, caller, repo_id, "write", apply, runtime_answer(ctx, caller, viewer=True))


def request_storage(ctx: HubContext, caller: Caller, repo_id: str, tier: Any) -> dict[str, Any]:
    """`HfApi.request_space_storage` (clients up to 1.33)."""
    return change_storage(ctx, caller, repo_id, lambda s, p, repo: storage.request_storage(ctx.settings, s, repo, tier))


def delete_storage(ctx: HubContext, caller: Caller, repo_id: str) -> dict[str, Any]:
    """`HfApi.delete_space_storage`: the data is deleted for good."""
    return change_storage(ctx, caller, repo_id, lambda s, p, repo: storage.delete_storage(s, repo))


def set_volumes(ctx: HubContext, caller: Caller, repo_id: str, volumes: Any) -> dict[str, Any]:
    """`HfApi.set_space_volumes`: replaces the list."""
    return change_storage(ctx, caller, repo_id, lambda s, p, repo: storage.set_volumes(ctx, s, p, repo, volumes))


def delete_volumes(ctx: HubContext, caller: Caller, repo_id: str) -> dict[str, Any]:
    """`HfApi.delete_space_volumes` (400 when there are none)."""
    return change_storage(ctx, caller, repo_id, lambda s, p, repo: storage.delete_volumes(s, repo))
