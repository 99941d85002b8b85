"""A Space's secrets and variables: validation, storage (secrets encrypted, services/crypto.py) and the environment
the runtime gives the app (`env_reader`, plugged in as ``HubContext.space_env``).

Keys are environment variable names that do not shadow the platform's own. A key is either a secret or a variable,
never both. Variables are public (readers of the Space may list them, duplicates copy them); secret values never
leave the server except into the app's environment.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from spacehub.errors import BadRequest, Conflict
from spacehub.services.accounts import Principal
from spacehub.services.context import HubContext
from spacehub.services.crypto import SecretBox, SecretKeyError, lock_secrets
from spacehub.services.formats import iso
from spacehub.storage.db import utcnow
from spacehub.storage.models import Repo, SpaceSecret, SpaceVariable

KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_KEY_LENGTH = 128
MAX_VALUE_BYTES = 64 * 1024
MAX_DESCRIPTION_LENGTH = 1024
MAX_ENTRIES = 100  # per kind and Space
MAX_ENV_BYTES = 512 * 1024  # all keys and values of a Space: the kernel caps an exec's environment (ARG_MAX)
SEALED_OVERHEAD = 12 + 16  # nonce and tag around an encrypted value

# What the platform sets (runtime/desired.py PLATFORM_ENV, runtime/backends/local_launch.py): a secret or variable
# of these names would be ignored or break the app, so it is refused. tests/services/test_space_settings.py checks
# that this list covers the runtime's.
RESERVED_ENV = frozenset(
    {
        *("SPACE_ID", "SPACE_HOST", "SPACE_AUTHOR_NAME", "SPACE_REPO_NAME", "SPACE_TITLE", "SPACE_CREATOR_USER_ID"),
        *("SYSTEM", "CPU_CORES", "MEMORY", "ACCELERATOR", "CUDA_VISIBLE_DEVICES", "HF_ENDPOINT", "SPACE_DATA_DIR"),
        *("PORT", "GRADIO_SERVER_PORT", "GRADIO_SERVER_NAME", "GRADIO_ANALYTICS_ENABLED", "HF_HUB_DISABLE_TELEMETRY"),
        *("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "STREAMLIT_SERVER_HEADLESS", "PYTHONUNBUFFERED", "VIRTUAL_ENV"),
        *("PATH", "HOME"),
    }
)
ENTRY_FIELDS = ("key", "value", "description")


@dataclass(frozen=True)
class Entry:
    """One secret or variable as a client sends it."""

    key: str
    value: str
    description: str | None = None


# ---- validation (all before anything is written) ---------------------------------------------------------------
def validate_key(key: Any, what: str) -> str:
    """Raises: BadRequest unless ``key`` is an environment variable name the platform does not own."""
    if not isinstance(key, str) or not key:
        raise BadRequest(f"The {what} needs a 'key' (a string)")
    if len(key) > MAX_KEY_LENGTH:
        raise BadRequest(f"The {what} key is too long: {len(key)} characters, at most {MAX_KEY_LENGTH}")
    if not KEY_RE.match(key):
        raise BadRequest(
            f"Invalid {what} key {key!r}: use letters, digits and underscores, not starting with a digit "
            "(it becomes an environment variable)"
        )
    if key in RESERVED_ENV:
        raise BadRequest(f"The {what} key {key!r} is reserved: the platform sets this environment variable itself")
    return key


def parse_entry(body: Any, what: str, need_value: bool = True) -> Entry:
    """A ``{"key", "value", "description"?}`` object (of a POST body or of a create/duplicate list).

    Raises: BadRequest (unknown fields, wrong types, bad key, oversized value). Messages never quote the value.
    """
    if not isinstance(body, dict):
        raise BadRequest(f"Each {what} must be an object with 'key' and 'value'")
    allowed = ENTRY_FIELDS if need_value else ("key",)
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        names = ", ".join(map(repr, unknown))
        raise BadRequest(f"Unknown fields in the {what}: {names}; allowed: {', '.join(allowed)}")
    key = validate_key(body.get("key"), what)
    if not need_value:
        return Entry(key, "")
    value = body.get("value")
    if not isinstance(value, str):
        raise BadRequest(f"The {what} {key!r} needs a 'value' (a string)")
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise BadRequest(f"The value of the {what} {key!r} is too large: at most {MAX_VALUE_BYTES} bytes")
    if "\x00" in value:
        raise BadRequest(f"The value of the {what} {key!r} contains a NUL character (environment variables cannot)")
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise BadRequest(f"The description of the {what} {key!r} must be a string")
    if description is not None and len(description) > MAX_DESCRIPTION_LENGTH:
        raise BadRequest(f"The description of the {what} {key!r} is too long: at most {MAX_DESCRIPTION_LENGTH}")
    return Entry(key, value, description)


def parse_entries(items: Any, what: str) -> list[Entry]:
    """The ``secrets`` or ``variables`` list of a create or duplicate body. Raises: BadRequest."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise BadRequest(f"'{what}s' must be a list of objects with 'key' and 'value'")
    if len(items) > MAX_ENTRIES:
        raise BadRequest(f"Too many {what}s: at most {MAX_ENTRIES}")
    entries = [parse_entry(item, what) for item in items]
    keys = [e.key for e in entries]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise BadRequest(f"The {what} key {dupes[0]!r} is given more than once")
    return entries


