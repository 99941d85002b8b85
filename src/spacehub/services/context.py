"""HubContext: the shared objects services work with (settings, database, git store, blob store, events)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from spacehub.config import Settings
from spacehub.services.runtime import NoRuntime, Runtime
from spacehub.storage.blobs import LocalBlobStore
from spacehub.storage.db import Database, after_commit

if TYPE_CHECKING:
    from spacehub.services.creation import SpaceOption
    from spacehub.services.crypto import SecretBox
    from spacehub.services.hardware import HardwarePolicy
    from spacehub.services.webhooks import WebhookSender
from spacehub.storage.git import GitStore


@dataclass(frozen=True)
class RepoEvent:
    """Something happened to a repo: ``kind`` is created, committed (ref + sha), deleted or moved."""

    kind: str
    repo_id: str
    repo_type: str
    ref: str | None = None
    sha: str | None = None


class Events:
    """A tiny in-process publish/subscribe: the runtime subscribes to learn of Space commits (API or git push).

    An event published in a transaction is delivered once it has committed (`storage.db.after_commit`): a
    subscriber that reads the database then sees the change, with no delay to guess, and a rolled-back change is
    never announced."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[RepoEvent], None]] = []

    def subscribe(self, fn: Callable[[RepoEvent], None]) -> None:
        self._subscribers.append(fn)

    def publish(self, event: RepoEvent, session: Session | None = None) -> None:
        """Deliver ``event`` to every subscriber: after ``session`` commits, or now without one."""
        if session is not None:
            after_commit(session, lambda: self._deliver(event))
        else:
            self._deliver(event)

    def _deliver(self, event: RepoEvent) -> None:
        for fn in list(self._subscribers):
            fn(event)


def _no_env(session: Any, repo: Any) -> Mapping[str, str]:
    """A Space's own variables and secrets (the settings service replaces this)."""
    return {}


@dataclass
class HubContext:
    """What services work with, built once by the composition root (`spacehub.wiring.hub_context`)."""

    settings: Settings
    db: Database
    git: GitStore
    blobs: LocalBlobStore
    secrets: SecretBox  # the key of Space secrets
    hardware: HardwarePolicy  # the flavor catalog and what the runtime's machines make of it
    space_options: list[SpaceOption] = field(default_factory=list)  # what create/duplicate bodies may set
    events: Events = field(default_factory=Events)
    space_env: Callable[[Any, Any], Mapping[str, str]] = _no_env
    runtime: Runtime = field(default_factory=NoRuntime)  # the front door: set by the composition root
    webhook_sender: WebhookSender | None = None  # posts webhook deliveries after their commit (services.webhooks)
