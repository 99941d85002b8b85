"""SQLAlchemy models: accounts (users and orgs share one namespace), memberships, tokens, repos."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from spacehub.storage.db import Base, utcnow


class Account(Base):
    """A user or an organization: both own repos under their name."""

    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    kind: Mapped[str] = mapped_column(String(8))  # "user" | "org"
    fullname: Mapped[str] = mapped_column(String(256), default="")
    email: Mapped[str | None] = mapped_column(String(256), nullable=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    password_hash: Mapped[str | None] = mapped_column(String(256), nullable=True)  # argon2id; None: no web sign-in


# Names are compared in any case (`accounts.get_account`, `repos.find_repo`), so the database keeps two accounts, or
# two repos of one owner and type, from differing only in case (migration 0011).
Index("uq_accounts_lower_name", func.lower(Account.name), unique=True)


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("org_id", "user_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(8))  # read | write | admin

    org: Mapped[Account] = relationship(foreign_keys=[org_id])
    user: Mapped[Account] = relationship(foreign_keys=[user_id])


class Token(Base):
    """An access token. Only its sha256 is stored; the value is shown once at creation."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(8))  # read | write
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    kind: Mapped[str] = mapped_column(String(8), default="access", server_default="access")  # access | session
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)  # sessions expire

    user: Mapped[Account] = relationship()


class Repo(Base):
    """A model, dataset or Space. Its git repository lives at ``repos/{id}.git`` so renames touch no file."""

    __tablename__ = "repos"
    __table_args__ = (UniqueConstraint("type", "owner_id", "name"),)
    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    type: Mapped[str] = mapped_column(String(8))  # model | dataset | space
    owner_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(96))
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    gated: Mapped[str | None] = mapped_column(String(8), nullable=True)
    sdk: Mapped[str | None] = mapped_column(String(16), nullable=True)
    likes: Mapped[int] = mapped_column(Integer, default=0)
    discussion_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # last discussion/PR number
    # Whether repo_lfs_objects lists every LFS object its refs reference (services.lfs_objects): true for a new repo;
    # false for one made before 0012, a duplicate and after a push, until the next check lists them again.
    lfs_indexed: Mapped[bool] = mapped_column(Boolean, default=True, server_default=false())
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # moved by every transaction that changes the repo or a row of it (storage/repo_generation.py)
    generation: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    owner: Mapped[Account] = relationship()

    @property
    def full_name(self) -> str:
        return f"{self.owner.name}/{self.name}"


Index("uq_repos_type_owner_lower_name", Repo.type, Repo.owner_id, func.lower(Repo.name), unique=True)


