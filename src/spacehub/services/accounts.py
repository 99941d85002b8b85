"""Users, organizations, tokens, and the one place that decides who may read, write or administer a repo."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session, joinedload

from spacehub.errors import BadRequest, Conflict, Forbidden, NotFound, RepoNotFound, Unauthorized
from spacehub.storage import credentials
from spacehub.storage.db import Database, utcnow
from spacehub.storage.models import Account, Membership, Repo, Token

NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,40}[A-Za-z0-9])?$")
RESERVED_NAMES = {
    "api",
    "spaces",
    "datasets",
    "models",
    "settings",
    "login",
    "logout",
    "new",
    "static",
    "docs",
    "admin",
    "templates",  # the namespace of the Space templates' ids (services.starters)
}
ROLES = ("read", "write", "admin")
TOKEN_ROLES = ("read", "write")
INVALID_CREDENTIALS = "Invalid credentials in Authorization header"
FETCH_KIND = "fetch"  # a token scoped to one Space's repo (create_fetch_token); its name says which
FETCH_PREFIX = "space:"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user with a token of some role, or nobody (anonymous)."""

    user_id: int | None = None
    name: str | None = None
    token_role: str | None = None  # read | write
    is_admin: bool = False
    org_roles: dict[int, str] = field(default_factory=dict)  # org account id → role
    repo_scope: str | None = None  # a fetch token's: the one repo (its id) it may read, and nothing else

    @property
    def anonymous(self) -> bool:
        return self.user_id is None


ANONYMOUS = Principal()


def validate_name(name: str, what: str = "name") -> None:
    if not NAME_RE.match(name) or "--" in name or name.lower() in RESERVED_NAMES:
        raise BadRequest(
            f"Invalid {what} {name!r}: use 1-42 letters, digits or single hyphens, not starting or ending with a hyphen"
        )


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def get_account(s: Session, name: str) -> Account | None:
    """The user or org named ``name`` in any case (names never differ only in case: the database enforces it)."""
    if "\x00" in name or not name.isascii():  # no name has either; PostgreSQL refuses NUL in text parameters
        return None
    return s.scalar(select(Account).where(func.lower(Account.name) == name.lower()))


def create_user(s: Session, name: str, fullname: str = "", email: str | None = None, admin: bool = False) -> Account:
    """Raises: BadRequest (invalid name), Conflict (name taken by a user or an org)."""
    return _create_account(s, name, "user", fullname, email, admin)


def create_org(s: Session, name: str, fullname: str = "") -> Account:
    return _create_account(s, name, "org", fullname, None, False)


def _create_account(s: Session, name: str, kind: str, fullname: str, email: str | None, admin: bool) -> Account:
    validate_name(name, "user name" if kind == "user" else "organization name")
    _check_length("full name", fullname, Account.fullname)
    _check_length("e-mail address", email, Account.email)
    if get_account(s, name) is not None:
        raise Conflict(f"The name {name!r} is already taken")
    acct = Account(name=name, kind=kind, fullname=fullname or name, email=email, is_admin=admin)
    s.add(acct)
    s.flush()
    return acct


def add_member(s: Session, org_name: str, user_name: str, role: str) -> Membership:
    """Add (or change the role of) ``user_name`` in ``org_name``.

    Raises: NotFound (no such org/user), BadRequest (bad role).
    """
    if role not in ROLES:
        raise BadRequest(f"Invalid role {role!r}; use one of {', '.join(ROLES)}")
    org, user = get_account(s, org_name), get_account(s, user_name)
    if org is None or org.kind != "org":
        raise NotFound(f"Organization {org_name!r} not found")
    if user is None or user.kind != "user":
        raise NotFound(f"User {user_name!r} not found")
    m = s.scalar(select(Membership).where(Membership.org_id == org.id, Membership.user_id == user.id))
    if m is None:
        m = Membership(org_id=org.id, user_id=user.id, role=role)
        s.add(m)
    else:
        m.role = role
    s.flush()
    return m


def create_token(
    s: Session,
    user_name: str,
    role: str = "write",
    name: str = "cli",
    kind: str = "access",
    expires_at: dt.datetime | None = None,
) -> str:
    """Create a token for ``user_name`` and return its value (shown once; only its hash is stored). ``kind``
    "session" is a web sign-in (`services.sessions`): not listed on the tokens page, expiring at ``expires_at``.

    Raises: NotFound (no such user), BadRequest (bad role).
    """
    if role not in TOKEN_ROLES:
        raise BadRequest(f"Invalid token role {role!r}; use read or write")
    _check_length("token name", name, Token.name)
    user = get_account(s, user_name)
    if user is None or user.kind != "user":
        raise NotFound(f"User {user_name!r} not found")
    value = "hf_" + secrets.token_urlsafe(30).replace("-", "A").replace("_", "z")[:34]
    s.add(Token(user_id=user.id, name=name, role=role, token_hash=hash_token(value), kind=kind, expires_at=expires_at))
    s.flush()
    return value