def parse_settings_body(body: Mapping[str, Any], repo_type: str) -> tuple[list[Entry], list[Entry]]:
    """(secrets, variables) of a create or duplicate body. Raises: BadRequest."""
    secrets, variables = parse_entries(body.get("secrets"), "secret"), parse_entries(body.get("variables"), "variable")
    if (secrets or variables) and repo_type != "space":
        raise BadRequest("Secrets and variables only apply to Spaces")
    both = sorted({e.key for e in secrets} & {e.key for e in variables})
    if both:
        raise BadRequest(f"{both[0]!r} is given both as a secret and as a variable")
    return secrets, variables


# ---- reading ---------------------------------------------------------------------------------------------------
def _variables(s: Session, repo: Repo) -> list[SpaceVariable]:
    return list(s.scalars(select(SpaceVariable).where(SpaceVariable.repo_id == repo.id).order_by(SpaceVariable.key)))


def _secrets(s: Session, repo: Repo) -> list[SpaceSecret]:
    return list(s.scalars(select(SpaceSecret).where(SpaceSecret.repo_id == repo.id).order_by(SpaceSecret.key)))


def get_space_variables(s: Session, repo: Repo) -> dict[str, dict[str, Any]]:
    """``{key: {"value", "description"?, "updatedAt"}}``, what every client reads."""
    out: dict[str, dict[str, Any]] = {}
    for v in _variables(s, repo):
        out[v.key] = {"value": v.value, "updatedAt": iso(v.updated_at)}
        if v.description is not None:
            out[v.key]["description"] = v.description
    return out


def get_space_secrets(s: Session, repo: Repo) -> dict[str, dict[str, Any]]:
    """``{key: {"description"?, "updatedAt"}}``: never a value."""
    out: dict[str, dict[str, Any]] = {}
    for row in _secrets(s, repo):
        out[row.key] = {"updatedAt": iso(row.updated_at)}
        if row.description is not None:
            out[row.key]["description"] = row.description
    return out


def env_reader(box: SecretBox) -> Callable[[Session, Repo], dict[str, str]]:
    """``HubContext.space_env``: a Space's variables and decrypted secrets, the app's own environment."""

    def space_env(s: Session, repo: Repo) -> dict[str, str]:
        env = {v.key: v.value for v in _variables(s, repo)}
        for row in _secrets(s, repo):
            env[row.key] = box.decrypt(repo.id, row.key, row.key_id, row.ciphertext)
        return env

    return space_env


# ---- writing (each answers whether the app's environment changed, i.e. whether it restarts) ----------------------
def add_space_variable(s: Session, repo: Repo, entry: Entry) -> bool:
    """Add or update a variable. Raises: Conflict (the key is a secret), BadRequest (limits)."""
    if s.get(SpaceSecret, (repo.id, entry.key)) is not None:
        raise Conflict(f"{entry.key!r} is already a secret of this Space: delete the secret first")
    row = s.get(SpaceVariable, (repo.id, entry.key))
    changed = row is None or row.value != entry.value
    if row is None:
        row = SpaceVariable(repo_id=repo.id, key=entry.key)
        s.add(row)
    row.value, row.updated_at = entry.value, utcnow()
    if entry.description is not None:  # an update without one keeps the description it had
        row.description = entry.description
    s.flush()
    _check_limits(s, repo)
    return changed