class RepoRedirect(Base):
    """An old name of a moved repo, so that old URLs keep working as on the Hub."""

    __tablename__ = "repo_redirects"
    __table_args__ = (UniqueConstraint("type", "full_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(8))
    full_name: Mapped[str] = mapped_column(String(192))
    repo_id: Mapped[str] = mapped_column(ForeignKey("repos.id", ondelete="CASCADE"))


class LfsObject(Base):
    """An object in the LFS blob store, with the git blob sha1 of its content (for preupload no-op detection)."""

    __tablename__ = "lfs_objects"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    git_sha1: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class RepoLfsObject(Base):
    """An LFS object a repo may reference (the blob store underneath stays one, deduplicated, for every repo): one
    the repo's refs reference or a commit put there (``uploader_id`` null: anyone who may write the repo may use it
    again), or one a user uploaded to the repo and has not committed yet (only that user may)."""

    __tablename__ = "repo_lfs_objects"
    __table_args__ = (UniqueConstraint("repo_id", "sha256", "uploader_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    repo_id: Mapped[str] = mapped_column(ForeignKey("repos.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    uploader_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Space(Base):
    """What a Space should be, beyond its files: hardware, sleep, pause, restarts (the runtime's desired state)."""

    __tablename__ = "spaces"
    repo_id: Mapped[str] = mapped_column(ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True)
    hardware: Mapped[str] = mapped_column(String(32), default="cpu-basic")
    sleep_time: Mapped[int | None] = mapped_column(Integer, nullable=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    restart_generation: Mapped[int] = mapped_column(Integer, default=0)
    factory_generation: Mapped[int] = mapped_column(Integer, default=0)
    storage_tier: Mapped[str | None] = mapped_column(String(8), nullable=True)
    # The newest change the Hub accepted that the runtime must act on (services.spaces.under_way): its number, what
    # it leads to ("build" or "start") and whether it wakes a sleeping Space. The runtime says which it has seen in
    # space_status.seen_change; until then the runtime document answers the stage the change leads to.
    change_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    change: Mapped[str | None] = mapped_column(String(8), nullable=True)
    change_wakes: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class SpaceStatus(Base):
    """What a Space is, as the runtime last reported it (served by GET /api/spaces/{id}/runtime). Written by the
    reconciler only."""

    __tablename__ = "space_status"
    repo_id: Mapped[str] = mapped_column(ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True)
    stage: Mapped[str] = mapped_column(String(24))
    error_message: Mapped[str | None] = mapped_column(String(4000), nullable=True)
    detail: Mapped[str | None] = mapped_column(String(64), nullable=True)
    current_hardware: Mapped[str | None] = mapped_column(String(32), nullable=True)
    serving_revision: Mapped[str | None] = mapped_column(String(40), nullable=True)
    serving_release: Mapped[str | None] = mapped_column(String(64), nullable=True)
    limits: Mapped[str | None] = mapped_column(String(256), nullable=True)
    factory_done: Mapped[int] = mapped_column(Integer, default=0)  # last factory generation built without cache
    devices: Mapped[str | None] = mapped_column(String(256), nullable=True)  # accelerators of the serving release
    seen_change: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # spaces.change_seq it acted on
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class PreviewStatus(Base):
    """What a pull request's preview is, as the runtime last saw it: what a restart of SpaceHub needs to adopt its
    instance (the release it served from) and to bring it back as it was (running, or asleep). Written by the
    reconciler only; deleted when the preview ends."""

    __tablename__ = "preview_status"
    repo_id: Mapped[str] = mapped_column(ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True)
    num: Mapped[int] = mapped_column(Integer, primary_key=True)
    stage: Mapped[str] = mapped_column(String(24))
    serving_release: Mapped[str | None] = mapped_column(String(64), nullable=True)
    serving_revision: Mapped[str | None] = mapped_column(String(40), nullable=True)
    current_hardware: Mapped[str | None] = mapped_column(String(32), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class SpaceVariable(Base):
    """An environment variable of a Space (public: readers of the Space see it, and duplicates copy it)."""

    __tablename__ = "space_variables"
    repo_id: Mapped[str] = mapped_column(ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class SpaceSecret(Base):
    """A secret of a Space: its value only as AES-GCM ciphertext (services/crypto.py), never returned by the API."""

    __tablename__ = "space_secrets"
    repo_id: Mapped[str] = mapped_column(ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16))  # the server key (secrets.key) that encrypted it
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)  # nonce || ciphertext || tag
    description: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class SpaceStorage(Base):
    """A Space's persistent storage (its tier is ``spaces.storage_tier``) and its volumes: the key naming the storage
    folder (a new one after each deletion), the volumes as JSON, and what the runtime last measured."""

    __tablename__ = "space_storage"
    repo_id: Mapped[str] = mapped_column(ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str | None] = mapped_column(String(16), nullable=True)
    volumes: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: [{type, source, mountPath, …}]
    used_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    limit_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    enforcement: Mapped[str | None] = mapped_column(String(128), nullable=True)
    stopped_reason: Mapped[str | None] = mapped_column(String(512), nullable=True)  # the monitor stopped the Space
    measured_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class BillingAccount(Base):
    """An owner (user or org) allowed paid hardware: a payment card on file or a community grant (set by an admin
    with ``spacehub billing grant``)."""

    __tablename__ = "billing_accounts"
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # grant | card
    note: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class UsageInterval(Base):
    """A stretch of time a Space ran (starting or running) on one priced flavor, at that flavor's price then.
    ``last_seen_at`` moves on with every reconciler pass; ``ended_at`` is set when it stops. The Space's id and name
    are copied, not referenced: usage outlives a deleted Space."""

    __tablename__ = "usage_intervals"
    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    repo_id: Mapped[str] = mapped_column(String(24), index=True)
    space_name: Mapped[str] = mapped_column(String(192))
    flavor: Mapped[str] = mapped_column(String(32))
    unit_cost_micro_usd: Mapped[int] = mapped_column(BigInteger)  # per minute
    started_at: Mapped[dt.datetime] = mapped_column(DateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True, index=True)


class Discussion(Base):
    """A discussion or pull request of a repo. ``num`` counts both, per repo, from 1 (``repos.discussion_seq``); a
    pull request's changes are the git ref ``refs/pr/{num}``, to be merged into ``target_branch``."""

    __tablename__ = "discussions"
    __table_args__ = (UniqueConstraint("repo_id", "num"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    repo_id: Mapped[str] = mapped_column(ForeignKey("repos.id", ondelete="CASCADE"), index=True)
    num: Mapped[int] = mapped_column(Integer)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True)
    title: Mapped[str] = mapped_column(String(200))
    is_pull_request: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(8))  # open | closed | merged | draft
    target_branch: Mapped[str | None] = mapped_column(String(255), nullable=True)  # refs/heads/main (PRs only)
    merge_commit: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # A Space's pull request: when a preview of it was asked for (None: no preview). It runs while the pull request
    # is open (`storage.previews`, services.previews).
    preview_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    author: Mapped[Account | None] = relationship()


class DiscussionEvent(Base):
    """One event of a discussion's timeline, in ``id`` order: a comment (its first one is the description), a status
    change, a title change or a commit to the pull request. ``data`` is the event's JSON (a comment keeps its edits);
    ``event_id`` is the hex id the client names comments by."""

    __tablename__ = "discussion_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(24), unique=True)
    discussion_id: Mapped[int] = mapped_column(ForeignKey("discussions.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # comment | status-change | title-change | commit
    author_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True)
    data: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    author: Mapped[Account | None] = relationship()


class Like(Base):
    """A user's like of a repo. ``repos.likes`` counts them (kept in the same transaction by `services.likes`)."""

    __tablename__ = "likes"
    __table_args__ = (UniqueConstraint("user_id", "repo_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    repo_id: Mapped[str] = mapped_column(ForeignKey("repos.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    repo: Mapped[Repo] = relationship()
    user: Mapped[Account] = relationship()


class Webhook(Base):
    """A user's webhook (``/api/settings/webhooks``): what it watches (``watched``, JSON ``[{type, name}]``), its
    domains (JSON ``["repo", "discussion"]``) and where it posts. The secret is sealed with the secrets key
    (`services.crypto.SecretBox`): it is sent as ``X-Webhook-Secret`` and never answered or logged."""

    __tablename__ = "webhooks"
    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    watched: Mapped[str] = mapped_column(Text)
    domains: Mapped[str] = mapped_column(String(64))
    secret: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # nonce || ciphertext
    secret_key_id: Mapped[str | None] = mapped_column(String(16), nullable=True)  # the secrets key that sealed it
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    owner: Mapped[Account] = relationship()


class WebhookDelivery(Base):
    """One payload for one webhook: written in the transaction of the change it reports (an outbox), posted after
    it commits, tried again with backoff while the receiver fails. ``state``: pending | delivered | failed (gave
    up). The owner reads them at ``GET /api/settings/webhooks/{id}/deliveries``."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[str] = mapped_column(String(24))
    scope: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))
    payload: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(12), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    log: Mapped[str] = mapped_column(Text, default="[]")  # JSON: every attempt {at, status, error, ms}
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Lease(Base):
    """A named lease (`storage.lease`): who holds it, until when. The runtime's controller holds ``runtime``."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(256))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    acquired_at: Mapped[dt.datetime] = mapped_column(DateTime)


class SignInFailure(Base):
    """A failed web sign-in of one key (``user:NAME`` or ``client:ADDRESS``), kept for the throttle's window
    (`services.sessions`): in the database, so that every HTTP worker and replica counts the same failures."""

    __tablename__ = "sign_in_failures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(320), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)


class CredentialGeneration(Base):
    """One row whose ``n`` grows in the same transaction as any change to who a token is: a token, an account or
    a membership added, changed or removed (`storage.credentials`). A cached answer to "whose token is this"
    (`services.accounts.authenticate`) holds only while ``n`` has not moved, in every process and replica."""

    __tablename__ = "credential_generation"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class HostGeneration(Base):
    """One row whose ``n`` grows in the same transaction as any change to what the proxy's host index is made of: a
    Space created or deleted, renamed, moved or made private or public (`storage.host_generation`). A process's
    index that remembers ``n`` (with the credential generation, which account renames move) is whole while neither
    has moved: the periodic check for changes made elsewhere is one small read, whatever else changes."""

    __tablename__ = "host_generation"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)