def _check_length(what: str, value: str | None, column: Any) -> None:
    """The column's length, enforced the same way on every database (SQLite would store longer text silently)."""
    limit = column.type.length
    if value is not None and len(value) > limit:
        raise BadRequest(f"The {what} is too long: {len(value)} characters, at most {limit}")


_TOKEN_BY_HASH = select(Token).options(joinedload(Token.user)).where(Token.token_hash == bindparam("token_hash"))
_MEMBERSHIPS_OF = (
    select(Membership).options(joinedload(Membership.org)).where(Membership.user_id == bindparam("user_id"))
)
_ROLES_OF = select(Membership.org_id, Membership.role).where(Membership.user_id == bindparam("user_id"))


@dataclass(frozen=True, slots=True)
class _Known:
    """A token `authenticate` resolved: who it is, until when, the credential generation it was read at, and when
    its ``last_used_at`` was last written (or found fresh)."""

    principal: Principal
    expires_at: dt.datetime | None
    generation: int | None
    read_at: dt.datetime


class _Principals:
    """token hash → `_Known`, per database engine (a process may hold several databases: tests do). Bounded.

    Also the tokens whose ``last_used_at`` is due and that no request wrote yet (`used`, `take_due`)."""

    LIMIT = 10_000

    def __init__(self) -> None:
        self._by_engine: weakref.WeakKeyDictionary[Any, dict[str, _Known]] = weakref.WeakKeyDictionary()
        self._due: weakref.WeakKeyDictionary[Any, dict[str, dt.datetime]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self, engine: Any, token_hash: str) -> _Known | None:
        known = self._by_engine.get(engine)
        return known.get(token_hash) if known is not None else None

    def put(self, engine: Any, token_hash: str, entry: _Known) -> None:
        with self._lock:
            known = self._by_engine.setdefault(engine, {})
            if len(known) >= self.LIMIT:
                known.clear()
            known[token_hash] = entry

    def used(self, engine: Any, token_hash: str, known: _Known, now: dt.datetime) -> bool:
        """A use of ``known`` at ``now``. True for exactly one caller once its ``last_used_at`` is due
        (`TOUCH_EVERY`): that caller writes it, or leaves it to `write_last_used` (``defer``). Every other caller
        goes on from memory: with 64 connections on one token, all of them used to read the token again and write
        its ``last_used_at`` at once, once a minute (a stall of 100-500 ms on SQLite)."""
        if now - known.read_at < TOUCH_EVERY:
            return False
        with self._lock:
            entries = self._by_engine.get(engine)
            if entries is None or entries.get(token_hash) is not known:
                return False  # another caller took it (or the entry was replaced)
            entries[token_hash] = _Known(known.principal, known.expires_at, known.generation, now)
            return True

    def defer(self, engine: Any, token_hash: str, now: dt.datetime) -> None:
        with self._lock:
            due = self._due.setdefault(engine, {})
            if len(due) < self.LIMIT:
                due[token_hash] = now

    def has_due(self, engine: Any) -> bool:
        return bool(self._due.get(engine))

    def take_due(self, engine: Any) -> dict[str, dt.datetime]:
        with self._lock:
            return self._due.pop(engine, None) or {}


_principals = _Principals()
TOUCH_EVERY = dt.timedelta(seconds=60)  # a token's last_used_at is written at most this often (per process)
_TOUCH = (
    update(Token)
    .where(Token.token_hash.in_(bindparam("hashes", expanding=True)))
    .values(last_used_at=bindparam("now"))
    .execution_options(synchronize_session=False)
)