def delete_space_variable(s: Session, repo: Repo, key: str) -> bool:
    """Delete a variable; a missing key is not an error (clients rely on it)."""
    row = s.get(SpaceVariable, (repo.id, key))
    if row is None:
        return False
    s.delete(row)
    s.flush()
    return True


def add_space_secret(box: SecretBox, s: Session, repo: Repo, entry: Entry) -> bool:
    """Add or update a secret (encrypted). Raises: Conflict (the key is a variable), BadRequest (limits)."""
    if s.get(SpaceVariable, (repo.id, entry.key)) is not None:
        raise Conflict(f"{entry.key!r} is already a variable of this Space: delete the variable first")
    lock_secrets(s)  # before encrypting: a key rotation may not retire the key in between
    row = s.get(SpaceSecret, (repo.id, entry.key))
    changed = row is None or _value_of(box, row) != entry.value
    if row is None:
        row = SpaceSecret(repo_id=repo.id, key=entry.key)
        s.add(row)
    row.key_id, row.ciphertext = box.encrypt(repo.id, entry.key, entry.value)
    row.updated_at = utcnow()
    if entry.description is not None:
        row.description = entry.description
    s.flush()
    _check_limits(s, repo)
    return changed


def _value_of(box: SecretBox, row: SpaceSecret) -> str | None:
    """The stored value, or None when it no longer decrypts (its key was lost): setting it again repairs it."""
    try:
        return box.decrypt(row.repo_id, row.key, row.key_id, row.ciphertext)
    except SecretKeyError:
        return None


def delete_space_secret(s: Session, repo: Repo, key: str) -> bool:
    """Delete a secret; a missing key is not an error."""
    row = s.get(SpaceSecret, (repo.id, key))
    if row is None:
        return False
    s.delete(row)
    s.flush()
    return True


def _check_limits(s: Session, repo: Repo) -> None:
    variables, secrets = _variables(s, repo), _secrets(s, repo)
    if len(variables) > MAX_ENTRIES or len(secrets) > MAX_ENTRIES:
        raise BadRequest(f"A Space has at most {MAX_ENTRIES} secrets and {MAX_ENTRIES} variables")
    size = sum(len(v.key) + len(v.value.encode()) for v in variables)
    size += sum(len(r.key) + len(r.ciphertext) - SEALED_OVERHEAD for r in secrets)
    if size > MAX_ENV_BYTES:
        raise BadRequest(f"The secrets and variables of a Space may hold at most {MAX_ENV_BYTES} bytes in all")


def apply_settings(box: SecretBox, s: Session, repo: Repo, secrets: list[Entry], variables: list[Entry]) -> None:
    """Set the secrets and variables of a create or duplicate body on the new Space. Given keys win over copied
    variables, also when a given secret has the name of a copied variable."""
    for e in variables:
        add_space_variable(s, repo, e)
    for e in secrets:
        delete_space_variable(s, repo, e.key)
        add_space_secret(box, s, repo, e)


def copy_variables(s: Session, source: Repo, target: Repo) -> None:
    """A duplicate gets the source's variables (never its secrets)."""
    for v in _variables(s, source):
        s.add(SpaceVariable(repo_id=target.id, key=v.key, value=v.value, description=v.description,
                            updated_at=utcnow()))  # fmt: skip
    s.flush()


# ---- the ``secrets``/``variables`` option of create and duplicate bodies ------------------------------------------
def create_check(ctx: HubContext, repo_type: str, body: dict[str, Any]) -> None:
    """Refuse bad ``secrets``/``variables`` before anything is written. Raises: BadRequest."""
    parse_settings_body(body, repo_type)


def create_hook(ctx: HubContext, s: Session, p: Principal, repo: Repo, body: dict[str, Any]) -> None:
    """The new repo's secrets (encrypted with ``ctx.secrets``) and variables."""
    secrets, variables = parse_settings_body(body, repo.type)
    apply_settings(ctx.secrets, s, repo, secrets, variables)