def authenticate(s: Session, token: str | None) -> Principal:
    """The principal behind a bearer token; anonymous when there is none.

    A token resolved before is answered from memory while the credential generation (`storage.credentials`: moved
    by any change to a token, an account or a membership, in any process) has not moved since and the token has not
    expired: one small read instead of three. Its ``last_used_at`` is written at most once a `TOUCH_EVERY`, by one
    request (`_Principals.used`), with those that kept answers served in the meantime (`take_due`).

    Raises: Unauthorized (a token was given but is not valid).
    """
    if not token:
        return ANONYMOUS
    token_hash = hash_token(token)
    now = utcnow()
    engine = s.get_bind()
    generation = credentials.current(s)
    known = _principals.get(engine, token_hash)
    if (
        known is not None
        and generation is not None
        and known.generation == generation
        and (known.expires_at is None or known.expires_at > now)
    ):
        mine = _principals.used(engine, token_hash, known, now)
        due = _principals.take_due(engine) if mine or _principals.has_due(engine) else {}
        if mine:
            due[token_hash] = now
        if due:
            _touch(s, due)
        return known.principal
    row = s.scalar(_TOKEN_BY_HASH, {"token_hash": token_hash})
    if row is None or (row.expires_at is not None and row.expires_at <= now):
        raise Unauthorized(INVALID_CREDENTIALS)
    if row.last_used_at is None or now - row.last_used_at > TOUCH_EVERY:
        row.last_used_at = now  # coarse, so that reads do not write on every request
    s.info[_AUTH_TOKEN] = (token_hash, row)  # for whoami, in this unit of work (and it keeps the user loaded)
    if row.kind == FETCH_KIND:  # anonymous but for reading its one Space: no user's rights at all
        principal = Principal(token_role="read", repo_scope=row.name.removeprefix(FETCH_PREFIX))
    else:
        principal = principal_of(s, row.user, row.role)
    if generation is not None:
        _principals.put(engine, token_hash, _Known(principal, row.expires_at, generation, now))
    return principal


def last_used_due(engine: Any) -> bool:
    """Whether uses answered by `known_principal` left a token's ``last_used_at`` to be written."""
    return _principals.has_due(engine)


def write_last_used(db: Database) -> int:
    """Write the ``last_used_at`` of the tokens that kept answers served while it was due (`known_principal`), in
    one statement; how many."""
    due = _principals.take_due(db.engine)
    if due:
        with db.transaction() as s:
            _touch(s, due)
    return len(due)


def _touch(s: Session, due: dict[str, dt.datetime]) -> None:
    """Write the ``last_used_at`` of the tokens in ``due`` (token hash → when it was used), in one statement. Core:
    no flush, and no credential generation moved (storage.credentials ignores ``last_used_at`` anyway)."""
    s.execute(_TOUCH, {"hashes": sorted(due), "now": max(due.values())})


def known_principal(engine: Any, token: str | None, generation: int) -> Principal | None:
    """Who ``token`` is, when `authenticate` on ``engine`` would answer it from memory at credential generation
    ``generation`` (resolved before at that generation, not expired). None otherwise (not resolved yet):
    `authenticate` must run. A use that finds the token's ``last_used_at`` due leaves it to be written
    (`write_last_used`, or the next `authenticate`), without a request of its own."""
    if not token:
        return ANONYMOUS
    token_hash = hash_token(token)
    known = _principals.get(engine, token_hash)
    now = utcnow()
    if known is None or known.generation != generation or (known.expires_at is not None and known.expires_at <= now):
        return None
    if _principals.used(engine, token_hash, known, now):
        _principals.defer(engine, token_hash, now)
    return known.principal


def create_fetch_token(s: Session, repo: Repo) -> str:
    """A token that reads ``repo`` (a Space's code, fetched by the pods of a cluster backend) and nothing else: it
    acts as nobody (anonymous) but for that one repo, cannot write, and is not listed with the owner's tokens. A new
    one revokes the Space's older ones but the one just before it: a pod that starts while the cluster still mounts
    the Secret's previous value (the kubelet refreshes a mounted Secret on its own sync, a minute or more later) must
    still fetch, or its init container fails with 401 until then."""
    scope = FETCH_PREFIX + repo.id
    rows = s.scalars(select(Token).where(Token.kind == FETCH_KIND, Token.name == scope).order_by(Token.id.desc()))
    for old in list(rows)[1:]:
        s.delete(old)
    value = "hf_" + secrets.token_urlsafe(30).replace("-", "A").replace("_", "z")[:34]
    s.add(Token(user_id=repo.owner_id, name=scope, role="read", token_hash=hash_token(value), kind=FETCH_KIND))
    s.flush()
    return value


def is_fetch_token_of(s: Session, repo: Repo, token: str) -> bool:
    """Whether ``token`` is a live (not revoked, not expired) fetch token of ``repo`` (`create_fetch_token`)."""
    row = s.scalar(_TOKEN_BY_HASH, {"token_hash": hash_token(token)})
    return (
        row is not None
        and row.kind == FETCH_KIND
        and row.name == FETCH_PREFIX + repo.id
        and (row.expires_at is None or row.expires_at > utcnow())
    )


_AUTH_TOKEN = "spacehub.auth_token"


def _token_row(s: Session, token: str) -> Token | None:
    """The row of ``token`` (its user loaded): the one `authenticate` read in this session, else read."""
    token_hash = hash_token(token)
    found = s.info.get(_AUTH_TOKEN)
    if found is not None and found[0] == token_hash:
        return found[1]  # type: ignore[no-any-return]
    return s.scalar(_TOKEN_BY_HASH, {"token_hash": token_hash})


def principal_of(s: Session, user: Account, token_role: str) -> Principal:
    """``user`` acting with a token of ``token_role`` (their org roles read now)."""
    roles = {org_id: role for org_id, role in s.execute(_ROLES_OF, {"user_id": user.id})}
    return Principal(user.id, user.name, token_role, user.is_admin, roles)


def whoami(s: Session, p: Principal, token: str, base_url: str = "") -> dict[str, object]:
    """The ``/api/whoami-v2`` document. Raises: Unauthorized (anonymous)."""
    if p.anonymous or p.user_id is None:
        raise Unauthorized(INVALID_CREDENTIALS)
    tok = _token_row(s, token)
    user = tok.user if tok is not None and tok.user_id == p.user_id else s.get(Account, p.user_id)
    assert user is not None
    orgs = []
    for m in s.scalars(_MEMBERSHIPS_OF, {"user_id": user.id}):
        orgs.append(
            {
                "type": "org",
                "name": m.org.name,
                "fullname": m.org.fullname,
                "roleInOrg": m.role,
                "id": hexid(m.org.id),
                "avatarUrl": avatar_url(base_url, m.org.name),
            }
        )
    from spacehub.services.formats import iso

    return {
        "type": "user",
        "id": hexid(user.id),
        "name": user.name,
        "fullname": user.fullname,
        "email": user.email,
        "emailVerified": user.email is not None,
        "isPro": False,
        "canPay": False,
        "avatarUrl": avatar_url(base_url, user.name),
        "orgs": orgs,
        "auth": {
            "type": "access_token",
            "accessToken": {
                "displayName": tok.name if tok else "token",
                "role": p.token_role,
                "createdAt": iso(tok.created_at) if tok else None,
            },
        },
    }


def avatar_url(base_url: str, name: str) -> str:
    """Where an account's avatar is drawn (`people.avatar_svg`)."""
    return f"{base_url.rstrip('/')}/avatars/{name}.svg"


def hexid(n: int) -> str:
    return f"{n:024x}"


# ---- the permission check ------------------------------------------------------------------------------------
def role_on(p: Principal, owner: Account) -> str | None:
    """The role ``p`` holds over everything ``owner`` owns: admin (the user themself or an org admin), write, read."""
    if p.anonymous:
        return None
    if p.is_admin or p.user_id == owner.id:
        return "admin"
    return p.org_roles.get(owner.id)


def can_read(p: Principal, repo: Repo) -> bool:
    if p.repo_scope is not None:  # a fetch token reads its own Space, and public repos as anyone may
        return not repo.private or repo.id == p.repo_scope
    return not repo.private or role_on(p, repo.owner) is not None


def check_repo_access(p: Principal, repo: Repo | None, need: str = "read") -> Repo:
    """The single permission gate for repos. ``need`` is read, contribute, write or admin.

    A repo you may not read does not exist for you (404 RepoNotFound, never 403). A visible repo you may not change
    gives 401 when anonymous and 403 otherwise. ``contribute`` is what the Hub lets any signed-in reader do (open a
    discussion or pull request, comment): read access and a write token, no role on the repo. Contribute, write and
    admin need a write token.

    Raises: RepoNotFound, Unauthorized, Forbidden.
    """
    if repo is None or not can_read(p, repo):
        raise RepoNotFound("Repository not found")
    if need == "read":
        return repo
    if p.anonymous:
        raise Unauthorized("You must be authenticated to do this: pass a token with write access")
    role = role_on(p, repo.owner)
    if p.token_role != "write":
        raise Forbidden("This token is read-only: use a token with the write role")
    if need == "contribute":
        return repo
    ok = role in ("write", "admin") if need == "write" else role == "admin"
    if not ok:
        raise Forbidden(
            f"You don't have the rights to {'change' if need == 'write' else 'administer'} {repo.full_name}"
        )
    return repo


def can_write(p: Principal, repo: Repo) -> bool:
    """Whether ``p`` passes the gate for ``write``: the yes or no of rules such as "the author or a writer"."""
    try:
        check_repo_access(p, repo, "write")
    except (RepoNotFound, Unauthorized, Forbidden):
        return False
    return True


def check_namespace_write(s: Session, p: Principal, namespace: str) -> Account:
    """The account ``p`` may create repos under. Raises: Unauthorized, Forbidden, NotFound."""
    if p.anonymous:
        raise Unauthorized("You must be authenticated to create a repo")
    owner = get_account(s, namespace)
    if owner is None:
        raise (
            NotFound(f"Namespace {namespace!r} not found")
            if p.is_admin
            else Forbidden(f"You don't have the rights to create a repo under {namespace!r}")
        )
    if p.token_role != "write" or role_on(p, owner) not in ("write", "admin"):
        raise Forbidden(f"You don't have the rights to create a repo under {namespace!r}")
    return owner
